"""The sender-id rule: one function for the console's form and the gateway's check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kedacore.senders import SENDER_RULE, sender_problem

GOOD = ["Shop", "ACME01", "A", "ABCDEFGHIJK", "1", "123456789012345", "+123456789012345", "KedaSMS"]
BAD = [
    "Hello World!!",  # a space and punctuation
    "ABCDEFGHIJKL",  # 12 letters
    "Keda SMS",
    "1234567890123456",  # 16 digits
    "+",
    "",
    "Café",  # not ASCII
    "١٢٣",  # Arabic-Indic digits are digits, but not 0-9
    "ＡＢＣ",  # full-width letters
    "Shop\n",
    "+Shop",
]


@pytest.mark.parametrize("sender", GOOD)
def test_good_sender_ids(sender: str) -> None:
    assert sender_problem(sender) is None


@pytest.mark.parametrize("sender", BAD)
def test_bad_sender_ids_say_the_rule(sender: str) -> None:
    assert sender_problem(sender) == SENDER_RULE
    assert SENDER_RULE == "must be 1-11 letters and digits, or a number of up to 15 digits"


def test_what_is_not_text_is_refused_too() -> None:
    assert sender_problem(42) == SENDER_RULE
    assert sender_problem(None) == SENDER_RULE


@given(st.text(max_size=18))
def test_the_rule_is_letters_and_digits_or_a_number(sender: str) -> None:
    ascii_alnum = all(c.isascii() and c.isalnum() for c in sender)
    digits = sender.removeprefix("+")
    number = bool(digits) and all(c in "0123456789" for c in digits) and len(digits) <= 15
    expected = (ascii_alnum and 1 <= len(sender) <= 11) or number
    assert (sender_problem(sender) is None) == expected


def test_the_gateway_checks_with_the_same_function() -> None:
    from gateway import validation

    assert validation.sender_problem is sender_problem
