"""The one scikit-learn Pipeline that is trained, saved and served.

Structure (kept stable because the service compiles a fast path from it)::

    Pipeline([("preprocess", ColumnTransformer([("scale", StandardScaler(), [i, j])],
                                               remainder="passthrough")),
              ("model", <estimator>)])

The ColumnTransformer selects columns by integer position and is fitted on a NumPy array
whose columns are ``MODEL_FEATURES`` in order (the columns the service sends), so callers
pass ``frame[MODEL_FEATURES].to_numpy()`` (see :func:`to_matrix`). SMOTE, when
configured, runs inside an imbalanced-learn pipeline during fitting only; the saved object
is the equivalent plain sklearn Pipeline without the sampler (samplers do nothing at
predict time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from reggaeton.schema import MODEL_FEATURES
from training.config import TrainConfig

ESTIMATOR_CLASSES: dict[str, type] = {
    "gbm": GradientBoostingClassifier,
    "hgb": HistGradientBoostingClassifier,
    "rf": RandomForestClassifier,
    "logreg": LogisticRegression,
}
PREPROCESS_STEP = "preprocess"
MODEL_STEP = "model"


def to_matrix(frame: pd.DataFrame, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The model input: ``features`` columns of ``frame``, in order, as a float64 array."""
    return frame.loc[:, list(features)].to_numpy(dtype=np.float64)


def make_estimator(name: str, params: dict[str, Any]) -> Any:
    """Instantiate a configured estimator.

    Raises:
        ValueError: for an unknown estimator name or parameter (the message names it).
    """
    try:
        cls = ESTIMATOR_CLASSES[name]
    except KeyError as exc:
        raise ValueError(f"model.estimator: unknown estimator {name!r}") from exc
    valid = cls().get_params()
    for key in params:
        if key not in valid:
            raise ValueError(f"model.params.{key}: not a parameter of {cls.__name__}")
    return cls(**params)


def make_preprocess(features: list[str], scale: list[str]) -> ColumnTransformer:
    """StandardScaler on the ``scale`` columns (by position), the rest passed through."""
    positions = [features.index(name) for name in scale]
    return ColumnTransformer([("scale", StandardScaler(), positions)], remainder="passthrough")


def fit_pipeline(config: TrainConfig, X: np.ndarray, y: np.ndarray) -> Pipeline:
    """Fit preprocessing + estimator with the configured imbalance strategy.

    Args:
        config: Training configuration (features, estimator, imbalance, seed).
        X: Input matrix, columns = ``MODEL_FEATURES`` in order.
        y: Labels (1 reggaeton, 0 other).

    Returns:
        A fitted plain ``sklearn.pipeline.Pipeline`` (preprocess, model).
    """
    # A couple of thousand rows: OpenMP threads (HistGradientBoosting) only add contention.
    with threadpool_limits(limits=1):
        return _fit(config, np.asarray(X, dtype=np.float64), np.asarray(y))


def _fit(config: TrainConfig, X: np.ndarray, y: np.ndarray) -> Pipeline:
    preprocess = make_preprocess(list(MODEL_FEATURES), config.model.scale)
    estimator = make_estimator(config.model.estimator, config.model.params)
    strategy = config.imbalance.strategy
    if strategy == "smote":
        from imblearn.over_sampling import SMOTE
        from imblearn.pipeline import Pipeline as ImbPipeline

        minority = int(min(np.bincount(y.astype(int), minlength=2)))
        k = max(1, min(config.imbalance.k_neighbors, minority - 1))
        sampler = SMOTE(k_neighbors=k, random_state=config.seed)
        fitted = ImbPipeline(
            [(PREPROCESS_STEP, preprocess), ("smote", sampler), (MODEL_STEP, estimator)]
        ).fit(X, y)
        return Pipeline(
            [
                (PREPROCESS_STEP, fitted.named_steps[PREPROCESS_STEP]),
                (MODEL_STEP, fitted.named_steps[MODEL_STEP]),
            ]
        )
    pipeline = Pipeline([(PREPROCESS_STEP, preprocess), (MODEL_STEP, estimator)])
    if strategy == "class_weight":
        weights = compute_sample_weight("balanced", y)
        return pipeline.fit(X, y, **{f"{MODEL_STEP}__sample_weight": weights})
    return pipeline.fit(X, y)


def describe(pipeline: Pipeline) -> str:
    """Short human description, e.g. ``ColumnTransformer+GradientBoostingClassifier``."""
    return "+".join(type(step).__name__ for _, step in pipeline.steps)
