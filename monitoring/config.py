"""Typed configuration of the monitoring job, with defaults, a YAML file and env overrides.

Precedence (lowest first): dataclass defaults, the YAML file (``--config`` or
``MONITORING_CONFIG``), environment variables, command-line flags (applied by the CLI).
Secrets (``SMTP_PASSWORD``, webhook URLs that embed a token) come from the environment only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reggaeton.predlog.retention import (
    DEFAULT_LATE_FEEDBACK_DAYS,
    DEFAULT_RETENTION_DAYS,
    retention_days_from_env,
)

CORRECTIONS = ("none", "bonferroni", "holm")
RETRAIN_MODES = ("auto", "local", "kubernetes")
STATUSES = ("ok", "warning", "alert")
POSSIBLE_DRIFT_CHANNELS = ("off", "log", "notify")


@dataclass
class DriftConfig:
    """Data and prediction drift tests.

    Attributes:
        threshold: Significance level (family-wise when a correction is on). The original
            project alerted at p < 0.045.
        correction: ``bonferroni`` (default), ``holm`` or ``none``. Without a correction,
            14 features tested at 0.045 raise a false alarm in up to ~47% of healthy runs.
        possible_factor: p below ``threshold * possible_factor`` (and above the threshold)
            is reported as ``possible_drift`` (informative, never alerts).
        min_samples: Fewer window records than this: drift is "insufficient data".
        min_expected: Chi-square categories with fewer expected counts are pooled.
        prediction_status: Status raised by prediction drift alone (``warning``/``alert``).
        long_window_runs: Also test a long window: this run's drift counts merged with those
            of the previous runs, this many runs in all (non-overlapping windows against the
            same reference), to catch small steady shifts one window is too small to see.
            Its tests join the correction's family (Bonferroni over 2 x features), so the
            false-alarm rate per run stays at ``threshold``. 0 or 1 disables it.
    """

    threshold: float = 0.045
    correction: str = "bonferroni"
    possible_factor: float = 3.0
    min_samples: int = 200
    min_expected: float = 5.0
    prediction_status: str = "warning"
    long_window_runs: int = 4


@dataclass
class PerformanceConfig:
    """Live performance on records that received feedback.

    Attributes:
        min_labelled: Fewer labelled records than this: "insufficient data".
        min_per_class: Each label (reggaeton / other) needs at least this many records.
        max_drop: Alert when precision or recall falls more than this (absolute) below
            the model's hold-out value and the drop is significant at ``alpha``.
        warn_drop: Warning from this (significant) drop on.
        alpha: Significance level of the one-sided Fisher exact test of each drop.
        metrics: Rates tested against the hold-out confusion matrix (F1 and PR-AUC are
            reported with their drops but follow from these).
        late_feedback_days: Ground truth arrives after the prediction, often after its
            window was monitored: a run also counts predictions made up to this many days
            before its window whose feedback arrived during the window (0 disables). Default
            28: the log's retention (30 days) minus a margin, both set in
            :mod:`reggaeton.predlog.retention`.
    """

    min_labelled: int = 50
    min_per_class: int = 5
    max_drop: float = 0.15
    warn_drop: float = 0.08
    alpha: float = 0.01
    metrics: tuple[str, ...] = ("precision", "recall")
    late_feedback_days: float = DEFAULT_LATE_FEEDBACK_DAYS


@dataclass
class QualityConfig:
    """Data quality thresholds (fractions of the window's records)."""

    max_missing: float = 0.05
    max_out_of_range: float = 0.05
    max_invalid: float = 0.0


@dataclass
class AlertConfig:
    """Alert channels. The structured log line is always written.

    Attributes:
        webhook_url: JSON POST target (Slack incoming-webhook compatible); empty = off.
        email_to: Recipients; empty = no email.
        email_from: Sender address.
        smtp_host / smtp_port / smtp_starttls / smtp_user: SMTP server; the password is
            read from ``SMTP_PASSWORD`` only.
        min_status: Send webhook/email for this status and worse (``warning`` or ``alert``).
        possible_drift: What a ``possible_drift`` feature (or prediction test) does on its own,
            whatever the status: ``off`` (default: shown in the summary, CLI and report only),
            ``log`` (also a ``possible_drift`` WARNING line on the outcome logger) or
            ``notify`` (that line, and the webhook/email even below ``min_status``).
            ``ALERT_POSSIBLE_DRIFT`` in the environment.
        timeout_s: Network timeout per attempt.
        retries: Extra attempts after a failed delivery.
    """

    webhook_url: str = ""
    email_to: tuple[str, ...] = ()
    email_from: str = "reggaeton-monitor@localhost"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    min_status: str = "warning"
    possible_drift: str = "off"
    timeout_s: float = 5.0
    retries: int = 1


@dataclass
class RetrainConfig:
    """Automatic retraining when the status is ``alert``.

    Attributes:
        enabled: Trigger at all (``--auto-retrain`` sets it).
        mode: ``local`` (run the training pipeline in this process), ``kubernetes``
            (create a Job from the chart's train CronJob) or ``auto`` (kubernetes inside a
            cluster, i.e. when ``KUBERNETES_SERVICE_HOST`` is set, else local).
        training_config: YAML config for local training (None = training's default).
        training_overrides: ``key=value`` overrides for local training.
        include_feedback: Local training also learns from labelled production rows.
        namespace: Kubernetes namespace of the CronJob.
        cronjob: Name of the train CronJob (``<release>-train``).
        cooldown_hours: After a triggered training for a condition (drifted features,
            performance, ...), the same condition does not trigger again for this long (0 = no
            cooldown); a different condition may trigger at once.
    """

    enabled: bool = False
    mode: str = "auto"
    training_config: str | None = None
    training_overrides: tuple[str, ...] = ()
    include_feedback: bool = True
    namespace: str = "default"
    cronjob: str = "reggaeton-train"
    cooldown_hours: float = 6.0


@dataclass
class MonitoringConfig:
    """Everything the monitoring job needs.

    Attributes:
        store_uri: Prediction log (``PREDICTION_STORE_URI``); None = the store's default.
        bentoml_home: Model store home (``BENTOML_HOME``); None = ``var/bentoml``.
        model_tag: Version whose reference is the baseline (``MODEL_TAG``; None = promoted).
        reports_dir: Where ``<run>.json`` and ``<run>.html`` are written.
        state_dir: Profiles (``profiles/<run>.bin``) and the retrain lock live here.
        max_window_hours: The default window starts at the previous run, at most this far back.
        chunk_size: Records per chunk read from the log (memory stays flat).
        mlflow_tracking_uri: Passed to local retraining (None: ``MLFLOW_TRACKING_URI`` or the
            local default ``sqlite:///var/mlflow.db``).
        retention_days: How long the log keeps predictions (``PREDICTION_LOG_RETENTION_DAYS``,
            the service's setting; 0 = forever): the late-feedback look-back plus one window
            must fit inside it, or late labels would be looked for among pruned predictions.
    """

    store_uri: str | None = None
    bentoml_home: str | None = None
    model_tag: str | None = None
    reports_dir: str = "reports"
    state_dir: str = "var/monitoring"
    max_window_hours: float = 24.0
    chunk_size: int = 50_000
    mlflow_tracking_uri: str | None = None
    retention_days: float = DEFAULT_RETENTION_DAYS
    drift: DriftConfig = field(default_factory=DriftConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def validate(self) -> MonitoringConfig:
        """Check values, raising ``ValueError`` naming the bad field; returns self."""
        checks = [
            ("drift.threshold", 0 < self.drift.threshold < 1, "must be in (0, 1)"),
            ("drift.correction", self.drift.correction in CORRECTIONS, f"one of {CORRECTIONS}"),
            ("drift.prediction_status", self.drift.prediction_status in STATUSES[1:],
             "warning or alert"),
            ("drift.min_samples", self.drift.min_samples >= 1, "must be >= 1"),
            ("drift.long_window_runs", self.drift.long_window_runs >= 0, "must be >= 0"),
            ("performance.min_labelled", self.performance.min_labelled >= 1, "must be >= 1"),
            ("alerts.min_status", self.alerts.min_status in STATUSES[1:], "warning or alert"),
            ("alerts.possible_drift", self.alerts.possible_drift in POSSIBLE_DRIFT_CHANNELS,
             f"one of {POSSIBLE_DRIFT_CHANNELS}"),
            ("retrain.mode", self.retrain.mode in RETRAIN_MODES, f"one of {RETRAIN_MODES}"),
            ("max_window_hours", self.max_window_hours > 0, "must be > 0"),
            ("chunk_size", self.chunk_size >= 100, "must be >= 100"),
            ("performance.late_feedback_days", self.retention_days <= 0
             or self.performance.late_feedback_days + self.max_window_hours / 24
             <= self.retention_days, f"plus max_window_hours must fit in the log's retention "
             f"({self.retention_days:g} days, PREDICTION_LOG_RETENTION_DAYS)"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"monitoring config {name}: {rule}")
        return self


def _apply(obj: Any, values: Mapping[str, Any], prefix: str = "") -> None:
    """Set dataclass fields from a nested mapping, rejecting unknown keys."""
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"monitoring config: unknown key '{prefix}{key}'")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ValueError(f"monitoring config {prefix}{key}: must be a mapping")
            _apply(current, value, f"{prefix}{key}.")
        elif isinstance(current, tuple):
            setattr(obj, key, tuple(value if isinstance(value, list | tuple) else [value]))
        else:
            setattr(obj, key, value)


ENV_KEYS = {
    "PREDICTION_STORE_URI": ("store_uri",),
    "BENTOML_HOME": ("bentoml_home",),
    "MODEL_TAG": ("model_tag",),
    "MLFLOW_TRACKING_URI": ("mlflow_tracking_uri",),
    "MONITORING_REPORTS_DIR": ("reports_dir",),
    "MONITORING_STATE_DIR": ("state_dir",),
    "MONITORING_AUTO_RETRAIN": ("retrain", "enabled"),
    "RETRAIN_MODE": ("retrain", "mode"),
    "POD_NAMESPACE": ("retrain", "namespace"),
    "ALERT_WEBHOOK_URL": ("alerts", "webhook_url"),
    "ALERT_EMAIL_TO": ("alerts", "email_to"),
    "ALERT_EMAIL_FROM": ("alerts", "email_from"),
    "SMTP_HOST": ("alerts", "smtp_host"),
    "SMTP_PORT": ("alerts", "smtp_port"),
    "SMTP_STARTTLS": ("alerts", "smtp_starttls"),
    "SMTP_USER": ("alerts", "smtp_user"),
    "SMTP_PASSWORD": ("alerts", "smtp_password"),
    "ALERT_POSSIBLE_DRIFT": ("alerts", "possible_drift"),
    "RETRAIN_NAMESPACE": ("retrain", "namespace"),
    "RETRAIN_CRONJOB": ("retrain", "cronjob"),
    "RETRAIN_COOLDOWN_HOURS": ("retrain", "cooldown_hours"),
    "PREDICTION_LOG_RETENTION_DAYS": ("retention_days",),
}


def load_config(path: str | Path | None = None,
                environ: Mapping[str, str] | None = None) -> MonitoringConfig:
    """Build the configuration from defaults, an optional YAML file and the environment.

    Args:
        path: YAML file whose keys mirror :class:`MonitoringConfig` (nested sections).
        environ: Environment (default ``os.environ``); see :data:`ENV_KEYS`.

    Raises:
        ValueError: naming an unknown key or a bad value.
    """
    env = os.environ if environ is None else environ
    config = MonitoringConfig()
    path = path or env.get("MONITORING_CONFIG")
    if path:
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"monitoring config {path}: top level must be a mapping")
        _apply(config, data)
    for var, keys in ENV_KEYS.items():
        value: Any = env.get(var)
        if not value:
            continue
        target: Any = config
        for key in keys[:-1]:
            target = getattr(target, key)
        if keys[-1] == "email_to":
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        elif keys[-1] in ("enabled", "smtp_starttls"):
            value = value.strip().lower() in ("1", "true", "yes", "on")
        elif keys[-1] == "possible_drift":
            value = value.strip().lower()
        elif keys[-1] == "smtp_port":
            value = int(value)
        elif keys[-1] == "cooldown_hours":
            value = float(value)
        elif keys[-1] == "retention_days":
            value = retention_days_from_env(env)
        setattr(target, keys[-1], value)
    return config.validate()
