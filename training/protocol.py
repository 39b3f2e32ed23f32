"""The evaluation protocol: repeated stratified CV with calibration and threshold fitted inside.

Every outer fold repeats what a training run does, on the fold's training rows only: raw
out-of-fold scores from an inner stratified CV, a calibration map fitted on them, the
threshold chosen on the calibrated inner scores (:mod:`training.calibrate`), and the pipeline
refitted on all the fold's training rows. Only then is the outer fold scored, so neither the
map nor the threshold has seen the rows it is judged on.

With about 56 reggaeton songs in the training split an outer fold holds about 11 of them, and
one song moves a fold's F1 by several points; a single 5-fold CV cannot tell candidates apart.
The protocol therefore repeats the K-fold split R times (5x5 by default) and reports the mean
with a 95% interval from the corrected resampled t statistic (Nadeau and Bengio, 2003; Bouckaert
and Frank, 2004): fold scores share most of their training rows, so the naive standard error
of R*K correlated scores is too small, and the variance is inflated by ``n_test / n_train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score
from sklearn.model_selection import RepeatedStratifiedKFold

from reggaeton.calibration import apply_calibration
from reggaeton.decision import decide
from reggaeton.metrics import classification_metrics
from training.calibrate import calibrate_and_threshold, probability_metrics
from training.config import TrainConfig
from training.evaluate import cross_validate
from training.pipeline import fit_pipeline

REPORTED = ("f1", "pr_auc", "brier", "ece", "brier_raw", "ece_raw", "precision", "recall")
"""Per-fold metrics summarised with an interval (``*_raw``: before calibration)."""


@dataclass
class Interval:
    """Mean over folds and its 95% interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class ProtocolResult:
    """Per-fold scores of one configuration under the protocol."""

    folds: list[dict[str, float]]
    test_fraction: float
    description: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def interval(self, name: str) -> Interval:
        """Mean and corrected 95% interval of one metric over the folds."""
        return corrected_interval([f[name] for f in self.folds], self.test_fraction)

    def summary(self) -> dict[str, Interval]:
        """Every :data:`REPORTED` metric's interval."""
        return {name: self.interval(name) for name in REPORTED}

    def flat(self, prefix: str = "") -> dict[str, float]:
        """``{f"{prefix}f1_mean": .., f"{prefix}f1_low": .., ...}`` for MLflow."""
        out: dict[str, float] = {}
        for name, iv in self.summary().items():
            out |= {f"{prefix}{name}_mean": iv.mean, f"{prefix}{name}_low": iv.low}
            out[f"{prefix}{name}_high"] = iv.high
        return out


def corrected_interval(
    values: Sequence[float], test_fraction: float, bounds: tuple[float, float] = (0.0, 1.0)
) -> Interval:
    """Mean and 95% interval of fold scores from repeated K-fold CV.

    Args:
        values: One score per fit (R*K of them for R repetitions of K folds).
        test_fraction: ``n_test / n_train`` of one fit (``1 / (K - 1)`` for K folds).
        bounds: The metric's range; the interval is clipped to it (``(-1, 1)`` for differences).

    Returns:
        ``mean +/- t(0.975, J-1) * sqrt((1/J + test_fraction) * s^2)`` with J = len(values),
        the corrected resampled t interval; a single value gives a zero-width interval.
    """
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, mean, mean)
    half = float(stats.t.ppf(0.975, len(v) - 1)) * np.sqrt(
        (1.0 / len(v) + test_fraction) * v.var(ddof=1)
    )
    return Interval(mean, max(bounds[0], mean - half), min(bounds[1], mean + half))


def inner_oof(
    config: TrainConfig, X: np.ndarray, y: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """Raw out-of-fold scores of ``config``'s pipeline on ``(X, y)`` (stratified K-fold)."""
    return cross_validate(partial(fit_pipeline, config), X, y, folds, seed).oof_proba


def score_split(
    config: TrainConfig,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    oof_raw: np.ndarray,
    method: str,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Fit on the training rows, calibrate and threshold on their OOF scores, score the test rows.

    Args:
        config: The candidate (estimator, imbalance, threshold strategy).
        X_train: Training rows of this split.
        y_train: Their labels.
        X_test: Rows scored (never used for fitting, calibration or the threshold).
        y_test: Their labels.
        oof_raw: Raw out-of-fold scores of ``X_train`` (from :func:`inner_oof`).
        method: Calibration method.

    Returns:
        F1, precision, recall at the chosen threshold, PR-AUC, Brier and ECE of the calibrated
        scores, the raw scores' Brier, ECE and PR-AUC (``*_raw``) and the threshold.
    """
    t = config.threshold
    cal = calibrate_and_threshold(y_train, oof_raw, method, t.strategy, t.beta, t.value)
    model = fit_pipeline(config, X_train, y_train)
    raw = model.predict_proba(X_test)[:, 1]
    proba = apply_calibration(raw, cal.spec)
    m = classification_metrics(y_test, decide(proba, cal.threshold), proba)
    before = probability_metrics(y_test, raw)
    after = probability_metrics(y_test, proba)
    scores = {
        "f1": m["f1"],
        "precision": m["precision"],
        "recall": m["recall"],
        "pr_auc": m["pr_auc"],
        "pr_auc_raw": float(average_precision_score(y_test, raw)),
        "brier": after["brier"],
        "ece": after["ece"],
        "brier_raw": before["brier"],
        "ece_raw": before["ece"],
        "threshold": cal.threshold,
    }
    return scores, {"y": np.asarray(y_test), "raw": raw, "proba": proba}


def protocol_fold(
    config: TrainConfig,
    X: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    inner_folds: int,
    method: str,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One outer fold of the protocol (inner OOF, calibration, threshold, refit, score)."""
    X_tr, y_tr = X[train_idx], y[train_idx]
    oof = inner_oof(config, X_tr, y_tr, inner_folds, config.seed)
    return score_split(config, X_tr, y_tr, X[test_idx], y[test_idx], oof, method)


def outer_splits(
    y: np.ndarray, repeats: int, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The protocol's seeded outer splits (the same for every candidate)."""
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return list(splitter.split(np.zeros((len(y), 1)), y))


def evaluate(
    config: TrainConfig,
    X: np.ndarray,
    y: np.ndarray,
    *,
    repeats: int,
    folds: int,
    inner_folds: int,
    method: str,
    n_jobs: int = 1,
) -> ProtocolResult:
    """Score ``config`` under the protocol (R x K outer folds, inner K' for calibration).

    Args:
        config: The candidate.
        X: Training-split rows (the hold-out is never passed here).
        y: Their labels.
        repeats: R, repetitions of the outer K-fold split.
        folds: K, outer folds.
        inner_folds: K', folds of the inner CV that yields the OOF scores.
        method: Calibration method.
        n_jobs: Processes for the outer folds (joblib).

    Returns:
        The per-fold scores; intervals via :meth:`ProtocolResult.summary`.
    """
    import time

    from joblib import Parallel, delayed

    y = np.asarray(y).astype(int)
    start = time.perf_counter()
    splits = outer_splits(y, repeats, folds, config.seed)
    scores = Parallel(n_jobs=n_jobs)(
        delayed(protocol_fold)(config, X, y, tr, te, inner_folds, method) for tr, te in splits
    )
    return ProtocolResult(
        folds=[s for s, _ in scores],
        test_fraction=1.0 / (folds - 1),
        description=f"{repeats}x{folds} repeated stratified CV, inner {inner_folds}-fold OOF "
        f"for {method} calibration and threshold",
        seconds=time.perf_counter() - start,
        extra={k: np.concatenate([a[k] for _, a in scores]) for k in ("y", "raw", "proba")},
    )
