"""The HTTP endpoints of DESIGN.md; each one a thin handler over the stores."""

from __future__ import annotations

import html

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.accounts import hash_password, validate_registration
from gateway.errors import ApiError, field_error, invalid
from gateway.forwarding import client_address, client_group
from gateway.messages import BATCH_BODY_LIMIT, batch_msgids
from gateway.shortlinks import link_query
from gateway.web import (
    MoneyJSONResponse,
    api_key_from,
    authenticate,
    endpoint,
    gateway_of,
    ok,
    ok_rendered,
    open_envelope,
    public_base,
    read_json,
    status_ok,
    throttle,
)


@endpoint()
async def send_sms(request: Request) -> Response:
    gw = gateway_of(request)
    account, envelope, plaintext = await open_envelope(request, gw)
    data = await gw.sending.send(account, envelope, plaintext, public_base(request, gw))
    return ok_rendered(data)


@endpoint("status")
async def sms_status(request: Request) -> Response:
    gw = gateway_of(request)
    account = authenticate(gw, api_key_from(request))
    msgid = request.query_params.get("msgid")
    task_id = request.query_params.get("taskId")
    if bool(msgid) == bool(task_id):
        raise invalid([field_error("msgid", "give either msgid or taskId (one of them)")])
    if msgid:
        return status_ok(gw.messages.by_msgid(account.id, msgid))
    return status_ok(gw.messages.by_task(account.id, task_id))  # type: ignore[arg-type]


@endpoint("status")
async def sms_status_batch(request: Request) -> Response:
    """Our extension (docs/protocol.md): up to 1,000 msgids, one rate-limit token."""
    gw = gateway_of(request)
    account = authenticate(gw, api_key_from(request))
    msgids = batch_msgids(await read_json(request, BATCH_BODY_LIMIT))
    found, missing = gw.messages.by_msgids(account.id, msgids)
    return status_ok({"messages": found, "notFound": missing})


@endpoint()
async def get_limits(request: Request) -> Response:
    gw = gateway_of(request)
    account = authenticate(gw, api_key_from(request))
    return ok(gw.limits.get(account.id))


@endpoint()
async def put_limits(request: Request) -> Response:
    gw = gateway_of(request)
    body = await read_json(request, gw.config.max_body_bytes)
    if not isinstance(body, dict):
        raise ApiError("1004", "the body must be a JSON object")
    account = authenticate(gw, body.get("apiKey") or api_key_from(request))
    return ok(gw.limits.update(account.id, body))


@endpoint()
async def balance(request: Request) -> Response:
    gw = gateway_of(request)
    account = authenticate(gw, api_key_from(request))
    return ok(gw.accounts.balance(account.id))


@endpoint()
async def pricing(request: Request) -> Response:
    return ok(gateway_of(request).prices.to_wire())


@endpoint()
async def create_link(request: Request) -> Response:
    gw = gateway_of(request)
    account, envelope, plaintext = await open_envelope(request, gw)
    return ok(await gw.links.create(account, envelope, plaintext, public_base(request, gw)))


@endpoint()
async def list_links(request: Request) -> Response:
    gw = gateway_of(request)
    account = authenticate(gw, api_key_from(request))
    query = link_query(request.query_params)
    links, page = gw.links.list(account.id, public_base(request, gw), query)
    # ``data`` stays the list of links it always was; where the page is sits beside it.
    return MoneyJSONResponse({"code": "0", "message": "Success", "data": links, "page": page})


@endpoint()
async def get_link(request: Request) -> Response:
    gw = gateway_of(request)
    account = authenticate(gw, api_key_from(request))
    return ok(gw.links.get(account.id, request.path_params["code"], public_base(request, gw)))


NOT_FOUND_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Link not found</title></head>"
    "<body><h1>Link not found</h1><p>The short link <code>{code}</code> does not exist."
    "</p></body></html>"
)


@endpoint()
async def follow_link(request: Request) -> Response:
    gw = gateway_of(request)
    code = request.path_params["code"]
    url = gw.links.visit(
        code,
        client_group(client_address(request, gw.proxies)),
        request.headers.get("user-agent", ""),
        public_base(request, gw),
    )
    if url is None:
        return HTMLResponse(NOT_FOUND_PAGE.format(code=html.escape(code)), status_code=404)
    return RedirectResponse(url, status_code=302)


@endpoint()
async def register(request: Request) -> Response:
    gw = gateway_of(request)
    throttle(gw, ("ip", client_group(client_address(request, gw.proxies))))
    email, password = validate_registration(await read_json(request, 64 * 1024))
    # scrypt is slow on purpose: keep it off the event loop.
    password_hash = await run_in_threadpool(hash_password, password)
    return ok(gw.accounts.register(email, password_hash, gw.config.mail_folder))


@endpoint()
async def verify(request: Request) -> Response:
    gw = gateway_of(request)
    throttle(gw, ("ip", client_group(client_address(request, gw.proxies))))
    body = await read_json(request, 64 * 1024)
    if not isinstance(body, dict):
        raise invalid([field_error("body", "must be a JSON object")])
    return ok(gw.accounts.verify(body.get("token")))


async def healthz(request: Request) -> Response:
    return MoneyJSONResponse({"ok": True})


ROUTES = [
    Route("/api/sms/send", send_sms, methods=["POST"]),
    Route("/api/sms/status", sms_status, methods=["GET"]),
    Route("/api/sms/status/batch", sms_status_batch, methods=["POST"]),
    Route("/api/external/accounts/limits", get_limits, methods=["GET"]),
    Route("/api/external/accounts/limits", put_limits, methods=["PUT"]),
    Route("/api/external/accounts/balance", balance, methods=["GET"]),
    Route("/api/pricing", pricing, methods=["GET"]),
    Route("/api/shortlinks", create_link, methods=["POST"]),
    Route("/api/shortlinks", list_links, methods=["GET"]),
    Route("/api/shortlinks/{code}", get_link, methods=["GET"]),
    Route("/api/accounts/register", register, methods=["POST"]),
    Route("/api/accounts/verify", verify, methods=["POST"]),
    Route("/s/{code}", follow_link, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]

# Dispatched straight to their handlers (``gateway.app.GatewayApp``): the envelope calls,
# read off the routing table so that the two cannot differ.
HOT_ROUTES = {
    (method, route.path): route.endpoint
    for route in ROUTES
    if route.endpoint in (send_sms, create_link)
    for method in route.methods or ()
}
