"""kedacore.api.errors: every wire code and both response shapes mapped to the right class."""

from __future__ import annotations

import email.utils
import time
from decimal import Decimal

import httpx
import pytest

from kedacore import redaction
from kedacore.api import errors as e

REQUEST = httpx.Request("GET", "https://backup.kedasms.net/api/sms/status?msgid=msg_abc123def456")


def answer(status: int, body: bytes | str | dict, headers: dict | None = None) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.Response(status, json=body, headers=headers, request=REQUEST)
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers=headers, request=REQUEST)


def standard(code: str, message: str = "something is wrong", data=None) -> dict:
    return {"code": code, "message": message, "data": data}


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("1001", 401, e.AuthenticationError),
        ("1002", 401, e.ClockSkewError),
        ("1003", 409, e.ReplayError),
        ("1004", 400, e.MalformedRequestError),
        ("1005", 400, e.DecryptionError),
        ("2001", 422, e.ValidationError),
        ("3001", 402, e.InsufficientBalanceError),
        ("3002", 429, e.CapReachedError),
        ("3003", 429, e.CapReachedError),
        ("4004", 404, e.NotFoundError),
        ("4029", 429, e.RateLimitError),
        ("5000", 500, e.InternalServerError),
    ],
)
def test_every_code_maps_to_its_class(code: str, status: int, cls: type[e.APIError]) -> None:
    err = e.error_from_response(answer(status, standard(code, "the reason", {"k": 1})))
    assert type(err) is cls
    assert isinstance(err, e.APIError) and isinstance(err, e.KedaError)
    assert err.code == code
    assert err.http_status == status
    assert err.message == "the reason"
    assert err.details == {"k": 1}
    assert f"code {code}" in str(err) and f"HTTP {status}" in str(err)
    assert str(err).startswith("the reason")
    assert err.method == "GET"
    assert err.url == "https://backup.kedasms.net/api/sms/status"  # no query in messages
    assert e.APIError.from_response(answer(status, standard(code))).__class__ is cls


def test_clock_skew_and_decryption_are_authentication_errors() -> None:
    assert issubclass(e.ClockSkewError, e.AuthenticationError)
    assert issubclass(e.DecryptionError, e.AuthenticationError)
    assert "clock" in str(e.error_from_response(answer(401, standard("1002"))))
    assert "KEDA_ENCRYPTION_KEY" in str(e.error_from_response(answer(400, standard("1005"))))


def test_integer_code_in_the_standard_shape_is_understood() -> None:
    err = e.error_from_response(answer(402, {"code": 3001, "message": "no money"}))
    assert isinstance(err, e.InsufficientBalanceError)
    assert err.code == "3001"


def test_validation_error_lists_each_fault() -> None:
    data = {
        "errors": [
            {"field": "phoneNumbers[1]", "message": "not a valid number for CN", "value": "123"},
            {"field": "content", "message": "too long: 11 segments"},
        ]
    }
    err = e.error_from_response(answer(422, standard("2001", "invalid payload", data)))
    assert isinstance(err, e.ValidationError)
    assert err.errors == [
        {"field": "phoneNumbers[1]", "message": "not a valid number for CN", "value": "123"},
        {"field": "content", "message": "too long: 11 segments", "value": None},
    ]
    text = str(err)
    assert "code 2001" in text
    assert "phoneNumbers[1] '123': not a valid number for CN" in text
    assert "content: too long" in text


def test_validation_error_without_details_has_no_errors() -> None:
    err = e.error_from_response(answer(422, standard("2001", "invalid payload")))
    assert err.errors == []
    assert str(err) == (
        "invalid payload (code 2001, HTTP 422). Correct the listed fields and send again; "
        "nothing was charged."
    )


def test_validation_error_lists_only_five_faults_in_its_sentence() -> None:
    faults = [{"field": f"phoneNumbers[{i}]", "message": "invalid"} for i in range(8)]
    err = e.error_from_response(answer(422, standard("2001", "bad", {"errors": faults})))
    assert len(err.errors) == 8
    assert "phoneNumbers[4]" in str(err) and "phoneNumbers[5]" not in str(err)
    assert "and 3 more" in str(err)


@pytest.mark.parametrize(("code", "cap"), [("3002", "dailySmsCap"), ("3003", "dailySpendCap")])
def test_cap_reached_names_the_cap(code: str, cap: str) -> None:
    err = e.error_from_response(answer(429, standard(code, "daily cap reached")))
    assert isinstance(err, e.CapReachedError)
    assert err.cap == cap
    assert not isinstance(err, e.RateLimitError)


def test_rate_limit_carries_retry_after() -> None:
    err = e.error_from_response(answer(429, standard("4029", "slow down"), {"Retry-After": "3"}))
    assert isinstance(err, e.RateLimitError)
    assert err.retry_after == 3.0


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    err = e.error_from_response(answer(429, standard("4029"), {"Retry-After": when}))
    assert 25 <= err.retry_after <= 31


def test_unreadable_retry_after_is_none() -> None:
    err = e.error_from_response(answer(429, standard("4029"), {"Retry-After": "soon"}))
    assert err.retry_after is None


def test_status_endpoint_404_shape() -> None:
    body = {"success": False, "data": None, "code": 404, "message": "no message msg_abc123def456"}
    err = e.error_from_response(answer(404, body))
    assert isinstance(err, e.NotFoundError)
    assert err.code == "404"
    assert err.http_status == 404
    assert err.message == "no message msg_abc123def456"
    assert "code 404" in str(err)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, e.AuthenticationError),
        (429, e.RateLimitError),
        (500, e.InternalServerError),
        (503, e.InternalServerError),
        (400, e.MalformedRequestError),
    ],
)
def test_status_endpoint_shape_maps_by_its_http_code(status: int, cls: type) -> None:
    body = {"success": False, "data": None, "code": status, "message": "no"}
    assert type(e.error_from_response(answer(status, body))) is cls


def test_status_shape_carrying_a_keda_code() -> None:
    body = {"success": False, "data": None, "code": "1001", "message": "unknown API key"}
    assert type(e.error_from_response(answer(401, body))) is e.AuthenticationError


def test_html_502_from_a_proxy() -> None:
    html = (
        "<html><head><title>502 Bad Gateway</title><style>body{x:y}</style></head>"
        "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
    )
    err = e.error_from_response(answer(502, html, {"Content-Type": "text/html; charset=utf-8"}))
    assert isinstance(err, e.InternalServerError)
    assert err.code is None
    assert err.http_status == 502
    text = str(err)
    assert "text/html" in text and "not JSON" in text
    assert "502 Bad Gateway" in text and "nginx" in text
    assert "<" not in text and "body{" not in text
    assert "HTTP 502" in text


def test_empty_non_json_answer() -> None:
    err = e.error_from_response(answer(503, b""))
    assert isinstance(err, e.InternalServerError)
    assert "not JSON" in str(err)


def test_json_that_is_not_an_object() -> None:
    err = e.error_from_response(answer(500, "[1, 2]", {"Content-Type": "application/json"}))
    assert isinstance(err, e.InternalServerError)
    assert "not an object" in str(err)


def test_redirect_is_reported_with_its_target() -> None:
    err = e.error_from_response(answer(301, b"", {"Location": "https://elsewhere.example/api"}))
    assert type(err) is e.APIError
    assert "https://elsewhere.example/api" in str(err)


def test_unknown_code_falls_back_to_the_http_status() -> None:
    err = e.error_from_response(answer(404, standard("9999", "what")))
    assert type(err) is e.NotFoundError
    assert err.code == "9999"
    err = e.error_from_response(answer(418, standard("9999", "teapot")))
    assert type(err) is e.APIError


def test_missing_message_gets_a_sentence() -> None:
    err = e.error_from_response(answer(500, {"code": "5000", "data": None}))
    assert "without saying why" in str(err)


def test_secrets_echoed_by_the_service_are_masked() -> None:
    key = "ak_live_9f8e7d6c5b4a3210"
    body = standard("1001", f"unknown API key {key}", {"apiKey": key, "hint": [key]})
    err = e.error_from_response(answer(401, body), redact=[key])
    assert key not in str(err) and key not in repr(err)
    assert key not in repr(err.details)
    assert "…3210" in err.message


def test_decimals_in_details_stay_exact() -> None:
    body = '{"code":"3001","message":"short","data":{"needed":0.048,"balance":0.01}}'
    err = e.error_from_response(answer(402, body))
    assert err.details == {"needed": Decimal("0.048"), "balance": Decimal("0.01")}


def test_response_without_request() -> None:
    err = e.error_from_response(httpx.Response(500, json=standard("5000")))
    assert err.method is None and err.url is None


def test_repr_is_short_and_useful() -> None:
    err = e.error_from_response(answer(404, standard("4004", "no such link")))
    assert repr(err) == "NotFoundError(code='4004', http_status=404, message='no such link')"


def test_connection_errors_are_keda_errors() -> None:
    err = e.APIConnectionError("GET", "https://x.example/api/pricing", "Connection refused")
    assert isinstance(err, e.KedaError)
    assert "Connection refused" in str(err) and "KEDA_BASE_URL" in str(err)
    timeout = e.APITimeoutError("GET", "https://x.example/api/pricing")
    assert isinstance(timeout, e.APIConnectionError)
    assert "in time" in str(timeout)


def test_missing_credentials_sentence() -> None:
    err = e.MissingCredentialsError("sms.send", "encryption_key", "KEDA_ENCRYPTION_KEY")
    assert isinstance(err, e.ConfigurationError) and isinstance(err, e.KedaError)
    assert str(err) == (
        "sms.send needs the encryption key: pass encryption_key= to the client "
        "or set the KEDA_ENCRYPTION_KEY environment variable"
    )


def test_a_non_json_404_points_at_the_address() -> None:
    err = e.error_from_response(answer(404, "<h1>Not Found</h1>", {"Content-Type": "text/html"}))
    assert isinstance(err, e.NotFoundError)
    assert "KEDA_BASE_URL" in str(err) and "Check the identifier" not in str(err)


def test_short_secrets_are_masked_whole() -> None:
    assert e.mask("abcdefghij") == "…ghij"
    assert e.mask("abcd1234") == "…"
    body = standard("1001", "unknown API key abcd1234")
    err = e.error_from_response(answer(401, body), redact=["abcd1234"])
    assert "abcd1234" not in str(err) and "1234" not in err.message


TOKEN = "Zq8yXk3vN5mP2wR7tB9cH4jL6dF1gS0a"  # the console receiver's secret path part


def test_a_refused_callback_url_never_shows_the_receivers_token() -> None:
    url = f"http://console:p4ssw0rd-secret@127.0.0.1:8501/hooks/keda/{TOKEN}?sig=abcdef123456"
    body = standard(
        "2001",
        f"invalid payload: callbackUrl {url} is a loopback address",
        {"errors": [{"field": "callbackUrl", "message": "loopback", "value": url}]},
    )
    err = e.error_from_response(answer(422, body))
    assert isinstance(err, e.ValidationError)
    for text in (str(err), err.message, repr(err.details), repr(err.errors)):
        assert TOKEN not in text and "p4ssw0rd" not in text and "abcdef123456" not in text
    # What is left still says which address was refused.
    assert "127.0.0.1:8501/hooks/keda/…gS0a" in str(err)
    # An error built by hand (not from a response) is masked when printed, too.
    direct = e.ValidationError(
        "invalid payload",
        code="2001",
        http_status=422,
        details={"errors": [{"field": "callbackUrl", "message": "refused", "value": url}]},
    )
    assert TOKEN not in str(direct) and "p4ssw0rd" not in str(direct)
    assert redaction.redact_text(redaction.redact_text(str(direct))) == str(direct)  # idempotent


def test_a_token_the_caller_names_is_masked_in_any_form() -> None:
    # A callback URL of the customer's own (no /hooks/keda/): its secret parts are known to
    # the client, so they are masked even where no URL pattern would find them.
    url = "https://hooks.example.com/keda/9f8e7d6c5b4a39281706f5e4?customer=acme-corp"
    secrets = redaction.url_secrets(url)
    assert "9f8e7d6c5b4a39281706f5e4" in secrets and "acme-corp" in secrets
    echoed = "callbackUrl host hooks.example.com%2Fkeda%2F9f8e7d6c5b4a39281706f5e4 refused"
    err = e.error_from_response(answer(422, standard("2001", echoed)), redact=secrets)
    assert "9f8e7d6c5b4a39281706f5e4" not in str(err)
    conn = e.APIConnectionError("POST", "https://user:secretpass1@kedasms.example/api", "refused")
    assert "secretpass1" not in str(conn) and "secretpass1" not in conn.url
