"""The writer with columnar batches (the service's path): outage, spill, replay, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from writer_helpers import FlakyStore, make_batch, make_records, wait_until

from reggaeton.records.base import PredictionBatch
from reggaeton.records.sqlite import SQLiteStore
from service.spill import SpillFile, rejected_path
from service.writer import PredictionWriter

FAST = dict(batch_size=50, flush_interval=0.05, backoff=(0.02, 0.1))


def stored_ids(db: Path) -> list[str]:
    """Every request_id in the log, oldest first, read through the store (a batch of the
    service's form is one compact row, not rows of ``predictions``)."""
    store = SQLiteStore(db)
    try:
        return list(store.export()["request_id"])
    finally:
        store.close()


def test_batches_count_in_rows_and_all_reach_the_log(db_path: Path, spill_path: Path) -> None:
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    batches = [make_batch(100, f"q{k}") for k in range(5)]
    tickets = [writer.submit_ticketed(b) for b in batches]
    assert [n for n, _ in tickets] == [100] * 5 and tickets[-1][1] == 500  # tickets in rows
    assert writer.flush(timeout=20) is True and writer.handled(500)
    writer.close()
    assert writer.stats()["written"] == writer.stats()["inserted"] == 500
    assert stored_ids(db_path) == [rid for b in batches for rid in b.request_ids]


def test_batches_spilled_during_an_outage_are_replayed_whole(
    db_path: Path, spill_path: Path
) -> None:
    flaky = FlakyStore(SQLiteStore(db_path))
    flaky.down.set()
    writer = PredictionWriter(lambda: flaky, spill_path, **FAST).start()
    batches = [make_batch(30, f"o{k}") for k in range(4)]
    for b in batches:
        writer.submit_ticketed(b)
    wait_until(lambda: writer.stats()["spilled"] >= 120)
    lines = spill_path.read_bytes().splitlines()
    assert len(lines) == 4 and all(b'"kind":"batch"' in line for line in lines)  # columnar
    flaky.down.clear()
    assert writer.flush(timeout=20) is True
    writer.close()
    assert sorted(stored_ids(db_path)) == sorted(r for b in batches for r in b.request_ids)
    assert writer.stats()["replayed"] == 120 and spill_path.stat().st_size == 0
    flaky.inner.close()


def test_a_full_queue_spills_a_batch_whole_and_loses_none(db_path: Path, spill_path: Path) -> None:
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, max_queue=150, **FAST)
    first, second = make_batch(100, "f"), make_batch(100, "s")
    assert writer.submit_ticketed(first)[0] == 100
    assert writer.submit_ticketed(second)[0] == 100  # no room for 100 more: spilled whole
    assert writer.stats()["overflowed"] == 100 and writer.stats()["queue_depth"] == 100
    writer.start()
    assert writer.flush(timeout=20) is True
    writer.close()
    assert sorted(stored_ids(db_path)) == sorted([*first.request_ids, *second.request_ids])


def test_an_old_spill_of_records_and_a_new_one_of_batches_replay_together(
    db_path: Path, spill_path: Path
) -> None:
    spill = SpillFile(spill_path)
    old = make_records(3)
    assert spill.append(old) == 3  # a file left by a version that spilled records
    assert spill.append([make_batch(4, "n")]) == 4
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    assert writer.flush(timeout=20) is True
    writer.close()
    assert sorted(stored_ids(db_path)) == sorted(
        [r.request_id for r in old] + [f"n-{i}" for i in range(4)]
    )


def test_one_bad_row_of_a_batch_is_set_aside_alone(db_path: Path, spill_path: Path) -> None:
    bad = make_batch(10, "x")
    bad.probability[4] = np.nan  # the store refuses this row only
    writer = PredictionWriter(lambda: SQLiteStore(db_path), spill_path, **FAST).start()
    writer.submit_ticketed(bad)
    writer.submit_ticketed(make_batch(5, "ok"))
    assert writer.flush(timeout=20) is True
    writer.close()
    stats = writer.stats()
    assert stats["rejected"] == 1 and stats["written"] == 14 and stats["dropped"] == 0
    assert "x-4" not in stored_ids(db_path) and len(stored_ids(db_path)) == 14
    kept = SpillFile(rejected_path(spill_path)).read(0, 10)[0]
    assert [r.request_id for r in kept] == ["x-4"]


def test_spill_read_counts_rows_and_reads_a_large_batch_whole(spill_path: Path) -> None:
    spill = SpillFile(spill_path, fsync=False)
    spill.append([make_batch(500, "big"), make_batch(2, "small", start=500)])
    entries, offset, corrupt = spill.read(0, 100)
    assert len(entries) == 1 and isinstance(entries[0], PredictionBatch)
    assert len(entries[0]) == 500 and corrupt == 0
    rest, end, _ = spill.read(offset, 100)
    assert [len(e) for e in rest] == [2] and end == spill.size()
