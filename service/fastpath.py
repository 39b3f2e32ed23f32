"""The fast path: a supported fitted pipeline turned into a raw-score function on raw rows.

The trainer's pipeline is ``ColumnTransformer(StandardScaler, passthrough) -> estimator``.
:func:`compile_pipeline` reads it through documented public attributes only and returns a
:class:`FastModel` whose :meth:`FastModel.raw_proba` equals ``pipeline.predict_proba(X)[:, 1]``
without the per-call machinery of the pipeline (validation, DataFrame handling, column
stacking, one Python call per tree):

* ``GradientBoostingClassifier`` (binary, log-loss, prior or zero init) and
  ``RandomForestClassifier`` / ``ExtraTreesClassifier``: their trees' ``tree_`` arrays, compiled
  by :mod:`service.fasttrees` (``trees:gbm``, ``trees:rf``; a forest hands batches of
  :data:`FOREST_SKLEARN_ROWS` rows or more to its own ``predict_proba`` on the scaled matrix);
* ``HistGradientBoostingClassifier`` publishes no tree structure, so its own ``predict_proba``
  is called on the affine-scaled matrix with scikit-learn's validation switched off
  (``sklearn:hgb``);
* ``LogisticRegression``: its ``coef_`` and ``intercept_`` (``linear:logreg``).

Anything else returns None and the service keeps ``pipeline.predict_proba``. There is no
version pin: :func:`service.inference.build_predictor` compares the result with
``predict_proba`` on probe rows at load time and serves the fast path only when they agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

from service.fasttrees import FlatTrees, flatten
from service.treecuts import AffineMap, column_map

FOREST_SKLEARN_ROWS = 512
"""Forests score batches of this many rows or more with their own ``predict_proba``."""
EVALUATORS = ("trees:gbm", "trees:rf", "sklearn:hgb", "linear:logreg")
"""Every :attr:`FastModel.name`; with ``"pipeline"`` these are the values of ``path_name``."""


@dataclass(frozen=True)
class FastModel:
    """A compiled pipeline: raw rows ``(n, n_features)`` -> raw probability of class 1.

    Attributes:
        name: Which evaluator serves (``trees:gbm``, ``trees:rf``, ``sklearn:hgb``, ...).
        columns: The preprocessing as an affine map on raw columns.
        trees: The compiled trees, for the tree evaluators.
        score: Raw rows -> probability of class 1.
    """

    name: str
    columns: AffineMap
    trees: FlatTrees | None
    score: Callable[[np.ndarray], np.ndarray]

    def raw_proba(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated probability of class 1, as ``pipeline.predict_proba(X)[:, 1]``."""
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        return self.score(X)


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
    return FastModel("trees:gbm", columns, trees, lambda X: expit(trees.raw_sum(X)))


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
    import sklearn

    trees = flatten([e.tree_ for e in estimators], leaf_values, columns, 0.0)
    count = float(len(estimators))

    def score(X: np.ndarray) -> np.ndarray:
        if X.shape[0] < FOREST_SKLEARN_ROWS:
            return trees.raw_sum(X) / count
        # Deep trees: from a few hundred rows on, scikit-learn's compiled per-tree loop wins
        # over the numpy walk (one step per level); same public model, same numbers.
        Z = columns.apply(X)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return model.predict_proba(Z)[:, 1]

    return FastModel("trees:rf", columns, trees, score)


def _hgb(model: Any, columns: AffineMap) -> FastModel | None:
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(model) is not HistGradientBoostingClassifier:
        return None
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        return None

    from threadpoolctl import ThreadpoolController

    # HGB predicts with OpenMP threads; for request-sized inputs on a shared machine they only
    # add contention, so each call runs on one thread (threadpoolctl's public limit).
    controller = ThreadpoolController()

    def score(X: np.ndarray) -> np.ndarray:
        Z = columns.apply(X)
        with (
            controller.limit(limits=1, user_api="openmp"),
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
        ):
            return model.predict_proba(Z)[:, 1]

    return FastModel("sklearn:hgb", columns, None, score)


def _logreg(model: Any, columns: AffineMap) -> FastModel | None:
    from sklearn.linear_model import LogisticRegression

    if type(model) is not LogisticRegression or model.coef_.shape[0] != 1:
        return None
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    intercept = float(model.intercept_[0])
    return FastModel(
        "linear:logreg", columns, None, lambda X: expit(columns.apply(X) @ coef + intercept)
    )
