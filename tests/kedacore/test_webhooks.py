"""The callback receiver over ASGI: every refusal leaves the ledger as it was."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.webhooks import sign_event, signing_key_bytes, verify_signature, webhook_routes

pytestmark = pytest.mark.anyio

TOKEN = "t0ken-abc"
KEY = bytes(range(32))
MSGIDS = [f"msg_{i:012x}" for i in range(3)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url()) as led:
        messages = tuple(SentMessage(m, f"+1206555000{i}") for i, m in enumerate(MSGIDS))
        led.record_send(
            SendResult("20240101-0001", "ok", Decimal("0.15"), "USD", 3, messages),
            country="US",
            sender="KedaSMS",
            content="hi",
        )
        yield led


def client_for(ledger: Ledger, **options: Any) -> httpx.AsyncClient:
    app = Starlette(routes=webhook_routes(ledger, token=TOKEN, **options))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


@pytest.fixture
async def client(ledger: Ledger) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(ledger, signing_key=KEY) as c:
        yield c


def body(msgid: str = MSGIDS[0], status: str = "DELIVERED", **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "msgid": msgid,
        "status": status,
        "recipient": "+12065550000",
        "sender": "KedaSMS",
        "sent_time": "2024-01-01T12:00:00Z",
        "delivered_time": "2024-01-01T12:00:05Z" if status == "DELIVERED" else None,
        "cost": "0.05",
    }
    if status == "CLICKED":
        b = {
            "msgid": msgid,
            "status": status,
            "recipient": "+12065550000",
            "url": "https://shop.example/",
            "shortUrl": "http://127.0.0.1:8787/s/abc",
            "clicked_time": "2024-01-01T12:01:00Z",
        }
    return b | extra


def signed(
    raw: bytes, event_id: str | None = "evt-1", key: bytes = KEY, at: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    headers = {
        "X-Keda-Timestamp": stamp,
        "X-Keda-Signature": sign_event(raw, stamp, key),
        "Content-Type": "application/json",
    }
    if event_id is not None:
        headers["X-Keda-Event-Id"] = event_id
    return headers


async def post(
    client: httpx.AsyncClient, payload: Any, event_id: str | None = "evt-1", **kw: Any
) -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post(f"/hooks/keda/{TOKEN}", content=raw, headers=signed(raw, event_id))


def snapshot(ledger: Ledger) -> tuple[list[Any], list[Any]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(s.messages).order_by(s.messages.c.msgid)).all()
        events = conn.execute(select(s.events).order_by(s.events.c.id)).all()
    return [tuple(r) for r in rows], [tuple(e) for e in events]


def refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["ok"] is False and answer["error"] == error and answer["message"]


def test_sign_event_is_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    raw = b'{"msgid":"msg_0123456789ab"}'
    expected = hmac.new(KEY, b"1700000000." + raw, hashlib.sha256).hexdigest()
    assert sign_event(raw, 1700000000, KEY) == expected == sign_event(raw, "1700000000", KEY)
    assert verify_signature(raw, 1700000000, expected, KEY, now=1700000100)
    assert not verify_signature(raw, 1700000000, expected, KEY, now=1700000400)
    assert verify_signature(raw, 1700000000, expected, KEY, tolerance=None)
    assert not verify_signature(raw + b" ", 1700000000, expected, KEY, tolerance=None)
    assert not verify_signature(raw, 1700000000, expected.upper(), KEY, tolerance=None)
    assert not verify_signature(raw, "17e8", expected, KEY, tolerance=None)
    assert not verify_signature(raw, None, expected, KEY)


def test_signing_lives_apart_from_the_receiver_and_the_gateway_does_not_load_it() -> None:
    """The gateway signs with kedacore.signing: neither Starlette routes nor the ledger."""
    import subprocess
    import sys

    from kedacore import signing, webhooks

    assert webhooks.sign_event is signing.sign_event
    assert webhooks.verify_signature is signing.verify_signature
    assert webhooks.signing_key_bytes is signing.signing_key_bytes
    probe = (
        "import sys, kedacore.signing\n"
        "assert 'starlette' not in sys.modules and 'kedacore.ledger' not in sys.modules\n"
        "from gateway import create_app\n"
        "import gateway.delivery\n"
        "loaded = [m for m in ('kedacore.webhooks', 'kedacore.ledger') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_signing_key_from_base64_and_checks() -> None:
    assert signing_key_bytes(base64.b64encode(KEY).decode()) == KEY
    with pytest.raises(ValueError, match="32 bytes"):
        signing_key_bytes(b"short")
    with pytest.raises(ValueError, match="base64"):
        signing_key_bytes("not base64!")
    with pytest.raises(ValueError, match="token"):
        webhook_routes(None, token="")  # type: ignore[arg-type]


async def test_an_event_is_recorded(client: httpx.AsyncClient, ledger: Ledger) -> None:
    response = await post(client, body())
    assert response.status_code == 200
    assert response.json() | {"message": ""} == {
        "ok": True,
        "outcome": "applied",
        "msgid": MSGIDS[0],
        "eventId": "evt-1",
        "message": "",
    }
    m = ledger.message(MSGIDS[0])
    assert m is not None and (m.status, m.cost, m.source) == (
        "DELIVERED",
        Decimal("0.05"),
        "callback",
    )
    [stored] = ledger.message_events(MSGIDS[0])
    assert stored.payload == json.dumps(body())  # the exact body


async def test_wrong_token(client: httpx.AsyncClient, ledger: Ledger) -> None:
    before = snapshot(ledger)
    raw = json.dumps(body()).encode()
    for token in ("wrong", TOKEN + "x", TOKEN[:-1], "t%C3%B6ken"):
        refused(
            await client.post(f"/hooks/keda/{token}", content=raw, headers=signed(raw)),
            401,
            "unauthorized",
        )
    assert snapshot(ledger) == before


async def test_only_post(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/hooks/keda/{TOKEN}")
    refused(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_bad_missing_or_stale_signatures(client: httpx.AsyncClient, ledger: Ledger) -> None:
    before = snapshot(ledger)
    raw = json.dumps(body()).encode()
    url = f"/hooks/keda/{TOKEN}"
    cases = [
        signed(raw, key=bytes(32)),  # another account's key
        signed(raw + b" ") | {"X-Keda-Event-Id": "evt-1"},  # signed another body
        {k: v for k, v in signed(raw).items() if k != "X-Keda-Signature"},  # unsigned
        {k: v for k, v in signed(raw).items() if k != "X-Keda-Timestamp"},
        signed(raw, at=int(time.time()) - 3600),  # replayed an hour later
        signed(raw, at=int(time.time()) + 3600),
        signed(raw) | {"X-Keda-Timestamp": "soon"},
    ]
    for headers in cases:
        refused(await client.post(url, content=raw, headers=headers), 401, "bad_signature")
    assert snapshot(ledger) == before
    assert (await client.post(url, content=raw, headers=signed(raw))).status_code == 200


async def test_without_a_key_the_token_is_enough(ledger: Ledger) -> None:
    async with client_for(ledger) as c:
        raw = json.dumps(body()).encode()
        response = await c.post(
            f"/hooks/keda/{TOKEN}", content=raw, headers={"X-Keda-Signature": "00"}
        )
        assert response.status_code == 200
    async with client_for(ledger, signing_key=KEY, require_signature=False) as c:
        raw = json.dumps(body(MSGIDS[1])).encode()
        assert (await c.post(f"/hooks/keda/{TOKEN}", content=raw)).status_code == 200
        bad = {"X-Keda-Timestamp": str(int(time.time())), "X-Keda-Signature": "00"}
        refused(
            await c.post(f"/hooks/keda/{TOKEN}", content=raw, headers=bad), 401, "bad_signature"
        )


async def test_oversize_bodies(client: httpx.AsyncClient, ledger: Ledger) -> None:
    before = snapshot(ledger)
    big = json.dumps(body(padding="x" * 70_000)).encode()
    refused(await post(client, big), 413, "too_large")

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    request = client.build_request("POST", f"/hooks/keda/{TOKEN}", content=chunked())
    assert "content-length" not in request.headers
    refused(await client.send(request), 413, "too_large")
    # a Content-Length that understates the body does not get it through either
    lying = signed(big) | {"Content-Length": "10"}
    refused(await client.post(f"/hooks/keda/{TOKEN}", content=big, headers=lying), 413, "too_large")
    assert snapshot(ledger) == before


async def test_body_at_the_limit_is_read(ledger: Ledger) -> None:
    async with client_for(ledger, max_body=1024) as c:
        raw = json.dumps(body()).encode()
        raw += b" " * (1024 - len(raw))
        assert (await c.post(f"/hooks/keda/{TOKEN}", content=raw)).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"msgid": NaN}', b"\xff\xfe{}", b'{"a": 1} {"b": 2}',
     b"[" * 60000, b'{"a":' * 12000],
    ids=["empty", "open-brace", "not-json", "NaN", "not-utf8", "two-values", "deep-list",
         "deep-object"],
)  # fmt: skip
async def test_malformed_json(client: httpx.AsyncClient, ledger: Ledger, raw: bytes) -> None:
    before = snapshot(ledger)
    refused(await post(client, raw), 400, "invalid_json")
    assert snapshot(ledger) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        (body(msgid="msg_XYZ"), "msgid"),
        (body(msgid="abc_0123456789ab"), "msgid"),
        (body(status="READ"), "status"),
        (body(cost=0.05), "cost"),
        (body(cost="five"), "cost"),
        (body(delivered_time="yesterday"), "delivered_time"),
        (body(sent_time="2024-01-01T12:00:00+02:00"), "sent_time"),
        (body(recipient=None), "recipient"),
        (body(status="CLICKED", clicked_time=None), "clicked_time"),
    ],
)
async def test_bad_fields(
    client: httpx.AsyncClient, ledger: Ledger, payload: Any, field: str
) -> None:
    before = snapshot(ledger)
    response = await post(client, payload)
    refused(response, 400, "invalid_event")
    assert field in [e["field"] for e in response.json()["errors"]]
    assert snapshot(ledger) == before


async def test_bad_event_id(client: httpx.AsyncClient, ledger: Ledger) -> None:
    before = snapshot(ledger)
    refused(await post(client, body(), event_id="has spaces"), 400, "invalid_event")
    assert snapshot(ledger) == before


async def test_duplicate_event(client: httpx.AsyncClient, ledger: Ledger) -> None:
    assert (await post(client, body(status="CLICKED"), "click-1")).json()["outcome"] == "applied"
    after_first = snapshot(ledger)
    again = await post(client, body(status="CLICKED"), "click-1")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert snapshot(ledger) == after_first
    m = ledger.message(MSGIDS[0])
    assert m is not None and m.clicks == 1


async def test_out_of_order_never_moves_back(client: httpx.AsyncClient, ledger: Ledger) -> None:
    assert (await post(client, body(status="DELIVERED"), "e-2")).json()["outcome"] == "applied"
    late = await post(client, body(status="SENT"), "e-1")
    assert late.status_code == 200 and late.json()["outcome"] == "stale"
    failed = await post(client, body(status="FAILED", cost="0", sent_time=None), "e-3")
    assert failed.json()["outcome"] == "stale"
    m = ledger.message(MSGIDS[0])
    assert m is not None and (m.status, m.cost) == ("DELIVERED", Decimal("0.05"))


async def test_clicks_are_counted(client: httpx.AsyncClient, ledger: Ledger) -> None:
    for i in range(3):
        click = body(status="CLICKED", clicked_time=f"2024-01-01T12:0{i}:00Z")
        assert (await post(client, click, f"click-{i}")).json()["outcome"] == "applied"
    m = ledger.message(MSGIDS[0])
    assert m is not None and m.clicks == 3 and m.status == "QUEUED"


async def test_a_captured_callback_replayed_under_fresh_ids_has_no_second_effect(
    client: httpx.AsyncClient, ledger: Ledger
) -> None:
    """The event id is not signed: a replay in the window under new ids (or none) is a duplicate."""
    raw = json.dumps(body(status="CLICKED")).encode()
    first = await client.post(f"/hooks/keda/{TOKEN}", content=raw, headers=signed(raw, "evt-a"))
    assert first.json()["outcome"] == "applied"
    before = snapshot(ledger)
    for event_id in ("evt-b", "evt-c", None, "x" * 100):
        replay = await client.post(
            f"/hooks/keda/{TOKEN}", content=raw, headers=signed(raw, event_id)
        )
        assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
    assert snapshot(ledger) == before
    m = ledger.message(MSGIDS[0])
    assert m is not None and m.clicks == 1
    # Status events likewise: a DELIVERED replayed under another id changes nothing.
    delivered = json.dumps(body()).encode()
    await client.post(f"/hooks/keda/{TOKEN}", content=delivered, headers=signed(delivered, "d-1"))
    after = snapshot(ledger)
    again = await client.post(
        f"/hooks/keda/{TOKEN}", content=delivered, headers=signed(delivered, "d-2")
    )
    assert again.json()["outcome"] == "duplicate" and snapshot(ledger) == after


async def test_unknown_msgid_is_kept(client: httpx.AsyncClient, ledger: Ledger) -> None:
    response = await post(client, body(msgid="msg_ffffffffffff"), "u-1")
    assert response.status_code == 200 and response.json()["outcome"] == "unknown"
    assert [e.event_id for e in ledger.unknown_events()] == ["u-1"]


async def test_without_event_id_the_body_is_the_key(client: httpx.AsyncClient) -> None:
    first = await post(client, body(), event_id=None)
    assert first.json()["eventId"] == f"{MSGIDS[0]}:DELIVERED:2024-01-01T12:00:05Z"
    assert (await post(client, body(), event_id=None)).json()["outcome"] == "duplicate"


async def test_concurrent_events_share_transactions(
    client: httpx.AsyncClient, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = ledger.apply_events

    def counting(events: Any) -> Any:
        events = list(events)
        calls.append(len(events))
        return original(events)

    monkeypatch.setattr(ledger, "apply_events", counting)
    clicks = [
        post(
            client,
            # each click its own time: the same body twice is one event, whatever its id
            body(
                MSGIDS[i % 3], "CLICKED", clicked_time=f"2024-01-01T12:{i // 60:02d}:{i % 60:02d}Z"
            ),
            f"c-{i}",
        )
        for i in range(150)
    ]
    responses = await asyncio.gather(*clicks)
    assert {r.status_code for r in responses} == {200}
    assert sum(calls) == 150 and len(calls) < 150
    assert sum(m.clicks for m in ledger.messages_many(MSGIDS)) == 150


async def test_a_ledger_failure_is_a_503(
    client: httpx.AsyncClient, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(events: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ledger, "apply_events", broken)
    refused(await post(client, body()), 503, "ledger_unavailable")


async def test_an_early_event_is_applied_when_its_send_is_recorded(
    client: httpx.AsyncClient, ledger: Ledger
) -> None:
    early = "msg_eeeeeeeeeeee"
    raw = json.dumps(body(early, "UNDELIVERED")).encode()
    headers = signed(raw, "early-1", at=int(time.time()) - 30)
    response = await client.post(f"/hooks/keda/{TOKEN}", content=raw, headers=headers)
    assert response.json()["outcome"] == "unknown"
    sent = SendResult("20240101-0002", "ok", Decimal("0.05"), "USD", 1, (SentMessage(early, "+1"),))
    ledger.record_send(sent, country="US", sender="KedaSMS", content="hi")
    m = ledger.message(early)
    assert m is not None and m.status == "UNDELIVERED"
    # the body gives no time for UNDELIVERED: the signed X-Keda-Timestamp stands in
    assert m.final_at is not None and int(m.final_at.timestamp()) == int(
        headers["X-Keda-Timestamp"]
    )
