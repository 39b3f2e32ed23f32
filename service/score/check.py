"""Validate a chunk of catalogue rows with the service's schema, column by column.

The vectorised test uses the bounds, dtypes and required flags of :data:`reggaeton.schema.FEATURES`
(the rule book the service validates with). A row it flags is re-checked on its own with
:func:`service.validation.validate_rows`, so a rejected row carries exactly the field and reason
the service would answer for that song. Nothing is dropped: every row is valid or rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reggaeton.schema import FEATURES, ValidationError
from service.validation import COLUMNS, validate_rows


@dataclass(frozen=True)
class Checked:
    """A validated chunk.

    Attributes:
        matrix: Valid rows, float64, columns :data:`service.validation.COLUMNS`.
        valid: Boolean mask over the chunk's rows (True = in ``matrix``).
        rejects: ``(chunk row, field, reason)`` for every other row.
    """

    matrix: np.ndarray
    valid: np.ndarray
    rejects: list[tuple[int, str, str]]


def check_chunk(table: pa.Table) -> Checked:
    """Split a chunk into its valid matrix and its rejected rows (with field and reason)."""
    n = table.num_rows
    out = np.empty((n, len(COLUMNS)), dtype=np.float64)
    bad = np.zeros(n, dtype=bool)
    names = set(table.column_names)
    for pos, feature in enumerate(FEATURES):
        if feature.name not in names:
            out[:, pos] = np.nan
            bad |= feature.required
            continue
        values, unusable = _numbers(table.column(feature.name))
        out[:, pos] = values
        bad |= unusable
        absent = np.isnan(values) & ~unusable
        with np.errstate(invalid="ignore"):
            wrong = ~np.isfinite(values)
            if feature.minimum is not None:
                wrong |= (
                    values <= feature.minimum
                    if feature.exclusive_minimum
                    else values < feature.minimum
                )
            if feature.maximum is not None:
                wrong |= values > feature.maximum
            if feature.dtype == "int":
                wrong |= values != np.floor(values)
        bad |= wrong & (~absent if not feature.required else True)
    rejects = [_reason(table, int(i)) for i in np.flatnonzero(bad)]
    confirmed = {row for row, _, _ in rejects}
    for row in np.flatnonzero(bad):
        if int(row) not in confirmed:  # the shared check accepts it: keep it (never drop)
            bad[row] = False
    return Checked(out[~bad], ~bad, [r for r in rejects if r[1] != "\0"])


def _numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The column as float64 (null -> NaN) and a mask of values that are not numbers."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return values.astype(np.float64, copy=False), np.zeros(len(values), dtype=bool)
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan), np.zeros(len(column), dtype=bool)
    raw = column.to_pylist()  # strings or booleans: not numbers (the shared check names them)
    return np.full(len(raw), np.nan), np.array([v is not None for v in raw], dtype=bool)


def _reason(table: pa.Table, row: int) -> tuple[int, str, str]:
    """The shared check's verdict on one row; field ``"\\0"`` means it found nothing wrong."""
    record = _record(table, row)
    try:
        validate_rows([record], offset_index=False)
    except ValidationError as exc:
        return row, exc.field, exc.rule
    return row, "\0", ""


def _record(table: pa.Table, row: int) -> dict[str, Any]:
    """One row as the service would decode it (a float NaN read from a file means absent)."""
    record = {}
    for name in table.column_names:
        value = table.column(name)[row].as_py()
        if isinstance(value, float) and value != value:
            value = None
        record[name] = value
    return record
