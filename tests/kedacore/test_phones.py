"""Phone numbers: national or E.164 in, E.164 out, a reason for every refusal."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kedacore.phones import parse_number, parse_numbers, region_and_validity, split_numbers


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


def _examples() -> list[phonenumbers.PhoneNumber]:
    """Every region's example number of every type, and a few of their neighbours."""
    found = []
    regions = [(r, None) for r in sorted(phonenumbers.SUPPORTED_REGIONS)]
    regions += [(None, c) for c in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    for region, code in regions:
        for kind in range(12):  # every PhoneNumberType but UNKNOWN
            if region is not None:
                number = phonenumbers.example_number_for_type(region, kind)
            else:
                number = phonenumbers.example_number_for_non_geo_entity(code)
            if number is None:
                continue
            nsn = phonenumbers.national_significant_number(number)
            for digits in (nsn, nsn[:-1], nsn + "0", nsn[:-1] + str((int(nsn[-1]) + 1) % 10)):
                found.append(phonenumbers.parse(f"+{number.country_code}{digits}"))
    return found


def test_region_and_validity_equal_phonenumbers_for_every_region_and_type() -> None:
    numbers = _examples()
    assert len(numbers) > 5000
    for number in numbers:
        expected = (
            phonenumbers.region_code_for_number(number),
            phonenumbers.is_valid_number(number),
        )
        assert region_and_validity(number) == expected, number


@given(
    st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
    st.text(alphabet="0123456789", min_size=1, max_size=15),
)
def test_region_and_validity_equal_phonenumbers_for_any_digits(code: int, digits: str) -> None:
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(digits))
    if digits.startswith("0") and len(digits) > 1:  # a national number with leading zeros
        number.italian_leading_zero = True
        number.number_of_leading_zeros = len(digits) - len(digits.lstrip("0"))
    expected = (phonenumbers.region_code_for_number(number), phonenumbers.is_valid_number(number))
    assert region_and_validity(number) == expected
