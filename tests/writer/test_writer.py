"""PredictionWriter against real SQLite files: batching, outages, spill, replay, losses."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest
from writer_helpers import FlakyStore, make_records, wait_until

from reggaeton.records.sqlite import SQLiteStore
from service.spill import SpillFile, rejected_path
from service.writer import PredictionWriter

FAST = dict(batch_size=50, flush_interval=0.05, backoff=(0.02, 0.1))


def ids_in_insert_order(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM predictions ORDER BY rowid")]


def test_close_writes_every_record(db_path: Path, spill_path: Path) -> None:
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    records = make_records(1234)
    assert all(writer.submit(r) for r in records[:34])
    assert writer.submit_many(records[34:]) == 1200
    writer.close(timeout=30)
    stats = writer.stats()
    assert stats["written"] == stats["inserted"] == 1234
    assert stats["queue_depth"] == stats["dropped"] == stats["spilled"] == 0
    assert ids_in_insert_order(db_path) == [r.request_id for r in records]
    assert writer.submit(make_records(1, start=5000)[0]) is True  # closed: spilled
    assert writer.stats()["dropped"] == 0 and writer.stats()["overflowed"] == 1


def test_a_backlog_is_written_in_bigger_batches(db_path: Path, spill_path: Path) -> None:
    gate = threading.Event()
    sizes: list[int] = []

    class Recording(SQLiteStore):
        def write_many(self, records):  # noqa: ANN001, ANN202
            sizes.append(len(records))
            return super().write_many(records)

    def slow_factory() -> SQLiteStore:
        gate.wait(30)  # the store comes up late: a backlog builds meanwhile
        return Recording(db_path)

    writer = PredictionWriter(
        slow_factory, spill_path, batch_size=10, max_batch=40, flush_interval=0.05
    ).start()
    records = make_records(500)
    assert writer.submit_many(records) == 500
    gate.set()
    writer.close(timeout=30)
    assert writer.stats()["written"] == 500
    assert max(sizes) == 40 and sum(sizes) == 500  # never more than max_batch at once
    assert ids_in_insert_order(db_path) == [r.request_id for r in records]


def test_flush_makes_a_record_visible_at_once(db_path: Path, spill_path: Path) -> None:
    writer = PredictionWriter(
        lambda: SQLiteStore(db_path), spill_path, batch_size=500, flush_interval=60.0
    ).start()
    store = SQLiteStore(db_path)
    try:
        record = make_records(1)[0]
        writer.submit(record)
        assert writer.flush(timeout=10) is True  # far shorter than flush_interval
        assert store.get(record.request_id)["tempo"] == 0.0
    finally:
        writer.close()
        store.close()


def test_real_sqlite_lock_outage_spills_then_replays_in_order(
    db_path: Path, spill_path: Path
) -> None:
    store = SQLiteStore(db_path)  # creates the schema
    writer = PredictionWriter(
        lambda: SQLiteStore(db_path, busy_timeout_ms=20), spill_path, **FAST
    ).start()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: writes fail
    first, second, third = make_records(120), make_records(80, 120), make_records(100, 200)
    writer.submit_many(first)
    wait_until(lambda: writer.stats()["spilled"] >= 120)
    writer.submit_many(second)  # queued behind the spill even if the store came back
    wait_until(lambda: writer.stats()["spilled"] >= 200)
    assert store.count() == 0 and writer.flush(timeout=0.2) is False
    blocker.execute("ROLLBACK")
    blocker.close()
    writer.submit_many(third)
    assert writer.flush(timeout=20) is True
    writer.close()
    stats = writer.stats()
    assert stats["write_failures"] >= 1 and stats["replayed"] == stats["spilled"] >= 200
    assert stats["inserted"] == stats["written"] == store.count() == 300
    assert stats["dropped"] == 0
    assert ids_in_insert_order(db_path) == [r.request_id for r in first + second + third]
    assert spill_path.stat().st_size == 0  # emptied only after the complete replay
    store.close()


def test_partial_writes_and_failed_replays_leave_no_duplicates(
    db_path: Path, spill_path: Path
) -> None:
    inner = SQLiteStore(db_path)
    flaky = FlakyStore(inner)
    flaky.down.set()
    writer = PredictionWriter(lambda: flaky, spill_path, **FAST).start()
    records = make_records(500)
    writer.submit_many(records[:250])
    wait_until(lambda: writer.stats()["spilled"] >= 250)
    assert 0 < inner.count() < 250  # half batches landed before each failure
    wait_until(lambda: writer.stats()["probe_failures"] >= 1)
    flaky.down.clear()
    writer.submit_many(records[250:])
    assert writer.flush(timeout=20) is True
    writer.close()
    assert inner.count() == 500
    assert sorted(ids_in_insert_order(db_path)) == [r.request_id for r in records]
    stats = writer.stats()
    assert stats["written"] == 500 and stats["dropped"] == 0
    assert stats["replayed"] >= 250
    assert stats["inserted"] < 500  # the halves stored before each failure were skipped
    inner.close()


def test_queue_overflow_spills_from_the_request_thread_and_loses_nothing(
    db_path: Path, spill_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()

    def slow_factory() -> SQLiteStore:
        gate.wait(30)  # the store is slow to come up: the writer thread is stuck here
        return SQLiteStore(db_path)

    writer = PredictionWriter(
        slow_factory, spill_path, max_queue=100, batch_size=10, flush_interval=0.05
    ).start()
    records = make_records(400)
    with caplog.at_level(logging.WARNING, logger="service.writer"):
        accepted = writer.submit_many(records[:150])
        wait_until(lambda: writer.stats()["queue_depth"] <= 100)
        accepted += sum(writer.submit(r) for r in records[150:])
    stats = writer.stats()
    assert accepted == 400 and stats["dropped"] == 0
    # the store is slow, not failing: only the overflow goes through the file, the writer's
    # own batches go straight to the store
    assert stats["overflowed"] >= 200 and stats["spilled"] == stats["overflowed"]
    assert stats["queue_depth"] + stats["spilled"] <= 400
    assert len(spill_path.read_bytes().splitlines()) == stats["spilled"]
    assert "queue full" in caplog.text and "spilled to" in caplog.text
    gate.set()
    assert writer.flush(timeout=30) is True  # waits for the spill's replay too
    writer.close(timeout=30)
    stored = ids_in_insert_order(db_path)
    assert sorted(stored) == [r.request_id for r in records]  # each exactly once
    assert writer.stats()["written"] == 400 and spill_path.stat().st_size == 0


def test_overflow_spills_racing_the_replay_lose_nothing(db_path: Path, spill_path: Path) -> None:
    """Four threads outrun a tiny queue while the writer replays what they spill: the
    replay's final truncate must never swallow a record appended after its last read."""
    writer = PredictionWriter(
        lambda: SQLiteStore(db_path),
        spill_path,
        max_queue=20,
        batch_size=10,
        flush_interval=0.01,
        backoff=(0.01, 0.05),
    ).start()
    parts = [make_records(1500, start=k * 1500) for k in range(4)]

    def produce(part: list) -> None:
        for i in range(0, len(part), 25):
            writer.submit_many(part[i : i + 25])

    threads = [threading.Thread(target=produce, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(timeout=60) is True
    writer.close(timeout=30)
    stats = writer.stats()
    assert stats["overflowed"] > 0 and stats["dropped"] == 0
    assert sorted(ids_in_insert_order(db_path)) == sorted(r.request_id for p in parts for r in p)
    assert spill_path.stat().st_size == 0


def test_a_spill_appended_between_the_replays_last_read_and_its_truncate_is_kept(
    db_path: Path, spill_path: Path
) -> None:
    """The exact race: a request thread spills right after the replay read the end of the
    file. The replay must not empty the file over that record."""
    flaky = FlakyStore(SQLiteStore(db_path))
    writer = PredictionWriter(lambda: flaky, spill_path, **FAST)
    late = make_records(3, start=100)
    real_read, real_size, armed, raced = writer.spill.read, writer.spill.size, [], []

    def read(offset: int, n: int):
        out = real_read(offset, n)
        if not out[0] and not raced and not flaky.down.is_set():  # the replay reached EOF
            armed.append(True)
        return out

    def size() -> int:
        value = real_size()
        if armed and not raced:  # the replay's "is this the end?" check just ran
            raced.append(True)
            writer.max_queue = 0  # the queue is "full": the next submit spills
            t = threading.Thread(target=writer.submit_many, args=(late,))
            t.start()
            t.join()
            writer.max_queue = 100_000
        return value

    writer.spill.read, writer.spill.size = read, size
    flaky.down.set()
    writer.start()
    writer.submit_many(make_records(20))
    wait_until(lambda: writer.stats()["spilled"] >= 20)
    flaky.down.clear()  # the store is back: the replay runs
    assert writer.flush(timeout=20) is True
    writer.close(timeout=10)
    assert raced
    assert sorted(ids_in_insert_order(db_path)) == sorted(
        r.request_id for r in make_records(20) + late
    )
    flaky.inner.close()


def test_records_submitted_after_close_go_to_the_spill_for_the_next_start(
    db_path: Path, spill_path: Path
) -> None:
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    writer.submit_many(make_records(5))
    writer.close(timeout=10)
    assert writer.submit_many(make_records(3, start=5)) == 3  # a late in-flight request
    assert writer.stats()["dropped"] == 0 and writer.stats()["overflowed"] == 3
    again = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    assert again.flush(timeout=20) is True
    again.close()
    assert sorted(ids_in_insert_order(db_path)) == [r.request_id for r in make_records(8)]


@pytest.mark.parametrize("where", ["disk_full", "not_a_directory"])
def test_unwritable_spill_is_counted_as_dropped(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    if where == "disk_full":
        if not Path("/dev/full").exists():
            pytest.skip("/dev/full not available")
        spill = Path("/dev/full")  # every write fails with ENOSPC
    else:
        (tmp_path / "blocker").write_text("a file, not a folder")
        spill = tmp_path / "blocker" / "spill.jsonl"

    def broken() -> SQLiteStore:
        raise ConnectionError("store down (simulated)")

    writer = PredictionWriter(broken, spill, **FAST).start()
    with caplog.at_level(logging.ERROR, logger="service.writer"):
        assert writer.submit_many(make_records(120)) == 120  # predictions still succeed
        wait_until(lambda: writer.stats()["dropped"] == 120)
    writer.close(timeout=5)
    stats = writer.stats()
    assert stats["spilled"] == 0 and stats["written"] == 0 and stats["write_failures"] >= 1
    assert "unwritable" in caplog.text


def test_spill_left_by_a_dead_process_is_replayed_on_start(db_path: Path, spill_path: Path) -> None:
    def down() -> SQLiteStore:
        raise ConnectionError("store down (simulated)")

    first = PredictionWriter(down, spill_path, **FAST).start()
    first.submit_many(make_records(70))
    first.close(timeout=5)  # store still down: everything stays in the spill file
    assert first.stats()["spilled"] == 70 and spill_path.stat().st_size > 0
    with open(spill_path, "ab") as fh:
        fh.write(b'{"request_id": "cut-sh')  # the dead process was cut mid-append
    second = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    second.submit_many(make_records(30, start=70))
    assert second.flush(timeout=20) is True
    second.close()
    assert ids_in_insert_order(db_path) == [r.request_id for r in make_records(100)]
    assert second.stats()["replayed"] >= 70 and spill_path.stat().st_size == 0
    assert second.stats()["written"] == 100 and second.stats()["dropped"] == 1


def test_spill_file_skips_a_line_cut_by_a_crash(spill_path: Path) -> None:
    spill = SpillFile(spill_path)
    spill.append(make_records(2))
    with open(spill_path, "ab") as fh:
        fh.write(b'{"request_id": "cut-sh')  # crash in the middle of an append
    spill.append(make_records(1, start=2))
    records, offset, corrupt = spill.read(0, 100)
    assert [r.request_id for r in records] == ["r00000", "r00001", "r00002"]
    assert corrupt == 1 and offset == spill.size()
    assert records[0].timestamp == make_records(1)[0].timestamp


def test_a_record_the_store_refuses_does_not_block_the_log(db_path: Path, spill_path: Path) -> None:
    records = make_records(41)
    records[20].probability = float("nan")  # NOT NULL column: SQLite refuses this one
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    writer.submit_many(records)
    assert writer.flush(timeout=20) is True
    writer.close()
    stats = writer.stats()
    assert stats["rejected"] == 1 and stats["written"] == 40 and stats["dropped"] == 0
    assert len(ids_in_insert_order(db_path)) == 40
    kept = SpillFile(rejected_path(spill_path)).read(0, 10)[0]
    assert [r.request_id for r in kept] == [records[20].request_id]


def test_concurrent_submitters_lose_nothing(db_path: Path, spill_path: Path) -> None:
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    parts = [make_records(300, start=k * 300) for k in range(4)]
    threads = [threading.Thread(target=lambda p=p: [writer.submit(r) for r in p]) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close(timeout=30)
    assert sorted(ids_in_insert_order(db_path)) == sorted(r.request_id for p in parts for r in p)
    assert writer.stats()["written"] == 1200 and writer.stats()["dropped"] == 0
