"""Errors answered outside our routes get the documented JSON shape too.

Starlette's routers answer an unknown route (404), a wrong method (405) and their other
refusals as plain text, whichever app produced them (BentoML's root app for unknown paths, our
mounted app for a wrong method). This ASGI middleware, mounted on the whole BentoML service,
replaces any 4xx whose body is not JSON with ``{"error", "detail", "field", "rule"}``
(:func:`service.errors.for_status`), keeping the status and the other headers (``Allow``).
Malformed HTTP that uvicorn refuses before any app runs (its "Invalid HTTP request received."
400) never reaches ASGI and stays plain text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from service.errors import for_status

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_REPLACED = frozenset({b"content-type", b"content-length"})


def _header(message: Message, name: bytes) -> str:
    for key, value in message.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return ""


class JsonErrors:
    """ASGI middleware rewriting non-JSON 4xx answers into the JSON error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        chunks: list[bytes] = []

        async def shaped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if 400 <= status < 500 and "json" not in _header(message, b"content-type"):
                    held.append(message)
                    return
            elif held:
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    await self._send_shaped(scope, held[0], b"".join(chunks), send)
                return
            await send(message)

        await self.app(scope, receive, shaped_send)

    @staticmethod
    async def _send_shaped(scope: Scope, start: Message, text: bytes, send: Send) -> None:
        document = for_status(
            start["status"],
            scope.get("method", ""),
            scope.get("path", ""),
            _header(start, b"allow"),
            text.decode(errors="replace")[:200],
        )
        body = orjson.dumps(document)
        headers = [h for h in start.get("headers", ()) if bytes(h[0]).lower() not in _REPLACED]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
