"""Classification metrics for the reggaeton class, shared by training (hold-out, gate) and
monitoring (live performance on feedback), so both judge a model by the same definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


def classification_metrics(y: Any, predicted: Any, proba: Any) -> dict[str, Any]:
    """Metrics of label 1 (reggaeton).

    Args:
        y: True labels (1 reggaeton, 0 other).
        predicted: Predicted labels.
        proba: Predicted probability of reggaeton.

    Returns:
        ``precision``, ``recall``, ``f1``, ``accuracy``, ``pr_auc`` and ``roc_auc`` (None when
        ``y`` holds one class only) and ``confusion_matrix`` ``[[tn, fp], [fn, tp]]``.
    """
    y = np.asarray(y).astype(int)
    predicted = np.asarray(predicted).astype(int)
    proba = np.asarray(proba, dtype=float)
    both = len(np.unique(y)) == 2
    return {
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "pr_auc": float(average_precision_score(y, proba)) if both else None,
        "roc_auc": float(roc_auc_score(y, proba)) if both else None,
        "accuracy": float(accuracy_score(y, predicted)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }
