"""One monitoring run: window -> scan -> assessment -> profile, reports, store, alerts, retrain."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from monitoring import alerts, report, trigger, verdicts
from monitoring.assess import SEVERITY, assess_version
from monitoring.config import MonitoringConfig
from monitoring.history import PROFILE_ARTIFACT, REPORT_ARTIFACT
from monitoring.longwindow import DRIFT_ARTIFACT, encode_counts, long_windows, save_counts
from monitoring.reference import reference_loader
from monitoring.window import add_late_feedback, resolve_window, scan_window
from reggaeton import profiles
from reggaeton.predlog.base import PredictionStore
from reggaeton.registry import Registry

FEATURE_COLUMNS_FOR_WHYLOGS = ("probability",)


def _previous_until(store: PredictionStore) -> datetime | None:
    runs = store.monitoring_runs(limit=1)
    if not runs:
        return None
    until = (runs[0].get("window") or {}).get("until")
    return datetime.fromisoformat(until) if until else None


def _whylogs_drift(scan_profile: Any, ref_profile: Any, columns: list[str]) -> dict[str, Any]:
    if scan_profile is None or ref_profile is None:
        return {}
    try:
        return verdicts.cross_check(profiles.drift_scores(scan_profile, ref_profile, columns))
    except Exception as exc:  # informative cross-check only: never fails the run
        return {"error": {"algorithm": None, "statistic": None, "pvalue": None,
                          "error": f"{type(exc).__name__}: {exc}"}}


def _long_summary(section: dict[str, Any] | None, runs: int) -> dict[str, Any]:
    """The long window's top-level summary: its extent and verdicts, or why it was not tested."""
    if runs <= 1:
        return {"enabled": False, "drifted": [], "possible_drift": []}
    if not section:
        return {"enabled": True, "runs": 1, "drifted": [], "possible_drift": [],
                "note": "not tested: no earlier non-overlapping run with stored drift counts"}
    return {"enabled": True} | {k: section[k] for k in (
        "runs", "since", "until", "rows", "drifted", "possible_drift", "skipped")}


def make_retrainer(config: MonitoringConfig,
                   train: Callable[[], Any] | None = None) -> trigger.LocalTrigger | Any:
    """The configured trigger (local lock-guarded training, or a Kubernetes Job)."""
    mode = config.retrain.mode
    if mode == "auto":
        mode = "kubernetes" if os.environ.get("KUBERNETES_SERVICE_HOST") else "local"
    cooldown = config.retrain.cooldown_hours
    if mode == "kubernetes":
        return trigger.KubernetesTrigger(config.retrain.namespace, config.retrain.cronjob,
                                         cooldown_hours=cooldown)
    if train is None:
        from monitoring.local_training import training_runner

        train = training_runner(config)
    return trigger.LocalTrigger(config.state_dir, train, cooldown_hours=cooldown)


def run(config: MonitoringConfig, store: PredictionStore, registry: Registry, *,
        since: datetime | None = None, until: datetime | None = None,
        window: timedelta | None = None, progress: TextIO | None = sys.stderr,
        retrainer: Any = None, now: datetime | None = None) -> dict[str, Any]:
    """Run the monitor once and return its summary (also written to reports/ and the store).

    Args:
        config: Monitoring configuration.
        store: The prediction log.
        registry: The model store (serving version and references).
        since / until / window: Window bounds (see :func:`monitoring.window.resolve_window`).
        progress: Progress lines (None = silent).
        retrainer: Object with ``trigger(condition) -> dict`` used when the status is
            ``alert`` and ``config.retrain.enabled`` (default: :func:`make_retrainer`).
        now: Current time (tests).

    Raises:
        ModelLoadError: when no serving version exists or its reference is unreadable.
    """
    t0 = time.perf_counter()
    started = now or datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    serving = registry.serving_version(config.model_tag)
    load = reference_loader(registry)
    if load(serving.tag) is None:
        from reggaeton.registry import ModelLoadError

        raise ModelLoadError(f"{serving.tag}: reference/sample.csv missing or unreadable")
    start, end = resolve_window(since, until, window, None if since or window else
                                _previous_until(store), config.max_window_hours, now)
    scan = scan_window(store, start, end, load, config.chunk_size, progress)
    late = add_late_feedback(scan, store, config.performance.late_feedback_days, load,
                             config.chunk_size)
    if progress and late:
        print(f"monitor: {late:,} earlier predictions got their feedback in this window",
              file=progress, flush=True)
    t_scan = time.perf_counter()
    # The long window: this run's drift counts plus the previous runs' (longwindow.py).
    longs = long_windows(store, scan, config.drift.long_window_runs)
    assessed = {tag: assess_version(v, config, longs.get(tag))
                for tag, v in scan.versions.items()}
    main = assessed.get(serving.tag)
    if main is None:
        main = {"version": serving.tag, "rows": 0, "status": "insufficient_data",
                "reasons": [f"insufficient data: no record of {serving.tag} in the window"]}
    others = {t: {k: a.get(k) for k in ("rows", "status", "reasons")} | {
        "drifted_features": (a.get("data_drift") or {}).get("drifted", [])}
        for t, a in assessed.items() if t != serving.tag}
    # The run's status is the worst over every version with records in the window: pods can
    # serve another version than the promotion record names (a pinned MODEL_TAG, a
    # `kubectl rollout undo`), and their traffic must not go unwatched.
    status, status_version = main["status"], serving.tag
    reasons = list(main["reasons"])
    for tag, other in others.items():
        if SEVERITY[other["status"]] > 0:
            reasons.append(f"other version {tag} ({other['rows']} records): {other['status']}"
                           + (f", drift in {', '.join(other['drifted_features'])}"
                              if other["drifted_features"] else ""))
        if SEVERITY[other["status"]] > SEVERITY[status]:
            status, status_version = other["status"], tag
    ref = load(serving.tag)
    # categorical codes are left out: whylogs would run KS on them (chi-square is the test)
    wl_cols = ref.numeric + list(FEATURE_COLUMNS_FOR_WHYLOGS)
    state = Path(config.state_dir)
    profile_path = profile_bytes = None
    if scan.profile is not None:
        (state / "profiles").mkdir(parents=True, exist_ok=True)
        profile_path = state / "profiles" / f"{run_id}.bin"
        profile_bytes = profiles.serialize(scan.profile)
        profile_path.write_bytes(profile_bytes)
    drift_counts = encode_counts(scan)  # the next runs' long windows add these up
    save_counts(state, run_id, drift_counts)
    reports = Path(config.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    perf = main.get("performance") or {}
    summary: dict[str, Any] = {
        "run_id": run_id, "started_at": started.isoformat(), "status": status,
        "status_version": status_version, "model_version": serving.tag, "reasons": reasons,
        "notes": main.get("notes", []),
        "window": {"since": start.isoformat(), "until": end.isoformat(), "rows": scan.rows,
                   "chunks": scan.chunks},
        "drifted_features": (main.get("data_drift") or {}).get("drifted", []),
        "possible_drift": verdicts.possible_drift(main),
        "drift_status": (main.get("data_drift") or {}).get("status", "insufficient_data"),
        "long_window": _long_summary((main.get("data_drift") or {}).get("long_window"),
                                     config.drift.long_window_runs),
        "prediction_drift_status": (main.get("prediction_drift") or {}).get("status"),
        "performance_status": perf.get("status", "insufficient_data"),
        "performance_metrics": perf.get("metrics"),
        "n_labelled": perf.get("n_labelled", 0),
        "serving": main, "other_versions": others,
        "whylogs_drift": _whylogs_drift(scan.profile, ref.profile, wl_cols),
        "profile_path": str(profile_path) if profile_path else None,
        "report_json": str((reports / f"{run_id}.json").absolute()),
        "report_html": str((reports / f"{run_id}.html").absolute()),
    }
    summary["alerts"] = alerts.deliver(summary, config.alerts)
    summary["retrain"] = None
    if config.retrain.enabled and status == "alert":
        retrainer = retrainer or make_retrainer(config)
        summary["retrain"] = retrainer.trigger(trigger.condition_of(summary))
    history = [r for r in store.monitoring_runs(limit=30) if r.get("run_id") != run_id]
    summary["finished_at"] = datetime.now(UTC).isoformat()
    html = report.render(summary, scan.versions.get(serving.tag), history)
    Path(summary["report_html"]).write_text(html)
    t_end = time.perf_counter()
    summary["timings_s"] = {"scan": round(t_scan - t0, 3), "total": round(t_end - t0, 3)}
    summary["finished_at"] = datetime.now(UTC).isoformat()
    # The profile and the HTML also go to the store: a CronJob's pod (and its files) is gone
    # after the run; `monitoring.history` merges stored profiles over weeks from there.
    summary["stored_artifacts"] = [PROFILE_ARTIFACT] * (profile_bytes is not None) + [
        REPORT_ARTIFACT, DRIFT_ARTIFACT]
    Path(summary["report_json"]).write_text(json.dumps(summary, indent=2, default=str))
    store.save_monitoring_run(json.loads(json.dumps(summary, default=str)))
    if profile_bytes is not None:
        store.save_run_artifact(run_id, PROFILE_ARTIFACT, started, profile_bytes)
    store.save_run_artifact(run_id, REPORT_ARTIFACT, started, html.encode())
    store.save_run_artifact(run_id, DRIFT_ARTIFACT, started, drift_counts)
    return summary
