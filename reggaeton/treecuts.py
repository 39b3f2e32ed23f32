"""Raw-space view of a fitted ``ColumnTransformer`` of scalers, and split cuts folded onto it.

Two facts let the fast path read raw (unscaled) features directly:

* The preprocessing the trainer fits (``StandardScaler`` on some columns, the rest passed
  through) is one affine map per estimator input column. :func:`column_map` reads it from
  public fitted attributes only (``transformers_``, ``output_indices_``, ``mean_``,
  ``scale_``), so any scikit-learn release with those documented attributes is supported and
  the save-time parity check (:mod:`reggaeton.servable`) decides whether the result is served.
* scikit-learn's trees see ``float32(scaled(x))`` and go left when it is ``<= threshold``;
  ``HistGradientBoosting`` compares the float64 ``scaled(x)`` itself (``float32=False``). Both
  predicates are monotone in the raw float64 ``x``, so for every threshold there is a largest
  raw value that still goes left; :func:`raw_cuts` finds it by bisection over the ordered
  float64 values (their bit patterns, as integers), vectorised over all thresholds of a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_INT64_MIN = np.int64(np.iinfo(np.int64).min)
_DBL_MAX = np.finfo(np.float64).max


@dataclass(frozen=True)
class Affine:
    """How one estimator input column is made from a raw column."""

    raw_column: int
    mean: float | None  # subtracted when not None
    scale: float | None  # divided by when not None


@dataclass(frozen=True)
class AffineMap:
    """The whole preprocessing step as arrays: ``(X[:, columns] - means) / scales``.

    The two operations are done in float64 in the same order as ``StandardScaler.transform``,
    so the result equals the ``ColumnTransformer`` output bit for bit (0 and 1 are exact
    no-ops for the passed-through columns).
    """

    columns: tuple[Affine, ...]
    raw_columns: np.ndarray
    means: np.ndarray
    scales: np.ndarray

    @classmethod
    def of(cls, columns: list[Affine]) -> AffineMap:
        """Build the arrays for a list of per-column affines."""
        return cls(
            columns=tuple(columns),
            raw_columns=np.array([c.raw_column for c in columns], dtype=np.intp),
            means=np.array([0.0 if c.mean is None else c.mean for c in columns]),
            scales=np.array([1.0 if c.scale is None else c.scale for c in columns]),
        )

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The estimator's input for raw rows ``X`` (a new float64 array)."""
        Z = X[:, self.raw_columns]  # fancy indexing copies
        Z -= self.means
        Z /= self.scales
        return Z


def column_map(pre: Any, n_features: int) -> AffineMap | None:
    """Estimator input column -> (raw column, affine), or None when the step is unsupported.

    Supported: a dense ``ColumnTransformer`` whose fitted transformers are ``StandardScaler``,
    ``"passthrough"`` or ``"drop"`` (the remainder too), selecting columns by position, by name
    (fitted on a DataFrame whose columns are the raw features in order), by slice or by mask.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import StandardScaler

    if type(pre) is not ColumnTransformer or getattr(pre, "sparse_output_", True):
        return None
    if getattr(pre, "n_features_in_", None) != n_features:
        return None
    names = getattr(pre, "feature_names_in_", None)
    width = sum(s.stop - s.start for s in pre.output_indices_.values())
    out: list[Affine | None] = [None] * width
    for name, trans, selection in pre.transformers_:
        where = pre.output_indices_.get(name, slice(0, 0))
        if (isinstance(trans, str) and trans == "drop") or where.stop == where.start:
            continue
        indices = _positions(selection, n_features, names)
        if indices is None or where.stop - where.start != len(indices):
            return None
        if _is_identity(trans):
            affines = [Affine(c, None, None) for c in indices]
        elif type(trans) is StandardScaler:
            affines = _scaler_affines(trans, indices)
            if affines is None:
                return None
        else:
            return None
        out[where.start : where.stop] = affines
    if not out or any(a is None for a in out):
        return None
    return AffineMap.of(out)  # type: ignore[arg-type]


def _positions(selection: Any, n_features: int, names: Any) -> list[int] | None:
    """Raw column positions of a fitted transformer's column selection, or None."""
    if isinstance(selection, slice):
        return list(range(n_features))[selection]
    if callable(selection) or isinstance(selection, str | int):
        return None
    items = list(selection)
    if all(isinstance(v, bool | np.bool_) for v in items) and len(items) == n_features:
        return [i for i, keep in enumerate(items) if keep]
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
        return [int(v) for v in items]
    if names is not None and all(isinstance(v, str) for v in items):
        lookup = {str(n): i for i, n in enumerate(names)}
        if all(v in lookup for v in items):
            return [lookup[v] for v in items]
    return None


def _is_identity(trans: Any) -> bool:
    """``"passthrough"``, or the identity FunctionTransformer sklearn fits for it."""
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(trans, str):
        return trans == "passthrough"
    return type(trans) is FunctionTransformer and trans.func is None and not trans.validate


def _scaler_affines(scaler: Any, indices: list[int]) -> list[Affine] | None:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None
    for arr in (mean, scale):
        if arr is not None and (len(arr) != len(indices) or not np.all(np.isfinite(arr))):
            return None
    if scale is not None and not np.all(scale > 0):
        return None
    return [
        Affine(
            c,
            None if mean is None else float(mean[k]),
            None if scale is None else float(scale[k]),
        )
        for k, c in enumerate(indices)
    ]


def _goes_left(
    raw: np.ndarray, thresholds: np.ndarray, affine: Affine, float32: bool
) -> np.ndarray:
    """The tree's decision for raw values: scale in float64, optionally cast to float32, ``<=``."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = raw.astype(np.float64)
        if affine.mean is not None:
            scaled = scaled - affine.mean
        if affine.scale is not None:
            scaled = scaled / affine.scale
        if float32:
            scaled = scaled.astype(np.float32).astype(np.float64)
        return scaled <= thresholds


def _to_key(x: np.ndarray) -> np.ndarray:
    bits = x.view(np.int64)
    return np.where(bits >= 0, bits, _INT64_MIN - bits)


def _from_key(key: np.ndarray) -> np.ndarray:
    bits = np.where(key >= 0, key, _INT64_MIN - key)
    return bits.astype(np.int64).view(np.float64)


def raw_cuts(thresholds: np.ndarray, affine: Affine, float32: bool = True) -> np.ndarray:
    """Largest raw float64 value that goes left at each threshold (bisection on float order).

    Args:
        thresholds: Split thresholds of one estimator input column.
        affine: How that column is computed from the raw column.
        float32: Whether the tree casts the scaled value to float32 before comparing
            (scikit-learn's ``tree_`` trees do, ``HistGradientBoosting`` does not).

    Returns:
        Cuts such that ``raw <= cut`` equals the tree's ``cast(scaled(raw)) <= threshold``
        for every finite raw value.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = thresholds.shape[0]
    lo = _to_key(np.full(n, -_DBL_MAX))  # goes left (scaled value is very negative)
    hi = _to_key(np.full(n, _DBL_MAX))  # goes right
    left_at_lo = _goes_left(_from_key(lo), thresholds, affine, float32)
    left_at_hi = _goes_left(_from_key(hi), thresholds, affine, float32)
    for _ in range(66):
        active = hi > lo + 1  # (hi - lo could overflow int64)
        if not active.any():
            break
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # overflow-free floor average
        left = _goes_left(_from_key(mid), thresholds, affine, float32)
        lo = np.where(active & left, mid, lo)
        hi = np.where(active & ~left, mid, hi)
    cut = _from_key(lo)
    cut = np.where(left_at_hi, np.inf, cut)  # everything goes left
    return np.where(~left_at_lo, -np.inf, cut)  # nothing goes left
