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


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def to_decimal(value: object) -> Decimal:
    """A Decimal from a str, int or Decimal (floats are refused: they are not exact)."""
    if isinstance(value, (bool, float)):
        raise MoneyError(f"money must be given as a decimal string or integer, not {_shown(value)}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MoneyError(f"not an amount: {_shown(value)}") from None
    if not amount.is_finite():
        raise MoneyError(f"not a finite amount: {_shown(value)}")
    return amount


def to_micros(value: object) -> int:
    """Integer micro-units of an amount; more than 6 decimals is an error, never rounded.

    Computed on the digits themselves, not with ``Decimal`` arithmetic: a context's
    precision would round long amounts, and its exponent limits overflow (``1e999999999``)
    or underflow to zero (``1e-999999999``) — each must be a ``MoneyError`` instead.
    """
    amount = to_decimal(value)
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite: to_decimal refuses the rest
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:  # 1.500 is 15 × 10⁻¹
        significant -= 1
    exponent += len(digits) - significant
    digits = digits[:significant]
    if digits == (0,):
        return 0
    if exponent < -6:
        raise MoneyError(f"{_shown(value)} has more than 6 decimal places")
    if significant + exponent > len(str(MAX_MICROS)) - 6:  # bounded before any big power
        raise MoneyError(f"{_shown(value)} is too large")
    micros = int("".join(map(str, digits))) * 10 ** (exponent + 6)
    if micros > MAX_MICROS:
        raise MoneyError(f"{_shown(value)} is too large")
    return -micros if sign else micros


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
