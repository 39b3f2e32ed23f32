"""grpcio server for ``reggaeton.v1.ReggaetonService`` plus the standard health service.

Started by the BentoML service's startup hook in every worker process. Each worker binds the
same port with ``SO_REUSEPORT`` (``grpc.so_reuseport=1``), so the kernel spreads incoming
connections over the workers; binding still fails (and the worker reports not ready) when a
socket without ``SO_REUSEPORT``, or of another user, holds the port. Connections are aged out
(``GRPC_MAX_CONNECTION_AGE_S``: a GOAWAY, then a grace period for the calls in flight), so a
long-lived client reconnects and its calls spread over workers and, behind a ClusterIP
Service, over pods. Every answer carries the trailing metadata ``reggaeton-served-by``
(``<hostname>/<worker>``: the pod and the worker process that answered), which makes that
spread observable. It shares the worker's :class:`~service.runtime.Runtime`: same
validation, same predictor, same log.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from reggaeton.schema import FEATURES, ValidationError
from service.grpc import reggaeton_pb2, reggaeton_pb2_grpc
from service.runtime import NotReady, Runtime
from service.validation import validate_rows

logger = logging.getLogger("reggaeton.grpc")
SERVICE_NAME = "reggaeton.v1.ReggaetonService"
SERVED_BY = "reggaeton-served-by"
"""Trailing metadata key naming the pod and worker that answered (``<hostname>/<worker>``)."""
_NAMES = tuple(f.name for f in FEATURES)


def song_to_dict(song: Any) -> dict[str, float]:
    """A ``Song`` message as the JSON-like dict the validator takes (unset fields absent)."""
    return {name: getattr(song, name) for name in _NAMES if song.HasField(name)}


def _prediction(result: dict[str, Any]) -> Any:
    return reggaeton_pb2.Prediction(**result)


class Undecodable:
    """Stands for request bytes that are not the method's message (the method refuses it)."""

    def __init__(self, message: str, reason: str) -> None:
        self.details = f"message: is not a valid {message} ({reason})"


def _lenient(message_cls: Any) -> Any:
    """A request deserializer that never raises: grpcio answers INTERNAL, with a traceback in
    the log, when its deserializer raises; an :class:`Undecodable` lets the method answer
    INVALID_ARGUMENT instead, like any other bad request."""
    name = message_cls.DESCRIPTOR.full_name

    def parse(raw: bytes) -> Any:
        try:
            return message_cls.FromString(raw)
        except DecodeError as exc:
            return Undecodable(name, str(exc) or "truncated or malformed protobuf")

    return parse


def add_servicer(servicer: ReggaetonServicer, server: Any) -> None:
    """Register ``servicer`` as the generated ``add_..._to_server`` does, with lenient request
    deserializers (:func:`_lenient`)."""
    handlers = {
        "PredictSong": grpc.unary_unary_rpc_method_handler(
            servicer.PredictSong,
            request_deserializer=_lenient(reggaeton_pb2.PredictSongRequest),
            response_serializer=reggaeton_pb2.Prediction.SerializeToString,
        ),
        "PredictSongs": grpc.unary_unary_rpc_method_handler(
            servicer.PredictSongs,
            request_deserializer=_lenient(reggaeton_pb2.PredictSongsRequest),
            response_serializer=reggaeton_pb2.PredictSongsResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class ReggaetonServicer(reggaeton_pb2_grpc.ReggaetonServiceServicer):
    """Implements PredictSong and PredictSongs on top of a :class:`Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._served_by = ((SERVED_BY, f"{socket.gethostname()}/{runtime.worker}"),)

    def _score(self, songs: list[dict[str, float]], single: bool, context: Any) -> list[Any]:
        started = time.perf_counter()
        context.set_trailing_metadata(self._served_by)
        try:
            matrix = validate_rows(songs, offset_index=not single)
            results = self.runtime.score(matrix, "grpc", started, batch=not single)
        except ValidationError as err:
            where = err.location.rstrip(".")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {err.rule}")
        except NotReady as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return [_prediction(r) for r in results]

    def PredictSong(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC names
        """Score one song."""
        if isinstance(request, Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.details)
        if not request.HasField("data"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "data: is required")
        return self._score([song_to_dict(request.data)], True, context)[0]

    def PredictSongs(self, request: Any, context: Any) -> Any:  # noqa: N802
        """Score 1..MAX_BATCH_ROWS songs, results in order."""
        if isinstance(request, Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.details)
        limit = self.runtime.config.max_batch_rows
        if not 1 <= len(request.data) <= limit:
            rule = "must hold at least 1 song" if not request.data else f"must hold at most {limit}"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"data: {rule}")
        results = self._score([song_to_dict(s) for s in request.data], False, context)
        return reggaeton_pb2.PredictSongsResponse(
            results=results, model_version=results[0].model_version
        )


class GrpcServer:
    """A running grpcio server and the thread that keeps its health status current."""

    def __init__(self, server: Any, health_servicer: Any, runtime: Runtime, port: int) -> None:
        self.server, self.health, self.runtime, self.port = server, health_servicer, runtime, port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch_health, name="grpc-health", daemon=True)
        self._thread.start()

    def _watch_health(self) -> None:
        while True:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if self.runtime.ready
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", SERVICE_NAME):
                self.health.set(name, status)
            if self._stop.wait(1.0):
                return

    def stop(self, grace: float) -> threading.Event:
        """Stop accepting calls; in-flight ones get ``grace`` seconds."""
        self._stop.set()
        self.health.enter_graceful_shutdown()
        return self.server.stop(grace)


def server_options(config: Any) -> list[tuple[str, int]]:
    """grpcio channel arguments of the server: port sharing, message size, connection age."""
    options = [("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", config.max_body_bytes)]
    if config.grpc_max_connection_age > 0:
        options += [
            ("grpc.max_connection_age_ms", int(config.grpc_max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(config.grpc_max_connection_age_grace * 1000)),
        ]
    return options


def start_grpc(runtime: Runtime, host: str, port: int, threads: int = 8) -> GrpcServer:
    """Bind ``host:port`` and start serving (raises RuntimeError when the port is taken)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        options=server_options(runtime.config),
    )
    add_servicer(ReggaetonServicer(runtime), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC to {host}:{port}")
    server.start()
    logger.info("gRPC %s + grpc.health.v1 listening on %s:%d", SERVICE_NAME, host, bound)
    return GrpcServer(server, health_servicer, runtime, bound)
