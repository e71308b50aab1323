"""Step 1's "Must show" through ``AsyncKedaClient``, against the real gateway over loopback.

The same points as ``test_integration_sync.py``, awaited, plus what the async client is for:
many sends in flight at once and batch lookups (``sms.status_many``). The client runs on its
default transport (aiohttp) except where a test wraps the transport to lose an answer.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from kedacore import (
    APIConnectionError,
    APIError,
    AsyncKedaClient,
    AuthenticationError,
    CapReachedError,
    ClockSkewError,
    DecryptionError,
    InsufficientBalanceError,
    KedaError,
    MalformedRequestError,
    MessageStatus,
    NotFoundError,
    ReplayError,
    SendResult,
    ValidationError,
)
from kedacore.envelope import generate_key, seal
from kedacore.segments import count_segments, price
from tests.kedacore.api.test_integration_sync import (
    CN,
    MIXED,
    PAYLOAD,
    US,
    mail_token,
    message_count,
    money,
    refusal,
)

pytestmark = pytest.mark.anyio

T = TypeVar("T")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)


def make_client(gateway, account=None, **kwargs: Any) -> AsyncKedaClient:
    keys = (account.api_key, account.encryption_key) if account else (None, None)
    return AsyncKedaClient(*keys, base_url=gateway.base_url, backup_url=gateway.base_url, **kwargs)


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="100")


@pytest.fixture
async def client(gateway, account) -> AsyncIterator[AsyncKedaClient]:
    async with make_client(gateway, account) as c:
        yield c


async def poll(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Await ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await anyio.sleep(0.02)


async def expected_price(
    client: AsyncKedaClient, country: str, numbers: list[str], content: str
) -> Decimal:
    per_segment = (await client.pricing()).price_for(country)
    assert per_segment is not None
    return price(per_segment, count_segments(content).segments, len(numbers))


async def wait_delivered(client: AsyncKedaClient, task_id: str) -> list[MessageStatus]:
    async def done() -> list[MessageStatus] | None:
        statuses = await client.sms.task(task_id)
        return statuses if all(s.status == "DELIVERED" for s in statuses) else None

    return await poll(done)


async def gather(*calls: Callable[[], Awaitable[T]]) -> list[T | KedaError]:
    """Run calls at once; each result, or the KedaError it raised, in the order given."""
    results: list[T | KedaError | None] = [None] * len(calls)

    async def run(i: int) -> None:
        try:
            results[i] = await calls[i]()
        except KedaError as exc:
            results[i] = exc

    async with anyio.create_task_group() as group:
        for i in range(len(calls)):
            group.start_soon(run, i)
    return results  # type: ignore[return-value]


async def post(client: AsyncKedaClient, body: Any = None, *, content: bytes | None = None):
    """POST a hand-made body to /sms/send through the client's own httpx client."""
    url = client.base_url + "/sms/send"
    if content is not None:
        headers = {"Content-Type": "application/json"}
        return await client._http.post(url, content=content, headers=headers)
    return await client._http.post(url, json=body)


# A send freezes, then charges, the exact amount; the figures add up after many sends.


async def test_a_send_freezes_its_exact_price_then_charges_it(gateway_factory):
    gateway = gateway_factory(sent_delay=2.5)  # long enough to see the freeze
    account = gateway.create_account(balance="10")
    async with make_client(gateway, account) as client:
        content = "Price: 10€ {today} only " * 8  # GSM-7 with extension characters, 2 parts
        assert count_segments(content).segments == 2
        cost = await expected_price(client, "CN", CN, content)
        assert cost == Decimal("0.048") * 2 * 3

        result = await client.sms.send("CN", CN, content)
        assert result.debited_amount == cost and result.segments == 2 * 3
        now = await client.account.balance()
        assert (now.balance, now.frozen) == (Decimal(10) - cost, cost)
        usage = (await client.limits.get()).usage
        assert (usage.sms_sent, usage.spend, usage.frozen) == (3, cost, cost)

        await wait_delivered(client, result.task_id)
        now = await client.account.balance()
        assert (now.balance, now.frozen) == (Decimal(10) - cost, 0)
        usage = (await client.limits.get()).usage
        assert (usage.sms_sent, usage.spend, usage.frozen) == (3, cost, 0)
        assert money(gateway, account)["charged"] == cost


async def test_many_mixed_sends_in_flight_add_up_exactly(gateway, client, account):
    sends = MIXED * 3
    costs = [await expected_price(client, c, n, t) for c, n, t in sends]
    results = await gather(*(lambda c=c, n=n, t=t: client.sms.send(c, n, t) for c, n, t in sends))
    assert all(isinstance(r, SendResult) for r in results), results
    assert [r.debited_amount for r in results] == costs
    total = sum(costs)
    assert (await client.account.balance()).balance == Decimal(100) - total

    statuses = [await wait_delivered(client, r.task_id) for r in results]
    assert [sum(s.cost for s in task) for task in statuses] == costs
    final = await client.account.balance()
    assert (final.balance, final.frozen) == (Decimal(100) - total, 0)
    usage = (await client.limits.get()).usage
    assert usage.sms_sent == sum(len(n) for _, n, _ in sends)
    assert (usage.spend, usage.frozen) == (total, 0)
    books = money(gateway, account)
    assert books["charged"] == total
    assert books["balance"] + books["frozen"] + books["charged"] == books["topped_up"]


# Status: single, per task, and many at once.


async def test_status_many_follows_messages_to_delivered(gateway, client):
    result = await client.sms.send("US", US[:5], "Your table is ready", sender_id="Bistro")
    msgids = [m.msgid for m in result.messages]

    async def all_delivered() -> dict | None:
        found = await client.sms.status_many([*msgids, "msg_0123456789ab"], concurrency=4)
        known = [found[m] for m in msgids]
        return found if all(s.status == "DELIVERED" for s in known) else None

    found = await poll(all_delivered)
    assert list(found) == [*msgids, "msg_0123456789ab"]
    assert isinstance(found["msg_0123456789ab"], NotFoundError)
    for message in result.messages:
        status = found[message.msgid]
        assert status.recipient == message.recipient and status.task_id == result.task_id
        assert status.sender == "Bistro" and status.cost == Decimal("0.05")
        assert status.created_time <= status.sent_time <= status.delivered_time
    one = await client.sms.status(msgids[0])
    assert one == found[msgids[0]]
    assert {s.msgid for s in await client.sms.task(result.task_id)} == set(msgids)


# Caps.


async def test_caps_refuse_exactly_at_the_limit_and_changes_apply_next(gateway, client):
    await client.limits.update(daily_sms_cap=4, block_on_limit=True)
    await client.sms.send("US", US[0:3], "three")
    before = (await client.account.balance()).balance
    with pytest.raises(CapReachedError) as caught:
        await client.sms.send("US", US[3:5], "two more")
    assert (caught.value.cap, caught.value.code, caught.value.http_status) == (
        "dailySmsCap",
        "3002",
        429,
    )
    assert (await client.account.balance()).balance == before
    await client.sms.send("US", US[3], "reaches 4 exactly")
    assert (await client.limits.get()).usage.sms_sent == 4

    await client.limits.update(daily_sms_cap=None, daily_spend_cap=Decimal("0.3"))
    await client.sms.send("US", US[4], "0.25")
    with pytest.raises(CapReachedError) as caught:
        await client.sms.send("US", US[5:7], "0.35 > 0.3")
    assert (caught.value.cap, caught.value.code) == ("dailySpendCap", "3003")
    await client.sms.send("US", US[5], "0.30 exactly")
    limits = await client.limits.get()
    assert limits.usage.spend == Decimal("0.3") and limits.alert.triggered

    await client.limits.update(block_on_limit=False)
    await client.sms.send("US", US[6], "alert only")
    assert (await client.limits.get()).usage.spend == Decimal("0.35")


async def test_the_alert_rises_at_the_threshold_without_block(gateway, client):
    await client.limits.update(daily_spend_cap=Decimal("1"), alert_threshold=Decimal("0.5"))
    await client.sms.send("US", US[0:9], "0.45")
    assert (await client.limits.get()).alert.triggered is False
    await client.sms.send("US", US[9], "0.50 = 0.5 × 1")
    limits = await client.limits.get()
    assert limits.alert.triggered and limits.alert.at is not None
    await client.sms.send("US", US[10:31], "1.55 > 1: through, not blocked")
    assert (await client.limits.get()).usage.spend == Decimal("1.55")


async def test_concurrent_sends_never_pass_a_blocking_cap(gateway, client):
    await client.limits.update(daily_sms_cap=25, block_on_limit=True)
    results = await gather(*(lambda n=n: client.sms.send("US", n, "cap race") for n in US[:60]))
    accepted = [r for r in results if isinstance(r, SendResult)]
    capped = [r for r in results if isinstance(r, CapReachedError)]
    assert (len(accepted), len(capped)) == (25, 35)
    usage = (await client.limits.get()).usage
    assert usage.sms_sent == 25 and usage.spend == Decimal("1.25")


# client_ref.


async def test_client_ref_returns_the_first_result_even_when_sent_at_once(gateway, client):
    results = await gather(
        *(lambda: client.sms.send("US", US[0:2], "once", client_ref="ref-1") for _ in range(20))
    )
    first = results[0]
    assert isinstance(first, SendResult) and all(r == first for r in results)
    assert gateway.query("SELECT count(*) FROM tasks") == [(1,)]
    assert (await client.account.balance()).balance == Decimal(100) - Decimal("0.10")


class DropFirstSend(httpx.AsyncBaseTransport):
    """Delivers every request, but loses the answer to the first send: the server acted."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sends = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/sms/send"):
            self.sends += 1
            if self.sends == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection reset before the answer", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_send_with_client_ref_is_retried_after_a_lost_response_and_charged_once(
    gateway, account
):
    transport = DropFirstSend()
    async with make_client(gateway, account, transport=transport) as client:
        delays: list[float] = []

        async def no_sleep(delay: float) -> None:
            delays.append(delay)

        client._sleep = no_sleep
        result = await client.sms.send("CN", CN[0], "resumable", client_ref="batch-0001")
        assert transport.sends == 2 and len(delays) == 1
        [(task_id,)] = gateway.query("SELECT task_id FROM tasks")
        assert result.task_id == task_id
        assert message_count(gateway) == 1
        assert (await client.account.balance()).balance == Decimal(100) - Decimal("0.048")


async def test_a_send_without_client_ref_is_never_retried(gateway, account):
    transport = DropFirstSend()
    async with make_client(gateway, account, transport=transport) as client:

        async def no_retry(delay: float) -> None:
            pytest.fail("a send without client_ref must not be retried")

        client._sleep = no_retry
        with pytest.raises(APIConnectionError):
            await client.sms.send("US", US[0], "not idempotent")
        assert transport.sends == 1 and message_count(gateway) == 1


# Refusals.


@pytest.fixture
async def untouched(gateway, client, account) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    seen = (
        await client.account.balance(),
        (await client.limits.get()).usage,
        gateway.money(account.email),
        message_count(gateway),
    )

    async def check() -> None:
        now = (
            await client.account.balance(),
            (await client.limits.get()).usage,
            gateway.money(account.email),
            message_count(gateway),
        )
        assert now == seen

    yield check


async def test_hand_made_faults_are_refused_and_change_nothing(client, account, untouched):
    key, api_key = account.encryption_key, account.api_key

    stale = seal(PAYLOAD, key, api_key=api_key, timestamp=int(time.time()) - 400)
    error = refusal(await post(client, stale))
    assert isinstance(error, ClockSkewError) and (error.code, error.http_status) == ("1002", 401)

    body = seal(PAYLOAD, key, api_key=api_key)
    raw = bytearray(base64.b64decode(body["cipherText"]))
    raw[-1] ^= 0x80  # the tag
    tampered = {**body, "cipherText": base64.b64encode(raw).decode()}
    error = refusal(await post(client, tampered))
    assert isinstance(error, DecryptionError) and (error.code, error.http_status) == ("1005", 400)

    error = refusal(await post(client, content=b'{"apiKey": "' + api_key.encode()))
    assert isinstance(error, MalformedRequestError)
    assert (error.code, error.http_status) == ("1004", 400)

    error = refusal(await post(client, {**body, "iv": base64.b64encode(b"short").decode()}))
    assert isinstance(error, MalformedRequestError) and error.code == "1004"
    await untouched()


async def test_a_replayed_body_is_refused_and_charged_once(gateway, client, account):
    body = seal(PAYLOAD, account.encryption_key, api_key=account.api_key)
    assert (await post(client, body)).json()["code"] == "0"
    after_first = (await client.account.balance()).balance
    assert after_first == Decimal(100) - Decimal("0.05")
    replays = [await post(client, body) for _ in range(3)]
    for response in replays:
        error = refusal(response)
        assert isinstance(error, ReplayError) and (error.code, error.http_status) == ("1003", 409)
    assert (await client.account.balance()).balance == after_first
    assert message_count(gateway) == 1


async def test_client_side_faults_are_refused_and_change_nothing(gateway, account, untouched):
    async with AsyncKedaClient(
        account.api_key, generate_key(), base_url=gateway.base_url, backup_url=gateway.base_url
    ) as wrong_encryption:
        with pytest.raises(DecryptionError) as caught:
            await wrong_encryption.sms.send("US", US[0], "hello")
        assert caught.value.code == "1005"
    async with AsyncKedaClient(
        "ak_not_an_account_000000",
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ) as wrong_api_key:
        with pytest.raises(AuthenticationError) as caught:
            await wrong_api_key.sms.send("US", US[0], "hello")
        assert type(caught.value) is AuthenticationError and caught.value.code == "1001"
        with pytest.raises(AuthenticationError):
            await wrong_api_key.limits.get()
    async with make_client(gateway, account) as client:
        with pytest.raises(ValidationError) as caught:
            await client.sms.send("US", ["+12065550123", "555", "+8613800138000"], "hello")
        assert (caught.value.code, caught.value.http_status) == ("2001", 422)
        assert [e["value"] for e in caught.value.errors] == ["555", "+8613800138000"]
    await untouched()


async def test_a_client_whose_clock_is_off_is_refused(gateway_factory):
    gateway = gateway_factory(clock=lambda: time.time() - 400)
    account = gateway.create_account()
    async with make_client(gateway, account) as client:

        async def no_retry(delay: float) -> None:
            pytest.fail("a refused envelope is not retried")

        client._sleep = no_retry
        with pytest.raises(ClockSkewError) as caught:
            await client.sms.send("US", US[0], "hello", client_ref="skewed")
        assert (caught.value.code, caught.value.http_status) == ("1002", 401)
        assert (await client.account.balance()).balance == Decimal(100)
    assert message_count(gateway) == 0


async def test_a_redirect_is_reported_not_followed_on_the_default_transport(gateway, account):
    """aiohttp follows redirects by itself unless told not to: the key must not travel on."""
    async with make_client(gateway, account) as client:
        link = await client.shortlinks.create(gateway.base_url + "/external/accounts/balance")
    redirecting = f"{gateway.root_url}/s/{link.code}?to="
    misdirected = AsyncKedaClient(account.api_key, base_url=redirecting, backup_url=redirecting)
    async with misdirected:
        with pytest.raises(APIError) as caught:
            await misdirected.account.balance()
    assert caught.value.http_status == 302 and "redirected" in str(caught.value)


# Concurrency: 100 sends at once against a balance that covers exactly 40.


async def test_100_concurrent_sends_against_a_balance_for_40_accept_exactly_40(gateway):
    account = gateway.create_account(balance="2")  # 40 × 0.05
    async with make_client(gateway, account) as client, make_client(gateway, account) as watcher:
        samples: list[Decimal] = []
        done = anyio.Event()

        async def watch() -> None:
            while not done.is_set():
                samples.append((await watcher.account.balance()).balance)

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            results = await gather(
                *(lambda n=n: client.sms.send("US", n, "race") for n in US[:100])
            )
            done.set()

        accepted = [r for r in results if isinstance(r, SendResult)]
        refused = [r for r in results if isinstance(r, InsufficientBalanceError)]
        assert (len(accepted), len(refused)) == (40, 60), results
        assert {e.code for e in refused} == {"3001"}
        assert samples and min(samples) >= 0
        debited = sum(r.debited_amount for r in accepted)
        now = await client.account.balance()
        assert now.balance == 0 and Decimal(2) - now.balance == debited
        assert len({m.msgid for r in accepted for m in r.messages}) == 40

        for result in accepted:
            await wait_delivered(client, result.task_id)
        assert (await client.account.balance()).frozen == 0
        assert money(gateway, account)["charged"] == debited == Decimal(2)


# Short links, pricing, isolation, registration.


async def test_short_links_through_the_client_count_a_visit(gateway, client):
    link = await client.shortlinks.create("https://example.com/menu", title="Menu")
    assert link.short_url == f"{gateway.root_url}/s/{link.code}"
    assert [item.code for item in await client.shortlinks.list()] == [link.code]
    assert (await client.shortlinks.get(link.code)).clicks == 0
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        visit = await browser.get(link.short_url)
    assert visit.status_code == 302 and visit.headers["location"] == "https://example.com/menu"
    seen = await client.shortlinks.get(link.code)
    assert (seen.clicks, seen.unique_clicks) == (1, 1) and seen.last_click_at is not None


async def test_pricing_covers_30_countries_with_the_seed_prices(gateway):
    async with make_client(gateway) as anonymous:
        pricing = await anonymous.pricing()
    assert len(pricing.prices) >= 30 and pricing.currency == "USD"
    assert pricing.prices["CN"] == Decimal("0.048") and pricing.prices["US"] == Decimal("0.05")


async def test_one_account_cannot_see_anothers_messages_tasks_or_links(gateway, client):
    result = await client.sms.send("US", US[0:2], "private")
    link = await client.shortlinks.create("https://example.com/private")
    async with make_client(gateway, gateway.create_account()) as other:
        msgids = [m.msgid for m in result.messages]
        found = await other.sms.status_many(msgids)
        assert all(isinstance(found[m], NotFoundError) for m in msgids)
        with pytest.raises(NotFoundError):
            await other.sms.status(msgids[0])
        with pytest.raises(NotFoundError):
            await other.sms.task(result.task_id)
        with pytest.raises(NotFoundError):
            await other.shortlinks.get(link.code)
        assert await other.shortlinks.list() == []
    mine = await client.sms.status_many(msgids)
    assert all(isinstance(s, MessageStatus) for s in mine.values())


async def test_register_verify_then_send_with_the_new_credentials(gateway):
    async with make_client(gateway) as anonymous:
        await anonymous.account.register("grace@example.com", "a long enough password")
        credentials = await anonymous.account.verify(mail_token(gateway, "grace@example.com"))
    async with AsyncKedaClient(
        credentials.api_key,
        credentials.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ) as client:
        with pytest.raises(InsufficientBalanceError):
            await client.sms.send("CN", CN[0], "hello")
        gateway.topup("grace@example.com", "0.048")  # exactly one CN segment
        result = await client.sms.send("CN", CN[0], "hello")
        assert result.debited_amount == Decimal("0.048")
        assert (await client.account.balance()).balance == 0
        await wait_delivered(client, result.task_id)
