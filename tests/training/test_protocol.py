"""The evaluation protocol: intervals, calibration metrics, threshold and map fitted inside."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from reggaeton.calibration import apply_calibration
from reggaeton.decision import decide
from reggaeton.schema import MODEL_FEATURES
from training import protocol
from training.calibrate import calibrate_and_threshold, expected_calibration_error
from training.config import load_config
from training.evaluate import metrics_at

LOGREG = [
    "model.estimator=logreg",
    "imbalance.strategy=class_weight",
    "model.params={C: 1.0, max_iter: 5000}",
    "model.scale=[" + ", ".join(MODEL_FEATURES) + "]",
]


def test_corrected_interval_inflates_the_naive_standard_error():
    values = [0.5, 0.6, 0.7, 0.4, 0.55]
    iv = protocol.corrected_interval(values, test_fraction=0.25)
    s2 = np.var(values, ddof=1)
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 0.25) * s2)
    assert iv.mean == pytest.approx(0.55)
    assert (iv.low, iv.high) == (pytest.approx(0.55 - half), pytest.approx(0.55 + half))
    naive = stats.t.ppf(0.975, 4) * np.sqrt(s2 / 5)
    assert iv.high - iv.mean > naive  # wider than treating the folds as independent
    assert protocol.corrected_interval([0.3], 0.25).low == 0.3
    clipped = protocol.corrected_interval([0.0, 1.0, 1.0], 0.25)
    assert clipped.low == 0.0 and clipped.high == 1.0


def test_expected_calibration_error():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    assert expected_calibration_error(y, np.full(8, 0.125)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(8, 0.9)) == pytest.approx(0.9 - 0.125)
    # two bins, each off by 0.1, weighted by their rows
    y2 = np.array([0, 0, 1, 1])
    p2 = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(y2, p2) == pytest.approx(0.1)
    assert expected_calibration_error(np.array([1]), np.array([1.0])) == 0.0  # 1.0: last bin


def test_threshold_is_chosen_on_the_calibrated_scale():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    raw = np.clip(0.5 * y + rng.normal(0.3, 0.2, 400), 0, 1)  # badly calibrated, informative
    cal = calibrate_and_threshold(y, raw, "sigmoid")
    calibrated = apply_calibration(raw, cal.spec)
    assert cal.threshold in set(calibrated)  # a calibrated score, not a raw one
    best = max(metrics_at(y, calibrated, t)["f1"] for t in calibrated)
    assert metrics_at(y, calibrated, cal.threshold)["f1"] == pytest.approx(best)
    assert "max F1 on out-of-fold sigmoid-calibrated scores" in cal.strategy
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, raw)


def test_a_split_never_uses_the_labels_it_is_scored_on(tiny_xy):
    X, y = tiny_xy
    config = load_config(overrides=LOGREG)
    half = len(y) // 2
    tr, te = np.arange(half), np.arange(half, len(y))
    oof = protocol.inner_oof(config, X[tr], y[tr], 3, 0)
    scores, arrays = protocol.score_split(config, X[tr], y[tr], X[te], y[te], oof, "sigmoid")
    flipped, _ = protocol.score_split(config, X[tr], y[tr], X[te], 1 - y[te], oof, "sigmoid")
    assert flipped["threshold"] == scores["threshold"]  # chosen without the test labels
    assert flipped["f1"] != scores["f1"]  # ... which do decide the score
    predicted = decide(arrays["proba"], scores["threshold"])
    assert metrics_at(y[te], arrays["proba"], scores["threshold"])["f1"] == scores["f1"]
    assert predicted.sum() > 0


def test_repeated_cv_scores_every_fold_of_every_repetition(tiny_xy):
    X, y = tiny_xy
    config = load_config(overrides=LOGREG)
    result = protocol.evaluate(config, X, y, repeats=2, folds=3, inner_folds=2, method="sigmoid")
    assert len(result.folds) == 6 and result.test_fraction == 0.5
    assert len(result.extra["y"]) == 2 * len(y)  # each row scored once per repetition
    summary = result.summary()
    assert set(summary) == set(protocol.REPORTED)
    assert summary["f1"].low <= summary["f1"].mean <= summary["f1"].high
    assert result.flat("cv_")["cv_pr_auc_mean"] == summary["pr_auc"].mean
    again = protocol.evaluate(config, X, y, repeats=2, folds=3, inner_folds=2, method="sigmoid")
    assert [f["f1"] for f in again.folds] == [f["f1"] for f in result.folds]
    splits = protocol.outer_splits(y, 2, 3, config.seed)
    assert all(len(set(tr) & set(te)) == 0 for tr, te in splits)


def test_the_nested_table_shows_negative_differences_with_their_interval():
    from training.leaderboard import nested_markdown

    search = [{"f1": 0.5, "pr_auc": 0.6, "brier": 0.02, "ece": 0.01}] * 2 + [
        {"f1": 0.4, "pr_auc": 0.7, "brier": 0.03, "ece": 0.02}
    ]
    original = [{"f1": 0.6, "pr_auc": 0.6, "brier": 0.02, "ece": 0.01}] * 3
    text = nested_markdown(search, original, ["a", "b", "c"], folds=3)
    row = next(line for line in text.splitlines() if line.startswith("| difference"))
    mean, low, high = (float(v) for v in re.findall(r"-?\d\.\d{3}", row.split("|")[2]))
    assert mean == pytest.approx(-0.133, abs=1e-3) and low < mean < high <= 1.0
    assert low < -0.2  # below zero: not clipped to the metric's [0, 1] range
