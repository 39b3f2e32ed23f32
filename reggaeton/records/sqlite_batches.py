"""Compact batches in the SQLite prediction log: one table row per request, not per prediction.

Why: a row per prediction costs SQLite about 3 us (binding 21 values, two B-tree inserts of
which one is the random ``request_id`` index); a 1,000-row request then spends more on its log
than on everything else (``bench/README.md``). A request whose ids are ``<prefix>-0`` ...
``<prefix>-<n-1>`` (the service's batch endpoints) is stored instead as one row of
``prediction_batches`` holding its columns as little-endian arrays:

* ``matrix``: float64, ``n x len(features)``, C order (NaN: feature not sent);
* ``probability``: float64; ``prediction``: int8; ``features``: JSON list of names.

Feedback on one of its predictions goes to ``batch_feedback`` (one row per labelled
prediction, the latest label wins), and to the shared ``feedback`` history like any other.
Readers see predictions, not storage: :func:`batch_frame` expands a batch into the same frame
columns and dtypes as rows of ``predictions``, and :func:`merge_by_time` interleaves both
streams oldest first. Rows written before this table existed are read unchanged.

The price: the ``predictions_readable`` view and ad-hoc SQL on ``predictions`` do not show
compact batches; read them through the store (``export``, ``iter_window``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from reggaeton.records import columns as cols
from reggaeton.records.base import PredictionBatch

DDL = """
CREATE TABLE IF NOT EXISTS prediction_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    id_prefix TEXT NOT NULL UNIQUE,
    n INTEGER NOT NULL,
    ts_us INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    source TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    features TEXT NOT NULL,
    matrix BLOB NOT NULL,
    probability BLOB NOT NULL,
    prediction BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS prediction_batches_ts ON prediction_batches (ts_us, id);
CREATE TABLE IF NOT EXISTS batch_feedback (
    request_id TEXT PRIMARY KEY,
    batch_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    label INTEGER NOT NULL,
    at_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_feedback_batch ON batch_feedback (batch_id, idx);
CREATE INDEX IF NOT EXISTS batch_feedback_at ON batch_feedback (at_us);
"""

_COLUMNS = (
    "id, id_prefix, n, ts_us, model_version, source, latency_ms, features, matrix, "
    "probability, prediction"
)
MIN_ROWS = 2
"""Smaller requests stay rows of ``predictions`` (their ids carry no index suffix)."""


def prefix_of(batch: PredictionBatch) -> str | None:
    """The common prefix when the ids are exactly ``<prefix>-0`` ... ``<prefix>-<n-1>``."""
    ids = batch.request_ids
    if len(ids) < MIN_ROWS or not isinstance(ids[0], str) or not ids[0].endswith("-0"):
        return None
    prefix = ids[0][:-2]
    if not prefix or list(ids) != [f"{prefix}-{i}" for i in range(len(ids))]:
        return None
    return prefix


def insert(conn: sqlite3.Connection, batch: PredictionBatch, prefix: str) -> int:
    """Store a checked batch as one row; returns its rows, or 0 when that prefix is stored."""
    matrix = np.ascontiguousarray(batch.matrix, dtype="<f8")
    cur = conn.execute(
        "INSERT INTO prediction_batches (id_prefix, n, ts_us, model_version, source, "
        "latency_ms, features, matrix, probability, prediction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?) ON CONFLICT (id_prefix) DO NOTHING",
        (
            prefix,
            len(batch),
            cols.to_us(batch.timestamp),
            batch.model_version,
            batch.source,
            float(batch.latency_ms),
            json.dumps(list(batch.features)),
            matrix.tobytes(),
            np.ascontiguousarray(batch.probability, dtype="<f8").tobytes(),
            batch.prediction.astype("i1").tobytes(),
        ),
    )
    return len(batch) if cur.rowcount else 0


def locate(conn: sqlite3.Connection, request_id: str) -> tuple[tuple, int] | None:
    """The batch row holding ``request_id`` and its index there, or None."""
    prefix, sep, index = request_id.rpartition("-")
    if not sep or not index.isdigit() or (index != "0" and index.startswith("0")):
        return None
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM prediction_batches WHERE id_prefix = ?", (prefix,)
    ).fetchone()
    if row is None or int(index) >= row[2]:
        return None
    return row, int(index)


def _feedback(conn: sqlite3.Connection, batch_id: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Latest label and its time (us) per prediction of a batch, NaN where none came."""
    labels = np.full(n, np.nan)
    at = np.full(n, np.nan)
    for idx, label, at_us in conn.execute(
        "SELECT idx, label, at_us FROM batch_feedback WHERE batch_id = ?", (batch_id,)
    ):
        labels[idx], at[idx] = label, at_us
    return labels, at


def batch_frame(
    conn: sqlite3.Connection, row: tuple, features: Sequence[str], rows: np.ndarray | None = None
) -> pd.DataFrame:
    """The predictions of one batch row as an export frame (columns as
    :func:`~reggaeton.records.columns.frame_from_rows` gives: base columns, then ``features``).

    Args:
        conn: Connection of the read (its snapshot).
        row: A ``prediction_batches`` row selected with its columns in table order.
        features: Feature columns of the frame (the log's, a superset of the batch's).
        rows: Indexes of the predictions to keep (all when None).
    """
    batch_id, prefix, n, ts_us, version, source, latency, names, matrix, prob, pred = row
    names = json.loads(names)
    matrix = np.frombuffer(matrix, dtype="<f8").reshape(n, len(names))
    probability = np.frombuffer(prob, dtype="<f8")
    prediction = np.frombuffer(pred, dtype="i1").astype(np.int64)
    labels, at = _feedback(conn, batch_id, n)
    keep = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    m = len(keep)
    data: dict[str, Any] = {
        "request_id": pd.array([f"{prefix}-{i}" for i in keep.tolist()], dtype="str"),
        "timestamp": cols.times_from_us(np.full(m, ts_us, dtype=np.int64)),
        "model_version": pd.array([version] * m, dtype="str"),
        "source": pd.array([source] * m, dtype="str"),
        "probability": probability[keep].astype(np.float64),
        "prediction": prediction[keep],
        "latency_ms": np.full(m, float(latency)),
        "feedback_label": labels[keep],
        "feedback_at": cols.times_from_us(at[keep]),
    }
    position = {name: i for i, name in enumerate(names)}
    for name in features:
        i = position.get(name)
        data[name] = matrix[keep, i].copy() if i is not None else np.full(m, np.nan)
    return pd.DataFrame(data)


def as_dict(conn: sqlite3.Connection, row: tuple, index: int) -> dict[str, Any]:
    """One prediction of a batch row as :meth:`~reggaeton.records.base.RecordStore.get`
    returns it (features it was not sent left out)."""
    batch_id, prefix, n, ts_us, version, source, latency, names, matrix, prob, pred = row
    names = json.loads(names)
    values = np.frombuffer(matrix, dtype="<f8").reshape(n, len(names))[index]
    fb = conn.execute(
        "SELECT label, at_us FROM batch_feedback WHERE batch_id = ? AND idx = ?", (batch_id, index)
    ).fetchone()
    out: dict[str, Any] = {
        "request_id": f"{prefix}-{index}",
        "timestamp": cols.from_us(ts_us),
        "model_version": version,
        "source": source,
        "probability": float(np.frombuffer(prob, dtype="<f8")[index]),
        "prediction": int(np.frombuffer(pred, dtype="i1")[index]),
        "latency_ms": float(latency),
        "feedback_label": fb[0] if fb else None,
        "feedback_at": cols.from_us(fb[1]) if fb else None,
    }
    out.update((k, v) for k, v in zip(names, values.tolist(), strict=True) if v == v)
    return out


def window(
    conn: sqlite3.Connection, low: int, high: int, features: Sequence[str]
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(ts_us, frame)`` of every batch with ``low <= ts_us < high``, oldest first."""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM prediction_batches WHERE ts_us >= ? AND "
        "ts_us < ? ORDER BY ts_us, id",
        (low, high),
    )
    for row in cur:  # lazily: a long window's arrays never sit in memory at once
        yield row[3], batch_frame(conn, row, features)


def late_feedback(
    conn: sqlite3.Connection, fb: tuple[int, int], pred: tuple[int, int], features: Sequence[str]
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(ts_us, frame)`` of batch predictions made in ``pred`` whose feedback came in ``fb``
    (only those predictions), oldest batch first."""
    hits: dict[int, list[int]] = {}
    for batch_id, idx in conn.execute(
        "SELECT batch_id, idx FROM batch_feedback WHERE at_us >= ? AND at_us < ?", fb
    ):
        hits.setdefault(batch_id, []).append(idx)
    if not hits:
        return
    marks = ",".join("?" * len(hits))
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM prediction_batches WHERE id IN ({marks}) AND "
        "ts_us >= ? AND ts_us < ? ORDER BY ts_us, id",
        (*hits, *pred),
    )
    for row in cur:  # lazily: a long window's arrays never sit in memory at once
        yield row[3], batch_frame(conn, row, features, np.array(sorted(hits[row[0]])))


def merge_by_time(
    rows: Iterable[pd.DataFrame], batches: Iterable[tuple[int, pd.DataFrame]], chunk_size: int
) -> Iterator[pd.DataFrame]:
    """Interleave frames of rows (oldest first) with batch frames (oldest first) by time,
    re-chunked to at most ``chunk_size`` rows."""
    pending: list[pd.DataFrame] = []
    size = 0
    row_iter = iter(rows)
    head: pd.DataFrame | None = None
    head_ts = np.empty(0, dtype=np.int64)  # times of ``head``, converted once per frame

    def out() -> Iterator[pd.DataFrame]:
        nonlocal pending, size
        frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        pending, size = [], 0
        for start in range(0, len(frame), chunk_size):
            yield frame.iloc[start : start + chunk_size].reset_index(drop=True)

    def push(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        nonlocal size
        if len(frame):
            pending.append(frame)
            size += len(frame)
        if size >= chunk_size:
            *full, rest = list(out())
            yield from full
            if len(rest) == chunk_size:
                yield rest
            else:
                pending.append(rest)
                size = len(rest)

    for ts_us, bframe in batches:
        while True:
            if head is None:
                head = next(row_iter, None)
                if head is None:
                    break
                head_ts = cols.to_us_array(head["timestamp"])
            cut = int(np.searchsorted(head_ts, ts_us, side="right"))
            if cut:
                yield from push(head.iloc[:cut])
            if cut < len(head):
                head, head_ts = head.iloc[cut:], head_ts[cut:]
                break
            head = None
        yield from push(bframe)
    if head is not None:
        yield from push(head)
    for frame in row_iter:
        yield from push(frame)
    if pending:
        yield from out()


def prune(conn: sqlite3.Connection, before_us: int, max_rows: int) -> int:
    """Delete the oldest batches made before ``before_us`` holding at most ``max_rows``
    predictions (at least one batch, so a batch larger than that still goes), with their
    feedback; returns the predictions deleted."""
    picked: list[int] = []
    total = 0
    for batch_id, n in conn.execute(
        "SELECT id, n FROM prediction_batches WHERE ts_us < ? ORDER BY ts_us, id LIMIT ?",
        (before_us, max_rows),
    ):
        if picked and total + n > max_rows:
            break
        picked.append(batch_id)
        total += n
    if not picked:
        return 0
    marks = ",".join("?" * len(picked))
    conn.execute(
        "DELETE FROM feedback WHERE request_id IN (SELECT request_id FROM "
        f"batch_feedback WHERE batch_id IN ({marks}))",
        picked,
    )
    conn.execute(f"DELETE FROM batch_feedback WHERE batch_id IN ({marks})", picked)
    conn.execute(f"DELETE FROM prediction_batches WHERE id IN ({marks})", picked)
    return total
