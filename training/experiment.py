"""Compare estimators under the training CV protocol and print a leaderboard.

Every candidate is cross-validated (stratified k-fold, same seed and folds as training) on
the TRAINING part of the same seeded split, so the hold-out the gate uses is never seen.
Each candidate is logged to MLflow (experiment ``reggaeton_clf-experiments``).

``python -m training.experiment [--config FILE] [--set k=v ...] [--only a,b] [--quick]``
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
from training import tracking
from training.config import ConfigError, TrainConfig, apply_override, from_dict, load_raw
from training.data import DataError, load_labelled, split_holdout
from training.evaluate import choose_threshold, cross_validate
from training.pipeline import fit_pipeline, to_matrix

log = logging.getLogger("training.experiment")
EXPERIMENT = "reggaeton_clf-experiments"
ALL_SCALED = "model.scale=[" + ", ".join(MODEL_FEATURES) + "]"

CANDIDATES: dict[str, list[str]] = {
    "gbm_smote (original)": [],
    "gbm_no_smote": ["imbalance.strategy=none"],
    "gbm_class_weight": ["imbalance.strategy=class_weight"],
    "hgb_class_weight": [
        "model.estimator=hgb", "imbalance.strategy=class_weight",
        "model.params={random_state: 0, max_iter: 200, learning_rate: 0.05, "
        "max_leaf_nodes: 15, l2_regularization: 1.0}"],
    "rf_class_weight": [
        "model.estimator=rf", "imbalance.strategy=class_weight",
        "model.params={random_state: 0, n_estimators: 300, min_samples_leaf: 3, n_jobs: 1}"],
    "logreg_class_weight": [
        "model.estimator=logreg", "imbalance.strategy=class_weight", ALL_SCALED,
        "model.params={C: 1.0, max_iter: 2000}"],
}
SEARCH: dict[str, list[str]] = {
    f"search_gbm_cw_lr{lr}_leaf{leaf}": [
        "imbalance.strategy=class_weight",
        f"model.params={{random_state: 0, subsample: 0.8, n_estimators: 200, "
        f"learning_rate: {lr}, max_depth: 3, min_samples_leaf: {leaf}}}"]
    for lr in (0.05, 0.1) for leaf in (10, 40)
} | {
    f"search_hgb_cw_lr{lr}_leaves{leaves}": [
        "model.estimator=hgb", "imbalance.strategy=class_weight",
        f"model.params={{random_state: 0, max_iter: 150, learning_rate: {lr}, "
        f"max_leaf_nodes: {leaves}, min_samples_leaf: 10, l2_regularization: 1.0}}"]
    for lr in (0.05, 0.1) for leaves in (7,)
}
QUICK = ["cv.folds=3"]
QUICK_CAP = 20


@dataclass
class Entry:
    """One leaderboard row."""

    name: str
    metrics: dict[str, float]
    threshold: float
    seconds: float
    run_id: str | None


def candidate_config(base: dict[str, Any], overrides: list[str], quick: bool) -> TrainConfig:
    """The base raw config with a candidate's overrides (and --quick caps) applied."""
    raw = copy.deepcopy(base)
    for item in overrides + (QUICK if quick else []):
        apply_override(raw, item)
    model = raw.setdefault("model", {})
    size_key = {"gbm": "n_estimators", "rf": "n_estimators", "hgb": "max_iter"}.get(
        model.get("estimator", "gbm"))
    if quick and size_key:
        params = model.setdefault("params", {})
        params[size_key] = min(int(params.get(size_key) or QUICK_CAP), QUICK_CAP)
    return from_dict(raw)


def run_candidate(name: str, config: TrainConfig, train_frame: Any,
                  tracking_uri: str | None) -> Entry:
    """Cross-validate one candidate and log it to MLflow."""
    features = config.data.feature_list
    X, y = to_matrix(train_frame, features), train_frame[LABEL_COLUMN].to_numpy(dtype=int)
    start = time.perf_counter()
    cv = cross_validate(lambda a, b: fit_pipeline(config, a, b), X, y, config.cv.folds,
                        config.seed)
    threshold = choose_threshold(y, cv.oof_proba, config.threshold.strategy,
                                 config.threshold.beta, config.threshold.value)
    metrics = cv.summary(threshold, y)
    seconds = time.perf_counter() - start
    run_id = None
    if tracking_uri:
        run_id = tracking.log_run(
            tracking_uri, name, params=config.to_dict(),
            metrics={f"cv_{k}": v for k, v in metrics.items()} | {"oof_threshold": threshold},
            tags={"candidate": name}, experiment=EXPERIMENT)
    return Entry(name, metrics, threshold, seconds, run_id)


def leaderboard(entries: list[Entry]) -> str:
    """Entries sorted by PR-AUC mean, as a fixed-width table."""
    head = (f"{'rank':>4}  {'candidate':34} {'F1@0.5':>15} {'PR-AUC':>15} {'ROC-AUC':>7} "
            f"{'F1@thr':>7} {'thr':>6} {'sec':>5}")
    rows = [head, "-" * len(head)]
    ranked = sorted(entries, key=lambda e: e.metrics["pr_auc_mean"], reverse=True)
    for i, e in enumerate(ranked, 1):
        m = e.metrics
        rows.append(f"{i:>4}  {e.name:34} {m['f1_mean']:.3f} ± {m['f1_std']:.3f}   "
                    f"{m['pr_auc_mean']:.3f} ± {m['pr_auc_std']:.3f}   {m['roc_auc_mean']:.3f} "
                    f"{m['f1_at_threshold_mean']:7.3f} {e.threshold:6.3f} {e.seconds:5.1f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m training.experiment",
                                description=__doc__.split("\n")[0])
    p.add_argument("--config", help="base YAML config (default: training/configs/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--only", help="comma-separated candidate names (prefixes match)")
    p.add_argument("--no-search", action="store_true", help="skip the hyper-parameter search")
    p.add_argument("--quick", action="store_true", help="3 folds, at most 20 trees (smoke test)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
    uri = tracking.tracking_uri_from_env()
    candidates = dict(CANDIDATES) | ({} if args.no_search else SEARCH)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        candidates = {k: v for k, v in candidates.items() if any(k.startswith(w) for w in wanted)}
        if not candidates:
            print(f"error: no candidate matches --only {args.only}", file=sys.stderr)
            return 2
    try:
        base = load_raw(args.config)
        for item in args.overrides:
            apply_override(base, item)
        configs = {n: candidate_config(base, o, args.quick) for n, o in candidates.items()}
        first = next(iter(configs.values()))
        labelled, _ = load_labelled(Path(first.data.reggaeton_csv), Path(first.data.other_csv),
                                    first.data.feature_list)
    except (ConfigError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, _ = split_holdout(labelled, first.split.test_size, first.seed)
    entries = []
    for name, config in configs.items():
        entry = run_candidate(name, config, train, uri)
        log.info("%s: f1 %.3f pr_auc %.3f (%.1fs)", name, entry.metrics["f1_mean"],
                 entry.metrics["pr_auc_mean"], entry.seconds)
        entries.append(entry)
    print(f"{first.cv.folds}-fold stratified CV on the training part ({len(train)} rows; "
          f"hold-out excluded). MLflow: {uri} (experiment {EXPERIMENT})")
    print(leaderboard(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
