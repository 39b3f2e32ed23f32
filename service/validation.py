"""Vectorised request validation with the shared schema (reggaeton.schema) as the one rule book.

:func:`validate_rows` turns a batch of decoded JSON objects into the float64 matrix the model
reads, in one pass: the values are gathered column-wise, then the bounds, whole-number and
finiteness rules of :data:`reggaeton.schema.FEATURES` are checked with numpy on the whole
matrix. Only when that finds a problem is one row looked at in Python: the first offending
row is re-checked with :func:`reggaeton.schema.validate_record`, so the error (row, field, rule)
is the shared one. Values of the wrong type (a string, a bool, a missing field) are found while
gathering; the rows are then checked one by one in order. ``tests/inference/test_validation.py``
proves both paths give the verdict of ``validate_record``;
``tests/fuzz/test_validator_matches_schema.py`` that they agree with the OpenAPI document's JSON
schema.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter, le
from types import NoneType
from typing import Any

import numpy as np

from reggaeton.schema import FEATURES, MODEL_FEATURES, ValidationError, validate_record

COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURES)
"""Columns of the validated matrix, in schema order (optional ones are NaN when absent)."""
MODEL_INDEX = np.array([COLUMNS.index(n) for n in MODEL_FEATURES], dtype=np.intp)
"""Positions of the model inputs in :data:`COLUMNS`."""

FAST_MIN_ROWS = 8
"""Below this many rows the row-by-row check is cheaper than the numpy calls."""
_REQUIRED = tuple(f.name for f in FEATURES if f.required)
_OPTIONAL = tuple(f.name for f in FEATURES if not f.required)
_REQ_POS = np.array([COLUMNS.index(n) for n in _REQUIRED], dtype=np.intp)
_OPT_POS = [COLUMNS.index(n) for n in _OPTIONAL]
_get_required = itemgetter(*_REQUIRED)
_NUMBER_TYPES = frozenset({int, float})
_OPTIONAL_TYPES = _NUMBER_TYPES | {NoneType}
_LOW = np.array([-np.inf if f.minimum is None else f.minimum for f in FEATURES], dtype=float)
_HIGH = np.array([np.inf if f.maximum is None else f.maximum for f in FEATURES], dtype=float)
_EXCLUSIVE = np.array([f.exclusive_minimum for f in FEATURES])
_INTEGER = np.array([f.dtype == "int" for f in FEATURES])
_LOW_ROW, _HIGH_ROW = tuple(_LOW.tolist()), tuple(_HIGH.tolist())
_EXCLUSIVE_POS = tuple(np.flatnonzero(_EXCLUSIVE).tolist())
_INTEGER_POS = tuple(np.flatnonzero(_INTEGER).tolist())


class _WrongType(Exception):
    """A value the numpy path cannot take (not an int or a float, or a row not an object)."""


def validate_rows(records: Sequence[Any], offset_index: bool = True) -> np.ndarray:
    """Validate songs and return them as a float64 matrix with columns :data:`COLUMNS`.

    Args:
        records: Decoded JSON objects (one per song). Extra keys are ignored.
        offset_index: When True, errors carry the row index (``data[3].tempo``); use False for
            the single-song endpoint (``data.tempo``).

    Returns:
        Array of shape ``(len(records), len(COLUMNS))``; absent optional features are NaN.

    Raises:
        ValidationError: naming the first bad row and field, as ``validate_record`` does.
    """
    if len(records) < FAST_MIN_ROWS:  # a few rows: plain Python is cheaper than numpy calls
        return _row_by_row(records, offset_index)
    try:
        matrix, absent = _gather(records)
    except (_WrongType, KeyError, TypeError, ValueError, OverflowError):
        return _row_by_row(records, offset_index)
    broken = _broken_rows(matrix, absent)
    if broken.size:
        first = int(broken[0])
        _row_by_row([records[first]], offset_index, start=first)
        return _row_by_row(records, offset_index)  # not reached while both paths agree
    return matrix


def _gather(records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The matrix of a batch whose values all have a numeric type, and its absent-value mask.

    Raises:
        _WrongType: a row is not an object or a value is not an int or a float.
        KeyError: a required feature is missing.
    """
    if set(map(type, records)) != {dict}:
        raise _WrongType
    n = len(records)
    values = list(chain.from_iterable(map(_get_required, records)))  # row-major, C-level loops
    if not set(map(type, values)) <= _NUMBER_TYPES:
        raise _WrongType
    out = np.empty((n, len(COLUMNS)), dtype=np.float64)
    out[:, _REQ_POS] = np.array(values, dtype=np.float64).reshape(n, len(_REQUIRED))
    absent = np.zeros((n, len(COLUMNS)), dtype=bool)
    for name, pos in zip(_OPTIONAL, _OPT_POS, strict=True):
        column = list(map(dict.get, records, repeat(name)))
        kinds = set(map(type, column))
        if not kinds <= _OPTIONAL_TYPES:
            raise _WrongType
        if NoneType in kinds:
            absent[:, pos] = [v is None for v in column]
            column = [math.nan if v is None else v for v in column]
        out[:, pos] = column
    return out, absent


def _broken_rows(matrix: np.ndarray, absent: np.ndarray) -> np.ndarray:
    """Indices of the rows that break a bound, the whole-number or the finiteness rule."""
    with np.errstate(invalid="ignore"):
        too_low = np.where(_EXCLUSIVE, matrix <= _LOW, matrix < _LOW)
        bad = (
            too_low
            | (matrix > _HIGH)
            | (_INTEGER & (matrix != np.floor(matrix)))
            | ~np.isfinite(matrix)
        )
    bad &= ~absent
    return np.flatnonzero(bad.any(axis=1))


def _row_by_row(records: Sequence[Any], offset_index: bool, start: int = 0) -> np.ndarray:
    """Row-by-row check: :func:`_plain_row` when it can, else the shared ``validate_record``.

    Args:
        records: The rows to check.
        offset_index: Whether errors name the row index.
        start: Index of ``records[0]`` in the request (errors name the request's index).
    """
    rows = []
    for i, record in enumerate(records, start):
        row = _plain_row(record)
        if row is None:
            index = i if offset_index else None
            try:
                values = validate_record(record, index)
            except ValidationError:
                raise
            except (OverflowError, ValueError, TypeError) as exc:  # an int too big for a float
                raise ValidationError(_culprit(record), "must be a finite number", index) from exc
            row = [values.get(name, math.nan) for name in COLUMNS]
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(len(records), len(COLUMNS))


def _plain_row(record: Any) -> list[Any] | None:
    """The values of a song carrying every feature with a valid value, else None.

    The single-song fast path: the same rules as the numpy path, as C-level loops over one row
    (``map`` over the bounds). None sends the song to ``validate_record``, which names the
    problem; a song without its optional features goes there too.
    """
    if type(record) is not dict:
        return None
    row = list(map(record.get, COLUMNS))
    if not set(map(type, row)) <= _NUMBER_TYPES:
        return None
    try:
        if not all(map(math.isfinite, row)):
            return None
    except OverflowError:
        return None
    if not (all(map(le, _LOW_ROW, row)) and all(map(le, row, _HIGH_ROW))):
        return None
    if any(row[i] <= _LOW_ROW[i] for i in _EXCLUSIVE_POS):
        return None
    if any(row[i] != int(row[i]) for i in _INTEGER_POS):
        return None
    return row


def _culprit(record: Any) -> str:
    for name in COLUMNS:
        value = record.get(name) if isinstance(record, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                math.isfinite(value)
            except OverflowError:
                return name
    return ""


def row_features(matrix: np.ndarray) -> list[dict[str, float]]:
    """The validated values of each row as ``{feature: value}`` (absent optional ones left out)."""
    rows = matrix.tolist()
    if not np.isnan(matrix[:, _OPT_POS]).any():
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    return [{k: v for k, v in zip(COLUMNS, row, strict=True) if v == v} for row in rows]
