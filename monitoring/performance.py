"""Live performance on the records that received feedback (pure).

Labels arrive through ``/feedback`` for a fraction of the predictions only, so every number
comes with the count it rests on, and nothing is judged below the minimum sample: the
section then says ``insufficient_data`` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from monitoring.config import PerformanceConfig
from monitoring.status import worst
from reggaeton.metrics import classification_metrics

METRICS = ("precision", "recall", "f1", "pr_auc")
"""The metrics compared with the model's hold-out values."""


def compute_metrics(
    labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray
) -> dict[str, Any]:
    """Precision, recall, F1, PR-AUC and confusion matrix ``[[tn, fp], [fn, tp]]``.

    Args:
        labels: Ground-truth labels (1 reggaeton, 0 other).
        predictions: Predicted labels logged with each record.
        probabilities: Predicted probability of reggaeton.
    """
    y = np.asarray(labels, dtype=int)
    return {**classification_metrics(y, predictions, probabilities), **_label_counts(y)}


def _label_counts(y: np.ndarray) -> dict[str, int]:
    """How many labelled records, and how many of each label, the numbers rest on."""
    return {
        "n_labelled": int(y.size),
        "n_positive": int((y == 1).sum()),
        "n_negative": int((y == 0).sum()),
    }


def drop_test(ref_hits: int, ref_total: int, hits: int, total: int) -> float:
    """One-sided Fisher exact p-value that the live rate ``hits/total`` is below the reference.

    Used for recall (hits = true positives among actual positives) and precision (true
    positives among predicted positives); the reference counts come from the model's
    hold-out confusion matrix, so the uncertainty of both estimates is accounted for.
    """
    if ref_total == 0 or total == 0:
        return 1.0
    table = [[hits, total - hits], [ref_hits, ref_total - ref_hits]]
    return float(stats.fisher_exact(table, alternative="less").pvalue)


def _rate_tests(metrics: Mapping[str, Any], reference_cm: Any) -> dict[str, float]:
    """p-values of "precision dropped" and "recall dropped" (empty without a reference CM)."""
    try:
        (_, rfp), (rfn, rtp) = reference_cm
        (_, fp), (fn, tp) = metrics["confusion_matrix"]
    except (TypeError, ValueError):
        return {}
    return {
        "precision": drop_test(rtp, rtp + rfp, tp, tp + fp),
        "recall": drop_test(rtp, rtp + rfn, tp, tp + fn),
    }


def assess_performance(
    labels: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    metadata: Mapping[str, Any],
    config: PerformanceConfig,
) -> dict[str, Any]:
    """Compare live metrics with the model's hold-out metrics, with minimum-sample guards.

    A drop counts only when it is both large (``max_drop`` / ``warn_drop``, absolute) and
    statistically significant: a one-sided Fisher exact test of the live precision / recall
    against the hold-out confusion matrix at ``alpha``. With ~3% reggaeton among the songs a
    few hundred labels hold only a dozen positives, and recall estimated on 12 songs moves by
    +/-0.25 by chance alone; the test keeps that noise from alerting.

    Args:
        labels / predictions / probabilities: The labelled records of the window.
        metadata: The model's metadata (``metrics`` and ``confusion_matrix`` of the hold-out).
        config: Guards, drop thresholds and significance level.

    Returns:
        ``{"status": ok|warning|alert|insufficient_data, "reason", "metrics", "reference",
        "drops", "pvalues", "n_labelled", ...}``.
    """
    reference = metadata.get("metrics") or {}
    y = np.asarray(labels, dtype=int)
    base: dict[str, Any] = {
        **_label_counts(y),
        "reference": {k: reference.get(k) for k in METRICS},
        "min_labelled": config.min_labelled,
        "min_per_class": config.min_per_class,
        "alpha": config.alpha,
    }
    n, pos, neg = base["n_labelled"], base["n_positive"], base["n_negative"]
    if n < config.min_labelled or min(pos, neg) < config.min_per_class:
        reason = (
            f"insufficient data: {n} labelled records ({pos} reggaeton, {neg} other); need >= "
            f"{config.min_labelled} with >= {config.min_per_class} of each label"
        )
        base.update(status="insufficient_data", metrics=None, drops={}, pvalues={}, reason=reason)
        return base
    metrics = compute_metrics(y, predictions, probabilities)
    drops = _drops(reference, metrics)
    pvalues = _rate_tests(metrics, metadata.get("confusion_matrix"))
    status, worst_metric = _judge(drops, pvalues, config)
    reason = ""
    if worst_metric is not None:
        reason = (
            f"{_drop_text(worst_metric, metrics, drops, reference)} on {n} labelled records "
            f"(one-sided Fisher p = {pvalues[worst_metric]:.2g})"
        )
    # Large drops the test cannot confirm are shown, not alerted on: say so (the hold-out's
    # few positives make the reference rates uncertain).
    unconfirmed = [
        f"{_drop_text(name, metrics, drops, reference)}, not significant (one-sided Fisher p = "
        f"{pvalues.get(name, 1.0):.2g} >= alpha {config.alpha:g})"
        for name in config.metrics
        if drops.get(name, 0.0) > config.warn_drop and pvalues.get(name, 1.0) >= config.alpha
    ]
    base.update(
        status=status,
        metrics=metrics,
        drops=drops,
        pvalues=pvalues,
        reason=reason,
        unconfirmed=unconfirmed,
    )
    return base


def _drops(reference: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, float]:
    """How far each live metric is below the hold-out's (negative: above it)."""
    drops: dict[str, float] = {}
    for name in METRICS:
        ref, live = reference.get(name), metrics.get(name)
        if isinstance(ref, int | float) and isinstance(live, int | float):
            drops[name] = float(ref) - float(live)
    return drops


def _judge(
    drops: Mapping[str, float], pvalues: Mapping[str, float], config: PerformanceConfig
) -> tuple[str, str | None]:
    """The section's status and the metric that drops most among the significant drops.

    A metric counts only when its drop test is significant (p < ``alpha``); it then warns
    above ``warn_drop`` and alerts above ``max_drop``.
    """
    status, worst_metric = "ok", None
    for name in config.metrics:
        drop, p = drops.get(name, 0.0), pvalues.get(name, 1.0)
        if p >= config.alpha:
            continue
        level = (
            "alert" if drop > config.max_drop else "warning" if drop > config.warn_drop else "ok"
        )
        if level != "ok" and (worst_metric is None or drop > drops[worst_metric]):
            worst_metric = name
        status = worst(status, level)
    return status, worst_metric


def _drop_text(
    name: str,
    metrics: Mapping[str, Any],
    drops: Mapping[str, float],
    reference: Mapping[str, Any],
) -> str:
    """``recall 0.500 is 0.300 below the model's 0.800``."""
    return (
        f"{name} {metrics[name]:.3f} is {drops[name]:.3f} below the model's {reference[name]:.3f}"
    )
