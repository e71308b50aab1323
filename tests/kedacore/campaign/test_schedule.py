"""Schedules and quiet hours: the time arithmetic (kedacore.campaign.schedule), no store."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kedacore.campaign.plan import CampaignPlan, PlannedRequest
from kedacore.campaign.schedule import (
    Schedule,
    ScheduleError,
    after_quiet,
    not_before,
    number_zone,
    number_zones,
    parse_quiet,
    parts_of,
    schedule_plan,
    wall_time,
)

NY, PARIS = ZoneInfo("America/New_York"), ZoneInfo("Europe/Paris")
QUIET = (time(21, 0), time(8, 0))
NEW_YORK = "+12125550100"
PARIS_MOBILE = "+33612345678"
TOKYO = "+81312345678"
NOWHERE = "+80012345678"  # international freephone: no zone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_quiet_hours_end_at_0800_local_across_a_dst_change() -> None:
    # 22:00 in New York the evening before clocks go forward (2026-03-08): held to 08:00 EDT.
    evening = datetime(2026, 3, 7, 22, 0, tzinfo=NY)
    assert after_quiet(evening, NY, QUIET) == utc(2026, 3, 8, 12, 0)
    # The same a day earlier ends at 08:00 EST, an hour later in UTC.
    assert after_quiet(datetime(2026, 3, 6, 22, 0, tzinfo=NY), NY, QUIET) == utc(2026, 3, 7, 13)
    # 02:30 that night does not exist in New York; still quiet, still held to 08:00 EDT.
    assert after_quiet(utc(2026, 3, 8, 7, 30), NY, QUIET) == utc(2026, 3, 8, 12, 0)
    # Paris goes forward on 2026-03-29: 23:00 CET → 08:00 CEST = 06:00 UTC (07:00 UTC before).
    assert after_quiet(datetime(2026, 3, 28, 23, 0, tzinfo=PARIS), PARIS, QUIET) == utc(
        2026, 3, 29, 6, 0
    )
    assert after_quiet(datetime(2026, 3, 27, 23, 0, tzinfo=PARIS), PARIS, QUIET) == utc(
        2026, 3, 28, 7, 0
    )
    # Outside the window, or with quiet hours off: unchanged.
    noon = utc(2026, 3, 8, 16, 0)
    assert after_quiet(noon, NY, QUIET) == noon
    assert after_quiet(utc(2026, 3, 8, 7, 30), NY, None) == utc(2026, 3, 8, 7, 30)
    # 20:59 goes; 21:00 waits; 07:59 waits; 08:00 goes.
    assert after_quiet(datetime(2026, 5, 1, 20, 59, tzinfo=NY), NY, QUIET).hour == 0
    assert after_quiet(datetime(2026, 5, 1, 21, 0, tzinfo=NY), NY, QUIET) == utc(2026, 5, 2, 12)
    assert after_quiet(datetime(2026, 5, 2, 7, 59, tzinfo=NY), NY, QUIET) == utc(2026, 5, 2, 12)
    assert after_quiet(datetime(2026, 5, 2, 8, 0, tzinfo=NY), NY, QUIET) == utc(2026, 5, 2, 12)
    # A window within one day (12:00–14:00).
    lunch = (time(12), time(14))
    assert after_quiet(datetime(2026, 5, 2, 13, 0, tzinfo=PARIS), PARIS, lunch) == utc(
        2026, 5, 2, 12
    )


def test_wall_times_that_do_not_exist_or_happen_twice() -> None:
    # 02:30 on 2026-03-08 is skipped in New York: fold=0 → the offset before (EST) → 07:30 UTC,
    # 03:30 EDT on the clock.
    gap = wall_time(date(2026, 3, 8), time(2, 30), NY)
    assert gap == utc(2026, 3, 8, 7, 30)
    assert gap.astimezone(NY).strftime("%H:%M %Z") == "03:30 EDT"
    # 01:30 on 2026-11-01 happens twice: the first (EDT) → 05:30 UTC.
    assert wall_time(date(2026, 11, 1), time(1, 30), NY) == utc(2026, 11, 1, 5, 30)
    at = Schedule("at", date(2026, 3, 8), time(2, 30), "America/New_York", None)
    assert at.instant() == utc(2026, 3, 8, 7, 30)


def test_a_number_s_zone_comes_from_phonenumbers() -> None:
    assert number_zone(NEW_YORK) == "America/New_York"
    assert number_zone(PARIS_MOBILE) == "Europe/Paris"
    assert number_zone(TOKYO) == "Asia/Tokyo"
    assert number_zone(NOWHERE, "Europe/Berlin") == "Europe/Berlin"  # unknown → the default
    # Several zones: the country's main one (an Australian, a Russian, a UK mobile, a US
    # toll-free number).
    assert number_zone("+61412345678") == "Australia/Sydney"
    assert number_zone("+79161234567") == "Europe/Moscow"
    assert number_zone("+447400123456") == "Europe/London"
    assert number_zone("+18885550123") == "America/New_York"


def _plan(*numbers: str) -> CampaignPlan:
    price = Decimal("0.013")
    requests = tuple(
        PlannedRequest(country, None, "Hello", nums, 1, "GSM-7", price)
        for country, nums in (("XX", numbers),)
    )
    return CampaignPlan("Hello", None, "USD", requests)


def test_local_time_mode_sends_at_each_recipient_s_own_time() -> None:
    now = utc(2026, 3, 29, 0, 0)
    schedule = Schedule("local", date(2026, 3, 30), time(10, 0), "Europe/Berlin", QUIET)
    numbers = (NEW_YORK, PARIS_MOBILE, TOKYO, NOWHERE, "+12125550101")
    batches = schedule_plan(_plan(*numbers), schedule, now)
    times = {b.recipients: b.not_before for b in batches}
    assert times == {
        (TOKYO,): utc(2026, 3, 30, 1, 0),  # 10:00 JST
        # 10:00 CEST in Paris (the day after the change), and for the number of no zone the
        # campaign's (Berlin, CEST): the same instant, one batch.
        (PARIS_MOBILE, NOWHERE): utc(2026, 3, 30, 8, 0),
        (NEW_YORK, "+12125550101"): utc(2026, 3, 30, 14, 0),  # 10:00 EDT
    }
    # Earliest first (a run sends a prefix), and the money is each part's own: 13,000 a number.
    assert [b.not_before for b in batches] == sorted(b.not_before for b in batches)
    assert [b.estimated_micros for b in batches] == [13_000 * len(b.recipients) for b in batches]
    assert sum(b.estimated_micros for b in batches) == _plan(*numbers).requests[0].cost_micros
    parts = parts_of(_plan(*numbers), schedule, now)
    assert [(p.when, p.recipients) for p in parts] == [
        (utc(2026, 3, 30, 1), 1),
        (utc(2026, 3, 30, 8), 2),
        (utc(2026, 3, 30, 14), 2),
    ]
    assert dict(parts[1].zones) == {"Europe/Berlin": 1, "Europe/Paris": 1}


def test_local_time_inside_quiet_hours_and_times_already_past() -> None:
    now = utc(2026, 3, 30, 12, 0)  # 14:00 in Paris, 08:00 in New York, 21:00 in Tokyo
    schedule = Schedule("local", date(2026, 3, 30), time(7, 0), "UTC", QUIET)
    batches = schedule_plan(_plan(NEW_YORK, PARIS_MOBILE, TOKYO), schedule, now)
    times = {n: b.not_before for b in batches for n in b.recipients}
    # Paris and New York: 07:00 has gone → at once (New York's 08:00 has just come: not quiet).
    assert times[PARIS_MOBILE] is None and times[NEW_YORK] is None
    # Tokyo: 07:00 has gone, "now" is 21:00 there → quiet → 08:00 the next day (23:00 UTC).
    assert times[TOKYO] == utc(2026, 3, 30, 23, 0)
    assert [len(b.recipients) for b in batches] == [2, 1]  # at once first
    # Quiet hours off: Tokyo at once too.
    off = Schedule("local", date(2026, 3, 30), time(7, 0), "UTC", None)
    assert all(b.not_before is None for b in schedule_plan(_plan(TOKYO), off, now))


def test_a_schedule_is_kept_as_json_and_checked() -> None:
    schedule = Schedule("at", date(2026, 3, 8), time(9, 15), "America/New_York", QUIET)
    assert schedule.as_json() == {
        "mode": "at", "date": "2026-03-08", "time": "09:15", "zone": "America/New_York",
        "quiet": "21:00-08:00",
    }  # fmt: skip
    assert Schedule.from_json(schedule.as_json()) == schedule
    assert parse_quiet("off") is None and parse_quiet(None) == QUIET
    assert parse_quiet("22:30–07:15") == (time(22, 30), time(7, 15))
    for bad in ("9-5", "21:00", "25:00-08:00", "08:00-08:00"):
        with pytest.raises(ScheduleError):
            parse_quiet(bad)
    with pytest.raises(ScheduleError, match="unknown time zone"):
        Schedule("at", date(2026, 3, 8), time(9), "Mars/Olympus")
    with pytest.raises(ScheduleError, match="needs a date and a time"):
        Schedule("local")
    instant = Schedule.at_instant(utc(2026, 3, 8, 14, 0), zone="America/New_York")
    assert (instant.day, instant.at, instant.instant()) == (
        date(2026, 3, 8), time(10, 0), utc(2026, 3, 8, 14)
    )  # fmt: skip


def test_quiet_hours_hold_in_every_zone_a_number_may_be_in() -> None:
    """Review finding: a Moscow mobile's first zone in phonenumbers' data is Asia/Almaty
    (alphabetical): 03:30Z passed as 08:30 there while it was 06:30 in Moscow."""
    moscow = "+79161234567"
    assert len(number_zones(moscow)) > 5 and "Europe/Moscow" in number_zones(moscow)
    at = Schedule("at", date(2026, 12, 8), time(3, 30), "UTC", QUIET)
    when, _ = not_before(moscow, at, utc(2026, 12, 7, 12))
    for name in number_zones(moscow):  # outside 21:00–08:00 everywhere in Russia
        local = when.astimezone(ZoneInfo(name)).time()
        assert time(8, 0) <= local < time(21, 0), (name, local)
    assert when == utc(2026, 12, 8, 6, 0)  # 08:00 in Kaliningrad, the last to wake
    # A number of one zone is not held by others: New York at 13:00Z (08:00 EST) goes then.
    ny = Schedule("at", date(2026, 12, 8), time(13, 0), "UTC", QUIET)
    assert not_before(NEW_YORK, ny, utc(2026, 12, 7, 12))[0] == utc(2026, 12, 8, 13)


def test_a_quiet_window_ending_in_the_repeated_autumn_hour_never_goes_back() -> None:
    """Review finding: 01:15 EST (the second 01:15 of 2026-11-01) in a 00:00–01:30 window
    ended at 01:30 EDT, 45 minutes before it — sent at once, inside quiet hours."""
    second_pass = utc(2026, 11, 1, 6, 15)  # 01:15 EST
    assert after_quiet(second_pass, NY, (time(0, 0), time(1, 30))) == utc(2026, 11, 1, 6, 30)
    first_pass = utc(2026, 11, 1, 5, 15)  # 01:15 EDT
    assert after_quiet(first_pass, NY, (time(0, 0), time(1, 30))) == utc(2026, 11, 1, 5, 30)


def test_a_long_quiet_window_no_zone_of_a_country_shares_falls_back_to_the_first_zone() -> None:
    """Review finding: 19:00–09:00 over Russia's zones leaves no moment outside quiet hours in
    all of them: the loop gave up months later (2027-03-28). The number's first zone decides."""
    moscow = "+79161234567"
    long_quiet = (time(19, 0), time(9, 0))
    at = Schedule("at", date(2026, 12, 8), time(10, 0), "Europe/Moscow", long_quiet)
    when, zone = not_before(moscow, at, utc(2026, 12, 7, 12))
    assert when - utc(2026, 12, 8, 7) < timedelta(days=1)  # the day it was asked for
    local = when.astimezone(ZoneInfo(zone)).time()
    assert time(9, 0) <= local < time(19, 0), (zone, local)
