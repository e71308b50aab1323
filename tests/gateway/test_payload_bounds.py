"""Oversized fields are refused before any per-character work: a refusal stays cheap.

A review found sends that the gateway refused only after hundreds of ms of CPU: one phone
number of 1.4 million letters (a Python loop over every character), a content of 1.4 million
``{`` (segment counting), a megabyte payload. Each is now refused from its length alone.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kedacore.phones import MAX_NUMBER_CHARS, parse_number
from tests.support import GatewayHandle, phone_numbers


def refused(gateway: GatewayHandle, payload: dict[str, Any]) -> tuple[dict, float]:
    account = gateway.create_account()
    before = gateway.books(account.email)
    body = gateway.seal(account, payload)
    cpu = time.process_time()  # the gateway serves from a thread of this process
    answer = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    cpu = time.process_time() - cpu
    assert answer.status_code == 422, answer.text
    assert gateway.books(account.email) == before
    assert gateway.query("SELECT count(*) FROM tasks") == [(0,)]
    assert len(answer.content) < 4000  # the answer never echoes the monster back
    return answer.json(), cpu


def test_a_megabyte_phone_number_is_refused_from_its_length(gateway: GatewayHandle) -> None:
    numbers = ["1" + "a" * 200_000, *phone_numbers("US", 3)]
    answer, cpu = refused(gateway, {"countryCode": "US", "phoneNumbers": numbers, "content": "x"})
    error = answer["data"]["errors"][0]
    assert error["field"] == "phoneNumbers[0]"
    assert "200,001 characters long" in error["message"] and "at most 64" in error["message"]
    assert cpu < 0.15, f"refusing took {cpu:.3f} s of CPU"  # was ~430 ms for 1.4 M letters


def test_a_megabyte_text_is_refused_from_its_length(gateway: GatewayHandle) -> None:
    payload = {
        "countryCode": "US",
        "phoneNumbers": phone_numbers("US", 2),
        "content": "{" * 200_000,
    }
    answer, cpu = refused(gateway, payload)
    (error,) = answer["data"]["errors"]
    assert error["field"] == "content" and "200,000 characters long" in error["message"]
    assert cpu < 0.15, f"refusing took {cpu:.3f} s of CPU"  # was ~300 ms for 1.4 M


def test_a_payload_larger_than_any_valid_one_is_refused_unread(gateway: GatewayHandle) -> None:
    payload = {"countryCode": "US", "phoneNumbers": ["12065550123"] * 100_000, "content": "hi"}
    answer, cpu = refused(gateway, payload)
    (error,) = answer["data"]["errors"]
    assert error["field"] == "payload" and "at most 262,144" in error["message"]
    assert cpu < 0.25, f"refusing took {cpu:.3f} s of CPU"


def test_the_largest_valid_send_still_goes_through(gateway: GatewayHandle) -> None:
    """1,000 numbers written with separators and a 10-segment text: under every bound."""
    account = gateway.create_account(balance="1000")
    numbers = [f"+1 (206) {n[5:8]}-{n[8:]}" for n in phone_numbers("US", 1000)]
    text = "a" * (153 * 10)
    body = gateway.seal(account, {"countryCode": "US", "phoneNumbers": numbers, "content": text})
    answer = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["data"]["segments"] == 10_000


@pytest.mark.parametrize("length", [MAX_NUMBER_CHARS + 1, 10_000])
def test_parse_number_refuses_overlong_text_at_once(length: int) -> None:
    parsed = parse_number("+1" + "2" * (length - 2), "US")
    assert not parsed.valid and f"{length:,} characters long" in (parsed.error or "")
    assert len(parsed.raw) <= MAX_NUMBER_CHARS + 1


def test_a_number_at_the_bound_is_judged_as_usual() -> None:
    spaced = "+1 206 555 0123" + " " * (MAX_NUMBER_CHARS - 15)
    assert len(spaced) == MAX_NUMBER_CHARS
    assert parse_number(spaced.strip() + " ", "US").e164 == "+12065550123"
