"""Segment counting: GSM-7 160/153 with two-unit extensions, UCS-2 70/67, at most 10 parts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kedacore.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SEGMENTS,
    UCS2,
    count_segments,
    price,
    price_micros,
)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", GSM7, 0),
        ("hello", GSM7, 1),
        ("a" * 160, GSM7, 1),
        ("a" * 161, GSM7, 2),
        ("a" * 306, GSM7, 2),
        ("a" * 307, GSM7, 3),
        ("a" * 1530, GSM7, 10),
        ("a" * 1531, GSM7, 11),
        ("€" * 80, GSM7, 1),  # extension characters count two
        ("€" * 81, GSM7, 2),
        ("a" * 152 + "€", GSM7, 1),  # 154 units, still one part
        ("您的验证码为 123456", UCS2, 1),
        ("é" * 160, GSM7, 1),  # é is in the GSM-7 basic set
        ("á" * 70, UCS2, 1),  # á is not
        ("á" * 71, UCS2, 2),
        ("á" * 134, UCS2, 2),
        ("á" * 135, UCS2, 3),
        ("😀" * 35, UCS2, 1),  # outside the BMP: two code units each
        ("😀" * 36, UCS2, 2),
    ],
)
def test_known_lengths(text: str, encoding: str, segments: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments) == (encoding, segments)


def test_extension_character_never_straddles_two_parts() -> None:
    # 152 plain characters then "€": the 153rd and 154th septets would straddle a part
    # boundary in a multipart message, so the escape moves to the next part.
    text = "a" * 152 + "€" + "a" * 10
    info = count_segments(text)
    assert info.units == 164
    assert info.segments == 2
    assert info.remaining == 153 - 12


def test_characters_forcing_ucs2_are_named_once_in_order() -> None:
    info = count_segments("Hi Zoë ✓ — ✓ ok 您")
    assert info.encoding == UCS2
    assert info.ucs2_characters == ("ë", "✓", "—", "您")


def test_too_long() -> None:
    assert count_segments("a" * 1531).too_long
    assert not count_segments("a" * 1530).too_long


def test_price_is_exact() -> None:
    assert price(Decimal("0.048"), 3, 7) == Decimal("1.008")
    assert price_micros(48_000, 3, 7) == 1_008_000


gsm_text = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=2000)
any_text = st.text(max_size=800)


@given(gsm_text)
def test_gsm_text_stays_gsm_and_parts_hold_their_units(text: str) -> None:
    info = count_segments(text)
    assert info.encoding == GSM7
    assert info.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    if info.units <= 160:
        assert info.segments == (1 if text else 0)
    else:
        # Parts of 153 with an escape never split: between the ideal count and one more per
        # extension character.
        assert -(-info.units // 153) <= info.segments <= -(-info.units // 152)


@given(any_text)
def test_segments_grow_with_the_text(text: str) -> None:
    info = count_segments(text)
    longer = count_segments(text + "a")
    assert longer.segments >= info.segments
    assert info.characters == len(text)
    if info.encoding == UCS2:
        assert info.units == len(text.encode("utf-16-le")) // 2
        assert info.ucs2_characters
    assert 0 <= info.remaining <= info.per_segment
    assert (info.segments > MAX_SEGMENTS) == info.too_long


@given(any_text, st.integers(0, 10_000), st.integers(0, 1000))
def test_decimal_and_micro_prices_agree(text, per_segment_micros, recipients) -> None:
    segments = count_segments(text).segments
    exact = price(Decimal(per_segment_micros) / 1_000_000, segments, recipients)
    assert exact * 1_000_000 == price_micros(per_segment_micros, segments, recipients)


def _reference_count(text: str) -> tuple[str, int, int, int, int, tuple[str, ...]]:
    """The rule written out character by character: what the fast count must equal."""
    forcing = tuple(dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC | GSM7_EXTENSION))
    encoding = UCS2 if forcing else GSM7
    single, multi = (160, 153) if encoding == GSM7 else (70, 67)
    if encoding == GSM7:
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(costs)
    if units <= single:
        return encoding, units, 1 if units else 0, single, single - units, forcing
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return encoding, units, segments, multi, multi - used, forcing


mixed_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM7_BASIC)),
        st.sampled_from(sorted(GSM7_EXTENSION)),
        st.sampled_from("áë✓—您😀\U0001f680\ud83d"),
    ),
    max_size=1600,
)


@given(st.one_of(gsm_text, mixed_text, any_text))
def test_the_fast_count_equals_the_rule_character_by_character(text: str) -> None:
    info = count_segments(text)
    got = (info.encoding, info.units, info.segments, info.per_segment, info.remaining)
    assert (*got, info.ucs2_characters) == _reference_count(text)
    assert info.characters == len(text)


@pytest.mark.parametrize("length", [152, 153, 154, 306, 307, 1530, 1531])
def test_long_texts_at_part_boundaries(length: int) -> None:
    for text in ("a" * length, "a" * (length - 1) + "€", "á" * (length // 2), "😀" * (length // 4)):
        info = count_segments(text)
        got = (info.encoding, info.units, info.segments, info.per_segment, info.remaining)
        assert (*got, info.ucs2_characters) == _reference_count(text)
