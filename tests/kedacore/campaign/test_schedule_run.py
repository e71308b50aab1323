"""Scheduled campaigns against a gateway, on both stores: sent at their time (the ledger's
clock, injected: no test waits in real time), after a restart, each recipient once; cancelled
or moved before they start."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from kedacore.campaign import CampaignEngine
from kedacore.campaign.plan import CampaignPlan, PlannedRequest
from kedacore.campaign.schedule import Schedule, armed, disarm
from kedacore.ledger import Ledger
from tests.kedacore.campaign.helpers import NUMBERS, GatewayTally, client_factory

T = datetime(2026, 3, 8, 17, 0, tzinfo=UTC)  # 13:00 in New York, 10:00 in Seattle (both DST)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def plan_of(numbers: list[str], country: str = "US") -> CampaignPlan:
    request = PlannedRequest(
        country, None, "Sale at noon", tuple(numbers), 1, "GSM-7", Decimal("0.01")
    )
    return CampaignPlan("Sale at noon", None, "USD", (request,))


def engine_for(gateway, account, ledger: Ledger) -> CampaignEngine:
    factory = client_factory(
        gateway.base_url, account.api_key, account.encryption_key, max_retries=0
    )
    return CampaignEngine(ledger, factory, progress_interval=0, watch_interval=0.05)


@pytest.fixture
def url(ledger_url: Callable[..., str]) -> Iterator[str]:
    found = ledger_url()
    yield found
    for campaign_id in range(1, 10):  # no timer of these tests outlives them
        disarm(found, campaign_id)


def test_a_scheduled_campaign_survives_a_restart_and_starts_on_time(gateway, url: str) -> None:
    account = gateway.create_account(balance="100")
    numbers = [NUMBERS["US"](i) for i in range(5)]
    clock = Clock(T - timedelta(hours=1))
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        schedule = Schedule.at_instant(T, zone="America/New_York")  # quiet hours on
        campaign_id = engine.create(plan_of(numbers), name="Noon", schedule=schedule)
        campaign = ledger.campaign(campaign_id)
        assert (campaign.status, campaign.scheduled_at) == ("scheduled", T)
        assert ledger.campaign_schedule(campaign_id)["time"] == "13:00"
        early = engine.run_sync(campaign_id)  # a run before its time sends nothing
        assert early.status == "scheduled" and early.recipients_sent == 0
        assert "2026-03-08 17:00:00 UTC" in (early.reason or "")
        assert GatewayTally.read(gateway.query).messages == 0
    # The process is gone; a new one (new ledger and engine objects) finds it in the ledger.
    clock.now = T - timedelta(seconds=10)
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        assert ledger.due_scheduled_campaigns() == []
        clock.now = T + timedelta(seconds=2)
        assert ledger.due_scheduled_campaigns() == [campaign_id]
        assert engine.wake_scheduled() == [campaign_id]
        run = engine.background_run(campaign_id)
        assert run is not None and run.thread is not None
        run.thread.join(60)
        assert run.error is None and run.report is not None
        assert (run.report.status, run.report.recipients_sent) == ("done", 5)
        messages = engine.messages(campaign_id)
        assert sorted(m.recipient for m in messages) == numbers
        assert all(abs((m.created_at - T).total_seconds()) <= 5 for m in messages)
        assert engine.wake_scheduled() == []  # done: nothing to start again
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.recipients, tally.repeated) == (5, 5, [])


def test_local_time_parts_go_one_by_one_and_wait_in_between(gateway, url: str) -> None:
    account = gateway.create_account(balance="100")
    us = [NUMBERS["US"](i) for i in range(3)]  # Seattle
    gb = [NUMBERS["GB"](i) for i in range(2)]  # London
    requests = (*plan_of(us).requests, *plan_of(gb, "GB").requests)
    plan = CampaignPlan("Sale at noon", None, "USD", requests)
    clock = Clock(datetime(2026, 3, 29, 12, 0, tzinfo=UTC))
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        # 09:00 on 2026-03-30 at each recipient's: London is on BST since the 29th (08:00
        # UTC), Seattle on PDT since the 8th (16:00 UTC).
        schedule = Schedule("local", date(2026, 3, 30), time(9, 0), "UTC")
        campaign_id = engine.create(plan, name="Local nine", schedule=schedule)
        when = [(b.recipients, b.not_before) for b in ledger.campaign_batches(campaign_id)]
        london, seattle = (
            datetime(2026, 3, 30, 8, tzinfo=UTC),
            datetime(2026, 3, 30, 16, tzinfo=UTC),
        )
        assert when == [(tuple(gb), london), (tuple(us), seattle)]
        clock.now = london + timedelta(seconds=1)
        first = engine.run_sync(campaign_id)
        assert (first.status, first.recipients_sent) == ("scheduled", 2)
        assert ledger.campaign(campaign_id).status == "scheduled"
        assert ledger.next_part_at(campaign_id) == (0, seattle)
        assert GatewayTally.read(gateway.query).messages == 2
        clock.now = seattle
        second = engine.run_sync(campaign_id)
        assert (second.status, second.recipients_sent) == ("done", 3)
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.recipients, tally.repeated) == (5, 5, [])


def test_a_part_that_comes_due_during_a_run_goes_in_a_run_of_its_own_opt_outs_checked(
    gateway, url: str
) -> None:
    """Review finding: a run re-read "due now" at every page, so a later part that came due
    while it sent went out in the same run, without the opt-out check a run makes first."""
    account = gateway.create_account(balance="100")
    us = [NUMBERS["US"](i) for i in range(3)]  # Seattle
    gb = [NUMBERS["GB"](i) for i in range(2)]  # London
    requests = (*plan_of(us).requests, *plan_of(gb, "GB").requests)
    plan = CampaignPlan("Sale at noon", None, "USD", requests)
    clock = Clock(datetime(2026, 3, 29, 12, 0, tzinfo=UTC))
    london, seattle = datetime(2026, 3, 30, 8, tzinfo=UTC), datetime(2026, 3, 30, 16, tzinfo=UTC)
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        schedule = Schedule("local", date(2026, 3, 30), time(9, 0), "UTC")
        campaign_id = engine.create(plan, name="Local nine", schedule=schedule)
        clock.now = london + timedelta(seconds=1)
        checked = ledger.leave_out_opted_out

        def then_time_passes(cid: int) -> int:  # just after the run's opt-out check:
            left = checked(cid)
            clock.now = seattle + timedelta(seconds=1)  # Seattle's part comes due, and
            ledger.add_optouts([us[0]], by="ana@example.com", reason="STOP")  # one opts out
            ledger.leave_out_opted_out = checked  # once
            return left

        ledger.leave_out_opted_out = then_time_passes
        first = engine.run_sync(campaign_id)
        assert (first.status, first.recipients_sent) == ("scheduled", 2)  # London's part only
        assert "came due while this part was sent" in (first.reason or "")
        second = engine.run_sync(campaign_id)  # at once: its own run, its own check
        assert (second.status, second.recipients_sent) == ("done", 2)
    sent = {r for (r,) in gateway.query("SELECT recipient FROM messages")}
    assert us[0].lstrip("+") not in {r.lstrip("+") for r in sent}
    assert len(sent) == 4


def test_a_scheduled_campaign_cancelled_before_it_starts_sends_and_costs_nothing(
    gateway, url: str
) -> None:
    account = gateway.create_account(balance="100")
    clock = Clock(T - timedelta(hours=2))
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        schedule = Schedule.at_instant(T, zone="UTC", quiet=None)
        campaign_id = engine.create(plan_of([NUMBERS["US"](7)]), name="Off", schedule=schedule)
        engine.arm(campaign_id, T)  # as the console's runner does (a real-time timer)
        assert armed(url, campaign_id)
        engine.cancel(campaign_id)
        assert not armed(url, campaign_id)
        clock.now = T + timedelta(minutes=1)
        assert ledger.due_scheduled_campaigns() == [] and engine.wake_scheduled() == []
        with pytest.raises(ValueError, match="cancelled"):
            engine.run_sync(campaign_id)
        campaign = ledger.campaign(campaign_id)
        assert (campaign.status, campaign.debited_micros) == ("cancelled", 0)
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.price_micros) == (0, 0)


def test_a_timer_that_fires_counts_as_armed_until_its_run_holds_the_campaign(
    gateway, url: str
) -> None:
    """The console's watcher starts a due campaign that is neither armed nor held: a timer
    firing must never leave a moment when it is neither (two starts, two audit entries)."""
    account = gateway.create_account(balance="100")
    with Ledger(url) as ledger:
        engine = engine_for(gateway, account, ledger)
        soon = ledger.now() + timedelta(seconds=0.2)
        schedule = Schedule.at_instant(soon, zone="UTC", quiet=None)
        campaign_id = engine.create(plan_of([NUMBERS["US"](8)]), name="Timer", schedule=schedule)
        seen: list[tuple[bool, bool]] = []
        real_start = engine.start

        def start(cid: int, **kwargs):
            seen.append((armed(url, cid), engine.is_running(cid)))  # as the watcher would look
            run = real_start(cid, **kwargs)
            ended = run.report is not None or run.error is not None  # held, then let go
            seen.append((armed(url, cid), engine.is_running(cid) or ended))
            return run

        engine.start = start
        engine.arm(campaign_id, soon)
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while (armed(url, campaign_id) or engine.is_running(campaign_id)) or not seen:
            assert datetime.now(UTC) < deadline, seen
            threading.Event().wait(0.05)
        assert seen == [(True, False), (True, True)]
        assert ledger.campaign(campaign_id).status == "done"
        starts = [e for e in ledger.audit_entries() if e.action == "campaign_start"]
        assert len(starts) == 1


def test_a_look_that_read_the_old_time_leaves_a_moved_campaign_s_timer_alone(
    gateway, url: str
) -> None:
    """A Move to an earlier time arms its timer; the watcher, which read the campaign's old
    (later) time just before, must not put that one back in its place."""
    account = gateway.create_account(balance="100")
    with Ledger(url) as ledger:
        engine = engine_for(gateway, account, ledger)
        later = ledger.now() + timedelta(hours=1)
        schedule = Schedule.at_instant(later, zone="UTC", quiet=None)
        campaign_id = engine.create(plan_of([NUMBERS["US"](9)]), name="Moved", schedule=schedule)
        soon = ledger.now() + timedelta(seconds=0.3)
        engine.reschedule(campaign_id, None, Schedule.at_instant(soon, zone="UTC", quiet=None))
        assert engine.arm(campaign_id, soon)  # the Move's own timer
        assert not engine.arm(campaign_id, later, replace=False)  # the watcher's stale look
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while ledger.campaign(campaign_id).status != "done":
            assert datetime.now(UTC) < deadline, ledger.campaign(campaign_id).status
            threading.Event().wait(0.05)
        assert not armed(url, campaign_id)
    assert len(gateway.query("SELECT recipient FROM messages")) == 1


def test_a_schedule_can_move_until_its_first_part_is_sent(gateway, url: str) -> None:
    account = gateway.create_account(balance="100")
    clock = Clock(T - timedelta(hours=2))
    numbers = [NUMBERS["US"](i) for i in range(3)]
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        plan = plan_of(numbers)
        campaign_id = engine.create(
            plan, name="Move", schedule=Schedule.at_instant(T, zone="UTC", quiet=None)
        )
        before = ledger.campaign_batches(campaign_id)
        later = T + timedelta(hours=1)
        assert engine.reschedule(campaign_id, plan, Schedule.at_instant(later, quiet=None)) == later
        after = ledger.campaign_batches(campaign_id)
        assert [b.not_before for b in after] == [later]
        assert {b.client_ref for b in after}.isdisjoint(b.client_ref for b in before)
        campaign = ledger.campaign(campaign_id)
        assert (campaign.status, campaign.scheduled_at, campaign.recipients) == (
            "scheduled", later, 3
        )  # fmt: skip
        assert campaign.estimated_micros == 30_000
        # Moved again from its own batches (no plan at hand: the console), audited.
        again = T + timedelta(minutes=30)
        schedule = Schedule.at_instant(again, quiet=None)
        assert engine.reschedule(campaign_id, None, schedule, by="ops@example.com") == again
        assert ledger.campaign(campaign_id).estimated_micros == 30_000
        assert [b.not_before for b in ledger.campaign_batches(campaign_id)] == [again]
        (entry,) = [e for e in ledger.audit_entries() if e.action == "campaign_reschedule"]
        assert entry.actor == "ops@example.com"
        engine.reschedule(campaign_id, plan, Schedule.at_instant(later, quiet=None))
        clock.now = T + timedelta(minutes=35)  # the old times: nothing goes
        assert engine.run_sync(campaign_id).recipients_sent == 0
        clock.now = later
        assert engine.run_sync(campaign_id).status == "done"
        with pytest.raises(ValueError, match="cannot change"):
            engine.reschedule(campaign_id, plan, Schedule.at_instant(later, quiet=None))
    assert GatewayTally.read(gateway.query).messages == 3


def test_a_scheduled_campaign_over_the_threshold_waits_for_approval_then_its_time(
    gateway, url: str
) -> None:
    account = gateway.create_account(balance="100")
    clock = Clock(T - timedelta(hours=2))
    with Ledger(url, clock=clock) as ledger:
        engine = engine_for(gateway, account, ledger)
        schedule = Schedule.at_instant(T, zone="UTC", quiet=None)
        campaign_id = engine.create(plan_of([NUMBERS["US"](9)]), name="Big", schedule=schedule)
        ledger.add_member("ana@example.com", ["marketing"], by="boss@example.com")
        ledger.add_member("fin@example.com", ["finance"], by="boss@example.com")
        item = ledger.hold_campaign(campaign_id, by="ana@example.com", threshold_micros=1)
        assert ledger.campaign(campaign_id).status == "awaiting"
        ledger.approve(item.id, by="fin@example.com", reason="ok")
        assert ledger.campaign(campaign_id).status == "planned"
        # Started at the approval, before its time: nothing sent, scheduled again.
        assert engine.run_sync(campaign_id).status == "scheduled"
        assert GatewayTally.read(gateway.query).messages == 0
        clock.now = T
        assert engine.run_sync(campaign_id).status == "done"
    assert GatewayTally.read(gateway.query).messages == 1
