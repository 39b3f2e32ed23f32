"""The OpenAPI description of :data:`service.routes.ENDPOINTS`, for BentoML's documentation page.

BentoML's OpenAPI page (``/docs.json``, shown at ``/``) documents ``@bentoml.api`` methods and
the routes of mounted *FastAPI* apps only. Our routes are served by a plain Starlette app
(FastAPI's request machinery costs more than the prediction), so this module turns the same
endpoint table into a FastAPI app that is mounted *after* the Starlette app: BentoML reads its
schema, but requests never reach it because the Starlette app matches every path first. Each
documented route takes the endpoint's typed body and answers its typed result or the one error
shape, and its text is the handler's docstring, so nothing is written twice.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from service.errors import ErrorResponse
from service.routes import ENDPOINTS, Endpoint

ERROR_TEXT = {
    400: "Invalid JSON",
    401: "Missing or wrong bearer token (when API_TOKEN is set)",
    404: "Unknown request_id",
    409: "The version that should serve does not load or verify (the current one keeps serving)",
    413: "Body larger than MAX_BODY_BYTES",
    422: "A field breaks the schema (the field and the rule are named)",
    429: "Too many feedback calls in flight on this worker",
    503: "No model loaded yet, or a temporary failure",
}
"""What each error status means, for the document."""


def _documented(endpoint: Endpoint, body: Any) -> Callable[..., None]:
    """A never-called function whose signature carries ``body``: FastAPI documents a request
    body from the endpoint's parameters."""

    async def route(*_: Any, **__: Any) -> None:  # pragma: no cover - never routed to
        raise RuntimeError("documentation only: the Starlette app serves this path")

    params = (
        []
        if body is None
        else [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=body)]
    )
    route.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    route.__name__ = endpoint.handler.__name__
    route.__doc__ = endpoint.handler.__doc__
    return route


def build_docs_app(max_batch_rows: int) -> FastAPI:
    """A FastAPI app that only carries the OpenAPI description of the served routes.

    Args:
        max_batch_rows: The service's ``MAX_BATCH_ROWS`` (stated by the batch body's schema).
    """
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for endpoint in ENDPOINTS:
        if endpoint.answer is None:
            continue
        doc = inspect.getdoc(endpoint.handler) or ""
        responses: dict[int | str, dict[str, Any]] = {
            status: {"model": ErrorResponse, "description": ERROR_TEXT[status]}
            for status in endpoint.errors
        }
        for status, answer in endpoint.other_answers:
            responses[status] = {"model": answer, "description": ERROR_TEXT[status]}
        app.add_api_route(
            endpoint.path,
            _documented(endpoint, endpoint.body_type(max_batch_rows)),
            methods=[endpoint.method],
            response_model=endpoint.answer,
            responses=responses,
            tags=["Service APIs"],
            summary=doc.split("\n", 1)[0].rstrip(".") or HTTPStatus.OK.phrase,
        )
    return app
