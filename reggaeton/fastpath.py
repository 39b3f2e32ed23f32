"""The fast path: a supported fitted pipeline turned into a raw-score function on raw rows.

The trainer's pipeline is ``ColumnTransformer(StandardScaler, passthrough) -> estimator``.
:func:`compile_pipeline` reads it through documented public attributes only and returns a
:class:`FastModel` whose :meth:`FastModel.raw_proba` equals ``pipeline.predict_proba(X)[:, 1]``
without the per-call machinery of the pipeline (validation, DataFrame handling, column
stacking, one Python call per tree):

* ``GradientBoostingClassifier`` (binary, log-loss, prior or zero init) and
  ``RandomForestClassifier`` / ``ExtraTreesClassifier``: their trees' ``tree_`` arrays, compiled
  by :mod:`reggaeton.fasttrees` (``trees:gbm``, ``trees:rf``);
* ``HistGradientBoostingClassifier`` publishes no tree structure of its own; treelite's public
  importer (``treelite.sklearn.import_model``) reads it and ``dump_as_json`` gives every
  node (feature, threshold, ``<=``, the missing-value direction, leaf values, base score), which
  :mod:`reggaeton.fasttrees` compiles like the GBM's trees, but with float64 comparisons and
  NaN sent each node's default way (``trees:hgb``);
* ``LogisticRegression``: its ``coef_`` and ``intercept_`` (``linear:logreg``).

Anything else returns None. There is no library version pin: :mod:`reggaeton.servable`
compiles a version when it is saved, keeps the result only if it equals ``predict_proba`` on
probe rows, and stores it as plain arrays, which is all the service loads (no pickle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.special import expit, logit

from reggaeton.fasttrees import FlatTrees, flatten
from reggaeton.treecuts import Affine, AffineMap, column_map

EVALUATORS = ("trees:gbm", "trees:rf", "trees:hgb", "linear:logreg")
"""Every :attr:`FastModel.name` (``inference_path`` of the service's ``GET /model``)."""


@dataclass(frozen=True)
class FastModel:
    """A compiled pipeline: raw rows ``(n, n_features)`` -> raw probability of class 1.

    Plain arrays and numbers only, so a version's servable file holds it without a pickle
    (:meth:`to_arrays`, :meth:`from_arrays`).

    Attributes:
        name: Which evaluator serves (one of :data:`EVALUATORS`).
        columns: The preprocessing as an affine map on raw columns.
        trees: The compiled trees, for the tree evaluators.
        weights: The linear model's coefficients (``linear:logreg``).
        offset: The linear model's intercept.
    """

    name: str
    columns: AffineMap
    trees: FlatTrees | None = None
    weights: np.ndarray | None = None
    offset: float = 0.0

    def raw_proba(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated probability of class 1, as ``pipeline.predict_proba(X)[:, 1]``."""
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        if self.trees is None:
            return expit(self.columns.apply(X) @ self.weights + self.offset)
        total = self.trees.raw_sum(X)
        if self.name == "trees:rf":  # a forest averages its trees' class-1 fractions
            return total / len(self.trees.roots)
        return expit(total)  # boosting: the sigmoid of the summed raw score

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as a named numpy array (what ``numpy.savez`` writes)."""
        arrays = {
            "name": np.array(self.name),
            "columns.raw": self.columns.raw_columns,
            "columns.mean": self.columns.means,
            "columns.scale": self.columns.scales,
        }
        if self.trees is not None:
            arrays.update(
                {
                    f"trees.{f.name}": np.asarray(getattr(self.trees, f.name))
                    for f in fields(FlatTrees)
                }
            )
        if self.weights is not None:
            arrays["linear.weights"] = self.weights
            arrays["linear.offset"] = np.array(self.offset)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_features: int) -> FastModel:
        """Rebuild what :meth:`to_arrays` wrote, checking every index is in range.

        The compiled walk does no bounds checks, so a malformed table must be refused here.

        Raises:
            ValueError: when a field is missing, of the wrong shape, or out of range.
        """
        try:
            return _from_arrays(arrays, n_features)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not a compiled model: {exc!r}") from exc


def _from_arrays(arrays: Mapping[str, np.ndarray], n_features: int) -> FastModel:
    name = str(arrays["name"])
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}")
    raw = np.asarray(arrays["columns.raw"], dtype=np.intp)
    means = np.asarray(arrays["columns.mean"], dtype=np.float64)
    scales = np.asarray(arrays["columns.scale"], dtype=np.float64)
    if not (raw.ndim == 1 and raw.shape == means.shape == scales.shape):
        raise ValueError("columns: raw, mean and scale differ in shape")
    if raw.size and (raw.min() < 0 or raw.max() >= n_features):
        raise ValueError(f"columns: raw column outside 0..{n_features - 1}")
    columns = AffineMap.of(
        [Affine(int(c), float(m), float(s)) for c, m, s in zip(raw, means, scales, strict=True)]
    )
    if name == "linear:logreg":
        weights = np.asarray(arrays["linear.weights"], dtype=np.float64)
        if weights.shape != raw.shape:
            raise ValueError("linear: one weight per column expected")
        return FastModel(name, columns, weights=weights, offset=float(arrays["linear.offset"]))
    trees = FlatTrees(
        feature=np.asarray(arrays["trees.feature"], dtype=np.int32),
        cut=np.asarray(arrays["trees.cut"], dtype=np.float64),
        children=np.asarray(arrays["trees.children"], dtype=np.int32),
        nan_right=np.asarray(arrays["trees.nan_right"], dtype=np.bool_),
        leaf_value=np.asarray(arrays["trees.leaf_value"], dtype=np.float64),
        roots=np.asarray(arrays["trees.roots"], dtype=np.int32),
        base=float(arrays["trees.base"]),
    )
    check_table(trees, n_features)
    return FastModel(name, columns, trees=trees)


def check_table(trees: FlatTrees, n_features: int) -> None:
    """Refuse a node table the walk could leave or loop in.

    Every id must name an existing split node or leaf, and every child must come after its
    parent (as :func:`reggaeton.fasttrees.flatten` numbers them), so each walk ends at a leaf.

    Raises:
        ValueError: naming the first broken rule.
    """
    splits, leaves = len(trees.feature), len(trees.leaf_value)
    if trees.cut.shape != (splits,) or trees.nan_right.shape != (splits,):
        raise ValueError("trees: one cut and one NaN direction per split node expected")
    if trees.children.shape != (2 * splits,) or trees.roots.ndim != 1 or not len(trees.roots):
        raise ValueError("trees: two children per split node and at least one root expected")
    if splits and (trees.feature.min() < 0 or trees.feature.max() >= n_features):
        raise ValueError(f"trees: a split tests a column outside 0..{n_features - 1}")
    ids = np.concatenate([trees.children, trees.roots]).astype(np.int64)
    if ids.max(initial=-1) >= splits or ids.min(initial=0) < -leaves:
        raise ValueError("trees: a node id outside the table")
    parent = np.repeat(np.arange(splits), 2)
    if np.any((trees.children >= 0) & (trees.children <= parent)):
        raise ValueError("trees: a child numbered before its parent (the walk could loop)")


def compile_pipeline(pipeline: Any, n_features: int) -> FastModel | None:
    """Compile a supported two-step pipeline, or return None.

    Args:
        pipeline: A fitted scikit-learn pipeline (preprocessing, estimator).
        n_features: Number of raw input columns the pipeline takes.
    """
    from sklearn.pipeline import Pipeline

    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return None
    pre, model = pipeline.steps[0][1], pipeline.steps[1][1]
    columns = column_map(pre, n_features)
    if columns is None or len(columns.columns) != getattr(model, "n_features_in_", None):
        return None
    if [int(c) for c in getattr(model, "classes_", [])] != [0, 1]:
        return None
    for compiler in (_gbm, _forest, _hgb, _logreg):
        fast = compiler(model, columns)
        if fast is not None:
            return fast
    return None


def _gbm(model: Any, columns: AffineMap) -> FastModel | None:
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier

    if type(model) is not GradientBoostingClassifier or model.loss != "log_loss":
        return None
    if model.estimators_.shape[1] != 1:
        return None
    init = model.init_
    if isinstance(init, str) and init == "zero":
        base = 0.0
    elif type(init) is DummyClassifier and init.strategy == "prior":
        # What scikit-learn's GBM does with its init estimator: clip the prior, take the logit.
        prior = init.predict_proba(np.zeros((1, model.n_features_in_)))[0, 1]
        eps = np.finfo(np.float64).eps
        base = float(logit(np.clip(prior, eps, 1 - eps)))
    else:
        return None
    lr = float(model.learning_rate)
    estimators = list(model.estimators_[:, 0])
    trees = flatten(
        [e.tree_ for e in estimators],
        [lr * e.tree_.value[:, 0, 0] for e in estimators],
        columns,
        base,
    )
    return FastModel("trees:gbm", columns, trees)


def _forest(model: Any, columns: AffineMap) -> FastModel | None:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    if type(model) not in (RandomForestClassifier, ExtraTreesClassifier):
        return None
    estimators = list(model.estimators_)
    if not estimators or any(
        type(e) not in (DecisionTreeClassifier, ExtraTreeClassifier) or e.n_outputs_ != 1
        for e in estimators
    ):
        return None
    leaf_values = []
    for e in estimators:
        value = e.tree_.value[:, 0, :]
        positive = list(e.classes_).index(1) if 1 in e.classes_ else None
        if positive is None:
            return None
        total = value.sum(axis=1)
        # Class fractions, as DecisionTreeClassifier.predict_proba normalises them.
        leaf_values.append(value[:, positive] / np.where(total > 0, total, 1.0))
    trees = flatten([e.tree_ for e in estimators], leaf_values, columns, 0.0)
    return FastModel("trees:rf", columns, trees)


def _hgb(model: Any, columns: AffineMap) -> FastModel | None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(model) is not HistGradientBoostingClassifier:
        return None
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        return None
    compiled = _treelite_trees(model)
    if compiled is None:
        return None
    shapes, leaf_values, nan_right, base = compiled
    trees = flatten(shapes, leaf_values, columns, base, float32=False, nan_right=nan_right)
    return FastModel("trees:hgb", columns, trees)


@dataclass(frozen=True)
class _TreeShape:
    """One tree of a treelite JSON dump in ``tree_``'s layout (what :func:`flatten` reads)."""

    node_count: int
    feature: np.ndarray
    threshold: np.ndarray
    children_left: np.ndarray
    children_right: np.ndarray


def _treelite_trees(
    model: Any,
) -> tuple[list[_TreeShape], list[np.ndarray], list[np.ndarray], float] | None:
    """A binary HGB's trees through treelite's public importer and JSON dump, or None.

    Returns:
        ``(trees, leaf values, NaN-goes-right per node, base raw score)``.
    """
    import json

    import treelite.sklearn

    dump = json.loads(treelite.sklearn.import_model(model).dump_as_json(pretty_print=False))
    if (
        dump.get("task_type") != "kBinaryClf"
        or dump.get("num_target") != 1
        or list(dump.get("num_class", [])) != [1]
        or dump.get("average_tree_output")
        or dump.get("postprocessor") != "sigmoid"
        or float(dump.get("sigmoid_alpha", 0.0)) != 1.0
        or len(dump.get("base_scores", [])) != 1
        or any(int(t) != 0 for t in dump.get("target_id", []) + dump.get("class_id", []))
    ):
        return None
    shapes, leaf_values, nan_right = [], [], []
    for tree in dump["trees"]:
        parsed = _tree_arrays(tree)
        if parsed is None:
            return None
        shapes.append(parsed[0])
        leaf_values.append(parsed[1])
        nan_right.append(parsed[2])
    if not shapes:
        return None
    return shapes, leaf_values, nan_right, float(dump["base_scores"][0])


def _tree_arrays(tree: dict) -> tuple[_TreeShape, np.ndarray, np.ndarray] | None:
    """One dumped tree's nodes as arrays; None for anything but numerical ``<``/``<=`` tests."""
    nodes = tree.get("nodes", [])
    n = len(nodes)
    if n == 0 or tree.get("has_categorical_split"):
        return None
    feature = np.full(n, -2, dtype=np.intp)
    threshold = np.zeros(n)
    left = np.full(n, -1, dtype=np.intp)
    right = np.full(n, -1, dtype=np.intp)
    value = np.zeros(n)
    nan_right = np.zeros(n, dtype=np.bool_)
    for node in nodes:
        i = int(node["node_id"])
        if not 0 <= i < n:
            return None
        if "leaf_value" in node:
            leaf = np.ravel(node["leaf_value"])
            if leaf.shape != (1,):
                return None
            value[i] = float(leaf[0])
            continue
        op = node.get("comparison_op")
        if node.get("node_type") != "numerical_test_node" or op not in ("<=", "<"):
            return None
        t = float(node["threshold"])
        # x < t is x <= the next double below t (both sides are float64).
        threshold[i] = t if op == "<=" else float(np.nextafter(t, -np.inf))
        feature[i] = int(node["split_feature_id"])
        left[i], right[i] = int(node["left_child"]), int(node["right_child"])
        nan_right[i] = not node["default_left"]
    inner = left >= 0
    idx = np.arange(n)
    # Node 0 must be the root: treelite numbers a parent before its children.
    if np.any(left[inner] <= idx[inner]) or np.any(right[inner] <= idx[inner]):
        return None
    shape = _TreeShape(n, feature, threshold, left, right)
    return shape, value, nan_right


def _logreg(model: Any, columns: AffineMap) -> FastModel | None:
    from sklearn.linear_model import LogisticRegression

    if type(model) is not LogisticRegression or model.coef_.shape[0] != 1:
        return None
    weights = np.asarray(model.coef_[0], dtype=np.float64)
    return FastModel("linear:logreg", columns, weights=weights, offset=float(model.intercept_[0]))
