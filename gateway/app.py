"""``create_app``: the gateway as a Starlette application (served by uvicorn or embedded)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.carrier import Policy
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.routes import HOT_ROUTES, ROUTES
from gateway.service import Gateway
from gateway.web import Handler, error_response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the API's own shape (4004)."""
    status = getattr(exc, "status_code", 404)
    if status in (404, 405):
        message = f"no such endpoint: {request.method} {request.url.path}"
        return error_response(ApiError("4004", message))
    return error_response(ApiError("5000", "internal error; try again later"))


class GatewayApp(Starlette):
    """Starlette, with the envelope calls dispatched straight to their handlers.

    ``POST /api/sms/send`` is the call a campaign makes ten thousand times. Its handler
    already answers every outcome itself (``gateway.web.endpoint`` turns any exception into
    its refusal or a 5000), so Starlette's exception middlewares and the router's walk over
    every route add nothing to it but a fifth of the gateway's time per request. Every other
    request takes the usual way.
    """

    def __init__(self, *args: Any, hot: Mapping[tuple[str, str], Handler], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hot = dict(hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.hot.get((scope["method"], scope["path"]))
            if handler is not None:
                scope["app"] = self
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(config: GatewayConfig | None = None, *, policy: Policy | None = None) -> Starlette:
    """A gateway application; its lifespan runs the carrier in the background.

    Hosts that cannot run an ASGI lifespan call ``app.state.gateway.start()`` and
    ``stop()`` themselves, on the event loop that serves the requests.
    """
    gateway = Gateway(config or GatewayConfig(), policy)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = GatewayApp(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
        hot=HOT_ROUTES,
    )
    app.state.gateway = gateway
    return app
