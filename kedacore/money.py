"""Exact money: ``Decimal`` in code, integer micro-units in storage.

One micro-unit is 0.000001 of the currency. Responses carry money as a JSON number in its
shortest decimal form (``0.048``, never ``0.0480``, and ``0.00001``, never ``1e-05``);
callbacks as a decimal string. ``dumps`` writes JSON that way: every ``Decimal`` exactly,
in fixed notation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from json.encoder import encode_basestring  # the C version when available
from typing import Any

MICROS_PER_UNIT = 1_000_000
# Every amount we handle has at most 15 significant digits, which is the range in which a
# binary double's shortest repr is exactly the decimal; beyond it we refuse rather than round.
MAX_MICROS = 10**15 - 1


class MoneyError(ValueError):
    """An amount that is not a finite number with at most 6 decimals."""


def _shown(value: object) -> str:
    """A value for an error message: a Decimal as its number, anything else as repr, short."""
    text = str(value) if isinstance(value, Decimal) else repr(value)
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


def recurring_micros(amount: object) -> int:
    """``to_micros`` of an amount that recurs (a campaign's debited amounts), cached by value.

    ``to_micros`` depends only on the value (``0.05`` and ``0.050`` are the same micro-units),
    so equal Decimals may share an entry. Anything but a finite Decimal goes straight to
    ``to_micros`` and is refused there as before (a signalling NaN cannot even be hashed).
    """
    if type(amount) is Decimal and amount.is_finite():
        return _cached_micros(amount)
    return to_micros(amount)


@lru_cache(maxsize=1024)
def _cached_micros(amount: Decimal) -> int:
    return to_micros(amount)


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


def json_number(micros: int) -> Decimal:
    """Micro-units as the ``Decimal`` to put in a JSON response (``from_micros``).

    Write the response with ``dumps``: it renders the amount exactly, in its shortest
    fixed form (``0.048``, ``0.00001``). A float would come out as ``1e-05``.
    """
    return from_micros(micros)


MAX_FIXED_DIGITS = 4300  # like int(str) in Python: no multi-megabyte numbers from a Decimal


def decimal_text(amount: Decimal) -> str:
    """The shortest fixed-notation text of a finite Decimal, exactly (never rounded).

    ``Decimal("0.0480")`` → ``0.048``, ``Decimal("1E-5")`` → ``0.00001``, ``Decimal("5E+2")``
    → ``500``, ``-0`` → ``0``.

    Raises:
        ValueError: the Decimal is not finite, or its fixed form would be absurdly long.
    """
    if not amount.is_finite():
        raise ValueError(f"{amount!r} is not a finite number")
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
    if digits[:significant] == (0,):
        return "0"
    exponent += len(digits) - significant
    if max(significant + exponent, -exponent) > MAX_FIXED_DIGITS:
        raise ValueError(f"{_shown(amount)} is too long to write in fixed notation")
    return format(Decimal((sign, digits[:significant], exponent)), "f")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON with every Decimal written exactly, in its shortest fixed form.

    What every JSON money carrier of the project writes with: gateway responses, the
    gateway's command line, the client's request bodies. Floats keep ``repr`` (they are
    never money); NaN and infinities are refused, like ``allow_nan=False``.
    """
    parts: list[str] = []
    _encode(value, parts.append)
    return "".join(parts).encode("utf-8")


def _encode(value: Any, emit: Callable[[str], Any]) -> None:
    if isinstance(value, str):
        emit(encode_basestring(value))
    elif value is None:
        emit("null")
    elif value is True:
        emit("true")
    elif value is False:
        emit("false")
    elif isinstance(value, int):
        emit(int.__repr__(value))
    elif isinstance(value, Decimal):
        emit(decimal_text(value))
    elif isinstance(value, float):
        emit(json.dumps(value, allow_nan=False))
    elif isinstance(value, Mapping):
        emit("{")
        for i, (key, item) in enumerate(value.items()):
            emit(("," if i else "") + encode_basestring(_key(key)) + ":")
            _encode(item, emit)
        emit("}")
    elif isinstance(value, (list, tuple)):
        emit("[")
        for i, item in enumerate(value):
            if i:
                emit(",")
            _encode(item, emit)
        emit("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(key: Any) -> str:
    """A mapping key as ``json.dumps`` writes it (str, number, bool or None)."""
    if isinstance(key, str):
        return key
    if isinstance(key, (bool, type(None))):
        return json.dumps(key)
    if isinstance(key, Decimal):
        return decimal_text(key)
    if isinstance(key, (int, float)):
        return json.dumps(key, allow_nan=False)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
