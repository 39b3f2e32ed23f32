"""The BentoML service: ``bentoml serve service.service:ReggaetonService``.

Thin on purpose: the HTTP routes are described in :mod:`service.routes` and served by
:mod:`service.app` (a Starlette app mounted with ``@bentoml.asgi_app``), the per-worker state
lives in :mod:`service.runtime`, gRPC in :mod:`service.grpc.server`. BentoML provides the
process model (workers), ``/livez``, ``/readyz`` (ready once a model is loaded, via
``__is_ready__``), ``/metrics`` and the OpenAPI page.

Lean configuration: access log off, OpenTelemetry tracing excluded (see
:data:`UNTRACED_URLS`), and BentoML's own request metrics off: its metrics middleware writes several
multiprocess Prometheus samples per request and cost about a third of the single-row throughput
here. ``/metrics`` is then served by our route (:mod:`service.metrics`: requests by endpoint and
status, latency histogram, predictions by label, probability histogram, prediction-log queue,
failures, spills, drops). Override any of it at run time with ``BENTOML_CONFIG_OPTIONS``, e.g.
``services.reggaeton_service.metrics.enabled=true`` (BentoML's ``/metrics`` then shows its
series and ours) or ``services.reggaeton_service.workers=4``.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import bentoml

from service.app import build_app
from service.bodyguard import BodyGuard
from service.errorshape import JsonErrors
from service.openapi import build_docs_app
from service.runtime import NotReady, Runtime

logger = logging.getLogger("reggaeton.service")
WORKERS = 2
REQUEST_TIMEOUT_S = 30
"""BentoML's ``traffic.timeout``: a request not answered by then gets a 504. BentoML keeps a
timer (about 450 bytes) for every request for this long whether or not it was answered
(service.bodyguard), so it bounds memory under a flood: 30 s is ~60 MB per worker at 4,500
req/s, and still far above the slowest legitimate request (a reload, a few seconds)."""
UNTRACED_URLS = ".*"
"""No OpenTelemetry spans (BentoML's default sample rate is 0 anyway): even a non-recording
span's context is ~4 KB that BentoML's timer keeps for ``REQUEST_TIMEOUT_S`` (measured: +215 MB
per worker in 30 s of small 404s). To trace, override ``tracing.excluded_urls`` and
``tracing.sample_rate`` together with ``BENTOML_CONFIG_OPTIONS``."""
_current: dict[str, Runtime] = {}


def _tune_gc() -> None:
    """Keep the cyclic GC off the hot path: everything loaded so far (libraries, the model) is
    moved out of its reach, and young collections run every 50,000 allocations instead of 700
    (a 1,000-row batch allocates ~10,000 objects). Measured: ~25% less CPU per batch request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _drain_limit() -> int:
    """Bytes of an unread body drained before an answer: twice ``MAX_BODY_BYTES``, so a client
    that overshoots the limit still reads its 413; beyond that the connection is closed."""
    runtime = _current.get("runtime")
    if runtime is None:
        from service.config import ServiceConfig

        return 2 * ServiceConfig.from_env().max_body_bytes
    return 2 * runtime.config.max_body_bytes


def _batch_limit() -> int:
    """``MAX_BATCH_ROWS`` of this process, stated by the OpenAPI document's batch schema."""
    from service.config import ServiceConfig

    return ServiceConfig.from_env().max_batch_rows


def _runtime() -> Runtime:
    runtime = _current.get("runtime")
    if runtime is None:
        raise NotReady("the service is starting")
    return runtime


@bentoml.service(
    name="reggaeton_service",
    workers=WORKERS,
    traffic={"timeout": REQUEST_TIMEOUT_S},
    logging={"access": {"enabled": False}},
    metrics={"enabled": False},  # ~1.5x req/s; our /metrics route takes over (see docstring)
    tracing={"excluded_urls": UNTRACED_URLS},
)
@bentoml.asgi_app(build_docs_app(_batch_limit()), path="/", name="openapi-docs")
@bentoml.asgi_app(build_app(_runtime), path="/", name="reggaeton-api")
class ReggaetonService:
    """Reggaeton or not: classifies songs from their Spotify audio features.

    HTTP: POST /predict-song, POST /predict-songs, POST /feedback, GET /model,
    POST /admin/reload, GET /livez, /readyz, /metrics. gRPC (GRPC_PORT, default 50051):
    reggaeton.v1.ReggaetonService with PredictSong and PredictSongs, plus grpc.health.v1.
    """

    def __init__(self) -> None:
        from service.config import ServiceConfig

        config = ServiceConfig.from_env()
        worker = bentoml.server_context.worker_index
        self.runtime = Runtime(config, worker)
        self.grpc: Any = None

    @bentoml.on_startup
    def start(self) -> None:
        """Load the model, start the prediction log, and gRPC in this worker.

        Every worker serves gRPC on the same port (``SO_REUSEPORT``: the kernel spreads the
        connections over the workers, see :mod:`service.grpc.server`).
        """
        runtime = self.runtime
        runtime.start()
        _current["runtime"] = runtime
        _tune_gc()
        config = runtime.config
        if config.grpc_port:
            from service.grpc.server import start_grpc

            try:
                self.grpc = start_grpc(runtime, config.grpc_host, config.grpc_port)
            except Exception:  # noqa: BLE001 - HTTP keeps serving; the log says why
                logger.exception(
                    "gRPC server could not start on %s:%s", config.grpc_host, config.grpc_port
                )

    @bentoml.on_shutdown
    def stop(self) -> None:
        """Stop gRPC (grace period for in-flight calls), then flush the prediction log."""
        if self.grpc is not None:
            self.grpc.stop(grace=5).wait(6)
        _current.pop("runtime", None)
        self.runtime.close()

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded and, when enabled, this worker's gRPC server runs.

        Each worker answers for its own gRPC server (every worker binds the port), so a worker
        whose bind failed is never ready. A port probe is not enough: another process that
        holds the port accepts connections too (a test starts the service beside such a
        socket: the probe said ready, gRPC calls went elsewhere).
        """
        return self.runtime.ready and (not self.runtime.config.grpc_port or self.grpc is not None)


# Service-wide ASGI middlewares (inside BentoML's timeout, outside its routing), first = outer:
# body isolation + draining (service.bodyguard: why memory stayed bounded), then the JSON shape
# of the 404/405 answered by BentoML's and Starlette's routers (service.errorshape).
ReggaetonService.add_asgi_middleware(BodyGuard, drain_limit=_drain_limit)
ReggaetonService.add_asgi_middleware(JsonErrors)
