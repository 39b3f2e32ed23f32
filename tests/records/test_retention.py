"""Bounded disk (issue 10, item 3): expired predictions go, in bounded deletes; Mongo uses TTL."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from monitoring.config import load_config
from reggaeton.records import PredictionRecord, open_store
from reggaeton.records.mongo import MongoStore
from reggaeton.records.retention import DEFAULT_RETENTION_DAYS, LATE_FEEDBACK_MARGIN_DAYS
from reggaeton.records.sqlite import SQLiteStore
from reggaeton.timeutil import utcnow
from service.config import ServiceConfig
from service.retention import Pruner
from service.writer import PredictionWriter

DAYS = 30.0


def aged(n: int, days_ago: float, prefix: str) -> list[PredictionRecord]:
    t = utcnow() - timedelta(days=days_ago)
    return [
        PredictionRecord(
            f"{prefix}{i:06d}",
            "reggaeton_clf:t",
            {"tempo": float(i)},
            0.5,
            i % 2,
            1.0,
            "http",
            t + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]


class CountingStore:
    """A real store recording what every prune transaction deleted."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner, self.chunks = inner, []

    def prune(self, before, max_rows):  # noqa: ANN001, ANN201
        n = self.inner.prune(before, max_rows)
        self.chunks.append(n)
        return n

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)


def test_sqlite_retention_run_prunes_only_expired_rows_in_bounded_deletes(
    tmp_path: Path, capsys
) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    old, edge, new = aged(12_345, 45, "old"), aged(100, DAYS - 0.5, "edge"), aged(1_000, 1, "new")
    for part in (old, edge, new):
        store.write_many(part)
    for rid in ("old000007", "old012000", "edge000003", "new000005"):
        assert store.add_feedback(rid, 1) and store.add_feedback(rid, 0)
    chunk = 5_000
    counting = CountingStore(store)
    pruner = Pruner(DAYS, chunk_rows=chunk)
    assert pruner.due()
    deleted = pruner.step(counting)
    while pruner.more:
        deleted += pruner.step(counting)
    assert counting.chunks == [5_000, 5_000, 2_345]  # bounded: at most `chunk` per transaction
    assert deleted == len(old)
    assert store.count() == len(edge) + len(new)
    assert store.get("old000007") is None and store.feedback_history("old000007") == []
    assert store.feedback_history("old012000") == []
    assert store.get("edge000003")["feedback_label"] == 0
    assert len(store.feedback_history("edge000003")) == 2  # kept rows keep their history
    assert len(store.feedback_history("new000005")) == 2
    assert not pruner.due()  # nothing left: the next pass waits for the interval
    assert store.prune(utcnow() - timedelta(days=DAYS), chunk) == 0
    with capsys.disabled():
        print(
            f"\nretention run ({DAYS:g} days, chunks of {chunk}): deleted {deleted} "
            f"(per transaction {counting.chunks}), kept {store.count()} "
            f"({len(edge)} at {DAYS - 0.5:g} days, {len(new)} at 1 day)"
        )
    store.close()


def test_the_writer_prunes_between_batches_and_keeps_logging(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    seed = SQLiteStore(db)
    seed.write_many(aged(7_000, 40, "old"))
    seed.close()
    writer = PredictionWriter(
        lambda: SQLiteStore(db),
        tmp_path / "spill.jsonl",
        batch_size=100,
        flush_interval=0.05,
        retention=Pruner(DAYS, chunk_rows=1_000),
    )
    writer.start()
    fresh = aged(3_000, 0, "new")
    for start in range(0, len(fresh), 100):
        writer.submit_many(fresh[start : start + 100])
    assert writer.flush(timeout=30)
    deadline = time.monotonic() + 30
    while writer.stats()["pruned"] < 7_000:  # pruning goes on between batches, after them
        assert time.monotonic() < deadline, f"pruning stalled: {writer.stats()}"
        time.sleep(0.02)
    writer.close()
    stats = writer.stats()
    check = SQLiteStore(db)
    assert stats["pruned"] == 7_000 and check.count() == 3_000
    assert stats["written"] == 3_000 and stats["dropped"] == 0
    check.close()


def test_retention_disabled_keeps_everything(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    store.write_many(aged(10, 400, "old"))
    assert Pruner(0).due() is False
    assert Pruner(0).step(store) == 0 and store.count() == 10
    store.close()


@pytest.mark.parametrize("kind", ["mongomock", pytest.param("mongodb", marks=pytest.mark.mongo)])
def test_mongodb_expires_with_ttl_indexes_on_bson_dates(kind: str) -> None:
    if kind == "mongomock":
        uri = f"mongomock://{uuid.uuid4().hex}/reggaeton_test"
    else:
        import os

        uri = os.environ.get("MONGODB_URI") or pytest.skip("MONGODB_URI not set")
        uri = uri.rstrip("/") + f"/reggaeton_test_{uuid.uuid4().hex[:12]}"
    store = open_store(uri, retention_days=DAYS)
    assert isinstance(store, MongoStore)
    try:
        store.write_many(aged(50, 45, "old") + aged(20, 1, "new"))
        assert store.add_feedback("new000001", 1)
        ttl = store.predictions.index_information()["timestamp_ttl"]
        assert ttl["key"] == [("timestamp", 1)] and ttl["expireAfterSeconds"] == 30 * 86400
        assert store.feedback.index_information()["at_ttl"]["expireAfterSeconds"] == 30 * 86400
        doc = store.predictions.find_one({"request_id": "new000001"})
        assert doc["timestamp"].tzinfo is not None  # a BSON date: what TTL needs
        if kind == "mongomock":  # mongomock applies TTL on read; a server within 60 s
            assert store.count() == 20 and store.get("old000001") is None
        reader = MongoStore(store.client, store.predictions.database.name)  # no retention
        reader.write_many(aged(1, 0, "reader"))
        assert "timestamp_ttl" in store.predictions.index_information()  # left alone
        shorter = MongoStore(store.client, store.predictions.database.name, retention_days=7)
        shorter.write_many(aged(1, 0, "short"))
        assert (
            store.predictions.index_information()["timestamp_ttl"]["expireAfterSeconds"]
            == 7 * 86400
        )
        forever = MongoStore(store.client, store.predictions.database.name, retention_days=0)
        forever.write_many(aged(1, 0, "forever"))
        assert "timestamp_ttl" not in store.predictions.index_information()
        assert store.prune(utcnow(), 10) == 0  # nothing for the writer to do on MongoDB
    finally:
        store.client.drop_database(store.predictions.database.name)


def test_retention_settings_come_from_one_place() -> None:
    config = ServiceConfig.from_env({})
    assert config.log_retention_days == DEFAULT_RETENTION_DAYS == 30
    assert ServiceConfig.from_env({"PREDICTION_LOG_RETENTION_DAYS": "90"}).log_retention_days == 90
    with pytest.raises(ValueError, match="PREDICTION_LOG_RETENTION_DAYS"):
        ServiceConfig.from_env({"PREDICTION_LOG_RETENTION_DAYS": "-1"})
    monitor = load_config(environ={})
    late = monitor.performance.late_feedback_days
    assert late == DEFAULT_RETENTION_DAYS - LATE_FEEDBACK_MARGIN_DAYS
    assert late + monitor.max_window_hours / 24 < monitor.retention_days
    with pytest.raises(ValueError, match="late_feedback_days"):
        load_config(environ={"PREDICTION_LOG_RETENTION_DAYS": "20"})
