"""Typed service configuration, read from the environment once per worker at startup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reggaeton.predlog.factory import DEFAULT_URI
from reggaeton.predlog.retention import DEFAULT_RETENTION_DAYS, retention_days_from_env
from reggaeton.registry import home_from_env


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


DURABILITY_MODES = ("async", "sync")
"""``PREDICTION_LOG_DURABILITY`` values (see :class:`ServiceConfig`)."""
DEFAULT_SPILL_MAX_BYTES = 256 * 1024 * 1024
"""Per worker and per file (spill and rejects). The chart sets 192 MiB, so that two workers'
files fit its 1 GiB scratch volume with room to spare (a pod past its sizeLimit is evicted)."""


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the service reads from the environment.

    Attributes:
        home: Model store (``BENTOML_HOME``).
        model_tag: Pinned version (``MODEL_TAG``); None follows the promotion record.
        store_uri: Prediction log (``PREDICTION_STORE_URI``).
        spill_dir: Folder of the per-worker spill files (``PREDICTION_SPILL_DIR``).
        api_token: Bearer token for /feedback and /admin (``API_TOKEN``); None = open.
        grpc_port: gRPC port (``GRPC_PORT``, 0 disables); ``grpc_host`` its address.
        grpc_max_connection_age: Seconds after which the gRPC server asks a client to move to
            a new connection (``GRPC_MAX_CONNECTION_AGE_S``, default 60, 0 = unlimited; gRPC
            adds +/-10% jitter). A gRPC client keeps one HTTP/2 connection, and a ClusterIP
            Service balances connections, not calls: without an age, every call of a client
            goes to the pod (and worker process) it first reached; with it, the client
            reconnects and its calls spread over pods and over the workers of each pod.
        grpc_max_connection_age_grace: Seconds the calls in flight on an aged connection get
            to finish before it is closed (``GRPC_MAX_CONNECTION_AGE_GRACE_S``, default 30,
            the request timeout: a large batch is not cut).
        max_batch_rows: Largest accepted batch (``MAX_BATCH_ROWS``).
        max_body_bytes: Largest accepted request body (``MAX_BODY_BYTES``).
        watch_interval: Seconds between promotion-record checks (``MODEL_WATCH_INTERVAL``,
            0 disables the watcher).
        feedback_wait: Seconds /feedback keeps looking for a request id logged by another
            worker before answering 404 (``FEEDBACK_WAIT_S``).
        log_queue: In-memory prediction-log queue size per worker (``PREDICTION_LOG_QUEUE``).
        log_batch: Records per store write (``PREDICTION_LOG_BATCH``).
        log_flush_interval: Seconds a partial batch waits (``PREDICTION_LOG_FLUSH_S``).
        log_retention_days: Days a prediction and its feedback are kept
            (``PREDICTION_LOG_RETENTION_DAYS``, default 30, 0 = forever): SQLite is pruned by
            each worker's writer in bounded deletes, MongoDB gets TTL indexes. Must exceed the
            monitor's late-feedback window (:mod:`reggaeton.predlog.retention`).
        log_durability: When a prediction is acknowledged (``PREDICTION_LOG_DURABILITY``):
            ``async`` (default) once its record is queued in memory, so a hard kill loses the
            records still queued; ``sync`` once its record's group commit is done (the writer
            commits whatever is queued every few ms, one transaction per batch), so SIGKILL
            loses no acknowledged prediction, for a cost measured in bench/README.md.
        spill_max_bytes: Cap of each worker's spill file (``PREDICTION_SPILL_MAX_BYTES``,
            default 256 MiB, 0 = no cap): during a long outage, records past it are dropped
            and counted (``reggaeton_prediction_log_spill_full_total``) instead of filling
            the disk.
        spill_drain_s: At shutdown, seconds the writer keeps retrying to replay a non-empty
            spill while the store is down (``PREDICTION_SPILL_DRAIN_S``, default 20): in a pod
            the spill's emptyDir goes with the pod. The grace period must cover it.
        http_max_requests_per_connection: A keep-alive connection's last request
            (``HTTP_MAX_REQUESTS_PER_CONNECTION``, 0 = unlimited): its response says
            ``Connection: close`` so the client reconnects (see :mod:`service.recycle`).
        http_max_connection_age: Seconds after which the next response closes the connection
            (``HTTP_MAX_CONNECTION_AGE_S``, 0 = unlimited).
        fast_path: Use the compiled trees when the model supports them
            (``INFERENCE_FAST_PATH``, default 1; 0 forces the generic pipeline path).
    """

    home: Path
    model_tag: str | None = None
    store_uri: str = DEFAULT_URI
    spill_dir: Path = Path("var/spill")
    api_token: str | None = None
    grpc_port: int = 50051
    grpc_host: str = "127.0.0.1"
    grpc_max_connection_age: float = 60.0
    grpc_max_connection_age_grace: float = 30.0
    max_batch_rows: int = 10_000
    max_body_bytes: int = 4 * 1024 * 1024
    watch_interval: float = 2.0
    feedback_wait: float = 2.0
    log_queue: int = 200_000
    log_batch: int = 1_000
    log_flush_interval: float = 0.2
    log_retention_days: float = DEFAULT_RETENTION_DAYS
    log_durability: str = "async"
    spill_max_bytes: int = DEFAULT_SPILL_MAX_BYTES
    spill_drain_s: float = 20.0
    http_max_requests_per_connection: int = 1_000
    http_max_connection_age: float = 1.0
    fast_path: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceConfig:
        """Build the configuration from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        config = cls(
            home=home_from_env(env),
            model_tag=env.get("MODEL_TAG") or None,
            store_uri=env.get("PREDICTION_STORE_URI") or DEFAULT_URI,
            spill_dir=Path(env.get("PREDICTION_SPILL_DIR") or "var/spill"),
            api_token=env.get("API_TOKEN") or None,
            grpc_port=_int(env, "GRPC_PORT", 50051),
            grpc_host=env.get("GRPC_HOST") or "127.0.0.1",
            grpc_max_connection_age=_float(env, "GRPC_MAX_CONNECTION_AGE_S", 60.0),
            grpc_max_connection_age_grace=_float(env, "GRPC_MAX_CONNECTION_AGE_GRACE_S", 30.0),
            max_batch_rows=_int(env, "MAX_BATCH_ROWS", 10_000),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 4 * 1024 * 1024),
            watch_interval=_float(env, "MODEL_WATCH_INTERVAL", 2.0),
            feedback_wait=_float(env, "FEEDBACK_WAIT_S", 2.0),
            log_queue=_int(env, "PREDICTION_LOG_QUEUE", 200_000),
            log_batch=_int(env, "PREDICTION_LOG_BATCH", 1_000),
            log_flush_interval=_float(env, "PREDICTION_LOG_FLUSH_S", 0.2),
            log_retention_days=retention_days_from_env(env),
            log_durability=(env.get("PREDICTION_LOG_DURABILITY") or "async").strip().lower(),
            spill_max_bytes=_int(env, "PREDICTION_SPILL_MAX_BYTES", DEFAULT_SPILL_MAX_BYTES),
            spill_drain_s=_float(env, "PREDICTION_SPILL_DRAIN_S", 20.0),
            http_max_requests_per_connection=_int(env, "HTTP_MAX_REQUESTS_PER_CONNECTION",
                                                  1_000),
            http_max_connection_age=_float(env, "HTTP_MAX_CONNECTION_AGE_S", 1.0),
            fast_path=env.get("INFERENCE_FAST_PATH", "1").strip().lower() not in ("0", "false",
                                                                               "no", "off"),
        )
        if config.max_batch_rows < 1 or config.max_body_bytes < 1024:
            raise ValueError("MAX_BATCH_ROWS must be >= 1 and MAX_BODY_BYTES >= 1024")
        if config.log_durability not in DURABILITY_MODES:
            raise ValueError(f"PREDICTION_LOG_DURABILITY must be one of {DURABILITY_MODES}, "
                             f"got {config.log_durability!r}")
        if config.spill_drain_s < 0:
            raise ValueError("PREDICTION_SPILL_DRAIN_S must be >= 0")
        if config.spill_max_bytes < 0:
            raise ValueError("PREDICTION_SPILL_MAX_BYTES must be >= 0 (0 = no cap)")
        if config.grpc_max_connection_age < 0 or config.grpc_max_connection_age_grace < 0:
            raise ValueError("GRPC_MAX_CONNECTION_AGE_S and GRPC_MAX_CONNECTION_AGE_GRACE_S "
                             "must be >= 0 (0 = unlimited)")
        if not 0 <= config.grpc_port < 65536:
            raise ValueError(f"GRPC_PORT must be 0..65535, got {config.grpc_port}")
        return config
