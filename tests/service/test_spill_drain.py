"""Shutdown drains the spill: records spilled during a store outage reach the store when it
comes back within ``PREDICTION_SPILL_DRAIN_S`` of SIGTERM (in a pod, the spill's emptyDir goes
with the pod, so the shutdown is their last chance).

Before: ``close()`` tried one replay; a store still down at that moment left the spill behind
and the process exited (every spilled record lost with the pod).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from service_helpers import SONG, serve, wait_until
from test_store_outage import _metric, _try_open

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sigterm_during_an_outage_replays_the_spill_once_the_store_is_back(trained_home, tmp_path):
    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's folder should be: the store cannot open")
    uri = f"sqlite:///{blocked / 'predictions.db'}"
    with serve(trained_home, uri, tmp_path, PREDICTION_SPILL_DRAIN_S="20") as server:
        answered: list[str] = []
        for _ in range(20):
            status, body = server.request("POST", "/predict-songs", {"data": [SONG] * 5})
            assert status == 200, body
            answered.extend(r["request_id"] for r in body["results"])
        wait_until(
            lambda: _metric(server, "reggaeton_prediction_log_spilled_total") >= len(answered),
            30,
            "every record to be spilled",
        )

        mark = len(server.log.read_bytes())
        started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)

        def shutdown_replay_failed() -> bool:
            after = server.log.read_bytes()[mark:].decode(errors="replace")
            return server.proc.poll() is not None or "probe failed" in after

        # the store comes back only after the shutdown's first replay attempt has failed
        wait_until(shutdown_replay_failed, 30, "the shutdown's first replay attempt")
        blocked.unlink()
        blocked.mkdir()
        code = server.proc.wait(40)
        took = time.monotonic() - started
        assert code == 0, server.logs()
        assert took < 20 + 15, took  # bounded by the drain time (plus gRPC's grace)

    store = wait_until(lambda: _try_open(uri), 10, "the store to open")
    try:
        frame = store.export()
    finally:
        store.close()
    assert sorted(frame["request_id"]) == sorted(answered), server.logs()
    spills = sorted((tmp_path / "spill").glob("predictions-worker*.jsonl"))
    assert spills and all(p.stat().st_size == 0 for p in spills), server.logs()
