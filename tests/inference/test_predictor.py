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
    assert fast.path_name == "trees:gbm" and generic.path_name == "pipeline"
    X = _validated(in_bounds(500, seed=5))
    p_fast, labels = fast.predict(X)
    p_generic, labels_generic = generic.predict(X)
    np.testing.assert_allclose(p_fast, p_generic, rtol=0, atol=1e-12)
    assert np.array_equal(labels, (p_fast >= version.threshold).astype(int))
    assert labels.any() and not labels.all(), "the threshold must split these rows"
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
        assert row == {
            "prediction": [float(lab)],
            "label": ["other", "reggaeton"][lab],
            "probability": p,
            "model_version": version.tag,
            "request_id": rid,
        }


def test_generic_path_equals_predict_proba(served):
    _, pipeline = served
    X = in_bounds(4, seed=7)
    expected = pipeline.predict_proba(X)[:, 1]
    np.testing.assert_allclose(generic_proba(pipeline, X, 1), expected, rtol=0, atol=0)


@pytest.mark.parametrize("allow_fast", [True, False], ids=["fast", "pipeline"])
def test_calibration_is_applied_after_the_raw_score_on_every_path(served, allow_fast):
    version, pipeline = served
    spec = {"method": "sigmoid", "a": 3.0, "b": -1.0}
    calibrated = dataclasses.replace(version, metadata={**version.metadata, "calibration": spec})
    predictor = build_predictor(calibrated, pipeline, allow_fast=allow_fast)
    assert (predictor.fast is not None) is allow_fast
    X = in_bounds(300, seed=8)
    raw = pipeline.predict_proba(X)[:, 1]
    expected = 1 / (1 + np.exp(-(3.0 * raw - 1.0)))
    np.testing.assert_allclose(predictor.predict_proba(X), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(predictor.predict_proba(X[:1]), expected[:1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(predictor.raw_proba(X), raw, rtol=0, atol=1e-12)
    proba, labels = predictor.predict(_validated(X))
    assert np.array_equal(labels, (proba >= version.threshold).astype(int))


def test_isotonic_calibration_and_unreadable_spec(served):
    version, pipeline = served
    spec = {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.1, 0.2, 0.9]}
    meta = {**version.metadata, "calibration": spec}
    predictor = build_predictor(dataclasses.replace(version, metadata=meta), pipeline)
    X = in_bounds(50, seed=9)
    expected = np.interp(pipeline.predict_proba(X)[:, 1], spec["x"], spec["y"])
    np.testing.assert_allclose(predictor.predict_proba(X), expected, rtol=0, atol=1e-12)
    bad = {**version.metadata, "calibration": {"method": "spline"}}
    with pytest.raises(ModelLoadError, match="calibration"):
        build_predictor(dataclasses.replace(version, metadata=bad), pipeline)


def test_unsupported_estimator_is_served_by_the_pipeline(served):
    version, _ = served
    from sklearn.compose import ColumnTransformer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X = in_bounds(200, seed=10)
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    knn = Pipeline(
        [
            ("p", ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough")),
            ("m", KNeighborsClassifier()),
        ]
    ).fit(X, y)
    raw_scores = {k: v for k, v in version.metadata.items() if k != "calibration"}
    predictor = build_predictor(dataclasses.replace(version, metadata=raw_scores), knn)
    assert predictor.fast is None and predictor.path_name == "pipeline"
    np.testing.assert_allclose(predictor.predict_proba(X[:5]), knn.predict_proba(X[:5])[:, 1])


def test_fast_path_that_disagrees_with_predict_proba_is_not_served(served, monkeypatch):
    version, pipeline = served
    import service.inference as inference

    real = inference.compile_pipeline

    def off_by_a_little(pipe, n):
        fast = real(pipe, n)
        return dataclasses.replace(fast, score=lambda X: fast.score(X) + 1e-9)

    monkeypatch.setattr(inference, "compile_pipeline", off_by_a_little)
    predictor = build_predictor(version, pipeline)
    assert predictor.fast is None and predictor.path_name == "pipeline"


def test_hgb_is_served_by_its_compiled_trees_and_falls_back_when_they_disagree(served, monkeypatch):
    """``trees:hgb`` serves only while it equals predict_proba; a wrong leaf means the pipeline."""
    import json

    import treelite.sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    version, _ = served
    X = in_bounds(600, seed=12)
    y = (X[:, 1] + X[:, 2] > np.median(X[:, 1] + X[:, 2])).astype(int)
    hgb = Pipeline(
        [
            ("p", ColumnTransformer([("s", StandardScaler(), [9, 10])], remainder="passthrough")),
            ("m", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        ]
    ).fit(X, y)
    raw_scores = dataclasses.replace(
        version, metadata={k: v for k, v in version.metadata.items() if k != "calibration"}
    )
    predictor = build_predictor(raw_scores, hgb)
    assert predictor.path_name == "trees:hgb"
    np.testing.assert_allclose(
        predictor.predict_proba(X[:1]), hgb.predict_proba(X[:1])[:, 1], rtol=0, atol=1e-12
    )

    real = treelite.sklearn.import_model

    class OneLeafOff:
        def __init__(self, model):
            self.model = model

        def dump_as_json(self, pretty_print=True):
            data = json.loads(real(self.model).dump_as_json(pretty_print=False))
            for tree in data["trees"]:
                for node in tree["nodes"]:
                    if "leaf_value" in node:
                        node["leaf_value"] += 1e-6
            return json.dumps(data)

    monkeypatch.setattr(treelite.sklearn, "import_model", OneLeafOff)
    predictor = build_predictor(raw_scores, hgb)
    assert predictor.fast is None and predictor.path_name == "pipeline"
