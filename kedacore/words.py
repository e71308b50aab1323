"""Counts as people write them: ``1 recipient``, ``3 recipients``, ``1,000 messages``."""

from __future__ import annotations


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one (``many`` when the plural is not one+s)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
