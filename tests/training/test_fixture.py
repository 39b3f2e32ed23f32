"""The shared trained_home fixture yields a usable promoted version."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reggaeton.registry import Registry
from reggaeton.schema import MODEL_FEATURES


def test_trained_home_has_promoted_default_structure(trained_home):
    registry = Registry(trained_home)
    version = registry.serving_version()
    pipeline = registry.load_pipeline(version)
    assert isinstance(pipeline, Pipeline)
    pre, model = pipeline.steps[0][1], pipeline.steps[-1][1]
    assert isinstance(pre, ColumnTransformer) and isinstance(model, GradientBoostingClassifier)
    assert isinstance(pre.named_transformers_["scale"], StandardScaler)
    assert version.metadata["features"] == list(MODEL_FEATURES)
    assert version.reference_path("profile.bin").stat().st_size > 0
    proba = pipeline.predict_proba(np.zeros((2, len(MODEL_FEATURES))))[:, 1]
    assert proba.shape == (2,)
