"""Predictor: version checks, threshold labels, generic fallback, result shape."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from inference_helpers import in_bounds

from reggaeton.registry import ModelLoadError
from service.inference import build_predictor, generic_proba, result_rows
from service.validation import COLUMNS, MODEL_INDEX


def _validated(model_rows: np.ndarray) -> np.ndarray:
    out = np.full((len(model_rows), len(COLUMNS)), 1.0)
    out[:, MODEL_INDEX] = model_rows
    return out


def test_fast_and_generic_predictors_agree_and_label_with_the_stored_threshold(served):
    version, pipeline = served
    fast = build_predictor(version, pipeline)
    generic = build_predictor(version, pipeline, allow_fast=False)
    assert fast.path_name == "compiled-trees" and generic.path_name == "pipeline"
    X = _validated(in_bounds(500, seed=5))
    p_fast, labels = fast.predict(X)
    p_generic, labels_generic = generic.predict(X)
    np.testing.assert_allclose(p_fast, p_generic, rtol=0, atol=1e-12)
    assert np.array_equal(labels, (p_fast >= version.threshold).astype(int))
    assert np.array_equal(labels, labels_generic)


def test_incompatible_feature_list_is_refused(served):
    version, pipeline = served
    meta = {**version.metadata, "features": ["tempo", "energy"]}
    with pytest.raises(ModelLoadError, match="features"):
        build_predictor(dataclasses.replace(version, metadata=meta), pipeline)


def test_object_that_cannot_predict_valid_input_is_refused(served):
    version, _ = served

    class Broken:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            raise ValueError("boom")

    with pytest.raises(ModelLoadError, match="predict_proba"):
        build_predictor(version, Broken())


def test_result_rows_keep_the_original_response_shape(served):
    version, pipeline = served
    predictor = build_predictor(version, pipeline)
    proba, labels = predictor.predict(_validated(in_bounds(3, seed=6)))
    rows = result_rows(predictor, proba, labels, ["a", "b", "c"])
    for row, p, lab, rid in zip(rows, proba, labels, "abc", strict=True):
        assert row == {"prediction": [float(lab)], "label": ["other", "reggaeton"][lab],
                       "probability": p, "model_version": version.tag, "request_id": rid}


def test_generic_path_equals_predict_proba(served):
    _, pipeline = served
    X = in_bounds(4, seed=7)
    expected = pipeline.predict_proba(X)[:, 1]
    np.testing.assert_allclose(generic_proba(pipeline, X, 1), expected, rtol=0, atol=0)
