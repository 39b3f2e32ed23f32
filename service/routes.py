"""The HTTP API, described once: :data:`ENDPOINTS`, one entry per route, and its handlers.

Each :class:`Endpoint` names its path, method, handler (a named coroutine), the typed body it
takes and answers (:mod:`service.schemas`) and the error statuses it may answer, every error
being a :class:`service.errors.ErrorResponse`. :func:`service.app.build_app` serves this table;
:func:`service.openapi.build_docs_app` documents the same table in BentoML's OpenAPI page.
Nothing a client sends can produce a 500: a bad request is a 4xx naming the field and the rule.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from starlette.requests import Request
from starlette.responses import Response

from reggaeton.schema import ValidationError
from service import schemas
from service.coalesce import Coalescer
from service.errors import ApiError, invalid, json_response
from service.jsonbody import read_json
from service.metrics import render
from service.runtime import Runtime, ScoreJob
from service.validation import validate_rows

OFFLOAD_ROWS = 256
"""Batches at least this big are scored in a worker thread so the event loop keeps accepting."""

Handler = Callable[[Request, Runtime, Coalescer], Awaitable[Response]]


# -- request checks ------------------------------------------------------------------------------
def _data(payload: Any, kind: type) -> Any:
    """The ``data`` member of a prediction body, which must be a ``kind`` (dict or list)."""
    if not isinstance(payload, dict) or "data" not in payload:
        raise ApiError(
            422,
            "validation_error",
            "body must be a JSON object with a 'data' key",
            "data",
            "is required",
        )
    data = payload["data"]
    if not isinstance(data, kind):
        what = "an object (one song)" if kind is dict else "a list of songs"
        raise invalid("data", f"must be {what}")
    return data


def _typed(model: type[BaseModel], payload: Any) -> Any:
    """``payload`` validated by ``model``; the first violation becomes a 422 naming the field.

    The rule is pydantic's message followed by the field's documented description, e.g.
    ``label``: "Input should be less than or equal to 1 (1 = reggaeton, 0 = other)".
    """
    try:
        return model.model_validate(payload)
    except PydanticError as exc:
        error = exc.errors(include_url=False)[0]
        loc = error["loc"]
        if not loc:
            raise invalid("body", "must be a JSON object") from None
        name = str(loc[0])
        info = model.model_fields.get(name)
        about = f" ({info.description})" if info is not None and info.description else ""
        raise invalid(name, f"{error['msg']}{about}") from None


def _validated(songs: list[Any], offset_index: bool = True) -> Any:
    """The validated matrix of ``songs``; a schema violation becomes a 422 naming the field."""
    try:
        return validate_rows(songs, offset_index)
    except ValidationError as err:
        raise invalid(err.location, err.rule) from None


def _authorize(request: Request, token: str | None) -> None:
    """Refuse (401) a request without ``Authorization: Bearer <token>`` when a token is set."""
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong bearer token",
            "Authorization",
            "must be 'Bearer <API_TOKEN>'",
        )


# -- handlers ------------------------------------------------------------------------------------
async def predict_song(request: Request, runtime: Runtime, merge: Coalescer) -> Response:
    """Classify one song.

    `prediction` [1.0] means reggaeton, [0.0] other; `probability` is P(reggaeton); the label
    uses the model's stored threshold. Unknown fields such as `id_new` are ignored. Every
    prediction is logged with its `request_id`.
    """
    started = time.perf_counter()
    song = _data(await read_json(request, runtime.config.max_body_bytes), dict)
    results = await merge.score(ScoreJob(_validated([song], offset_index=False), "http", started))
    return json_response(results[0])


async def predict_songs(request: Request, runtime: Runtime, merge: Coalescer) -> Response:
    """Classify 1 to MAX_BATCH_ROWS songs.

    One result per song, in order, each with its own `request_id` for later feedback.
    """
    started = time.perf_counter()
    songs = _data(await read_json(request, runtime.config.max_body_bytes), list)
    limit = runtime.config.max_batch_rows
    if not songs:
        raise invalid("data", "must hold at least 1 song")
    if len(songs) > limit:
        raise invalid("data", f"must hold at most {limit} songs")
    if len(songs) >= OFFLOAD_ROWS:  # big: validate and score in a worker thread, unmerged

        def work() -> list[dict[str, Any]]:
            return runtime.score(_validated(songs), "batch", started, batch=True)

        results = await anyio.to_thread.run_sync(work)
    else:
        results = await merge.score(ScoreJob(_validated(songs), "batch", started, batch=True))
    body = {"results": results, "count": len(results), "model_version": results[0]["model_version"]}
    return json_response(body)


async def feedback(request: Request, runtime: Runtime, _merge: Coalescer) -> Response:
    """Record the true label of an earlier prediction (last feedback wins).

    Needs `Authorization: Bearer <API_TOKEN>` when API_TOKEN is set.
    """
    _authorize(request, runtime.config.api_token)
    payload = await read_json(request, runtime.config.max_body_bytes)
    body = _typed(schemas.FeedbackRequest, payload)  # the documented model is the validator
    request_id, label = body.request_id, body.label
    if not await runtime.feedback.add(request_id, label):  # see service.feedback
        raise ApiError(
            404,
            "not_found",
            f"no prediction with request_id {request_id!r}",
            "request_id",
            "must be the request_id of a logged prediction",
        )
    return json_response({"request_id": request_id, "label": label, "recorded": True})


async def model_info(_request: Request, runtime: Runtime, _merge: Coalescer) -> Response:
    """The model version this worker serves and how it got there.

    Its metrics, threshold, features, the inference path that serves it and the last reload
    outcome.
    """
    predictor = runtime.current()
    meta = predictor.version.metadata
    body = {
        "model_version": predictor.tag,
        "created_at": meta.get("created_at"),
        "threshold": predictor.threshold,
        "features": meta.get("features"),
        "metrics": meta.get("metrics"),
        "estimator": meta.get("estimator"),
        "inference_path": predictor.path_name,
        "worker": runtime.worker,
        "pinned": runtime.config.model_tag,
        "promoted": runtime.registry.promotions.current(),
        "reload": runtime.status,
    }
    return json_response(body)


async def reload(request: Request, runtime: Runtime, _merge: Coalescer) -> Response:
    """Switch this worker to the version that should serve, if it loads and verifies.

    Re-reads the promotion record (or MODEL_TAG); a version that fails keeps the current one
    serving and answers 409 with the reason. Other workers follow within MODEL_WATCH_INTERVAL.
    Needs the bearer token when API_TOKEN is set.
    """
    _authorize(request, runtime.config.api_token)
    result = await anyio.to_thread.run_sync(runtime.reload, "admin reload")
    return json_response(result, 200 if result["error"] is None else 409)


async def metrics(_request: Request, runtime: Runtime, _merge: Coalescer) -> Response:
    """Prometheus metrics of this worker (:mod:`service.metrics`)."""
    runtime.sync_metrics()
    content, media_type = render()
    return Response(content, media_type=media_type)


# -- the table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """One route of the API: what serves it and what it takes and answers.

    Attributes:
        path: URL path.
        method: HTTP method.
        handler: The coroutine answering it; its docstring is the route's documentation.
        body: Type of the request body (None: no body). A callable of ``MAX_BATCH_ROWS`` when
            the type depends on the limit (:func:`service.schemas.predict_songs_request`).
        answer: Type of the 200 answer; None for a route left out of the OpenAPI document.
        errors: Error statuses the route may answer, each with an ``ErrorResponse`` body.
        other_answers: Statuses answered with another body type, as ``(status, type)`` pairs
            (``/admin/reload`` answers a refused version with 409 and its ``ReloadResult``).
    """

    path: str
    method: str
    handler: Handler
    body: Any = None
    answer: Any = None
    errors: tuple[int, ...] = ()
    other_answers: tuple[tuple[int, Any], ...] = ()

    def body_type(self, max_batch_rows: int) -> Any:
        """The request body type for a service accepting ``max_batch_rows`` songs."""
        return (
            self.body
            if self.body is None or isinstance(self.body, type)
            else self.body(max_batch_rows)
        )


PREDICT_ERRORS = (400, 413, 422, 503)
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        path="/predict-song",
        method="POST",
        handler=predict_song,
        body=schemas.PredictSongRequest,
        answer=schemas.Prediction,
        errors=PREDICT_ERRORS,
    ),
    Endpoint(
        path="/predict-songs",
        method="POST",
        handler=predict_songs,
        body=schemas.predict_songs_request,
        answer=schemas.PredictSongsResponse,
        errors=PREDICT_ERRORS,
    ),
    Endpoint(
        path="/feedback",
        method="POST",
        handler=feedback,
        body=schemas.FeedbackRequest,
        answer=schemas.FeedbackResponse,
        errors=(400, 401, 404, 413, 422, 429, 503),
    ),
    Endpoint(
        path="/model", method="GET", handler=model_info, answer=schemas.ModelInfo, errors=(503,)
    ),
    Endpoint(
        path="/admin/reload",
        method="POST",
        handler=reload,
        answer=schemas.ReloadResult,
        errors=(401, 503),
        other_answers=((409, schemas.ReloadResult),),
    ),
    Endpoint(path="/metrics", method="GET", handler=metrics),  # BentoML's document lists it
)
"""Every route of the API (``/livez`` and ``/readyz`` are BentoML's)."""
