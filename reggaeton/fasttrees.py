"""Tree ensembles compiled to one node table over raw features, walked by compiled code.

Every fitted scikit-learn tree documents its structure in ``estimator.tree_`` (``feature``,
``threshold``, ``children_left``/``children_right``, ``value``). :func:`flatten` concatenates
the trees of an ensemble into one table of split nodes whose cuts are expressed on the *raw*
input columns (the scaler and sklearn's float32 cast are folded in by
:mod:`reggaeton.treecuts`); leaves are kept apart as a value array, referred to by negative ids.

:func:`walk` sums the leaves a batch of rows reaches, tree by tree over blocks of rows (one
tree's nodes stay in cache while a block walks it), four rows abreast (their walks are
independent, so the processor overlaps them instead of waiting on each step's loads). It is
plain Python, compiled by numba's public ``njit`` on first use (:func:`kernel`): the same
source is the reference and the fast code. It adds the leaves in tree order from the base
score, as scikit-learn does, so the sums equal the estimator's own.

Which supported estimators map to which node values is decided in :mod:`reggaeton.fastpath`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reggaeton.treecuts import AffineMap, raw_cuts

BLOCK_ROWS = 128
"""Rows walked through one tree before the next tree (the block's rows stay in L1 cache)."""


@dataclass(frozen=True)
class FlatTrees:
    """All trees of an ensemble as one table of split nodes with cuts on raw features.

    Node ids ``>= 0`` are split nodes; ``~i`` (negative) is leaf ``i``.

    Attributes:
        feature: Raw column tested at each split node.
        cut: Go left when ``x <= cut``, right when ``x > cut``.
        children: ``children[2 * node]`` is the left child, ``children[2 * node + 1]`` the right.
        nan_right: Per split node, whether a NaN goes right (all False when the trees were
            built for finite rows: the service validates them, and a NaN then goes left).
        leaf_value: What each leaf adds to the raw score.
        roots: Each tree's root id, in ensemble order.
        base: Raw score before any tree (the GBM's init; 0 for a forest).
    """

    feature: np.ndarray
    cut: np.ndarray
    children: np.ndarray
    nan_right: np.ndarray
    leaf_value: np.ndarray
    roots: np.ndarray
    base: float

    def raw_sum(self, X: np.ndarray) -> np.ndarray:
        """``base + sum over trees of the leaf value`` for raw float64 rows ``X``."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty(X.shape[0], dtype=np.float64)
        kernel()(
            X,
            self.feature,
            self.cut,
            self.children,
            self.nan_right,
            self.leaf_value,
            self.roots,
            self.base,
            out,
        )
        return out


def walk(
    X: np.ndarray,
    feature: np.ndarray,
    cut: np.ndarray,
    children: np.ndarray,
    nan_right: np.ndarray,
    leaf_value: np.ndarray,
    roots: np.ndarray,
    base: float,
    out: np.ndarray,
) -> None:
    """Write ``base + sum of reached leaf values`` of each row of ``X`` into ``out``.

    Runs as numba-compiled code through :func:`kernel`; callable as plain Python too.
    """
    n = X.shape[0]
    for r in range(n):
        out[r] = base
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        for t in range(roots.shape[0]):
            root = roots[t]
            r = start
            # Four rows at a time: their walks are independent, so the processor overlaps
            # them. A lane that reached its leaf (negative id) stays there.
            while r + 4 <= stop:
                a = b = c = d = root
                while (a & b & c & d) >= 0:
                    if a >= 0:
                        x = X[r, feature[a]]
                        a = children[2 * a + ((x > cut[a]) | ((x != x) & nan_right[a]))]
                    if b >= 0:
                        x = X[r + 1, feature[b]]
                        b = children[2 * b + ((x > cut[b]) | ((x != x) & nan_right[b]))]
                    if c >= 0:
                        x = X[r + 2, feature[c]]
                        c = children[2 * c + ((x > cut[c]) | ((x != x) & nan_right[c]))]
                    if d >= 0:
                        x = X[r + 3, feature[d]]
                        d = children[2 * d + ((x > cut[d]) | ((x != x) & nan_right[d]))]
                out[r] += leaf_value[~a]
                out[r + 1] += leaf_value[~b]
                out[r + 2] += leaf_value[~c]
                out[r + 3] += leaf_value[~d]
                r += 4
            while r < stop:
                node = root
                while node >= 0:
                    x = X[r, feature[node]]
                    node = children[2 * node + ((x > cut[node]) | ((x != x) & nan_right[node]))]
                out[r] += leaf_value[~node]
                r += 1


@functools.cache
def kernel() -> Callable[..., None]:
    """:func:`walk` compiled by numba (imported here, on first use, not at import time).

    ``nogil`` lets the service's threads walk at the same time. No on-disk cache: the
    service's root filesystem is read-only, and compiling takes under a second per process.
    """
    import numba

    return numba.njit(nogil=True)(walk)


def flatten(
    trees: list[Any],
    leaf_values: list[np.ndarray],
    columns: AffineMap,
    base: float,
    float32: bool = True,
    nan_right: list[np.ndarray] | None = None,
) -> FlatTrees:
    """Concatenate fitted trees into one :class:`FlatTrees`.

    Args:
        trees: Per tree, an object with ``tree_``'s documented arrays (``node_count``,
            ``feature``, ``threshold``, ``children_left``/``children_right``, -1 at leaves),
            in ensemble order.
        leaf_values: Per tree, what each node adds to the raw score (read at leaves only).
        columns: How each estimator input column is made from the raw columns.
        base: Raw score before any tree.
        float32: Whether the trees compare ``float32(scaled(x))`` (scikit-learn's ``tree_``)
            rather than the float64 value (``HistGradientBoosting``).
        nan_right: Per tree, whether each node sends a NaN right (None: finite rows only).
    """
    feats, thresholds, kids, nans, leaves, roots = [], [], [], [], [], []
    splits, n_leaves = 0, 0
    for i, (tree, leaf_value) in enumerate(zip(trees, leaf_values, strict=True)):
        left = np.asarray(tree.children_left)
        is_leaf = left == -1
        is_split = ~is_leaf
        # New ids in the tree's own node order: split nodes count up, leaves count down.
        ids = np.where(
            is_split,
            np.cumsum(is_split) - 1 + splits,
            ~(np.cumsum(is_leaf) - 1 + n_leaves),
        )
        feats.append(np.asarray(tree.feature)[is_split])
        thresholds.append(np.asarray(tree.threshold, dtype=np.float64)[is_split])
        pair = np.empty((int(is_split.sum()), 2), dtype=np.int64)
        pair[:, 0] = ids[left[is_split]]
        pair[:, 1] = ids[np.asarray(tree.children_right)[is_split]]
        kids.append(pair.ravel())
        if nan_right is not None:
            nans.append(np.asarray(nan_right[i], dtype=np.bool_)[is_split])
        leaves.append(np.asarray(leaf_value, dtype=np.float64)[is_leaf])
        roots.append(ids[0])
        splits += int(is_split.sum())
        n_leaves += int(is_leaf.sum())
    model_feature = np.concatenate(feats).astype(np.intp)
    threshold = np.concatenate(thresholds)
    cut = np.empty(splits)
    raw_feature = np.zeros(splits, dtype=np.int32)
    for col in np.unique(model_feature):
        mask = model_feature == col
        cut[mask] = raw_cuts(threshold[mask], columns.columns[col], float32)
        raw_feature[mask] = columns.columns[col].raw_column
    return FlatTrees(
        feature=raw_feature,
        cut=cut,
        children=np.concatenate(kids).astype(np.int32),
        nan_right=np.concatenate(nans) if nans else np.zeros(splits, dtype=np.bool_),
        leaf_value=np.concatenate(leaves),
        roots=np.asarray(roots, dtype=np.int32),
        base=float(base),
    )
