"""Live performance on the records that received feedback (pure).

Labels arrive through ``/feedback`` for a fraction of the predictions only, so every number
comes with the count it rests on, and nothing is judged below the minimum sample: the
section then says ``insufficient_data`` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from monitoring.config import PerformanceConfig


def compute_metrics(labels: np.ndarray, predictions: np.ndarray,
                    probabilities: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1, PR-AUC and confusion matrix ``[[tn, fp], [fn, tp]]``.

    Args:
        labels: Ground-truth labels (1 reggaeton, 0 other).
        predictions: Predicted labels logged with each record.
        probabilities: Predicted probability of reggaeton.
    """
    y = np.asarray(labels, dtype=int)
    yhat = np.asarray(predictions, dtype=int)
    both = len(np.unique(y)) == 2
    return {
        "precision": float(precision_score(y, yhat, zero_division=0)),
        "recall": float(recall_score(y, yhat, zero_division=0)),
        "f1": float(f1_score(y, yhat, zero_division=0)),
        "pr_auc": float(average_precision_score(y, probabilities)) if both else None,
        "confusion_matrix": confusion_matrix(y, yhat, labels=[0, 1]).tolist(),
        "n_labelled": int(y.size),
        "n_positive": int((y == 1).sum()),
        "n_negative": int((y == 0).sum()),
    }


def assess_performance(labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray,
                       reference: Mapping[str, Any], config: PerformanceConfig
                       ) -> dict[str, Any]:
    """Compare live metrics with the model's hold-out metrics, with minimum-sample guards.

    Args:
        labels / predictions / probabilities: The labelled records of the window.
        reference: The ``metrics`` dict stored in the model's metadata.
        config: Guards and drop thresholds.

    Returns:
        ``{"status": ok|warning|alert|insufficient_data, "reason", "metrics", "reference",
        "drops", "n_labelled", ...}``.
    """
    y = np.asarray(labels, dtype=int)
    n = int(y.size)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    base: dict[str, Any] = {"n_labelled": n, "n_positive": pos, "n_negative": neg,
                            "reference": {k: reference.get(k) for k in
                                          ("precision", "recall", "f1", "pr_auc")},
                            "min_labelled": config.min_labelled,
                            "min_per_class": config.min_per_class}
    if n < config.min_labelled or min(pos, neg) < config.min_per_class:
        base.update(status="insufficient_data", metrics=None, drops={},
                    reason=(f"insufficient data: {n} labelled records ({pos} reggaeton, "
                            f"{neg} other); need >= {config.min_labelled} with >= "
                            f"{config.min_per_class} of each label"))
        return base
    metrics = compute_metrics(y, predictions, probabilities)
    drops: dict[str, float] = {}
    for name in config.metrics:
        ref, live = reference.get(name), metrics.get(name)
        if isinstance(ref, int | float) and isinstance(live, int | float):
            drops[name] = float(ref) - float(live)
    worst = max(drops.items(), key=lambda kv: kv[1], default=(None, 0.0))
    if worst[1] > config.max_drop:
        status = "alert"
    elif worst[1] > config.warn_drop:
        status = "warning"
    else:
        status = "ok"
    reason = "" if status == "ok" else (
        f"{worst[0]} {metrics[worst[0]]:.3f} is {worst[1]:.3f} below the model's "
        f"{reference[worst[0]]:.3f} on {n} labelled records")
    base.update(status=status, metrics=metrics, drops=drops, reason=reason)
    return base
