"""What the Spend page asks about: a UTC period and countries, senders, campaigns, statuses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from kedacore.api.types import STATUSES

Moment = date | datetime


def _utc(value: Moment, *, end: bool) -> datetime:
    """A period bound as an aware UTC datetime; a date means its whole day."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Filters:
    """A period and optional restrictions; an empty tuple means "all".

    Attributes:
        start: first day (a date, inclusive) or moment (a datetime, inclusive), UTC.
        end: last day (a date, inclusive) or moment (a datetime, exclusive), UTC.
        countries: ISO codes.
        senders: sender ids; ``None`` stands for messages sent without one.
        campaign_ids: campaign ids; ``None`` stands for messages outside any campaign.
        statuses: message statuses (QUEUED, SENT, DELIVERED, UNDELIVERED, FAILED).
        currency: only messages priced in this currency (an account has one).

    A message belongs to the period in which it was created (sent from the console): its
    spend, delivery and clicks count on that day, whenever they were reported.
    """

    start: Moment
    end: Moment
    countries: tuple[str, ...] = ()
    senders: tuple[str | None, ...] = ()
    campaign_ids: tuple[int | None, ...] = ()
    statuses: tuple[str, ...] = ()
    currency: str | None = None

    def __post_init__(self) -> None:
        # Lists from widgets become tuples, so that Filters stays hashable (a cache key).
        for name in ("countries", "senders", "campaign_ids", "statuses"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        object.__setattr__(self, "countries", tuple(c.upper() for c in self.countries))
        bad = [st for st in self.statuses if st not in STATUSES]
        if bad:
            raise ValueError(f"unknown status {bad[0]!r}; expected one of {', '.join(STATUSES)}")
        start, end = self.bounds
        if end <= start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """The period as aware UTC datetimes [start, end)."""
        return _utc(self.start, end=False), _utc(self.end, end=True)

    @property
    def length(self) -> timedelta:
        """How long the period is."""
        start, end = self.bounds
        return end - start

    def previous(self) -> Filters:
        """The same filters over the period of the same length just before this one."""
        start, end = self.bounds
        if not isinstance(self.start, datetime) and not isinstance(self.end, datetime):
            days = (end - start).days
            return replace(
                self, start=self.start - timedelta(days=days), end=self.start - timedelta(days=1)
            )
        return replace(self, start=start - (end - start), end=start)

    @classmethod
    def last_days(cls, days: int, *, today: date | None = None, **kwargs: Any) -> Filters:
        """The ``days`` whole UTC days up to and including ``today`` (default: today, UTC)."""
        if days < 1:
            raise ValueError("days must be at least 1")
        today = today or datetime.now(UTC).date()
        return cls(start=today - timedelta(days=days - 1), end=today, **kwargs)


def _tuple(values: Iterable[Any] | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, str):  # one country or status given bare
        return (values,)
    return tuple(values)
