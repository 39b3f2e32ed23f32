"""The compiled tree walk is the plain Python walk, and the node table handles every shape.

:func:`reggaeton.fasttrees.walk` is the reference source that numba compiles; both must give the
same sums. Trees that are a single leaf (no split) and NaN sent each node's way are built by
hand here, since the trainer's estimators rarely produce them.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from reggaeton.fasttrees import BLOCK_ROWS, flatten, kernel, walk
from reggaeton.treecuts import Affine, AffineMap

COLUMNS = AffineMap.of([Affine(0, None, None), Affine(1, None, None)])


def _tree(feature, threshold, left, right):
    return SimpleNamespace(
        node_count=len(feature),
        feature=np.array(feature),
        threshold=np.array(threshold, dtype=float),
        children_left=np.array(left),
        children_right=np.array(right),
    )


# x0 <= 0.5 ? (x1 <= 2 ? 1 : 2) : 3   and a tree that is one leaf worth 10.
SPLIT = _tree([0, 1, -2, -2, -2], [0.5, 2.0, 0, 0, 0], [1, 2, -1, -1, -1], [4, 3, -1, -1, -1])
STUMP = _tree([-2], [0.0], [-1], [-1])
VALUES = [np.array([0, 0, 1.0, 2.0, 3.0]), np.array([10.0])]


def _sums(trees, X):
    out_py, out_jit = np.empty(len(X)), np.empty(len(X))
    args = (trees.feature, trees.cut, trees.children, trees.nan_right, trees.leaf_value)
    walk(X, *args, trees.roots, trees.base, out_py)
    kernel()(X, *args, trees.roots, trees.base, out_jit)
    np.testing.assert_array_equal(out_jit, out_py)
    np.testing.assert_array_equal(trees.raw_sum(X), out_py)
    return out_py


def test_sums_follow_each_split_and_add_single_leaf_trees():
    trees = flatten([SPLIT, STUMP], VALUES, COLUMNS, base=0.25, float32=False)
    assert list(trees.roots[1:]) == [~3]  # the stump's root is its only leaf
    X = np.array([[0.5, 2.0], [0.5, np.nextafter(2.0, 3)], [np.nextafter(0.5, 1), -5.0]])
    np.testing.assert_array_equal(_sums(trees, X), [11.25, 12.25, 13.25])


def test_nan_goes_the_way_each_node_says():
    right = [np.array([True, False, False, False, False]), np.array([False])]
    trees = flatten([SPLIT, STUMP], VALUES, COLUMNS, base=0.0, float32=False, nan_right=right)
    X = np.array([[np.nan, 0.0], [0.0, np.nan]])
    # x0 NaN goes right at the root (3); x1 NaN goes left at node 1 (1).
    np.testing.assert_array_equal(_sums(trees, X), [13.0, 11.0])


def test_blocks_of_rows_give_the_same_sums_as_one_row_at_a_time():
    trees = flatten([SPLIT, STUMP, SPLIT], [*VALUES, VALUES[0]], COLUMNS, base=-1.0)
    X = np.random.default_rng(0).uniform(-1, 4, size=(3 * BLOCK_ROWS + 5, 2))
    whole = _sums(trees, X)
    np.testing.assert_array_equal(whole, np.concatenate([trees.raw_sum(x[None]) for x in X]))
