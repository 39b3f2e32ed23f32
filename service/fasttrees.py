"""Guarded fast path: a fitted scaler + gradient-boosting pipeline compiled to flat numpy trees.

Supported structure, exactly (anything else returns ``None`` and the caller keeps the generic
``pipeline.predict_proba`` path):

* ``sklearn.pipeline.Pipeline`` with two steps;
* step 1: ``ColumnTransformer`` whose fitted transformers are ``StandardScaler`` (dense) or
  ``"passthrough"`` / ``"drop"`` (the remainder too);
* step 2: binary ``GradientBoostingClassifier`` with the log-loss, ``init`` = prior or zero;
* scikit-learn exactly :data:`PINNED_SKLEARN` (the tree layout and the float32 cast are
  version-specific behaviour).

How it stays bit-compatible with ``predict_proba``: scikit-learn scales in float64, casts the
scaled matrix to float32, then tests ``x32 <= threshold`` in double. That predicate is monotone
in the *raw* value, so for every split node we find, by bisection over the ordered float64
values, the largest raw value that still goes left (the affine scaling and the float32 rounding
are folded into one raw-space cut). The leaf values are then summed tree by tree in the same
order as ``predict_stages`` and passed through the same ``expit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from service.treecuts import Affine, raw_cuts

PINNED_SKLEARN = "1.9.1"
SMALL_BATCH = 16
"""From this many rows on, the Cython ``predict_stages`` beats the numpy walk."""


@dataclass(frozen=True)
class FlatGBM:
    """All trees of a binary GBM as flat arrays, split cuts expressed on raw features.

    Attributes:
        feature: Raw column tested at each node (0 for leaves).
        cut: Go left when ``x <= cut`` (leaves: +inf, they loop on themselves).
        children: ``children[2 * node + go_right]`` is the next node.
        leaf_value: ``learning_rate * value`` at each node (only leaves are read).
        roots: Index of each tree's root, in boosting order.
        init_raw: The constant raw score of the init estimator.
        depth: Maximum tree depth (number of steps to reach any leaf).
    """

    feature: np.ndarray
    cut: np.ndarray
    children: np.ndarray
    leaf_value: np.ndarray
    roots: np.ndarray
    init_raw: float
    depth: int
    n_features: int
    estimators: Any = None
    learning_rate: float = 0.1
    raw_columns: np.ndarray | None = None
    means: np.ndarray | None = None
    scales: np.ndarray | None = None

    def predict_proba1(self, X: np.ndarray) -> np.ndarray:
        """Probability of class 1 for a float64 matrix of raw features ``(n, n_features)``.

        Small inputs walk the flat arrays (no per-call overhead); larger ones scale the columns
        exactly as the pipeline does and call scikit-learn's own Cython ``predict_stages``,
        which is faster per row once there are more than a few rows.
        """
        n = X.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.float64)
        if n >= SMALL_BATCH and self.estimators is not None:
            return self._predict_stages(X)
        return self._predict_flat(X)

    def _predict_stages(self, X: np.ndarray) -> np.ndarray:
        from sklearn.ensemble._gradient_boosting import predict_stages

        Z = X[:, self.raw_columns]  # fancy indexing copies
        Z -= self.means  # the StandardScaler operations, in float64 (0 and 1 are exact no-ops)
        Z /= self.scales
        Z32 = np.ascontiguousarray(Z, dtype=np.float32)
        raw = np.full((n := X.shape[0], 1), self.init_raw, dtype=np.float64)
        predict_stages(self.estimators, Z32, self.learning_rate, raw)
        return expit(raw.reshape(n))

    def _predict_one(self, x: np.ndarray) -> np.ndarray:
        node = self.roots
        for _ in range(self.depth):
            node = self.children[2 * node + (x[self.feature[node]] > self.cut[node])]
        values = np.empty(len(node) + 1)
        values[0] = self.init_raw
        values[1:] = self.leaf_value[node]
        return expit(np.add.accumulate(values)[-1:])  # same order as predict_stages

    def _predict_flat(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        if n == 1:
            return self._predict_one(X[0])
        xt = np.ascontiguousarray(X.T, dtype=np.float64).ravel()  # (features * n,)
        node = np.repeat(self.roots[:, None], n, axis=1)  # (trees, n), tree-major
        col = np.arange(n, dtype=np.intp)
        for _ in range(self.depth):
            values = xt[self.feature[node] * n + col]
            right = values > self.cut[node]
            node = self.children[2 * node + right]
        stacked = np.empty((node.shape[0] + 1, n), dtype=np.float64)
        stacked[0] = self.init_raw
        stacked[1:] = self.leaf_value[node]
        # A running sum adds the rows one after another: the same order (init, tree 1,
        # tree 2, ...) as sklearn's predict_stages, hence the same rounding (a plain sum may
        # use pairwise summation).
        raw = np.add.accumulate(stacked, axis=0)[-1]
        return expit(raw)


def compile_pipeline(pipeline: Any, n_features: int) -> FlatGBM | None:
    """Compile a supported pipeline, or return None when the structure is not supported.

    Args:
        pipeline: A fitted scikit-learn pipeline.
        n_features: Number of raw input columns the pipeline takes.
    """
    try:
        import sklearn
        from sklearn.compose import ColumnTransformer
        from sklearn.dummy import DummyClassifier
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - sklearn is a hard dependency
        return None
    if sklearn.__version__ != PINNED_SKLEARN or type(pipeline) is not Pipeline:
        return None
    if len(pipeline.steps) != 2:
        return None
    pre, gbm = pipeline.steps[0][1], pipeline.steps[1][1]
    if type(pre) is not ColumnTransformer or type(gbm) is not GradientBoostingClassifier:
        return None
    columns = _column_map(pre, n_features)
    if columns is None or len(columns) != gbm.n_features_in_:
        return None
    if (gbm.n_trees_per_iteration_ != 1 or list(gbm.classes_) != [0, 1]
            or gbm.loss != "log_loss"):
        return None
    init = gbm.init_
    if not (init == "zero" or (type(init) is DummyClassifier and init.strategy == "prior")):
        return None
    init_raw = float(gbm._raw_predict_init(np.zeros((1, gbm.n_features_in_), np.float32))[0, 0])
    return _flatten(gbm, columns, init_raw, n_features)


def _column_map(pre: Any, n_features: int) -> list[Affine] | None:
    """Estimator input column -> (raw column, affine), or None when unsupported."""
    from sklearn.preprocessing import StandardScaler

    if getattr(pre, "sparse_output_", True) or getattr(pre, "n_features_in_", None) != n_features:
        return None
    width = sum(s.stop - s.start for s in pre.output_indices_.values())
    out: list[Affine | None] = [None] * width
    for name, trans, _ in pre.transformers_:
        indices = list(pre._transformer_to_input_indices.get(name, []))
        where = pre.output_indices_.get(name, slice(0, 0))
        if (isinstance(trans, str) and trans == "drop") or where.stop == where.start:
            continue
        if where.stop - where.start != len(indices):
            return None
        if _is_identity(trans):
            affines = [Affine(c, None, None) for c in indices]
        elif type(trans) is StandardScaler:
            affines = _scaler_affines(trans, indices)
            if affines is None:
                return None
        else:
            return None
        out[where.start:where.stop] = affines
    if any(a is None for a in out):
        return None
    return out  # type: ignore[return-value]


def _is_identity(trans: Any) -> bool:
    """``"passthrough"``, or the identity FunctionTransformer sklearn fits for it."""
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(trans, str):
        return trans == "passthrough"
    return (type(trans) is FunctionTransformer and trans.func is None
            and not trans.validate)


def _scaler_affines(scaler: Any, indices: list[int]) -> list[Affine] | None:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None
    for arr in (mean, scale):
        if arr is not None and (len(arr) != len(indices) or not np.all(np.isfinite(arr))):
            return None
    if scale is not None and not np.all(scale > 0):
        return None
    return [
        Affine(c, None if mean is None else float(mean[k]),
                None if scale is None else float(scale[k]))
        for k, c in enumerate(indices)
    ]


def _flatten(gbm: Any, columns: list[Affine], init_raw: float, n_features: int) -> FlatGBM:
    feats, thresholds, children, values, roots = [], [], [], [], []
    depth, offset = 0, 0
    lr = float(gbm.learning_rate)
    for est in gbm.estimators_[:, 0]:
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        idx = np.arange(tree.node_count)
        feats.append(np.where(is_leaf, -1, tree.feature))
        thresholds.append(tree.threshold)
        kids = np.empty(2 * tree.node_count, dtype=np.intp)
        kids[0::2] = np.where(is_leaf, idx, left) + offset  # leaves loop on themselves
        kids[1::2] = np.where(is_leaf, idx, right) + offset
        children.append(kids)
        values.append(lr * tree.value[:, 0, 0])  # the product predict_stages computes
        roots.append(offset)
        depth = max(depth, int(tree.max_depth))
        offset += tree.node_count
    gbm_feature = np.concatenate(feats)
    threshold = np.concatenate(thresholds)
    cut = np.full(offset, np.inf)
    raw_feature = np.zeros(offset, dtype=np.intp)
    for gbm_col in np.unique(gbm_feature[gbm_feature >= 0]):
        mask = gbm_feature == gbm_col
        cut[mask] = raw_cuts(threshold[mask], columns[gbm_col])
        raw_feature[mask] = columns[gbm_col].raw_column
    return FlatGBM(
        feature=raw_feature, cut=cut, children=np.concatenate(children),
        leaf_value=np.concatenate(values), roots=np.asarray(roots, dtype=np.intp),
        init_raw=init_raw, depth=depth, n_features=n_features,
        estimators=gbm.estimators_, learning_rate=lr,
        raw_columns=np.array([c.raw_column for c in columns], dtype=np.intp),
        means=np.array([0.0 if c.mean is None else c.mean for c in columns]),
        scales=np.array([1.0 if c.scale is None else c.scale for c in columns]),
    )
