"""``close()`` drains the spill: retries while the store is down, for ``drain_s`` at most."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from writer_helpers import FlakyStore, make_records, wait_until

from reggaeton.records.sqlite import SQLiteStore
from service.writer import PredictionWriter

FAST = dict(batch_size=50, flush_interval=0.05, backoff=(0.05, 0.1))


def _spilled_writer(
    db_path: Path, spill_path: Path, drain_s: float
) -> tuple[PredictionWriter, FlakyStore]:
    flaky = FlakyStore(SQLiteStore(db_path))
    flaky.down.set()
    writer = PredictionWriter(lambda: flaky, spill_path, drain_s=drain_s, **FAST).start()
    writer.submit_many(make_records(300))
    wait_until(lambda: writer.stats()["spilled"] >= 150)  # half of a failed batch is stored
    return writer, flaky


def test_a_store_back_during_the_drain_gets_every_spilled_record(
    db_path: Path, spill_path: Path
) -> None:
    writer, flaky = _spilled_writer(db_path, spill_path, drain_s=10)
    threading.Timer(0.5, flaky.down.clear).start()  # back after close() began
    writer.close(timeout=20)
    assert flaky.inner.count() == 300 and spill_path.stat().st_size == 0
    assert writer.stats()["dropped"] == 0
    flaky.inner.close()


def test_the_drain_is_bounded_and_keeps_the_spill_when_the_store_stays_down(
    db_path: Path, spill_path: Path
) -> None:
    writer, flaky = _spilled_writer(db_path, spill_path, drain_s=0.5)
    started = time.monotonic()
    writer.close(timeout=10)
    assert time.monotonic() - started < 3
    assert spill_path.stat().st_size > 0  # replayed by the next start if the volume survives
    flaky.down.clear()
    again = PredictionWriter(lambda: flaky, spill_path, **FAST).start()
    again.close()
    assert flaky.inner.count() == 300 and spill_path.stat().st_size == 0
    flaky.inner.close()
