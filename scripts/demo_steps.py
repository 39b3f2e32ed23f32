"""The steps of ``python -m scripts.demo``; each calls a part through its real entry point."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import yaml

from scripts import demo_traffic as traffic
from scripts.procs import ROOT, ServiceProcess, run_module

EXAMPLE_SONG = {
    "popularity": 68,
    "danceability": 0.826,
    "energy": 0.704,
    "key": 9,
    "loudness": -7.527,
    "mode": 1,
    "speechiness": 0.117,
    "acousticness": 0.189,
    "instrumentalness": 4.8e-05,
    "liveness": 0.0617,
    "valence": 0.741,
    "tempo": 94.013,
    "duration": 205000,
    "time_signature": 4,
    "id_new": 1,
}
"""The original README's example song (the body of its curl command): the demo's client
sends it, and the end-to-end and container tests post it."""
EXIT_STATUS = {0: "ok", 1: "warning", 2: "alert", 3: "insufficient_data"}


class DemoError(RuntimeError):
    """A step did not do what the loop needs (the message says which and why)."""


def say(step: str, text: str) -> None:
    """One progress line."""
    print(f"[demo {datetime.now(UTC):%H:%M:%S}] {step} {text}", flush=True)


def _registry(env: dict[str, str]) -> Any:
    from reggaeton.registry import Registry

    return Registry(env["BENTOML_HOME"])


def version_info(env: dict[str, str], tag: str | None) -> dict[str, Any] | None:
    """Tag, hold-out metrics and threshold of a stored version."""
    if not tag:
        return None
    version = _registry(env).get(tag)
    metrics = version.metadata.get("metrics") or {}
    return {
        "tag": version.tag,
        "threshold": version.threshold,
        "holdout": {
            k: round(float(metrics[k]), 4)
            for k in ("f1", "pr_auc", "precision", "recall")
            if k in metrics
        },
        "rows": version.metadata.get("rows"),
    }


def train(env: dict[str, str], state: Path, overrides: list[str]) -> dict[str, Any]:
    """``python -m training.train`` into the demo's store; returns the promoted version."""
    args = [a for o in overrides for a in ("--set", o)]
    result = run_module("training.train", args, env, state / "logs" / "training.log", 1800)
    if result.returncode != 0:
        raise DemoError(f"training failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    tag = _registry(env).promotions.current()
    if not tag:
        raise DemoError("training finished but promoted nothing")
    info = version_info(env, tag)
    say("1/6", f"version 1 = {tag} (hold-out {info['holdout']})")
    return info


def write_monitoring_config(state: Path, webhook_url: str, overrides: list[str]) -> Path:
    """The monitor's YAML config: reports/state in the state folder, webhook, local retrain."""
    config = {
        "reports_dir": str(state / "reports"),
        "state_dir": str(state / "monitoring"),
        "alerts": {"webhook_url": webhook_url},
        "retrain": {
            "mode": "local",
            "include_feedback": True,
            "training_overrides": list(overrides),
        },
    }
    path = state / "monitoring.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def traffic_pool(overrides: list[str]) -> Any:
    """The songs production traffic is drawn from: the labelled seed songs minus the training
    hold-out (computed with training's own config and split), so that feedback never leaks the
    hold-out into version 2 and the gate's hold-out comparison stays honest."""
    import pandas as pd

    from monitoring.simulate import load_songs
    from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
    from training.config import load_config
    from training.data import load_labelled, split_holdout

    config = load_config(overrides=[o for o in overrides if not o.startswith("gate.")])
    d = config.data
    labelled, _ = load_labelled(ROOT / d.reggaeton_csv, ROOT / d.other_csv, list(MODEL_FEATURES))
    _, holdout = split_holdout(labelled, config.split.test_size, config.seed)
    songs = load_songs(ROOT / "data")
    songs = songs[songs[LABEL_COLUMN].notna()]
    keys = list(MODEL_FEATURES)
    marked = songs.merge(holdout[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    pool = marked[marked["_merge"] == "left_only"].drop(columns="_merge")
    return pd.DataFrame(pool).reset_index(drop=True)


def traffic_phase(
    service: ServiceProcess, pool: Any, n: int, seed: int, drifts: list[str], feedback: float
) -> dict[str, Any]:
    """Send ``n`` songs (1/4 HTTP single, 1/4 HTTP batch, 1/2 gRPC) plus feedback."""
    from monitoring.simulate import build_traffic, parse_drift

    frame = build_traffic(pool, n, seed, [parse_drift(d) for d in drifts])
    q = n // 4
    since = datetime.now(UTC)
    sent = traffic.send_http_single(service.url, frame.iloc[:q], concurrency=1)  # in order
    sent += traffic.send_http_batches(service.url, frame.iloc[q : 2 * q])
    sent += traffic.send_grpc(service.grpc_target, frame.iloc[2 * q :])
    until = datetime.now(UTC)
    labelled = sum(1 for s in sent if s.label == s.label)
    given = traffic.send_feedback(service.url, sent, feedback, seed, concurrency=1)
    counts = {
        "sent": n,
        "answered": len(sent),
        "failed": n - len(sent),
        "http": sum(s.source == "http" for s in sent),
        "http_batch": sum(s.source == "batch" for s in sent),
        "grpc": sum(s.source == "grpc" for s in sent),
        "labelled": labelled,
        "feedback": given,
        "versions": sorted({s.model_version for s in sent}),
        "drift": drifts,
    }
    say(
        "",
        f"  {counts['answered']} answered ({counts['http']} HTTP, {counts['http_batch']} "
        f"HTTP batch, {counts['grpc']} gRPC), {given} feedback labels",
    )
    return {"counts": counts, "window": (since, until)}


def monitor(
    env: dict[str, str], state: Path, window: tuple[datetime, datetime], retrain: bool
) -> dict[str, Any]:
    """``python -m monitoring.job`` over a window; returns the essentials of its JSON summary."""
    args = [
        "--config",
        str(state / "monitoring.yaml"),
        "--since",
        window[0].isoformat(),
        "--until",
        window[1].isoformat(),
        "--quiet",
    ] + (["--auto-retrain"] if retrain else [])
    result = run_module("monitoring.job", args, env, state / "logs" / "monitoring.log", 1800)
    if result.returncode not in EXIT_STATUS:
        raise DemoError(
            f"monitoring job failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )
    path = next(
        (
            line.split(":", 1)[1].strip()
            for line in result.stdout.splitlines()
            if line.startswith("summary:")
        ),
        None,
    )
    if not path:
        raise DemoError(f"monitoring job printed no summary path:\n{result.stdout[-1000:]}")
    full = json.loads(Path(path).read_text())
    out = {
        "status": full["status"],
        "exit_code": result.returncode,
        "reasons": full.get("reasons", []),
        "rows": full["window"]["rows"],
        "drifted_features": full.get("drifted_features", []),
        "performance_status": full.get("performance_status"),
        "performance": _rounded(full.get("performance_metrics")),
        "n_labelled": full.get("n_labelled"),
        "alerts_sent": full["alerts"]["sent"],
        "report_html": full["report_html"],
        "report_json": full["report_json"],
        "retrain": full.get("retrain"),
    }
    say(
        "",
        f"  status {out['status']} (exit {result.returncode}); drifted: "
        f"{', '.join(out['drifted_features']) or 'none'}; live performance "
        f"{out['performance']} on {out['n_labelled']} labelled",
    )
    for reason in out["reasons"]:
        say("", f"  - {reason}")
    return out


def _rounded(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return metrics
    return {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in metrics.items()
        if not isinstance(v, list | dict)
    }


def webhook_summary(receiver: Any) -> dict[str, Any]:
    """What the local receiver got."""
    bodies = receiver.bodies()
    first = bodies[0] if bodies else None
    text = first.get("text") if isinstance(first, dict) else None
    return {"received": len(bodies), "url": receiver.url, "text": text}


def start_client_loop(url: str) -> traffic.ClientLoop:
    """Requests in a loop while the monitor retrains and the service may switch."""
    return traffic.ClientLoop(url, EXAMPLE_SONG).start()


def retrain_outcome(monitor_summary: dict[str, Any]) -> dict[str, Any]:
    """The retrain trigger's result as the monitor recorded it."""
    trig = monitor_summary.get("retrain") or {}
    result = trig.get("result") or {}
    out = {
        "triggered": bool(trig.get("triggered")),
        "condition": trig.get("condition"),
        "tag": result.get("tag"),
        "promoted": bool(result.get("promoted")),
        "gate_reason": result.get("reason"),
        "error": trig.get("error"),
    }
    say(
        "",
        f"  retrain triggered={out['triggered']} -> {out['tag']}: "
        f"{'PROMOTED' if out['promoted'] else 'not promoted'} ({out['gate_reason']})",
    )
    return out


def await_switch(
    url: str, retrain: dict[str, Any], loop: traffic.ClientLoop, timeout: float = 120.0
) -> dict[str, Any]:
    """Wait until the service answers with the new version (if promoted), then stop the loop."""
    switched = False
    if retrain.get("promoted") and retrain.get("tag"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not switched:
            answers = [
                requests.post(f"{url}/predict-song", json={"data": EXAMPLE_SONG}, timeout=10)
                .json()
                .get("model_version")
                for _ in range(10)
            ]
            switched = all(a == retrain["tag"] for a in answers)
            time.sleep(0.5)
        time.sleep(1.0)  # let the loop make a few calls to the new version too
    stats = loop.stop()
    stats["switched"] = switched
    say(
        "",
        f"  client loop: {stats['requests']} requests, {stats['failed']} failed, "
        f"versions {stats['versions']}; service switched: {switched}",
    )
    return stats


def mlflow_summary(state: Path) -> dict[str, Any]:
    """Where the MLflow runs are, and how many."""
    db = state / "mlflow.db"
    runs = None
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        except sqlite3.Error:
            runs = None
        finally:
            conn.close()
    uri = f"sqlite:///{db}"
    return {"tracking_uri": uri, "runs": runs, "ui": f"make mlflow-ui MLFLOW_TRACKING_URI={uri}"}


def gate_details(env: dict[str, str], tag: str | None) -> dict[str, Any]:
    """The numbers the gate decided on (from the promotion record's history)."""
    if not tag:
        return {}
    for entry in reversed(_registry(env).promotions.history()):
        if entry.get("tag") == tag and entry.get("action") in ("promote", "reject"):
            details = entry.get("details") or {}
            return {
                "action": entry["action"],
                "reason": entry.get("reason"),
                **{
                    k: _rounded(details.get(k))
                    for k in (
                        "candidate_holdout",
                        "current_holdout",
                        "candidate_production",
                        "current_production",
                    )
                },
                "tolerances": details.get("tolerances"),
            }
    return {}


def _short(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    return " ".join(
        f"{k} {metrics[k]:.3f}"
        for k in ("f1", "pr_auc", "precision", "recall")
        if isinstance(metrics.get(k), int | float)
    )


def loop_closed(summary: dict[str, Any]) -> bool:
    """True when every step did what the loop promises."""
    gated = summary["retrain"]["triggered"] and summary["retrain"]["tag"]
    switched = summary["switch"]["switched"] or not summary["retrain"]["promoted"]
    return (
        summary["monitor_clean"]["status"] == "ok"
        and summary["monitor_drifted"]["status"] == "alert"
        and summary["webhook"]["received"] >= 1
        and bool(gated)
        and switched
        and summary["failed_requests"] == 0
        and summary["stopped"]
    )


def render_summary(s: dict[str, Any]) -> str:
    """The short human summary printed at the end."""
    v1, v2, r = s["v1"], s.get("v2"), s["retrain"]
    mc, md = s["monitor_clean"], s["monitor_drifted"]
    lines = [
        "",
        "=" * 78,
        "DEMO SUMMARY",
        "=" * 78,
        f"version 1 : {v1['tag']}  hold-out {v1['holdout']}",
        f"version 2 : {v2['tag'] if v2 else '-'}  hold-out {v2['holdout'] if v2 else '-'}",
        f"gate      : {'PROMOTED' if r['promoted'] else 'NOT promoted'} - {r['gate_reason']}",
        f"on prod.  : v1 {_short(s.get('gate', {}).get('current_production'))}  "
        f"v2 {_short(s.get('gate', {}).get('candidate_production'))}",
        f"clean     : monitor {mc['status']}, drifted features {mc['drifted_features']}, "
        f"live {_short(mc['performance'])} on {mc['n_labelled']} labelled",
        f"drifted   : monitor {md['status']}, drifted features {md['drifted_features']}, "
        f"live {_short(md['performance'])} on {md['n_labelled']} labelled "
        f"(performance: {md['performance_status']})",
        f"reasons   : {'; '.join(md['reasons'])}",
        f"alert     : webhook received {s['webhook']['received']} at {s['webhook']['url']}",
        f"switch    : service now serves v2: {s['switch']['switched']}; client loop "
        f"{s['switch']['requests']} requests, versions {s['switch']['versions']}",
        f"failed    : {s['failed_requests']} failed requests in the whole demo",
        f"reports   : {s['state_dir']}/reports/ ({len(s['reports'])} HTML reports)",
        f"mlflow    : {s['mlflow']['runs']} runs in {s['mlflow']['tracking_uri']}",
        f"            ({s['mlflow']['ui']})",
        f"summary   : {s['state_dir']}/summary.json  ({s['duration_s']} s)",
        "=" * 78,
    ]
    return "\n".join(lines)
