"""Helpers shared by the prediction-log backends: feature columns, time conversion, frames.

Exported frames have the columns :data:`~reggaeton.records.base.BASE_COLUMNS`, then the schema
features in schema order (NaN when a record lacks one), then any other feature seen.
Timestamps are UTC; naive datetimes given to a store are taken as UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from reggaeton import timeutil
from reggaeton.records.base import (
    BASE_COLUMNS,
    PredictionBatch,
    PredictionRecord,
    RecordRejected,
    utcnow,
)
from reggaeton.schema import FEATURES

PREFIX = "f_"
"""Prefix of feature columns in SQL tables (keeps them apart from the base columns)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def schema_features() -> list[str]:
    """Names of every feature of the shared schema, in schema order."""
    return [f.name for f in FEATURES]


def order_features(names: Iterable[str]) -> list[str]:
    """Schema features first (schema order), then the others in first-seen order."""
    seen = list(dict.fromkeys(names))
    schema = schema_features()
    return [n for n in schema if n in seen] + [n for n in seen if n not in schema]


def check_feature_name(name: str) -> str:
    """Return ``name`` if usable as a column name, else raise RecordRejected (a ValueError)
    naming it."""
    if not isinstance(name, str) or not _NAME.match(name) or name in BASE_COLUMNS:
        raise RecordRejected(
            f"features.{name}: not a valid feature name "
            "(letters, digits and underscores, not a base column)"
        )
    return name


def check_label(label: Any) -> int:
    """Return the label as an int, or raise ValueError unless it is 0 or 1."""
    if isinstance(label, bool) or label not in (0, 1):
        raise ValueError(f"label: must be 0 or 1, got {label!r}")
    return int(label)


def check_record(record: PredictionRecord) -> PredictionRecord:
    """Raise :class:`~reggaeton.records.base.RecordRejected` (a ValueError) naming the field
    when a record cannot be logged as is."""
    if not isinstance(record.request_id, str) or not record.request_id:
        raise RecordRejected(f"request_id: must be a non-empty string, got {record.request_id!r}")
    prob = record.probability
    if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 <= prob <= 1:
        raise RecordRejected(
            f"probability: must be a number in [0, 1], got {prob!r} (request {record.request_id})"
        )
    if record.prediction not in (0, 1) or isinstance(record.prediction, bool):
        raise RecordRejected(
            f"prediction: must be 0 or 1, got {record.prediction!r} (request {record.request_id})"
        )
    if not isinstance(record.latency_ms, int | float) or not record.latency_ms >= 0:
        raise RecordRejected(
            f"latency_ms: must be a number >= 0, got {record.latency_ms!r} "
            f"(request {record.request_id})"
        )
    return record


def check_batch(batch: PredictionBatch) -> PredictionBatch:
    """Raise :class:`~reggaeton.records.base.RecordRejected` (a ValueError) naming the field
    (and the first bad row's id) when a batch cannot be logged as is; vectorised, so it costs
    per batch rather than per row."""
    n = len(batch.request_ids)
    matrix, prob, pred = batch.matrix, batch.probability, batch.prediction
    if (
        not isinstance(matrix, np.ndarray)
        or matrix.shape != (n, len(batch.features))
        or np.shape(prob) != (n,)
        or np.shape(pred) != (n,)
    ):
        raise RecordRejected(
            f"batch: {n} request_ids but matrix {np.shape(matrix)} for "
            f"{len(batch.features)} features, probability {np.shape(prob)}, "
            f"prediction {np.shape(pred)}"
        )
    for name in batch.features:
        check_feature_name(name)
    if not all(type(rid) is str and rid for rid in batch.request_ids):
        raise RecordRejected("request_id: every id must be a non-empty string")
    with np.errstate(invalid="ignore"):
        bad = ~((prob >= 0) & (prob <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise RecordRejected(
            f"probability: must be a number in [0, 1], got {prob[i]!r} "
            f"(request {batch.request_ids[i]})"
        )
    bad = (pred != 0) & (pred != 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise RecordRejected(
            f"prediction: must be 0 or 1, got {pred[i]!r} (request {batch.request_ids[i]})"
        )
    lat = batch.latency_ms
    if isinstance(lat, bool) or not isinstance(lat, int | float) or not lat >= 0:
        raise RecordRejected(f"latency_ms: must be a number >= 0, got {lat!r}")
    return batch


def as_utc(ts: datetime) -> datetime:
    """:func:`reggaeton.timeutil.as_utc` for a stored value, refusing anything not a datetime."""
    if not isinstance(ts, datetime):
        raise ValueError(f"timestamp: must be a datetime, got {type(ts).__name__}")
    return timeutil.as_utc(ts)


def to_us(ts: datetime) -> int:
    """Microseconds since the Unix epoch (exact)."""
    return (as_utc(ts) - _EPOCH) // _US


def from_us(value: int | None) -> datetime | None:
    """Inverse of :func:`to_us`; None stays None."""
    return None if value is None else _EPOCH + timedelta(microseconds=int(value))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"monitoring run: {type(value).__name__} is not JSON-serialisable")


def normalise_run(run: Mapping[str, Any]) -> tuple[str, datetime]:
    """JSON text of a monitoring run and its UTC ``finished_at`` (set to now when absent)."""
    doc = dict(run)
    finished = doc.get("finished_at")
    if finished is None:
        finished = utcnow()
    elif isinstance(finished, str):
        try:
            finished = datetime.fromisoformat(finished)
        except ValueError as exc:
            raise ValueError(f"finished_at: not an ISO-8601 time: {finished!r}") from exc
    finished = as_utc(finished)
    doc["finished_at"] = finished.isoformat()
    return json.dumps(doc, default=_json_default, allow_nan=True), finished


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def times_from_us(values: np.ndarray) -> pd.DatetimeIndex:
    """UTC times from microseconds since the epoch (NaN -> NaT), as export frames hold them."""
    return pd.to_datetime(values, unit="us", utc=True)


def to_us_array(times: pd.Series) -> np.ndarray:
    """Inverse of :func:`times_from_us` for a frame's (non-null) time column."""
    return np.asarray(times.dt.tz_localize(None), dtype="datetime64[us]").astype(np.int64)


def frame_from_rows(rows: Sequence[Sequence[Any]], features: Sequence[str]) -> pd.DataFrame:
    """Build an export frame from SQL rows (base columns in order, then ``features``).

    Time columns arrive as integer microseconds since the epoch (NULL allowed for feedback).
    One 2-D object array, then one float block for every numeric column (NULL -> NaN).
    """
    table = np.array(rows, dtype=object)
    if table.ndim != 2:
        table = table.reshape(len(rows), len(BASE_COLUMNS) + len(features))
    num = table[:, 4:].astype(np.float64)  # probability ... last feature
    data: dict[str, Any] = {
        "request_id": pd.array(table[:, 0], dtype="str"),
        "timestamp": times_from_us(table[:, 1].astype(np.int64)),
        "model_version": pd.array(table[:, 2], dtype="str"),
        "source": pd.array(table[:, 3], dtype="str"),
        "probability": num[:, 0],
        "prediction": num[:, 1].astype(np.int64),
        "latency_ms": num[:, 2],
        "feedback_label": num[:, 3],
        "feedback_at": times_from_us(num[:, 4]),
    }
    for i, name in enumerate(features):
        data[name] = num[:, 5 + i]
    return pd.DataFrame(data)


def frame_from_docs(docs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build an export frame from MongoDB documents (features in a ``features`` subdocument)."""
    feats = [d.get("features") or {} for d in docs]
    names = order_features([*schema_features(), *(k for f in feats for k in f)])

    def col(key: str) -> list[Any]:
        return [d.get(key) for d in docs]

    def times(key: str) -> pd.DatetimeIndex:
        return pd.to_datetime(pd.Series(col(key), dtype=object), utc=True)

    data: dict[str, Any] = {
        "request_id": pd.array(col("request_id"), dtype="str"),
        "timestamp": times("timestamp"),
        "model_version": pd.array(col("model_version"), dtype="str"),
        "source": pd.array(col("source"), dtype="str"),
        "probability": _floats(col("probability")),
        "prediction": np.array(col("prediction"), dtype=np.int64),
        "latency_ms": _floats(col("latency_ms")),
        "feedback_label": _floats(col("feedback_label")),
        "feedback_at": times("feedback_at"),
    }
    for name in names:
        data[name] = _floats([f.get(name) for f in feats])
    frame = pd.DataFrame(data, copy=False)
    frame["timestamp"] = frame["timestamp"].dt.as_unit("us")
    frame["feedback_at"] = frame["feedback_at"].dt.as_unit("us")
    return frame
