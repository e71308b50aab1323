"""Money is exact: micro-units in storage, shortest decimal text on the wire."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kedacore.money import (
    MAX_MICROS,
    MoneyError,
    decimal_text,
    dumps,
    from_micros,
    json_number,
    money_str,
    to_micros,
)


def test_shortest_forms() -> None:
    assert dumps(json_number(48_000)) == b"0.048"
    assert dumps(json_number(5_000_000)) == b"5"
    assert money_str(50_000) == "0.05"
    assert money_str(Decimal("0.0480")) == "0.048"
    assert money_str(0) == "0"


@pytest.mark.parametrize("bad", [0.1, True, "1.0000001", "abc", "NaN", "Infinity"])
def test_refuses_inexact_or_non_amounts(bad) -> None:
    with pytest.raises(MoneyError):
        to_micros(bad)


@given(st.integers(min_value=-MAX_MICROS, max_value=MAX_MICROS))
def test_json_number_reads_back_exactly(micros: int) -> None:
    text = dumps(json_number(micros)).decode()
    assert "e" not in text.lower()  # fixed notation, always
    assert json.loads(text, parse_float=Decimal) == from_micros(micros)
    assert to_micros(json.loads(text, parse_float=Decimal)) == micros
    assert to_micros(money_str(micros)) == micros


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("1e999999999", "too large"),  # Decimal arithmetic would raise decimal.Overflow
        (Decimal("1E+1000000"), "too large"),
        ("1e-999999999", "more than 6 decimal places"),  # ... or underflow silently to 0
        ("1e-7", "more than 6 decimal places"),
        ("0.1000000000000000000000000000000001", "more than 6 decimal places"),  # not rounded
        ("1000000000", "too large"),
        (10**4000, "too large"),
        ("1" * 5000, "too large"),
    ],
    ids=["1e999999999", "Decimal-1E+1000000", "1e-999999999", "1e-7", "long-fraction",
         "1e9", "10**4000", "5000-ones"],
)  # fmt: skip
def test_extreme_exponents_and_long_digits_are_money_errors(bad, why) -> None:
    with pytest.raises(MoneyError, match=why) as caught:
        to_micros(bad)
    assert len(str(caught.value)) < 120  # a huge input is not echoed whole


@pytest.mark.parametrize(
    ("value", "micros"),
    [("1.500", 1_500_000), ("1E+3", 10**9), ("0.0000010", 1), ("-0", 0), ("0e-999999", 0),
     ("999999999.999999", MAX_MICROS), ("-2.25", -2_250_000), (Decimal("5E-6"), 5)],
)  # fmt: skip
def test_exact_amounts_in_any_notation(value, micros) -> None:
    assert to_micros(value) == micros


@pytest.mark.parametrize(
    ("micros", "text"),
    [(10, "0.00001"), (1, "0.000001"), (50, "0.00005"), (100, "0.0001"), (-10, "-0.00001"),
     (0, "0"), (10**15 - 1, "999999999.999999"), (12_000_000, "12")],
)  # fmt: skip
def test_small_amounts_are_written_in_fixed_notation(micros: int, text: str) -> None:
    """DESIGN: the shortest *decimal* form; a float would render 1e-05."""
    assert dumps({"amount": json_number(micros)}) == b'{"amount":' + text.encode() + b"}"


def test_dumps_writes_json_like_the_standard_encoder_apart_from_decimals() -> None:
    value = {"a": [1, 2.5, None, True, False, 'é\n"\u2028'], "b": {"c": ()}, 7: "k"}
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert dumps(value) == expected.encode("utf-8")
    assert dumps([Decimal("5E+2"), Decimal("-0.0480"), Decimal("-0"), Decimal("1E-7")]) == (
        b"[500,-0.048,0,0.0000001]"
    )
    # Exact, whatever the decimal context's precision: never rounded to 28 digits.
    long = "0.123456789012345678901234567890123"
    assert decimal_text(Decimal(long)) == long
    for bad in (Decimal("NaN"), Decimal("Infinity"), float("nan"), Decimal("1E+999999999")):
        with pytest.raises(ValueError):
            dumps(bad)
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_recurring_micros_is_to_micros_cached_by_value():
    from kedacore.money import recurring_micros

    assert recurring_micros(Decimal("0.05")) == 50_000
    assert recurring_micros(Decimal("0.050")) == 50_000  # the same value, the same entry
    assert recurring_micros(Decimal("1E-6")) == 1
    for bad in (Decimal("0.0000001"), Decimal("NaN"), Decimal("sNaN"), 0.05):
        with pytest.raises((ValueError, TypeError)):
            recurring_micros(bad)
