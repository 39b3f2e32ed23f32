"""Typed config: YAML defaults, dotted overrides, clear errors."""

from __future__ import annotations

import pytest

from reggaeton.schema import MODEL_FEATURES
from training.config import ConfigError, load_config


def test_defaults_are_the_original_model():
    c = load_config()
    assert c.model.estimator == "gbm" and c.imbalance.strategy == "smote"
    assert c.model.params == {"random_state": 0, "subsample": 0.8, "n_estimators": 300,
                              "max_features": None, "min_samples_split": 106,
                              "min_samples_leaf": 177}
    assert c.data.feature_list == list(MODEL_FEATURES)
    assert c.model.scale == ["loudness", "tempo"] and c.cv.folds == 5


def test_dotted_overrides_are_typed(tmp_path):
    c = load_config(overrides=["model.params.n_estimators=1", "cv.folds=3",
                               "gate.f1_tolerance=0.01", "data.unlabelled_csv=null"])
    assert c.model.params["n_estimators"] == 1 and c.cv.folds == 3
    assert c.gate.f1_tolerance == 0.01 and c.data.unlabelled_csv is None
    file = tmp_path / "c.yaml"
    file.write_text("seed: 7\ncv: {folds: 4}\n")
    c = load_config(file, ["seed=8"])
    assert (c.seed, c.cv.folds, c.model.estimator) == (8, 4, "gbm")


@pytest.mark.parametrize(("override", "message"), [
    ("cv.fold=3", "unknown config key cv.fold"),
    ("nonsense=1", "unknown config key nonsense"),
    ("cv.folds=1", "cv.folds"),
    ("cv.folds=three", "cv.folds"),
    ("model.estimator=svm", "model.estimator"),
    ("imbalance.strategy=undersample", "imbalance.strategy"),
    ("model.scale=[bpm]", "model.scale"),
    ("data.features=[tempo, nonsense]", "data.features"),
    ("noequals", "key=value"),
    ("data.reggaeton_csv=5", "data.reggaeton_csv must be a string, got 5"),
    ("data.features=tempo", "data.features must be a list of strings or null"),
    ("gate.min_feedback_rows=abc", "gate.min_feedback_rows must be an integer"),
    ("gate.min_feedback_rows=0", "gate.min_feedback_rows must be an integer in"),
    ("data.feedback_days=-1", "data.feedback_days"),
    ("split.test_size=true", "split.test_size must be a number"),
    ("model.params=[1, 2]", "model.params must be a mapping"),
])
def test_bad_config_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(overrides=[override])
