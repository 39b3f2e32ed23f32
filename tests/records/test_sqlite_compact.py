"""SQLite specifics of compact batches: one table row per request, pruning, the fallbacks."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from test_contract_batches import T0, batch

from reggaeton.records import PredictionRecord
from reggaeton.records.sqlite import SQLiteStore


def table_rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_service_batch_is_one_table_row(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    assert store.write_batches([batch("c", 1000)]) == 1000
    assert table_rows(db, "prediction_batches") == 1 and table_rows(db, "predictions") == 0
    assert store.count() == 1000 and len(store.export()) == 1000
    store.close()


def test_other_ids_and_single_rows_stay_rows(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    odd = batch("x", 3, request_ids=["x-0", "x-2", "x-1"])  # not <prefix>-<index> in order
    single = batch("s", 1, request_ids=["s"])
    assert store.write_batches([odd, single]) == 4
    assert table_rows(db, "predictions") == 4 and table_rows(db, "prediction_batches") == 0
    store.close()


def test_a_batch_already_stored_as_rows_is_not_stored_twice(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    b = batch("u", 4)
    store.write_many(b.records())  # written as rows by an earlier version, then replayed
    assert store.write_batches([b]) == 0
    assert store.count() == 4 and table_rows(db, "prediction_batches") == 0
    store.close()


def test_pruning_deletes_whole_old_batches_with_their_feedback(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    store.write_many(
        [
            PredictionRecord(
                "old-row", "m:1", {"tempo": 1.0}, 0.5, 1, timestamp=T0 - timedelta(days=2)
            )
        ]
    )
    store.write_batches(
        [
            batch("o1", 3, T0 - timedelta(days=1)),
            batch("o2", 3, T0),
            batch("new", 3, T0 + timedelta(days=5)),
        ]
    )
    store.add_feedback("o1-1", 1)
    assert store.prune(T0 + timedelta(days=1), max_rows=4) == 4  # the row and batch o1
    assert store.get("o1-1") is None and store.feedback_history("o1-1") == []
    assert table_rows(db, "batch_feedback") == 0
    assert store.prune(T0 + timedelta(days=1), max_rows=4) == 3  # o2
    assert store.prune(T0 + timedelta(days=1), max_rows=4) == 0
    assert list(store.export()["request_id"]) == ["new-0", "new-1", "new-2"]
    store.close()


def test_a_log_written_before_compact_batches_opens_and_reads(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    store.write_many([PredictionRecord("r1", "m:1", {"tempo": 2.0}, 0.5, 1, timestamp=T0)])
    store.close()
    with sqlite3.connect(db) as conn:  # the layout of the previous version
        conn.executescript("DROP TABLE prediction_batches; DROP TABLE batch_feedback;")
    again = SQLiteStore(db)  # adds the tables, keeps the rows
    assert again.get("r1")["tempo"] == 2.0
    assert again.write_batches([batch("n", 2, T0 + timedelta(seconds=1))]) == 2
    assert list(again.export()["request_id"]) == ["r1", "n-0", "n-1"]
    again.close()
