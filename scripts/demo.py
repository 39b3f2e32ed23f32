"""``python -m scripts.demo`` (``make demo``): the closed loop on this laptop, end to end.

1. trains and promotes version 1 into an isolated state folder (``var/demo/`` by default: model
   store, SQLite prediction log, MLflow store, reports, logs; the user's ``var/`` is untouched),
   starts ``bentoml serve`` on free ports (HTTP + gRPC) and a local webhook receiver;
2. sends realistic traffic (HTTP single and batch, gRPC single and batch) with feedback labels
   for part of it;
3. runs the monitor on that clean traffic: status ok;
4. sends drifted traffic (tempo +20 BPM, loudness x1.2 by default) with its true labels as
   feedback, runs the monitor with ``--auto-retrain``: alert naming the drifted features, the
   webhook arrives at the receiver;
5. the monitor's local retrain trigger trains version 2 on the seed data plus the labelled
   production rows; the gate decides; if promoted, the running service switches to it while a
   client loop keeps calling it (failed requests are counted);
6. prints a summary, writes it to ``<state>/summary.json`` and stops everything it started
   (also on Ctrl-C or an error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts import demo_steps as steps
from scripts.procs import ROOT, ServiceProcess
from scripts.webhook_receiver import WebhookReceiver

MARKER = ".reggaeton-demo-state"
FAST_TRAINING = ["cv.folds=3"]


def prepare_state(state: Path) -> None:
    """Empty the state folder (only if it is a demo folder or empty) and mark it."""
    if state.exists() and any(state.iterdir()):
        if not (state / MARKER).exists():
            raise SystemExit(
                f"demo: {state} is not empty and is not a demo state folder "
                f"(no {MARKER}); pick another --state-dir"
            )
        shutil.rmtree(state)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / MARKER).write_text("created by python -m scripts.demo; safe to delete\n")


def environment(state: Path) -> dict[str, str]:
    """Every path the parts read from the environment, inside the state folder."""
    return {
        "BENTOML_HOME": str(state / "bentoml"),
        "PREDICTION_STORE_URI": f"sqlite:///{state / 'predictions.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}",
        "PREDICTION_SPILL_DIR": str(state / "spill"),
        "MONITORING_REPORTS_DIR": str(state / "reports"),
        "MONITORING_STATE_DIR": str(state / "monitoring"),
        "RETRAIN_MODE": "local",
        # empty values are ignored by the monitor's loader, so the YAML written below wins
        "MONITORING_CONFIG": "",
        "MONITORING_AUTO_RETRAIN": "",
        "ALERT_EMAIL_TO": "",
        "MODEL_WATCH_INTERVAL": "1",
        "API_TOKEN": "",
        "MODEL_TAG": "",
        "BENTOML_DO_NOT_TRACK": "true",
        "WHYLOGS_NO_ANALYTICS": "True",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scripts.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / "var" / "demo",
        help="isolated state folder, emptied first (default var/demo)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help=f"smaller models for a quicker run ({' '.join(FAST_TRAINING)})",
    )
    p.add_argument(
        "--requests", type=int, default=1200, help="predictions per traffic phase (default 1200)"
    )
    p.add_argument(
        "--drift",
        action="append",
        default=None,
        metavar="FEATURE=+N|*F",
        help="drift injected in phase 4 (default: tempo=+20 and loudness=*1.2)",
    )
    p.add_argument(
        "--feedback",
        type=float,
        default=0.6,
        help="share of labelled predictions that get feedback (default 0.6)",
    )
    p.add_argument(
        "--gate-tolerance",
        type=float,
        default=0.03,
        help="F1/PR-AUC shortfall the retrained version may have against the serving "
        "one (the hold-out holds ~14 reggaeton songs: one song moves F1 by ~0.03;"
        " default 0.03)",
    )
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the six steps; returns the summary (also written to ``<state>/summary.json``)."""
    state = args.state_dir.resolve()
    prepare_state(state)
    env = environment(state)
    training = FAST_TRAINING if args.fast else []
    drifts = args.drift or ["tempo=+20", "loudness=*1.2"]
    summary: dict[str, Any] = {
        "state_dir": str(state),
        "fast": args.fast,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    t_start = time.monotonic()
    try:
        _steps(args, state, env, training, drifts, summary)
    except BaseException as exc:  # keep what happened so far, then let the caller report it
        summary["error"] = f"{type(exc).__name__}: {exc}"
        (state / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        raise
    summary["duration_s"] = round(time.monotonic() - t_start, 1)
    (state / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _steps(
    args: argparse.Namespace,
    state: Path,
    env: dict[str, str],
    training: list[str],
    drifts: list[str],
    summary: dict[str, Any],
) -> None:
    with contextlib.ExitStack() as stack:
        steps.say("1/6", "training version 1 (MLflow + model store in the state folder)")
        summary["v1"] = steps.train(env, state, training)
        receiver = stack.enter_context(WebhookReceiver())
        env["ALERT_WEBHOOK_URL"] = receiver.url
        tolerance = [
            f"gate.f1_tolerance={args.gate_tolerance}",
            f"gate.pr_auc_tolerance={args.gate_tolerance}",
        ]
        steps.write_monitoring_config(state, receiver.url, training + tolerance)
        service = ServiceProcess(env=env, log_path=state / "logs" / "service.log")
        stack.callback(service.stop)
        service.start()
        steps.say("1/6", f"service starting: HTTP {service.url}, gRPC {service.grpc_target}")
        service.wait_ready(300)

        steps.say("2/6", f"clean traffic: {args.requests} predictions over HTTP and gRPC")
        pool = steps.traffic_pool(training)
        summary["traffic_pool"] = {"songs": len(pool), "excluded": "the training hold-out"}
        clean = steps.traffic_phase(service, pool, args.requests, args.seed, [], args.feedback)
        summary["traffic_clean"] = clean["counts"]

        steps.say("3/6", "monitor on the clean window")
        summary["monitor_clean"] = steps.monitor(env, state, clean["window"], retrain=False)

        steps.say("4/6", f"drifted traffic ({', '.join(drifts)}) with true labels as feedback")
        drifted = steps.traffic_phase(
            service, pool, args.requests, args.seed + 1, drifts, args.feedback
        )
        summary["traffic_drifted"] = drifted["counts"]
        loop = steps.start_client_loop(service.url)
        stack.callback(loop.stop)
        steps.say("4/6", "monitor on the drifted window (alert -> webhook -> retrain)")
        summary["monitor_drifted"] = steps.monitor(env, state, drifted["window"], retrain=True)
        receiver.wait_for(1, timeout=15)
        summary["webhook"] = steps.webhook_summary(receiver)

        steps.say("5/6", "retraining outcome and model switch under a client loop")
        summary["retrain"] = steps.retrain_outcome(summary["monitor_drifted"])
        summary["switch"] = steps.await_switch(service.url, summary["retrain"], loop)
        summary["v2"] = steps.version_info(env, summary["retrain"].get("tag"))
        summary["gate"] = steps.gate_details(env, summary["retrain"].get("tag"))
    summary["stopped"] = not service.alive()
    summary["mlflow"] = steps.mlflow_summary(state)
    summary["reports"] = sorted(str(p) for p in (state / "reports").glob("*.html"))
    summary["failed_requests"] = (
        clean["counts"]["failed"] + drifted["counts"]["failed"] + summary["switch"]["failed"]
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: 0 when the loop closed as expected, 1 otherwise."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started with `&` by a script
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        summary = run(args)
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    except steps.DemoError as exc:
        print(f"\ndemo: failed: {exc}", file=sys.stderr)
        return 1
    print(steps.render_summary(summary))
    return 0 if steps.loop_closed(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
