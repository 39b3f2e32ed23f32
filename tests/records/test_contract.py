"""The RecordStore contract, run against every backend (see conftest.BACKENDS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from reggaeton.records import PredictionRecord, RecordStore
from reggaeton.records.base import BASE_COLUMNS
from reggaeton.schema import FEATURES

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SCHEMA_NAMES = [f.name for f in FEATURES]


def rec(i: int, ts: datetime | None = None, **features: float) -> PredictionRecord:
    """Record number i, predicted i seconds after T0 unless ``ts`` is given."""
    return PredictionRecord(
        request_id=f"req-{i:04d}",
        model_version="reggaeton_clf:v1",
        features=features or {"tempo": 90.0 + i, "danceability": 0.5, "key": 5.0},
        probability=i / 100,
        prediction=int(i % 2),
        latency_ms=1.25,
        source="http",
        timestamp=ts or T0 + timedelta(seconds=i),
    )


def test_round_trip_keeps_fields_and_utc_timestamp(store: RecordStore) -> None:
    paris = timezone(timedelta(hours=1))
    r = PredictionRecord(
        "abc",
        "reggaeton_clf:v7",
        {"tempo": 95.5, "energy": 0.8},
        0.93,
        1,
        latency_ms=2.5,
        source="grpc",
        timestamp=datetime(2026, 3, 1, 13, 0, 0, 123000, tzinfo=paris),
    )
    assert store.write_many([r]) == 1
    got = store.get("abc")
    assert got is not None
    assert got["timestamp"] == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert got["timestamp"].utcoffset() == timedelta(0)
    assert (got["request_id"], got["model_version"], got["source"]) == (
        "abc",
        "reggaeton_clf:v7",
        "grpc",
    )
    assert got["probability"] == pytest.approx(0.93)
    assert got["prediction"] == 1
    assert got["latency_ms"] == pytest.approx(2.5)
    assert got["tempo"] == 95.5 and got["energy"] == 0.8
    assert "danceability" not in got
    assert got["feedback_label"] is None and got["feedback_at"] is None
    assert store.get("missing") is None


def test_naive_timestamps_are_taken_as_utc(store: RecordStore) -> None:
    store.write_many([rec(1, ts=datetime(2026, 3, 1, 12, 0, 5))])
    assert store.get("req-0001")["timestamp"] == T0 + timedelta(seconds=5)
    assert store.count(since=T0 + timedelta(seconds=5)) == 1


def test_write_many_is_idempotent_and_counts_new_rows(store: RecordStore) -> None:
    assert store.write_many([]) == 0
    assert store.write_many([rec(i) for i in range(5)]) == 5
    again = [rec(i) for i in range(3, 8)] + [rec(7)]  # 3 old, 3 new, one repeated in batch
    assert store.write_many(again) == 3
    assert store.count() == 8
    changed = rec(2)
    changed.probability = 0.99
    assert store.write_many([changed]) == 0
    assert store.get("req-0002")["probability"] == pytest.approx(0.02)  # first write wins


def test_feedback_last_wins_and_history_is_kept(store: RecordStore) -> None:
    store.write_many([rec(1), rec(2)])
    assert store.add_feedback("nope", 1) is False
    assert store.feedback_history("nope") == []
    first, second = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    assert store.add_feedback("req-0001", 1, at=first) is True
    assert store.add_feedback("req-0001", 0, at=second) is True
    got = store.get("req-0001")
    assert got["feedback_label"] == 0
    assert got["feedback_at"] == second
    assert store.feedback_history("req-0001") == [
        {"label": 1, "at": first},
        {"label": 0, "at": second},
    ]
    assert store.get("req-0002")["feedback_label"] is None
    with pytest.raises(ValueError, match="label"):
        store.add_feedback("req-0001", 2)


def test_count_and_window_bounds(store: RecordStore) -> None:
    store.write_many([rec(i) for i in range(10)])
    since, until = T0 + timedelta(seconds=3), T0 + timedelta(seconds=7)
    assert store.count() == 10
    assert store.count(since=since) == 7
    assert store.count(until=until) == 7
    assert store.count(since, until) == 4  # 3, 4, 5, 6: since inclusive, until exclusive
    frame = store.export(since, until)
    assert list(frame["request_id"]) == ["req-0003", "req-0004", "req-0005", "req-0006"]
    assert store.count(until, since) == 0
    assert list(store.iter_window(until, since)) == []


def test_iter_window_orders_chunks_and_columns(store: RecordStore) -> None:
    order = [7, 2, 9, 0, 4, 1, 8, 3, 6, 5]  # written out of time order, in two batches
    store.write_many([rec(i) for i in order[:5]])
    store.write_many([rec(i) for i in order[5:]])
    store.add_feedback("req-0004", 1, at=T0 + timedelta(days=1))
    frames = list(store.iter_window(chunk_size=4))
    assert [len(f) for f in frames] == [4, 4, 2]
    expected = [*BASE_COLUMNS, *SCHEMA_NAMES]
    for frame in frames:
        assert list(frame.columns) == expected
        assert (
            str(frame["timestamp"].dtype)
            == str(frame["feedback_at"].dtype)
            == ("datetime64[us, UTC]")
        )
        assert frame["probability"].dtype == frame["tempo"].dtype == np.float64
        assert frame["prediction"].dtype == np.int64
    whole = pd.concat(frames, ignore_index=True)
    assert list(whole["request_id"]) == [f"req-{i:04d}" for i in range(10)]
    assert whole["timestamp"].is_monotonic_increasing
    assert whole["tempo"].tolist() == [90.0 + i for i in range(10)]
    assert whole["energy"].isna().all()
    labels = whole.set_index("request_id")["feedback_label"]
    assert labels["req-0004"] == 1 and labels.drop("req-0004").isna().all()
    assert whole["prediction"].tolist() == [i % 2 for i in range(10)]
    with pytest.raises(ValueError, match="chunk_size"):
        next(store.iter_window(chunk_size=0))


def test_export_joins_feedback_and_handles_empty(store: RecordStore) -> None:
    empty = store.export()
    assert list(empty.columns)[: len(BASE_COLUMNS)] == list(BASE_COLUMNS) and len(empty) == 0
    store.write_many([rec(i) for i in range(6)])
    store.add_feedback("req-0001", 0, at=T0 + timedelta(minutes=5))
    store.add_feedback("req-0003", 1, at=T0 + timedelta(minutes=6))
    frame = store.export(since=T0 + timedelta(seconds=1))
    assert len(frame) == 5
    assert frame.loc[frame.request_id == "req-0003", "feedback_label"].item() == 1
    assert frame.loc[frame.request_id == "req-0003", "feedback_at"].item() == pd.Timestamp(
        T0 + timedelta(minutes=6)
    )
    assert int(frame["feedback_label"].notna().sum()) == 2
    assert np.isnan(frame.loc[frame.request_id == "req-0002", "feedback_label"].item())


def test_extra_features_get_their_own_column(store: RecordStore) -> None:
    store.write_many([rec(1, tempo=100.0, brand_new=3.5), rec(2, tempo=101.0)])
    frame = store.export()
    assert list(frame.columns) == [*BASE_COLUMNS, *SCHEMA_NAMES, "brand_new"]
    assert frame["brand_new"].tolist()[0] == 3.5 and np.isnan(frame["brand_new"].tolist()[1])
    assert store.get("req-0001")["brand_new"] == 3.5
    with pytest.raises(ValueError, match="features"):
        store.write_many([rec(3, **{"bad name; drop": 1.0})])


def test_monitoring_runs_newest_first(store: RecordStore) -> None:
    assert store.monitoring_runs() == []
    store.save_monitoring_run(
        {"id": "b", "finished_at": (T0 + timedelta(hours=2)).isoformat(), "drift": {"tempo": 0.01}}
    )
    store.save_monitoring_run({"id": "a", "finished_at": T0, "rows": 10})
    store.save_monitoring_run({"id": "c", "finished_at": T0 + timedelta(hours=3)})
    runs = store.monitoring_runs()
    assert [r["id"] for r in runs] == ["c", "b", "a"]
    assert runs[1]["drift"] == {"tempo": 0.01}
    assert runs[2]["finished_at"] == T0.isoformat()
    assert [r["id"] for r in store.monitoring_runs(limit=2)] == ["c", "b"]
    store.save_monitoring_run({"id": "now"})
    assert store.monitoring_runs(limit=1)[0]["id"] == "now"


def test_ping_answers(store: RecordStore) -> None:
    store.ping()


def test_empty_export_has_every_column(store: RecordStore) -> None:
    assert list(store.export().columns) == [*BASE_COLUMNS, *SCHEMA_NAMES]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("probability", float("nan")),
        ("probability", 1.5),
        ("prediction", 2),
        ("request_id", ""),
        ("latency_ms", -1.0),
    ],
)
def test_write_many_refuses_bad_records_whole(
    store: RecordStore, field: str, value: object
) -> None:
    bad = rec(1)
    setattr(bad, field, value)
    with pytest.raises(ValueError, match=field):
        store.write_many([rec(0), bad])
    assert store.count() == 0  # nothing of the batch is written


def test_export_chunks_carry_their_feedback(store: RecordStore) -> None:
    store.write_many([rec(i) for i in range(7)])
    for i, label in ((0, 1), (4, 0), (6, 1)):
        store.add_feedback(f"req-{i:04d}", label, at=T0 + timedelta(hours=i))
    chunks = list(store.iter_window(since=T0, chunk_size=3))
    assert [list(c["request_id"]) for c in chunks] == [
        ["req-0000", "req-0001", "req-0002"],
        ["req-0003", "req-0004", "req-0005"],
        ["req-0006"],
    ]
    joined = {
        row.request_id: (row.feedback_label, row.feedback_at)
        for c in chunks
        for row in c.itertuples()
        if not np.isnan(row.feedback_label)
    }
    assert joined == {
        "req-0000": (1.0, pd.Timestamp(T0)),
        "req-0004": (0.0, pd.Timestamp(T0 + timedelta(hours=4))),
        "req-0006": (1.0, pd.Timestamp(T0 + timedelta(hours=6))),
    }


def test_late_feedback_is_found_by_when_it_arrived(store: RecordStore) -> None:
    store.write_many([rec(i) for i in range(6)])  # predicted at T0 + i seconds
    store.add_feedback("req-0001", 1, at=T0 + timedelta(hours=2))  # late, inside
    store.add_feedback("req-0003", 0, at=T0 + timedelta(hours=1))  # late, inside (bound)
    store.add_feedback("req-0002", 0, at=T0 + timedelta(hours=3))  # after the feedback range
    store.add_feedback("req-0004", 1, at=T0 + timedelta(hours=2))  # predicted too late
    frames = list(
        store.iter_late_feedback(
            T0 + timedelta(hours=1),
            T0 + timedelta(hours=3),
            T0,
            T0 + timedelta(seconds=4),
            chunk_size=1,
        )
    )
    assert [list(f["request_id"]) for f in frames] == [["req-0001"], ["req-0003"]]
    assert [float(f["feedback_label"].iloc[0]) for f in frames] == [1.0, 0.0]
    assert frames[0]["tempo"].iloc[0] == rec(1).features["tempo"]
    assert (
        list(store.iter_late_feedback(T0, T0 + timedelta(minutes=30), T0, T0 + timedelta(hours=9)))
        == []
    )


def test_run_artifacts_are_kept_replaced_and_listed_by_time(store: RecordStore) -> None:
    blob = bytes(range(256)) * 3  # binary, with NUL bytes
    store.save_run_artifact("run-b", "profile.bin", T0 + timedelta(hours=2), blob)
    store.save_run_artifact("run-a", "profile.bin", T0, b"first")
    store.save_run_artifact("run-a", "report.html", T0, b"<html></html>")
    store.save_run_artifact("run-a", "profile.bin", T0, b"replaced")
    got = list(store.run_artifacts("profile.bin"))
    assert [(r, d) for r, _, d in got] == [("run-a", b"replaced"), ("run-b", blob)]
    assert got[0][1] == T0 and got[0][1].tzinfo is not None
    assert [r for r, _, _ in store.run_artifacts("profile.bin", since=T0 + timedelta(hours=1))] == [
        "run-b"
    ]
    assert [r for r, _, _ in store.run_artifacts("profile.bin", until=T0 + timedelta(hours=1))] == [
        "run-a"
    ]
    assert list(store.run_artifacts("report.html"))[0][2] == b"<html></html>"
    assert list(store.run_artifacts("missing")) == []
