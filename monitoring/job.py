"""``python -m monitoring.job``: run the monitor once over the prediction log.

Exit codes (what Kubernetes shows for the CronJob's pods):

====  ==================================================================================
0     ok: no drift, performance within tolerance (or not enough labels to judge it)
1     warning: prediction drift, a moderate performance drop or a data-quality problem
2     alert: data drift in at least one feature, or a large performance drop
3     insufficient data: too few records in the window to judge anything
4     error: bad configuration, unreachable store, no serving model or reference
====  ==================================================================================

Alert-delivery failures do not change the exit code (they are logged and counted in the
summary). ``--exit-codes`` chooses which statuses leave the table's code (see
:func:`exit_code`): ``statuses`` (default) all of them; ``alerts`` only an alert (2), the other
statuses exit 0; ``zero`` none (``--exit-zero`` is its short form): every status exits 0 and only
an error exits non-zero. Under Kubernetes a non-zero exit fails the Job, and the standard
KubeJobFailed alert fires for it: the chart's ``monitor.exitCodes`` picks the policy.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from datetime import datetime, timedelta
from typing import Any, NoReturn

from monitoring.config import CORRECTIONS, RETRAIN_MODES, MonitoringConfig, load_config
from monitoring.verdicts import possible_text
from reggaeton.timeutil import parse_utc

EXIT_CODES = {"ok": 0, "warning": 1, "alert": 2, "insufficient_data": 3}
EXIT_ERROR = 4
EXIT_POLICIES = ("statuses", "alerts", "zero")
"""Values of ``--exit-codes`` (and of the chart's ``monitor.exitCodes``)."""


def exit_code(status: str, policy: str = "statuses") -> int:
    """The exit code of a finished run whose status is ``status``, under an exit-code policy.

    Args:
        status: A key of :data:`EXIT_CODES`.
        policy: ``statuses``: the status's own code (1 warning, 2 alert, 3 insufficient data);
            ``alerts``: 2 for an alert, 0 for every other status; ``zero``: always 0. Errors
            never reach this function: they exit :data:`EXIT_ERROR` under every policy.
    """
    if policy not in EXIT_POLICIES:
        raise ValueError(f"exit-code policy must be one of {EXIT_POLICIES}, got {policy!r}")
    code = EXIT_CODES[status]
    if policy == "zero" or (policy == "alerts" and status != "alert"):
        return 0
    return code


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w`` -> timedelta (raises ValueError naming the flag)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"--window: expected a duration like 30m, 24h or 7d, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_time(text: str) -> datetime:
    """ISO-8601 date or datetime (naive = UTC), as aware UTC."""
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise ValueError(f"expected an ISO-8601 time like 2026-01-31T12:00, got {text!r}") from exc


def _arg(parse):  # noqa: ANN001, ANN202 - small adapter for argparse
    def convert(text: str):  # noqa: ANN202
        try:
            return parse(text)
        except ValueError as exc:  # argparse shows ArgumentTypeError messages verbatim
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = parse.__name__
    return convert


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments, which would read as "alert": exit 4 instead."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m monitoring.job",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML monitoring config (or MONITORING_CONFIG)")
    p.add_argument("--store", help="prediction log URI (default PREDICTION_STORE_URI)")
    p.add_argument("--home", help="model store home (default BENTOML_HOME)")
    p.add_argument("--model-tag", help="compare with this version (default: promoted)")
    p.add_argument("--since", type=_arg(parse_time), help="window start (ISO-8601, UTC)")
    p.add_argument("--until", type=_arg(parse_time), help="window end (default: now)")
    p.add_argument("--window", type=_arg(parse_duration), help="window length, e.g. 24h or 7d")
    p.add_argument("--reports-dir", help="where the JSON and HTML reports go")
    p.add_argument("--threshold", type=float, help="drift significance level (0.045)")
    p.add_argument("--correction", choices=CORRECTIONS, help="multiple-testing correction")
    p.add_argument("--webhook-url", help="alert webhook (Slack-compatible)")
    p.add_argument("--email-to", help="comma-separated alert recipients")
    p.add_argument("--auto-retrain", action="store_true", help="retrain on alert")
    p.add_argument("--retrain-mode", choices=RETRAIN_MODES, help="local or kubernetes")
    p.add_argument(
        "--exit-codes",
        choices=EXIT_POLICIES,
        default="statuses",
        help="which statuses exit non-zero: statuses (1/2/3), alerts (only 2), zero",
    )
    p.add_argument("--exit-zero", action="store_true", help="same as --exit-codes zero")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("whylogs").setLevel(logging.WARNING)
    try:
        summary = _monitor(_config(args), args)
    except Exception as exc:  # every failure becomes one clear line and exit code 4
        print(f"monitor: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _print_outcome(summary)
    return exit_code(summary["status"], "zero" if args.exit_zero else args.exit_codes)


def _config(args: argparse.Namespace) -> MonitoringConfig:
    """The YAML/env configuration with the command-line flags laid over it, validated."""
    config = load_config(args.config)
    for attr, value in (
        ("store_uri", args.store),
        ("bentoml_home", args.home),
        ("model_tag", args.model_tag),
        ("reports_dir", args.reports_dir),
    ):
        if value:
            setattr(config, attr, value)
    if args.threshold is not None:
        config.drift.threshold = args.threshold
    if args.correction:
        config.drift.correction = args.correction
    if args.webhook_url:
        config.alerts.webhook_url = args.webhook_url
    if args.email_to:
        config.alerts.email_to = tuple(a.strip() for a in args.email_to.split(","))
    if args.auto_retrain:
        config.retrain.enabled = True
    if args.retrain_mode:
        config.retrain.mode = args.retrain_mode
    config.validate()
    return config


def _monitor(config: MonitoringConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Open the model store and the prediction log, run the monitor once, close the log."""
    from monitoring.monitor import run
    from reggaeton.records.factory import open_store
    from reggaeton.registry import Registry, home_from_env

    registry = Registry(config.bentoml_home or home_from_env())
    store = open_store(config.store_uri)
    try:
        return run(
            config,
            store,
            registry,
            since=args.since,
            until=args.until,
            window=args.window,
            progress=None if args.quiet else sys.stderr,
        )
    finally:
        store.close()


def _print_outcome(summary: dict[str, Any]) -> None:
    """The status line (with reasons and possible drift), then where the reports are."""
    possible = possible_text(summary.get("possible_drift"))
    print(
        f"status: {summary['status']}"
        + (f" ({'; '.join(summary['reasons'])})" if summary["reasons"] else "")
        + (f" [possible drift: {possible}]" if possible else "")
    )
    if summary["alerts"]["failures"]:
        print(f"alert delivery failures: {summary['alerts']['failures']}")
    if summary.get("retrain"):
        print(f"retraining: {summary['retrain']}")
    print(f"summary: {summary['report_json']}")
    print(f"report: {summary['report_html']}")


if __name__ == "__main__":
    sys.exit(main())
