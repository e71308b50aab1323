"""The callback receiver: ``POST /hooks/keda/{token}`` as Starlette routes, writing to the ledger.

Checks, in this order, each refusal a JSON answer that changes nothing:

1. the token in the path (401), compared in constant time;
2. the method (405) and the body size (413), read with a limit whatever Content-Length says;
3. the signature (401), when the receiver has a signing key: ``X-Keda-Signature`` is the
   lower-case hex HMAC-SHA256, keyed with the 32 raw bytes of the account's encryption key,
   of ``"{X-Keda-Timestamp}.{body}"``; the timestamp must be within ``tolerance`` seconds of
   this server's clock. With a key, a request without a signature is refused too (unless
   ``require_signature=False``): whoever knows the URL must not be able to forge events.
   Without a key, the signature headers are not checked (the token is the only secret);
4. the JSON and its fields (400), strictly (``kedacore.ledger.state.parse_event``).

Accepted events are written in groups: concurrent requests share one transaction, and each is
answered only after that transaction commits, so a 200 always means "in the ledger". A
duplicate answers 200 with outcome ``duplicate``; an event for a msgid the ledger has not
recorded yet is kept and answered 200 with outcome ``unknown`` (it is applied when the send is
recorded: a fast callback can overtake the send's own response).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kedacore.ledger import CallbackEvent, EventError, Ledger, Outcome, parse_event

# The signature functions live in kedacore.signing (no Starlette, no ledger: the gateway
# signs with them); re-exported here for callers of the receiver's module.
from kedacore.signing import (
    SIGNING_KEY_BYTES,
    TOLERANCE_SECONDS,
    sign_event,
    signature_problem,
    signing_key_bytes,
    verify_signature,
)

__all__ = [
    "MAX_BODY",
    "MAX_GROUP",
    "SIGNING_KEY_BYTES",
    "TOLERANCE_SECONDS",
    "GroupWriter",
    "sign_event",
    "signing_key_bytes",
    "verify_signature",
    "webhook_routes",
]

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_GROUP = 1000  # events per ledger transaction


@dataclass
class _Pending:
    queue: list[tuple[CallbackEvent, asyncio.Future[Outcome]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class GroupWriter:
    """Applies events from concurrent requests in shared transactions (group commit)."""

    def __init__(self, ledger: Ledger, *, max_group: int = MAX_GROUP) -> None:
        self.ledger = ledger
        self.max_group = max_group
        # One queue per event loop: futures must be completed on the loop that awaits them.
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, event: CallbackEvent) -> Outcome:
        """Apply one event; returns once the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        pending = self._pending.setdefault(loop, _Pending())
        future: asyncio.Future[Outcome] = loop.create_future()
        pending.queue.append((event, future))
        if pending.task is None or pending.task.done():
            pending.task = loop.create_task(self._drain(pending))
        # shield: a client that hangs up must not cancel the write others are waiting on
        return await asyncio.shield(future)

    async def _drain(self, pending: _Pending) -> None:
        while pending.queue:
            group = pending.queue[: self.max_group]
            del pending.queue[: self.max_group]
            try:
                outcomes = await asyncio.to_thread(self.ledger.apply_events, [e for e, _ in group])
            except Exception as exc:  # every waiter learns of it and answers 503
                log.exception("writing %d callback events to the ledger failed", len(group))
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)


def _refuse(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error, "message": message, **extra}, status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def webhook_routes(
    ledger: Ledger,
    *,
    token: str,
    signing_key: bytes | str | None = None,
    max_body: int = MAX_BODY,
    require_signature: bool = True,
    tolerance: int = TOLERANCE_SECONDS,
    path: str = "/hooks/keda/{token}",
) -> list[Route]:
    """The receiver's routes, to mount in the console's app (or any Starlette app).

    Args:
        ledger: where accepted events go.
        token: the secret path part (``KEDA_WEBHOOK_TOKEN``).
        signing_key: the account's encryption key (32 raw bytes, or its base64 text); when
            given, every event must be signed with it.
        max_body: the largest body accepted, in bytes.
        require_signature: with a signing key, refuse unsigned events (the default).
        tolerance: how far X-Keda-Timestamp may be from this server's clock, in seconds.
    """
    if not token:
        raise ValueError(f"the webhook token must not be empty, got {token!r}")
    expected_token = token.encode("utf-8")
    key = signing_key_bytes(signing_key) if signing_key is not None else None
    writer = GroupWriter(ledger)

    async def receive(request: Request) -> JSONResponse:
        """Check, parse and record one callback event."""
        given = str(request.path_params.get("token", "")).encode("utf-8")
        if not hmac.compare_digest(given, expected_token):
            return _refuse(401, "unauthorized", "Unknown webhook token: check the callback URL.")
        if request.method != "POST":
            response = _refuse(405, "method_not_allowed", "Send callbacks with POST.")
            response.headers["Allow"] = "POST"
            return response
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            if not length.isdigit():
                return _refuse(400, "bad_request", "Content-Length is not a number.")
            return _refuse(413, "too_large", f"The body is over {max_body} bytes.")
        try:
            body = await _read_body(request, max_body)
        except ClientDisconnect:
            return _refuse(400, "bad_request", "The body ended early.")
        if body is None:
            return _refuse(413, "too_large", f"The body is over {max_body} bytes.")
        stamp = request.headers.get("x-keda-timestamp")
        signature = request.headers.get("x-keda-signature")
        if key is not None and (signature is not None or require_signature):
            problem = signature_problem(body, stamp, signature, key, tolerance=tolerance, now=None)
            if problem:
                return _refuse(401, "bad_signature", problem + ".")
        try:
            text = body.decode("utf-8")
            data = json.loads(text, parse_constant=_no_constants)
        except ValueError as exc:
            return _refuse(400, "invalid_json", f"The body is not valid UTF-8 JSON: {exc}.")
        except RecursionError:  # "[[[[…" nested deeper than the parser's stack allows
            return _refuse(400, "invalid_json", "The body is not valid JSON: nested too deeply.")
        emitted = None
        if stamp and stamp.isascii() and stamp.isdigit() and len(stamp) <= 12:
            emitted = datetime.fromtimestamp(int(stamp), UTC)
        try:
            event = parse_event(
                data,
                event_id=request.headers.get("x-keda-event-id"),
                emitted_at=emitted,
                payload=text,
            )
        except EventError as exc:
            errors = [{"field": f, "message": m} for f, m in exc.errors]
            return _refuse(400, "invalid_event", f"Invalid callback event: {exc}.", errors=errors)
        try:
            outcome = await writer.submit(event)
        except Exception:
            return _refuse(
                503, "ledger_unavailable", "The ledger could not store the event; retry later."
            )
        return JSONResponse(
            {
                "ok": True,
                "outcome": str(outcome),
                "msgid": event.msgid,
                "eventId": event.dedup_key,
                "message": _MESSAGES[outcome],
            }
        )

    # Every method reaches the handler, so that even a wrong one gets a JSON answer.
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [Route(path, receive, methods=methods, name="keda_webhook")]


_MESSAGES = {
    Outcome.APPLIED: "Recorded.",
    Outcome.STALE: "Recorded; the message already has a later status.",
    Outcome.DUPLICATE: "Already received; nothing changed.",
    Outcome.UNKNOWN: "Kept; the message is not in the ledger yet and will be updated when it is.",
}
