"""Time as integer milliseconds (what the database stores) and its two readings: UTC day, ISO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kedacore.wiretime import format_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(seconds: float) -> int:
    """Unix seconds → integer milliseconds."""
    return round(seconds * 1000)


def to_datetime(ms: int) -> datetime:
    """Milliseconds → aware UTC datetime, exactly (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=int(ms))


def iso(ms: int | None) -> str | None:
    """UTC ISO-8601 with ``Z`` (seconds, or milliseconds when present); None stays None."""
    return None if ms is None else format_time(to_datetime(ms))


def utc_day(ms: int) -> str:
    """The UTC date ``YYYY-MM-DD`` of a time: the key of daily usage."""
    return to_datetime(ms).date().isoformat()
