"""The one JSON shape of every HTTP error: ``{"error", "detail", "field", "rule"}``.

:class:`ApiError` is what the routes raise; :func:`error_body` is the same shape for answers
built outside them (unknown routes, wrong methods, a client that hung up), so a client parses
every error the same way whichever layer produced it.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

CLIENT_CLOSED = 499
"""Status counted for a client that hung up before its request was read (nginx's convention)."""


def error_body(error: str, detail: str, field: str = "", rule: str = "") -> dict[str, str]:
    """The error document; ``rule`` defaults to ``detail``."""
    return {"error": error, "detail": detail, "field": field, "rule": rule or detail}


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """An ``application/json`` response serialised with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


class ApiError(Exception):
    """A client error: status, machine-readable code, field and rule."""

    def __init__(self, status: int, error: str, detail: str, field: str = "", rule: str = ""):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field, self.rule = (
            status, error, detail, field, rule or detail)

    def body(self) -> dict[str, str]:
        """The JSON document of this error."""
        return error_body(self.error, self.detail, self.field, self.rule)

    def response(self) -> Response:
        """This error as a JSON response."""
        return json_response(self.body(), self.status)


def too_large(limit: int) -> ApiError:
    """The 413 of a body over ``limit`` bytes."""
    return ApiError(413, "body_too_large", f"request body exceeds {limit} bytes", "body",
                    f"must be at most {limit} bytes")


def for_status(status: int, method: str, path: str, allow: str = "",
               text: str = "") -> dict[str, str]:
    """The error document of a 4xx produced by routing or the HTTP layer, not by a route.

    Args:
        status: The HTTP status (404, 405, 400 or another 4xx).
        method: Request method.
        path: Request path.
        allow: The ``Allow`` header of a 405.
        text: The plain-text body that layer produced (kept as the detail of a 400).
    """
    if status == 404:
        return error_body("not_found", f"no route {path}", "path",
                          "must be a documented route (see /docs.json)")
    if status == 405:
        return error_body("method_not_allowed", f"{method} is not allowed on {path}", "method",
                          f"must be one of: {allow}" if allow else "must be a documented method")
    if status == 400:
        return error_body("bad_request", text or "malformed request", "request",
                          "must be a well-formed HTTP/1.1 request")
    return error_body("client_error", text or f"HTTP {status}", "request",
                      "must be a valid request")
