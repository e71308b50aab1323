"""AsyncKedaClient: the same calls as KedaClient, awaited; status_many's bounded concurrency."""

from __future__ import annotations

import inspect
import json
from decimal import Decimal

import anyio
import httpx
import pytest

import kedacore
from kedacore import AsyncKedaClient, KedaClient, envelope
from kedacore.api.errors import (
    APITimeoutError,
    InternalServerError,
    KedaError,
    MissingCredentialsError,
    NotFoundError,
    RateLimitError,
)

pytestmark = pytest.mark.anyio

API_KEY = "ak_test_0a9b8c7d6e5f4321"
ENC_KEY = envelope.generate_key()
BASE = "https://www.kedasms.net/api"
BACKUP = "https://backup.kedasms.net/api"

SEND_OK = (
    '{"code":"0","message":"Success","data":{"taskId":"20240408-0001","message":"SMS task created",'
    '"debitedAmount":0.048,"currency":"USD","segments":1,'
    '"messages":[{"msgid":"msg_abc123def456","recipient":"+8613800138000"}]}}'
)
LIMITS_OK = (
    '{"code":"0","message":"Success","data":{"dailySmsCap":5000,"dailySpendCap":200.5,'
    '"alertThreshold":0.8,"blockOnLimit":true,"usage":{"date":"2024-01-01","smsSent":3,'
    '"spend":0.144,"frozen":0},"alert":{"triggered":false,"at":null}}}'
)
LINK = {
    "code": "aB3dE9",
    "shortUrl": "https://www.kedasms.net/s/aB3dE9",
    "url": "https://example.com/sale",
    "createdAt": "2024-01-01T10:00:00Z",
    "clicks": 1,
    "uniqueClicks": 1,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)


def raw(text: str, status: int = 200, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=text.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def ok(data: object) -> httpx.Response:
    return httpx.Response(200, json={"code": "0", "message": "Success", "data": data})


def status_ok(msgid: str, status: str = "DELIVERED") -> httpx.Response:
    data = {"msgid": msgid, "status": status, "recipient": "+12065550123", "cost": "0.05"}
    return httpx.Response(200, json={"success": True, "data": data, "code": 200})


def not_found(msgid: str) -> httpx.Response:
    body = {"success": False, "data": None, "code": 404, "message": f"no message {msgid}"}
    return httpx.Response(404, json=body)


def is_batch(request: httpx.Request) -> bool:
    return request.url.path.endswith("/sms/status/batch")


def no_such_call(request: httpx.Request) -> httpx.Response:
    """How a service without the batch lookup (the real KedaSMS) answers it."""
    return raw('{"code":"4004","message":"no such endpoint"}', 404)


class Recorder:
    def __init__(self, reply) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make(reply, **kwargs) -> tuple[AsyncKedaClient, Recorder, list[float]]:
    rec = Recorder(reply)
    options = {"api_key": API_KEY, "encryption_key": ENC_KEY, **kwargs}
    client = AsyncKedaClient(transport=httpx.MockTransport(rec), **options)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:  # never sleep for real
        sleeps.append(seconds)

    client._sleep = sleep
    client._jitter = lambda: 0.0
    return client, rec, sleeps


def opened(request: httpx.Request) -> dict:
    body = json.loads(request.content)
    assert body["apiKey"] == API_KEY
    return json.loads(envelope.open_body(body, ENC_KEY))


def _public_methods(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n))}


async def test_the_same_method_names_as_the_sync_client() -> None:
    sync, asynchronous = KedaClient(), AsyncKedaClient()
    for path in ("", "sms", "limits", "account", "shortlinks"):
        s = getattr(sync, path) if path else sync
        a = getattr(asynchronous, path) if path else asynchronous
        assert _public_methods(s) <= _public_methods(a), path
        for name in _public_methods(s) - {"close"}:
            if path or name == "pricing":
                assert inspect.iscoroutinefunction(getattr(a, name)), name
                sig_s = inspect.signature(getattr(s, name))
                sig_a = inspect.signature(getattr(a, name))
                assert list(sig_s.parameters) == list(sig_a.parameters), name
    assert _public_methods(asynchronous.sms) - _public_methods(sync.sms) == {"status_many"}
    sync.close()
    await asynchronous.close()


async def test_send_is_sealed_and_exact() -> None:
    client, rec, _ = make(lambda r: raw(SEND_OK))
    async with client:
        result = await client.sms.send("CN", ["13800138000"], "hi", sender_id="KedaSMS")
    assert str(rec.last.url) == f"{BASE}/sms/send"
    assert opened(rec.last) == {
        "countryCode": "CN",
        "phoneNumbers": ["13800138000"],
        "content": "hi",
        "senderId": "KedaSMS",
    }
    assert result.debited_amount == Decimal("0.048")
    assert result.messages[0].msgid == "msg_abc123def456"
    assert client._http.is_closed


async def test_status_task_limits_balance_pricing_and_links() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/sms/status") and "taskId" in request.url.params:
            return httpx.Response(200, json={"success": True, "code": 200, "data": [
                {"msgid": "msg_000000000001", "status": "SENT", "recipient": "+1"},
            ]})  # fmt: skip
        if path.endswith("/sms/status"):
            return status_ok(request.url.params["msgid"])
        if path.endswith("/limits"):
            return raw(LIMITS_OK)
        if path.endswith("/balance"):
            return raw('{"code":"0","message":"Success","data":{"balance":1.1,"frozen":0.2}}')
        if path.endswith("/pricing"):
            return raw(
                '{"code":"0","data":{"countries":[{"countryCode":"US","pricePerSegment":0.05}]}}'
            )
        if path.endswith("/shortlinks"):
            return ok([LINK]) if request.method == "GET" else ok(LINK)
        return ok(LINK)

    client, rec, _ = make(reply)
    status = await client.sms.status("msg_abc123def456")
    assert status.cost == Decimal("0.05") and status.final
    assert rec.last.headers["x-api-key"] == API_KEY and rec.last.url.host == "backup.kedasms.net"
    assert [s.status for s in await client.sms.task("20240101-0001")] == ["SENT"]
    limits = await client.limits.update(daily_spend_cap=Decimal("200.50"), block_on_limit=True)
    assert rec.last.method == "PUT"
    assert rec.last.content == (
        b'{"dailySpendCap":200.5,"blockOnLimit":true,"apiKey":"' + API_KEY.encode() + b'"}'
    )
    assert limits.daily_spend_cap == Decimal("200.5")
    assert (await client.limits.get()).usage.spend == Decimal("0.144")
    balance = await client.account.balance()
    assert balance.balance + balance.frozen == Decimal("1.3")
    assert (await client.pricing()).prices == {"US": Decimal("0.05")}
    assert str(rec.last.url) == f"{BASE}/pricing"
    link = await client.shortlinks.create("https://example.com/sale")
    assert opened(rec.last) == {"url": "https://example.com/sale"}
    assert link.code == "aB3dE9"
    assert len(await client.shortlinks.list()) == 1
    assert str(rec.last.url.copy_with(query=None)) == f"{BACKUP}/shortlinks"
    await client.shortlinks.get("aB3dE9")
    assert str(rec.last.url) == f"{BACKUP}/shortlinks/aB3dE9"
    await client.close()


async def test_register_and_verify_without_a_key() -> None:
    rec = Recorder(lambda r: ok({"apiKey": "ak_new_00001111", "encryptionKey": ENC_KEY}))
    client = AsyncKedaClient(transport=httpx.MockTransport(rec))
    credentials = await client.account.verify("tok")
    assert str(rec.last.url) == f"{BASE}/accounts/verify"
    assert credentials.encryption_key == ENC_KEY
    registration = await client.account.register("a@example.com", "pw")
    assert registration.email == "a@example.com"
    await client.close()


async def test_missing_credentials_before_any_request() -> None:
    rec = Recorder(lambda r: ok({}))
    client = AsyncKedaClient(transport=httpx.MockTransport(rec))
    with pytest.raises(MissingCredentialsError, match="KEDA_API_KEY"):
        await client.account.balance()
    with pytest.raises(MissingCredentialsError, match="KEDA_API_KEY"):
        await client.sms.status_many(["msg_abc123def456"])
    client = AsyncKedaClient(API_KEY, transport=httpx.MockTransport(rec))
    with pytest.raises(MissingCredentialsError, match="KEDA_ENCRYPTION_KEY"):
        await client.sms.send("US", ["+12065550123"], "hi")
    assert rec.requests == []


async def test_empty_identifiers() -> None:
    client, rec, _ = make(lambda r: ok({}))
    with pytest.raises(ValueError, match="''"):
        await client.sms.status("")
    with pytest.raises(ValueError, match="None"):
        await client.sms.task(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="''"):
        await client.sms.status_many(["msg_abc123def456", ""])
    assert rec.requests == []


async def test_environment_and_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDA_API_KEY", API_KEY)
    monkeypatch.setenv("KEDA_ENCRYPTION_KEY", ENC_KEY)
    monkeypatch.setenv("KEDA_BACKUP_URL", "http://127.0.0.1:9/api")
    rec = Recorder(lambda r: raw(LIMITS_OK))
    client = AsyncKedaClient(transport=httpx.MockTransport(rec))
    await client.limits.get()
    assert str(rec.last.url) == "http://127.0.0.1:9/api/external/accounts/limits"
    assert API_KEY not in repr(client) and ENC_KEY not in repr(client)
    assert "…4321" in repr(client)
    await client.close()


# --- retries -------------------------------------------------------------------------------


async def test_get_retried_on_5xx_and_retry_after_honoured() -> None:
    replies = [raw('{"code":"4029","message":"slow"}', 429, {"Retry-After": "2"}), raw("", 503)]
    client, rec, sleeps = make(lambda r: replies.pop(0) if replies else raw(LIMITS_OK))
    await client.limits.get()
    assert len(rec.requests) == 3
    assert sleeps == [2.0, 1.0]


async def test_send_without_client_ref_is_not_retried() -> None:
    client, rec, sleeps = make(lambda r: raw('{"code":"5000","message":"boom"}', 500))
    with pytest.raises(InternalServerError):
        await client.sms.send("US", ["+12065550123"], "hi")
    assert len(rec.requests) == 1 and sleeps == []


async def test_send_with_client_ref_is_retried_with_fresh_ivs() -> None:
    replies = [raw("<html>bad gateway</html>", 502), raw(SEND_OK)]
    client, rec, sleeps = make(lambda r: replies.pop(0))
    result = await client.sms.send("US", ["+12065550123"], "hi", client_ref="ref-9")
    assert result.task_id == "20240408-0001"
    ivs = [json.loads(r.content)["iv"] for r in rec.requests]
    assert len(ivs) == 2 and ivs[0] != ivs[1]
    assert all(opened(r)["clientRef"] == "ref-9" for r in rec.requests)
    assert sleeps == [0.5]


async def test_timeouts_become_api_timeout_errors() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, rec, sleeps = make(reply)
    with pytest.raises(APITimeoutError):
        await client.account.balance()
    assert len(rec.requests) == 3 and sleeps == [0.5, 1.0]


# --- status_many ---------------------------------------------------------------------------


async def test_status_many_bounds_concurrency_and_keeps_order() -> None:
    in_flight = peak = 0
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if is_batch(request):
            return no_such_call(request)
        msgid = request.url.params["msgid"]
        seen.append(msgid)
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.002)
        in_flight -= 1
        return not_found(msgid) if msgid.endswith("7") else status_ok(msgid)

    client = AsyncKedaClient(API_KEY, transport=httpx.MockTransport(handler))
    ids = [f"msg_{i:012x}" for i in range(60)]
    results = await client.sms.status_many(ids + ids[:5], concurrency=5)
    await client.close()
    assert peak == 5
    assert sorted(seen) == sorted(ids)  # duplicates looked up once
    assert list(results) == ids
    for msgid, result in results.items():
        if msgid.endswith("7"):
            assert isinstance(result, NotFoundError) and msgid in result.message
        else:
            assert isinstance(result, kedacore.MessageStatus) and result.msgid == msgid


async def test_status_many_default_concurrency_is_16() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if is_batch(request):
            return no_such_call(request)
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.002)
        in_flight -= 1
        return status_ok(request.url.params["msgid"])

    client = AsyncKedaClient(API_KEY, transport=httpx.MockTransport(handler))
    results = await client.sms.status_many(f"msg_{i:012x}" for i in range(100))
    assert len(results) == 100 and peak == 16
    await client.close()


async def test_status_many_retries_and_reports_each_failure() -> None:
    attempts: dict[str, int] = {}

    def reply(request: httpx.Request) -> httpx.Response:
        if is_batch(request):
            return no_such_call(request)
        msgid = request.url.params["msgid"]
        attempts[msgid] = attempts.get(msgid, 0) + 1
        if msgid == "msg_00000000000a" and attempts[msgid] == 1:
            return raw("", 503)  # transient: retried
        if msgid == "msg_00000000000b":
            return raw('{"code":"4029","message":"slow down"}', 429, {"Retry-After": "600"})
        return status_ok(msgid)

    client, _, sleeps = make(reply)
    ids = ["msg_00000000000a", "msg_00000000000b", "msg_00000000000c"]
    results = await client.sms.status_many(ids, concurrency=2)
    assert isinstance(results["msg_00000000000a"], kedacore.MessageStatus)
    assert isinstance(results["msg_00000000000b"], RateLimitError)
    assert results["msg_00000000000b"].retry_after == 600
    assert isinstance(results["msg_00000000000c"], kedacore.MessageStatus)
    assert attempts == {"msg_00000000000a": 2, "msg_00000000000b": 1, "msg_00000000000c": 1}
    assert sleeps == [0.5]
    assert all(isinstance(r, (kedacore.MessageStatus, KedaError)) for r in results.values())


async def test_status_many_edge_cases() -> None:
    client, rec, _ = make(lambda r: status_ok(r.url.params["msgid"]))
    assert await client.sms.status_many([]) == {}
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="concurrency"):
            await client.sms.status_many(["msg_abc123def456"], concurrency=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not one string"):
        await client.sms.status_many("msg_abc123def456")
    assert rec.requests == []
    assert list(await client.sms.status_many(["msg_abc123def456"], concurrency=100)) == [
        "msg_abc123def456"
    ]
