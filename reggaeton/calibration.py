"""Probability calibration as plain numbers: fitted in training, applied wherever scores are made.

The served ``probability`` must be P(reggaeton), but a model trained with SMOTE or class
weights ranks well and is badly calibrated. Training fits a monotone map from the pipeline's
raw ``predict_proba[:, 1]`` to calibrated probabilities on out-of-fold predictions and stores
it in the version's ``metadata.json`` under ``calibration`` as JSON numbers, so the service,
the scoring job and the monitor apply the same map without unpickling anything. A version
without ``calibration`` is served with its raw scores (older versions stay servable).

Spec formats:

* ``{"method": "isotonic", "x": [...], "y": [...]}``: piecewise-linear interpolation between
  the knots of a fitted ``IsotonicRegression`` (its public ``X_thresholds_`` and
  ``y_thresholds_``), clipped at both ends, which is what ``IsotonicRegression.predict`` does
  with ``out_of_bounds="clip"``.
* ``{"method": "sigmoid", "on": "logit", "a": a, "b": b}``: Platt scaling on the log-odds,
  ``expit(a * logit(score) + b)``. On the log-odds the map can reach 0 and 1 and is the identity
  for ``a=1, b=0``; on the raw probability (a spec without ``"on"``, as first written) it has a
  floor of ``expit(b)``, which squeezes the scores and drags the chosen threshold towards it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import expit, logit

EPS = 1e-12
"""Scores are clipped to ``[EPS, 1 - EPS]`` before the log-odds (a tree model answers exact 0/1)."""

METHODS = ("isotonic", "sigmoid")


def fit_calibration(scores: np.ndarray, y: np.ndarray, method: str) -> dict[str, Any]:
    """Fit a calibration map on out-of-fold raw scores.

    Args:
        scores: Raw probabilities of class 1, one per training row, each predicted by a model
            that did not see that row.
        y: The true labels (1 reggaeton, 0 other).
        method: ``"isotonic"`` or ``"sigmoid"``.

    Returns:
        The JSON-serialisable spec that :func:`apply_calibration` reads.

    Raises:
        ValueError: for an unknown method.
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6).fit(_logit(scores).reshape(-1, 1), y)
        return {
            "method": "sigmoid",
            "on": "logit",
            "a": float(lr.coef_[0, 0]),
            "b": float(lr.intercept_[0]),
        }
    raise ValueError(f"calibration.method: unknown method {method!r} (one of {METHODS})")


def apply_calibration(scores: np.ndarray, spec: Mapping[str, Any] | None) -> np.ndarray:
    """Map raw scores to calibrated probabilities; ``spec=None`` returns the scores unchanged.

    Raises:
        ValueError: for a spec this code cannot read (a version that must not be served).
    """
    if spec is None:
        return scores
    method = spec.get("method")
    if method == "isotonic":
        return np.interp(
            scores, np.asarray(spec["x"], np.float64), np.asarray(spec["y"], np.float64)
        )
    if method == "sigmoid":
        x = np.asarray(scores, np.float64)
        if spec.get("on") == "logit":
            x = _logit(x)
        return expit(float(spec["a"]) * x + float(spec["b"]))
    raise ValueError(f"calibration.method: unknown method {method!r} (one of {METHODS})")


def _logit(scores: np.ndarray) -> np.ndarray:
    return logit(np.clip(scores, EPS, 1.0 - EPS))
