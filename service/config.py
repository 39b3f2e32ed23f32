"""Typed service configuration, read from the environment once per worker at startup.

Each field's default is written once, in its ``Field``; its variable name is the field's
``validation_alias`` (the names the Helm chart renders). ``ServiceConfig.from_env()`` is the
only place the service reads its settings from the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from reggaeton.records.factory import DEFAULT_URI
from reggaeton.records.retention import DEFAULT_RETENTION_DAYS
from reggaeton.registry import DEFAULT_HOME
from reggaeton.settings import EnvSettings, load_env

Durability = Literal["async", "sync"]
"""``PREDICTION_LOG_DURABILITY`` values (see :class:`ServiceConfig`)."""
DEFAULT_SPILL_MAX_BYTES = 256 * 1024 * 1024
"""Per worker and per file (spill and rejects). The chart sets 192 MiB, so that two workers'
files fit its 1 GiB scratch volume with room to spare (a pod past its sizeLimit is evicted)."""

_Lower = BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)
"""Case-insensitive choices: ``SYNC`` and ``sync`` are the same mode."""


class ServiceConfig(EnvSettings):
    """Everything the service reads from the environment.

    Attributes:
        home: Model store (``BENTOML_HOME``), made absolute.
        model_tag: Pinned version (``MODEL_TAG``); None follows the promotion record.
        store_uri: Prediction log (``PREDICTION_STORE_URI``).
        spill_dir: Folder of the per-worker spill files (``PREDICTION_SPILL_DIR``).
        api_token: Bearer token for /feedback and /admin (``API_TOKEN``); None = open.
        grpc_port: gRPC port (``GRPC_PORT``, 0 disables); ``grpc_host`` its address.
        grpc_max_connection_age: Seconds after which the gRPC server asks a client to move to
            a new connection (``GRPC_MAX_CONNECTION_AGE_S``, 0 = unlimited; gRPC adds +/-10%
            jitter). A gRPC client keeps one HTTP/2 connection, and a ClusterIP Service
            balances connections, not calls: without an age, every call of a client goes to
            the pod (and worker process) it first reached; with it, the client reconnects and
            its calls spread over pods and over the workers of each pod.
        grpc_max_connection_age_grace: Seconds the calls in flight on an aged connection get
            to finish before it is closed (``GRPC_MAX_CONNECTION_AGE_GRACE_S``; the default is
            the request timeout, so a large batch is not cut).
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
            (``PREDICTION_LOG_RETENTION_DAYS``, 0 = forever): SQLite is pruned by each
            worker's writer in bounded deletes, MongoDB gets TTL indexes. Must exceed the
            monitor's late-feedback window (:mod:`reggaeton.records.retention`).
        log_durability: When a prediction is acknowledged (``PREDICTION_LOG_DURABILITY``):
            ``async`` once its record is queued in memory, so a hard kill loses the records
            still queued; ``sync`` once its record's group commit is done (the writer commits
            whatever is queued every few ms, one transaction per batch), so SIGKILL loses no
            acknowledged prediction, for a cost measured in bench/README.md.
        spill_max_bytes: Cap of each worker's spill file (``PREDICTION_SPILL_MAX_BYTES``,
            0 = no cap): during a long outage, records past it are dropped and counted
            (``reggaeton_prediction_log_spill_full_total``) instead of filling the disk.
        spill_drain_s: At shutdown, seconds the writer keeps retrying to replay a non-empty
            spill while the store is down (``PREDICTION_SPILL_DRAIN_S``): in a pod the spill's
            emptyDir goes with the pod. The grace period must cover it.
        http_max_requests_per_connection: A keep-alive connection's last request
            (``HTTP_MAX_REQUESTS_PER_CONNECTION``, 0 = unlimited): its response says
            ``Connection: close`` so the client reconnects (see :mod:`service.recycle`).
        http_max_connection_age: Seconds after which the next response closes the connection
            (``HTTP_MAX_CONNECTION_AGE_S``, 0 = unlimited).
    """

    home: Annotated[Path, AfterValidator(Path.resolve)] = Field(
        DEFAULT_HOME, validation_alias="BENTOML_HOME", validate_default=True
    )
    model_tag: str | None = Field(None, validation_alias="MODEL_TAG")
    store_uri: str = Field(DEFAULT_URI, validation_alias="PREDICTION_STORE_URI")
    spill_dir: Path = Field(Path("var/spill"), validation_alias="PREDICTION_SPILL_DIR")
    api_token: str | None = Field(None, validation_alias="API_TOKEN", repr=False)
    grpc_port: int = Field(50051, validation_alias="GRPC_PORT", ge=0, le=65535)
    grpc_host: str = Field("127.0.0.1", validation_alias="GRPC_HOST")
    grpc_max_connection_age: float = Field(60.0, validation_alias="GRPC_MAX_CONNECTION_AGE_S", ge=0)
    grpc_max_connection_age_grace: float = Field(
        30.0, validation_alias="GRPC_MAX_CONNECTION_AGE_GRACE_S", ge=0
    )
    max_batch_rows: int = Field(10_000, validation_alias="MAX_BATCH_ROWS", ge=1)
    max_body_bytes: int = Field(4 * 1024 * 1024, validation_alias="MAX_BODY_BYTES", ge=1024)
    watch_interval: float = Field(2.0, validation_alias="MODEL_WATCH_INTERVAL", ge=0)
    feedback_wait: float = Field(2.0, validation_alias="FEEDBACK_WAIT_S", ge=0)
    log_queue: int = Field(200_000, validation_alias="PREDICTION_LOG_QUEUE", ge=1)
    log_batch: int = Field(1_000, validation_alias="PREDICTION_LOG_BATCH", ge=1)
    log_flush_interval: float = Field(0.2, validation_alias="PREDICTION_LOG_FLUSH_S", ge=0)
    log_retention_days: float = Field(
        DEFAULT_RETENTION_DAYS, validation_alias="PREDICTION_LOG_RETENTION_DAYS", ge=0
    )
    log_durability: Annotated[Durability, _Lower] = Field(
        "async", validation_alias="PREDICTION_LOG_DURABILITY"
    )
    spill_max_bytes: int = Field(
        DEFAULT_SPILL_MAX_BYTES, validation_alias="PREDICTION_SPILL_MAX_BYTES", ge=0
    )
    spill_drain_s: float = Field(20.0, validation_alias="PREDICTION_SPILL_DRAIN_S", ge=0)
    http_max_requests_per_connection: int = Field(
        1_000, validation_alias="HTTP_MAX_REQUESTS_PER_CONNECTION", ge=0
    )
    http_max_connection_age: float = Field(1.0, validation_alias="HTTP_MAX_CONNECTION_AGE_S", ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceConfig:
        """Build the configuration from ``environ`` (default: the process environment).

        Raises:
            ConfigError: a ``ValueError`` naming each bad variable and its problem.
        """
        return load_env(cls, os.environ if environ is None else environ)
