"""HTTP plumbing shared by the routes: responses, refusals, authentication, the envelope."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from gateway.accounts import AccountKey
from gateway.errors import ApiError
from gateway.service import Gateway
from gateway.validation import decode_json
from kedacore import envelope as env
from kedacore.money import dumps

log = logging.getLogger("gateway.http")

Handler = Callable[[Request], Awaitable[Response]]


class MoneyJSONResponse(JSONResponse):
    """A JSON answer with every ``Decimal`` written exactly, in its shortest fixed form.

    DESIGN.md: money is a JSON number in its shortest decimal form (``0.048``, ``0.00001``;
    a float would render ``1e-05``).
    """

    def render(self, content: Any) -> bytes:
        return dumps(content)


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def ok(data: Any) -> JSONResponse:
    """The envelope and account endpoints' success shape."""
    return MoneyJSONResponse({"code": "0", "message": "Success", "data": data})


def ok_rendered(data_json: bytes) -> Response:
    """``ok`` around ``data`` already rendered as JSON (by ``kedacore.money.dumps``)."""
    return Response(
        b'{"code":"0","message":"Success","data":' + data_json + b"}",
        media_type="application/json",
    )


def status_ok(data: Any) -> JSONResponse:
    """The status endpoint keeps the seed's own shape."""
    return MoneyJSONResponse({"success": True, "data": data, "code": 200})


def error_response(err: ApiError, style: str = "keda") -> JSONResponse:
    if style == "status":
        body: dict[str, Any] = {
            "success": False,
            "data": None,
            "code": err.http_status,
            "message": err.message,
        }
    else:
        body = {"code": err.code, "message": err.message, "data": err.data}
    return MoneyJSONResponse(body, status_code=err.http_status, headers=err.headers)


def endpoint(style: str = "keda") -> Callable[[Handler], Handler]:
    """Turn ``ApiError`` into its answer and any other exception into a logged 5000."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as err:
                return error_response(err, style)
            except ClientDisconnect as gone:
                # The client hung up mid-body (a timeout, a dropped mobile link, a slow
                # client giving up): its doing, not a fault of ours. One line, no traceback.
                log.info("%s", hung_up(request, gone))
                return Response(status_code=400)  # nobody is listening any more
            except Exception:
                # The traceback names code, never values: no keys or bodies reach the log.
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return error_response(ApiError("5000", "internal error; try again later"), style)

        return wrapper

    return decorate


class ClientGone(ClientDisconnect):
    """The client hung up after sending ``received`` bytes of its body."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def hung_up(request: Request, gone: ClientDisconnect) -> str:
    """The log line of a client that hung up mid-body (printable, on one line)."""
    declared = request.headers.get("content-length", "")
    if isinstance(gone, ClientGone):
        size = f"{gone.received} of {declared}" if declared.isdigit() else f"{gone.received}"
        got = f"after {size} body bytes"
    else:
        got = "before its body was complete"
    path = "".join(ch if ch.isprintable() else "?" for ch in request.url.path)
    return f"client {client_ip(request)} hung up {got}: {request.method} {path}"


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON (1004 when too large or not JSON), read at most ``limit``.

    Raises:
        ClientGone: the client hung up before its body was complete.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError("1004", f"request body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone(size) from None
    return decode_json(b"".join(chunks), "the request body")


def api_key_from(request: Request) -> str | None:
    """The API key of a non-envelope call: ``X-Api-Key`` header, else ``apiKey`` query."""
    return request.headers.get("x-api-key") or request.query_params.get("apiKey") or None


def throttle(gw: Gateway, key: object) -> None:
    """Take a token from ``key``'s bucket or refuse with 4029 and ``Retry-After``."""
    gw.limiter.admit(key)


def account_of(gw: Gateway, api_key: Any) -> AccountKey:
    """The account of an API key (1001: missing or unknown; never throttled)."""
    if not isinstance(api_key, str) or not api_key:
        raise ApiError("1001", "missing API key")
    account = gw.accounts.by_api_key(api_key)
    if account is None:
        raise ApiError("1001", "unknown API key")
    return account


def authenticate(gw: Gateway, api_key: Any) -> AccountKey:
    """The account of an API key (1001), rate limited per account (4029)."""
    account = account_of(gw, api_key)
    throttle(gw, account.id)
    return account


async def open_envelope(request: Request, gw: Gateway) -> tuple[AccountKey, env.Envelope, bytes]:
    """Shape (1004), key (1001), window (1002), decryption (1005), in order.

    Then, inside the handler's transaction (``EnvelopeGuard.transaction``): the window again
    under the write lock, the replay check (1003, the IV is recorded) and the rate limit
    (4029). Throttling after the IV record means a valid body is spent even when it is
    throttled: it can never be replayed later within the window.
    """
    body = await read_json(request, gw.config.max_body_bytes)
    try:
        envelope = env.parse(body)
        account = account_of(gw, envelope.api_key)
        env.check_window(envelope.timestamp, now=gw.clock(), window=gw.config.window)
        plaintext = env.decrypt(envelope, account.encryption_key)
    except env.EnvelopeError as err:
        raise ApiError(err.code, str(err)) from None
    return account, envelope, plaintext


def public_base(request: Request, gw: Gateway) -> str:
    """The base of short links: ``--public-url``, the listening address, or the request's."""
    return gw.config.listening_base() or str(request.base_url).rstrip("/")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
