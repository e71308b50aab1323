"""KedaClient's retry policy: what is retried, how long it waits, and what never is."""

from __future__ import annotations

import json
import logging
import random
import socket
import types
from collections.abc import Callable, Iterable

import httpx
import pytest

from kedacore import KedaClient, envelope
from kedacore.api.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    CapReachedError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)

API_KEY = "ak_test_7c1e4b9a2d6f0e55"
ENC_KEY = envelope.generate_key()

BALANCE_OK = '{"code":"0","message":"Success","data":{"balance":10,"frozen":0,"currency":"USD"}}'
LIMITS_OK = (
    '{"code":"0","message":"Success","data":{"dailySmsCap":null,"dailySpendCap":null,'
    '"alertThreshold":0.8,"blockOnLimit":false,"usage":{"date":"2024-01-01","smsSent":0,'
    '"spend":0,"frozen":0},"alert":{"triggered":false,"at":null}}}'
)
SEND_OK = (
    '{"code":"0","message":"Success","data":{"taskId":"20240408-0001","message":"SMS task created",'
    '"debitedAmount":0.048,"currency":"USD","segments":1,'
    '"messages":[{"msgid":"msg_abc123def456","recipient":"+8613800138000"}]}}'
)
LINK_OK = (
    '{"code":"0","message":"Success","data":{"code":"aB3dE9","shortUrl":"https://s/aB3dE9",'
    '"url":"https://example.com","createdAt":"2024-01-01T10:00:00Z"}}'
)

Step = int | str | type[Exception] | tuple[int, dict[str, str]]


def json_response(text: str, status: int = 200, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=text.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_body(code: str) -> str:
    return json.dumps({"code": code, "message": f"error {code}", "data": None})


class Script:
    """A handler that plays a list of steps, one per request, and records the requests.

    A step is a success body (str), an HTTP status (a 5000/4029-style error body is added),
    ``(status, headers)``, or an httpx exception class to raise.
    """

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, type):
            raise step("scripted failure", request=request)
        if isinstance(step, str):
            return json_response(step)
        status, headers = step if isinstance(step, tuple) else (step, {})
        code = {429: "4029", 404: "4004", 401: "1001", 422: "2001"}.get(status, "5000")
        return json_response(error_body(code), status, headers)


def make(steps: Iterable[Step], **kwargs) -> tuple[KedaClient, Script, list[float]]:
    script = Script(steps)
    client = KedaClient(
        API_KEY, ENC_KEY, transport=httpx.MockTransport(script), **kwargs
    )  # fmt: skip
    sleeps: list[float] = []
    client._sleep = sleeps.append  # never sleep for real
    client._jitter = lambda: 0.0
    return client, script, sleeps


GETS: list[Callable[[KedaClient], object]] = [
    lambda c: c.account.balance(),
    lambda c: c.limits.get(),
    lambda c: c.sms.status("msg_abc123def456"),
    lambda c: c.shortlinks.list(),
    lambda c: c.pricing(),
]


# --- idempotent calls (GET, PUT) -------------------------------------------------------------


@pytest.mark.parametrize("failure", [500, 502, 503, 504, 429, httpx.ConnectError, httpx.ReadError])
def test_get_is_retried_then_succeeds(failure: Step) -> None:
    client, script, sleeps = make([failure, failure, BALANCE_OK])
    assert client.account.balance().currency == "USD"
    assert len(script.requests) == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("call", GETS)
def test_every_get_is_retried(call: Callable[[KedaClient], object]) -> None:
    client, script, sleeps = make([503, 503, 503])
    with pytest.raises(InternalServerError):
        call(client)
    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_put_is_retried_with_the_same_body() -> None:
    client, script, sleeps = make([500, httpx.ConnectError, LIMITS_OK])
    client.limits.update(daily_sms_cap=100)
    assert [r.method for r in script.requests] == ["PUT"] * 3
    assert len({r.content for r in script.requests}) == 1
    assert sleeps == [0.5, 1.0]


def test_retries_are_bounded_by_max_retries() -> None:
    client, script, sleeps = make([500] * 4, max_retries=3)
    with pytest.raises(InternalServerError) as info:
        client.account.balance()
    assert info.value.code == "5000"
    assert len(script.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_no_retries_when_max_retries_is_zero() -> None:
    client, script, sleeps = make([503], max_retries=0)
    with pytest.raises(InternalServerError):
        client.account.balance()
    assert len(script.requests) == 1 and sleeps == []


def test_backoff_doubles_up_to_eight_seconds() -> None:
    client, _, sleeps = make([500] * 7 + [BALANCE_OK], max_retries=7)
    client.account.balance()
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_shortens_the_wait_by_at_most_a_quarter() -> None:
    client, _, sleeps = make([500, 500, BALANCE_OK])
    client._jitter = lambda: 1.0
    client.account.balance()
    assert sleeps == [0.375, 0.75]


def test_default_jitter_stays_within_bounds() -> None:
    client, _, sleeps = make([500] * 5 + [BALANCE_OK], max_retries=5)
    client._jitter = random.random
    client.account.balance()
    for wait, full in zip(sleeps, [0.5, 1, 2, 4, 8], strict=True):
        assert 0.75 * full <= wait <= full


def test_retry_after_is_honoured() -> None:
    client, script, sleeps = make(
        [(429, {"Retry-After": "3"}), (503, {"Retry-After": "0"}), BALANCE_OK]
    )
    client.account.balance()
    assert len(script.requests) == 3
    assert sleeps == [3.0, 0.0]


def test_a_long_retry_after_is_left_to_the_caller() -> None:
    client, script, sleeps = make([(429, {"Retry-After": "120"}), BALANCE_OK])
    with pytest.raises(RateLimitError) as info:
        client.account.balance()
    assert info.value.retry_after == 120.0
    assert len(script.requests) == 1 and sleeps == []


def test_a_proxy_html_502_is_retried() -> None:
    def handler(request: httpx.Request, calls: list[int] = []) -> httpx.Response:  # noqa: B006
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                502, text="<h1>502 Bad Gateway</h1>", headers={"Content-Type": "text/html"}
            )
        return json_response(BALANCE_OK)

    client = KedaClient(API_KEY, transport=httpx.MockTransport(handler))
    sleeps: list[float] = []
    client._sleep = sleeps.append
    assert client.account.balance().balance == 10
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, AuthenticationError), (404, NotFoundError), (422, ValidationError)],
)
def test_client_errors_are_not_retried(status: int, cls: type) -> None:
    client, script, sleeps = make([status, BALANCE_OK])
    with pytest.raises(cls):
        client.account.balance()
    assert len(script.requests) == 1 and sleeps == []


def test_a_reached_cap_is_not_retried_although_it_is_a_429() -> None:
    script = Script([])
    client = KedaClient(
        API_KEY,
        ENC_KEY,
        transport=httpx.MockTransport(
            lambda r: script.requests.append(r) or json_response(error_body("3002"), 429)
        ),
    )
    client._sleep = pytest.fail
    with pytest.raises(CapReachedError) as info:
        client.sms.send("US", ["+12065550123"], "hi", client_ref="ref-1")
    assert info.value.cap == "dailySmsCap"
    assert len(script.requests) == 1


# --- timeouts ------------------------------------------------------------------------------


def test_timeouts_become_api_timeout_errors_after_retries() -> None:
    client, script, sleeps = make([httpx.ReadTimeout] * 3)
    with pytest.raises(APITimeoutError) as info:
        client.limits.get()
    assert isinstance(info.value, APIConnectionError)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert "external/accounts/limits" in str(info.value)
    assert len(script.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("exc", [httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout])
def test_every_timeout_kind_is_a_timeout(exc: type[Exception]) -> None:
    client, _, _ = make([exc], max_retries=0)
    with pytest.raises(APITimeoutError):
        client.account.balance()


def test_connection_refused_is_an_api_connection_error() -> None:
    client, _, _ = make([httpx.ConnectError], max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        client.account.balance()
    assert not isinstance(info.value, APITimeoutError)
    assert "scripted failure" in str(info.value)


def test_a_real_timeout_is_reported() -> None:
    """A server that accepts the connection and never answers: httpx's own read timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        client = KedaClient(
            API_KEY, backup_url=f"http://127.0.0.1:{port}/api", timeout=0.2, max_retries=0
        )
        with pytest.raises(APITimeoutError) as info:
            client.account.balance()
        client.close()
    assert f"127.0.0.1:{port}/api/external/accounts/balance" in str(info.value)


# --- sends and short links -------------------------------------------------------------------


@pytest.mark.parametrize("failure", [500, 502, 429, httpx.ConnectError, httpx.ReadTimeout])
def test_a_send_without_client_ref_is_never_retried(failure: Step) -> None:
    client, script, sleeps = make([failure, SEND_OK])
    with pytest.raises((InternalServerError, RateLimitError, APIConnectionError)):
        client.sms.send("CN", ["13800138000"], "hi")
    assert len(script.requests) == 1 and sleeps == []


def test_a_send_with_client_ref_is_retried_with_a_fresh_iv_and_timestamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_700_000_000.0]
    monkeypatch.setattr(envelope, "time", types.SimpleNamespace(time=lambda: clock[0]))
    client, script, sleeps = make([502, httpx.ReadTimeout, SEND_OK])
    client._sleep = lambda seconds: clock.__setitem__(0, clock[0] + 1 + seconds)
    result = client.sms.send("CN", ["13800138000"], "hi", client_ref="campaign-7/row-12")
    assert result.task_id == "20240408-0001"
    assert len(script.requests) == 3
    bodies = [json.loads(r.content) for r in script.requests]
    assert len({b["iv"] for b in bodies}) == 3, "each attempt needs its own IV (else 1003)"
    assert [b["timestamp"] for b in bodies] == [1_700_000_000, 1_700_000_001, 1_700_000_003]
    for body in bodies:
        payload = json.loads(envelope.open_body(body, ENC_KEY, now=body["timestamp"]))
        assert payload == {
            "countryCode": "CN",
            "phoneNumbers": ["13800138000"],
            "content": "hi",
            "clientRef": "campaign-7/row-12",
        }
    assert sleeps == []  # replaced by the clock-advancing sleep above


def test_a_send_with_client_ref_gives_up_after_max_retries() -> None:
    client, script, sleeps = make([503, 503, 503])
    with pytest.raises(InternalServerError):
        client.sms.send("CN", ["13800138000"], "hi", client_ref="r-1")
    assert len(script.requests) == 3 and sleeps == [0.5, 1.0]


@pytest.mark.parametrize("failure", [500, httpx.ConnectError])
def test_shortlink_create_is_never_retried(failure: Step) -> None:
    client, script, sleeps = make([failure, LINK_OK])
    with pytest.raises((InternalServerError, APIConnectionError)):
        client.shortlinks.create("https://example.com")
    assert len(script.requests) == 1 and sleeps == []


def test_register_is_never_retried() -> None:
    client, script, _ = make([500, '{"code":"0","message":"Success","data":{}}'])
    with pytest.raises(InternalServerError):
        client.account.register("a@example.com", "pw")
    assert len(script.requests) == 1


def test_retry_logs_hold_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    client, _, _ = make([500, httpx.ConnectError, BALANCE_OK])
    with caplog.at_level(logging.DEBUG, logger="kedacore"):
        client.account.balance()
    assert "retrying" in caplog.text
    assert API_KEY not in caplog.text and ENC_KEY not in caplog.text
