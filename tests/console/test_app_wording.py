"""Errors as a person reads them: ``console.shell.advice`` on what the service really answers.

Each case is the gateway's own answer (its code, message and ``data``), turned into the
``KedaError`` the client raises. What the page shows must be a sentence written for a person
that says what to do — not the wire's field names (``dailySmsCap``, ``senderId``), its codes
(``code 3002, HTTP 429``) or the service's lower-case message.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from console.shell import advice
from kedacore.api.errors import APIConnectionError, APITimeoutError, error_from_response

WIRE_WORDS = re.compile(
    r"dailySmsCap|dailySpendCap|smsSent|senderId|phoneNumbers|countryCode|callbackUrl|"
    r"clientRef|code \d{4}|HTTP \d{3}|Faults:|reached:|insufficient balance:|invalid payload"
)


def refusal(status: int, code: str, message: str, data: Any = None, **headers: str) -> Exception:
    request = httpx.Request("POST", "http://127.0.0.1:8787/api/sms/send")
    body = json.dumps({"code": code, "message": message, "data": data}, default=float)
    answer = httpx.Response(
        status,
        content=body,
        headers={"content-type": "application/json", **headers},
        request=request,
    )
    return error_from_response(answer)


CASES = {
    "sms cap": (
        refusal(
            429,
            "3002",
            "daily SMS cap reached: 1 sent today, cap 2, this request has 3",
            {"dailySmsCap": 2, "smsSent": 1, "requested": 3},
        ),
        ["today's SMS cap", "2 messages", "1 sent today", "3", "Limits", "00:00 UTC", "Nothing"],
    ),
    "spend cap": (
        refusal(
            429,
            "3003",
            "daily spend cap reached: this request would take today's spend above the cap",
            {"dailySpendCap": 1, "spend": Decimal("0.95"), "requested": Decimal("0.1")},
        ),
        ["today's spend cap", "1.00 USD", "0.95 USD", "0.10 USD", "Limits", "Nothing"],
    ),
    "balance": (
        refusal(
            402,
            "3001",
            "insufficient balance: this send costs more than the balance can cover",
            {"required": 25, "balance": Decimal("9.5"), "currency": "USD"},
        ),
        ["25.00 USD", "9.50 USD", "Top up", "fewer numbers", "Nothing"],
    ),
    "sender id": (
        refusal(
            422,
            "2001",
            "invalid payload",
            {
                "errors": [
                    {
                        "field": "senderId",
                        "message": "must be 1-11 letters and digits, or a number of up to 15 "
                        "digits",
                        "value": "Hello World!!",
                    }
                ]
            },
        ),
        ["sender id", "“Hello World!!”", "letters and digits", "Correct", "Nothing"],
    ),
    "a number": (
        refusal(
            422,
            "2001",
            "invalid payload",
            {"errors": [{"field": "phoneNumbers[1]", "message": "too short", "value": "12345"}]},
        ),
        ["number", "“12345”", "too short", "Correct"],
    ),
    "rate": (
        refusal(429, "4029", "too many requests", None, **{"Retry-After": "3"}),
        ["Too many", "3 s", "again"],
    ),
    "service failure": (
        refusal(500, "5000", "internal error"),
        ["KedaSMS", "failed", "try again"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_refusals_are_sentences_saying_what_to_do(case: str) -> None:
    exc, expected = CASES[case]
    for sandbox in (True, False):
        text = advice(exc, sandbox=sandbox, markdown=False, currency="USD")
        assert not WIRE_WORDS.search(text), text
        assert text[0].isupper() and text.rstrip().endswith("."), text
        for words in expected:
            assert words in text, (words, text)


def test_as_markdown_the_text_typed_is_escaped() -> None:
    exc, _ = CASES["sender id"]
    text = advice(exc, sandbox=True, currency="USD")
    assert r"Hello World\!\!" in text


def test_unreachable_and_slow_services_name_the_setting_to_check() -> None:
    gone = APIConnectionError("POST", "https://api.example.com/api/sms/send", "connection refused")
    slow = APITimeoutError("POST", "https://api.example.com/api/sms/send")
    for exc in (gone, slow):
        text = advice(exc, sandbox=False, markdown=False)
        assert "KEDA_BASE_URL" in text and "api.example.com" in text
        assert text[0].isupper()
