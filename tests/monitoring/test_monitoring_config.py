"""Monitoring configuration: defaults, YAML, environment overrides, precedence and errors."""

from __future__ import annotations

import re

import pytest

from monitoring.config import MonitoringConfig, load_config
from reggaeton.settings import ConfigError


def test_yaml_then_env_overrides(tmp_path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "drift: {threshold: 0.01, correction: holm}\nalerts: {min_status: alert, smtp_port: 26}\n"
        "reports_dir: out\n"
    )
    cfg = load_config(
        path,
        {
            "ALERT_EMAIL_TO": "a@x.test, b@x.test",
            "SMTP_PORT": "2525",
            "POD_NAMESPACE": "ml",
            "MONITORING_AUTO_RETRAIN": "true",
        },
    )
    assert (cfg.drift.threshold, cfg.drift.correction, cfg.reports_dir) == (0.01, "holm", "out")
    assert cfg.alerts.email_to == ("a@x.test", "b@x.test") and cfg.alerts.smtp_port == 2525
    assert cfg.alerts.min_status == "alert" and cfg.drift.min_samples == 200  # kept from YAML
    assert cfg.retrain.namespace == "ml" and cfg.retrain.enabled
    both = {"POD_NAMESPACE": "ml", "RETRAIN_NAMESPACE": "jobs"}
    assert load_config(None, both).retrain.namespace == "jobs"


def test_defaults_and_env_file_variable(tmp_path) -> None:
    assert load_config(None, {}) == MonitoringConfig()
    path = tmp_path / "m.yaml"
    path.write_text("retrain: {training_overrides: [cv.folds=2]}\nalerts: {email_to: a@x.test}\n")
    cfg = load_config(None, {"MONITORING_CONFIG": str(path), "RETRAIN_COOLDOWN_HOURS": "0.5"})
    assert cfg.retrain.training_overrides == ("cv.folds=2",) and cfg.retrain.cooldown_hours == 0.5
    assert cfg.alerts.email_to == ("a@x.test",)
    blank = {"SMTP_PORT": "", "MONITORING_AUTO_RETRAIN": " ", "MODEL_TAG": ""}
    assert load_config(None, blank) == MonitoringConfig()


def test_only_the_given_mapping_is_read(monkeypatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "2626")
    assert load_config(None, {}).alerts.smtp_port == 25
    assert load_config().alerts.smtp_port == 2626


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("drift: {threshold: 2}", {}, "drift.threshold: input should be less than 1, got 2"),
        ("drift: {tests: 1}", {}, "unknown monitoring config key drift.tests (known under drift:"),
        ("retrain: {mode: cloud}", {}, "retrain.mode: input should be 'auto', 'local' or"),
        ("alerts: {smtp_port: '25'}", {}, "alerts.smtp_port: input should be a valid integer"),
        ("alerts: 3", {}, "alerts: input should be a valid dictionary"),
        ("chunk_size: 10", {}, "chunk_size: input should be greater than or equal to 100"),
        ("", {"SMTP_PORT": "x"}, "SMTP_PORT: input should be a valid integer"),
        ("", {"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS: input should be a valid boolean"),
        ("", {"RETRAIN_MODE": "cloud"}, "retrain.mode (RETRAIN_MODE): input should be 'auto'"),
        (
            "",
            {"PREDICTION_LOG_RETENTION_DAYS": "-1"},
            "retention_days (PREDICTION_LOG_RETENTION_DAYS): input should be greater than or equal",
        ),
        (
            "",
            {"PREDICTION_LOG_RETENTION_DAYS": "20"},
            "performance.late_feedback_days plus max_window_hours must fit in the log's retention"
            " (20 days",
        ),
    ],
)
def test_bad_config_names_the_field_and_the_problem(tmp_path, text, env, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, env)


def test_validate_checks_assignments_again() -> None:
    config = MonitoringConfig()
    config.drift.threshold = 0.01
    assert config.validate().drift.threshold == 0.01
    config.drift.correction = "sidak"
    with pytest.raises(ConfigError, match="drift.correction: input should be 'none'"):
        config.validate()


def test_secrets_stay_out_of_repr() -> None:
    config = load_config(None, {"SMTP_PASSWORD": "hunter2", "ALERT_WEBHOOK_URL": "http://x/tok"})
    assert config.alerts.smtp_password == "hunter2" and config.alerts.webhook_url == "http://x/tok"
    assert "hunter2" not in repr(config) and "tok" not in repr(config)
