"""Backend specifics beyond the contract: URIs, paths, failing fast, threads."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reggaeton.records import PredictionRecord, open_store
from reggaeton.records.base import RecordRejected, StoreUnavailable
from reggaeton.records.mongo import MongoStore
from reggaeton.records.sqlite import SQLiteStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def records(n: int, prefix: str) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            f"{prefix}-{i}", "m:1", {"tempo": 1.0}, 0.1, 0, timestamp=T0 + timedelta(seconds=i)
        )
        for i in range(n)
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mongo_uri_names_database_and_collections() -> None:
    store = MongoStore.from_uri(
        "mongodb://user:pw@127.0.0.1:1,127.0.0.1:2/musicdb?replicaSet=rs0"
        "&collection=preds&feedback_collection=fb&runs_collection=runs"
    )
    assert store.predictions.full_name == "musicdb.preds"
    assert store.feedback.full_name == "musicdb.fb"
    assert store.runs.full_name == "musicdb.runs"
    assert store.client.options.replica_set_name == "rs0"
    assert store.client.options.server_selection_timeout == 2.0  # fails fast by default
    assert store.client.codec_options.tz_aware
    store.close()
    default = MongoStore.from_uri("mongodb://127.0.0.1:1")
    assert default.predictions.full_name == "reggaeton.predictions"
    assert default.runs.full_name == "reggaeton.monitoring_runs"
    default.close()
    with pytest.raises(ValueError, match="collection"):
        MongoStore.from_uri("mongodb://127.0.0.1:1/db?collection=")


def test_mongo_outage_fails_fast_with_the_shared_error() -> None:
    uri = f"mongodb://127.0.0.1:{closed_port()}/db?serverSelectionTimeoutMS=200"
    store = open_store(uri)
    assert store.client.options.server_selection_timeout == 0.2  # the URI wins
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.write_many(records(2, "x"))
    store.close()


def test_mongomock_uri_shares_one_server_per_name() -> None:
    a = open_store("mongomock://shared-test/db1")
    b = open_store("mongomock://shared-test/db1")
    other = open_store("mongomock://other-test/db1")
    a.write_many(records(3, "m"))
    assert b.count() == 3 and other.count() == 0


def test_sqlite_relative_path_and_parent_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/deep/er/predictions.db")
    assert store.path == tmp_path / "var" / "deep" / "er" / "predictions.db"
    store.write_many(records(1, "p"))
    assert store.path.exists()
    store.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs/p.db")
    assert absolute.path == tmp_path / "abs" / "p.db"
    absolute.close()
    with pytest.raises(ValueError, match="in-memory"):
        SQLiteStore(":memory:")
    with pytest.raises(ValueError, match="scheme"):
        open_store("postgres://x")


def test_sqlite_is_safe_across_threads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(10):
                store.write_many(records(20, f"t{k}-{j}"))
                store.add_feedback(f"t{k}-{j}-0", 1)
                assert store.count() >= 20
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    chunks = [len(f) for f in store.iter_window(chunk_size=64)]  # reads while others write
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 4 * 10 * 20
    assert sum(chunks) <= 800
    assert int(store.export()["feedback_label"].sum()) == 40
    store.close()


def test_sqlite_never_skips_a_constraint_violation_silently(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    bad = records(2, "bad")[1]
    bad.model_version = None  # NOT NULL: INSERT OR IGNORE would have dropped it quietly
    with pytest.raises(RecordRejected, match="model_version"):
        store.write_many([records(1, "good")[0], bad])
    assert store.count() == 0  # the batch is rolled back, never silently shortened
    store.close()


def test_sqlite_mixed_batch_keeps_every_value(tmp_path: Path) -> None:
    """One batch mixing feature sets, number types and timestamps (the fast and slow paths)."""
    import numpy as np

    store = SQLiteStore(tmp_path / "p.db")
    full = {"tempo": 120.0, "energy": 0.5, "key": 3}
    batch = [
        PredictionRecord("a", "m:1", dict(full), 0.25, 1, 1.5, timestamp=T0),
        PredictionRecord(
            "b",
            "m:1",
            dict(full),
            np.float64(0.5),
            np.int64(0),
            2,
            timestamp=T0 + timedelta(seconds=1),
        ),
        PredictionRecord("c", "m:1", {"tempo": 99.0}, 1, 1, 0.0, timestamp=T0),
        PredictionRecord("d", "m:1", {**full, "brand_new": 7.0}, 0.0, 0, 0.0, timestamp=T0),
    ]
    assert store.write_many(batch) == 4
    assert store.write_many(batch) == 0  # idempotent on request_id
    got = {rid: store.get(rid) for rid in "abcd"}
    assert got["a"]["probability"] == 0.25 and got["a"]["latency_ms"] == 1.5
    assert got["a"]["energy"] == 0.5 and got["a"]["key"] == 3 and "brand_new" not in got["a"]
    assert (got["b"]["prediction"], got["b"]["latency_ms"]) == (0, 2.0)
    assert got["b"]["timestamp"] == T0 + timedelta(seconds=1)
    assert got["c"]["tempo"] == 99.0 and "energy" not in got["c"]
    assert got["d"]["brand_new"] == 7.0
    bad = PredictionRecord("e", "m:1", {"other_new": 1.0}, 0.5, 2)
    with pytest.raises(ValueError, match="prediction"):
        store.write_many([PredictionRecord("f", "m:1", dict(full), 0.5, 1), bad])
    assert store.count() == 4
    assert "other_new" not in store.export().columns  # refused before the table changed
    store.close()


def test_sqlite_large_batch_spans_several_statements(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    store._max_vars = 8 * 8  # 8 columns (one feature), 8 rows per INSERT: 3 full and a rest
    batch = records(30, "big")
    assert store.write_many(batch[:5]) == 5
    assert store.write_many(batch) == 25  # the first five are skipped, the rest inserted
    assert list(store.export()["request_id"]) == [r.request_id for r in batch]
    store.close()
