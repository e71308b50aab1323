"""Exact money: ``Decimal`` in code, integer micro-units in storage.

One micro-unit is 0.000001 of the currency. Responses carry money as a JSON number in its
shortest decimal form (``0.048``, never ``0.0480``); callbacks as a decimal string.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
# Every amount we handle has at most 15 significant digits, which is the range in which a
# binary double's shortest repr is exactly the decimal; beyond it we refuse rather than round.
MAX_MICROS = 10**15 - 1


class MoneyError(ValueError):
    """An amount that is not a finite number with at most 6 decimals."""


def to_decimal(value: object) -> Decimal:
    """A Decimal from a str, int or Decimal (floats are refused: they are not exact)."""
    if isinstance(value, (bool, float)):
        raise MoneyError(f"money must be given as a decimal string or integer, not {value!r}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MoneyError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return amount


def to_micros(value: object) -> int:
    """Integer micro-units of an amount; more than 6 decimals is an error, never rounded."""
    amount = to_decimal(value)
    scaled = amount * MICROS_PER_UNIT
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{value!r} has more than 6 decimal places")
    micros = int(scaled)
    if abs(micros) > MAX_MICROS:
        raise MoneyError(f"{value!r} is too large")
    return micros


def from_micros(micros: int) -> Decimal:
    """The Decimal amount of integer micro-units, normalised (``48000`` → ``0.048``)."""
    return normalize(Decimal(int(micros)) / MICROS_PER_UNIT)


def normalize(amount: Decimal) -> Decimal:
    """Shortest form without exponent: 0.0480 → 0.048, 5.000 → 5, 0 → 0."""
    if amount == 0:
        return Decimal(0)
    return Decimal(format(amount.normalize(), "f"))


def money_str(amount: Decimal | int) -> str:
    """Shortest decimal string: ``"0.05"``, ``"12"``."""
    value = from_micros(amount) if isinstance(amount, int) else normalize(amount)
    return format(value, "f")


def json_number(micros: int) -> float | int:
    """Micro-units as the JSON number whose text is the shortest decimal form.

    ``json.dumps`` writes a float with ``repr``, the shortest text that round-trips; for
    amounts with at most 15 significant digits that text reads back as exactly the decimal
    (checked here).
    Readers parse it back with ``parse_float=Decimal``: no float arithmetic ever touches it.
    """
    amount = from_micros(micros)
    if amount == amount.to_integral_value():
        return int(amount)
    number = float(amount)
    if Decimal(repr(number)) != amount:
        raise MoneyError(f"{amount} cannot be written exactly as a JSON number")
    return number
