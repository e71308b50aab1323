"""When each part of a campaign goes: a chosen instant or each recipient's local time, and
quiet hours.

A :class:`Schedule` is kept as JSON in ``campaigns.schedule``; :func:`schedule_plan` turns a
:class:`~kedacore.campaign.plan.CampaignPlan` into the ledger's batches, each with its
``not_before`` (UTC):

- ``"at"``: one instant, a wall time in a named zone (``zone``);
- ``"local"``: the same wall time (date and time) in each recipient's own zone, taken from the
  number (phonenumbers' time-zone data; several zones → the first; none known → ``zone``);
- quiet hours (default 21:00–08:00 in the recipient's zone, ``None``: off): a time inside the
  window is moved to the window's end, the next 08:00 local.

A time already past is "now": a recipient whose local 09:00 has gone by is sent at once.

Wall times and DST: every wall time is made with ``zoneinfo`` and ``fold=0`` and then
normalised through UTC. A time that does not exist (the hour skipped when clocks go forward,
02:30 in New York on 2026-03-08) takes the offset before the change and lands an hour later
on the clock (03:30 EDT, 07:30 UTC); a time that happens twice (the hour repeated when clocks
go back) is its first occurrence (summer time). The quiet window's end is a wall time too:
08:00 in New York is 13:00 UTC on 2026-03-07 and 12:00 UTC on 2026-03-08.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kedacore.ledger.records import PlannedBatch

if TYPE_CHECKING:
    from kedacore.campaign.plan import CampaignPlan

MODES = ("now", "at", "local")
DEFAULT_QUIET = (time(21, 0), time(8, 0))
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule that cannot be kept (a bad zone, time or quiet window)."""


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ScheduleError when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def parse_hhmm(text: str) -> time:
    """``"21:00"`` → ``time(21, 0)``."""
    found = _HHMM.match(text.strip())
    if not found:
        raise ScheduleError(f"a time is HH:MM (00:00–23:59), got {text!r}")
    return time(int(found.group(1)), int(found.group(2)))


def parse_quiet(text: str | None) -> tuple[time, time] | None:
    """``"21:00-08:00"`` → the window; ``"off"`` → None; None or "" → the default."""
    if text is None or not text.strip():
        return DEFAULT_QUIET
    if text.strip().lower() == "off":
        return None
    start, sep, end = text.replace("–", "-").partition("-")
    if not sep:
        raise ScheduleError(f"quiet hours are HH:MM-HH:MM or off, got {text!r}")
    window = (parse_hhmm(start), parse_hhmm(end))
    if window[0] == window[1]:
        raise ScheduleError("quiet hours must start and end at different times (or be off)")
    return window


def wall_time(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall time ``day at`` in ``zone``: fold=0, normalised (module doc)."""
    local = datetime.combine(day, at.replace(fold=0), tzinfo=zone)
    return local.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a campaign goes: ``mode`` "now", "at" (``day`` ``at`` in ``zone``) or "local"
    (``day`` ``at`` in each recipient's zone, ``zone`` for numbers of no known zone), and its
    quiet hours (None: off)."""

    mode: str = "now"
    day: date | None = None
    at: time | None = None
    zone: str = "UTC"
    quiet: tuple[time, time] | None = DEFAULT_QUIET

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ScheduleError(f"schedule mode must be one of {MODES}, got {self.mode!r}")
        zone_of(self.zone)
        if self.mode != "now" and (self.day is None or self.at is None):
            raise ScheduleError(f"a schedule {self.mode!r} needs a date and a time")

    @property
    def quiet_text(self) -> str:
        if self.quiet is None:
            return "off"
        return f"{self.quiet[0]:%H:%M}-{self.quiet[1]:%H:%M}"

    def as_json(self) -> dict[str, Any]:
        """What ``campaigns.schedule`` keeps."""
        return {
            "mode": self.mode,
            "date": self.day.isoformat() if self.day else None,
            "time": f"{self.at:%H:%M}" if self.at else None,
            "zone": self.zone,
            "quiet": self.quiet_text,
        }

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> Schedule:
        day, at = found.get("date"), found.get("time")
        return cls(
            mode=str(found.get("mode") or "now"),
            day=date.fromisoformat(day) if day else None,
            at=parse_hhmm(at) if at else None,
            zone=str(found.get("zone") or "UTC"),
            quiet=parse_quiet(found.get("quiet") or "off"),
        )

    @classmethod
    def at_instant(
        cls, when: datetime, *, zone: str = "UTC", quiet: tuple[time, time] | None = None
    ) -> Schedule:
        """Mode "at" from an instant (an aware datetime, or a naive one in ``zone``)."""
        tz = zone_of(zone)
        local = when.astimezone(tz) if when.tzinfo else when.replace(tzinfo=tz)
        return cls("at", local.date(), local.time().replace(tzinfo=None), zone, quiet)

    def instant(self, zone_name: str | None = None) -> datetime | None:
        """The chosen instant (UTC) for a recipient in ``zone_name`` (mode "local"), or for
        everyone (mode "at"); None for "now"."""
        if self.mode == "now":
            return None
        assert self.day is not None and self.at is not None
        tz = zone_of(zone_name if self.mode == "local" and zone_name else self.zone)
        return wall_time(self.day, self.at, tz)


def after_quiet(when: datetime, zone: ZoneInfo, quiet: tuple[time, time] | None) -> datetime:
    """``when`` (aware), or the end of the quiet window it falls in, in ``zone`` (UTC)."""
    if quiet is None:
        return when.astimezone(UTC)
    start, end = quiet
    when = when.astimezone(UTC)
    local = when.astimezone(zone)
    wall = local.time().replace(tzinfo=None, fold=0)
    day = local.date()
    if start > end:  # across midnight (21:00–08:00)
        if wall >= start:
            return _window_end(day + timedelta(days=1), end, zone, when)
        if wall < end:
            return _window_end(day, end, zone, when)
    elif start <= wall < end:
        return _window_end(day, end, zone, when)
    return when


def _window_end(day: date, end: time, zone: ZoneInfo, when: datetime) -> datetime:
    """The quiet window's end on ``day``, never before ``when``: in the hour an autumn change
    repeats, a ``when`` in its second pass (fold=1) ends at the end's second pass too."""
    first = wall_time(day, end, zone)
    if first > when:
        return first
    second = datetime.combine(day, end, tzinfo=zone).replace(fold=1).astimezone(UTC)
    return max(second, when)


MAX_QUIET_HOLD = timedelta(hours=36)  # past this, the zones of a number share no waking hour


def after_quiet_everywhere(
    when: datetime, zones: Sequence[ZoneInfo], quiet: tuple[time, time] | None
) -> datetime:
    """``when``, or the first moment after it outside the quiet window in every one of
    ``zones`` (a number whose country spans several zones may be in any of them); when they
    share no such moment within ``MAX_QUIET_HOLD``, the window's end in the first zone."""
    start = when = when.astimezone(UTC)
    if quiet is None or not zones:
        return when
    for _ in range(8 * len(zones)):  # each pass only moves later
        moved = when
        for zone in zones:
            moved = after_quiet(moved, zone, quiet)
        if moved == when:
            return when
        if moved - start > MAX_QUIET_HOLD:
            break
        when = moved
    # No moment is outside quiet hours in all of them within a day (a long window — 19:00 to
    # 09:00 — over Russia's eleven zones): the number's first zone decides, as for its time.
    return after_quiet(start, zones[0], quiet)


@lru_cache(maxsize=4096)
def number_zones(e164: str) -> tuple[str, ...]:
    """Every IANA zone a number may be in (phonenumbers' data: one for most numbers, all of
    its country's for a mobile in Russia, Australia, Brazil…); empty when none is known."""
    import phonenumbers
    from phonenumbers import timezone as ptz

    try:
        zones = ptz.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return ()
    found = []
    for name in zones:
        if name and name != ptz.UNKNOWN_TIMEZONE:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            found.append(name)
    return tuple(found)


# Where most of a country's people live, for a number phonenumbers places in several zones (a
# mobile of Russia, Australia, Kazakhstan; a US toll-free number; a UK mobile, also placed in
# the Channel Islands and Man): the zone its "local time" is read in — CLDR's idea of a
# country's primary zone. The quiet hours are kept in every zone of the number all the same.
MAIN_ZONES = {
    "AU": "Australia/Sydney",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "GB": "Europe/London",
    "GL": "America/Godthab",
    "IT": "Europe/Rome",
    "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty",
    "MN": "Asia/Ulaanbaatar",
    "NO": "Europe/Oslo",
    "NZ": "Pacific/Auckland",
    "PF": "Pacific/Tahiti",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "US": "America/New_York",
}


def number_zone(e164: str, default: str = "UTC") -> str:
    """The IANA zone a number's local time is read in (phonenumbers' data): its only zone, or
    of several its country's main one (``MAIN_ZONES``), else the first; ``default`` when none
    is known."""
    zones = number_zones(e164)
    if len(zones) > 1:
        import phonenumbers

        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
        main = MAIN_ZONES.get(region or "")
        if main in zones:
            return main
    return zones[0] if zones else default


def not_before(
    e164: str,
    schedule: Schedule,
    now: datetime,
    *,
    zone_for: Callable[[str, str], str] = number_zone,
) -> tuple[datetime, str]:
    """When a recipient's message may go (UTC, never before ``now``) and the zone used: the
    chosen local time in the number's first zone; quiet hours kept in every zone it may be in
    (``number_zones``), so a number of a country of several zones is never woken in any."""
    zone = zone_for(e164, schedule.zone)
    chosen = schedule.instant(zone) or now
    when = max(chosen, now)
    zones = [zone_of(zone)]
    if zone_for is number_zone:
        zones += [zone_of(z) for z in number_zones(e164) if z != zone]
    return after_quiet_everywhere(when, zones, schedule.quiet), zone


def schedule_plan(plan: CampaignPlan, schedule: Schedule, now: datetime) -> list[PlannedBatch]:
    """The plan's batches, each request split by its recipients' ``not_before``, earliest
    first (so plan order is time order: a run sends a prefix). ``not_before`` is None for
    parts that may go at once (at or before ``now``)."""
    parts: list[tuple[datetime, int, PlannedBatch]] = []
    for index, request in enumerate(plan.requests):
        groups: dict[datetime, list[str]] = {}
        for number in request.recipients:
            groups.setdefault(not_before(number, schedule, now)[0], []).append(number)
        for when, numbers in groups.items():
            part = dataclasses.replace(request, recipients=tuple(numbers))
            stamp = None if when <= now else when
            parts.append((when, index, dataclasses.replace(part.batch(), not_before=stamp)))
    parts.sort(key=lambda p: (p[0], p[1]))
    return [batch for _, _, batch in parts]


def reschedule_batches(
    batches: Iterable[PlannedBatch], schedule: Schedule, now: datetime
) -> list[PlannedBatch]:
    """Planned batches (a campaign's, read back) with new times: each split by its
    recipients' ``not_before``; its estimate shared by recipients (the remainder to the first
    part: the sum is exact), earliest first."""
    parts: list[tuple[datetime, int, PlannedBatch]] = []
    for index, batch in enumerate(batches):
        groups: dict[datetime, list[str]] = {}
        for number in batch.recipients:
            groups.setdefault(not_before(number, schedule, now)[0], []).append(number)
        each, extra = divmod(batch.estimated_micros, max(1, len(batch.recipients)))
        for n, (when, numbers) in enumerate(groups.items()):
            micros = each * len(numbers) + (extra if n == 0 else 0)
            stamp = None if when <= now else when
            part = dataclasses.replace(
                batch, recipients=tuple(numbers), estimated_micros=micros, not_before=stamp
            )
            parts.append((when, index, part))
    parts.sort(key=lambda p: (p[0], p[1]))
    return [batch for _, _, batch in parts]


@dataclass(frozen=True, slots=True)
class Part:
    """One line of "when each part goes": an instant, its recipients and their zones."""

    when: datetime | None  # UTC; None: at once
    recipients: int
    zones: tuple[tuple[str, int], ...]  # zone, recipients (most first)
    countries: tuple[tuple[str, int], ...]


def parts_of(plan: CampaignPlan, schedule: Schedule, now: datetime) -> list[Part]:
    """When each part of the plan goes, earliest first (what the preview shows)."""
    found: dict[datetime | None, tuple[dict[str, int], dict[str, int]]] = {}
    for request in plan.requests:
        for number in request.recipients:
            when, zone = not_before(number, schedule, now)
            key = None if when <= now else when
            zones, countries = found.setdefault(key, ({}, {}))
            zones[zone] = zones.get(zone, 0) + 1
            countries[request.country] = countries.get(request.country, 0) + 1
    return [
        Part(when, sum(z.values()), _most(z), _most(c))
        for when, (z, c) in sorted(found.items(), key=lambda i: i[0] or now)
    ]


def _most(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def first_time(batches: Iterable[PlannedBatch]) -> datetime | None:
    """The earliest ``not_before`` of a plan (None: something goes at once)."""
    times = [b.not_before for b in batches]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


# -- the in-process runner's timers (SQLite: the console starts a scheduled campaign itself) --

_TIMERS: dict[tuple[str, int], threading.Timer] = {}
_TIMERS_LOCK = threading.Lock()


def arm_timer(url: str, campaign_id: int, timer: threading.Timer, *, replace: bool = True) -> bool:
    """Start ``timer`` as the campaign's one scheduled start in this process, replacing any
    (a Move, the next part after a run) — or, ``replace=False``, only when none is armed (a
    watcher's look, which read the time before a Move may have armed a newer one). Returns
    whether it was started."""
    with _TIMERS_LOCK:
        old = _TIMERS.get((url, campaign_id))
        if old is not None and not replace:
            return False
        _TIMERS[(url, campaign_id)] = timer
    if old is not None:
        old.cancel()
    timer.start()
    return True


def disarm(url: str, campaign_id: int, *, only: threading.Timer | None = None) -> bool:
    """Forget the campaign's scheduled start (cancelled, rescheduled, or it fired: ``only``
    that timer). Returns whether one was armed."""
    with _TIMERS_LOCK:
        timer = _TIMERS.get((url, campaign_id))
        if timer is None or (only is not None and timer is not only):
            return False
        del _TIMERS[(url, campaign_id)]
    if only is None:
        timer.cancel()
    return True


def armed(url: str, campaign_id: int) -> bool:
    """Whether this process will start the campaign at its next part's time."""
    with _TIMERS_LOCK:
        return (url, campaign_id) in _TIMERS


__all__ = [
    "DEFAULT_QUIET",
    "MAIN_ZONES",
    "Part",
    "Schedule",
    "ScheduleError",
    "after_quiet",
    "arm_timer",
    "armed",
    "disarm",
    "first_time",
    "not_before",
    "number_zone",
    "parse_hhmm",
    "parse_quiet",
    "parts_of",
    "reschedule_batches",
    "schedule_plan",
    "wall_time",
]
