"""The carrier: any Policy's decisions applied with the right money (the seam Step 2 builds on)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.carrier import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, Due, Step

REFUSED = "+12065550001"
LOST = "+12065550002"
SLOW = "+12065550003"


@dataclass(frozen=True)
class ScriptedPolicy:
    """Fates by number, like Step 2's magic numbers; everything else is delivered."""

    def first_delay(self, recipient: str, country: str) -> float:
        return 30.0 if recipient == SLOW else 0.02

    def next_step(self, message: Due) -> Step:
        if message.status == QUEUED:
            return Step(FAILED, None) if message.recipient == REFUSED else Step(SENT, 0.02)
        return Step(UNDELIVERED if message.recipient == LOST else DELIVERED, None)


@dataclass(frozen=True)
class BrokenPolicy:
    def first_delay(self, recipient: str, country: str) -> float:
        return 0.0

    def next_step(self, message: Due) -> Step:
        return Step(DELIVERED, None)  # QUEUED → DELIVERED skips SENT: not allowed


def us(*numbers: str) -> dict:
    return {"countryCode": "US", "phoneNumbers": list(numbers), "content": "hi"}


def test_failed_is_released_undelivered_is_charged_slow_stays_frozen(gateway_factory):
    gateway = gateway_factory(policy=ScriptedPolicy())
    account = gateway.create_account(balance="1")
    data = gateway.send(account, us(REFUSED, LOST, SLOW, "+12065550123")).json()["data"]
    ids = {m["recipient"]: m["msgid"] for m in data["messages"]}
    failed = gateway.wait_for_status(account, ids[REFUSED], FAILED)
    lost = gateway.wait_for_status(account, ids[LOST], UNDELIVERED)
    fine = gateway.wait_for_status(account, ids["+12065550123"], DELIVERED)
    assert (failed["cost"], failed["sent_time"], failed["delivered_time"]) == (0, None, None)
    assert lost["cost"] == 0.05 and lost["sent_time"] and lost["delivered_time"] is None
    assert fine["cost"] == 0.05 and fine["delivered_time"]
    assert gateway.status(account, ids[SLOW])["status"] == QUEUED
    money = gateway.money(account.email)
    # 4 × 0.05 frozen at once; FAILED returned 0.05, two charged, the slow one still held.
    assert money == {
        "balance": 850_000,
        "frozen": 50_000,
        "charged": 100_000,
        "topped_up": 1_000_000,
    }
    usage = gateway.get("/external/accounts/limits", account).json()["data"]["usage"]
    assert (usage["smsSent"], usage["spend"], usage["frozen"]) == (3, 0.15, 0.05)


def test_a_task_is_charged_message_by_message(gateway_factory):
    gateway = gateway_factory(policy=ScriptedPolicy())
    account = gateway.create_account(balance="1")
    data = gateway.send(account, us(SLOW, "+12065550123")).json()["data"]
    gateway.wait_for_status(account, data["messages"][1]["msgid"], DELIVERED)
    money = gateway.money(account.email)
    assert (money["frozen"], money["charged"]) == (50_000, 50_000)


def test_batches_smaller_than_the_backlog_still_drain_it(gateway_factory):
    gateway = gateway_factory(carrier_batch=7)
    account = gateway.create_account()
    numbers = [f"+1206555{i:04d}" for i in range(50)]
    task = gateway.send(account, us(*numbers)).json()["data"]["taskId"]

    def all_delivered() -> bool:
        data = gateway.get("/sms/status", account, taskId=task).json()["data"]
        return all(m["status"] == DELIVERED for m in data)

    gateway.poll(all_delivered, timeout=10)
    assert gateway.money(account.email)["charged"] == 50 * 50_000


def test_a_policy_asking_for_an_impossible_change_is_ignored(gateway_factory):
    gateway = gateway_factory(policy=BrokenPolicy())
    account = gateway.create_account()
    msgid = gateway.send(account, us("+12065550123")).json()["data"]["messages"][0]["msgid"]
    gateway.poll(
        lambda: (
            gateway.query("SELECT next_event_at FROM messages WHERE msgid = ?", msgid) == [(None,)]
        )
    )
    assert gateway.status(account, msgid)["status"] == QUEUED
    assert gateway.money(account.email)["frozen"] == 50_000
    # and the server is still healthy
    assert gateway.http.get(gateway.root_url + "/healthz").json() == {"ok": True}


def test_listeners_see_each_transition_in_the_same_transaction(gateway_factory):
    gateway = gateway_factory()
    seen: list[tuple[str, str]] = []
    carrier = gateway.app.state.gateway.carrier
    carrier.on_transitions.append(lambda conn, ts: seen.extend((t.before, t.after) for t in ts))
    account = gateway.create_account()
    msgid = gateway.send(account, us("+12065550123")).json()["data"]["messages"][0]["msgid"]
    gateway.wait_for_status(account, msgid)
    assert seen == [(QUEUED, SENT), (SENT, DELIVERED)]
