"""The streamed exact tests equal scipy on the raw data; corrections, categories, guards."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitoring import drift
from monitoring.config import PerformanceConfig, QualityConfig
from monitoring.performance import assess_performance
from monitoring.quality import QualityAccumulator, assess_quality


@pytest.mark.parametrize(
    ("n_ref", "n_win", "ties", "shift"),
    [
        (300, 500, False, 0.2),  # exact p-value path
        (1800, 30_000, False, 0.02),  # asymptotic path
        (1800, 12_000, True, 0.05),  # heavy ties (integer-valued, like popularity)
        (40, 60, True, 0.0),
    ],
)
def test_streamed_ks_equals_scipy(n_ref: int, n_win: int, ties: bool, shift: float) -> None:
    rng = np.random.default_rng(n_ref + n_win)
    ref, win = rng.normal(size=n_ref), rng.normal(shift, size=n_win)
    if ties:
        ref, win = np.round(ref * 3), np.round(win * 3)
    acc = drift.EcdfAccumulator(ref)
    for chunk in np.array_split(win, 7):
        acc.update(np.concatenate([chunk, [np.nan]]))  # NaN is ignored
    ours, theirs = drift.ks_test(acc), stats.ks_2samp(ref, win)
    assert ours["statistic"] == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours["pvalue"] == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours["n_window"] == n_win and acc.hist.sum() == n_win


def test_chi_square_pools_rare_categories_and_matches_scipy() -> None:
    ref, win = {0: 120, 1: 200, 9: 2}, {0: 300, 1: 480, 7: 1}
    res = drift.chi_square_test(ref, win, min_expected=5)
    assert res["categories"] == ["0", "1", "other"]
    expected = stats.chi2_contingency(np.array([[120, 200, 2], [300, 480, 1]]))
    assert res["pvalue"] == pytest.approx(expected.pvalue)
    shifted = drift.chi_square_test({0: 500, 1: 500}, {0: 800, 1: 200})
    assert shifted["pvalue"] < 1e-10


def test_corrections_and_categories() -> None:
    p = {"a": 0.01, "b": 0.04, "c": 0.5}
    assert drift.adjust_pvalues(p, "none") == p
    assert drift.adjust_pvalues(p, "bonferroni") == pytest.approx({"a": 0.03, "b": 0.12, "c": 1.0})
    assert drift.adjust_pvalues(p, "holm") == pytest.approx({"a": 0.03, "b": 0.08, "c": 0.5})
    assert drift.category(0.01, 0.045, 3) == "drift"
    assert drift.category(0.1, 0.045, 3) == "possible_drift"
    assert drift.category(0.2, 0.045, 3) == "no_drift"
    with pytest.raises(ValueError, match="correction"):
        drift.adjust_pvalues(p, "bh")


def test_performance_guards_and_drop() -> None:
    ref = {
        "metrics": {"precision": 0.8, "recall": 0.8, "f1": 0.8, "pr_auc": 0.85},
        "confusion_matrix": [[90, 10], [10, 40]],
    }
    cfg = PerformanceConfig()
    few = assess_performance(
        np.array([1, 0, 1]), np.array([1, 0, 0]), np.array([0.9, 0.1, 0.4]), ref, cfg
    )
    assert few["status"] == "insufficient_data" and few["metrics"] is None
    assert "insufficient data: 3 labelled" in few["reason"]
    y = np.array([1] * 30 + [0] * 70)
    good = assess_performance(y, y, y * 0.9 + 0.05, ref, cfg)
    assert good["status"] == "ok" and good["metrics"]["f1"] == 1.0
    assert good["metrics"]["confusion_matrix"] == [[70, 0], [0, 30]]
    bad_pred = np.where(np.arange(100) % 2 == 0, 1 - y, y)
    bad = assess_performance(y, bad_pred, np.full(100, 0.5), ref, cfg)
    assert bad["status"] == "alert" and bad["n_labelled"] == 100
    assert bad["pvalues"]["recall"] < 0.01
    # A large but insignificant drop (recall 3/6 vs 40/50) does not alert.
    y6 = np.array([1] * 6 + [0] * 60)
    noisy = assess_performance(
        y6, np.array([1, 1, 1, 0, 0, 0] + [0] * 60), np.full(66, 0.5), ref, cfg
    )
    assert noisy["drops"]["recall"] > cfg.max_drop and noisy["status"] == "ok"
    assert len(noisy["unconfirmed"]) == 1 and noisy["unconfirmed"][0].startswith(
        "recall 0.500 is 0.300 below the model's 0.800, not significant"
    )
    assert bad["unconfirmed"] == [] and good["unconfirmed"] == []


def test_quality_counts_missing_invalid_and_out_of_range() -> None:
    import pandas as pd

    acc = QualityAccumulator(["tempo", "key"], {"tempo": [60, 200], "key": [0, 11]})
    acc.update(pd.DataFrame({"tempo": [100, 250, np.nan, -1], "key": [1, 2, 3.5, 4]}))
    out = assess_quality(acc, QualityConfig())
    t, k = out["features"]["tempo"], out["features"]["key"]
    assert (t["missing"], t["invalid"], t["out_of_training_range"]) == (1, 1, 2)
    assert k["invalid"] == 1  # not a whole number
    assert out["status"] == "warning"


def test_equivalent_window_keeps_the_order_against_the_reference() -> None:
    """Rebuilt from ``le``/``lt`` alone, it falls on and between the reference values exactly as
    the streamed window did, including adjacent floats and values beyond both ends."""
    rng = np.random.default_rng(5)
    ref = np.round(rng.normal(size=300) * 4) / 4
    tight = np.nextafter(ref[:20], np.inf)  # the next float after a reference value
    win = np.concatenate([np.round(rng.normal(0.3, 1.5, 900) * 8) / 8, tight, [-50.0, 50.0]])
    acc = drift.EcdfAccumulator(ref)
    acc.update(win)
    rebuilt = drift.EcdfAccumulator(ref)
    rebuilt.update(drift.equivalent_window(acc))
    assert np.array_equal(rebuilt.le, acc.le) and np.array_equal(rebuilt.lt, acc.lt)
    assert drift.equivalent_window(acc).size == win.size
