"""Tree ensembles compiled to flat numpy arrays over raw features, from public attributes only.

Every fitted scikit-learn tree documents its structure in ``estimator.tree_`` (``feature``,
``threshold``, ``children_left``/``children_right``, ``value``). :func:`flatten` concatenates
the trees of an ensemble into one node table whose split cuts are expressed on the *raw*
input columns (the scaler and sklearn's float32 cast are folded in by
:mod:`service.treecuts`), and :class:`FlatTrees` evaluates it in two ways:

* a level-wise walk over all trees at once: one numpy step per tree level, any depth;
* for ensembles of trees at most 3 deep (the trainer's GBM), a table per tree: the 7 split
  tests of a row in one tree are packed into one byte and that byte indexes the tree's leaf
  value directly, so a batch costs a few whole-array operations, whatever the row count.

Which supported estimators map to which node values is decided in :mod:`service.fastpath`.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.treecuts import AffineMap, raw_cuts

TABLE_DEPTH = 3
"""Trees at most this deep are also compiled to per-tree leaf tables (8 tests in one word)."""
EARLY_STOP = (6, 3)
"""The single-row walk checks whether every tree has reached a leaf after level 6, then every
3 levels: deep forests are much deeper than most of their paths."""
CHUNK_ROWS = 256
"""Rows evaluated together by the batch paths (keeps the temporaries in cache)."""
_BYTES8 = np.dtype("<u8")
"""8 test results read as one little-endian word: byte j (position j) is bits 8j to 8j + 7."""
_PACK = np.uint64(0x0102040810204080)
"""Multiplying 8 bytes that are 0 or 1 by this puts byte j in bit 56 + j (no carries)."""


@dataclass(frozen=True)
class FlatTrees:
    """All trees of an ensemble as one node table with cuts on raw features.

    Attributes:
        feature: Raw column tested at each node (0 for leaves).
        cut: Go left when ``x <= cut`` (leaves: +inf, and they loop on themselves).
        children: ``children[2 * node + go_right]`` is the next node.
        value: What each leaf adds to the raw score (only leaves are read).
        roots: Index of each tree's root, in ensemble order.
        depth: Maximum tree depth (steps to reach any leaf).
        base: Raw score before any tree (the GBM's init; 0 for a forest).
        table: Per-tree leaf tables when every tree is at most :data:`TABLE_DEPTH` deep.
        inner: Number of split nodes; they come first, leaves after them.
        left: ``children[0::2]`` of the split nodes, in the narrowest integer type that holds
            every node id (int16 or int32: numpy's cast of the test results and the per-node
            arithmetic cost less in it than in intp).
        step: ``children[1::2] - children[0::2]`` of the split nodes, same type.
        column_counts: Number of split nodes testing each raw column (they are grouped).
        nan_right: Per node, whether a NaN goes right (None: the trees were built for finite
            rows only and NaN is not handled).
        local: Per-thread work arrays of the single-row walk.
    """

    feature: np.ndarray
    cut: np.ndarray
    children: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    base: float
    table: LeafTables | None
    inner: int
    left: np.ndarray
    step: np.ndarray
    column_counts: np.ndarray
    nan_right: np.ndarray | None = None
    local: threading.local = field(default_factory=threading.local, compare=False, repr=False)

    def raw_sum(self, X: np.ndarray) -> np.ndarray:
        """``base + sum over trees of the leaf value`` for raw float64 rows ``X``.

        Without :attr:`nan_right` rows must be finite (the service validates them): a NaN
        would go left everywhere. With it, rows holding a NaN take the level-wise walk, where
        each node sends a NaN the way its tree says.
        """
        n = X.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.float64)
        if self.nan_right is not None and _has_nan(X):
            return _chunked(self._walk_nan, X) + self.base
        if self.table is not None:
            if n == 1:
                return self.table.sum_one(X[0]) + self.base
            return _chunked(self.table.sum_many, X) + self.base
        if n == 1:
            return np.array([self._walk_one(X[0])]) + self.base
        return _chunked(self._walk_many, X) + self.base

    def _walk_one(self, x: np.ndarray) -> float:
        # One row: every split node's test at once, then one gather per level (fewer numpy
        # calls per level than testing only the nodes reached, which matters for deep trees).
        # Split nodes come first, grouped by column, so repeating each raw value over its
        # group lines the values up with the cuts; leaves step to themselves.
        inner = self.inner
        values = np.repeat(x[: len(self.column_counts)], self.column_counts)
        right = np.greater(values, self.cut[:inner], out=_scratch("w1.r", (inner,), np.bool_))
        after = self._after_buffer()
        head = after[:inner]
        np.multiply(right, self.step, out=head)
        head += self.left
        node = self.roots
        first, every = EARLY_STOP
        for level in range(self.depth):
            node = after.take(node)
            # Leaves are numbered after the split nodes and step to themselves.
            if level >= first and (level - first) % every == 0 and node.min() >= inner:
                break
        return float(self.value.take(node).sum())

    def _after_buffer(self) -> np.ndarray:
        """This thread's next-node array; its leaf part (each leaf itself) is written once."""
        after = getattr(self.local, "after", None)
        if after is None:
            after = np.empty(len(self.cut), dtype=self.left.dtype)
            after[self.inner :] = self.children[2 * self.inner :: 2]  # a leaf's left is itself
            self.local.after = after
        return after

    def _walk_nan(self, X: np.ndarray) -> np.ndarray:
        return self._walk_many(X, nan=True)

    def _walk_many(self, X: np.ndarray, nan: bool = False) -> np.ndarray:
        n, trees = X.shape[0], len(self.roots)
        flat = X.ravel()  # row-major: value of (row, column) at row * width + column
        rows = (np.arange(n, dtype=np.intp) * X.shape[1])[:, None]
        node = _scratch("wn.node", (CHUNK_ROWS, trees), np.intp)[:n]
        index = _scratch("wn.index", (CHUNK_ROWS, trees), np.intp)[:n]
        value = _scratch("wn.value", (CHUNK_ROWS, trees), np.float64)[:n]
        cut = _scratch("wn.cut", (CHUNK_ROWS, trees), np.float64)[:n]
        right = _scratch("wn.right", (CHUNK_ROWS, trees), np.bool_)[:n]
        node[:] = self.roots
        for _ in range(self.depth):
            np.take(self.feature, node, out=index, mode="clip")
            index += rows
            np.take(flat, index, out=value, mode="clip")
            np.take(self.cut, node, out=cut, mode="clip")
            np.greater(value, cut, out=right)
            if nan:  # a NaN compares False (left); send it right where the tree says so
                right |= np.isnan(value) & self.nan_right.take(node)
            node *= 2
            node += right
            np.take(self.children, node, out=index, mode="clip")
            node, index = index, node
        return np.take(self.value, node, out=value, mode="clip").sum(axis=1)


@dataclass(frozen=True)
class LeafTables:
    """Trees at most 3 deep as complete binary trees of 7 tests (+1 unused) and 256-entry tables.

    Position ``p`` of a tree (heap order: children ``2p + 1`` and ``2p + 2``) tests
    ``x[feature] > cut``; a leaf reached above depth 3 is padded with tests that always go
    left. The 8 test results of a row in one tree, read as bits, index ``values``.

    Attributes:
        feature: ``(trees * 8,)`` raw column per position.
        cut: ``(trees * 8,)`` cut per position (+inf for padding).
        values: ``(trees * 256,)`` leaf value for each code of each tree.
        offsets: ``(trees,)`` start of each tree's table in ``values`` (uint64, as the codes).
        unique_cut: Cut of each distinct test, grouped by column in ascending order.
        groups: ``(column, start, stop)`` spans of ``unique_cut`` per column.
        position_test: Index into the distinct tests of each position.
    """

    feature: np.ndarray
    cut: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    unique_cut: np.ndarray
    groups: tuple[tuple[int, int, int], ...]
    position_test: np.ndarray

    def sum_one(self, x: np.ndarray) -> np.ndarray:
        """Sum of the leaf values for one raw row."""
        right = x[self.feature] > self.cut
        code = (right.view(_BYTES8) * _PACK) >> np.uint64(56)
        return np.array([self.values[(code + self.offsets).view(np.int64)].sum()])

    def sum_many(self, X: np.ndarray) -> np.ndarray:
        """Sums of the leaf values for raw rows ``X`` (each distinct test evaluated once)."""
        n, trees = X.shape[0], len(self.offsets)
        width = len(self.unique_cut) + 1
        tests = _scratch("lt.tests", (CHUNK_ROWS, width), np.bool_)[:n]
        tests[:, -1] = False  # the padding positions' test
        for column, start, stop in self.groups:
            np.greater(
                X[:, column : column + 1], self.unique_cut[start:stop], out=tests[:, start:stop]
            )
        right = _scratch("lt.right", (CHUNK_ROWS, 8 * trees), np.bool_)[:n]
        np.take(tests, self.position_test, axis=1, out=right, mode="clip")  # C order
        code = _scratch("lt.code", (CHUNK_ROWS, trees), np.uint64)[:n]
        np.multiply(right.view(_BYTES8), _PACK, out=code)
        code >>= np.uint64(56)
        code += self.offsets
        leaf = _scratch("lt.leaf", (CHUNK_ROWS, trees), np.float64)[:n]
        np.take(self.values, code.view(np.int64), out=leaf, mode="clip")
        return leaf.sum(axis=1)


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A work array of this thread, reused between calls (large temporaries cost page faults).

    Callers use it only within one evaluation and never return it, so threads and successive
    calls cannot see each other's data.
    """
    pool = getattr(_SCRATCH, "pool", None)
    if pool is None:
        pool = _SCRATCH.pool = {}
    key = (name, shape, np.dtype(dtype).str)
    array = pool.get(key)
    if array is None:
        array = pool[key] = np.empty(shape, dtype=dtype)
    return array


def _has_nan(X: np.ndarray) -> bool:
    if X.shape[0] == 1:
        x = X[0]
        return math.isnan(float(x @ x))  # squares are >= 0 or inf: NaN only from a NaN
    return bool(np.isnan(X).any())


def _chunked(fn: Any, X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.shape[0] <= CHUNK_ROWS:
        return fn(X)
    return np.concatenate([fn(X[i : i + CHUNK_ROWS]) for i in range(0, len(X), CHUNK_ROWS)])


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
            ``max_depth``, ``feature``, ``threshold``, ``children_left``/``children_right``,
            -1 at leaves), in ensemble order.
        leaf_values: Per tree, what each node adds to the raw score (read at leaves only).
        columns: How each estimator input column is made from the raw columns.
        base: Raw score before any tree.
        float32: Whether the trees compare ``float32(scaled(x))`` (scikit-learn's ``tree_``)
            rather than the float64 value (``HistGradientBoosting``).
        nan_right: Per tree, whether each node sends a NaN right (None: finite rows only).
    """
    feats, thresholds, children, values, roots = [], [], [], [], []
    depth, offset = 0, 0
    for tree, leaf_value in zip(trees, leaf_values, strict=True):
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        idx = np.arange(tree.node_count)
        feats.append(np.where(is_leaf, -1, tree.feature))
        thresholds.append(tree.threshold)
        kids = np.empty(2 * tree.node_count, dtype=np.intp)
        kids[0::2] = np.where(is_leaf, idx, left) + offset  # leaves loop on themselves
        kids[1::2] = np.where(is_leaf, idx, right) + offset
        children.append(kids)
        values.append(np.asarray(leaf_value, dtype=np.float64))
        roots.append(offset)
        depth = max(depth, int(tree.max_depth))
        offset += tree.node_count
    model_feature = np.concatenate(feats)
    threshold = np.concatenate(thresholds)
    cut = np.full(offset, np.inf)
    raw_feature = np.zeros(offset, dtype=np.intp)
    for col in np.unique(model_feature[model_feature >= 0]):
        mask = model_feature == col
        cut[mask] = raw_cuts(threshold[mask], columns.columns[col], float32)
        raw_feature[mask] = columns.columns[col].raw_column
    # Renumber: split nodes first (grouped by raw column), then leaves.
    n_columns = int(columns.raw_columns.max()) + 1 if len(columns.raw_columns) else 0
    is_split = model_feature >= 0
    order = np.lexsort((raw_feature, ~is_split))
    new_id = np.empty(offset, dtype=np.intp)
    new_id[order] = np.arange(offset, dtype=np.intp)
    kids = new_id[np.concatenate(children)].reshape(offset, 2)[order].ravel()
    inner = int(is_split.sum())
    narrow = next(t for t in (np.int16, np.int32, np.intp) if offset <= np.iinfo(t).max)
    flat = dict(
        feature=raw_feature[order],
        cut=cut[order],
        children=kids,
        value=np.concatenate(values)[order],
        roots=new_id[np.asarray(roots, dtype=np.intp)],
        depth=depth,
        base=base,
    )
    table = _leaf_tables(**flat) if depth <= TABLE_DEPTH else None
    nan = None
    if nan_right is not None:
        nan = np.concatenate([np.asarray(r, dtype=np.bool_) for r in nan_right])[order]
        nan &= is_split[order]
    return FlatTrees(
        **flat,
        table=table,
        inner=inner,
        left=kids[0 : 2 * inner : 2].astype(narrow),
        step=(kids[1 : 2 * inner : 2] - kids[0 : 2 * inner : 2]).astype(narrow),
        column_counts=np.bincount(raw_feature[order][:inner], minlength=n_columns),
        nan_right=nan,
    )


def _leaf_tables(
    feature: np.ndarray,
    cut: np.ndarray,
    children: np.ndarray,
    value: np.ndarray,
    roots: np.ndarray,
    **_: Any,
) -> LeafTables:
    """Complete-tree layout and 256-entry leaf tables for trees at most 3 deep."""
    trees = len(roots)
    pos_node = np.empty((trees, 15), dtype=np.intp)  # heap positions 0..14, 7..14 are leaves
    pos_node[:, 0] = roots
    for p in range(7):
        node = pos_node[:, p]
        pos_node[:, 2 * p + 1] = children[2 * node]
        pos_node[:, 2 * p + 2] = children[2 * node + 1]  # a leaf's children are itself
    inner = pos_node[:, :7]
    is_leaf = children[2 * inner] == inner
    pos_feature = np.zeros((trees, 8), dtype=np.intp)
    pos_cut = np.full((trees, 8), np.inf)
    pos_feature[:, :7] = np.where(is_leaf, 0, feature[inner])
    pos_cut[:, :7] = np.where(is_leaf, np.inf, cut[inner])
    codes = np.arange(256)
    pos = np.zeros((trees, 256), dtype=np.intp)
    for _ in range(TABLE_DEPTH):  # follow the bits of each code from the root
        bit = (codes[None, :] >> pos) & 1
        pos = 2 * pos + 1 + bit
    leaf = np.take_along_axis(pos_node, pos, axis=1)
    keys = np.stack([pos_feature.ravel().astype(np.float64), pos_cut.ravel()])
    finite = np.isfinite(keys[1])
    unique = np.unique(keys[:, finite], axis=1)  # sorted by column, then cut
    test = np.full(keys.shape[1], unique.shape[1], dtype=np.intp)  # padding: last column
    lookup = {(int(f), c): i for i, (f, c) in enumerate(zip(unique[0], unique[1], strict=True))}
    for i in np.flatnonzero(finite):
        test[i] = lookup[(int(keys[0, i]), keys[1, i])]
    cols = unique[0].astype(np.intp)
    groups = tuple(
        (int(c), int(np.searchsorted(cols, c)), int(np.searchsorted(cols, c, side="right")))
        for c in np.unique(cols)
    )
    return LeafTables(
        feature=pos_feature.ravel(),
        cut=pos_cut.ravel(),
        values=value[leaf].ravel(),
        offsets=np.arange(trees, dtype=np.uint64) * np.uint64(256),
        unique_cut=unique[1].copy(),
        groups=groups,
        position_test=test,
    )
