"""Columnar batches (one request's predictions as arrays), run against every backend.

A batch must land as ordinary rows: the window scan, ``get``, feedback by request id and the
count see exactly what a record per row would have given, old rows stay readable beside them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from reggaeton.records import PredictionRecord, RecordStore
from reggaeton.records.base import PredictionBatch, RecordRejected
from reggaeton.schema import FEATURES

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NAMES = tuple(f.name for f in FEATURES)


def batch(prefix: str, n: int, ts: datetime = T0, **overrides: object) -> PredictionBatch:
    """n rows with distinct values per row and column; the last column absent on odd rows."""
    matrix = np.arange(n * len(NAMES), dtype=np.float64).reshape(n, len(NAMES)) / 7.0
    matrix[1::2, -1] = np.nan
    fields: dict[str, object] = dict(
        request_ids=[f"{prefix}-{i}" for i in range(n)],
        model_version="reggaeton_clf:v2",
        features=NAMES,
        matrix=matrix,
        probability=np.linspace(0.0, 1.0, n),
        prediction=np.arange(n) % 2 == 1,
        latency_ms=3.5,
        source="http",
        timestamp=ts,
    )
    fields.update(overrides)
    return PredictionBatch(**fields)  # type: ignore[arg-type]


def test_a_batch_reads_back_as_the_records_it_holds(store: RecordStore) -> None:
    b = batch("b", 6)
    assert store.write_batches([b]) == 6
    frame = store.export()
    assert list(frame["request_id"]) == [f"b-{i}" for i in range(6)]
    np.testing.assert_allclose(frame[list(NAMES)].to_numpy(), b.matrix)  # NaN where absent
    np.testing.assert_allclose(frame["probability"], b.probability)
    assert list(frame["prediction"]) == [0, 1, 0, 1, 0, 1]
    assert (frame["latency_ms"] == 3.5).all() and (frame["source"] == "http").all()
    got = store.get("b-1")
    want = b.records()[1]
    assert got["prediction"] == 1 and NAMES[-1] not in got  # absent, as a record leaves it
    assert {k: got[k] for k in want.features} == pytest.approx(want.features)
    assert store.get("b-0")[NAMES[-1]] == pytest.approx(b.matrix[0, -1])


def test_batches_and_records_share_one_log(store: RecordStore) -> None:
    old = PredictionRecord(
        "old-1", "reggaeton_clf:v1", {"tempo": 99.0}, 0.2, 0, timestamp=T0 - timedelta(seconds=1)
    )
    store.write_many([old])  # a row written before batches existed
    assert store.write_batches([batch("a", 3), batch("c", 2, T0 + timedelta(seconds=1))]) == 5
    assert store.write_batches([batch("a", 3)]) == 0  # a replay adds nothing
    assert store.count() == 6
    assert store.count(since=T0) == 5
    ids = [rid for f in store.iter_window(chunk_size=2) for rid in f["request_id"]]
    assert ids[0] == "old-1" and sorted(ids[1:]) == sorted(["a-0", "a-1", "a-2", "c-0", "c-1"])
    assert ids[-2:] == ["c-0", "c-1"]  # oldest first across writes
    assert store.get("old-1")["tempo"] == 99.0


def test_feedback_joins_a_batch_row_by_request_id(store: RecordStore) -> None:
    store.write_batches([batch("f", 5)])
    assert store.add_feedback("f-3", 1, at=T0 + timedelta(hours=1)) is True
    frame = store.export()
    labelled = frame[frame["feedback_label"].notna()]
    assert list(labelled["request_id"]) == ["f-3"] and labelled["feedback_label"].iloc[0] == 1
    late = list(store.iter_late_feedback(T0, T0 + timedelta(days=1), T0, T0 + timedelta(1)))
    assert [rid for f in late for rid in f["request_id"]] == ["f-3"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"probability": np.array([0.1, np.nan, 0.3])}, "probability"),
        ({"probability": np.array([0.1, 1.5, 0.3])}, "probability"),
        ({"prediction": np.array([0, 2, 1])}, "prediction"),
        ({"latency_ms": -1.0}, "latency_ms"),
        ({"request_ids": ["x-0", "", "x-2"]}, "request_id"),
        ({"matrix": np.zeros((2, len(NAMES)))}, "batch"),
    ],
)
def test_a_bad_batch_is_refused_whole_with_the_shared_error(
    store: RecordStore, overrides, field
) -> None:
    good = batch("g", 2)
    with pytest.raises(RecordRejected, match=field):
        store.write_batches([good, batch("x", 3, **overrides)])
    assert store.count() == 0  # nothing of the call is stored


def test_a_batch_may_carry_a_feature_outside_the_schema(store: RecordStore) -> None:
    b = batch("e", 2, features=(*NAMES[:-1], "bpm_guess"))
    assert store.write_batches([b]) == 2
    assert store.get("e-0")["bpm_guess"] == pytest.approx(b.matrix[0, -1])
    assert "bpm_guess" in store.export().columns


def test_batch_json_round_trip_keeps_nan_and_types() -> None:
    import orjson

    b = batch("j", 3)
    back = PredictionBatch.from_dict(orjson.loads(orjson.dumps(b.to_dict())))  # NaN -> null
    np.testing.assert_array_equal(back.matrix, b.matrix)
    assert back.prediction.dtype == np.int64 and list(back.prediction) == [0, 1, 0]
    assert back.timestamp == b.timestamp and back.features == NAMES


def test_rows_and_batches_interleave_by_time_in_bounded_chunks(store: RecordStore) -> None:
    def row(rid: str, seconds: float) -> PredictionRecord:
        return PredictionRecord(
            rid, "m:1", {"tempo": 1.0}, 0.5, 1, timestamp=T0 + timedelta(seconds=seconds)
        )

    store.write_many([row("r-early", -1), row("r-mid", 0.5), row("r-late", 2)])
    store.write_batches([batch("b1", 3, T0), batch("b2", 2, T0 + timedelta(seconds=1))])
    want = ["r-early", "b1-0", "b1-1", "b1-2", "r-mid", "b2-0", "b2-1", "r-late"]
    for size in (1, 2, 3, 50):
        chunks = list(store.iter_window(chunk_size=size))
        assert all(0 < len(c) <= size for c in chunks)
        assert [rid for c in chunks for rid in c["request_id"]] == want
    part = store.export(since=T0, until=T0 + timedelta(seconds=1))
    assert list(part["request_id"]) == ["b1-0", "b1-1", "b1-2", "r-mid"]
    assert store.count(since=T0, until=T0 + timedelta(seconds=1)) == 4


def test_feedback_on_a_batch_row_keeps_the_latest_and_the_history(store: RecordStore) -> None:
    store.write_batches([batch("h", 3)])
    assert store.add_feedback("h-2", 0, at=T0 + timedelta(minutes=1))
    assert store.add_feedback("h-2", 1, at=T0 + timedelta(minutes=2))
    got = store.get("h-2")
    assert got["feedback_label"] == 1 and got["feedback_at"] == T0 + timedelta(minutes=2)
    assert [e["label"] for e in store.feedback_history("h-2")] == [0, 1]
    assert store.get("h-1")["feedback_label"] is None
    for missing in ("h-3", "h-02", "h", "h-x", "nope-0"):
        assert store.add_feedback(missing, 1) is False
        assert store.get(missing) is None
