"""Metrics, cross-validation and threshold choice (pure functions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedKFold

from reggaeton.decision import decide
from reggaeton.metrics import classification_metrics

METRIC_NAMES = ("precision", "recall", "f1", "pr_auc", "roc_auc", "accuracy")


def metrics_at(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Any]:
    """Classification metrics for the reggaeton class (label 1).

    Args:
        y: True labels.
        proba: Predicted probability of reggaeton.
        threshold: A row is predicted reggaeton when ``proba >= threshold``.

    Returns:
        ``precision, recall, f1, pr_auc, roc_auc, accuracy`` (floats; the AUCs are None
        when ``y`` holds one class) and ``confusion_matrix`` ``[[tn, fp], [fn, tp]]``.
    """
    proba = np.asarray(proba, dtype=float)
    return classification_metrics(y, decide(proba, threshold), proba)


def choose_threshold(
    y: np.ndarray, proba: np.ndarray, strategy: str = "f1", beta: float = 1.0, value: float = 0.5
) -> float:
    """Pick the decision threshold on validation (out-of-fold) predictions.

    Args:
        y: True labels of the validation rows.
        proba: Their out-of-fold probabilities.
        strategy: ``f1`` (maximise F1), ``fbeta`` (maximise F-beta) or ``fixed``.
        beta: Beta of ``fbeta``.
        value: The threshold of ``fixed``.

    Returns:
        The threshold; ties go to the highest threshold (fewest positives).
    """
    if strategy == "fixed":
        return float(value)
    b2 = 1.0 if strategy == "f1" else beta**2
    precision, recall, thresholds = precision_recall_curve(np.asarray(y).astype(int), proba)
    precision, recall = precision[:-1], recall[:-1]
    denom = b2 * precision + recall
    score = np.divide(
        (1 + b2) * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0
    )
    best = np.flatnonzero(score == score.max())[-1]
    return float(thresholds[best])


@dataclass
class CVResult:
    """Out-of-fold probabilities of one cross-validation and each fold's validation rows."""

    oof_proba: np.ndarray
    fold_index: list[np.ndarray]

    def summary(self, y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
        """Mean and std over the folds of every metric of ``proba`` (e.g. the calibrated
        out-of-fold scores) at ``threshold``, e.g. ``f1_mean``, ``pr_auc_std``."""
        folds = [metrics_at(y[idx], proba[idx], threshold) for idx in self.fold_index]
        out: dict[str, float] = {}
        for name in METRIC_NAMES:
            values = np.array([f[name] for f in folds], dtype=float)
            out[f"{name}_mean"] = float(np.mean(values))
            out[f"{name}_std"] = float(np.std(values))
        return out


def cross_validate(
    fit: Callable[[np.ndarray, np.ndarray], Any],
    X: np.ndarray,
    y: np.ndarray,
    folds: int,
    seed: int,
) -> CVResult:
    """Stratified k-fold CV: every row scored once by a model that did not see it.

    Args:
        fit: ``fit(X_train, y_train) -> fitted model with predict_proba``.
        X: Input matrix.
        y: Labels.
        folds: Number of folds.
        seed: Shuffle seed of the folds.

    Returns:
        Out-of-fold probabilities of class 1 and the validation row positions of each fold.
    """
    y = np.asarray(y).astype(int)
    oof = np.zeros(len(y), dtype=float)
    index = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, val_idx in splitter.split(X, y):
        model = fit(X[train_idx], y[train_idx])
        oof[val_idx] = model.predict_proba(X[val_idx])[:, 1]
        index.append(val_idx)
    return CVResult(oof_proba=oof, fold_index=index)
