"""``create_app``: the gateway as a Starlette application (served by uvicorn or embedded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.carrier import Policy
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.routes import ROUTES
from gateway.service import Gateway
from gateway.web import error_response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the API's own shape (4004)."""
    status = getattr(exc, "status_code", 404)
    if status in (404, 405):
        message = f"no such endpoint: {request.method} {request.url.path}"
        return error_response(ApiError("4004", message))
    return error_response(ApiError("5000", "internal error; try again later"))


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

    app = Starlette(
        routes=ROUTES, lifespan=lifespan, exception_handlers={HTTPException: _http_error}
    )
    app.state.gateway = gateway
    return app
