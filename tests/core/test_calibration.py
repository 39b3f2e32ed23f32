"""The calibration map: fitted on scores, stored as JSON numbers, applied the same everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from reggaeton.calibration import apply_calibration, fit_calibration
from reggaeton.decision import decide


def _overconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores pushed towards 0 and 1 compared with the true probability."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(0.5, 4.0, n)
    y = (rng.random(n) < truth).astype(int)
    logit = np.log(truth / (1 - truth))
    return 1 / (1 + np.exp(-3.0 * logit)), y


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_fitted_map_lowers_the_brier_score_and_survives_json(method):
    scores, y = _overconfident()
    spec = json.loads(json.dumps(fit_calibration(scores, y, method)))
    calibrated = apply_calibration(scores, spec)
    assert np.mean((calibrated - y) ** 2) < np.mean((scores - y) ** 2) - 0.002
    assert np.all((calibrated >= 0) & (calibrated <= 1))
    assert np.all(np.diff(calibrated[np.argsort(scores)]) >= -1e-12)  # ranking kept


def test_sigmoid_on_the_log_odds_reaches_both_ends_and_is_identity_at_a1_b0():
    spec = {"method": "sigmoid", "on": "logit", "a": 1.0, "b": 0.0}
    scores = np.array([0.0, 0.01, 0.5, 0.93, 1.0])
    assert np.allclose(apply_calibration(scores, spec), scores, atol=1e-11)
    scores, y = _overconfident()
    calibrated = apply_calibration(scores, fit_calibration(scores, y, "sigmoid"))
    assert calibrated.min() < 1e-3 and calibrated.max() > 0.8


def test_a_spec_without_on_is_read_as_written_first_on_the_raw_probability():
    spec = {"method": "sigmoid", "a": 2.0, "b": -1.0}
    assert apply_calibration(np.array([0.5]), spec)[0] == pytest.approx(0.5)
    assert apply_calibration(np.array([0.0]), spec)[0] == pytest.approx(1 / (1 + np.e))


def test_isotonic_map_equals_sklearn_predict_with_clipping():
    scores, y = _overconfident(seed=1)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, y)
    probe = np.linspace(-0.2, 1.2, 301)
    got = apply_calibration(probe, fit_calibration(scores, y, "isotonic"))
    assert np.allclose(got, iso.predict(probe), atol=1e-12)


def test_no_spec_serves_raw_scores_and_unknown_methods_are_refused():
    scores = np.array([0.2, 0.7])
    assert apply_calibration(scores, None) is scores
    with pytest.raises(ValueError, match="calibration.method"):
        apply_calibration(scores, {"method": "beta"})
    with pytest.raises(ValueError, match="calibration.method"):
        fit_calibration(scores, np.array([0, 1]), "beta")


def test_decide_is_at_least_the_threshold():
    assert decide(np.array([0.29, 0.3, 0.31]), 0.3).tolist() == [0, 1, 1]
    assert decide(np.array([0.3]), 0.3).dtype == np.int64
