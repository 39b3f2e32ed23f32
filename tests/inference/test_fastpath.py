"""The fast path equals ``pipeline.predict_proba`` for every estimator the trainer offers.

Each supported structure is compared on random in-bounds rows, on the seed data set, and on
rows placed exactly at, just below and just above every folded split cut, one row at a time
and in batches (the evaluators take different code for each). HistGradientBoosting, compiled
from treelite's JSON dump, is also checked with NaN in a column it saw missing in training and
in one it did not. Unsupported structures must not compile, so the service keeps the generic
path for them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from inference_helpers import edit_treelite_dump, in_bounds
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from reggaeton.fastpath import FastModel, compile_pipeline
from reggaeton.fasttrees import BLOCK_ROWS
from reggaeton.schema import MODEL_FEATURES

N = len(MODEL_FEATURES)
SCALED = [MODEL_FEATURES.index("loudness"), MODEL_FEATURES.index("tempo")]


def _pre(**scaler):
    return ColumnTransformer([("s", StandardScaler(**scaler), SCALED)], remainder="passthrough")


def _assert_equal(pipeline, X, pipeline_input=None, name=None):
    fast = compile_pipeline(pipeline, N)
    assert fast is not None, "this structure must be compiled"
    if name is not None:
        assert fast.name == name
    expected = pipeline.predict_proba(X if pipeline_input is None else pipeline_input)[:, 1]
    np.testing.assert_allclose(fast.raw_proba(X), expected, rtol=0, atol=1e-12)
    # inside one block, across a block boundary, several blocks and a partial one
    for rows in (7, BLOCK_ROWS + 44, 8 * BLOCK_ROWS + 1):
        np.testing.assert_allclose(fast.raw_proba(X[:rows]), expected[:rows], rtol=0, atol=1e-12)
    singles = np.concatenate([fast.raw_proba(X[i : i + 1]) for i in range(min(len(X), 50))])
    np.testing.assert_allclose(singles, expected[: len(singles)], rtol=0, atol=1e-12)
    return fast


@pytest.fixture(scope="module")
def xy(dataset):
    rng = np.random.default_rng(3)
    signal = dataset[:, MODEL_FEATURES.index("danceability")] + rng.normal(0, 0.1, len(dataset))
    return dataset, (signal > 0.7).astype(int)


def _gbm(**params):
    return GradientBoostingClassifier(
        **{"n_estimators": 25, "max_depth": 3, "random_state": 0, **params}
    )


TRAINER_ESTIMATORS = {
    "gbm": (lambda: _gbm(subsample=0.8), "trees:gbm"),
    "gbm-deep-zero-init": (lambda: _gbm(init="zero", learning_rate=0.3, max_depth=5), "trees:gbm"),
    "rf": (
        lambda: RandomForestClassifier(n_estimators=15, min_samples_leaf=3, random_state=0),
        "trees:rf",
    ),
    "rf-shallow-weighted": (
        lambda: RandomForestClassifier(
            n_estimators=10, max_depth=3, class_weight="balanced", random_state=0
        ),
        "trees:rf",
    ),
    "extra-trees": (lambda: ExtraTreesClassifier(n_estimators=10, random_state=0), "trees:rf"),
    "hgb": (lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), "trees:hgb"),
    "hgb-trainer-like": (
        lambda: HistGradientBoostingClassifier(
            max_iter=60,
            learning_rate=0.1,
            max_leaf_nodes=16,
            min_samples_leaf=9,
            l2_regularization=0.9,
            class_weight="balanced",
            random_state=0,
        ),
        "trees:hgb",
    ),
    "logreg": (lambda: LogisticRegression(C=0.01, max_iter=5000), "linear:logreg"),
}


@pytest.fixture(scope="module", params=sorted(TRAINER_ESTIMATORS))
def fitted(request, xy):
    make, name = TRAINER_ESTIMATORS[request.param]
    X, y = xy
    return Pipeline([("p", _pre()), ("m", make())]).fit(X, y), name


def test_equals_predict_proba_on_data_and_random_in_bounds_rows(fitted, xy):
    pipeline, name = fitted
    X = np.vstack([xy[0], in_bounds(8 * BLOCK_ROWS + 3, seed=4)])
    fast = _assert_equal(pipeline, X, name=name)
    # What the servable file stores gives the same numbers once read back.
    again = FastModel.from_arrays(fast.to_arrays(), N)
    np.testing.assert_array_equal(again.raw_proba(X), fast.raw_proba(X))


@pytest.mark.parametrize("estimator", sorted(k for k in TRAINER_ESTIMATORS if k != "logreg"))
def test_values_exactly_at_and_next_to_every_split_cut_agree(estimator, xy):
    """The folded cuts are exact: x == cut goes left, the next float up goes right."""
    make, _ = TRAINER_ESTIMATORS[estimator]
    pipeline = Pipeline([("p", _pre()), ("m", make())]).fit(*xy)
    fast = compile_pipeline(pipeline, N)
    split = np.isfinite(fast.trees.cut)
    base = in_bounds(1, seed=2)[0]
    rows = []
    for feature, cut in zip(fast.trees.feature[split], fast.trees.cut[split], strict=True):
        for value in (np.nextafter(cut, -np.inf), cut, np.nextafter(cut, np.inf)):
            row = base.copy()
            row[feature] = value
            rows.append(row)
    rows = np.array(rows)
    expected = pipeline.predict_proba(rows)[:, 1]
    fast_all = np.concatenate([fast.raw_proba(rows[i : i + 500]) for i in range(0, len(rows), 500)])
    np.testing.assert_allclose(fast_all, expected, rtol=0, atol=1e-12)
    picks = np.random.default_rng(0).choice(len(rows), size=min(60, len(rows)), replace=False)
    singles = np.concatenate([fast.raw_proba(rows[i : i + 1]) for i in picks])
    np.testing.assert_allclose(singles, expected[picks], rtol=0, atol=1e-12)


def test_served_model_equals_predict_proba_bit_for_bit_on_the_data_set(served, dataset):
    _, pipeline = served
    fast = _assert_equal(pipeline, dataset)
    assert fast.name in ("trees:gbm", "trees:hgb")  # the default estimator, whichever it is
    assert np.max(np.abs(fast.raw_proba(dataset) - pipeline.predict_proba(dataset)[:, 1])) < 1e-15


@pytest.mark.parametrize(
    "make",
    [
        lambda: Pipeline([("p", _pre(with_mean=False)), ("m", _gbm())]),
        lambda: Pipeline(
            [
                (
                    "p",
                    ColumnTransformer(
                        [("s", StandardScaler(), [0, 3, 9]), ("k", "passthrough", [1, 2])],
                        remainder="drop",
                    ),
                ),
                ("m", _gbm()),
            ]
        ),
        lambda: Pipeline(
            [
                (
                    "p",
                    ColumnTransformer(
                        [("s", StandardScaler(), [4, 0]), ("k", "passthrough", [2])],
                        remainder="drop",
                    ),
                ),
                ("m", RandomForestClassifier(n_estimators=8, random_state=0)),
            ]
        ),
    ],
    ids=["no-centering", "drop-remainder", "forest-on-three-columns"],
)
def test_other_scaler_layouts_are_equal(make, xy):
    X, y = xy
    _assert_equal(make().fit(X, y), np.vstack([X, in_bounds(600, seed=5)]))


def test_pipeline_fitted_on_a_dataframe_with_column_names(xy):
    X, y = xy
    frame = pd.DataFrame(X, columns=list(MODEL_FEATURES))
    pre = ColumnTransformer(
        [("s", StandardScaler(), ["loudness", "tempo"])], remainder="passthrough"
    )
    pipeline = Pipeline([("p", pre), ("m", _gbm())]).fit(frame, y)
    _assert_equal(pipeline, X, pipeline_input=frame)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Pipeline(
            [
                ("p", ColumnTransformer([("s", MinMaxScaler(), SCALED)], remainder="passthrough")),
                ("m", _gbm()),
            ]
        ),
        lambda: Pipeline([("s", StandardScaler()), ("m", _gbm())]),
        lambda: Pipeline([("p", _pre()), ("m", _gbm(loss="exponential"))]),
        lambda: Pipeline([("p", _pre()), ("m", KNeighborsClassifier())]),
    ],
    ids=["minmax", "no-column-transformer", "exponential-loss", "knn"],
)
def test_unsupported_structures_are_not_compiled(make, xy):
    X, y = xy
    assert compile_pipeline(make().fit(X[:400], y[:400]), N) is None


def _hgb_with_missing(xy, column):
    X, y = xy
    X = X.copy()
    X[::5, column] = np.nan  # the model learns a direction for missing values at each split
    model = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=16, random_state=0)
    return Pipeline([("p", _pre()), ("m", model)]).fit(X, y)


@pytest.mark.parametrize("seen", [True, False], ids=["nan-seen-in-training", "nan-unseen"])
@pytest.mark.parametrize("column", [SCALED[0], MODEL_FEATURES.index("danceability")])
def test_hgb_sends_nan_the_way_each_node_says(xy, seen, column):
    pipeline = (
        _hgb_with_missing(xy, column)
        if seen
        else Pipeline([("p", _pre()), ("m", HistGradientBoostingClassifier(max_iter=40))]).fit(*xy)
    )
    fast = compile_pipeline(pipeline, N)
    assert fast is not None and fast.name == "trees:hgb"
    assert fast.trees.nan_right is not None
    if seen:
        # Both directions occur, so a walk that sent every NaN one way would fail below.
        split = np.isfinite(fast.trees.cut)
        assert fast.trees.nan_right[split].any() and not fast.trees.nan_right[split].all()
    rows = np.vstack([xy[0][:300], in_bounds(300, seed=8)])
    rows[::2, column] = np.nan
    rows[1::7, SCALED[1]] = np.nan
    _assert_equal(pipeline, rows)


def test_hgb_at_every_dumped_threshold_of_a_passthrough_column(xy):
    """Values exactly at a threshold go left, the next double up goes right (float64 ``<=``)."""
    X, y = xy
    pipeline = Pipeline([("p", _pre()), ("m", HistGradientBoostingClassifier(max_iter=30))])
    pipeline.fit(X, y)
    import json

    import treelite.sklearn

    dump = json.loads(treelite.sklearn.import_model(pipeline[-1]).dump_as_json())
    passthrough = [c for c in range(N) if c not in SCALED]  # model column i + 2 is raw c
    base = in_bounds(1, seed=11)[0]
    rows = []
    for tree in dump["trees"]:
        for node in tree["nodes"]:
            if "leaf_value" in node or node["split_feature_id"] < len(SCALED):
                continue
            raw = passthrough[node["split_feature_id"] - len(SCALED)]
            for value in (node["threshold"], np.nextafter(node["threshold"], np.inf)):
                row = base.copy()
                row[raw] = value
                rows.append(row)
    assert rows
    _assert_equal(pipeline, np.array(rows), name="trees:hgb")


def test_hgb_dump_that_is_not_a_sigmoid_binary_model_is_not_compiled(xy, monkeypatch):
    X, y = xy
    pipeline = Pipeline([("p", _pre()), ("m", HistGradientBoostingClassifier(max_iter=5))])
    pipeline.fit(X, y)
    edit_treelite_dump(monkeypatch, lambda dump: dump.update(postprocessor="identity"))
    assert compile_pipeline(pipeline, N) is None
