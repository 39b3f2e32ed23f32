"""Predictor and servable file: version checks, threshold labels, calibration, result shape.

A version is served from its servable file (:mod:`reggaeton.servable`); these tests build it
from the session's trained pipeline and from others, and check that what cannot be compiled, or
compiles to something that disagrees with ``predict_proba``, is refused when it is exported.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from inference_helpers import edit_treelite_dump, in_bounds

from reggaeton.registry import ModelLoadError
from reggaeton.servable import NotServable, export, load, pipeline_proba
from service.inference import build_predictor, result_rows
from service.validation import COLUMNS, MODEL_INDEX


def _validated(model_rows: np.ndarray) -> np.ndarray:
    out = np.full((len(model_rows), len(COLUMNS)), 1.0)
    out[:, MODEL_INDEX] = model_rows
    return out


def _predictor(version, pipeline, **metadata):
    """The predictor the service builds, from the servable file of ``pipeline``."""
    meta = {**version.metadata, **metadata}
    meta = {k: v for k, v in meta.items() if v is not None}
    return build_predictor(dataclasses.replace(version, metadata=meta), load(export(pipeline)))


def _raw_scores(version):
    return dataclasses.replace(
        version, metadata={k: v for k, v in version.metadata.items() if k != "calibration"}
    )


def test_served_scores_equal_the_pipeline_and_label_with_the_stored_threshold(served):
    version, pipeline = served
    predictor = _predictor(version, pipeline)
    assert predictor.path_name in ("trees:gbm", "trees:hgb")
    X = _validated(in_bounds(500, seed=5))
    proba, labels = predictor.predict(X)
    raw = pipeline.predict_proba(X[:, MODEL_INDEX])[:, 1]
    np.testing.assert_allclose(predictor.raw_proba(X[:, MODEL_INDEX]), raw, rtol=0, atol=1e-12)
    assert np.array_equal(labels, (proba >= version.threshold).astype(int))
    assert labels.any() and not labels.all(), "the threshold must split these rows"


def test_incompatible_feature_list_is_refused(served):
    version, pipeline = served
    with pytest.raises(ModelLoadError, match="features"):
        _predictor(version, pipeline, features=["tempo", "energy"])


def test_object_that_cannot_predict_valid_input_is_not_exported():
    class Broken:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            raise ValueError("boom")

    with pytest.raises(NotServable, match="predict_proba fails on valid input: boom"):
        export(Broken())


def test_result_rows_keep_the_original_response_shape(served):
    version, pipeline = served
    predictor = _predictor(version, pipeline)
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


def test_pipeline_proba_equals_predict_proba(served):
    _, pipeline = served
    X = in_bounds(4, seed=7)
    expected = pipeline.predict_proba(X)[:, 1]
    np.testing.assert_allclose(pipeline_proba(pipeline, X), expected, rtol=0, atol=0)


def test_calibration_is_applied_after_the_raw_score(served):
    version, pipeline = served
    predictor = _predictor(
        version, pipeline, calibration={"method": "sigmoid", "a": 3.0, "b": -1.0}
    )
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
    predictor = _predictor(version, pipeline, calibration=spec)
    X = in_bounds(50, seed=9)
    expected = np.interp(pipeline.predict_proba(X)[:, 1], spec["x"], spec["y"])
    np.testing.assert_allclose(predictor.predict_proba(X), expected, rtol=0, atol=1e-12)
    with pytest.raises(ModelLoadError, match="calibration"):
        _predictor(version, pipeline, calibration={"method": "spline"})


def test_unsupported_estimator_is_not_exported():
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
    with pytest.raises(NotServable, match="no compiled form for .*KNeighborsClassifier"):
        export(knn)


def test_fast_path_that_disagrees_with_predict_proba_is_not_exported(served, monkeypatch):
    _, pipeline = served
    import reggaeton.servable as servable

    real = servable.compile_pipeline

    def off_by_a_little(pipe, n):
        fast = real(pipe, n)
        return dataclasses.replace(
            fast, trees=dataclasses.replace(fast.trees, base=fast.trees.base + 1e-7)
        )

    monkeypatch.setattr(servable, "compile_pipeline", off_by_a_little)
    with pytest.raises(NotServable, match="differs from predict_proba by"):
        export(pipeline)


def test_hgb_is_served_by_its_compiled_trees_and_refused_when_they_disagree(served, monkeypatch):
    """``trees:hgb`` is exported only while it equals predict_proba; a wrong leaf is refused."""
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
    predictor = build_predictor(_raw_scores(version), load(export(hgb)))
    assert predictor.path_name == "trees:hgb"
    np.testing.assert_allclose(
        predictor.predict_proba(X[:1]), hgb.predict_proba(X[:1])[:, 1], rtol=0, atol=1e-12
    )

    def one_leaf_off(dump):
        for tree in dump["trees"]:
            for node in tree["nodes"]:
                if "leaf_value" in node:
                    node["leaf_value"] += 1e-6

    edit_treelite_dump(monkeypatch, one_leaf_off)
    with pytest.raises(NotServable, match="trees:hgb differs from predict_proba"):
        export(hgb)
