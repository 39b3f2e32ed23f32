"""The one JSON shape of every HTTP error: ``{"error", "detail", "field", "rule"}``.

:class:`ErrorResponse` is the typed definition: :func:`error_body` builds it, and the OpenAPI
document (:mod:`service.openapi`) declares it for every 4xx/5xx, so the answer and its
documentation cannot disagree. :class:`ApiError` is what the routes raise; :func:`for_status`
gives the same shape to answers built outside them (unknown routes, wrong methods).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ConfigDict, with_config
from starlette.responses import Response
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

CLIENT_CLOSED = 499
"""Status counted for a client that hung up before its request was read (nginx's convention)."""


@with_config(
    ConfigDict(
        json_schema_extra={
            "example": {
                "error": "validation_error",
                "detail": "data.tempo: must be <= 300",
                "field": "data.tempo",
                "rule": "must be <= 300",
            }
        }
    )
)
class ErrorResponse(TypedDict):
    """Every 4xx/5xx answer: what went wrong, which field, which rule."""

    error: str
    detail: str
    field: str
    rule: str


def error_body(error: str, detail: str, field: str = "", rule: str = "") -> ErrorResponse:
    """The error document; ``rule`` defaults to ``detail``."""
    return ErrorResponse(error=error, detail=detail, field=field, rule=rule or detail)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An ``application/json`` response serialised with orjson."""
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class ApiError(Exception):
    """A client error: status, machine-readable code, field and rule."""

    def __init__(self, status: int, error: str, detail: str, field: str = "", rule: str = ""):
        super().__init__(detail)
        self.status = status
        self.document = error_body(error, detail, field, rule)

    def response(self) -> Response:
        """This error as a JSON response."""
        return json_response(self.document, self.status)


def invalid(field: str, rule: str) -> ApiError:
    """The 422 of a field that breaks the request schema (``detail`` is ``field: rule``)."""
    return ApiError(422, "validation_error", f"{field}: {rule}", field, rule)


def too_large(limit: int) -> ApiError:
    """The 413 of a body over ``limit`` bytes."""
    return ApiError(
        413,
        "body_too_large",
        f"request body exceeds {limit} bytes",
        "body",
        f"must be at most {limit} bytes",
    )


def for_status(
    status: int, method: str, path: str, allow: str = "", text: str = ""
) -> ErrorResponse:
    """The error document of a 4xx produced by routing or the HTTP layer, not by a route.

    Args:
        status: The HTTP status (404, 405, 400 or another 4xx).
        method: Request method.
        path: Request path.
        allow: The ``Allow`` header of a 405.
        text: The plain-text body that layer produced (kept as the detail of a 400).
    """
    if status == 404:
        return error_body(
            "not_found", f"no route {path}", "path", "must be a documented route (see /docs.json)"
        )
    if status == 405:
        rule = f"must be one of: {allow}" if allow else "must be a documented method"
        return error_body(
            "method_not_allowed", f"{method} is not allowed on {path}", "method", rule
        )
    if status == 400:
        return error_body(
            "bad_request",
            text or "malformed request",
            "request",
            "must be a well-formed HTTP/1.1 request",
        )
    return error_body(
        "client_error", text or f"HTTP {status}", "request", "must be a valid request"
    )
