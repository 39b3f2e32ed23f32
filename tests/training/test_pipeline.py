"""The saved pipeline: structure, input forms, imbalance strategies, round trip, threshold."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from reggaeton.calibration import apply_calibration
from reggaeton.registry import Registry
from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
from training.data import load_labelled, split_holdout
from training.evaluate import metrics_at
from training.pipeline import fit_pipeline, to_matrix

FEATURES = list(MODEL_FEATURES)


@pytest.fixture(scope="module")
def frame(repo_root):
    labelled, _ = load_labelled(
        repo_root / "data/data_reggaeton.csv", repo_root / "data/data_todotipo.csv", FEATURES
    )
    return labelled


@pytest.fixture(scope="module")
def served(trained_home):
    registry = Registry(trained_home)
    version = registry.serving_version()
    return version, registry.load_pipeline(version)


def test_numpy_input_warns_nothing_and_dataframe_gives_same_result(served, frame):
    _, pipeline = served
    X = to_matrix(frame, FEATURES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_numpy = pipeline.predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn notes the DataFrame's names; values match
        from_frame = pipeline.predict_proba(frame[FEATURES])
    np.testing.assert_array_equal(from_numpy, from_frame)


def test_scaler_covers_loudness_and_tempo_only(served):
    _, pipeline = served
    pre = pipeline.named_steps["preprocess"]
    columns = pre.transformers_[0][2]
    assert [FEATURES[i] for i in columns] == ["loudness", "tempo"]
    assert pre.remainder == "passthrough"


@pytest.mark.parametrize("strategy", ["smote", "class_weight", "none"])
def test_every_imbalance_strategy_saves_a_plain_sklearn_pipeline(config_with, frame, strategy):
    config = config_with("model.params.n_estimators=3", f"imbalance.strategy={strategy}")
    pipeline = fit_pipeline(config, to_matrix(frame, FEATURES), frame[LABEL_COLUMN].to_numpy())
    assert type(pipeline) is Pipeline
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert pipeline.predict_proba(to_matrix(frame.head(3), FEATURES)).shape == (3, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", ["hgb", "rf", "logreg"])
def test_other_estimators_via_config(config_with, frame, estimator):
    config = config_with(
        f"model.estimator={estimator}",
        "model.params={random_state: 0}",
        "imbalance.strategy=class_weight",
    )
    pipeline = fit_pipeline(config, to_matrix(frame, FEATURES), frame[LABEL_COLUMN].to_numpy())
    assert pipeline.predict_proba(to_matrix(frame.head(2), FEATURES)).shape == (2, 2)


LOADER = """
import json, sys
import numpy as np
from reggaeton.calibration import apply_calibration
from reggaeton.registry import Registry
registry = Registry(sys.argv[1])
version = registry.serving_version()
X = np.asarray(json.loads(sys.stdin.read()), dtype=float)
proba = registry.load_pipeline(version).predict_proba(X)[:, 1]
print(json.dumps({"proba": [float.hex(float(p)) for p in proba], "threshold": version.threshold}))
"""


def test_round_trip_in_a_new_process_gives_identical_probabilities(served, frame, trained_home):
    version, pipeline = served
    X = to_matrix(frame.sample(200, random_state=1), FEATURES)
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(trained_home)],
        check=True,
        input=json.dumps(X.tolist()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = json.loads(proc.stdout)
    theirs = np.array([float.fromhex(p) for p in out["proba"]])
    np.testing.assert_array_equal(theirs, pipeline.predict_proba(X)[:, 1])
    assert out["threshold"] == version.threshold


def test_stored_calibration_and_threshold_drive_predictions_and_metrics(served, repo_root):
    version, pipeline = served
    meta = version.metadata
    threshold = meta["threshold"]
    assert 0.0 < threshold < 1.0 and threshold != 0.5
    assert meta["calibration"]["method"] == meta["config"]["calibration"]["method"]
    assert "calibrated scores" in meta["threshold_strategy"]
    sample = pd.read_csv(version.reference_path("sample.csv"))
    raw = pipeline.predict_proba(to_matrix(sample, meta["features"]))[:, 1]
    proba = apply_calibration(raw, meta["calibration"])
    assert np.abs(proba - raw).max() > 0.01  # the reference holds served, not raw, scores
    np.testing.assert_allclose(sample["probability"], proba, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sample["prediction"], (proba >= threshold).astype(int))
    # the stored hold-out numbers are the ones this threshold gives on the seeded hold-out
    labelled = load_labelled(
        *(repo_root / f"data/{n}.csv" for n in ("data_reggaeton", "data_todotipo")),
        meta["features"],
    )[0]
    _, holdout = split_holdout(
        labelled, meta["config"]["split"]["test_size"], meta["config"]["seed"]
    )
    hold_raw = pipeline.predict_proba(to_matrix(holdout, meta["features"]))[:, 1]
    hold_proba = apply_calibration(hold_raw, meta["calibration"])
    recomputed = metrics_at(holdout[LABEL_COLUMN], hold_proba, threshold)
    assert recomputed["confusion_matrix"] == meta["confusion_matrix"]
    assert recomputed["f1"] == pytest.approx(meta["metrics"]["f1"])


def test_metadata_holds_every_contract_field(served, trained_home):
    version, _ = served
    meta = version.metadata
    for key in (
        "tag",
        "created_at",
        "threshold",
        "features",
        "feature_dtypes",
        "estimator",
        "metrics",
        "cv_metrics",
        "confusion_matrix",
        "data_sha256",
        "rows",
        "config",
        "git_commit",
        "library_versions",
        "training_ranges",
        "positive_rate",
        "pipeline_sha256",
    ):
        assert key in meta, key
    assert set(meta["metrics"]) == {
        "precision",
        "recall",
        "f1",
        "pr_auc",
        "roc_auc",
        "accuracy",
        "brier",
        "ece",
        "brier_raw",
        "ece_raw",
    }
    assert {"f1_mean", "f1_std", "pr_auc_mean", "pr_auc_std", "brier", "ece"} <= set(
        meta["cv_metrics"]
    )
    # calibrated probabilities: the SMOTE-shifted raw scores are far worse calibrated
    assert meta["metrics"]["ece"] < meta["metrics"]["ece_raw"]
    assert meta["cv_metrics"]["brier"] < meta["cv_metrics"]["brier_raw"]
    assert meta["estimator"] == "GradientBoostingClassifier"
    assert len(meta["data_sha256"]) == 64
    assert meta["rows"]["clean"] == 2215 and meta["rows"]["holdout"] == 443
    assert meta["config"]["model"]["params"]["n_estimators"] == 40
    assert set(meta["training_ranges"]) >= set(FEATURES)
    assert 0.02 < meta["positive_rate"] < 0.04
    (tn, fp), (fn, tp) = meta["confusion_matrix"]
    assert tn + fp + fn + tp == 443 and fn + tp == 14
    assert "features" not in meta["config"]["data"]  # the inputs are MODEL_FEATURES, always
