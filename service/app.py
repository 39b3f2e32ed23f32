"""The HTTP API served: :data:`service.routes.ENDPOINTS` as a small Starlette app.

Mounted into the BentoML service with ``@bentoml.asgi_app``. Why a plain Starlette app rather
than ``@bentoml.api`` methods or FastAPI routing: their per-request layers (pydantic models,
serde, dependency solving) cost more than the model; a plain route with orjson and the
vectorised schema check keeps the same strictness at a fraction of the cost. Every route is
wrapped by :class:`GuardedRoute`: a client error is its 4xx, an unexpected failure a 503 (logged,
never a traceback to the client), and every answer is counted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from service.coalesce import Coalescer
from service.errors import CLIENT_CLOSED, ApiError
from service.recycle import ConnectionRecycler
from service.routes import ENDPOINTS, Endpoint
from service.runtime import NotReady, Runtime

logger = logging.getLogger("reggaeton.service")


# -- serving -------------------------------------------------------------------------------------
class GuardedRoute:
    """The Starlette endpoint of one :class:`Endpoint`: errors to JSON, metrics per request.

    Args:
        endpoint: The route it serves.
        get_runtime: Returns the worker's runtime (raises :class:`NotReady` before startup).
        merge: The app's request merger, handed to the handler.
    """

    def __init__(
        self, endpoint: Endpoint, get_runtime: Callable[[], Runtime], merge: Coalescer
    ) -> None:
        self.path, self.handler = endpoint.path, endpoint.handler
        self.get_runtime, self.merge = get_runtime, merge

    async def answer(self, request: Request) -> Response:
        """Answer one request; never raises."""
        started = time.perf_counter()
        try:
            runtime = self.get_runtime()
            response = await self.handler(request, runtime, self.merge)
        except ApiError as err:
            return self._refused(err)
        except ClientDisconnect:  # nobody to answer; not a server error either
            logger.info("%s: client closed the connection before sending its body", self.path)
            text = "the client closed the connection mid-request"
            return self._refused(ApiError(CLIENT_CLOSED, "client_closed_request", text))
        except NotReady as exc:
            return self._refused(ApiError(503, "not_ready", str(exc)))
        except Exception:  # noqa: BLE001 - log it, answer 503, never leak a traceback
            logger.exception("%s failed", self.path)
            return self._refused(ApiError(503, "unavailable", "temporary server error, retry"))
        runtime.metrics.observe_request(
            self.path, response.status_code, time.perf_counter() - started
        )
        return response

    def _refused(self, err: ApiError) -> Response:
        with contextlib.suppress(Exception):  # metrics never break an answer
            self.get_runtime().metrics.observe_request(self.path, err.status, None)
        return err.response()


def build_app(get_runtime: Callable[[], Runtime]) -> Starlette:
    """The Starlette app serving :data:`ENDPOINTS`, behind keep-alive connection recycling.

    Args:
        get_runtime: Returns the worker's runtime (set at startup; raises before).
    """
    merge = Coalescer(get_runtime)
    routes = [
        Route(e.path, GuardedRoute(e, get_runtime, merge).answer, methods=[e.method])
        for e in ENDPOINTS
    ]
    recycle = Middleware(ConnectionRecycler, limits=lambda: _recycle_limits(get_runtime))
    return Starlette(routes=routes, middleware=[recycle])


def _recycle_limits(get_runtime: Callable[[], Runtime]) -> tuple[int, float] | None:
    try:
        config = get_runtime().config
    except NotReady:
        return None
    return config.http_max_requests_per_connection, config.http_max_connection_age
