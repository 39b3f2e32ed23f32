"""The Optuna search space and the nested CV around it."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from reggaeton.schema import MODEL_FEATURES
from training.config import ORIGINAL_CONFIG, from_dict, load_config, load_raw
from training.pipeline import make_estimator
from training.search import ESTIMATORS, IMBALANCE, nested_search, suggest


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_estimator_of_the_space_is_a_valid_servable_config(estimator):
    trial = optuna.trial.FixedTrial(
        {
            "estimator": estimator,
            "imbalance": "smote",
            "gbm_n_estimators": 100,
            "gbm_learning_rate": 0.1,
            "gbm_max_depth": 3,
            "gbm_min_samples_leaf": 20,
            "gbm_subsample": 0.8,
            "hgb_max_iter": 100,
            "hgb_learning_rate": 0.1,
            "hgb_max_leaf_nodes": 15,
            "hgb_min_samples_leaf": 20,
            "hgb_l2": 1.0,
            "rf_n_estimators": 100,
            "rf_min_samples_leaf": 3,
            "rf_max_features": 0.5,
            "logreg_C": 1.0,
        }
    )
    config = from_dict(suggest(trial, load_raw()))
    assert config.model.estimator == estimator
    make_estimator(config.model.estimator, config.model.params)  # every name is a parameter
    if estimator == "logreg":
        assert config.model.scale == list(MODEL_FEATURES)
    assert set(IMBALANCE) == {"none", "smote", "class_weight"}


def test_nested_search_scores_each_pick_on_rows_its_search_never_saw(tiny_xy, tiny_data):
    X, y = tiny_xy
    base = load_raw()
    for item in tiny_data:
        key, value = item.split("=", 1)
        section, name = key.split(".")
        base[section][name] = None if value == "null" else value
    original = load_config(ORIGINAL_CONFIG, [*tiny_data, "model.params.n_estimators=5"])
    outer, final = nested_search(
        base,
        original,
        X,
        y,
        outer_folds=2,
        budget_seconds=30,
        max_trials=2,
        inner_folds=2,
        method="sigmoid",
        seed=0,
    )
    assert len(outer) == 2 and final.rows == len(y)
    sizes = sorted(f.search.rows for f in outer)
    assert sum(len(y) - s for s in sizes) == len(y)  # the outer test folds partition the rows
    for fold in outer:
        assert len(fold.search.trials) <= 2
        assert 0.0 <= fold.winner["pr_auc"] <= 1.0 and 0.0 <= fold.original["f1"] <= 1.0
        finished = [t["value"] for t in fold.search.trials if t["state"] == "COMPLETE"]
        assert fold.search.best_value == max(finished)  # pruned trials are never the pick
    assert final.best_raw["model"]["estimator"] in ESTIMATORS
    assert len(final.best_oof) == len(y) and np.all((final.best_oof >= 0) & (final.best_oof <= 1))
    assert final.best_raw["model"]["estimator"] in final.best_by_estimator
