"""One monitoring run: window -> scan -> assessment -> profile, reports, store, alerts, retrain.

:func:`run` reads as the list of those steps; each step is a small function below it, so a
change to one (say, what the store keeps) is made in one place without reading the others.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from monitoring import alerts, report, trigger, verdicts
from monitoring.assess import assess_version
from monitoring.config import MonitoringConfig
from monitoring.history import PROFILE_ARTIFACT, REPORT_ARTIFACT, new_run_id
from monitoring.longwindow import DRIFT_ARTIFACT, encode_counts, long_windows, save_counts
from monitoring.reference import Reference, reference_loader
from monitoring.status import SEVERITY, is_problem
from monitoring.window import WindowScan, add_late_feedback, resolve_window, scan_window
from reggaeton import profiles
from reggaeton.records.base import RecordStore
from reggaeton.registry import ModelLoadError, ModelVersion, Registry
from reggaeton.timeutil import now_iso, parse_utc, utcnow

FEATURE_COLUMNS_FOR_WHYLOGS = ("probability",)


@dataclass
class _Saved:
    """What a run keeps of its window besides the summary.

    Attributes:
        profile_path: The whylogs profile under ``<state_dir>/profiles`` (None: no profile).
        profile_bytes: That profile, serialised, for the store.
        drift_counts: The encoded drift counts the next runs' long windows add up.
    """

    profile_path: Path | None
    profile_bytes: bytes | None
    drift_counts: bytes


def run(
    config: MonitoringConfig,
    store: RecordStore,
    registry: Registry,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    window: timedelta | None = None,
    progress: TextIO | None = sys.stderr,
    retrainer: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
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
    started = now or utcnow()
    run_id = new_run_id(started)
    serving, load = _serving_version(config, registry)
    previous = None if since or window else _previous_until(store)
    start, end = resolve_window(since, until, window, previous, config.max_window_hours, now)
    scan = _scan(config, store, load, start, end, progress)
    t_scan = time.perf_counter()
    main, others = _assess(config, store, scan, serving.tag)
    saved = _save_state(Path(config.state_dir), run_id, scan)
    summary = _summary(config, run_id, started, serving.tag, main, others, scan, load, saved)
    summary["alerts"] = alerts.deliver(summary, config.alerts)
    summary["retrain"] = _retrain(config, summary, retrainer)
    html = _write_html(summary, store, scan.versions.get(serving.tag))
    summary["timings_s"] = {
        "scan": round(t_scan - t0, 3),
        "total": round(time.perf_counter() - t0, 3),
    }
    summary["finished_at"] = now_iso()
    _store_run(store, summary, started, saved, html)
    return summary


def _serving_version(
    config: MonitoringConfig, registry: Registry
) -> tuple[ModelVersion, Callable[[str], Reference | None]]:
    """The version the service serves and the reference loader, checked to read its reference.

    Raises:
        ModelLoadError: when no serving version exists or its reference is unreadable.
    """
    serving = registry.serving_version(config.model_tag)
    load = reference_loader(registry)
    if load(serving.tag) is None:
        raise ModelLoadError(f"{serving.tag}: reference/sample.csv missing or unreadable")
    return serving, load


def _previous_until(store: RecordStore) -> datetime | None:
    """Where the last stored run's window ended (this run starts there), or None."""
    runs = store.monitoring_runs(limit=1)
    if not runs:
        return None
    until = (runs[0].get("window") or {}).get("until")
    return parse_utc(until) if until else None


def _scan(
    config: MonitoringConfig,
    store: RecordStore,
    load: Callable[[str], Reference | None],
    start: datetime,
    end: datetime,
    progress: TextIO | None,
) -> WindowScan:
    """Read the window once, then add the feedback that arrived in it for earlier predictions."""
    scan = scan_window(store, start, end, load, config.chunk_size, progress)
    late = add_late_feedback(
        scan, store, config.performance.late_feedback_days, load, config.chunk_size
    )
    if progress and late:
        print(
            f"monitor: {late:,} earlier predictions got their feedback in this window",
            file=progress,
            flush=True,
        )
    return scan


def _assess(
    config: MonitoringConfig, store: RecordStore, scan: WindowScan, serving_tag: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Assess every version in the window: the serving one in full, the others in brief.

    Each version's long window (this run's drift counts plus the previous runs', see
    :mod:`monitoring.longwindow`) joins its drift tests.

    Returns:
        ``(serving assessment, {other tag: rows, status, reasons, drifted_features})``.
    """
    longs = long_windows(store, scan, config.drift.long_window_runs)
    assessed = {tag: assess_version(v, config, longs.get(tag)) for tag, v in scan.versions.items()}
    main = assessed.get(serving_tag) or {
        "version": serving_tag,
        "rows": 0,
        "status": "insufficient_data",
        "reasons": [f"insufficient data: no record of {serving_tag} in the window"],
    }
    others = {
        tag: {k: a.get(k) for k in ("rows", "status", "reasons")}
        | {"drifted_features": (a.get("data_drift") or {}).get("drifted", [])}
        for tag, a in assessed.items()
        if tag != serving_tag
    }
    return main, others


def _overall_status(
    main: dict[str, Any], others: dict[str, dict[str, Any]], serving_tag: str
) -> tuple[str, str, list[str]]:
    """The run's status, the version it comes from, and the reasons.

    The status is the worst over every version with records in the window: pods can serve
    another version than the promotion record names (a pinned MODEL_TAG, a ``kubectl rollout
    undo``), and their traffic must not go unwatched. On a tie the serving version names it.
    """
    status, status_version = main["status"], serving_tag
    reasons = list(main["reasons"])
    for tag, other in others.items():
        if is_problem(other["status"]):
            drift = other["drifted_features"]
            reasons.append(
                f"other version {tag} ({other['rows']} records): {other['status']}"
                + (f", drift in {', '.join(drift)}" if drift else "")
            )
        if SEVERITY[other["status"]] > SEVERITY[status]:
            status, status_version = other["status"], tag
    return status, status_version, reasons


def _save_state(state: Path, run_id: str, scan: WindowScan) -> _Saved:
    """Write the window's whylogs profile and drift counts under the state folder."""
    profile_path = profile_bytes = None
    if scan.profile is not None:
        (state / "profiles").mkdir(parents=True, exist_ok=True)
        profile_path = state / "profiles" / f"{run_id}.bin"
        profile_bytes = profiles.serialize(scan.profile)
        profile_path.write_bytes(profile_bytes)
    drift_counts = encode_counts(scan)
    save_counts(state, run_id, drift_counts)
    return _Saved(profile_path, profile_bytes, drift_counts)


def _summary(
    config: MonitoringConfig,
    run_id: str,
    started: datetime,
    serving_tag: str,
    main: dict[str, Any],
    others: dict[str, dict[str, Any]],
    scan: WindowScan,
    load: Callable[[str], Reference | None],
    saved: _Saved,
) -> dict[str, Any]:
    """The run's summary: status and reasons, window, sections, cross-check and report paths."""
    status, status_version, reasons = _overall_status(main, others, serving_tag)
    ref = load(serving_tag)
    # categorical codes are left out: whylogs would run KS on them (chi-square is the test)
    wl_cols = ref.numeric + list(FEATURE_COLUMNS_FOR_WHYLOGS)
    reports = Path(config.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    data_drift = main.get("data_drift") or {}
    perf = main.get("performance") or {}
    return {
        "run_id": run_id,
        "started_at": started.isoformat(),
        "status": status,
        "status_version": status_version,
        "model_version": serving_tag,
        "reasons": reasons,
        "notes": main.get("notes", []),
        "window": {
            "since": scan.since.isoformat(),
            "until": scan.until.isoformat(),
            "rows": scan.rows,
            "chunks": scan.chunks,
        },
        "drifted_features": data_drift.get("drifted", []),
        "possible_drift": verdicts.possible_drift(main),
        "drift_status": data_drift.get("status", "insufficient_data"),
        "long_window": _long_summary(data_drift.get("long_window"), config.drift.long_window_runs),
        "prediction_drift_status": (main.get("prediction_drift") or {}).get("status"),
        "performance_status": perf.get("status", "insufficient_data"),
        "performance_metrics": perf.get("metrics"),
        "n_labelled": perf.get("n_labelled", 0),
        "serving": main,
        "other_versions": others,
        "whylogs_drift": _whylogs_drift(scan.profile, ref.profile, wl_cols),
        "profile_path": str(saved.profile_path) if saved.profile_path else None,
        "report_json": str((reports / f"{run_id}.json").absolute()),
        "report_html": str((reports / f"{run_id}.html").absolute()),
    }


def _long_summary(section: dict[str, Any] | None, runs: int) -> dict[str, Any]:
    """The long window's top-level summary: its extent and verdicts, or why it was not tested."""
    if runs <= 1:
        return {"enabled": False, "drifted": [], "possible_drift": []}
    if not section:
        return {
            "enabled": True,
            "runs": 1,
            "drifted": [],
            "possible_drift": [],
            "note": "not tested: no earlier non-overlapping run with stored drift counts",
        }
    keys = ("runs", "since", "until", "rows", "drifted", "possible_drift", "skipped")
    return {"enabled": True} | {k: section[k] for k in keys}


def _whylogs_drift(scan_profile: Any, ref_profile: Any, columns: list[str]) -> dict[str, Any]:
    """whylogs' own drift verdicts, an informative cross-check that never fails the run."""
    if scan_profile is None or ref_profile is None:
        return {}
    try:
        return verdicts.cross_check(profiles.drift_scores(scan_profile, ref_profile, columns))
    except Exception as exc:  # informative cross-check only: never fails the run
        error = f"{type(exc).__name__}: {exc}"
        return {"error": {"algorithm": None, "statistic": None, "pvalue": None, "error": error}}


def _retrain(
    config: MonitoringConfig, summary: dict[str, Any], retrainer: Any
) -> dict[str, Any] | None:
    """Trigger retraining when the run alerts and retraining is on; the trigger's outcome."""
    if not (config.retrain.enabled and summary["status"] == "alert"):
        return None
    retrainer = retrainer or make_retrainer(config)
    return retrainer.trigger(trigger.condition_of(summary))


def make_retrainer(
    config: MonitoringConfig, train: Callable[[], Any] | None = None
) -> trigger.LocalTrigger | Any:
    """The configured trigger (local lock-guarded training, or a Kubernetes Job)."""
    mode = config.retrain.mode
    if mode == "auto":
        mode = "kubernetes" if os.environ.get("KUBERNETES_SERVICE_HOST") else "local"
    cooldown = config.retrain.cooldown_hours
    if mode == "kubernetes":
        return trigger.KubernetesTrigger(
            config.retrain.namespace, config.retrain.cronjob, cooldown_hours=cooldown
        )
    if train is None:
        from monitoring.local_training import training_runner

        train = training_runner(config)
    return trigger.LocalTrigger(config.state_dir, train, cooldown_hours=cooldown)


def _write_html(summary: dict[str, Any], store: RecordStore, serving_scan: Any) -> str:
    """Render the HTML report (with the last stored runs as history) to ``report_html``."""
    history = [r for r in store.monitoring_runs(limit=30) if r.get("run_id") != summary["run_id"]]
    summary["finished_at"] = now_iso()
    html = report.render(summary, serving_scan, history)
    Path(summary["report_html"]).write_text(html)
    return html


def _store_run(
    store: RecordStore, summary: dict[str, Any], started: datetime, saved: _Saved, html: str
) -> None:
    """Write the summary to ``report_json`` and the store, with the run's artifacts.

    The profile and the HTML go to the store too: a CronJob's pod (and its files) is gone
    after the run; :mod:`monitoring.history` merges stored profiles over weeks from there.
    """
    run_id = summary["run_id"]
    artifacts = {
        PROFILE_ARTIFACT: saved.profile_bytes,
        REPORT_ARTIFACT: html.encode(),
        DRIFT_ARTIFACT: saved.drift_counts,
    }
    artifacts = {name: data for name, data in artifacts.items() if data is not None}
    summary["stored_artifacts"] = list(artifacts)
    Path(summary["report_json"]).write_text(json.dumps(summary, indent=2, default=str))
    store.save_monitoring_run(json.loads(json.dumps(summary, default=str)))
    for name, data in artifacts.items():
        store.save_run_artifact(run_id, name, started, data)
