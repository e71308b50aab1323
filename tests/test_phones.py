"""Phone numbers: national or E.164 in, E.164 out, a reason for every refusal."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kedacore.phones import parse_number, parse_numbers, split_numbers


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("13800138000", "CN", "+8613800138000"),
        ("+8613800138000", "CN", "+8613800138000"),
        ("0086 138 0013 8000", "CN", "+8613800138000"),
        ("(206) 555-0123", "US", "+12065550123"),
        ("+1 206 555 0123", None, "+12065550123"),
        ("+15005550001", "US", "+15005550001"),
        ("020 7946 0018", "GB", "+442079460018"),
    ],
)
def test_valid_numbers(raw: str, country: str | None, e164: str) -> None:
    parsed = parse_number(raw, country)
    assert parsed.valid, parsed.error
    assert parsed.e164 == e164
    assert parsed.raw == raw


@pytest.mark.parametrize(
    ("raw", "country", "reason"),
    [
        ("", "CN", "empty"),
        ("abc", "CN", "not a phone number"),
        ("12345", "CN", "not a valid CN number"),
        ("+8613800138000", "US", "belongs to CN, not US"),
        ("2065550123", None, "national number without a country"),
        ("13800138000", "XX", "unknown country code"),
    ],
)
def test_invalid_numbers_say_why(raw: str, country: str | None, reason: str) -> None:
    parsed = parse_number(raw, country)
    assert not parsed.valid
    assert reason in (parsed.error or "")


def test_report_separates_valid_invalid_and_duplicates() -> None:
    report = parse_numbers(
        ["13800138000", "+8613800138000", "bad", "+8613900139000", "+12065550123"], "CN"
    )
    assert report.e164 == ["+8613800138000", "+8613900139000"]
    assert [n.raw for n in report.duplicates] == ["+8613800138000"]
    assert [n.raw for n in report.invalid] == ["bad", "+12065550123"]


def test_group_by_country() -> None:
    report = parse_numbers(["+8613800138000", "+12065550123", "+442079460018", "+12065550124"])
    assert report.by_country() == {
        "CN": ["+8613800138000"],
        "GB": ["+442079460018"],
        "US": ["+12065550123", "+12065550124"],
    }


def test_split_pasted_numbers() -> None:
    assert split_numbers("+1 206 555 0123\n13800138000, 1390; \n\n") == [
        "+1 206 555 0123",
        "13800138000",
        "1390",
    ]


@given(st.text(max_size=30), st.sampled_from(["CN", "US", "GB", "DE", None]))
def test_never_raises_and_valid_means_e164_of_that_country(raw: str, country) -> None:
    parsed = parse_number(raw, country)
    if parsed.valid:
        number = phonenumbers.parse(parsed.e164)
        assert phonenumbers.is_valid_number(number)
        if country:
            assert phonenumbers.region_code_for_number(number) == country
    else:
        assert parsed.error
