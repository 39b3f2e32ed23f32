"""Typed configuration of the monitoring job: a pydantic model tree, a YAML file, env overrides.

Precedence (lowest first): the defaults written in the models below, the YAML file
(``--config`` or ``MONITORING_CONFIG``), environment variables (:class:`MonitoringEnv`),
command-line flags (applied by the CLI, then :meth:`MonitoringConfig.validate`). Secrets
(``SMTP_PASSWORD``, webhook URLs that embed a token) come from the environment only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from reggaeton.records.retention import DEFAULT_LATE_FEEDBACK_DAYS, DEFAULT_RETENTION_DAYS
from reggaeton.settings import EnvSettings, load_env, read_yaml, validate

Correction = Literal["none", "bonferroni", "holm"]
RetrainMode = Literal["auto", "local", "kubernetes"]
NotifyStatus = Literal["warning", "alert"]
PossibleDriftChannel = Literal["off", "log", "notify"]
WHAT = "monitoring config"
"""How error messages name this configuration."""
CORRECTIONS = get_args(Correction)
RETRAIN_MODES = get_args(RetrainMode)

_Lower = BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)
"""Case-insensitive choices (``ALERT_POSSIBLE_DRIFT=Notify`` is ``notify``)."""
_Tuple = BeforeValidator(
    lambda v: (v,) if isinstance(v, str) else tuple(v) if isinstance(v, list) else v
)
"""YAML lists (and a lone string) become the tuples the monitor keeps."""
_CommaList = BeforeValidator(
    lambda v: tuple(s.strip() for s in v.split(",") if s.strip()) if isinstance(v, str) else v
)
"""``a@x.test, b@x.test`` in an environment variable: a list of addresses."""
Strings = Annotated[tuple[str, ...], _Tuple]


class _Section(BaseModel):
    """Common model settings: unknown keys are errors, YAML values are taken as they are.

    Assignment is allowed (the CLI and tests adjust a loaded configuration) and not checked
    on the spot; :meth:`MonitoringConfig.validate` checks the whole tree again.
    """

    model_config = ConfigDict(extra="forbid", strict=True)


class DriftConfig(_Section):
    """Data and prediction drift tests.

    Attributes:
        threshold: Significance level (family-wise when a correction is on). The original
            project alerted at p < 0.045.
        correction: ``bonferroni``, ``holm`` or ``none``. Without a correction, 14 features
            tested at 0.045 raise a false alarm in up to ~47% of healthy runs.
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

    threshold: float = Field(0.045, gt=0, lt=1)
    correction: Correction = "bonferroni"
    possible_factor: float = Field(3.0, ge=1)
    min_samples: int = Field(200, ge=1)
    min_expected: float = Field(5.0, ge=0)
    prediction_status: NotifyStatus = "warning"
    long_window_runs: int = Field(4, ge=0)


class PerformanceConfig(_Section):
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
            before its window whose feedback arrived during the window (0 disables). The
            default is the log's retention minus a margin, both set in
            :mod:`reggaeton.records.retention`.
    """

    min_labelled: int = Field(50, ge=1)
    min_per_class: int = Field(5, ge=1)
    max_drop: float = Field(0.15, ge=0, le=1)
    warn_drop: float = Field(0.08, ge=0, le=1)
    alpha: float = Field(0.01, gt=0, lt=1)
    metrics: Strings = ("precision", "recall")
    late_feedback_days: float = Field(DEFAULT_LATE_FEEDBACK_DAYS, ge=0)


class QualityConfig(_Section):
    """Data quality thresholds (fractions of the window's records)."""

    max_missing: float = Field(0.05, ge=0, le=1)
    max_out_of_range: float = Field(0.05, ge=0, le=1)
    max_invalid: float = Field(0.0, ge=0, le=1)


class AlertConfig(_Section):
    """Alert channels. The structured log line is always written.

    Attributes:
        webhook_url: JSON POST target (Slack incoming-webhook compatible); empty = off.
        email_to: Recipients; empty = no email.
        email_from: Sender address.
        smtp_host / smtp_port / smtp_starttls / smtp_user: SMTP server; the password is
            read from ``SMTP_PASSWORD`` only.
        min_status: Send webhook/email for this status and worse (``warning`` or ``alert``).
        possible_drift: What a ``possible_drift`` feature (or prediction test) does on its own,
            whatever the status: ``off`` (shown in the summary, CLI and report only), ``log``
            (also a ``possible_drift`` WARNING line on the outcome logger) or ``notify``
            (that line, and the webhook/email even below ``min_status``).
            ``ALERT_POSSIBLE_DRIFT`` in the environment.
        timeout_s: Network timeout per attempt.
        retries: Extra attempts after a failed delivery.
    """

    webhook_url: str = Field("", repr=False)
    email_to: Strings = ()
    email_from: str = "reggaeton-monitor@localhost"
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = Field("", repr=False)
    min_status: NotifyStatus = "warning"
    possible_drift: Annotated[PossibleDriftChannel, _Lower] = "off"
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(1, ge=0)


class RetrainConfig(_Section):
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
    mode: RetrainMode = "auto"
    training_config: str | None = None
    training_overrides: Strings = ()
    include_feedback: bool = True
    namespace: str = "default"
    cronjob: str = "reggaeton-train"
    cooldown_hours: float = Field(6.0, ge=0)


class MonitoringConfig(_Section):
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

    store_uri: str | None = Field(None, repr=False)
    bentoml_home: str | None = None
    model_tag: str | None = None
    reports_dir: str = "reports"
    state_dir: str = "var/monitoring"
    max_window_hours: float = Field(24.0, gt=0)
    chunk_size: int = Field(50_000, ge=100)
    mlflow_tracking_uri: str | None = None
    retention_days: float = Field(DEFAULT_RETENTION_DAYS, ge=0)
    drift: DriftConfig = DriftConfig()
    performance: PerformanceConfig = PerformanceConfig()
    quality: QualityConfig = QualityConfig()
    alerts: AlertConfig = AlertConfig()
    retrain: RetrainConfig = RetrainConfig()

    @model_validator(mode="after")
    def _late_feedback_fits_retention(self) -> MonitoringConfig:
        """Late labels are looked for among logged predictions, so those must still be kept."""
        look_back = self.performance.late_feedback_days + self.max_window_hours / 24
        if self.retention_days > 0 and look_back > self.retention_days:
            raise ValueError(
                "performance.late_feedback_days plus max_window_hours must fit in the log's "
                f"retention ({self.retention_days:g} days, PREDICTION_LOG_RETENTION_DAYS)"
            )
        return self

    def validate(self) -> MonitoringConfig:
        """Check the whole tree again after assignments (CLI flags); returns the checked copy.

        Raises:
            ConfigError: a ``ValueError`` naming each bad field and its problem.
        """
        return validate(MonitoringConfig, self.model_dump(), WHAT)


class MonitoringEnv(EnvSettings):
    """The environment variables that override the YAML file.

    A field's name is the dotted path of the value it overrides, with ``__`` for the dot; its
    default None means "not set". Values are parsed from text here (``SMTP_PORT=2525``,
    ``MONITORING_AUTO_RETRAIN=true``, ``ALERT_EMAIL_TO=a@x, b@x``), and the choices and
    ranges are checked by :class:`MonitoringConfig`, once, whatever the source.
    """

    config_file: str | None = Field(None, validation_alias="MONITORING_CONFIG")
    store_uri: str | None = Field(None, validation_alias="PREDICTION_STORE_URI", repr=False)
    bentoml_home: str | None = Field(None, validation_alias="BENTOML_HOME")
    model_tag: str | None = Field(None, validation_alias="MODEL_TAG")
    mlflow_tracking_uri: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    reports_dir: str | None = Field(None, validation_alias="MONITORING_REPORTS_DIR")
    state_dir: str | None = Field(None, validation_alias="MONITORING_STATE_DIR")
    retention_days: float | None = Field(None, validation_alias="PREDICTION_LOG_RETENTION_DAYS")
    retrain__enabled: bool | None = Field(None, validation_alias="MONITORING_AUTO_RETRAIN")
    retrain__mode: str | None = Field(None, validation_alias="RETRAIN_MODE")
    retrain__namespace: str | None = Field(
        None, validation_alias=AliasChoices("RETRAIN_NAMESPACE", "POD_NAMESPACE")
    )
    retrain__cronjob: str | None = Field(None, validation_alias="RETRAIN_CRONJOB")
    retrain__cooldown_hours: float | None = Field(None, validation_alias="RETRAIN_COOLDOWN_HOURS")
    alerts__webhook_url: str | None = Field(None, validation_alias="ALERT_WEBHOOK_URL", repr=False)
    alerts__email_to: Annotated[tuple[str, ...], _CommaList] | None = Field(
        None, validation_alias="ALERT_EMAIL_TO"
    )
    alerts__email_from: str | None = Field(None, validation_alias="ALERT_EMAIL_FROM")
    alerts__smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    alerts__smtp_port: int | None = Field(None, validation_alias="SMTP_PORT")
    alerts__smtp_starttls: bool | None = Field(None, validation_alias="SMTP_STARTTLS")
    alerts__smtp_user: str | None = Field(None, validation_alias="SMTP_USER")
    alerts__smtp_password: str | None = Field(None, validation_alias="SMTP_PASSWORD", repr=False)
    alerts__possible_drift: str | None = Field(None, validation_alias="ALERT_POSSIBLE_DRIFT")

    def origins(self) -> dict[str, str]:
        """Dotted field -> variable, for the variables that are set (named in error messages)."""
        found = {}
        for name, field in type(self).model_fields.items():
            alias = field.validation_alias
            if name != "config_file" and getattr(self, name) is not None:
                label = "/".join(alias.choices) if isinstance(alias, AliasChoices) else alias
                found[name.replace("__", ".")] = str(label)
        return found

    def overrides(self) -> dict[str, Any]:
        """The variables that are set, as a nested mapping shaped like the YAML file."""
        nested: dict[str, Any] = {}
        for name, value in self.model_dump(exclude_none=True, exclude={"config_file"}).items():
            *sections, key = name.split("__")
            node = nested
            for section in sections:
                node = node.setdefault(section, {})
            node[key] = value
        return nested


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top``'s values laid over it, section by section."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = (
            _merge(below, value)
            if isinstance(below, dict) and isinstance(value, Mapping)
            else value
        )
    return merged


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> MonitoringConfig:
    """Build the configuration from defaults, an optional YAML file and the environment.

    Args:
        path: YAML file whose keys mirror :class:`MonitoringConfig` (nested sections);
            None: ``MONITORING_CONFIG``, or no file.
        environ: Environment (default: the process environment); see :class:`MonitoringEnv`.

    Raises:
        ConfigError: a ``ValueError`` naming each unknown key or bad value and its problem.
    """
    env = load_env(MonitoringEnv, os.environ if environ is None else environ)
    file = path or env.config_file
    raw = read_yaml(file, WHAT) if file else {}
    return validate(MonitoringConfig, _merge(raw, env.overrides()), WHAT, env.origins())
