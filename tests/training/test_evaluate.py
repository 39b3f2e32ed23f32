"""Metrics, threshold choice and cross-validation (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from training.evaluate import choose_threshold, cross_validate, metrics_at

Y = np.array([0, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])


def test_threshold_maximises_f1_on_validation_predictions():
    t = choose_threshold(Y, P, "f1")
    assert t == pytest.approx(0.35)  # predicts 0.35, 0.4, 0.8, 0.9 -> F1 6/7
    assert metrics_at(Y, P, t)["f1"] == pytest.approx(6 / 7)
    assert all(metrics_at(Y, P, other)["f1"] <= 6 / 7 for other in P)
    assert choose_threshold(Y, P, "fixed", value=0.7) == 0.7
    assert choose_threshold(Y, P, "fbeta", beta=0.1) == pytest.approx(0.8)  # precision first


def test_metrics_and_confusion_matrix_for_the_reggaeton_class():
    m = metrics_at(Y, P, 0.5)
    assert m["confusion_matrix"] == [[3, 0], [1, 2]]
    assert (m["precision"], m["recall"]) == (1.0, pytest.approx(2 / 3))
    assert m["pr_auc"] is not None and m["roc_auc"] == pytest.approx(8 / 9)
    single = metrics_at(np.zeros(3), np.array([0.1, 0.2, 0.3]), 0.5)
    assert single["pr_auc"] is None and single["roc_auc"] is None
    assert metrics_at(Y, P, 0.35)["confusion_matrix"] == [[2, 1], [0, 3]]  # 0.35 counts


def test_cross_validation_is_stratified_and_out_of_fold():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + rng.normal(scale=0.5, size=200) > 1.2).astype(int)
    cv = cross_validate(lambda a, b: LogisticRegression().fit(a, b), X, y, folds=4, seed=1)
    seen = np.sort(np.concatenate(cv.fold_index))
    np.testing.assert_array_equal(seen, np.arange(200))  # every row validated exactly once
    positives = [int(y[idx].sum()) for idx in cv.fold_index]
    assert max(positives) - min(positives) <= 1
    summary = cv.summary(y, cv.oof_proba, 0.5)
    assert 0 < summary["pr_auc_mean"] <= 1 and summary["f1_std"] >= 0
    folds = [metrics_at(y[idx], cv.oof_proba[idx], 0.5)["f1"] for idx in cv.fold_index]
    assert summary["f1_mean"] == pytest.approx(np.mean(folds))
    again = cross_validate(lambda a, b: LogisticRegression().fit(a, b), X, y, folds=4, seed=1)
    np.testing.assert_array_equal(cv.oof_proba, again.oof_proba)
