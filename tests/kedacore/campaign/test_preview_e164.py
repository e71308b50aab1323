"""The preview's shortcut for plain E.164 numbers gives what parsing them gives.

``preview._plain_e164`` answers for "+" and digits without ``phonenumbers.parse``; whenever
it answers, the answer is ``_parse``'s (which is ``kedacore.phones.parse_number``): for every
country calling code, numbers of every length, each region's example numbers, with and
without the row's own country.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kedacore.campaign.preview import _parse, _plain_e164

CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
E164 = phonenumbers.PhoneNumberFormat.E164


def parsed(text: str, own: str | None) -> tuple[str | None, str | None, str | None]:
    number = _parse(text, own, strict=own is not None)
    return number.e164, number.country, number.error


def examples() -> list[str]:
    found = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(phonenumbers.format_number(example, E164))
    return sorted(set(found))


@pytest.mark.parametrize("text", examples())
def test_every_regions_example_numbers(text: str) -> None:
    region = phonenumbers.region_code_for_number(phonenumbers.parse(text))
    for own in (None, region, "US", "001"):
        fast = _plain_e164(text, own)
        if fast is not None:
            assert fast == parsed(text, own), (text, own)


def test_it_answers_for_the_common_numbers() -> None:
    for text in ("+12062000001", "+447400000001", "+4915100000001", "+918100000001"):
        assert _plain_e164(text, None) == parsed(text, None)
        assert _plain_e164(text, None) is not None


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(CODES),
    st.text(alphabet="0123456789", min_size=0, max_size=16),
    st.sampled_from([None, None, "US", "GB", "DE", "IT", "001", "BR", "IN"]),
    st.sampled_from(["", " ", "\t"]),
)
def test_whenever_it_answers_it_answers_as_parsing_does(
    code: int, digits: str, own: str | None, space: str
) -> None:
    text = f"{space}+{code}{digits}{space}"
    fast = _plain_e164(text, own)
    if fast is not None:
        assert fast == parsed(text, own)
