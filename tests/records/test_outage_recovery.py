"""A store that heals itself: after any outage, writes and feedback work again, no restart.

Issue 10, item 2: an SQLite file that was not writable when a connection opened left that
connection read-only forever (the writer spilled for good, ``/feedback`` answered 503 on the
thread that had called it during the outage). The same scenario runs against MongoDB with a
client that fails, then answers again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outage import OUTAGE_BACKENDS, MongoOutage, make_outage, on_one_thread

from reggaeton.records import PredictionRecord
from reggaeton.records.base import StoreUnavailable
from service.writer import PredictionWriter

T0 = datetime(2026, 3, 1, tzinfo=UTC)
RETRY = (0.05, 0.5)
"""Writer backoff (first, max seconds): recovery must come within one retry interval."""


def recs(n: int, start: int = 0) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            f"o{i:05d}",
            "reggaeton_clf:t",
            {"tempo": float(i)},
            0.5,
            1,
            1.0,
            "http",
            T0 + timedelta(milliseconds=i),
        )
        for i in range(start, start + n)
    ]


@pytest.fixture(params=OUTAGE_BACKENDS)
def outage(request: pytest.FixtureRequest, tmp_path: Path):
    o = make_outage(request.param, tmp_path)
    yield o
    o.restore()
    if isinstance(o, MongoOutage):
        o.cleanup()


def test_a_store_opened_during_an_outage_works_once_it_ends(outage) -> None:
    seed = outage.open()
    seed.write_many(recs(5))  # logged before the outage
    seed.close()
    outage.break_()
    store = outage.open()  # SQLite: the silent read-only fallback happens here
    run, stop = on_one_thread()  # one request thread, as in a service worker
    try:
        with pytest.raises(StoreUnavailable):  # the shared error, whatever the backend
            run(store.write_many, recs(5, start=5))
        with pytest.raises(StoreUnavailable):
            run(store.add_feedback, "o00001", 1)
        outage.restore()
        assert run(store.write_many, recs(5, start=5)) == 5  # same store object, same thread
        assert run(store.add_feedback, "o00001", 1) is True
        assert [run(store.add_feedback, f"o{i:05d}", 0) for i in range(10)] == [True] * 10
        assert store.write_many(recs(2, start=10)) == 2  # and from any other thread
        assert store.count() == 12
        assert store.get("o00001")["feedback_label"] == 0
    finally:
        stop()
        store.close()


def test_writer_and_feedback_recover_within_one_retry_interval(
    outage, tmp_path: Path, capsys
) -> None:
    seed = outage.open()
    seed.write_many(recs(10))
    seed.close()
    outage.break_()
    writer = PredictionWriter(
        outage.open,
        tmp_path / "spill" / "p.jsonl",
        batch_size=50,
        flush_interval=0.05,
        backoff=RETRY,
    ).start()
    feedback_store = outage.open()
    run, stop = on_one_thread()
    try:
        assert writer.submit_many(recs(200, start=10)) == 200
        deadline = time.monotonic() + 30
        while writer.stats()["write_failures"] + writer.stats()["probe_failures"] < 3:
            assert time.monotonic() < deadline, "the writer never tried the broken store"
            time.sleep(0.02)
        assert writer.stats()["spilled"] == 200
        with pytest.raises(StoreUnavailable):  # /feedback answers 503 meanwhile
            run(feedback_store.add_feedback, "o00003", 1)

        outage.restore()
        restored = time.monotonic()
        assert writer.flush(timeout=30), f"writer still stuck after the outage: {writer.stats()}"
        recovered = time.monotonic() - restored
        answers = [run(feedback_store.add_feedback, f"o{i:05d}", 1) for i in range(0, 210, 10)]
        feedback_s = time.monotonic() - restored
        assert answers == [True] * len(answers)  # old and replayed records, that thread
        assert feedback_store.count() == 210
        stats = writer.stats()
        assert stats["replayed"] == 200 and stats["dropped"] == 0 and not stats["spill_pending"]
        with capsys.disabled():
            print(
                f"\n[{type(feedback_store).__name__}] read-only outage ended: spill of 200 "
                f"replayed in {recovered:.3f} s, {len(answers)} feedback calls on the "
                f"outage's thread answered by {feedback_s:.3f} s (retry interval at most "
                f"{RETRY[1]} s; {stats['write_failures']} write and "
                f"{stats['probe_failures']} probe failures during the outage)"
            )
    finally:
        stop()
        writer.close()
        feedback_store.close()
