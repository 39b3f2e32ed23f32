"""Train, evaluate, save a version and run the promotion gate.

``python -m training.train [--config FILE] [--set k=v ...] [--force] [--include-feedback]
[--if-empty]``. :func:`run_training` is the programmatic entry point (monitor, tests).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reggaeton import servable
from reggaeton.calibration import apply_calibration
from reggaeton.hashing import sha256_file
from reggaeton.registry import ModelLoadError, ModelVersion, Registry, home_from_env
from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
from reggaeton.timeutil import now_iso
from training import data as datamod
from training import gate, lease, metadata, tracking
from training.calibrate import Calibrated, calibrate_and_threshold, probability_metrics
from training.config import ConfigError, TrainConfig, load_config
from training.evaluate import cross_validate, metrics_at
from training.pipeline import describe, fit_pipeline, make_estimator, to_matrix

log = logging.getLogger("training")


FEATURES = list(MODEL_FEATURES)
"""The model's inputs: exactly the columns the service sends (see ``reggaeton.schema``)."""


@dataclass
class TrainingResult:
    """What a run produced."""

    tag: str
    promoted: bool
    decision: gate.GateDecision
    metrics: dict[str, Any]
    cv_metrics: dict[str, float]
    threshold: float
    version: ModelVersion
    mlflow_run_id: str | None = None
    rows: dict[str, Any] = field(default_factory=dict)


@dataclass
class FittedModel:
    """The fitted pipeline with its calibration map, threshold and cross-validation numbers."""

    pipeline: Any
    calibration: Calibrated
    cv_metrics: dict[str, float]

    def served_proba(self, X: np.ndarray) -> np.ndarray:
        """The probability the service returns: the raw score through the calibration map."""
        return apply_calibration(self.pipeline.predict_proba(X)[:, 1], self.calibration.spec)


@dataclass
class HoldoutScores:
    """The hold-out's labels, raw and served scores, and the metrics the gate compares."""

    y: np.ndarray
    raw: np.ndarray
    proba: np.ndarray
    metrics: dict[str, Any]


def prepare_data(
    config: TrainConfig,
    *,
    root: Path,
    include_feedback: bool = False,
    store_uri: str | None = None,
) -> datamod.Dataset:
    """Load, validate, clean and split (plus feedback rows when asked)."""
    paths = [root / config.data.reggaeton_csv, root / config.data.other_csv]
    labelled, cleaning = _load_labelled(paths)
    unlabelled = _count_unlabelled(config, root)
    train, holdout = datamod.split_holdout(labelled, config.split.test_size, config.seed)
    trained_on, fb_eval = labelled, None
    fb_rows: dict[str, int] = {"feedback_train": 0, "feedback_eval": 0}
    if include_feedback:
        extra, fb_eval, fb_rows = _feedback_rows(config, holdout, store_uri)
        train = pd.concat([train, extra], ignore_index=True)
        trained_on = pd.concat([labelled, extra], ignore_index=True)
    rows = {
        "raw": cleaning.rows_in,
        "dropped_missing": cleaning.dropped_missing,
        "dropped_duplicates": cleaning.dropped_duplicates,
        "clean": cleaning.rows_out,
        "train": len(train),
        "holdout": len(holdout),
        "unlabelled": unlabelled,
        "train_classes": datamod.class_counts(train),
        "holdout_classes": datamod.class_counts(holdout),
        **fb_rows,
    }
    return datamod.Dataset(
        train=train,
        holdout=holdout,
        cleaning=cleaning,
        data_sha256=datamod.frame_sha256(trained_on),
        files_sha256=_file_hashes(paths, root),
        feedback_eval=fb_eval,
        rows=rows,
    )


def _load_labelled(paths: list[Path]) -> tuple[pd.DataFrame, datamod.CleaningReport]:
    labelled, cleaning = datamod.load_labelled(*paths, FEATURES)
    log.info(
        "data: %d rows read, %d dropped (missing), %d dropped (duplicates), %d kept %s",
        cleaning.rows_in,
        cleaning.dropped_missing,
        cleaning.dropped_duplicates,
        cleaning.rows_out,
        datamod.class_counts(labelled),
    )
    return labelled, cleaning


def _count_unlabelled(config: TrainConfig, root: Path) -> int:
    """Rows of the unlabelled file (read, so a broken file fails the run; never trained on)."""
    if not config.data.unlabelled_csv:
        return 0
    return len(datamod.read_source(root / config.data.unlabelled_csv, FEATURES, None))


def _file_hashes(paths: list[Path], root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)) if p.is_relative_to(root) else str(p): sha256_file(p)
        for p in paths
    }


def _feedback_rows(
    config: TrainConfig, holdout: pd.DataFrame, store_uri: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Labelled production rows: the older ones to train on, the newest for the gate.

    A production row that is a hold-out song (same feature values) would leak the hold-out
    into training and flatter the candidate at the gate, so it is dropped.
    """
    d = config.data
    feedback = datamod.load_feedback(store_uri, d.feedback_days, FEATURES)
    fb_train, fb_eval = datamod.split_feedback(feedback, d.feedback_eval_fraction)
    log.info(
        "feedback: %d labelled production rows (%d trained on, %d for the gate)",
        len(feedback),
        len(fb_train),
        len(fb_eval),
    )
    extra = fb_train.drop(columns=["timestamp"])
    in_holdout = datamod.rows_in(extra, holdout, FEATURES)
    if in_holdout.any():
        log.info("feedback: %d rows dropped (they are hold-out songs)", in_holdout.sum())
    extra = extra[~in_holdout]
    counts = {
        "feedback_train": len(extra),
        "feedback_eval": len(fb_eval),
        "feedback_dropped_holdout": int(in_holdout.sum()),
    }
    return extra, fb_eval, counts


def fit_calibrated(config: TrainConfig, X: np.ndarray, y: np.ndarray) -> FittedModel:
    """Cross-validate, fit the calibration map and threshold on the OOF scores, fit the final
    pipeline on all rows.

    ``cv_metrics`` are per-fold metrics of the calibrated out-of-fold scores at the chosen
    threshold; map and threshold were fitted on those same scores, so they are a little
    optimistic (``make experiment`` gives the protocol's honest estimate). ``brier_raw``,
    ``ece_raw``, ``brier`` and ``ece`` are over all out-of-fold scores, before and after.
    """
    log.info(
        "cv: %d-fold stratified on %d training rows (%s, imbalance=%s)",
        config.cv.folds,
        len(y),
        config.model.estimator,
        config.imbalance.strategy,
    )
    cv = cross_validate(partial(fit_pipeline, config), X, y, config.cv.folds, config.seed)
    t = config.threshold
    cal = calibrate_and_threshold(
        y, cv.oof_proba, config.calibration.method, t.strategy, t.beta, t.value
    )
    calibrated = apply_calibration(cv.oof_proba, cal.spec)
    before, after = probability_metrics(y, cv.oof_proba), probability_metrics(y, calibrated)
    cv_metrics = cv.summary(y, calibrated, cal.threshold)
    cv_metrics |= {"brier_raw": before["brier"], "ece_raw": before["ece"]} | after
    log.info(
        "cv: f1 %.4f +/- %.4f, pr_auc %.4f +/- %.4f at threshold %.4f (%s); brier %.4f -> %.4f,"
        " ece %.4f -> %.4f (%s calibration)",
        cv_metrics["f1_mean"],
        cv_metrics["f1_std"],
        cv_metrics["pr_auc_mean"],
        cv_metrics["pr_auc_std"],
        cal.threshold,
        cal.strategy,
        before["brier"],
        after["brier"],
        before["ece"],
        after["ece"],
        config.calibration.method,
    )
    log.info("fit: final pipeline on all %d training rows", len(y))
    return FittedModel(fit_pipeline(config, X, y), cal, cv_metrics)


def score_holdout(model: FittedModel, holdout: pd.DataFrame) -> HoldoutScores:
    """Metrics of the served probabilities on the hold-out, plus Brier and ECE before and
    after calibration (``*_raw``: the pipeline's own scores)."""
    X = to_matrix(holdout, FEATURES)
    y = holdout[LABEL_COLUMN].to_numpy(dtype=int)
    raw = model.pipeline.predict_proba(X)[:, 1]
    proba = apply_calibration(raw, model.calibration.spec)
    metrics = metrics_at(y, proba, model.calibration.threshold)
    before, after = probability_metrics(y, raw), probability_metrics(y, proba)
    metrics |= {"brier_raw": before["brier"], "ece_raw": before["ece"]} | after
    log.info(
        "hold-out (%d rows): f1 %.4f, pr_auc %.4f, precision %.4f, recall %.4f, brier %.4f -> "
        "%.4f, ece %.4f -> %.4f",
        len(y),
        metrics["f1"],
        metrics["pr_auc"],
        metrics["precision"],
        metrics["recall"],
        before["brier"],
        after["brier"],
        before["ece"],
        after["ece"],
    )
    return HoldoutScores(y=y, raw=raw, proba=proba, metrics=metrics)


def build_metadata(
    config: TrainConfig,
    ds: datamod.Dataset,
    model: FittedModel,
    holdout: HoldoutScores,
    root: Path,
) -> dict[str, Any]:
    """The version's ``metadata.json``: threshold and calibration map (both read by the
    service), metrics, data hashes, row counts, config and provenance."""
    pipeline = model.pipeline
    return {
        "created_at": now_iso("seconds"),
        "threshold": model.calibration.threshold,
        "threshold_strategy": model.calibration.strategy,
        "calibration": model.calibration.spec,
        "features": FEATURES,
        "feature_dtypes": {name: "float64" for name in FEATURES},
        "estimator": type(pipeline[-1]).__name__,
        "pipeline_steps": describe(pipeline),
        "imbalance": config.imbalance.strategy,
        "metrics": {k: v for k, v in holdout.metrics.items() if k != "confusion_matrix"},
        "confusion_matrix": holdout.metrics["confusion_matrix"],
        "cv_metrics": model.cv_metrics,
        "data_sha256": ds.data_sha256,
        "data_files": ds.files_sha256,
        "rows": ds.rows,
        "config": config.to_dict(),
        "git_commit": metadata.git_commit(root),
        "library_versions": metadata.library_versions(),
        "training_ranges": metadata.training_ranges(ds.train),
        "positive_rate": float(ds.train[LABEL_COLUMN].mean()),
    }


def run_training(
    config: TrainConfig,
    registry: Registry,
    tracking_uri: str | None = None,
    *,
    force: bool = False,
    include_feedback: bool = False,
    store_uri: str | None = None,
    root: str | Path | None = None,
) -> TrainingResult:
    """Train, evaluate, save one version of ``reggaeton_clf`` and run the promotion gate.

    Args:
        config: Training configuration.
        registry: Model store to save into (and whose promotion record the gate updates).
        tracking_uri: MLflow tracking URI; None skips MLflow.
        force: Promote even if the gate would reject (recorded as forced).
        include_feedback: Add labelled production rows (``store_uri``) to training and
            evaluate both versions on the newest of them.
        store_uri: Prediction-log URI (None: the default SQLite file).
        root: Folder the data paths are relative to (default: the working directory).

    Raises:
        DataError: bad data, naming the file and column.
    """
    root = Path(root or Path.cwd()).resolve()
    make_estimator(config.model.estimator, config.model.params)  # bad params fail before data
    ds = prepare_data(config, root=root, include_feedback=include_feedback, store_uri=store_uri)
    X, y = to_matrix(ds.train, FEATURES), ds.train[LABEL_COLUMN].to_numpy(dtype=int)
    model = fit_calibrated(config, X, y)
    holdout = score_holdout(model, ds.holdout)
    meta = build_metadata(config, ds, model, holdout, root)
    sample = metadata.reference_sample(ds.train, model.served_proba(X), meta["threshold"])
    version = registry.save(
        model.pipeline,
        meta,
        reference_files=metadata.reference_files(sample),
        servable=servable.export(model.pipeline),  # what the service loads (no pickle)
    )
    log.info("saved %s in %s", version.tag, registry.home)
    with lease.gate_lock(registry.home):  # a concurrent training's promotion is seen here
        decision = _gate(config, registry, version, ds, holdout.metrics, force)
        gate.apply(registry, version.tag, decision)
    log.info("gate: %s (%s)", "PROMOTED" if decision.promote else "NOT promoted", decision.reason)
    run_id = _track_safely(tracking_uri, version, meta, holdout, decision)
    return TrainingResult(
        tag=version.tag,
        promoted=decision.promote,
        decision=decision,
        metrics=meta["metrics"],
        cv_metrics=model.cv_metrics,
        threshold=model.calibration.threshold,
        version=version,
        mlflow_run_id=run_id,
        rows=ds.rows,
    )


def _gate(
    config: TrainConfig,
    registry: Registry,
    version: ModelVersion,
    ds: datamod.Dataset,
    holdout: dict[str, Any],
    force: bool,
) -> gate.GateDecision:
    tolerances = {"f1": config.gate.f1_tolerance, "pr_auc": config.gate.pr_auc_tolerance}
    current_tag = registry.promotions.current()
    current = cand_prod = cur_prod = mismatch = None
    if current_tag:
        try:
            current_version = registry.get(current_tag)
            mismatch = gate.holdout_mismatch(version.metadata, current_version.metadata)
            current = gate.score_version(registry, current_version, ds.holdout)
            if gate.usable_for_gate(ds.feedback_eval, config.gate.min_feedback_rows):
                cand_prod = gate.score_version(registry, version, ds.feedback_eval)
                cur_prod = gate.score_version(registry, current_version, ds.feedback_eval)
        except ModelLoadError as exc:
            log.warning("gate: current version %s cannot be scored: %s", current_tag, exc)
            current = None
    return gate.decide(
        holdout,
        current,
        tolerances,
        force=force,
        candidate_prod=cand_prod,
        current_prod=cur_prod,
        current_tag=current_tag,
        mismatch=mismatch,
    )


def _track_safely(
    uri: str | None,
    version: ModelVersion,
    meta: dict[str, Any],
    holdout: HoldoutScores,
    decision: gate.GateDecision,
) -> str | None:
    """Log the run to MLflow; a tracking outage is logged, never fatal (the version is saved
    and gated already)."""
    if not uri:
        return None
    try:
        run_id = _track(uri, version, meta, holdout, decision)
    except Exception as exc:  # noqa: BLE001 - the version is saved and gated already
        log.error(
            "mlflow: logging to %s failed (%s: %s); %s is saved and %s all the same",
            uri,
            type(exc).__name__,
            exc,
            version.tag,
            "promoted" if decision.promote else "not promoted",
        )
        return None
    log.info("mlflow: run %s logged to %s", run_id, uri)
    return run_id


def _track(
    uri: str,
    version: ModelVersion,
    meta: dict[str, Any],
    holdout: HoldoutScores,
    decision: gate.GateDecision,
) -> str:
    metrics = {f"holdout_{k}": v for k, v in meta["metrics"].items()}
    metrics |= {f"cv_{k}": v for k, v in meta["cv_metrics"].items()}
    metrics |= {"threshold": meta["threshold"], "promoted": float(decision.promote)}
    tags = {
        "bento_tag": version.tag,
        "data_sha256": meta["data_sha256"],
        "git_commit": meta["git_commit"],
        "gate": decision.reason[:500],
        "estimator": meta["estimator"],
        "threshold_strategy": meta["threshold_strategy"],
    }
    artifacts = {
        "confusion_matrix.png": tracking.confusion_png(meta["confusion_matrix"]),
        "pr_curve.png": tracking.pr_curve_png(holdout.y, holdout.proba, meta["threshold"]),
        "reliability.png": tracking.reliability_png(
            holdout.y, {"raw": holdout.raw, "calibrated": holdout.proba}, "Reliability (hold-out)"
        ),
    }
    return tracking.log_run(
        uri,
        f"train {version.version}",
        params=meta["config"],
        metrics=metrics,
        tags=tags,
        artifacts=artifacts,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``python -m training.train``."""
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="YAML config (default: training/configs/default.yaml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.params.n_estimators=1",
    )
    p.add_argument("--force", action="store_true", help="promote even if the gate rejects")
    p.add_argument(
        "--include-feedback",
        action="store_true",
        help="train on labelled production rows from PREDICTION_STORE_URI too",
    )
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when a promoted version already exists"
    )
    p.add_argument(
        "--promoted-tag-file",
        type=Path,
        metavar="FILE",
        help="write the new tag here when (and only when) this run promotes it; "
        "emptied otherwise (the Kubernetes train Job rolls out only then)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    args = parse_args(argv)
    if args.promoted_tag_file is not None:  # stale content must never trigger a rollout
        args.promoted_tag_file.parent.mkdir(parents=True, exist_ok=True)
        args.promoted_tag_file.write_text("")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
    try:
        config = load_config(args.config, args.overrides)
        registry = Registry(home_from_env())
        if args.if_empty and registry.promotions.current():
            print(f"promoted version exists: {registry.promotions.current()} (nothing to do)")
            return 0
        result = run_training(
            config,
            registry,
            tracking.tracking_uri_from_env(),
            force=args.force,
            include_feedback=args.include_feedback,
            store_uri=os.environ.get("PREDICTION_STORE_URI"),
        )
    except (datamod.DataError, ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m, cv = result.metrics, result.cv_metrics
    print(f"tag: {result.tag}")
    print(
        f"cv ({config.cv.folds}-fold, calibrated, threshold chosen on these scores): "
        f"f1 {cv['f1_mean']:.4f} +/- {cv['f1_std']:.4f}  "
        f"pr_auc {cv['pr_auc_mean']:.4f} +/- {cv['pr_auc_std']:.4f}  "
        f"brier {cv['brier_raw']:.4f} -> {cv['brier']:.4f}  "
        f"ece {cv['ece_raw']:.4f} -> {cv['ece']:.4f}"
    )
    print(
        f"hold-out: f1 {m['f1']:.4f}  pr_auc {m['pr_auc']:.4f}  precision {m['precision']:.4f}"
        f"  recall {m['recall']:.4f}  roc_auc {m['roc_auc']:.4f}  brier {m['brier']:.4f}"
        f"  ece {m['ece']:.4f}  threshold {result.threshold:.4f} (calibrated)"
    )
    print(f"gate: {'PROMOTED' if result.promoted else 'NOT PROMOTED'}: {result.decision.reason}")
    if result.promoted and args.promoted_tag_file is not None:
        args.promoted_tag_file.write_text(result.tag + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
