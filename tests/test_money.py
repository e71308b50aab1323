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
    from_micros,
    json_number,
    money_str,
    to_micros,
)


def test_shortest_forms() -> None:
    assert json.dumps(json_number(48_000)) == "0.048"
    assert json.dumps(json_number(5_000_000)) == "5"
    assert money_str(50_000) == "0.05"
    assert money_str(Decimal("0.0480")) == "0.048"
    assert money_str(0) == "0"


@pytest.mark.parametrize("bad", [0.1, True, "1.0000001", "abc", "NaN", "Infinity"])
def test_refuses_inexact_or_non_amounts(bad) -> None:
    with pytest.raises(MoneyError):
        to_micros(bad)


@given(st.integers(min_value=-MAX_MICROS, max_value=MAX_MICROS))
def test_json_number_reads_back_exactly(micros: int) -> None:
    text = json.dumps(json_number(micros))
    assert json.loads(text, parse_float=Decimal) == from_micros(micros)
    assert to_micros(json.loads(text, parse_float=Decimal)) == micros
    assert to_micros(money_str(micros)) == micros
