"""The compiled-tree fast path equals ``pipeline.predict_proba`` and is used only when safe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from inference_helpers import in_bounds
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from reggaeton.schema import MODEL_FEATURES
from service.fasttrees import SMALL_BATCH, compile_pipeline

N = len(MODEL_FEATURES)
SCALED = [MODEL_FEATURES.index("loudness"), MODEL_FEATURES.index("tempo")]


def _assert_equal(pipeline, X, pipeline_input=None):
    fast = compile_pipeline(pipeline, N)
    assert fast is not None, "this structure must be compiled"
    expected = pipeline.predict_proba(X if pipeline_input is None else pipeline_input)[:, 1]
    for rows in (slice(0, 1), slice(0, SMALL_BATCH - 1), slice(None)):  # both evaluation paths
        got = fast.predict_proba1(X[rows])
        np.testing.assert_allclose(got, expected[rows], rtol=0, atol=1e-12)
    return fast


def test_trained_model_equals_predict_proba_on_the_whole_data_set(served, dataset):
    _, pipeline = served
    fast = _assert_equal(pipeline, dataset)
    # Not only within 1e-12: the same splits and the same summation order give equal bits,
    # on both evaluation paths and one row at a time.
    expected = pipeline.predict_proba(dataset)[:, 1]
    assert np.array_equal(fast.predict_proba1(dataset), expected)
    assert np.array_equal(fast.predict_proba1(dataset[:SMALL_BATCH - 1]),
                          expected[:SMALL_BATCH - 1])
    singles = np.array([fast.predict_proba1(dataset[i:i + 1])[0] for i in range(200)])
    assert np.array_equal(singles, expected[:200])


def test_trained_model_equals_predict_proba_on_random_in_bounds_rows(served):
    _assert_equal(served[1], in_bounds(20_000, seed=1))


def test_values_exactly_at_and_next_to_every_split_cut_agree(served):
    """The folded cuts are exact: x == cut goes left, the next float up goes right."""
    _, pipeline = served
    fast = compile_pipeline(pipeline, N)
    split = np.isfinite(fast.cut)
    base = in_bounds(1, seed=2)[0]
    rows = []
    for feature, cut in zip(fast.feature[split], fast.cut[split], strict=True):
        for value in (np.nextafter(cut, -np.inf), cut, np.nextafter(cut, np.inf)):
            row = base.copy()
            row[feature] = value
            rows.append(row)
    _assert_equal(pipeline, np.array(rows))


def _gbm(**params):
    defaults = dict(n_estimators=25, max_depth=3, random_state=0)
    return GradientBoostingClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def xy(dataset):
    rng = np.random.default_rng(3)
    y = (dataset[:, MODEL_FEATURES.index("danceability")] + rng.normal(0, 0.1, len(dataset))
         > 0.7).astype(int)
    return dataset, y


@pytest.mark.parametrize("make", [
    lambda: Pipeline([("p", ColumnTransformer([("s", StandardScaler(), SCALED)],
                                              remainder="passthrough")), ("m", _gbm())]),
    lambda: Pipeline([("p", ColumnTransformer([("s", StandardScaler(with_mean=False), SCALED)],
                                              remainder="passthrough")),
                      ("m", _gbm(init="zero", learning_rate=0.3, max_depth=5))]),
    lambda: Pipeline([("p", ColumnTransformer([("s", StandardScaler(), [0, 3, 9]),
                                               ("k", "passthrough", [1, 2])],
                                              remainder="drop")), ("m", _gbm(subsample=0.7))]),
], ids=["default", "no-centering-zero-init-deep", "drop-remainder"])
def test_supported_variants_are_equal(make, xy):
    X, y = xy
    _assert_equal(make().fit(X, y), np.vstack([X, in_bounds(3000, seed=4)]))


def test_pipeline_fitted_on_a_dataframe_with_column_names(xy):
    X, y = xy
    frame = pd.DataFrame(X, columns=list(MODEL_FEATURES))
    pipeline = Pipeline([("p", ColumnTransformer([("s", StandardScaler(), ["loudness", "tempo"])],
                                                 remainder="passthrough")), ("m", _gbm())])
    pipeline.fit(frame, y)
    _assert_equal(pipeline, X, pipeline_input=frame)


@pytest.mark.parametrize("make", [
    lambda: Pipeline([("p", ColumnTransformer([("s", MinMaxScaler(), SCALED)],
                                              remainder="passthrough")), ("m", _gbm())]),
    lambda: Pipeline([("p", ColumnTransformer([("s", StandardScaler(), SCALED)],
                                              remainder="passthrough")),
                      ("m", RandomForestClassifier(n_estimators=5, random_state=0))]),
    lambda: Pipeline([("s", StandardScaler()), ("m", _gbm())]),
    lambda: Pipeline([("p", ColumnTransformer([("s", StandardScaler(), SCALED)],
                                              remainder="passthrough")),
                      ("m", _gbm(loss="exponential"))]),
], ids=["minmax", "random-forest", "no-column-transformer", "exponential-loss"])
def test_unsupported_structures_are_not_compiled(make, xy):
    X, y = xy
    assert compile_pipeline(make().fit(X, y), N) is None


def test_other_scikit_learn_version_is_not_compiled(served, monkeypatch):
    monkeypatch.setattr(sklearn, "__version__", "1.9.2")
    assert compile_pipeline(served[1], N) is None
