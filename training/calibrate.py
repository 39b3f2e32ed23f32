"""Calibration and threshold choice from out-of-fold scores, and the calibration metrics.

Training and the evaluation protocol both turn raw out-of-fold scores into the two numbers a
served version needs: the calibration map (:mod:`reggaeton.calibration`) and the decision
threshold on the calibrated scale. Doing it in one function keeps the protocol's estimate
about the same procedure that produces the served version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss

from reggaeton.calibration import apply_calibration, fit_calibration
from training.evaluate import choose_threshold

ECE_BINS = 10


@dataclass
class Calibrated:
    """A calibration map, the threshold chosen on its scale and how it was chosen."""

    spec: dict[str, Any]
    threshold: float
    strategy: str


def calibrate_and_threshold(
    y: np.ndarray,
    oof_raw: np.ndarray,
    method: str,
    strategy: str = "f1",
    beta: float = 1.0,
    value: float = 0.5,
) -> Calibrated:
    """Fit the calibration map on out-of-fold raw scores, then pick the threshold on them.

    Args:
        y: Labels of the rows the scores belong to.
        oof_raw: Raw ``predict_proba[:, 1]`` of each row by a model that did not see it.
        method: ``isotonic`` or ``sigmoid`` (see :func:`reggaeton.calibration.fit_calibration`).
        strategy: Threshold strategy of :func:`training.evaluate.choose_threshold`.
        beta: Beta of the ``fbeta`` strategy.
        value: Threshold of the ``fixed`` strategy (on the calibrated scale).

    Returns:
        The map, the threshold (calibrated scale) and a sentence saying how it was chosen.
    """
    spec = fit_calibration(oof_raw, y, method)
    calibrated = apply_calibration(np.asarray(oof_raw, dtype=np.float64), spec)
    threshold = choose_threshold(y, calibrated, strategy, beta, value)
    how = {
        "f1": "max F1",
        "fbeta": f"max F-beta (beta {beta:g})",
        "fixed": f"fixed value {value:g}",
    }[strategy]
    text = (
        f"{how} on out-of-fold {method}-calibrated scores of the training split"
        if strategy != "fixed"
        else f"{how} on the {method}-calibrated scale"
    )
    return Calibrated(spec=spec, threshold=float(threshold), strategy=text)


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: mean |observed positive rate - mean probability| over equal-width bins.

    Each bin is weighted by its share of rows; empty bins count zero. A probability of
    exactly 1.0 falls in the last bin.
    """
    y = np.asarray(y, dtype=np.float64)
    proba = np.asarray(proba, dtype=np.float64)
    index = np.minimum((proba * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - proba[mask].mean())
    return float(total / len(y)) if len(y) else 0.0


def probability_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Brier score and ECE of probabilities of class 1."""
    return {
        "brier": float(brier_score_loss(np.asarray(y).astype(int), np.asarray(proba, float))),
        "ece": expected_calibration_error(y, proba),
    }


def reliability_curve(
    y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean probability, observed positive rate and row count per non-empty equal-width bin."""
    y = np.asarray(y, dtype=np.float64)
    proba = np.asarray(proba, dtype=np.float64)
    index = np.minimum((proba * bins).astype(int), bins - 1)
    present = [b for b in range(bins) if (index == b).any()]
    mean_p = np.array([proba[index == b].mean() for b in present])
    rate = np.array([y[index == b].mean() for b in present])
    count = np.array([(index == b).sum() for b in present])
    return mean_p, rate, count
