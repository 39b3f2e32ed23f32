"""The HTTP API as a small Starlette app, mounted into the BentoML service.

Why a mounted app rather than ``@bentoml.api`` methods: BentoML's per-request API layer
(pydantic models, serde, dispatch) costs more than the model; a plain route with orjson and the
vectorised schema check keeps the same strictness at a fraction of the cost. The routes are
documented in BentoML's OpenAPI page through :mod:`service.openapi`.

Every error is a JSON body ``{"error", "detail", "field", "rule"}`` with a 4xx status; nothing a
client sends can produce a 500.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from reggaeton.schema import ValidationError
from service.coalesce import Coalescer
from service.errors import CLIENT_CLOSED, ApiError, json_response
from service.jsonbody import read_json
from service.metrics import render
from service.recycle import ConnectionRecycler
from service.runtime import NotReady, Runtime, ScoreJob
from service.validation import validate_rows

logger = logging.getLogger("reggaeton.service")
OFFLOAD_ROWS = 256
"""Batches at least this big are scored in a worker thread so the event loop keeps accepting."""


def _data(payload: Any, kind: type) -> Any:
    if not isinstance(payload, dict) or "data" not in payload:
        raise ApiError(422, "validation_error", "body must be a JSON object with a 'data' key",
                       "data", "is required")
    data = payload["data"]
    if not isinstance(data, kind):
        what = "an object (one song)" if kind is dict else "a list of songs"
        raise ApiError(422, "validation_error", f"data must be {what}", "data",
                       f"must be {what}")
    return data


def _request_id(value: Any) -> str:
    """A feedback ``request_id``: 1..200 characters of text the store can encode.

    A lone surrogate (JSON ``"\\ud800"``) decodes to a Python str that is not valid Unicode;
    sqlite3 and BSON cannot encode it, so it is refused here like any other bad value.
    """
    if isinstance(value, str) and 0 < len(value) <= 200:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return value
    raise ApiError(422, "validation_error", "request_id must be a non-empty string",
                   "request_id", "must be a non-empty string (at most 200 chars, valid Unicode)")


def _invalid(err: ValidationError) -> ApiError:
    where = err.location.rstrip(".")  # a whole row has no field: "data[3]", not "data[3]."
    return ApiError(422, "validation_error", f"{where}: {err.rule}", where, err.rule)


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token", "Authorization",
                       "must be 'Bearer <API_TOKEN>'")


def build_app(get_runtime: Callable[[], Runtime]) -> Starlette:
    """The Starlette app, behind keep-alive connection recycling (:mod:`service.recycle`).

    Args:
        get_runtime: Returns the worker's runtime (set at startup; raises before).
    """
    coalescer = Coalescer(get_runtime)

    def guarded(endpoint: str, handler: Callable[[Request, Runtime], Any]) -> Callable:
        async def route(request: Request) -> Response:
            started = time.perf_counter()
            try:
                runtime = get_runtime()
                response = await handler(request, runtime)
            except ApiError as err:
                _count(get_runtime, endpoint, err.status)
                return err.response()
            except ClientDisconnect:  # nobody to answer; not a server error either
                logger.info("%s: client closed the connection before sending its body", endpoint)
                _count(get_runtime, endpoint, CLIENT_CLOSED)
                return ApiError(CLIENT_CLOSED, "client_closed_request",
                                "the client closed the connection mid-request").response()
            except NotReady as exc:
                _count(get_runtime, endpoint, 503)
                return ApiError(503, "not_ready", str(exc)).response()
            except Exception:  # noqa: BLE001 - log it, answer 503, never leak a traceback
                logger.exception("%s failed", endpoint)
                _count(get_runtime, endpoint, 503)
                return ApiError(503, "unavailable", "temporary server error, retry").response()
            runtime.metrics.observe_request(endpoint, response.status_code,
                                            time.perf_counter() - started)
            return response

        route.__name__ = endpoint.strip("/").replace("-", "_") or "root"
        return route

    async def predict_song(request: Request, runtime: Runtime) -> Response:
        started = time.perf_counter()
        song = _data(await read_json(request, runtime.config.max_body_bytes), dict)
        try:
            matrix = validate_rows([song], offset_index=False)
        except ValidationError as err:
            raise _invalid(err) from None
        results = await coalescer.score(ScoreJob(matrix, "http", started, songs=[song]))
        return json_response(results[0])

    async def predict_songs(request: Request, runtime: Runtime) -> Response:
        started = time.perf_counter()
        songs = _data(await read_json(request, runtime.config.max_body_bytes), list)
        limit = runtime.config.max_batch_rows
        if not 1 <= len(songs) <= limit:
            rule = "must hold at least 1 song" if not songs else f"must hold at most {limit} songs"
            raise ApiError(422 if songs else 422, "validation_error", f"data {rule}", "data",
                           rule)

        def check() -> np.ndarray:
            try:
                return validate_rows(songs)
            except ValidationError as err:
                raise _invalid(err) from None

        if len(songs) >= OFFLOAD_ROWS:  # big: validate and score in a thread, unmerged

            def work() -> list[dict[str, Any]]:
                return runtime.score(check(), "batch", started, batch=True, songs=songs)

            results = await anyio.to_thread.run_sync(work)
        else:
            job = ScoreJob(check(), "batch", started, batch=True, songs=songs)
            results = await coalescer.score(job)
        return json_response({"results": results, "count": len(results),
                              "model_version": results[0]["model_version"]})

    async def feedback(request: Request, runtime: Runtime) -> Response:
        _authorize(request, runtime.config.api_token)
        payload = await read_json(request, runtime.config.max_body_bytes)
        if not isinstance(payload, dict):
            raise ApiError(422, "validation_error", "body must be a JSON object", "body",
                           "must be a JSON object")
        request_id, label = _request_id(payload.get("request_id")), payload.get("label")
        if type(label) is not int or label not in (0, 1):
            raise ApiError(422, "validation_error", "label must be 0 or 1", "label",
                           "must be 0 (other) or 1 (reggaeton)")
        found = await runtime.feedback.add(request_id, label)  # see service.feedback
        if not found:
            raise ApiError(404, "not_found", f"no prediction with request_id {request_id!r}",
                           "request_id", "must be the request_id of a logged prediction")
        return json_response({"request_id": request_id, "label": label, "recorded": True})

    async def model_info(request: Request, runtime: Runtime) -> Response:
        predictor = runtime.current()
        meta = predictor.version.metadata
        body = {
            "model_version": predictor.tag, "created_at": meta.get("created_at"),
            "threshold": predictor.threshold, "features": meta.get("features"),
            "metrics": meta.get("metrics"), "estimator": meta.get("estimator"),
            "inference_path": predictor.path_name, "worker": runtime.worker,
            "pinned": runtime.config.model_tag,
            "promoted": runtime.registry.promotions.current(),
            "reload": runtime.status,
        }
        return json_response(body)

    async def reload(request: Request, runtime: Runtime) -> Response:
        _authorize(request, runtime.config.api_token)
        result = await anyio.to_thread.run_sync(runtime.reload, "admin reload")
        return json_response(result, 200 if result["error"] is None else 409)

    async def metrics(request: Request, runtime: Runtime) -> Response:
        runtime.sync_metrics()
        content, media_type = render()
        return Response(content, media_type=media_type)

    routes = [
        Route("/predict-song", guarded("/predict-song", predict_song), methods=["POST"]),
        Route("/predict-songs", guarded("/predict-songs", predict_songs), methods=["POST"]),
        Route("/feedback", guarded("/feedback", feedback), methods=["POST"]),
        Route("/model", guarded("/model", model_info), methods=["GET"]),
        Route("/admin/reload", guarded("/admin/reload", reload), methods=["POST"]),
        Route("/metrics", guarded("/metrics", metrics), methods=["GET"]),
    ]
    recycle = Middleware(ConnectionRecycler, limits=lambda: _recycle_limits(get_runtime))
    return Starlette(routes=routes, middleware=[recycle])


def _recycle_limits(get_runtime: Callable[[], Runtime]) -> tuple[int, float] | None:
    try:
        config = get_runtime().config
    except NotReady:
        return None
    return config.http_max_requests_per_connection, config.http_max_connection_age


def _count(get_runtime: Callable[[], Runtime], endpoint: str, status: int) -> None:
    with contextlib.suppress(Exception):  # metrics never break an answer
        get_runtime().metrics.observe_request(endpoint, status, None)
