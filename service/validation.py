"""Vectorised request validation with the shared schema (reggaeton.schema) as the single rule book.

:func:`validate_rows` checks a whole batch with numpy in one pass using the bounds, dtypes and
required flags of :data:`reggaeton.schema.FEATURES`. When anything looks wrong it re-checks the
rows one by one with :func:`reggaeton.schema.validate_record`, so the error raised (field, rule,
row index) is exactly the shared one. A test proves both paths accept and reject the same input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from reggaeton.schema import FEATURES, MODEL_FEATURES, ValidationError, validate_record

COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURES)
"""Columns of the validated matrix, in schema order (optional ones are NaN when absent)."""
MODEL_INDEX = np.array([COLUMNS.index(n) for n in MODEL_FEATURES], dtype=np.intp)
"""Positions of the model inputs in :data:`COLUMNS`."""

FAST_MIN_ROWS = 8
"""Below this many rows the row-by-row check is cheaper than the vectorised one."""
_REQUIRED = tuple(f.name for f in FEATURES if f.required)
_OPTIONAL = tuple(f.name for f in FEATURES if not f.required)
_REQ_POS = np.array([COLUMNS.index(n) for n in _REQUIRED], dtype=np.intp)
_OPT_POS = [COLUMNS.index(n) for n in _OPTIONAL]
_get_required = itemgetter(*_REQUIRED)
_NUMBER_TYPES = frozenset({int, float})
_LOW = np.array([-np.inf if f.minimum is None else f.minimum for f in FEATURES], dtype=float)
_HIGH = np.array([np.inf if f.maximum is None else f.maximum for f in FEATURES], dtype=float)
_EXCLUSIVE = np.array([f.exclusive_minimum for f in FEATURES])
_INTEGER = np.array([f.dtype == "int" for f in FEATURES])


def validate_rows(records: Sequence[Any], offset_index: bool = True) -> np.ndarray:
    """Validate songs and return them as a float64 matrix with columns :data:`COLUMNS`.

    Args:
        records: Decoded JSON objects (one per song). Extra keys are ignored.
        offset_index: When True, errors carry the row index (``data[3].tempo``); use False for
            the single-song endpoint (``data.tempo``).

    Returns:
        Array of shape ``(len(records), len(COLUMNS))``; absent optional features are NaN.

    Raises:
        ValidationError: naming the first bad field (and row), as ``validate_record`` does.
    """
    if len(records) < FAST_MIN_ROWS:  # a few rows: plain Python is cheaper than numpy calls
        return _slow(records, offset_index)
    try:
        matrix = _fast(records)
    except (KeyError, TypeError, ValueError, OverflowError, IndexError):
        matrix = None
    if matrix is not None:
        return matrix
    return _slow(records, offset_index)


def _fast(records: Sequence[Any]) -> np.ndarray | None:
    """Numpy path; None means "not obviously valid, let the slow path decide"."""
    n = len(records)
    if not all(type(r) is dict for r in records):
        return None
    required = [_get_required(r) for r in records]
    if not set(map(type, chain.from_iterable(required))) <= _NUMBER_TYPES:
        return None
    out = np.empty((n, len(COLUMNS)), dtype=np.float64)
    out[:, _REQ_POS] = np.array(required, dtype=np.float64).reshape(n, len(_REQUIRED))
    for name, pos in zip(_OPTIONAL, _OPT_POS, strict=True):
        values = [r.get(name) for r in records]
        present = [v for v in values if v is not None]
        if not set(map(type, present)) <= _NUMBER_TYPES:
            return None
        if any(v != v for v in present):  # a NaN sent (gRPC doubles can) is not an absence
            return None
        out[:, pos] = [np.nan if v is None else v for v in values]
    present = ~np.isnan(out)
    optional_absent = ~present
    optional_absent[:, _REQ_POS] = False
    if (~present[:, _REQ_POS]).any() or not np.isfinite(out[present]).all():
        return None
    with np.errstate(invalid="ignore"):
        too_low = np.where(_EXCLUSIVE, out <= _LOW, out < _LOW)
        bad = too_low | (out > _HIGH) | (_INTEGER & (out != np.floor(out)))
    if (bad & ~optional_absent).any():
        return None
    return out


def _slow(records: Sequence[Any], offset_index: bool) -> np.ndarray:
    """Row-by-row check with the shared ``validate_record`` (exact error messages)."""
    rows = []
    for i, record in enumerate(records):
        index = i if offset_index else None
        try:
            values = validate_record(record, index)
        except ValidationError:
            raise
        except (OverflowError, ValueError, TypeError) as exc:  # e.g. an int too big for float
            raise ValidationError(_culprit(record), "must be a finite number", index) from exc
        rows.append([values.get(name, math.nan) for name in COLUMNS])
    return np.array(rows, dtype=np.float64).reshape(len(records), len(COLUMNS))


def _culprit(record: Any) -> str:
    for name in COLUMNS:
        value = record.get(name) if isinstance(record, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                math.isfinite(value)
            except OverflowError:
                return name
    return ""


_COLUMN_SET = frozenset(COLUMNS)


def logged_features(songs: Sequence[Any] | None, matrix: np.ndarray) -> list[dict[str, Any]]:
    """The features to log for each validated song.

    A decoded request object that holds nothing but schema features once ``id_new`` is
    dropped is logged as sent (no copy: the cheapest way to keep the raw values); anything
    else is rebuilt from the validated matrix.
    """
    if songs is None:
        return row_features(matrix)
    out: list[dict[str, Any]] = []
    rebuilt: list[dict[str, float]] | None = None
    for i, song in enumerate(songs):
        song.pop("id_new", None)
        if song.keys() <= _COLUMN_SET and None not in song.values():
            out.append(song)
        else:
            rebuilt = rebuilt or row_features(matrix)
            out.append(rebuilt[i])
    return out


def row_features(matrix: np.ndarray) -> list[dict[str, float]]:
    """The validated values of each row as ``{feature: value}`` (absent optional ones left out)."""
    rows = matrix.tolist()
    if not np.isnan(matrix[:, _OPT_POS]).any():
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    return [{k: v for k, v in zip(COLUMNS, row, strict=True) if v == v} for row in rows]
