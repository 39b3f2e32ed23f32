"""Keep-alive connection recycling, so HTTP load spreads over every BentoML worker.

BentoML's workers share one listening socket, and each worker's asyncio server accepts every
connection that is pending when it wakes up. A client that opens its keep-alive connections in
a burst (a load balancer's pool, ``hey -c 32``, a batch client with a few threads) therefore
often lands all of them on ONE worker, which then does all the work while the others idle.
Measured here with 2 workers and ``hey``: 100% of the CPU on one worker at 1-row c=32 and at
1,000-row c=4; with connections re-opened, both workers busy and about 1.5x the rows/s.

This ASGI middleware asks HTTP/1.1 clients to reconnect now and then: the response that ends a
connection's ``max_requests``-th request, or its first request after ``max_age`` seconds, carries
``Connection: close`` (the server then closes the connection once the response is sent). The
client opens a new connection, which the kernel hands to a worker that is waiting in ``accept``:
an idle worker wins that race more often than a busy one, so the load evens out within a few
seconds. The close is announced in the response, so a well-behaved client never sends a request
on a connection that is going away (the same mechanism as Envoy's
``max_requests_per_connection`` or nginx's ``keepalive_requests``). Cost: one TCP handshake per
connection per ``max_age`` seconds.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CLOSE_HEADER = (b"connection", b"close")


class ConnectionRecycler:
    """ASGI middleware adding ``Connection: close`` to a connection's last response.

    Args:
        app: The wrapped ASGI app.
        limits: Called per request; returns ``(max_requests, max_age_seconds)``. ``None`` (e.g.
            the service is still starting) or a value <= 0 disables that limit.
        max_tracked: Connections remembered at most (oldest forgotten first); a forgotten
            connection simply starts counting again.
        clock: Monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: Callable[[], tuple[int, float] | None],
        max_tracked: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits
        self.max_tracked = max_tracked
        self.clock = clock
        self.recycled = 0
        self._seen: collections.OrderedDict[Any, list[float]] = collections.OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._should_close(scope):
            self.recycled += 1

            async def send_closing(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [
                        h
                        for h in message.get("headers", ())
                        if bytes(h[0]).lower() != b"connection"
                    ]
                    message = {**message, "headers": [*headers, CLOSE_HEADER]}
                await send(message)

            await self.app(scope, receive, send_closing)
        else:
            await self.app(scope, receive, send)

    def _should_close(self, scope: Scope) -> bool:
        """Count this request on its connection; True when it is the connection's last."""
        client = scope.get("client")
        if scope["type"] != "http" or scope.get("http_version") != "1.1" or not client:
            return False
        limits = self.limits()
        if limits is None:
            return False
        max_requests, max_age = limits
        if max_requests <= 0 and max_age <= 0:
            return False
        key = tuple(client)
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None:
            entry = self._seen[key] = [0, now]
            if len(self._seen) > self.max_tracked:
                self._seen.popitem(last=False)
        entry[0] += 1
        if (0 < max_requests <= entry[0]) or (max_age > 0 and now - entry[1] >= max_age):
            del self._seen[key]
            return True
        return False
