"""Batch status lookups against the real gateway: ``sms.status_batch`` and ``sms.status_many``.

``status_many`` asks our gateway's batch extension (``POST /sms/status/batch``, up to 1,000
ids a request) and, against a service without it (the real KedaSMS, an older gateway),
falls back to one request per msgid within its rate limit, honouring ``4029``'s
``Retry-After``. Progress is reported between batches, where the caller can stop.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kedacore import AsyncKedaClient, KedaClient, MessageStatus, NotFoundError
from kedacore.api.errors import InternalServerError, RateLimitError
from tests.support import phone_numbers

pytestmark = pytest.mark.anyio

BATCH_PATH = "/api/sms/status/batch"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)


def make_client(gateway, account, cls: Any = AsyncKedaClient, **kwargs: Any) -> Any:
    return cls(
        account.api_key,
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
        **kwargs,
    )


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="1000")


@pytest.fixture
async def client(gateway, account) -> AsyncIterator[AsyncKedaClient]:
    async with make_client(gateway, account) as c:
        yield c


def count_requests(gateway) -> Counter:
    """Count the requests that reach the rate limiter (one per authenticated call)."""
    limiter = gateway.app.state.gateway.limiter
    seen: Counter = Counter()
    original = limiter.acquire

    def acquire(key: object) -> float:
        seen["requests"] += 1
        return original(key)

    limiter.acquire = acquire
    return seen


def without_batch(gateway) -> None:
    """Make the gateway a service without our extension (as the real KedaSMS is)."""
    router = gateway.app.router
    router.routes = [r for r in router.routes if getattr(r, "path", None) != BATCH_PATH]


def send(gateway, account, count: int, start: int = 0) -> list[str]:
    numbers = phone_numbers("US", count, start)
    payload = {"countryCode": "US", "phoneNumbers": numbers, "content": "Batch"}
    response = gateway.send(account, payload)
    assert response.status_code == 200, response.text
    return [m["msgid"] for m in response.json()["data"]["messages"]]


def unknown_ids(count: int) -> list[str]:
    return [f"msg_{0xFEED00000000 + i:012x}" for i in range(count)]


async def test_status_batch_answers_the_found_and_lists_the_rest(gateway, account, client):
    msgids = send(gateway, account, 3)
    missing = unknown_ids(2)
    batch = await client.sms.status_batch([missing[0], *msgids, missing[1], msgids[0]])
    assert [m.msgid for m in batch.messages] == msgids
    assert all(isinstance(m, MessageStatus) for m in batch.messages)
    assert all(m.recipient.startswith("+1") for m in batch.messages)
    assert batch.not_found == tuple(missing)
    with make_client(gateway, account, KedaClient) as sync:
        again = sync.sms.status_batch(msgids)
    assert [m.msgid for m in again.messages] == msgids and again.not_found == ()


async def test_status_batch_checks_its_arguments(client):
    with pytest.raises(ValueError, match="at most 1000"):
        await client.sms.status_batch(unknown_ids(1001))
    with pytest.raises(ValueError, match="at least one"):
        await client.sms.status_batch([])
    with pytest.raises(ValueError, match="not one string"):
        await client.sms.status_batch("msg_0123456789ab")


async def test_status_many_asks_in_batches_and_reports_progress(gateway, account, client):
    known = send(gateway, account, 1000) + send(gateway, account, 500, start=1000)
    wanted = [x for pair in zip(known, unknown_ids(1500), strict=True) for x in pair]
    seen = count_requests(gateway)
    progress: list[tuple[int, int, int]] = []

    def on_progress(done: int, total: int, answers: dict) -> None:
        progress.append((done, total, len(answers)))

    started = time.perf_counter()
    found = await client.sms.status_many(wanted, on_progress=on_progress)
    elapsed = time.perf_counter() - started
    assert list(found) == wanted
    assert all(isinstance(found[m], MessageStatus) for m in known)
    missing = [found[m] for m in wanted if m not in set(known)]
    assert len(missing) == 1500 and all(isinstance(e, NotFoundError) for e in missing)
    assert "not found" in str(missing[0])
    assert seen["requests"] == 3  # 3,000 ids: three requests of up to 1,000
    assert progress[-1][:2] == (3000, 3000)
    assert [d for d, _, _ in progress] == sorted(d for d, _, _ in progress)
    assert sum(n for _, _, n in progress) == 3000
    assert elapsed < 5, elapsed


async def test_stopping_between_batches_sends_nothing_more(gateway, account, client):
    seen = count_requests(gateway)

    class Stop(Exception):
        pass

    def on_progress(done: int, total: int, answers: dict) -> None:
        raise Stop

    with pytest.raises(Stop):
        await client.sms.status_many(unknown_ids(100), batch_size=10, on_progress=on_progress)
    before = seen["requests"]
    assert 1 <= before < 10  # the first round of batches only, not all ten
    time.sleep(0.2)
    assert seen["requests"] == before


async def test_without_the_batch_call_it_falls_back_within_the_rate_limit(gateway_factory):
    gateway = gateway_factory(rate_limit=10, rate_burst=2)
    account = gateway.create_account(balance="100")
    without_batch(gateway)
    msgids = send(gateway, account, 20)
    wanted = msgids + unknown_ids(5)
    async with make_client(gateway, account) as client:
        started = time.perf_counter()
        found = await client.sms.status_many(wanted)
        elapsed = time.perf_counter() - started
    # Every id answered: none given up as rate limited, however often the service said 4029.
    limited = [m for m, r in found.items() if isinstance(r, RateLimitError)]
    assert not limited, f"{len(limited)} of {len(wanted)} given up as rate limited"
    assert all(isinstance(found[m], MessageStatus) for m in msgids)
    assert all(isinstance(found[m], NotFoundError) for m in unknown_ids(5))
    assert elapsed >= (len(wanted) - 3) / 10 * 0.8  # paced by the service's 10 requests/s


async def test_the_fallback_reports_progress_and_can_be_stopped(gateway, account):
    without_batch(gateway)
    seen = count_requests(gateway)
    progress: list[tuple[int, int]] = []

    class Stop(Exception):
        pass

    def on_progress(done: int, total: int, answers: dict) -> None:
        progress.append((done, total))
        if done >= 100:
            raise Stop

    async with make_client(gateway, account) as client:
        with pytest.raises(Stop):
            await client.sms.status_many(unknown_ids(1000), on_progress=on_progress)
    assert progress[0][1] == 1000 and 0 < progress[0][0] <= 100
    assert progress[-1][0] >= 100
    asked = seen["requests"]
    assert asked < 300  # stopped after a round or two, not all 1,000
    time.sleep(0.2)
    assert seen["requests"] == asked


# --- the same, against a scripted service (httpx.MockTransport) -----------------------------


def scripted(reply) -> tuple[AsyncKedaClient, list[httpx.Request], list[float]]:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return reply(request)

    client = AsyncKedaClient(
        "ak_test_0a9b8c7d6e5f4321", transport=httpx.MockTransport(record), max_retries=2
    )
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:  # never sleep for real
        sleeps.append(seconds)

    client._sleep = sleep
    client._jitter = lambda: 0.0
    return client, requests, sleeps


def status_ok(msgid: str) -> httpx.Response:
    data = {"msgid": msgid, "status": "DELIVERED", "recipient": "+12065550123", "cost": "0.05"}
    return httpx.Response(200, json={"success": True, "data": data, "code": 200})


def batch_ok(request: httpx.Request) -> httpx.Response:
    ids = json.loads(request.content)["msgids"]
    found = [status_ok(m).json()["data"] for m in ids if not m.endswith("f")]
    missing = [m for m in ids if m.endswith("f")]
    data = {"messages": found, "notFound": missing}
    return httpx.Response(200, json={"success": True, "data": data, "code": 200})


def is_batch(request: httpx.Request) -> bool:
    return request.url.path.endswith("/sms/status/batch")


@pytest.mark.parametrize(
    "refusal",
    [
        (404, '{"code":"4004","message":"no such endpoint"}'),
        (404, "<html>Not Found</html>"),
        (405, '{"error":"method not allowed"}'),
        (400, '{"success":false,"code":400,"message":"unknown parameter msgids"}'),
        (422, '{"success":false,"code":422,"message":"give either msgid or taskId"}'),
        (501, ""),
    ],
)
async def test_any_no_such_call_answer_falls_back_and_is_asked_once(refusal) -> None:
    status, body = refusal

    def reply(request: httpx.Request) -> httpx.Response:
        if is_batch(request):
            return httpx.Response(status, content=body.encode())
        return status_ok(request.url.params["msgid"])

    client, requests, _ = scripted(reply)
    ids = unknown_ids(5)
    first = await client.sms.status_many(ids)
    second = await client.sms.status_many(ids[:3])
    await client.close()
    assert all(isinstance(first[m], MessageStatus) for m in ids)
    assert list(second) == ids[:3]
    assert sum(is_batch(r) for r in requests) == 1  # the client remembers the answer
    assert len(requests) == 1 + 5 + 3


async def test_batches_split_the_ids_and_list_the_unknown_ones() -> None:
    client, requests, _ = scripted(batch_ok)
    ids = [f"msg_{i:012x}" for i in range(2500)]
    found = await client.sms.status_many(ids + ids[:10])
    await client.close()
    assert [len(json.loads(r.content)["msgids"]) for r in requests] == [1000, 1000, 500]
    assert all(r.headers["X-Api-Key"] for r in requests)
    assert list(found) == ids
    for msgid, answer in found.items():
        if msgid.endswith("f"):
            assert isinstance(answer, NotFoundError) and answer.http_status == 404
        else:
            assert isinstance(answer, MessageStatus) and answer.msgid == msgid


async def test_an_id_too_long_for_a_batch_is_asked_on_its_own() -> None:
    long_id = "msg_" + "a" * 120

    def reply(request: httpx.Request) -> httpx.Response:
        return batch_ok(request) if is_batch(request) else status_ok(request.url.params["msgid"])

    client, requests, _ = scripted(reply)
    found = await client.sms.status_many(["msg_000000000001", long_id, "msg_000000000002"])
    await client.close()
    assert list(found) == ["msg_000000000001", long_id, "msg_000000000002"]
    assert all(isinstance(a, MessageStatus) for a in found.values())
    assert [is_batch(r) for r in requests] == [True, False]


async def test_a_4029_pauses_every_request_and_no_id_is_given_up() -> None:
    throttled = 0

    def reply(request: httpx.Request) -> httpx.Response:
        nonlocal throttled
        if is_batch(request):
            return httpx.Response(404, json={"code": "4004", "message": "no such endpoint"})
        if throttled < 40:  # more refusals than any request's retries
            throttled += 1
            return httpx.Response(
                429, json={"code": "4029", "message": "slow down"}, headers={"Retry-After": "2"}
            )
        return status_ok(request.url.params["msgid"])

    client, _, sleeps = scripted(reply)
    found = await client.sms.status_many(unknown_ids(30), concurrency=8)
    await client.close()
    assert all(isinstance(a, MessageStatus) for a in found.values()), found
    assert sleeps and all(1.5 < s <= 2 for s in sleeps)  # the service's Retry-After


async def test_a_failed_batch_is_each_ids_error_and_the_others_go_on() -> None:
    calls = 0

    def reply(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls in (2, 3, 4):  # the second batch, and both its retries
            return httpx.Response(503, content=b"busy")
        return batch_ok(request)

    client, _, sleeps = scripted(reply)
    ids = [f"msg_{i:012x}" for i in range(30)]
    found = await client.sms.status_many(ids, batch_size=10, concurrency=1)
    await client.close()
    assert sleeps == [0.5, 1.0]
    errors = [m for m, a in found.items() if isinstance(a, InternalServerError)]
    assert errors == ids[10:20]
    assert all(isinstance(found[m], MessageStatus | NotFoundError) for m in ids[:10] + ids[20:])


async def test_status_many_checks_batch_size() -> None:
    client, requests, _ = scripted(batch_ok)
    for bad in (0, 1001, True, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            await client.sms.status_many(unknown_ids(2), batch_size=bad)  # type: ignore[arg-type]
    assert requests == []
    await client.close()
