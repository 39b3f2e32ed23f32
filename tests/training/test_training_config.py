"""Typed config: YAML defaults, dotted overrides, clear errors."""

from __future__ import annotations

import re

import pytest

from reggaeton.schema import MODEL_FEATURES
from training.config import (
    DEFAULT_CONFIG,
    ORIGINAL_CONFIG,
    ConfigError,
    TrainConfig,
    from_dict,
    load_config,
)


def test_original_config_is_the_original_model():
    c = load_config(ORIGINAL_CONFIG)
    assert c.model.estimator == "gbm" and c.imbalance.strategy == "smote"
    assert c.model.params == {
        "random_state": 0,
        "subsample": 0.8,
        "n_estimators": 300,
        "max_features": None,
        "min_samples_split": 106,
        "min_samples_leaf": 177,
    }
    assert c.model.scale == ["loudness", "tempo"] and c.cv.folds == 5
    assert c.calibration.method == "sigmoid"


def test_the_default_config_is_servable():
    c = load_config()
    assert c.model.estimator in ("gbm", "hgb", "rf", "logreg")
    assert set(c.model.scale) <= set(MODEL_FEATURES)


def test_dotted_overrides_are_typed(tmp_path):
    c = load_config(
        ORIGINAL_CONFIG,
        overrides=[
            "model.params.n_estimators=1",
            "cv.folds=3",
            "gate.f1_tolerance=0.01",
            "data.unlabelled_csv=null",
        ],
    )
    assert c.model.params["n_estimators"] == 1 and c.cv.folds == 3
    assert c.gate.f1_tolerance == 0.01 and c.data.unlabelled_csv is None
    file = tmp_path / "c.yaml"
    file.write_text("seed: 7\ncv: {folds: 4}\n")
    c = load_config(file, ["seed=8"])
    assert (c.seed, c.cv.folds, c.model.estimator) == (8, 4, "gbm")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("cv.fold=3", "unknown config key cv.fold (known under cv: folds)"),
        ("nonsense=1", "unknown config key nonsense (known under top level: seed, data,"),
        ("cv.folds=1", "cv.folds: input should be greater than or equal to 2, got 1"),
        ("cv.folds=three", "cv.folds: input should be a valid integer, got 'three'"),
        ("cv.folds=3.0", "cv.folds: input should be a valid integer, got 3.0"),
        ("model.estimator=svm", "model.estimator: input should be 'gbm', 'hgb', 'rf' or 'logreg'"),
        ("imbalance.strategy=undersample", "imbalance.strategy: input should be 'smote'"),
        ("model.scale=[bpm]", "model.scale: 'bpm' is not one of MODEL_FEATURES"),
        ("data.features=[tempo]", "unknown config key data.features"),
        ("calibration.method=beta", "calibration.method: input should be 'isotonic' or 'sigmoid'"),
        ("search.budget_seconds=0", "search.budget_seconds: input should be greater than 0"),
        ("protocol.folds=1", "protocol.folds: input should be greater than or equal to 2"),
        ("noequals", "key=value"),
        ("data.reggaeton_csv=5", "data.reggaeton_csv: input should be a valid string, got 5"),
        ("data.unlabelled_csv=5", "data.unlabelled_csv: input should be a valid string, got 5"),
        ("gate.min_feedback_rows=abc", "gate.min_feedback_rows: input should be a valid integer"),
        (
            "gate.min_feedback_rows=0",
            "gate.min_feedback_rows: input should be greater than or equal to 1",
        ),
        ("data.feedback_days=-1", "data.feedback_days: input should be greater than or equal to 1"),
        ("split.test_size=true", "split.test_size: input should be a valid number, got True"),
        ("split.test_size=0.9", "split.test_size: input should be less than or equal to 0.5"),
        ("model.params=[1, 2]", "model.params: input should be a valid dictionary, got [1, 2]"),
        ("cv=3", "cv: input should be a valid dictionary or instance of CVConfig, got 3"),
    ],
)
def test_bad_config_names_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides=[override])


def test_every_bad_key_is_named_at_once():
    with pytest.raises(ConfigError) as info:
        load_config(overrides=["cv.folds=0", "seed=-1"])
    assert "seed: input should be greater" in str(info.value)
    assert "cv.folds: input should be greater" in str(info.value)


def test_model_params_pass_through_and_round_trip():
    c = load_config(
        ORIGINAL_CONFIG,
        ["model.params.learning_rate=0.05", "model.params.loss=exponential"],
    )
    assert c.model.params["learning_rate"] == 0.05 and c.model.params["loss"] == "exponential"
    assert from_dict(c.to_dict()) == c
    assert from_dict({}) == TrainConfig()


def test_shipped_configs_load():
    for file in sorted(DEFAULT_CONFIG.parent.glob("*.yaml")):
        assert isinstance(load_config(file), TrainConfig)


def test_unreadable_or_non_mapping_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    file = tmp_path / "list.yaml"
    file.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(file)
