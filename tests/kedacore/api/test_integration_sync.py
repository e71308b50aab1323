"""Step 1's "Must show" through ``KedaClient``, against the real gateway over loopback.

The gateway's own tests drive it with raw httpx; these drive it with the client the console
uses, so a fault in either side (wire names, exact money, error mapping, retries) shows here.
Hand-made bodies (replays, stale or tampered envelopes, broken JSON) are sealed with
``kedacore.envelope.seal`` and posted through the client's own httpx client; their answers
go through ``error_from_response``, the one place the client maps errors.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kedacore import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CapReachedError,
    ClockSkewError,
    DecryptionError,
    InsufficientBalanceError,
    KedaClient,
    MalformedRequestError,
    NotFoundError,
    ReplayError,
    SendResult,
    ValidationError,
    error_from_response,
)
from kedacore.envelope import generate_key, seal
from kedacore.segments import GSM7, UCS2, count_segments, price

MICROS = Decimal(1_000_000)

# Valid numbers of each country (phonenumbers agrees), E.164.
CN = ["+8613800138000", "+8613912345678", "+8613712345678"]
US = [f"+1206555{i:04d}" for i in range(100)]

# Mixed countries, lengths and encodings: (country, numbers, content).
MIXED: list[tuple[str, list[str], str]] = [
    ("CN", ["13800138000"], "Your verification code is 123456"),  # national form
    ("US", ["+12065550123", "2065550124"], "x" * 161),  # GSM-7, 2 parts, 2 recipients
    ("DE", ["+4915123456789"], "Preis: 10€ {heute} [nur] ~ ^ | \\"),  # extension characters
    ("JP", ["+819012345678"], "ご注文の商品を発送しました。"),  # UCS-2, 1 part
    ("CN", CN, "您的验证码是123456，五分钟内有效。" * 4),  # UCS-2, several parts, 3 recipients
    ("IN", ["+919876543210"], "Offer 🎉 today only! " * 6),  # outside the BMP counts 2
    ("BR", ["+5511987654321"], "é" * 160),  # é is GSM-7: one part exactly
    ("FR", ["+33612345678"], "Reçu: votre colis arrive demain."),  # ç (not Ç) forces UCS-2
    ("GB", ["+447400123456"], "a" * (153 * 3)),  # exactly 3 long parts
    ("KR", ["+821012345678"], "안녕하세요"),
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)


def make_client(gateway, account=None, **kwargs: Any) -> KedaClient:
    """A client on the test gateway (both base addresses), with the account's keys if given."""
    keys = (account.api_key, account.encryption_key) if account else (None, None)
    return KedaClient(*keys, base_url=gateway.base_url, backup_url=gateway.base_url, **kwargs)


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="100")


@pytest.fixture
def client(gateway, account) -> Iterator[KedaClient]:
    with make_client(gateway, account) as c:
        yield c


def expected_price(client: KedaClient, country: str, numbers: list[str], content: str) -> Decimal:
    """What a send must cost: price per segment × segments × recipients (the shared function)."""
    per_segment = client.pricing().price_for(country)
    assert per_segment is not None
    return price(per_segment, count_segments(content).segments, len(numbers))


def wait_delivered(gateway, client: KedaClient, task_id: str, timeout: float = 10.0) -> list:
    def done() -> list | None:
        statuses = client.sms.task(task_id)
        return statuses if all(s.status == "DELIVERED" for s in statuses) else None

    return gateway.poll(done, timeout=timeout)


def money(gateway, account) -> dict[str, Decimal]:
    """The gateway's own books for the account, in currency units."""
    return {k: Decimal(v) / MICROS for k, v in gateway.money(account.email).items()}


def message_count(gateway) -> int:
    return gateway.query("SELECT count(*) FROM messages")[0][0]


def post(client: KedaClient, body: Any = None, *, content: bytes | None = None) -> httpx.Response:
    """POST a hand-made body to /sms/send through the client's own httpx client."""
    url = client.base_url + "/sms/send"
    if content is not None:
        return client._http.post(url, content=content, headers={"Content-Type": "application/json"})
    return client._http.post(url, json=body)


def refusal(response: httpx.Response) -> Exception:
    assert not response.is_success, response.text
    return error_from_response(response)


# A send freezes, then charges, the exact amount.


def test_a_send_freezes_its_exact_price_then_charges_it(gateway_factory):
    gateway = gateway_factory(sent_delay=2.5)  # long enough to see the freeze
    account = gateway.create_account(balance="10")
    with make_client(gateway, account) as client:
        content = "您好，您的订单已发货，请注意查收。感谢您的支持！" * 6  # UCS-2, 3 parts
        assert count_segments(content).segments == 3
        numbers = CN[:2]
        cost = expected_price(client, "CN", numbers, content)
        assert cost == Decimal("0.048") * 3 * 2

        result = client.sms.send("CN", numbers, content, sender_id="Shop")
        assert isinstance(result, SendResult)
        assert result.debited_amount == cost and result.currency == "USD"
        assert result.segments == 3 * 2  # the total billed for the task
        assert re.fullmatch(r"\d{8}-\d{4,}", result.task_id)
        assert [m.recipient for m in result.messages] == numbers
        assert all(re.fullmatch(r"msg_[0-9a-f]{12,}", m.msgid) for m in result.messages)

        frozen = client.account.balance()
        assert (frozen.balance, frozen.frozen) == (Decimal(10) - cost, cost)
        usage = client.limits.get().usage
        assert (usage.sms_sent, usage.spend, usage.frozen) == (2, cost, cost)

        wait_delivered(gateway, client, result.task_id)
        charged = client.account.balance()
        assert (charged.balance, charged.frozen) == (Decimal(10) - cost, 0)
        usage = client.limits.get().usage
        assert (usage.sms_sent, usage.spend, usage.frozen) == (2, cost, 0)
        books = money(gateway, account)
        assert books["charged"] == cost and books["frozen"] == 0


def test_balance_and_usage_add_up_exactly_after_many_mixed_sends(gateway, client, account):
    encodings = {count_segments(content).encoding for _, _, content in MIXED}
    assert encodings == {GSM7, UCS2}
    assert max(count_segments(content).segments for _, _, content in MIXED) >= 3

    results: list[SendResult] = []
    total = Decimal(0)
    recipients = 0
    for _ in range(3):
        for country, numbers, content in MIXED:
            cost = expected_price(client, country, numbers, content)
            result = client.sms.send(country, numbers, content)
            assert result.debited_amount == cost, (country, content)
            assert result.segments == count_segments(content).segments * len(numbers)
            results.append(result)
            total += cost
            recipients += len(numbers)

    assert sum(r.debited_amount for r in results) == total
    now = client.account.balance()
    assert now.balance == Decimal(100) - total  # frozen or charged, it has left the balance

    costs = Decimal(0)
    for result in results:
        statuses = wait_delivered(gateway, client, result.task_id)
        assert sum(s.cost for s in statuses) == result.debited_amount
        costs += sum(s.cost for s in statuses)
    assert costs == total

    final = client.account.balance()
    assert (final.balance, final.frozen) == (Decimal(100) - total, 0)
    usage = client.limits.get().usage
    assert (usage.sms_sent, usage.spend, usage.frozen) == (recipients, total, 0)
    books = money(gateway, account)
    assert books["charged"] == total
    assert books["balance"] + books["frozen"] + books["charged"] == books["topped_up"] == 100


_TEXT = st.text(
    alphabet=st.sampled_from(list("abc XYZ019.,!?\n") + list("€{}[]~^|\\") + list("éçЖ中文😀")),
    min_size=1,
    max_size=400,
).filter(lambda t: t.strip() and count_segments(t).segments <= 10)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(content=_TEXT, recipients=st.integers(min_value=1, max_value=3))
def test_any_text_is_charged_what_the_client_estimates(gateway, client, content, recipients):
    numbers = US[:recipients]
    cost = expected_price(client, "US", numbers, content)
    before = client.account.balance()
    result = client.sms.send("US", numbers, content)
    assert result.debited_amount == cost
    assert result.segments == count_segments(content).segments * recipients
    after = client.account.balance()
    assert before.balance - after.balance == cost


# Status moves to DELIVERED.


def test_status_moves_to_delivered_with_times_and_cost(gateway, client):
    content = "Your parcel is on its way"
    result = client.sms.send("US", US[:2], content, sender_id="Parcels")
    share = Decimal("0.05")
    seen: list[str] = []

    def delivered():
        status = client.sms.status(result.messages[0].msgid)
        if not seen or seen[-1] != status.status:
            seen.append(status.status)
        return status if status.status == "DELIVERED" else None

    status = gateway.poll(delivered, timeout=10)
    order = ["QUEUED", "SENT", "DELIVERED"]
    assert seen == sorted(seen, key=order.index)  # never moves back
    assert status.msgid == result.messages[0].msgid and status.task_id == result.task_id
    assert status.recipient == US[0] and status.sender == "Parcels"
    assert status.message == content and status.segments == 1
    assert status.cost == share and status.final
    assert status.created_time <= status.sent_time <= status.delivered_time
    assert status.delivered_time <= status.updated_time
    assert status.sent_time.utcoffset().total_seconds() == 0

    statuses = wait_delivered(gateway, client, result.task_id)
    assert {s.msgid for s in statuses} == {m.msgid for m in result.messages}
    assert all(s.sent_time and s.delivered_time and s.cost == share for s in statuses)


# Caps refuse exactly at the limit with block_on_limit; alert at the threshold without it.


def test_sms_cap_refuses_exactly_above_the_limit_with_block(gateway, client):
    client.limits.update(daily_sms_cap=5, block_on_limit=True)
    client.sms.send("US", US[0:3], "one")
    before = client.account.balance().balance
    with pytest.raises(CapReachedError) as caught:
        client.sms.send("US", US[3:6], "two")  # 3 + 3 > 5: refused whole
    assert caught.value.cap == "dailySmsCap"
    assert (caught.value.code, caught.value.http_status) == ("3002", 429)
    assert client.account.balance().balance == before
    assert client.limits.get().usage.sms_sent == 3

    client.sms.send("US", US[3:5], "three")  # 3 + 2 = 5: reaches the cap exactly
    limits = client.limits.get()
    assert limits.usage.sms_sent == 5 and limits.alert.triggered
    with pytest.raises(CapReachedError):
        client.sms.send("US", US[5], "four")
    assert client.limits.get().usage.sms_sent == 5


def test_spend_cap_refuses_exactly_above_the_limit_with_block(gateway, client):
    client.limits.update(daily_spend_cap=Decimal("0.15"), block_on_limit=True)
    client.sms.send("US", US[0:2], "one")  # 0.10
    before = client.account.balance().balance
    with pytest.raises(CapReachedError) as caught:
        client.sms.send("US", US[2:4], "two")  # 0.20 > 0.15
    assert caught.value.cap == "dailySpendCap"
    assert (caught.value.code, caught.value.http_status) == ("3003", 429)
    assert client.account.balance().balance == before

    client.sms.send("US", US[2], "three")  # 0.15 exactly
    assert client.limits.get().usage.spend == Decimal("0.15")
    with pytest.raises(CapReachedError) as caught:
        client.sms.send("US", US[3], "four")
    assert caught.value.cap == "dailySpendCap"
    assert client.account.balance().balance == Decimal(100) - Decimal("0.15")


def test_without_block_the_alert_rises_at_the_threshold_and_sends_go_through(gateway, client):
    limits = client.limits.update(daily_sms_cap=10, alert_threshold=Decimal("0.8"))
    assert limits.block_on_limit is False and limits.alert_threshold == Decimal("0.8")
    client.sms.send("US", US[0:7], "seven")
    assert client.limits.get().alert.triggered is False
    client.sms.send("US", US[7], "eighth")  # 8 = 0.8 × 10
    alert = client.limits.get().alert
    assert alert.triggered is True and alert.at is not None
    client.sms.send("US", US[8:13], "past the cap")  # 13 > 10, not blocked
    limits = client.limits.get()
    assert limits.usage.sms_sent == 13 and limits.alert == alert


def test_limit_changes_apply_to_the_very_next_send(gateway, client):
    client.limits.update(daily_sms_cap=2, block_on_limit=True)
    client.sms.send("US", US[0:2], "two")
    with pytest.raises(CapReachedError):
        client.sms.send("US", US[2], "over")
    client.limits.update(daily_sms_cap=3)
    client.sms.send("US", US[2], "raised")
    with pytest.raises(CapReachedError):
        client.sms.send("US", US[3], "over again")
    client.limits.update(block_on_limit=False)
    client.sms.send("US", US[3], "alert only")
    client.limits.update(block_on_limit=True, daily_spend_cap=Decimal("0.25"))
    with pytest.raises(CapReachedError) as caught:  # the SMS cap is checked first
        client.sms.send("US", US[4], "blocked")
    assert caught.value.cap == "dailySmsCap"
    client.limits.update(daily_sms_cap=None)
    client.sms.send("US", US[4], "spend 0.25 exactly")
    with pytest.raises(CapReachedError) as caught:
        client.sms.send("US", US[5], "blocked by spend")
    assert caught.value.cap == "dailySpendCap"
    client.limits.update(daily_spend_cap=None)
    client.sms.send("US", US[5], "no caps")
    assert client.limits.get().usage.sms_sent == 6


# client_ref returns the first result, also for a retry after a lost response.


def test_client_ref_returns_the_first_result_without_a_second_charge(gateway, client, account):
    first = client.sms.send("US", US[0:2], "Order 42 shipped", client_ref="order-42")
    after_first = client.account.balance().balance
    again = client.sms.send("US", US[0:2], "Order 42 shipped", client_ref="order-42")
    assert again == first  # same task id, msgids, amount
    # Whatever the repeat says, the first result comes back: a resumed bulk send is safe.
    other = client.sms.send("US", US[5:9], "something else", client_ref="order-42")
    assert other == first
    assert client.account.balance().balance == after_first
    assert gateway.query("SELECT count(*) FROM tasks") == [(1,)]
    assert message_count(gateway) == 2
    different = client.sms.send("US", US[0:2], "Order 42 shipped", client_ref="order-43")
    assert different.task_id != first.task_id


class DropFirstSend(httpx.BaseTransport):
    """Delivers every request, but loses the answer to the first send: the server acted."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sends = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/sms/send"):
            self.sends += 1
            if self.sends == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset before the answer", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_send_with_client_ref_is_retried_after_a_lost_response_and_charged_once(gateway, account):
    transport = DropFirstSend()
    with make_client(gateway, account, transport=transport) as client:
        delays: list[float] = []
        client._sleep = delays.append  # no real backoff in tests
        result = client.sms.send("US", US[0:2], "resumable", client_ref="campaign-7/batch-1")
        assert transport.sends == 2 and len(delays) == 1
        [(task_id,)] = gateway.query("SELECT task_id FROM tasks")
        assert result.task_id == task_id  # the first (lost) send's task, not a new one
        assert message_count(gateway) == 2
        assert client.account.balance().balance == Decimal(100) - Decimal("0.10")
        assert client.sms.send("US", US[0:2], "resumable", client_ref="campaign-7/batch-1") == (
            result
        )


def test_a_send_without_client_ref_is_never_retried(gateway, account):
    transport = DropFirstSend()
    with make_client(gateway, account, transport=transport) as client:
        client._sleep = lambda _: pytest.fail("a send without client_ref must not be retried")
        with pytest.raises(APIConnectionError):
            client.sms.send("US", US[0], "not idempotent")
        assert transport.sends == 1
        # The server did act: a blind retry would have sent (and billed) the SMS twice.
        assert message_count(gateway) == 1


def test_a_client_ref_refused_for_its_balance_can_be_sent_after_a_top_up(gateway):
    poor = gateway.create_account(balance="0.04")
    with make_client(gateway, poor) as client:
        with pytest.raises(InsufficientBalanceError):
            client.sms.send("US", US[0], "hello", client_ref="retry-me")
        gateway.topup(poor.email, "0.01")  # only accepted sends claim a clientRef
        result = client.sms.send("US", US[0], "hello", client_ref="retry-me")
        assert result.debited_amount == Decimal("0.05")
        assert client.account.balance().balance == 0
        assert client.sms.send("US", US[0], "hello", client_ref="retry-me") == result


# Refusals: the right error, and no change to the balance.


@pytest.fixture
def untouched(gateway, client, account) -> Iterator[Callable[[], None]]:
    """Checks, after a refusal, that nothing moved: balance, frozen, usage, messages."""
    seen = {
        "balance": client.account.balance(),
        "usage": client.limits.get().usage,
        "books": gateway.money(account.email),
        "messages": message_count(gateway),
    }

    def check() -> None:
        assert client.account.balance() == seen["balance"]
        assert client.limits.get().usage == seen["usage"]
        assert gateway.money(account.email) == seen["books"]
        assert message_count(gateway) == seen["messages"]

    yield check


PAYLOAD = {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "hello"}


def test_a_replayed_body_is_refused_and_charged_once(gateway, client, account):
    body = seal(PAYLOAD, account.encryption_key, api_key=account.api_key)
    assert post(client, body).json()["code"] == "0"
    charged = client.account.balance().balance
    messages = message_count(gateway)
    error = refusal(post(client, body))
    assert isinstance(error, ReplayError)
    assert (error.code, error.http_status) == ("1003", 409)
    assert client.account.balance().balance == charged and message_count(gateway) == messages


def test_a_refused_body_stays_spent_even_after_a_top_up(gateway, client, account):
    poor = gateway.create_account(balance="0")
    body = seal(PAYLOAD, poor.encryption_key, api_key=poor.api_key)
    assert isinstance(refusal(post(client, body)), InsufficientBalanceError)
    gateway.topup(poor.email, "1")
    error = refusal(post(client, body))
    assert isinstance(error, ReplayError)
    assert gateway.money(poor.email)["balance"] == 1_000_000


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_timestamp_is_refused(client, account, untouched, skew):
    body = seal(
        PAYLOAD, account.encryption_key, api_key=account.api_key, timestamp=int(time.time()) + skew
    )
    error = refusal(post(client, body))
    assert isinstance(error, ClockSkewError) and isinstance(error, AuthenticationError)
    assert (error.code, error.http_status) == ("1002", 401)
    untouched()


@pytest.mark.parametrize("server_ahead", [-400, 400])
def test_a_client_whose_clock_is_off_is_refused(gateway_factory, server_ahead):
    gateway = gateway_factory(clock=lambda: time.time() + server_ahead)
    account = gateway.create_account()
    with make_client(gateway, account) as client:
        client._sleep = lambda _: pytest.fail("a refused envelope is not retried")
        with pytest.raises(ClockSkewError) as caught:  # even a send that may be retried
            client.sms.send("US", US[0], "hello", client_ref="skewed")
        assert (caught.value.code, caught.value.http_status) == ("1002", 401)
        assert client.account.balance().balance == Decimal(100)
    assert message_count(gateway) == 0


def test_a_tampered_ciphertext_is_refused(client, account, untouched):
    body = seal(PAYLOAD, account.encryption_key, api_key=account.api_key)
    raw = bytearray(base64.b64decode(body["cipherText"]))
    raw[3] ^= 0x01
    error = refusal(post(client, {**body, "cipherText": base64.b64encode(raw).decode()}))
    assert isinstance(error, DecryptionError)
    assert (error.code, error.http_status) == ("1005", 400)
    # The timestamp travels in the clear but is bound in as AAD: changing it breaks the tag.
    body = seal(PAYLOAD, account.encryption_key, api_key=account.api_key)
    error = refusal(post(client, {**body, "timestamp": body["timestamp"] - 1}))
    assert isinstance(error, DecryptionError)
    untouched()


def test_a_wrong_encryption_key_is_refused(gateway, account, untouched):
    with make_client(gateway, account) as right:
        before = right.account.balance()
    wrong = KedaClient(
        account.api_key, generate_key(), base_url=gateway.base_url, backup_url=gateway.base_url
    )
    with wrong, pytest.raises(DecryptionError) as caught:
        wrong.sms.send("US", US[0], "hello")
    assert (caught.value.code, caught.value.http_status) == ("1005", 400)
    untouched()
    assert before.balance == Decimal(100)


def test_a_wrong_api_key_is_refused(gateway, account, untouched):
    bad_key = "ak_this_key_does_not_exist_0000"
    with make_client(gateway, account) as good:
        wrong = KedaClient(
            bad_key, account.encryption_key, base_url=gateway.base_url, backup_url=gateway.base_url
        )
        with wrong:
            with pytest.raises(AuthenticationError) as caught:
                wrong.sms.send("US", US[0], "hello")
            assert type(caught.value) is AuthenticationError
            assert (caught.value.code, caught.value.http_status) == ("1001", 401)
            assert bad_key not in str(caught.value)
            with pytest.raises(AuthenticationError):
                wrong.account.balance()
        assert good.account.balance().balance == Decimal(100)
    untouched()


@pytest.mark.parametrize(
    "content",
    [
        b'{"apiKey": "x", "timestamp": ',  # not JSON at all
        b"[1, 2, 3]",  # JSON, not an object
        b'{"apiKey": "x", "timestamp": 1, "iv": "AAAA"}',  # a field missing
    ],
)
def test_malformed_json_is_refused(client, untouched, content):
    error = refusal(post(client, content=content))
    assert isinstance(error, MalformedRequestError)
    assert (error.code, error.http_status) == ("1004", 400)
    untouched()


def test_a_sealed_payload_that_is_not_json_is_refused(client, account, untouched):
    body = seal(b'{"countryCode": "US", ', account.encryption_key, api_key=account.api_key)
    error = refusal(post(client, body))
    assert isinstance(error, MalformedRequestError) and error.code == "1004"
    untouched()


def test_an_invalid_number_is_refused_listing_it(client, untouched):
    with pytest.raises(ValidationError) as caught:
        client.sms.send("CN", ["13800138000", "12345"], "hello")
    error = caught.value
    assert (error.code, error.http_status) == ("2001", 422)
    assert [(e["field"], e["value"]) for e in error.errors] == [("phoneNumbers[1]", "12345")]
    with pytest.raises(ValidationError) as caught:  # a number of another country
        client.sms.send("CN", ["+12065550123"], "hello")
    [fault] = caught.value.errors
    assert fault["value"] == "+12065550123" and "US" in fault["message"]
    untouched()


# Concurrency: sync clients in threads against a balance that covers exactly 40 sends.


@pytest.mark.parametrize("shared", [False, True], ids=["client-per-thread", "one-shared-client"])
def test_concurrent_sync_clients_in_threads_accept_exactly_what_the_balance_covers(gateway, shared):
    account = gateway.create_account(balance="2")  # 40 × 0.05
    threads, per_thread = 20, 5
    start = threading.Barrier(threads + 1)
    stop = threading.Event()
    samples: list[Decimal] = []
    common = make_client(gateway, account)

    def worker(index: int) -> list[SendResult | Exception]:
        outcomes: list[SendResult | Exception] = []
        with contextlib.nullcontext(common) if shared else make_client(gateway, account) as client:
            start.wait()
            for k in range(per_thread):
                try:
                    number = US[index * per_thread + k]
                    outcomes.append(client.sms.send("US", number, "race"))
                except InsufficientBalanceError as exc:
                    outcomes.append(exc)
        return outcomes

    def watch() -> None:
        with make_client(gateway, account) as client:
            start.wait()
            while not stop.is_set():
                samples.append(client.account.balance().balance)

    with ThreadPoolExecutor(threads + 1) as pool:
        watcher = pool.submit(watch)
        futures = [pool.submit(worker, i) for i in range(threads)]
        outcomes = [o for f in futures for o in f.result(timeout=60)]
        stop.set()
        watcher.result(timeout=10)
    common.close()

    accepted = [o for o in outcomes if isinstance(o, SendResult)]
    refused = [o for o in outcomes if isinstance(o, InsufficientBalanceError)]
    assert (len(accepted), len(refused)) == (40, 60)
    assert {e.code for e in refused} == {"3001"}
    assert samples and min(samples) >= 0
    debited = sum(r.debited_amount for r in accepted)
    with make_client(gateway, account) as client:
        now = client.account.balance()
        assert now.balance == 0 and debited == Decimal(2) - now.balance
        for result in accepted:
            wait_delivered(gateway, client, result.task_id)
        assert client.account.balance().frozen == 0
    assert money(gateway, account)["charged"] == debited == Decimal(2)
    assert len({r.task_id for r in accepted}) == 40


# Short links, pricing, isolation.


def test_short_links_through_the_client_count_a_visit(gateway, client):
    link = client.shortlinks.create("https://example.com/sale?x=1", title="Sale")
    assert link.url == "https://example.com/sale?x=1" and link.title == "Sale"
    assert link.short_url == f"{gateway.root_url}/s/{link.code}"
    assert (link.clicks, link.unique_clicks, link.last_click_at) == (0, 0, None)
    assert link.code in {item.code for item in client.shortlinks.list()}
    assert client.shortlinks.get(link.code).short_url == link.short_url

    for agent in ("phone-a", "phone-a", "phone-b"):
        visit = httpx.get(link.short_url, follow_redirects=False, headers={"User-Agent": agent})
        assert visit.status_code == 302
        assert visit.headers["location"] == "https://example.com/sale?x=1"
    seen = client.shortlinks.get(link.code)
    assert (seen.clicks, seen.unique_clicks) == (3, 2)
    assert seen.last_click_at is not None and seen.last_click_at >= seen.created_at
    [listed] = [item for item in client.shortlinks.list() if item.code == link.code]
    assert listed == seen
    assert client.account.balance().balance == Decimal(100)  # links are free


def test_pricing_covers_30_countries_with_the_seed_prices(gateway):
    with make_client(gateway) as anonymous:  # pricing needs no key
        pricing = anonymous.pricing()
    assert pricing.currency == "USD"
    assert len(pricing.prices) >= 30
    assert pricing.price_for("CN") == Decimal("0.048") and str(pricing.prices["CN"]) == "0.048"
    assert pricing.price_for("us") == Decimal("0.05") and str(pricing.prices["US"]) == "0.05"
    assert all(isinstance(p, Decimal) and p > 0 for p in pricing.prices.values())


def test_one_account_cannot_see_anothers_messages_tasks_or_links(gateway, client, account):
    result = client.sms.send("US", US[0], "private")
    link = client.shortlinks.create("https://example.com/private")
    intruder = gateway.create_account()
    with make_client(gateway, intruder) as other:
        with pytest.raises(NotFoundError) as theirs:
            other.sms.status(result.messages[0].msgid)
        with pytest.raises(NotFoundError) as missing:
            other.sms.status("msg_000000000000")
        assert str(theirs.value).replace(result.messages[0].msgid, "?") == str(
            missing.value
        ).replace("msg_000000000000", "?")  # as if it did not exist
        with pytest.raises(NotFoundError):
            other.sms.task(result.task_id)
        with pytest.raises(NotFoundError):
            other.shortlinks.get(link.code)
        assert other.shortlinks.list() == []
        assert other.account.balance().balance == Decimal(100)
        assert other.limits.get().usage.sms_sent == 0
    assert client.sms.status(result.messages[0].msgid).task_id == result.task_id
    assert client.shortlinks.get(link.code).url == "https://example.com/private"


def test_a_redirect_is_reported_not_followed(gateway, client, account):
    """A wrong base address that redirects must not carry the key (or a POST) elsewhere."""
    link = client.shortlinks.create(gateway.base_url + "/external/accounts/balance")
    redirecting = f"{gateway.root_url}/s/{link.code}?to="
    misdirected = KedaClient(account.api_key, base_url=redirecting, backup_url=redirecting)
    with misdirected, pytest.raises(APIError) as caught:
        misdirected.account.balance()
    assert caught.value.http_status == 302 and "redirected" in str(caught.value)


# Register → verify → top up → send.


def mail_token(gateway, address: str) -> str:
    mails = sorted((Path(gateway.db_path).parent / "mail").glob("*.txt"))
    texts = [m.read_text() for m in mails if address in m.name]
    assert texts, f"no mail to {address} in the outbox"
    match = re.search(r"^Verification token: (\S+)$", texts[-1], re.MULTILINE)
    assert match, texts[-1]
    return match.group(1)


def test_register_verify_then_send_with_the_new_credentials(gateway):
    with make_client(gateway) as anonymous:
        registration = anonymous.account.register("Ada@Example.com", "correct horse battery")
        assert registration.email == "ada@example.com"
        token = mail_token(gateway, "ada@example.com")
        credentials = anonymous.account.verify(token)
        assert credentials.email == "ada@example.com"
        assert credentials.api_key not in repr(credentials)
        with pytest.raises(NotFoundError):  # the token is single-use
            anonymous.account.verify(token)

    with KedaClient(
        credentials.api_key,
        credentials.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ) as client:
        assert client.account.balance().balance == 0
        with pytest.raises(InsufficientBalanceError):
            client.sms.send("US", US[0], "hello")
        gateway.topup("ada@example.com", "1")
        result = client.sms.send("US", US[0], "hello", client_ref="first")
        assert result.debited_amount == Decimal("0.05")
        assert client.account.balance().balance == Decimal("0.95")
        wait_delivered(gateway, client, result.task_id)
