"""Split cuts on raw features: sklearn's scale -> float32 -> ``<=`` test folded into one number.

scikit-learn's trees see ``float32(scaled(x))`` and go left when it is ``<= threshold``. That
predicate is monotone in the raw float64 ``x``, so for every threshold there is a largest raw
value that still goes left; :func:`raw_cuts` finds it by bisection over the ordered float64
values (their bit patterns, as integers), vectorised over all thresholds of one column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_INT64_MIN = np.int64(np.iinfo(np.int64).min)
_DBL_MAX = np.finfo(np.float64).max


@dataclass(frozen=True)
class Affine:
    """How one estimator input column is made from a raw column."""

    raw_column: int
    mean: float | None  # subtracted when not None
    scale: float | None  # divided by when not None


def _goes_left(raw: np.ndarray, thresholds: np.ndarray, affine: Affine) -> np.ndarray:
    """sklearn's decision for raw values: scale in float64, cast to float32, ``<=`` in double."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = raw.astype(np.float64)
        if affine.mean is not None:
            scaled = scaled - affine.mean
        if affine.scale is not None:
            scaled = scaled / affine.scale
        return scaled.astype(np.float32).astype(np.float64) <= thresholds


def _to_key(x: np.ndarray) -> np.ndarray:
    bits = x.view(np.int64)
    return np.where(bits >= 0, bits, _INT64_MIN - bits)


def _from_key(key: np.ndarray) -> np.ndarray:
    bits = np.where(key >= 0, key, _INT64_MIN - key)
    return bits.astype(np.int64).view(np.float64)


def raw_cuts(thresholds: np.ndarray, affine: Affine) -> np.ndarray:
    """Largest raw float64 value that goes left at each threshold (bisection on float order).

    Args:
        thresholds: Split thresholds of one estimator input column.
        affine: How that column is computed from the raw column.

    Returns:
        Cuts such that ``raw <= cut`` equals sklearn's ``float32(scaled(raw)) <= threshold``
        for every finite raw value.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = thresholds.shape[0]
    lo = _to_key(np.full(n, -_DBL_MAX))  # goes left (scaled value is very negative)
    hi = _to_key(np.full(n, _DBL_MAX))  # goes right
    left_at_lo = _goes_left(_from_key(lo), thresholds, affine)
    left_at_hi = _goes_left(_from_key(hi), thresholds, affine)
    for _ in range(66):
        active = hi > lo + 1  # (hi - lo could overflow int64)
        if not active.any():
            break
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # overflow-free floor average
        left = _goes_left(_from_key(mid), thresholds, affine)
        lo = np.where(active & left, mid, lo)
        hi = np.where(active & ~left, mid, hi)
    cut = _from_key(lo)
    cut = np.where(left_at_hi, np.inf, cut)  # everything goes left
    return np.where(~left_at_lo, -np.inf, cut)  # nothing goes left
