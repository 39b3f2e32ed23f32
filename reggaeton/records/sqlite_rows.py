"""Rows of the SQLite prediction log: records to SQL tuples (the write hot path), time bounds.

Split from :mod:`reggaeton.records.sqlite` so the store module stays about the store.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from reggaeton.records import columns as cols
from reggaeton.records.base import PredictionBatch, PredictionRecord

INT64_MAX = 2**63 - 1


def build_rows(
    records: Sequence[PredictionRecord], features: list[str]
) -> tuple[list[str], list[tuple]] | None:
    """Feature columns to insert and one SQL row per record, each record checked.

    Hot path of the prediction log: one tuple per record, no per-row dicts. When every record
    carries the same feature names (one request's rows do), only those columns are bound;
    otherwise every known column is (NULL where a record lacks the feature). The timestamp
    conversion is cached (a batch from one request shares one datetime) and a record of plain
    ``str``/``float``/``int`` values skips the full :func:`~reggaeton.records.columns.check_record`.

    Returns:
        None when a record carries a feature that has no column yet.

    Raises:
        ValueError: a record cannot be logged (names the field).
    """
    first = records[0].features
    used = [n for n in features if n in first]
    if len(used) == len(first):
        rows = _build(records, used, first.keys())
        if rows is not None:
            return used, rows
    rows = _build(records, features, None)
    return None if rows is None else (features, rows)


def _build(
    records: Sequence[PredictionRecord], names: list[str], same_keys: Any
) -> list[tuple] | None:
    """Rows binding ``names``; None when a record's feature names differ from ``same_keys``
    (when given) or are not all in ``names``."""
    getter = operator.itemgetter(*names) if len(names) >= 2 else None
    known = set(names)
    last_ts: Any = None
    last_us = 0
    rows: list[tuple] = []
    append = rows.append
    for r in records:
        rid, p, pred, lat = r.request_id, r.probability, r.prediction, r.latency_ms
        if not (
            type(rid) is str
            and rid
            and type(p) is float
            and 0.0 <= p <= 1.0
            and type(pred) is int
            and (pred == 0 or pred == 1)
            and type(lat) is float
            and lat >= 0.0
        ):
            cols.check_record(r)  # raises, or accepts other number types: normalise them
            p, pred, lat = float(p), int(pred), float(lat)
        ts = r.timestamp
        if ts is not last_ts:
            last_us, last_ts = cols.to_us(ts), ts
        f = r.features
        if same_keys is not None:
            if f.keys() != same_keys:
                return None
            values = getter(f) if getter is not None else tuple(map(f.get, names))
        elif known.issuperset(f):
            values = tuple(map(f.get, names))
        else:
            return None
        append((rid, last_us, r.model_version, r.source, p, pred, lat, *values))
    return rows


def batch_params(batch: PredictionBatch, per: int) -> Iterator[list[Any]]:
    """The flat parameters of a checked batch, ``per`` rows at a time, in the column order
    ``request_id, ts_us, model_version, source, probability, prediction, latency_ms`` then
    ``batch.features`` (NaN binds as NULL: an absent optional feature).

    Columns go to Python lists in one C call each (``tolist``) and rows are zipped from them:
    no per-row object of ours, no per-row check.
    """
    n = len(batch.request_ids)
    repeat = itertools.repeat
    rows = zip(
        batch.request_ids,
        repeat(cols.to_us(batch.timestamp), n),
        repeat(batch.model_version, n),
        repeat(batch.source, n),
        batch.probability.astype(float, copy=False).tolist(),
        batch.prediction.astype(int, copy=False).tolist(),
        repeat(float(batch.latency_ms), n),
        *batch.matrix.T.tolist(),
        strict=False,
    )
    chain = itertools.chain.from_iterable
    for start in range(0, n, per):
        yield list(chain(itertools.islice(rows, min(per, n - start))))


def bounds(since: datetime | None, until: datetime | None) -> tuple[int, int]:
    low = cols.to_us(since) if since is not None else -INT64_MAX
    high = cols.to_us(until) if until is not None else INT64_MAX
    return low, high
