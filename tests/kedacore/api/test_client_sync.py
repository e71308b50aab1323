"""KedaClient against httpx.MockTransport: hosts, headers, envelopes, typed results."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

import kedacore
from kedacore import KedaClient, envelope
from kedacore.api.errors import (
    ConfigurationError,
    MissingCredentialsError,
    NotFoundError,
    ValidationError,
)

API_KEY = "ak_test_5f2b9c0e7a1d4e38"
ENC_KEY = envelope.generate_key()
BASE = "https://www.kedasms.net/api"
BACKUP = "https://backup.kedasms.net/api"

SEND_OK = (
    '{"code":"0","message":"Success","data":{"taskId":"20240408-0001",'
    '"message":"SMS task created","debitedAmount":0.048,"currency":"USD","segments":1,'
    '"messages":[{"msgid":"msg_abc123def456","recipient":"+8613800138000"}]}}'
)
STATUS_DATA = {
    "msgid": "msg_abc123def456",
    "status": "DELIVERED",
    "recipient": "+12065550123",
    "sender": "KedaSMS",
    "message": "Your verification code is 123456",
    "sent_time": "2024-01-01T12:00:00Z",
    "delivered_time": "2024-01-01T12:00:05Z",
    "taskId": "20240101-0001",
    "segments": 1,
}
LIMITS_OK = (
    '{"code":"0","message":"Success","data":{"dailySmsCap":5000,"dailySpendCap":200,'
    '"alertThreshold":0.8,"blockOnLimit":true,"usage":{"date":"2024-01-01","smsSent":12,'
    '"spend":0.576,"frozen":0.048},"alert":{"triggered":false,"at":null}}}'
)
LINK = {
    "code": "aB3dE9",
    "shortUrl": "https://www.kedasms.net/s/aB3dE9",
    "url": "https://example.com/sale",
    "title": "Sale",
    "createdAt": "2024-01-01T10:00:00Z",
    "clicks": 3,
    "uniqueClicks": 2,
    "lastClickAt": "2024-01-01T11:00:00Z",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)


def ok(data: object) -> httpx.Response:
    return httpx.Response(200, json={"code": "0", "message": "Success", "data": data})


def raw(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=text.encode(), headers={"Content-Type": "application/json"}
    )


class Recorder:
    """A MockTransport handler that records each request and answers with ``reply``."""

    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make(reply: Callable[[httpx.Request], httpx.Response], **kwargs) -> tuple[KedaClient, Recorder]:
    recorder = Recorder(reply)
    options = {"api_key": API_KEY, "encryption_key": ENC_KEY, **kwargs}
    return KedaClient(transport=httpx.MockTransport(recorder), **options), recorder


def opened(request: httpx.Request) -> dict:
    """The decrypted payload of an envelope request (and the envelope's shape checked)."""
    body = json.loads(request.content)
    assert set(body) == {"apiKey", "timestamp", "iv", "cipherText"}
    assert body["apiKey"] == API_KEY
    return json.loads(envelope.open_body(body, ENC_KEY))


# --- sending -------------------------------------------------------------------------------


def test_send_seals_the_payload_and_returns_exact_money() -> None:
    client, rec = make(lambda r: raw(SEND_OK))
    result = client.sms.send(
        "CN",
        ["13800138000"],
        "您的验证码为 123456",
        sender_id="KedaSMS",
        track_click=True,
        callback_url="https://example.com/webhook/sms",
        client_ref="order-42",
    )
    request = rec.last
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/sms/send"
    assert request.headers["content-type"] == "application/json"
    assert "x-api-key" not in request.headers  # the key travels in the envelope
    assert opened(request) == {
        "countryCode": "CN",
        "phoneNumbers": ["13800138000"],
        "content": "您的验证码为 123456",
        "senderId": "KedaSMS",
        "trackClick": True,
        "callbackUrl": "https://example.com/webhook/sms",
        "clientRef": "order-42",
    }
    assert result == kedacore.SendResult(
        task_id="20240408-0001",
        message="SMS task created",
        debited_amount=Decimal("0.048"),
        currency="USD",
        segments=1,
        messages=(kedacore.SentMessage("msg_abc123def456", "+8613800138000"),),
    )
    assert str(result.debited_amount) == "0.048"


def test_send_leaves_out_optional_fields_and_takes_one_number() -> None:
    client, rec = make(lambda r: raw(SEND_OK))
    client.sms.send("US", "+12065550123", "hi")
    assert opened(rec.last) == {
        "countryCode": "US",
        "phoneNumbers": ["+12065550123"],
        "content": "hi",
    }


def test_send_timestamp_is_current() -> None:
    client, rec = make(lambda r: raw(SEND_OK))
    client.sms.send("US", ["+12065550123"], "hi")
    timestamp = json.loads(rec.last.content)["timestamp"]
    assert abs(timestamp - datetime.now(UTC).timestamp()) < 5


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("", ["1"], "hi"), "''"),
        (("CN", [], "hi"), "[]"),
        (("CN", ["13800138000", ""], "hi"), "''"),
        (("CN", ["13800138000"], ""), "''"),
        (("CN", ["13800138000"], None), "None"),
    ],
)
def test_send_refuses_empty_arguments(args: tuple, shown: str) -> None:
    client, rec = make(lambda r: raw(SEND_OK))
    with pytest.raises(ValueError, match=r"non-empty|at least one") as info:
        client.sms.send(*args)
    assert shown in str(info.value)
    assert rec.requests == []


def test_send_refuses_more_than_1000_numbers_and_long_client_refs() -> None:
    client, rec = make(lambda r: raw(SEND_OK))
    with pytest.raises(ValueError, match="at most 1000"):
        client.sms.send("US", ["+12065550123"] * 1001, "hi")
    with pytest.raises(ValueError, match="at most 64"):
        client.sms.send("US", ["+12065550123"], "hi", client_ref="x" * 65)
    assert rec.requests == []


def test_send_options_are_keyword_only() -> None:
    client, _ = make(lambda r: raw(SEND_OK))
    with pytest.raises(TypeError):
        client.sms.send("US", ["+12065550123"], "hi", "KedaSMS")  # type: ignore[misc]


def test_validation_error_from_a_send() -> None:
    data = {"errors": [{"field": "phoneNumbers[0]", "message": "invalid", "value": "123"}]}
    client, _ = make(
        lambda r: httpx.Response(
            422, json={"code": "2001", "message": "invalid payload", "data": data}
        )
    )
    with pytest.raises(ValidationError) as info:
        client.sms.send("CN", ["123"], "hi")
    assert info.value.errors[0]["value"] == "123"


def test_a_refused_callback_url_is_not_echoed_with_its_secret() -> None:
    # A callback URL of the customer's own: the client knows its secret parts and masks them
    # wherever the refusal repeats them (here as a bare path, no URL pattern to find).
    callback = "https://hooks.example.com/keda/9f8e7d6c5b4a39281706f5e4"
    data = {
        "errors": [
            {"field": "callbackUrl", "message": "refused", "value": "keda/9f8e7d6c5b4a39281706f5e4"}
        ]
    }
    client, _ = make(
        lambda r: httpx.Response(
            422, json={"code": "2001", "message": "invalid payload", "data": data}
        )
    )
    with pytest.raises(ValidationError) as info:
        client.sms.send("US", ["+12065550123"], "hi", callback_url=callback)
    err = info.value
    for text in (str(err), repr(err.details), err.errors[0]["value"]):
        assert "9f8e7d6c5b4a39281706f5e4" not in text
    assert "…f5e4" in str(err)


# --- status --------------------------------------------------------------------------------


def test_status_uses_the_backup_host_and_the_key_header() -> None:
    client, rec = make(
        lambda r: httpx.Response(200, json={"success": True, "data": STATUS_DATA, "code": 200})
    )
    status = client.sms.status("msg_abc123def456")
    request = rec.last
    assert request.method == "GET"
    assert request.url.host == "backup.kedasms.net"
    assert request.url.path == "/api/sms/status"
    assert request.url.params["msgid"] == "msg_abc123def456"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["user-agent"] == f"kedacore/{kedacore.__version__}"
    assert request.content == b""
    assert status.status == "DELIVERED" and status.final
    assert status.task_id == "20240101-0001"
    assert status.delivered_time == datetime(2024, 1, 1, 12, 0, 5, tzinfo=UTC)


def test_a_time_without_a_zone_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from kedacore.wiretime import parse_time

    monkeypatch.setenv("TZ", "Asia/Shanghai")  # UTC+8: a local reading would be 8 h off
    time.tzset()
    try:
        assert parse_time("2024-01-01T12:00:05") == datetime(2024, 1, 1, 12, 0, 5, tzinfo=UTC)
        assert parse_time("2024-01-01T12:00:05Z") == datetime(2024, 1, 1, 12, 0, 5, tzinfo=UTC)
        assert parse_time("2024-01-01T20:00:05+08:00") == datetime(2024, 1, 1, 12, 0, 5, tzinfo=UTC)
        naive = {**STATUS_DATA, "sent_time": "2024-01-01T12:00:00", "delivered_time": None}
        client, _ = make(lambda r: ok(naive))
        assert client.sms.status("msg_abc123def456").sent_time == datetime(
            2024, 1, 1, 12, 0, tzinfo=UTC
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_status_not_found_in_the_status_shape() -> None:
    client, _ = make(
        lambda r: httpx.Response(
            404, json={"success": False, "data": None, "code": 404, "message": "no such message"}
        )
    )
    with pytest.raises(NotFoundError, match="no such message"):
        client.sms.status("msg_000000000000")


def test_task_lists_every_message() -> None:
    second = {**STATUS_DATA, "msgid": "msg_abc123def457", "status": "QUEUED", "cost": "0.05"}
    client, rec = make(
        lambda r: httpx.Response(
            200, json={"success": True, "data": [STATUS_DATA, second], "code": 200}
        )
    )
    statuses = client.sms.task("20240101-0001")
    assert rec.last.url.params["taskId"] == "20240101-0001"
    assert [s.msgid for s in statuses] == ["msg_abc123def456", "msg_abc123def457"]
    assert statuses[1].cost == Decimal("0.05")


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_identifiers_raise_value_error_with_repr(bad: object) -> None:
    client, rec = make(lambda r: ok({}))
    for call, name in [
        (client.sms.status, "msgid"),
        (client.sms.task, "task_id"),
        (client.shortlinks.get, "code"),
        (client.shortlinks.create, "url"),
    ]:
        with pytest.raises(ValueError) as info:
            call(bad)
        assert name in str(info.value) and repr(bad) in str(info.value)
    assert rec.requests == []


# --- limits --------------------------------------------------------------------------------


def test_limits_get() -> None:
    client, rec = make(lambda r: raw(LIMITS_OK))
    limits = client.limits.get()
    assert str(rec.last.url) == f"{BACKUP}/external/accounts/limits"
    assert rec.last.headers["x-api-key"] == API_KEY
    assert limits.daily_sms_cap == 5000
    assert limits.daily_spend_cap == Decimal("200")
    assert limits.alert_threshold == Decimal("0.8")
    assert limits.usage.spend == Decimal("0.576")
    assert limits.usage.frozen == Decimal("0.048")
    assert limits.block_on_limit is True


def test_limits_update_sends_only_given_fields_with_exact_numbers() -> None:
    client, rec = make(lambda r: raw(LIMITS_OK))
    client.limits.update(daily_spend_cap=Decimal("200.10"), alert_threshold="0.80")
    request = rec.last
    assert request.method == "PUT"
    assert str(request.url) == f"{BACKUP}/external/accounts/limits"
    assert request.headers["x-api-key"] == API_KEY
    assert request.content == (
        b'{"dailySpendCap":200.1,"alertThreshold":0.8,"apiKey":"' + API_KEY.encode() + b'"}'
    )


def test_limits_update_digits_beyond_a_float() -> None:
    client, rec = make(lambda r: raw(LIMITS_OK))
    client.limits.update(daily_spend_cap="12345678901234.123456")
    body = json.loads(rec.last.content, parse_float=Decimal)
    assert body["dailySpendCap"] == Decimal("12345678901234.123456")
    assert b"12345678901234.123456" in rec.last.content


def test_limits_update_none_means_no_cap() -> None:
    client, rec = make(lambda r: raw(LIMITS_OK))
    client.limits.update(daily_sms_cap=None, daily_spend_cap=None, block_on_limit=False)
    assert json.loads(rec.last.content) == {
        "dailySmsCap": None,
        "dailySpendCap": None,
        "blockOnLimit": False,
        "apiKey": API_KEY,
    }


def test_limits_update_seed_body() -> None:
    client, rec = make(lambda r: raw(LIMITS_OK))
    client.limits.update(
        daily_sms_cap=5000, daily_spend_cap=200, alert_threshold=0.8, block_on_limit=True
    )
    assert rec.last.content.startswith(
        b'{"dailySmsCap":5000,"dailySpendCap":200,"alertThreshold":0.8,"blockOnLimit":true,'
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"daily_spend_cap": 200.5},  # a float is not exact money
        {"daily_spend_cap": "lots"},
        {"daily_spend_cap": "-1"},
        {"daily_sms_cap": -1},
        {"daily_sms_cap": True},
        {"daily_sms_cap": "5000"},
        {"alert_threshold": None},
        {"block_on_limit": "yes"},
        {"block_on_limit": None},
    ],
)
def test_limits_update_refuses_bad_values(kwargs: dict) -> None:
    client, rec = make(lambda r: raw(LIMITS_OK))
    with pytest.raises(ValueError):
        client.limits.update(**kwargs)
    assert rec.requests == []


def test_limits_update_is_keyword_only() -> None:
    client, _ = make(lambda r: raw(LIMITS_OK))
    with pytest.raises(TypeError):
        client.limits.update(5000)  # type: ignore[misc]


# --- account, pricing, short links ---------------------------------------------------------


def test_balance_is_exact() -> None:
    client, rec = make(
        lambda r: raw(
            '{"code":"0","message":"Success","data":{"balance":99.952,"frozen":0.048,"currency":"USD"}}'
        )
    )
    balance = client.account.balance()
    assert str(rec.last.url) == f"{BACKUP}/external/accounts/balance"
    assert rec.last.headers["x-api-key"] == API_KEY
    assert balance == kedacore.Balance(Decimal("99.952"), Decimal("0.048"), "USD")
    assert balance.balance + balance.frozen == Decimal("100")


def test_pricing_needs_no_key_and_uses_the_proxy() -> None:
    rec = Recorder(
        lambda r: raw(
            '{"code":"0","message":"Success","data":{"currency":"USD","countries":['
            '{"countryCode":"CN","pricePerSegment":0.048},{"countryCode":"US","pricePerSegment":0.05}]}}'
        )
    )
    client = KedaClient(transport=httpx.MockTransport(rec))
    pricing = client.pricing()
    assert str(rec.last.url) == f"{BASE}/pricing"
    assert "x-api-key" not in rec.last.headers
    assert pricing.price_for("cn") == Decimal("0.048")
    assert pricing.prices["US"] == Decimal("0.05")


def test_register_and_verify_need_no_key() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/register"):
            return ok({"email": "a@example.com", "message": "check your e-mail"})
        return ok(
            {"email": "a@example.com", "apiKey": "ak_new_1234567890abcd", "encryptionKey": ENC_KEY}
        )

    rec = Recorder(reply)
    client = KedaClient(transport=httpx.MockTransport(rec))
    registration = client.account.register("a@example.com", "s3cret-pass")
    assert str(rec.last.url) == f"{BASE}/accounts/register"
    assert json.loads(rec.last.content) == {"email": "a@example.com", "password": "s3cret-pass"}
    assert "x-api-key" not in rec.last.headers
    assert registration == kedacore.Registration("a@example.com", "check your e-mail")
    credentials = client.account.verify("tok-123")
    assert str(rec.last.url) == f"{BASE}/accounts/verify"
    assert json.loads(rec.last.content) == {"token": "tok-123"}
    assert credentials.api_key == "ak_new_1234567890abcd"
    assert credentials.encryption_key == ENC_KEY
    assert ENC_KEY not in repr(credentials)


def test_register_refuses_empty_values_without_echoing_the_password() -> None:
    client = KedaClient(transport=httpx.MockTransport(lambda r: ok({})))
    with pytest.raises(ValueError, match="''"):
        client.account.register("", "pw")
    with pytest.raises(ValueError) as info:
        client.account.register("a@example.com", "")
    assert "password" in str(info.value)
    with pytest.raises(ValueError):
        client.account.verify("")


def test_shortlink_create_is_sealed_to_the_proxy() -> None:
    client, rec = make(lambda r: ok(LINK))
    link = client.shortlinks.create("https://example.com/sale", title="Sale")
    assert str(rec.last.url) == f"{BASE}/shortlinks"
    assert opened(rec.last) == {"url": "https://example.com/sale", "title": "Sale"}
    assert link.short_url == "https://www.kedasms.net/s/aB3dE9"
    assert link.unique_clicks == 2


def test_shortlink_list_and_get_use_the_backup_host() -> None:
    client, rec = make(lambda r: ok([LINK]) if r.url.path.endswith("/shortlinks") else ok(LINK))
    links = client.shortlinks.list()
    assert str(rec.last.url.copy_with(query=None)) == f"{BACKUP}/shortlinks"
    assert dict(rec.last.url.params) == {"limit": "1000", "offset": "0"}  # every page
    assert rec.last.headers["x-api-key"] == API_KEY
    assert [link.code for link in links] == ["aB3dE9"]
    link = client.shortlinks.get("aB3dE9")
    assert str(rec.last.url) == f"{BACKUP}/shortlinks/aB3dE9"
    assert link.clicks == 3
    client.shortlinks.get("a/b c")
    assert rec.last.url.raw_path == b"/api/shortlinks/a%2Fb%20c"


def test_shortlink_list_wrapped_in_an_object() -> None:
    client, _ = make(lambda r: ok({"links": [LINK, {**LINK, "code": "xY7zQ2"}]}))
    assert len(client.shortlinks.list()) == 2


def test_unreadable_data_is_an_api_error_not_a_key_error() -> None:
    client, _ = make(lambda r: ok({"unexpected": True}))
    with pytest.raises(kedacore.APIError, match="cannot read"):
        client.account.balance()


def test_a_200_with_a_failure_code_is_an_error() -> None:
    client, _ = make(
        lambda r: httpx.Response(200, json={"code": "4004", "message": "gone", "data": None})
    )
    with pytest.raises(NotFoundError):
        client.shortlinks.get("x")


def test_a_200_that_is_not_json_is_an_error() -> None:
    client, _ = make(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(kedacore.APIError, match="not JSON"):
        client.account.balance()


# --- credentials and configuration ---------------------------------------------------------


def test_missing_api_key_is_raised_before_any_request() -> None:
    rec = Recorder(lambda r: ok({}))
    client = KedaClient(encryption_key=ENC_KEY, transport=httpx.MockTransport(rec))
    for call in (
        lambda: client.sms.send("US", ["+12065550123"], "hi"),
        lambda: client.sms.status("msg_abc123def456"),
        client.limits.get,
        client.account.balance,
        client.shortlinks.list,
    ):
        with pytest.raises(MissingCredentialsError, match="KEDA_API_KEY"):
            call()
    assert rec.requests == []


def test_missing_encryption_key_is_raised_before_any_request() -> None:
    rec = Recorder(lambda r: ok({}))
    client = KedaClient(API_KEY, transport=httpx.MockTransport(rec))
    with pytest.raises(MissingCredentialsError, match="KEDA_ENCRYPTION_KEY") as info:
        client.sms.send("US", ["+12065550123"], "hi")
    assert info.value.operation == "sms.send"
    with pytest.raises(MissingCredentialsError):
        client.shortlinks.create("https://example.com")
    assert rec.requests == []


def test_environment_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDA_API_KEY", API_KEY)
    monkeypatch.setenv("KEDA_ENCRYPTION_KEY", ENC_KEY)
    monkeypatch.setenv("KEDA_BASE_URL", "http://127.0.0.1:8787/api/")
    monkeypatch.setenv("KEDA_BACKUP_URL", "http://127.0.0.1:8788/api")
    rec = Recorder(lambda r: raw(SEND_OK) if r.method == "POST" else raw(LIMITS_OK))
    client = KedaClient(transport=httpx.MockTransport(rec))
    assert client.base_url == "http://127.0.0.1:8787/api"
    client.sms.send("US", ["+12065550123"], "hi")
    assert str(rec.last.url) == "http://127.0.0.1:8787/api/sms/send"
    assert opened(rec.last)["content"] == "hi"
    client.limits.get()
    assert str(rec.last.url) == "http://127.0.0.1:8788/api/external/accounts/limits"
    assert rec.last.headers["x-api-key"] == API_KEY


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDA_API_KEY", "ak_from_env_00000000")
    monkeypatch.setenv("KEDA_BASE_URL", "http://env.example/api")
    rec = Recorder(lambda r: raw(LIMITS_OK))
    client = KedaClient(
        API_KEY, backup_url="http://arg.example/api", transport=httpx.MockTransport(rec)
    )
    client.limits.get()
    assert rec.last.headers["x-api-key"] == API_KEY
    assert rec.last.url.host == "arg.example"
    assert client.base_url == "http://env.example/api"


def test_defaults() -> None:
    client = KedaClient()
    assert client.base_url == BASE
    assert client.backup_url == BACKUP
    assert client.max_retries == 2
    assert client._http.timeout.read == 10.0
    client.close()


def test_bad_configuration_is_refused_without_showing_the_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        KedaClient(API_KEY, "bm90LWEta2V5LWF0LWFsbA==")
    assert "32 bytes" in str(info.value)
    assert "bm90LWEta2V5" not in str(info.value)
    with pytest.raises(ConfigurationError, match="http"):
        KedaClient(base_url="ftp://example.com")
    with pytest.raises(ValueError, match="max_retries"):
        KedaClient(max_retries=-1)


def test_secrets_never_appear_in_repr() -> None:
    client, _ = make(lambda r: ok({}))
    text = repr(client) + str(client)
    assert API_KEY not in text and ENC_KEY not in text
    assert "…4e38" in text and "encryption_key=set" in text


def test_the_settings_and_endpoints_never_show_a_secret_whole() -> None:
    from kedacore.api import _endpoints as ep
    from kedacore.api.types import Credentials

    client, _ = make(lambda r: ok({}), base_url="https://console:pw-0123456789@proxy.example/api")
    raw_key = envelope.decode_key(ENC_KEY)
    for text in (repr(client._settings), str(client._settings), repr(client)):
        assert API_KEY not in text and ENC_KEY not in text and repr(raw_key) not in text
        assert "pw-0123456789" not in text
        assert "…4e38" in text and "proxy.example" in text
    secret = "correct-horse-battery-staple"
    for endpoint in (ep.register("ann@example.com", secret), ep.verify(secret)):
        assert secret not in repr(endpoint)
    credentials = Credentials("ann@example.com", "ak_1", ENC_KEY)  # a short key: not shown
    assert "ak_1" not in repr(credentials) and ENC_KEY not in repr(credentials)


def test_secrets_never_appear_in_errors() -> None:
    body = {"code": "1001", "message": f"unknown API key {API_KEY}", "data": {"apiKey": API_KEY}}
    client, _ = make(lambda r: httpx.Response(401, json=body))
    with pytest.raises(kedacore.AuthenticationError) as info:
        client.limits.get()
    err = info.value
    for text in (str(err), repr(err), repr(err.details), repr(vars(err))):
        assert API_KEY not in text and ENC_KEY not in text


def test_context_manager_closes_the_pool() -> None:
    with make(lambda r: ok({}))[0] as client:
        assert not client._http.is_closed
    assert client._http.is_closed


def test_public_names() -> None:
    for name in kedacore.__all__:
        assert hasattr(kedacore, name), name


def test_a_short_api_key_is_not_shown_at_all() -> None:
    client = KedaClient("ak_12345")
    assert "12345" not in repr(client)
    assert "api_key='…'" in repr(client)


def test_missing_api_key_sentence() -> None:
    client = KedaClient()
    with pytest.raises(MissingCredentialsError) as info:
        client.account.balance()
    assert str(info.value) == (
        "account.balance needs the API key: pass api_key= to the client "
        "or set the KEDA_API_KEY environment variable"
    )


def test_undecodable_body_is_a_connection_error() -> None:
    client, _ = make(
        lambda r: httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"}),
        max_retries=0,
    )
    with pytest.raises(kedacore.APIConnectionError):
        client.account.balance()
