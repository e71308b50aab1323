"""Step 2's "must show", end to end: the real gateway and the console's receiver on loopback.

A campaign of a few hundred messages over several countries, under the realistic carrier
profile (its latencies scaled down), ends with every message final in the ledger through
callbacks alone and, separately, through reconciliation alone; the ledger's cost of each
message is the gateway's charge; the magic numbers behave as documented; and the money
invariant holds at every look while messages are in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gateway.simulation import MAGIC_FAILED, MAGIC_SLOW, MAGIC_UNDELIVERED, CarrierSimulation
from kedacore import AsyncKedaClient
from kedacore.ledger import Ledger
from kedacore.reconcile import reconcile
from tests.support import GatewayHandle, ReceiverHandle, phone_numbers, poll

CONTENT = "Spring sale: 20% off everything this weekend"
CAMPAIGN = {"US": 80, "GB": 50, "CN": 50, "IN": 50, "BR": 40, "NG": 30}  # 300 messages
PER_TASK = 25
MAGIC = [MAGIC_FAILED, MAGIC_UNDELIVERED, MAGIC_SLOW]


class Clock:
    """Real time plus an offset the test can move forward (to skip the slow number's 30 s)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def realistic_gateway(factory: Callable[..., GatewayHandle], clock: Clock) -> GatewayHandle:
    policy = CarrierSimulation.realistic(seed=7, time_scale=0.05)  # everything final < 1 s
    return factory(policy=policy, allow_private_callbacks=True, clock=clock)


async def send_campaign(
    gw: GatewayHandle,
    account: Any,
    ledger: Ledger,
    callback_url: str | None,
    while_in_flight: Callable[[], None],
) -> dict[str, str]:
    """Send the campaign in tasks of 25 (and the magic numbers), record each send."""
    batches = [
        (country, numbers[i : i + PER_TASK])
        for country, count in CAMPAIGN.items()
        for numbers in [phone_numbers(country, count)]
        for i in range(0, count, PER_TASK)
    ]
    batches.append(("US", MAGIC))
    recipients: dict[str, str] = {}
    async with AsyncKedaClient(
        account.api_key, account.encryption_key, base_url=gw.base_url, backup_url=gw.base_url
    ) as client:
        for country, numbers in batches:
            result = await client.sms.send(country, numbers, CONTENT, callback_url=callback_url)
            ledger.record_send(result, country=country, sender="KedaSMS", content=CONTENT)
            recipients.update({m.msgid: m.recipient for m in result.messages})
            while_in_flight()
    return recipients


def money_invariant(gw: GatewayHandle, email: str, looks: list[int]) -> Callable[[], None]:
    """A check of balance + frozen + charged = topped up, counting how often it ran."""

    def check() -> None:
        m = gw.money(email)
        assert m["balance"] + m["frozen"] + m["charged"] == m["topped_up"], m
        assert m["balance"] >= 0 and m["frozen"] >= 0
        looks.append(m["frozen"])

    return check


def gateway_charges(gw: GatewayHandle) -> dict[str, tuple[str, int]]:
    """msgid → (status, charged micro-units) as the gateway's database holds them."""
    rows = gw.query(
        "SELECT msgid, status, CASE WHEN status IN ('SENT', 'DELIVERED', 'UNDELIVERED') "
        "THEN price_micros ELSE 0 END FROM messages"
    )
    return {msgid: (status, charged) for msgid, status, charged in rows}


def ledger_rows(ledger: Ledger) -> dict[str, tuple[str, int | None]]:
    with ledger.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT msgid, status, cost_micros FROM messages").all()
    return {msgid: (status, cost) for msgid, status, cost in rows}


def by_recipient(recipients: dict[str, str], number: str) -> str:
    return next(m for m, r in recipients.items() if r == number)


def test_a_campaign_ends_final_in_the_ledger_through_callbacks_alone(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
    ledger_url: Callable[..., str],
) -> None:
    clock = Clock()
    gw = realistic_gateway(gateway_factory, clock)
    account = gw.create_account(balance="100")
    receiver = receiver_factory(signing_key=account.encryption_key, url=ledger_url())
    looks: list[int] = []
    check_money = money_invariant(gw, account.email, looks)
    recipients = asyncio.run(send_campaign(gw, account, receiver.ledger, receiver.url, check_money))
    assert len(recipients) == sum(CAMPAIGN.values()) + len(MAGIC)
    slow = by_recipient(recipients, MAGIC_SLOW)

    def settled() -> bool:
        check_money()  # at every look, while messages move and are charged or released
        open_ = receiver.ledger.non_final_messages()
        return [m.msgid for m in open_] == [slow] and open_[0].status == "SENT"

    poll(settled, timeout=20)
    assert any(frozen > 0 for frozen in looks)  # some looks really were mid-flight

    ours, theirs = ledger_rows(receiver.ledger), gateway_charges(gw)
    assert {m: s for m, (s, _) in ours.items()} == {m: s for m, (s, _) in theirs.items()}
    assert {m: c for m, (_, c) in ours.items()} == {m: c for m, (_, c) in theirs.items()}
    statuses = [s for s, _ in ours.values()]
    realistic = [s for m, (s, _) in ours.items() if recipients[m] not in MAGIC]
    assert realistic.count("FAILED") >= 1 and realistic.count("UNDELIVERED") >= 1
    assert ours[by_recipient(recipients, MAGIC_FAILED)] == ("FAILED", 0)
    assert ours[by_recipient(recipients, MAGIC_UNDELIVERED)] == ("UNDELIVERED", 50_000)
    assert ours[slow] == ("SENT", 50_000)

    clock.offset += 31  # the slow number is delivered 30 s after it was sent
    poll(lambda: receiver.ledger.message(slow).status == "DELIVERED", timeout=5)
    assert receiver.ledger.message(slow).delivery_ms >= 30_000

    # Every change was reported once: as many events in the ledger as in the outbox.
    poll(lambda: gw.query("SELECT count(*) FROM outbox WHERE state != 'delivered'") == [(0,)])
    outbox = gw.query("SELECT count(*) FROM outbox")[0][0]
    assert receiver.event_count() == outbox == len(recipients) * 2 - statuses.count("FAILED")
    money = gw.money(account.email)
    assert money["frozen"] == 0
    assert money["charged"] == sum(cost for _, cost in ledger_rows(receiver.ledger).values())


def test_the_same_campaign_ends_final_through_reconciliation_alone(
    gateway_factory: Callable[..., GatewayHandle], ledger_url: Callable[..., str]
) -> None:
    gw = realistic_gateway(gateway_factory, Clock())
    account = gw.create_account(balance="100")
    looks: list[int] = []
    with Ledger(ledger_url()) as ledger:
        recipients = asyncio.run(
            send_campaign(gw, account, ledger, None, money_invariant(gw, account.email, looks))
        )
        slow = by_recipient(recipients, MAGIC_SLOW)
        # Wait for the gateway to settle everything but the slow number (no callback URL:
        # the ledger hears nothing and keeps every message QUEUED meanwhile).
        poll(
            lambda: (
                gw.query("SELECT msgid FROM messages WHERE status IN ('QUEUED', 'SENT')")
                == [(slow,)]
            ),
            timeout=20,
        )
        assert len(ledger.non_final_messages()) == len(recipients)

        async def run() -> Any:
            async with AsyncKedaClient(
                account.api_key,
                account.encryption_key,
                base_url=gw.base_url,
                backup_url=gw.base_url,
            ) as client:
                return await reconcile(ledger, client)

        report = asyncio.run(run())
        assert report.errors == 0 and report.checked == len(recipients)
        assert [m.msgid for m in ledger.non_final_messages()] == [slow]
        ours, theirs = ledger_rows(ledger), gateway_charges(gw)
        assert ours == {m: (s, c) for m, (s, c) in theirs.items()}
        assert ours[by_recipient(recipients, MAGIC_FAILED)] == ("FAILED", 0)
        assert ours[by_recipient(recipients, MAGIC_UNDELIVERED)] == ("UNDELIVERED", 50_000)
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one() == 0
    assert gw.query("SELECT count(*) FROM outbox") == [(0,)]  # no callback URL, no events
