"""Durable mode (``PREDICTION_LOG_DURABILITY=sync``): SIGKILL loses no acknowledged prediction.

In the default mode a prediction is acknowledged once its record is queued in memory and a hard
kill loses what is still queued (``test_crash.py`` bounds that window). In durable mode the
response waits for its records' group commit, so every record a client got a 200 for is in the
store after a SIGKILL, single songs (event-loop path) and batches (thread path) alike. The
writer keeps its default batch and the default flush interval would be 0.2 s, so without the
durable mode a kill under this load loses hundreds of acknowledged records.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
import requests
from e2e import support

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CONCURRENCY = 8
BATCH_ROWS = 300
"""Over the offload threshold (256 rows): scored and committed in a worker thread."""


def _batch_load(url: str, stop: threading.Event, acked: list[str], failures: list[str]) -> None:
    body = {"data": [dict(support.SONG, popularity=i % 100) for i in range(BATCH_ROWS)]}
    session = requests.Session()
    while not stop.is_set():
        try:
            resp = session.post(f"{url}/predict-songs", json=body, timeout=30)
        except requests.RequestException as exc:
            failures.append(type(exc).__name__)
            continue
        if resp.status_code == 200:
            acked.extend(r["request_id"] for r in resp.json()["results"])
        else:
            failures.append(f"{resp.status_code} {resp.text[:200]}")


def test_sigkill_under_load_loses_no_acknowledged_record(trained_home: Path, tmp_path: Path):
    dep = support.deploy(trained_home, tmp_path, extra_env={"PREDICTION_LOG_DURABILITY": "sync"})
    try:
        answered = threading.Event()
        count = [0]

        def on_answer(_: dict) -> None:
            count[0] += 1
            if count[0] >= 1500:
                answered.set()

        box: dict[str, support.LoadResult] = {}
        loader = threading.Thread(
            target=lambda: box.setdefault(
                "r", support.run_load(dep.url, 6000, CONCURRENCY, on_answer=on_answer)
            )
        )
        stop, batch_acked, batch_failures = threading.Event(), [], []
        batcher = threading.Thread(
            target=_batch_load, args=(dep.url, stop, batch_acked, batch_failures)
        )
        loader.start()
        batcher.start()
        assert answered.wait(180), f"load stalled:\n{dep.service.log_tail()}"
        dep.service.kill()
        stop.set()
        loader.join(120)
        batcher.join(60)
        singles = box["r"]
        acked = singles.ids | set(batch_acked)
        assert len(singles.ok) >= 1500 and batch_acked, "no load before the kill"

        dep.restart()
        stored = support.stored_ids(dep.db_path)
        assert not [i for i, n in Counter(stored).items() if n > 1], "a record stored twice"
        lost = acked - set(stored)
        print(
            f"\ndurable mode, SIGKILL after {len(singles.ok)} single and "
            f"{len(batch_acked) // BATCH_ROWS} batch answers ({len(acked)} records "
            f"acknowledged): {len(lost)} lost; {len(singles.failures) + len(batch_failures)} "
            "requests failed by the kill"
        )
        assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:3]}"
        after = support.run_load(dep.url, 20, 2)  # the restarted service answers again
        assert not after.failures, after.failures[:3]
    finally:
        dep.service.stop()
