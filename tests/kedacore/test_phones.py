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


def test_a_pasted_number_with_an_rfc3966_extension_stays_whole_and_is_refused() -> None:
    pasted = "+12065550123;ext=77\n+1 206 555 0124; +1 206 555 0125"
    assert split_numbers(pasted) == ["+12065550123;ext=77", "+1 206 555 0124", "+1 206 555 0125"]
    report = parse_numbers(split_numbers(pasted), "US")
    assert report.e164 == ["+12065550124", "+12065550125"]
    (refused,) = report.invalid
    assert "extension (;ext=77)" in (refused.error or "")


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


def test_every_valid_example_written_as_formatted_parses_to_its_e164() -> None:
    """The international and national formats phonenumbers writes are numbers as people write
    them: every one is accepted, as the E.164 number phonenumbers gives."""
    formats = phonenumbers.PhoneNumberFormat
    checked = 0
    for number in _examples():
        region, valid = region_and_validity(number)
        if not valid:
            continue
        e164 = phonenumbers.format_number(number, formats.E164)
        international = phonenumbers.format_number(number, formats.INTERNATIONAL)
        assert parse_number(international).e164 == e164, international
        if region and region != "001":
            national = phonenumbers.format_number(number, formats.NATIONAL)
            assert parse_number(national, region).e164 == e164, (national, region)
        checked += 1
    assert checked > 2000


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


# -- what a number may be written with ----------------------------------------------------
#
# Digits, one leading +, and separators: spaces, - . ( ) [ ] / (and the full-width and
# typographic forms phonenumbers reads as the same). Letters are never turned into digits,
# an extension is never dropped, an invisible or control character never skipped: each is
# refused with a reason, because the number sent would not be the number written.

SEPARATORS = (
    " \u00a0\u3000"  # spaces: plain, no-break, ideographic
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d"  # dashes, minus, katakana ー
    ".\uff0e()\uff08\uff09[]\uff3b\uff3d/\uff0f"  # dots, brackets, slashes
)


@pytest.mark.parametrize(
    ("raw", "country", "reason"),
    [
        ("+1206555ABCD", None, "letters (ABCD)"),
        ("1-800-FLOWERS", "US", "letters (FLOWERS)"),
        ("+1 2O6 555 0123", None, "letters (O)"),
        ("tel:+1-206-555-0123", None, "letters"),
        ("Phone: +12065550123", None, "letters"),
        ("+12065550123 ext. 77", None, "extension (ext. 77)"),
        ("+12065550123 x77", None, "extension (x77)"),
        ("(206) 555-0123 X 12", "US", "extension (X 12)"),
        ("+12065550123#77", None, "extension (#77)"),
        ("+12065550123;ext=77", None, "extension (;ext=77)"),
        ("+12065550123,77", None, "extension (,77)"),
        ("+12065550123~77", None, "extension (~77)"),
        ("+12065550123 ｘ7", None, "extension"),
        ("+12065550123 anexo 7", None, "extension"),
        ("+12065550123 доб 7", None, "extension"),
        ("+12065550123 int 7", None, "extension"),
        ("+12065550123\x00", None, "control character (U+0000)"),
        ("+1 206\t555 0123", None, "control character (U+0009)"),
        ("+1\u200b2065550123", None, "invisible character (U+200B)"),
        ("+1\u00ad2065550123", None, "invisible character (U+00AD)"),
        ("+1\u202e2065550123", None, "invisible character (U+202E)"),
        ("+1 206\n555 0123", None, "control character (U+000A)"),
        ("+12065550123#", None, "'#'"),
        ("+12065550123*", None, "'*'"),
        ('"+12065550123"', None, "'\"'"),
        ("+12065550123!", None, "'!'"),
        ("+1_206_555_0123", None, "'_'"),
        ("++12065550123", None, "more than one +"),
        ("+1 206 555 0123 +", None, "more than one +"),
        ("1+2065550123", "US", "+ after"),
    ],
)
def test_letters_extensions_and_control_characters_are_refused(
    raw: str, country: str | None, reason: str
) -> None:
    parsed = parse_number(raw, country)
    assert not parsed.valid and parsed.e164 is None
    assert reason in (parsed.error or ""), parsed.error


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("(+1) 206 555 0123", None, "+12065550123"),
        ("+1 (206) 555-0123", None, "+12065550123"),
        ("+1.206.555.0123", None, "+12065550123"),
        ("+1/206/555/0123", None, "+12065550123"),
        ("+1[206]5550123", None, "+12065550123"),
        ("+44 (0) 20 7946 0018", None, "+442079460018"),
        ("0151/12345678", "DE", "+4915112345678"),
        ("＋１２０６５５５０１２３", None, "+12065550123"),  # full-width
        ("+١٢٠٦٥٥٥٠١٢٣", None, "+12065550123"),  # Arabic-Indic digits
        ("+1\u2013206\u2013555\u20130123", None, "+12065550123"),  # en dashes
        ("+1\u00a0206\u3000555 0123", None, "+12065550123"),  # no-break, ideographic spaces
        ("03ー1234ー5678", "JP", "+81312345678"),
        ("\t+1 206 555 0123\r\n", None, "+12065550123"),  # around the number: trimmed
    ],
)
def test_every_way_of_writing_a_number_that_was_valid_stays_valid(
    raw: str, country: str | None, e164: str
) -> None:
    parsed = parse_number(raw, country)
    assert parsed.valid, parsed.error
    assert parsed.e164 == e164


# Valid numbers of a few countries, E.164 (phonenumbers' own examples).
E164 = [
    phonenumbers.format_number(
        phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE),
        phonenumbers.PhoneNumberFormat.E164,
    )
    for region in ("US", "GB", "DE", "CN", "IN", "BR", "JP", "FR", "NG", "AU")
]


@st.composite
def with_insertions(
    draw, alphabet: st.SearchStrategy[str], inside: bool = False
) -> tuple[str, str]:
    """A valid E.164 number and the same with characters of ``alphabet`` inserted after
    the + (``inside``: before the last digit too)."""
    number = draw(st.sampled_from(E164))
    chars = list(number)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        last = len(chars) - 1 if inside else len(chars)
        chars.insert(draw(st.integers(min_value=1, max_value=last)), draw(alphabet))
    return number, "".join(chars)


@given(with_insertions(st.sampled_from(SEPARATORS)))
def test_separators_anywhere_after_the_plus_change_nothing(case: tuple[str, str]) -> None:
    number, written = case
    parsed = parse_number(written)
    assert parsed.valid, (written, parsed.error)
    assert parsed.e164 == number


# What people and exports put into numbers, and anything else that is not a digit.
NOT_DIGITS = st.sampled_from(["x", "ext.", "#", ";ext=", "ABC", "\x00", "\u200b", "*", '"', "~"])
NOT_DIGITS |= st.characters(exclude_categories=("Nd",))


@given(with_insertions(NOT_DIGITS))
def test_a_number_is_never_changed_silently(case: tuple[str, str]) -> None:
    """Whatever is added to a number (no digits), it is that number or it is refused."""
    number, written = case
    parsed = parse_number(written)
    if parsed.valid:
        assert parsed.e164 == number
        text = written.strip()  # what surrounds the number is trimmed, as before
        assert all(ch.isdecimal() or ch in SEPARATORS or ch == "+" for ch in text), written
    else:
        assert parsed.error and parsed.e164 is None


@given(with_insertions(st.characters(categories=("Lu", "Ll", "Lo", "Cc", "Cf")), inside=True))
def test_any_letter_or_control_character_in_a_number_is_refused(case: tuple[str, str]) -> None:
    _, written = case
    parsed = parse_number(written)
    assert not parsed.valid, written
    assert any(word in (parsed.error or "") for word in ("letters", "extension", "character"))


@given(st.text(max_size=30), st.sampled_from(["CN", "US", "GB", "DE", None]))
def test_valid_text_holds_only_digits_one_leading_plus_and_separators(raw: str, country) -> None:
    parsed = parse_number(raw, country)
    if parsed.valid:
        text = raw.strip()
        assert all(ch.isdecimal() or ch in SEPARATORS or ch in "+＋" for ch in text), text
        international = "+" + text[2:] if text.startswith("00") else text
        assert phonenumbers.parse(international, country).extension is None
