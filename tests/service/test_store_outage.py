"""A prediction-store outage never fails a prediction: records spill, then replay exactly once."""

from __future__ import annotations

import re
import shutil

import pytest
from service_helpers import SONG, serve, wait_until

from reggaeton.records.factory import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _metric(server, name: str) -> float:
    text = server.request("GET", "/metrics")[1]
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_outage_then_recovery_records_every_answered_prediction(trained_home, tmp_path):
    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's folder should be: the store cannot open")
    uri = f"sqlite:///{blocked / 'predictions.db'}"
    with serve(trained_home, uri, tmp_path) as server:
        answered: list[str] = []
        for i in range(30):
            if i % 3:
                status, body = server.request("POST", "/predict-song", {"data": SONG})
                ids = [body["request_id"]] if status == 200 else []
            else:
                status, body = server.request("POST", "/predict-songs", {"data": [SONG] * 4})
                ids = [r["request_id"] for r in body["results"]] if status == 200 else []
            assert status == 200, body
            answered.extend(ids)
        # Every answered row must be in a spill file before the store comes back: a row still
        # queued in a worker at that moment would be written directly, not replayed.
        wait_until(
            lambda: _metric(server, "reggaeton_prediction_log_spilled_total") >= len(answered),
            60,
            "every answered row to be spilled",
        )
        assert _metric(server, "reggaeton_prediction_log_write_failures_total") > 0
        assert _metric(server, "reggaeton_prediction_log_dropped_total") == 0

        blocked.unlink()  # the store comes back
        blocked.mkdir()
        store = wait_until(lambda: _try_open(uri), 60, "the store to open")
        try:
            wait_until(lambda: store.count() >= len(answered), 90, "the spill to be replayed")
            frame = store.export()
        finally:
            store.close()
        assert len(frame) == len(answered)  # every 200 is recorded, nothing twice
        assert sorted(frame["request_id"]) == sorted(answered)
        wait_until(
            lambda: _metric(server, "reggaeton_prediction_log_replayed_total") >= len(answered),
            30,
            "the replay counter",
        )
    shutil.rmtree(tmp_path / "spill", ignore_errors=True)


def _try_open(uri):
    try:
        return open_store(uri)
    except Exception:  # noqa: BLE001 - still down
        return None
