"""Reading a request's JSON body, bounded by ``MAX_BODY_BYTES``."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request

from service.errors import ApiError, too_large


async def read_json(request: Request, limit: int) -> Any:
    """Read and decode the body, refusing bodies over ``limit`` bytes before reading them.

    A refused body is left unread here; :mod:`service.bodyguard` drains it (bounded) so that
    the 413 reaches the client. orjson rejects ``NaN``/``Infinity``; the standard library
    accepts them, so a body that only fails for that reason is decoded again and the NaN is
    then reported by field.

    Raises:
        ApiError: 413 over ``limit``, 400 when the body is not JSON.
        starlette.requests.ClientDisconnect: the client hung up before the body was read.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(
                400,
                "invalid_json",
                f"body is not valid JSON: {exc}",
                "body",
                "must be a JSON document",
            ) from None
