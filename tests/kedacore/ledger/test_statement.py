"""The money statement against the real gateway: a generated month adds up to the micro-unit.

The gateway and the ledger share one fake clock, so a month of activity — sends from the Send
page and a campaign, deliveries, failures, top-ups, balance readings taken the way the console
takes them (``client.account.balance()`` then ``ledger.record_balance``) — runs in a few
seconds. Results reach the ledger through status look-ups (``kedacore.reconcile``), with the
service's own times, long after they happened. Then every day must satisfy
opening + top-ups − charged = closing (and the frozen part likewise) with no unexplained
difference; and money moved outside the console (a top-up at the gateway itself, a send by
another tool with the same key) must show, on its day, as exactly that difference.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.carrier import Due, Step
from kedacore import AsyncKedaClient, KedaClient
from kedacore.api.types import SendResult
from kedacore.demo import generate
from kedacore.ledger import Ledger
from kedacore.ledger.statement import NONE, ZERO, Split, Statement
from kedacore.money import to_micros
from kedacore.reconcile import reconcile
from tests.support import Account, GatewayHandle, phone_numbers

START = datetime(2030, 2, 28, 22, 0, tzinfo=UTC)  # a reading before the month opens
MARCH = [date(2030, 3, 1) + timedelta(days=i) for i in range(31)]
TEXT = "Your order has shipped"


class Clock:
    """The one clock of the gateway (Unix seconds) and the ledger (aware datetime)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def unix(self) -> float:
        return self.now.timestamp()


@dataclass(frozen=True)
class SomeFail:
    """A carrier: numbers ending in 07 or 13 are refused (FAILED, released), those ending in
    5 are sent but never delivered (charged), the rest delivered; one second per step."""

    def first_delay(self, recipient: str, country: str) -> float:
        return 1.0

    def next_step(self, message: Due) -> Step:
        if message.status == "QUEUED":
            if message.recipient.endswith(("07", "13")):
                return Step("FAILED", None)
            return Step("SENT", 1.0)
        return Step("UNDELIVERED" if message.recipient.endswith("5") else "DELIVERED", None)


class World:
    """The gateway, the console's ledger and client, driven on the shared clock."""

    def __init__(self, gw: GatewayHandle, ledger: Ledger, clock: Clock, account: Account) -> None:
        self.gw, self.ledger, self.clock, self.account = gw, ledger, clock, account
        self.client = KedaClient(
            account.api_key, account.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
        )
        self.refs = itertools.count(1)
        self.numbers = itertools.count(0)

    def at(self, when: datetime) -> None:
        """Move the clock (forward only) and let the carrier apply what fell due."""
        assert when >= self.clock.now
        self.clock.now = when
        due_ms = round(when.timestamp() * 1000)
        self.gw.poll(
            lambda: (
                self.gw.query("SELECT count(*) FROM messages WHERE next_event_at <= ?", due_ms)[0][
                    0
                ]
                == 0
            )
        )

    def later(self, **delta: float) -> None:
        self.at(self.clock.now + timedelta(**delta))

    def recipients(self, count: int) -> list[str]:
        first = next(self.numbers)
        for _ in range(count - 1):
            next(self.numbers)
        return phone_numbers("US", count, start=first)

    def send(self, count: int, *, by: str | None = None) -> SendResult:
        """A send as the Send page makes it: pending first, then the answer recorded."""
        ref = f"console-{next(self.refs)}"
        numbers = self.recipients(count)
        self.ledger.begin_send(
            ref,
            country="US",
            sender=None,
            content=TEXT,
            recipients=numbers,
            currency="USD",
            created_by=by,
        )
        result = self.client.sms.send("US", numbers, TEXT, client_ref=ref)
        self.ledger.finish_send(ref, result)
        return result

    def campaign_batch(self, campaign_id: int, count: int) -> SendResult:
        numbers = self.recipients(count)
        result = self.client.sms.send("US", numbers, TEXT, client_ref=f"c-{next(self.refs)}")
        self.ledger.record_send(
            result, country="US", sender=None, content=TEXT, campaign_id=campaign_id
        )
        return result

    def topup(self, amount: str, *, recorded: bool = True) -> None:
        """Settings' top-up: the gateway adds it, then the ledger records it (unless not)."""
        self.gw.topup(self.account.email, amount)
        if recorded:
            self.ledger.record_topup(
                to_micros(amount), "USD", account=self.account.email, by="finance@example.com"
            )

    def read(self) -> None:
        """What the shell does on every page view: read the balance, keep it."""
        balance = self.client.account.balance()
        self.ledger.record_balance(
            to_micros(balance.balance), to_micros(balance.frozen), balance.currency
        )

    def learn(self) -> None:
        """Every open message's result, from the status API (times are the service's)."""

        async def run() -> None:
            async with AsyncKedaClient(
                self.account.api_key,
                self.account.encryption_key,
                base_url=self.gw.base_url,
                backup_url=self.gw.base_url,
            ) as client:
                await reconcile(self.ledger, client)

        asyncio.run(run())

    def gateway_sum(self, sql: str, since: datetime, until: datetime) -> int:
        ms = [round(x.timestamp() * 1000) for x in (since, until)]
        return int(self.gw.query(sql, *ms)[0][0] or 0)


@pytest.fixture
def world(
    gateway_factory: Callable[..., GatewayHandle], ledger_url: Callable[..., str]
) -> Iterator[World]:
    clock = Clock(START)
    # The client seals envelopes with the real time; this gateway lives in 2030.
    gw = gateway_factory(clock=clock.unix, policy=SomeFail(), window=10**10)
    account = gw.create_account(balance="40")
    with Ledger(ledger_url(), clock=clock) as ledger:
        w = World(gw, ledger, clock, account)
        yield w
        w.client.close()


def assert_adds_up(statement: Statement) -> None:
    """Every day: opening + movements = closing, to the micro-unit, nothing unexplained."""
    for before, day in itertools.pairwise(statement.days):
        assert day.opening == before.closing, day.day
    for day in statement.days:
        assert day.opening is not None and day.closing is not None, day.day
        assert day.difference == ZERO, (day.day, day.difference)
        assert day.expected == day.closing, day.day
        moved = day.moved
        assert day.opening.total + moved.topups - moved.charged == day.closing.total
        assert day.opening.frozen + moved.frozen_by_sends - moved.charged - moved.released == (
            day.closing.frozen
        )
        assert not day.flagged


def test_a_generated_month_adds_up_to_the_micro_unit(world: World) -> None:
    w = world
    w.read()  # 2030-02-28 22:00: the month's opening reading
    campaign = w.ledger.create_campaign("Spring sale", created_by="marketing@example.com")
    for n, day in enumerate(MARCH):
        morning = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9)
        w.at(morning)
        if n % 7 == 3:
            continue  # a quiet day: nothing sent, nobody looks
        w.send(1 + n % 4, by="ana@example.com" if n % 2 else None)
        w.later(seconds=30)
        w.read()
        w.later(hours=2)
        if n % 3 == 0:
            w.campaign_batch(campaign, 12)
            w.later(seconds=5)
        if n % 5 == 1:
            w.topup("2.5")
            w.later(minutes=1)
        if n % 4 != 2:  # some days have no reading after the morning
            w.later(hours=5)
            w.read()
        if n % 6 == 0:  # sent just before midnight: charged (or released) after it
            w.at(
                datetime.combine(day, datetime.min.time(), UTC)
                + timedelta(hours=23, minutes=59, seconds=59)
            )
            w.send(3)
    w.at(datetime(2030, 4, 1, 0, 30, tzinfo=UTC))
    w.read()
    w.learn()  # everything heard at last, with the service's own times

    statement = w.ledger.statement(MARCH[0], MARCH[-1], "USD")
    assert [d.day for d in statement.days] == MARCH
    assert_adds_up(statement)

    # The movements are the gateway's own, day by day (its clock, its tables).
    for day in statement.days:
        since = datetime.combine(day.day, datetime.min.time(), UTC)
        until = since + timedelta(days=1)
        charged = w.gateway_sum(
            "SELECT sum(price_micros) FROM messages WHERE status IN "
            "('SENT', 'DELIVERED', 'UNDELIVERED') AND sent_at >= ? AND sent_at < ?",
            since,
            until,
        )
        released = w.gateway_sum(
            "SELECT sum(price_micros) FROM messages WHERE status = 'FAILED' "
            "AND updated_at >= ? AND updated_at < ?",
            since,
            until,
        )
        frozen = w.gateway_sum(
            "SELECT sum(price_micros) FROM tasks WHERE created_at >= ? AND created_at < ?",
            since,
            until,
        )
        topups = w.gateway_sum(
            "SELECT sum(amount_micros) FROM topups WHERE created_at >= ? AND created_at < ?",
            since,
            until,
        )
        assert (day.moved.charged, day.moved.released) == (charged, released), day.day
        assert (day.moved.frozen_by_sends, day.moved.topups) == (frozen, topups), day.day

    # The month had everything: failures, sends across midnight, quiet and unread days.
    total = statement.moved
    assert total.released > 0 and total.charged > 0 and total.topups == to_micros("15")
    assert statement.days[0].opening == Split(to_micros("40"), 0)
    assert any(not d.read_today for d in statement.days)
    # The last send crossed midnight: frozen on March 31, charged on April 1, whose
    # statement so far ends on the gateway's balance now.
    april = w.ledger.statement(date(2030, 4, 1), date(2030, 4, 30), "USD").days
    assert [d.in_progress for d in april] == [True] and april[0].opening == statement.closing
    assert april[0].moved.charged > 0 and april[0].moved.frozen_by_sends == 0
    money = w.gw.money(w.account.email)
    assert april[0].closing == Split(money["balance"], money["frozen"]) == april[0].expected

    # By campaign and by member, the period's movements, each counted once.
    for groups in (statement.by_campaign, statement.by_member):
        assert sum(g.frozen_by_sends for g in groups) == total.frozen_by_sends
        assert sum(g.charged for g in groups) == total.charged
        assert sum(g.released for g in groups) == total.released
    labels = {g.label for g in statement.by_campaign}
    assert labels == {"Spring sale", "Single sends (no campaign)"}
    members = {g.label: g for g in statement.by_member}
    assert set(members) == {"marketing@example.com", "ana@example.com", "local operator"}
    spring = next(g for g in statement.by_campaign if g.label == "Spring sale")
    assert members["marketing@example.com"].charged == spring.charged > 0


def test_money_moved_outside_the_console_is_flagged_with_exactly_that_difference(
    world: World,
) -> None:
    w = world
    w.read()
    days = [date(2030, 3, 1), date(2030, 3, 2), date(2030, 3, 3), date(2030, 3, 4)]
    for day in days:
        w.at(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=8))
        w.send(2)
        w.later(minutes=1)
        w.read()
        if day == days[1]:  # a top-up made at the provider, not through the console
            w.later(hours=1)
            w.topup("7.5", recorded=False)
        if day == days[2]:  # another tool sends with the same key: the console never knows
            w.later(hours=1)
            w.client.sms.send("US", phone_numbers("US", 1, start=900), TEXT)
        w.later(hours=3)
        w.read()
    w.learn()

    statement = w.ledger.statement(days[0], days[-1], "USD")
    differences = {d.day: d.difference for d in statement.days}
    price = to_micros(w.client.pricing().prices["US"])  # one segment
    assert differences == {
        days[0]: ZERO,
        days[1]: Split(to_micros("7.5"), 0),  # money came in: available, nothing frozen
        days[2]: Split(-price, 0),  # frozen, then charged: gone from the balance
        days[3]: ZERO,
    }
    assert [d.day for d in statement.flagged] == [days[1], days[2]]
    assert statement.difference.total == to_micros("7.5") - price
    flagged = statement.days[1]
    assert flagged.closing.total - flagged.expected.total == to_micros("7.5")

    # Narrowed down to the two readings it happened between (09:01 and 12:01 of that day).
    gaps = w.ledger.statement_gaps(days[1], "USD")
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.difference == Split(to_micros("7.5"), 0)
    assert (gap.after.read_at.hour, gap.before.read_at.hour) == (8, 12)
    assert w.ledger.statement_gaps(days[0], "USD") == []


def test_the_first_reading_opens_its_day_when_nothing_moved_before_it(world: World) -> None:
    w = world
    w.at(datetime(2030, 3, 2, 10, tzinfo=UTC))
    w.read()  # the first reading ever (40.00), before anything moved that day
    w.later(minutes=1)
    w.send(2)
    w.later(minutes=1)
    w.read()
    w.learn()

    statement = w.ledger.statement(date(2030, 3, 1), date(2030, 3, 31), "USD")
    # March 1: no reading, nothing moved — left out, not shown as a row of unknowns.
    assert statement.left_out == 1 and statement.recorded_from == date(2030, 3, 2)
    (day,) = statement.days  # not past today
    assert day.day == date(2030, 3, 2) and day.in_progress
    # The opening is that reading, less nothing: known, exactly.
    assert day.opening == Split(to_micros("40"), 0) == statement.opening
    assert day.checked_from == datetime(2030, 3, 2, 10, tzinfo=UTC) == day.opening_read
    assert day.unchecked == NONE
    assert day.expected == day.closing and day.difference == ZERO
    assert statement.checked_from == day.day
    assert day.closing is not None and day.closing.total == to_micros("40") - day.moved.charged
    assert day.moved.charged > 0


def test_the_first_readings_day_is_carried_back_and_days_before_it_are_unknown(
    world: World,
) -> None:
    w = world
    w.at(datetime(2030, 3, 1, 15, tzinfo=UTC))
    w.send(1)  # March 1: a send, but no reading (a ledger older than the readings)
    w.later(minutes=1)  # charged on March 1
    w.at(datetime(2030, 3, 2, 10, tzinfo=UTC))
    w.send(2)  # March 2: a send before the first reading
    w.later(minutes=1)
    w.read()  # the first reading ever: March 2, 10:01
    w.later(hours=1)
    w.send(3)
    w.later(minutes=1)
    w.read()
    w.at(datetime(2030, 3, 3, 9, tzinfo=UTC))
    w.learn()

    statement = w.ledger.statement(date(2030, 2, 25), date(2030, 3, 31), "USD")
    assert statement.left_out == 4  # February 25 … 28: nothing on record
    assert [d.day for d in statement.days] == [date(2030, 3, i) for i in (1, 2, 3)]
    first, second, today = statement.days
    # March 1 moved money but nothing was read up to its end: truly unknown.
    assert first.opening is None and first.closing is None and first.difference is None
    assert first.moved.frozen_by_sends > 0 and statement.opening is None
    # The first reading's day: opening carried back from 10:01 with what moved before it,
    # which is the account's balance at 00:00 (40.00, nothing frozen) to the micro-unit.
    assert second.checked_from == datetime(2030, 3, 2, 10, 1, tzinfo=UTC)
    assert second.unchecked is not None and second.unchecked.frozen_by_sends > 0
    assert first.moved.charged + first.moved.released == first.moved.frozen_by_sends
    assert second.opening == Split(to_micros("40") - first.moved.charged, 0)
    assert second.difference == ZERO and second.expected == second.closing
    assert statement.checked_from == second.day
    # Today: no reading yet, carried from yesterday's last one; still in progress.
    assert today.in_progress and not today.read_today and today.opening == second.closing
    assert today.difference == ZERO


def test_a_period_before_any_record_has_no_days(world: World) -> None:
    w = world
    w.at(datetime(2030, 3, 10, 12, tzinfo=UTC))
    w.read()
    before = w.ledger.statement(date(2030, 2, 1), date(2030, 2, 28), "USD")
    assert before.days == [] and before.left_out == 28 and before.opening is None
    assert before.first_reading == datetime(2030, 3, 10, 12, tzinfo=UTC)
    assert before.checked_from is None
    future = w.ledger.statement(date(2030, 4, 1), date(2030, 4, 30), "USD")
    assert future.days == [] and future.left_out == 0  # not started yet


def test_demo_history_moved_no_money_and_is_left_out(world: World) -> None:
    w = world
    w.at(datetime(2030, 3, 10, 12, tzinfo=UTC))
    w.read()
    generate(w.ledger, days=5, messages=2_000, seed=3)
    w.later(minutes=1)
    w.read()
    statement = w.ledger.statement(date(2030, 3, 6), date(2030, 3, 10), "USD")
    assert statement.demo_left_out
    assert statement.moved.charged == 0 and statement.moved.frozen_by_sends == 0
    assert statement.by_campaign == [] and statement.by_member == []
    assert statement.days[-1].difference == ZERO


def test_a_period_is_checked() -> None:
    ledger = Ledger("sqlite://")
    with pytest.raises(ValueError, match="before it starts"):
        ledger.statement(date(2030, 3, 2), date(2030, 3, 1))
    with pytest.raises(ValueError, match="at most 366 days"):
        ledger.statement(date(2029, 1, 1), date(2030, 3, 1))
    empty = ledger.statement(date(2020, 1, 1), date(2020, 1, 31))
    assert empty.first_reading is None and empty.days == [] and empty.left_out == 31


def test_results_not_heard_yet_show_until_a_status_check_brings_them_in(world: World) -> None:
    w = world
    w.at(datetime(2030, 3, 5, 9, tzinfo=UTC))
    w.read()
    w.later(seconds=1)
    result = w.send(2)  # 2 one-segment messages; the carrier charges them a second later
    w.later(minutes=5)
    w.read()  # the balance shows the charges; the ledger has heard nothing yet
    day = date(2030, 3, 5)
    price = to_micros(result.debited_amount)
    before = w.ledger.statement(day, day, "USD").days[0]
    assert before.difference == Split(0, -price)  # charged out of frozen, unknown to the ledger
    w.learn()  # the results, with the service's times: the charges fall before the reading
    after = w.ledger.statement(day, day, "USD").days[0]
    assert after.difference == ZERO and after.moved.charged == price
