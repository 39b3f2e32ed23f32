"""Alert delivery: a structured log line (always), a webhook (Slack-compatible JSON POST), email.

Delivery never raises: every failure is logged and counted in the returned outcome, so a
broken webhook or SMTP server cannot crash the monitoring job or hide its exit status.

Logging: a run's outcome (the ``monitoring_run`` line, ``possible_drift`` lines) goes to the
logger :data:`OUTCOME_LOGGER` at INFO (ok, insufficient data) or WARNING (warning, alert,
possible drift), never ERROR: a drift alert is a finding about the data, not an application
error, and log-based error alerting must not count it. Operators route that logger
separately; delivery problems (``alert_delivery_failed``) stay on ``monitoring.alerts``.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from monitoring.config import AlertConfig
from monitoring.status import SEVERITY
from monitoring.verdicts import possible_text

OUTCOME_LOGGER = "reggaeton.monitoring.outcome"
log = logging.getLogger("monitoring.alerts")
outcome_log = logging.getLogger(OUTCOME_LOGGER)
OUTCOME_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.WARNING}
ICONS = {
    "ok": ":white_check_mark:",
    "insufficient_data": ":grey_question:",
    "warning": ":warning:",
    "alert": ":rotating_light:",
}


def headline(summary: Mapping[str, Any]) -> str:
    """One-line human summary: status, model version, window and the reasons."""
    reasons = "; ".join(summary.get("reasons") or []) or "no problem found"
    possible = possible_text(summary.get("possible_drift"))
    if possible:
        reasons += f"; possible drift ({possible})"
    window = summary.get("window", {})
    return (
        f"[reggaeton monitor] {summary['status'].upper()} for {summary.get('model_version')}"
        f" ({window.get('rows', 0):,} records {window.get('since', '?')} -> "
        f"{window.get('until', '?')}): {reasons}"
    )


def alert_payload(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook body: Slack's ``text`` plus a machine-readable ``monitoring`` object."""
    status = summary["status"]
    text = f"{ICONS.get(status, '')} {headline(summary)}"
    if summary.get("report_html"):
        text += f"\nReport: {summary['report_html']}"
    return {
        "text": text,
        "monitoring": {
            **_identity(summary),
            "drifted_features": summary.get("drifted_features", []),
            "possible_drift": summary.get("possible_drift", {}),
            "report_html": summary.get("report_html"),
            "report_json": summary.get("report_json"),
            "window": summary.get("window", {}),
        },
    }


def send_webhook(url: str, payload: Mapping[str, Any], timeout: float) -> None:
    """POST ``payload`` as JSON; raises on a network error or a non-2xx answer."""
    resp = requests.post(url, json=payload, timeout=timeout)
    if not 200 <= resp.status_code < 300:
        raise RuntimeError(f"webhook answered HTTP {resp.status_code}: {resp.text[:200]}")


def send_email(config: AlertConfig, subject: str, body: str) -> None:
    """Send a plain-text email through the configured SMTP server; raises on failure."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = config.email_from
    msg["To"] = ", ".join(config.email_to)
    msg.set_content(body)
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password)
        smtp.send_message(msg)


def secrets_of(config: AlertConfig) -> list[str]:
    """Texts that must never reach a log line, a report or the store: the webhook URL (Slack
    and most webhooks carry their token in the path or the query) and the SMTP password."""
    out = []
    if config.webhook_url:
        parts = urlsplit(config.webhook_url)
        out += [config.webhook_url, parts.path, parts.query]
    out.append(config.smtp_password)
    return sorted({s for s in out if s and len(s) > 1}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and its URL-quoted form) replaced by ``<redacted>``."""
    for secret in secrets:
        for form in {secret, quote(secret), quote(secret, safe="")}:
            text = text.replace(form, "<redacted>")
    return text


def _failed(outcome: dict[str, Any], channel: str, error: str) -> None:
    """Count a channel that could not deliver (the run goes on)."""
    outcome["failures"] += 1
    outcome["errors"].append({"channel": channel, "error": error})


def _log_failure(channel: str, error: str, attempt: int | None = None) -> None:
    """The ``alert_delivery_failed`` line, on the ``monitoring.alerts`` logger."""
    line = {"event": "alert_delivery_failed", "channel": channel}
    line |= {"attempt": attempt} if attempt is not None else {}
    log.warning(json.dumps(line | {"error": error}))


def _attempt(
    channel: str, action: Any, retries: int, outcome: dict[str, Any], secrets: list[str]
) -> None:
    """Run ``action`` with retries; record success or failure, never raise."""
    for attempt in range(retries + 1):
        try:
            action()
            outcome["sent"].append(channel)
            return
        except Exception as exc:  # any delivery problem is counted, not raised
            err = redact(f"{type(exc).__name__}: {exc}", secrets)
            _log_failure(channel, err, attempt + 1)
            if attempt < retries:
                time.sleep(0.2 * (attempt + 1))
    _failed(outcome, channel, err)


def _identity(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that name a run in the outcome line and the webhook body."""
    return {
        "run_id": summary.get("run_id"),
        "status": summary["status"],
        "model_version": summary.get("model_version"),
        "reasons": summary.get("reasons", []),
    }


def _log_outcome(summary: Mapping[str, Any]) -> None:
    """The ``monitoring_run`` line: INFO for ok / insufficient data, WARNING for a problem."""
    line = {
        "event": "monitoring_run",
        **_identity(summary),
        "rows": summary.get("window", {}).get("rows"),
        "possible_drift": summary.get("possible_drift") or {},
        "report_html": summary.get("report_html"),
    }
    outcome_log.log(OUTCOME_LEVELS[SEVERITY[summary["status"]]], json.dumps(line, default=str))


def _possible_drift(
    summary: Mapping[str, Any], config: AlertConfig, outcome: dict[str, Any]
) -> dict[str, list[str]]:
    """Log the possible drift (unless ``alerts.possible_drift`` is off); the features, by kind."""
    possible = {k: list(v) for k, v in (summary.get("possible_drift") or {}).items() if v}
    if possible and config.possible_drift != "off":
        line = {
            "event": "possible_drift",
            "run_id": summary.get("run_id"),
            "model_version": summary.get("model_version"),
            "features": possible,
        }
        outcome_log.warning(json.dumps(line))
        outcome["possible_drift"] = "logged"
    if possible and config.possible_drift == "notify":
        outcome["possible_drift"] = "notified"
    return possible


def _email(
    summary: Mapping[str, Any],
    config: AlertConfig,
    outcome: dict[str, Any],
    secrets: list[str],
    possible: bool,
) -> None:
    """Send the alert email: the headline, then the webhook's ``monitoring`` object as JSON."""
    if not config.smtp_host:
        _failed(outcome, "email", "alerts.smtp_host not set")
        _log_failure("email", "alerts.smtp_host not set")
        return
    details = json.dumps(alert_payload(summary)["monitoring"], indent=2, default=str)
    body = headline(summary) + "\n\n" + details
    what = summary["status"].upper() + (" + POSSIBLE DRIFT" if possible else "")
    subject = f"[reggaeton] monitoring {what} ({summary.get('model_version')})"
    _attempt("email", lambda: send_email(config, subject, body), config.retries, outcome, secrets)


def deliver(summary: Mapping[str, Any], config: AlertConfig) -> dict[str, Any]:
    """Log the summary and, when the status is bad enough, notify the configured channels.

    Args:
        summary: The run summary (``status``, ``reasons``, ``window``, ``report_html``, ...).
        config: Channels and minimum status.

    Returns:
        ``{"logged": True, "sent": [channels], "failures": int, "errors": [...],
        "skipped": reason | None, "possible_drift": None | "logged" | "notified"}``.
    """
    _log_outcome(summary)
    outcome: dict[str, Any] = {
        "logged": True,
        "sent": [],
        "failures": 0,
        "errors": [],
        "skipped": None,
        "possible_drift": None,
    }
    possible = _possible_drift(summary, config, outcome)
    status = summary["status"]
    if SEVERITY[status] < SEVERITY[config.min_status] and outcome["possible_drift"] != "notified":
        outcome["skipped"] = f"status {status} below alerts.min_status {config.min_status}"
        return outcome
    secrets = secrets_of(config)
    if config.webhook_url:
        payload = alert_payload(summary)
        _attempt(
            "webhook",
            lambda: send_webhook(config.webhook_url, payload, config.timeout_s),
            config.retries,
            outcome,
            secrets,
        )
    if config.email_to:
        _email(summary, config, outcome, secrets, bool(possible))
    return outcome
