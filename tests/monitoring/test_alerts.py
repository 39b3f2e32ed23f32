"""Alerts reach a real local HTTP server and a real local SMTP server; failures are counted."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from monitoring.alerts import OUTCOME_LOGGER, deliver
from monitoring.config import AlertConfig
from monitoring.monitor import run

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def webhook():
    """A real HTTP server on a free loopback port collecting JSON bodies."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": json.loads(body), "type": self.headers["Content-Type"]})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp():
    """A real aiosmtpd server on a free loopback port collecting messages."""
    from aiosmtpd.controller import Controller

    messages: list[dict] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
            messages.append(
                {"to": envelope.rcpt_tos, "msg": message_from_bytes(envelope.original_content)}
            )
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, messages
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_alert_run_notifies_webhook_and_email(make_log, registry, config, webhook, smtp):
    url, received = webhook
    port, messages = smtp
    config.alerts = AlertConfig(
        webhook_url=url, email_to=("oncall@example.test",), smtp_host="127.0.0.1", smtp_port=port
    )
    store, _ = make_log(n=1000, seed=21, drift=("tempo=+20",))
    summary = run(
        config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None
    )
    assert summary["status"] == "alert"
    assert summary["alerts"]["sent"] == ["webhook", "email"]
    assert summary["alerts"]["failures"] == 0
    body = received[0]["body"]
    assert received[0]["type"] == "application/json"
    assert "ALERT" in body["text"] and "tempo" in body["text"]  # Slack shows `text`
    assert body["monitoring"]["drifted_features"] == ["tempo"]
    assert body["monitoring"]["report_html"] == summary["report_html"]
    assert messages[0]["to"] == ["oncall@example.test"]
    assert "ALERT" in messages[0]["msg"]["Subject"]
    assert "data drift in tempo" in messages[0]["msg"].get_payload()


def test_delivery_failures_are_counted_not_raised(caplog):
    dead = _free_port()  # nothing listens there
    cfg = AlertConfig(
        webhook_url=f"http://127.0.0.1:{dead}/hook",
        email_to=("a@b.test",),
        smtp_host="127.0.0.1",
        smtp_port=dead,
        timeout_s=2,
        retries=1,
    )
    summary = {
        "status": "alert",
        "run_id": "r1",
        "model_version": "m:1",
        "reasons": ["data drift in tempo"],
        "window": {"rows": 10},
    }
    outcome = deliver(summary, cfg)
    assert outcome["failures"] == 2 and outcome["sent"] == []
    assert {e["channel"] for e in outcome["errors"]} == {"webhook", "email"}
    assert "alert_delivery_failed" in caplog.text


def test_ok_status_only_logs(caplog, webhook):
    url, received = webhook
    caplog.set_level(logging.INFO, logger=OUTCOME_LOGGER)
    outcome = deliver({"status": "ok", "reasons": [], "window": {}}, AlertConfig(webhook_url=url))
    assert outcome["logged"] and outcome["skipped"] and received == []
    assert '"event": "monitoring_run"' in caplog.text


def test_a_failing_webhook_never_leaks_its_token(caplog, make_log, registry, config):
    """Slack-style webhooks carry their secret in the URL; requests' errors quote the URL."""
    token = "T0SECRET/B0SECRET/xoxSECRETSECRET"
    dead = _free_port()
    config.alerts = AlertConfig(
        webhook_url=f"http://127.0.0.1:{dead}/services/{token}?k=qs1ret",
        smtp_password="hunter2pw",
        timeout_s=2,
        retries=0,
    )
    store, _ = make_log(n=1000, seed=21, drift=("tempo=+20",))
    with caplog.at_level(logging.DEBUG):
        summary = run(
            config, store, registry, now=NOW, until=NOW, window=timedelta(hours=24), progress=None
        )
    assert summary["alerts"]["failures"] == 1
    error = summary["alerts"]["errors"][0]["error"]
    assert "ConnectionError" in error and "<redacted>" in error  # still says what failed
    stored = json.dumps(store.monitoring_runs(limit=1), default=str)
    report = Path(summary["report_json"]).read_text()
    for text in (caplog.text, stored, report, error):
        assert "SECRET" not in text and "qs1ret" not in text and "hunter2pw" not in text


def test_smtp_starttls_is_read_from_the_environment():
    from monitoring.config import load_config

    assert load_config(environ={"SMTP_STARTTLS": "true"}).alerts.smtp_starttls is True
    assert load_config(environ={}).alerts.smtp_starttls is False
