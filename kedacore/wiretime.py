"""Times on the wire: UTC ISO-8601 with ``Z``, as in the seed (``2024-01-01T12:00:05Z``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """A UTC ISO-8601 time (``2024-01-01T12:00:05Z``) as an aware datetime; None stays None.

    A time without a zone is UTC (the wire is UTC by contract), never this machine's local
    time; one with an offset is converted to UTC.
    """
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime | None) -> str | None:
    """An aware datetime as UTC ISO-8601 with ``Z`` (seconds, or milliseconds when present)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


__all__ = ["format_time", "parse_time"]
