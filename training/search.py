"""Optuna search over the trainer's estimators, inside nested cross-validation.

The search space is every estimator the trainer offers (``gbm``, ``hgb``, ``rf``, ``logreg``)
with each imbalance strategy (``none``, ``smote``, ``class_weight``) and the estimator's main
hyper-parameters. A trial is scored by the mean PR-AUC of its raw scores over an inner
stratified K-fold CV (threshold-free, so the search does not chase the noisy F1 of a
threshold; calibration keeps the ranking, so the raw PR-AUC ranks the served model too).
Hopeless trials are pruned after their first folds (median pruner).

Nested CV: the training split is cut into outer folds; for each one the search runs on the
other folds only, its best configuration is calibrated and thresholded on its own inner
out-of-fold scores, refitted and scored on the outer fold (:func:`training.protocol.score_split`).
Those outer scores estimate what the search procedure delivers, without the optimism of the
best-of-many score it was selected on. One more search on the whole training split picks the
winner's configuration. All searches are independent and run side by side (joblib), each
with the same time budget (the trial count then depends on the machine's load).
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold

from reggaeton.schema import MODEL_FEATURES
from training.config import TrainConfig, from_dict
from training.pipeline import fit_pipeline
from training.protocol import inner_oof, score_split

ESTIMATORS = ("gbm", "hgb", "rf", "logreg")
IMBALANCE = ("none", "smote", "class_weight")


@dataclass
class SearchResult:
    """One Optuna study: the best configuration, its inner OOF scores and every trial."""

    label: str
    best_raw: dict[str, Any]
    best_value: float
    best_oof: np.ndarray
    trials: list[dict[str, Any]]
    best_by_estimator: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    rows: int = 0


@dataclass
class OuterFold:
    """One outer fold of the nested CV: the search's pick and both candidates' test scores."""

    index: int
    search: SearchResult
    winner: dict[str, float]
    original: dict[str, float]


def suggest(trial: Any, base: dict[str, Any]) -> dict[str, Any]:
    """A raw config: ``base`` with the trial's estimator, imbalance and parameters.

    Parameter names carry the estimator as a prefix, so Optuna sees one distribution per name.
    """
    raw = copy.deepcopy(base)
    estimator = trial.suggest_categorical("estimator", ESTIMATORS)
    raw.setdefault("imbalance", {})["strategy"] = trial.suggest_categorical("imbalance", IMBALANCE)
    model = raw.setdefault("model", {})
    model["estimator"] = estimator
    model["scale"] = ["loudness", "tempo"]
    if estimator == "gbm":
        params = {
            "n_estimators": trial.suggest_int("gbm_n_estimators", 50, 300, step=50),
            "learning_rate": trial.suggest_float("gbm_learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("gbm_max_depth", 2, 5),
            "min_samples_leaf": trial.suggest_int("gbm_min_samples_leaf", 5, 200, log=True),
            "subsample": trial.suggest_float("gbm_subsample", 0.5, 1.0),
        }
    elif estimator == "hgb":
        params = {
            "max_iter": trial.suggest_int("hgb_max_iter", 50, 300, step=50),
            "learning_rate": trial.suggest_float("hgb_learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("hgb_max_leaf_nodes", 4, 31),
            "min_samples_leaf": trial.suggest_int("hgb_min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("hgb_l2", 1e-3, 10.0, log=True),
        }
    elif estimator == "rf":
        params = {
            "n_estimators": trial.suggest_int("rf_n_estimators", 100, 300, step=100),
            "min_samples_leaf": trial.suggest_int("rf_min_samples_leaf", 3, 30, log=True),
            "max_features": trial.suggest_float("rf_max_features", 0.2, 0.8),
            "n_jobs": 1,
        }
    else:
        params = {"C": trial.suggest_float("logreg_C", 1e-3, 100.0, log=True), "max_iter": 5000}
        model["scale"] = list(MODEL_FEATURES)  # a linear model needs every input on one scale
    if estimator != "logreg":
        params["random_state"] = 0
    model["params"] = params
    return raw


def _objective(
    trial: Any,
    base: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    folds: int,
    seed: int,
    oofs: dict[int, np.ndarray],
    deadline: float,
) -> float:
    import optuna

    raw = suggest(trial, base)
    config = from_dict(raw)
    oof = np.zeros(len(y), dtype=np.float64)
    scores = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for step, (train_idx, val_idx) in enumerate(splitter.split(X, y)):
        model = fit_pipeline(config, X[train_idx], y[train_idx])
        oof[val_idx] = model.predict_proba(X[val_idx])[:, 1]
        scores.append(average_precision_score(y[val_idx], oof[val_idx]))
        trial.report(float(np.mean(scores)), step)
        over = time.perf_counter() > deadline and bool(_completed(trial.study))
        if step < folds - 1 and (over or trial.should_prune()):
            raise optuna.TrialPruned()  # hopeless, or the budget is spent: stop between folds
    trial.set_user_attr("config", raw)
    oofs[trial.number] = oof
    return float(np.mean(scores))


def _completed(study: Any) -> list[Any]:
    """The study's finished trials (a pruned trial keeps its last intermediate value)."""
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def run_search(
    base: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    *,
    label: str,
    timeout: float,
    max_trials: int,
    inner_folds: int,
    seed: int,
) -> SearchResult:
    """One Optuna study (TPE, seeded; median pruner) on ``(X, y)`` within ``timeout`` seconds.

    Progress goes to stderr, one line per finished trial.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    oofs: dict[int, np.ndarray] = {}
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )

    def progress(study: Any, trial: Any) -> None:
        state = trial.state.name.lower()
        done = trial.state == optuna.trial.TrialState.COMPLETE
        value = f"pr_auc {trial.value:.3f}" if done else state
        best = study.best_value if _completed(study) else float("nan")
        print(
            f"[search {label}] trial {trial.number}: {trial.params.get('estimator')}/"
            f"{trial.params.get('imbalance')} {value} (best {best:.3f}) "
            f"{time.perf_counter() - start:.0f}s/{timeout:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    y = np.asarray(y).astype(int)
    study.optimize(
        lambda t: _objective(t, base, X, y, inner_folds, seed, oofs, start + timeout),
        n_trials=max_trials,
        timeout=timeout,
        callbacks=[progress],
    )
    complete = _completed(study)
    if not complete:
        raise RuntimeError(f"search {label}: no trial finished within {timeout:.0f}s")
    best = max(complete, key=lambda t: t.value)
    by_estimator: dict[str, dict[str, Any]] = {}
    for t in sorted(complete, key=lambda t: t.value, reverse=True):
        by_estimator.setdefault(
            t.params["estimator"],
            {"value": t.value, "trial": t.number, "config": t.user_attrs["config"]},
        )
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
        for t in study.trials
    ]
    return SearchResult(
        label=label,
        best_raw=best.user_attrs["config"],
        best_value=best.value,
        best_oof=oofs[best.number],
        trials=trials,
        best_by_estimator=by_estimator,
        seconds=time.perf_counter() - start,
        rows=len(y),
    )


def _outer_task(
    base: dict[str, Any],
    original: TrainConfig,
    X: np.ndarray,
    y: np.ndarray,
    index: int,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    label: str,
    settings: dict[str, Any],
) -> OuterFold:
    X_tr, y_tr, X_te, y_te = X[train_idx], y[train_idx], X[test_idx], y[test_idx]
    found = run_search(
        base,
        X_tr,
        y_tr,
        label=label,
        timeout=settings["timeout"],
        max_trials=settings["max_trials"],
        inner_folds=settings["inner_folds"],
        seed=settings["seed"],
    )
    method = settings["method"]
    winner, _ = score_split(
        from_dict(found.best_raw), X_tr, y_tr, X_te, y_te, found.best_oof, method
    )
    oof = inner_oof(original, X_tr, y_tr, settings["inner_folds"], settings["seed"])
    baseline, _ = score_split(original, X_tr, y_tr, X_te, y_te, oof, method)
    return OuterFold(index=index, search=found, winner=winner, original=baseline)


def _final_task(
    base: dict[str, Any], X: np.ndarray, y: np.ndarray, settings: dict[str, Any]
) -> SearchResult:
    return run_search(
        base,
        X,
        y,
        label="final",
        timeout=settings["timeout"],
        max_trials=settings["max_trials"],
        inner_folds=settings["inner_folds"],
        seed=settings["seed"],
    )


def nested_search(
    base: dict[str, Any],
    original: TrainConfig,
    X: np.ndarray,
    y: np.ndarray,
    *,
    outer_folds: int,
    budget_seconds: float,
    max_trials: int,
    inner_folds: int,
    method: str,
    seed: int,
    n_jobs: int = 1,
) -> tuple[list[OuterFold], SearchResult]:
    """Nested CV of the search plus the final search on all of ``(X, y)``.

    Args:
        base: Raw config the trials start from (data paths, seed, threshold strategy).
        original: The configuration to compare with on the same outer folds.
        X: Training-split rows (never the hold-out).
        y: Their labels.
        outer_folds: Outer folds of the nested CV.
        budget_seconds: Wall-clock budget of all searches together: each of the
            ``outer_folds + 1`` searches gets ``budget * n_jobs / (outer_folds + 1)``.
        max_trials: Cap on trials per search (tests use a handful).
        inner_folds: Folds of the inner CV that scores a trial.
        method: Calibration method for the outer scoring.
        seed: Seed of the folds and the sampler.
        n_jobs: Searches run side by side.

    Returns:
        The outer folds (search pick and original, scored on the held-out fold) and the final
        search whose best configuration is the winner.
    """
    from joblib import Parallel, delayed

    y = np.asarray(y).astype(int)
    tasks = outer_folds + 1
    settings = {
        "timeout": budget_seconds * max(1, n_jobs) / tasks,
        "max_trials": max_trials,
        "inner_folds": inner_folds,
        "method": method,
        "seed": seed,
    }
    splitter = StratifiedKFold(n_splits=outer_folds, shuffle=True, random_state=seed)
    jobs = [delayed(_final_task)(base, X, y, settings)]
    jobs += [
        delayed(_outer_task)(
            base, original, X, y, k, tr, te, f"outer {k + 1}/{outer_folds}", settings
        )
        for k, (tr, te) in enumerate(splitter.split(X, y))
    ]
    results = Parallel(n_jobs=n_jobs)(jobs)
    return list(results[1:]), results[0]
