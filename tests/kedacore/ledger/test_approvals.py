"""Maker–checker in the ledger: a send or campaign over the threshold waits, another member
decides it once, nobody decides their own, and every step is in the audit log.

The audit rows are read back with their actor, outcome, before and after: the log is the
record a finance controller reads, so the tests read it too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kedacore.api.types import SendResult, SentMessage
from kedacore.campaign import CampaignEngine
from kedacore.ledger import Ledger, PlannedBatch
from kedacore.ledger.approvals import ApprovalError, CostRose
from kedacore.ledger.team import AuditFilter

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NUMBERS = ("+12065550100", "+12065550101", "+12065550102")
MAKER = "m@example.com"
CHECKER = "f@example.com"
OTHER = "g@example.com"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Ledger:
    with Ledger(ledger_url(), clock=clock) as led:
        led.add_member(MAKER, ["marketing"], by="secrets")
        led.add_member(CHECKER, ["finance"], by="secrets")
        led.add_member(OTHER, ["finance", "marketing"], by="secrets")
        led.add_member("boss@example.com", ["admin"], by="secrets")
        yield led


def hold_send(ledger: Ledger, ref: str = "console-1", by: str = MAKER):
    return ledger.hold_send(
        ref,
        country="us",
        sender="Shop",
        content="Hello there",
        recipients=NUMBERS,
        currency="USD",
        estimated_micros=150_000,
        threshold_micros=50_000,
        created_by=by,
        session="s1",
    )


def planned_campaign(ledger: Ledger, name: str = "Spring") -> int:
    campaign_id = ledger.create_campaign(name, template="Hi {name}", created_by=MAKER)
    ledger.plan_campaign(
        campaign_id,
        [
            PlannedBatch("US", "Hi Ana", ("+12065550100",), 50_000),
            PlannedBatch("US", "Hi Ben", ("+12065550101",), 50_000),
            PlannedBatch("GB", "Hi Chloé", ("+447400123456",), 70_000),
        ],
    )
    return campaign_id


def entries(ledger: Ledger, *actions: str):
    """The audit log, oldest first, only these actions."""
    found = ledger.audit_entries(AuditFilter(actions=list(actions)))
    return list(reversed(found))


def result(task_id: str = "20240101-0001") -> SendResult:
    return SendResult(
        task_id=task_id,
        message="SMS task created",
        debited_amount=Decimal("0.15"),
        currency="USD",
        segments=3,
        messages=tuple(SentMessage(f"msg_{i:016x}", n) for i, n in enumerate(NUMBERS, 1)),
    )


# -- a send ---------------------------------------------------------------------------------


def test_a_held_send_waits_with_its_request_and_audit_entry(ledger: Ledger) -> None:
    item = hold_send(ledger)
    record = ledger.send_record("console-1")
    assert record is not None and record.state == "awaiting" and record.awaiting
    assert not record.pending and record.task_id is None
    assert record.created_by == MAKER and record.recipients == NUMBERS
    assert (item.kind, item.ref, item.state, item.requested_by) == (
        "send",
        "console-1",
        "waiting",
        MAKER,
    )
    assert item.estimate == Decimal("0.15") and item.threshold == Decimal("0.05")
    assert item.summary == "Send to 3 recipients in US from Shop: “Hello there”"
    (entry,) = entries(ledger, "send_awaiting")
    assert (entry.actor, entry.outcome, entry.target) == (MAKER, "done", "send console-1")
    assert entry.after == {
        "approval": item.id,
        "client_ref": "console-1",
        "countries": ["US"],
        "currency": "USD",
        "estimate": "0.15",
        "recipients": 3,
        "threshold": "0.05",
    }
    # The same confirmation twice is the same request, not a second one.
    assert hold_send(ledger).id == item.id
    assert len(ledger.approvals()) == 1 and len(entries(ledger, "send_awaiting")) == 1


def test_approving_a_send_releases_it_once_and_its_answer_is_audited(ledger: Ledger) -> None:
    item = hold_send(ledger)
    # Cheaper now than when it was asked for (a price fell): approved at what it costs now.
    decided = ledger.approve(item.id, by=CHECKER, reason="Budgeted", estimate_micros=140_000)
    assert (decided.state, decided.decided_by, decided.reason) == ("approved", CHECKER, "Budgeted")
    assert decided.decided_at == T0
    record = ledger.send_record("console-1")
    assert record.state == "pending" and record.estimated_micros == 140_000
    (entry,) = entries(ledger, "approve")
    assert (entry.actor, entry.outcome, entry.detail) == (CHECKER, "done", "Budgeted")
    assert entry.before == {"state": "waiting"}
    assert entry.after["state"] == "approved" and entry.after["estimate"] == "0.14"
    assert entry.after["estimate_requested"] == "0.15" and entry.after["requested_by"] == MAKER

    ledger.finish_send("console-1", result(), actor=CHECKER)
    assert ledger.send_record("console-1").state == "sent"
    (sent,) = entries(ledger, "send")
    assert (sent.actor, sent.outcome, sent.target) == (CHECKER, "done", "send console-1")
    assert sent.after["debited"] == "0.15" and sent.after["task_id"] == "20240101-0001"
    assert sent.after["client_ref"] == "console-1" and sent.after["recipients"] == 3

    with pytest.raises(ApprovalError, match=f"{CHECKER} approved it"):
        ledger.approve(item.id, by=OTHER, reason="again")
    refused = entries(ledger, "approve")[-1]
    assert (refused.actor, refused.outcome) == (OTHER, "refused")


def test_nobody_approves_a_cost_higher_than_the_one_they_were_shown(ledger: Ledger) -> None:
    item = hold_send(ledger)  # asked for at 0.15 USD
    # The price rose: it costs 0.16 USD now. Not approved; the request now says 0.16.
    with pytest.raises(
        CostRose, match=re.escape("It costs 0.16 USD now, more than the 0.15 USD")
    ) as told:
        ledger.approve(item.id, by=CHECKER, reason="Budgeted", estimate_micros=160_000)
    assert (told.value.shown_micros, told.value.now_micros) == (150_000, 160_000)
    shown = ledger.approval(item.id)
    assert shown.waiting and shown.estimate == Decimal("0.16") and shown.decided_by is None
    record = ledger.send_record("console-1")
    assert record.state == "awaiting" and record.estimated_micros == 160_000
    (refused,) = entries(ledger, "approve")
    assert (refused.actor, refused.outcome) == (CHECKER, "refused")
    assert refused.before == {"estimate": "0.15", "currency": "USD"}
    assert refused.after == {"estimate": "0.16", "currency": "USD", "approval": item.id}

    # A page drawn before someone else's click showed 0.15: still not what it costs.
    with pytest.raises(CostRose, match=re.escape("more than the 0.15 USD")):
        ledger.approve(item.id, by=OTHER, reason="ok", estimate_micros=160_000, seen_micros=150_000)
    assert ledger.approval(item.id).waiting

    # Approved knowingly: the figure shown is the one it costs.
    decided = ledger.approve(
        item.id, by=CHECKER, reason="Budgeted", estimate_micros=160_000, seen_micros=160_000
    )
    assert decided.state == "approved" and decided.estimate == Decimal("0.16")
    assert ledger.send_record("console-1").state == "pending"
    assert [(e.actor, e.outcome) for e in entries(ledger, "approve")] == [
        (CHECKER, "refused"),
        (OTHER, "refused"),
        (CHECKER, "done"),
    ]


def test_a_request_whose_requester_left_or_lost_the_role_is_not_approved(
    ledger: Ledger,
) -> None:
    gone = hold_send(ledger, "console-1", by=MAKER)
    ledger.remove_member(MAKER, by="boss@example.com")
    assert "no longer a member" in ledger.requester_refusal(gone)
    with pytest.raises(ApprovalError, match=f"{MAKER}, who asked for it, is no longer a member"):
        ledger.approve(gone.id, by=CHECKER, reason="Budgeted", estimate_micros=150_000)
    assert ledger.approval(gone.id).waiting
    assert ledger.send_record("console-1").state == "awaiting"
    # Rejecting it closes it.
    assert ledger.reject(gone.id, by=CHECKER, reason="Left the team").state == "rejected"

    campaign_id = planned_campaign(ledger)
    held = ledger.hold_campaign(campaign_id, by=OTHER, threshold_micros=100_000)
    ledger.set_member_roles(OTHER, ["finance"], by="boss@example.com")  # marketing taken away
    with pytest.raises(
        ApprovalError, match=re.escape("may no longer run campaigns (roles: finance)")
    ):
        ledger.approve(held.id, by=CHECKER, reason="Budgeted")
    assert ledger.campaign(campaign_id).status == "awaiting"
    ledger.set_member_roles(OTHER, ["finance", "marketing"], by="boss@example.com")
    assert ledger.requester_refusal(held) is None
    assert ledger.approve(held.id, by=CHECKER, reason="Budgeted").state == "approved"

    refused = [e for e in entries(ledger, "approve") if e.outcome == "refused"]
    assert [(e.actor, e.target) for e in refused] == [
        (CHECKER, "send console-1"),
        (CHECKER, f"campaign {campaign_id}"),
    ]
    assert "Reject it instead" in refused[0].detail

    # Asked for without sign-in (the local operator): nobody to have left.
    local = hold_send(ledger, "console-9", by="local operator")
    assert ledger.approve(local.id, by=CHECKER, reason="fine").state == "approved"


def test_a_refused_or_unanswered_send_is_audited_with_the_reason(ledger: Ledger) -> None:
    ledger.begin_send(
        "console-2", country="US", sender=None, content="x", recipients=NUMBERS,
        currency="USD", estimated_micros=150_000, created_by=MAKER,
    )  # fmt: skip
    ledger.note_send_error("console-2", "The connection broke", actor=MAKER)
    ledger.refuse_send("console-2", "Over today's SMS cap", code="3002", actor=MAKER)
    failed, refused = entries(ledger, "send")
    assert (failed.outcome, failed.detail) == ("failed", "No clear answer: The connection broke")
    assert (refused.actor, refused.outcome, refused.detail) == (
        MAKER, "refused", "Over today's SMS cap",
    )  # fmt: skip
    assert refused.after["code"] == "3002" and refused.after["estimate"] == "0.15"


def test_rejecting_a_send_needs_a_reason_and_keeps_it(ledger: Ledger) -> None:
    item = hold_send(ledger)
    with pytest.raises(ApprovalError, match="reason"):
        ledger.reject(item.id, by=CHECKER, reason="  ")
    assert ledger.approval(item.id).waiting
    decided = ledger.reject(item.id, by=CHECKER, reason="Too many numbers")
    assert decided.state == "rejected" and decided.reason == "Too many numbers"
    record = ledger.send_record("console-1")
    assert record.state == "rejected" and record.error == f"Rejected by {CHECKER}: Too many numbers"
    (entry,) = entries(ledger, "reject")
    assert (entry.actor, entry.detail, entry.before) == (
        CHECKER,
        "Too many numbers",
        {"state": "waiting"},
    )
    assert entry.after["state"] == "rejected"


def test_nobody_decides_their_own_request_and_the_refusal_is_audited(ledger: Ledger) -> None:
    item = hold_send(ledger, by=OTHER)  # finance + marketing: may approve, but not this
    for decide in (ledger.approve, ledger.reject):
        with pytest.raises(ApprovalError, match="nobody approves or rejects their own"):
            decide(item.id, by=OTHER, reason="It is fine")
    assert ledger.approval(item.id).waiting
    assert ledger.send_record("console-1").state == "awaiting"
    refusals = entries(ledger, "approve", "reject")
    assert [(e.action, e.actor, e.outcome) for e in refusals] == [
        ("approve", OTHER, "refused"),
        ("reject", OTHER, "refused"),
    ]
    assert ledger.approvers(besides=OTHER) == ["boss@example.com", CHECKER]


def test_only_the_requester_withdraws(ledger: Ledger) -> None:
    item = hold_send(ledger)
    with pytest.raises(ApprovalError, match=f"Only {MAKER}"):
        ledger.withdraw(item.id, by=CHECKER)
    decided = ledger.withdraw(item.id, by=MAKER)
    assert decided.state == "withdrawn"
    assert ledger.send_record("console-1").state == "withdrawn"
    assert [(e.actor, e.outcome) for e in entries(ledger, "withdraw")] == [
        (CHECKER, "refused"),
        (MAKER, "done"),
    ]
    with pytest.raises(ApprovalError, match=f"{MAKER} withdrew it"):
        ledger.approve(item.id, by=CHECKER, reason="late")


# -- a campaign -----------------------------------------------------------------------------


def test_a_held_campaign_waits_and_no_run_may_send_it(ledger: Ledger) -> None:
    campaign_id = planned_campaign(ledger)
    item = ledger.hold_campaign(campaign_id, by=MAKER, threshold_micros=100_000)
    assert ledger.campaign(campaign_id).status == "awaiting"
    assert (item.kind, item.ref, item.estimate_micros) == ("campaign", str(campaign_id), 170_000)
    assert item.summary == "Campaign “Spring” to 3 recipients in US 2, GB 1, 3 requests: “Hi Ana”"
    assert [f.id for f in ledger.active_campaigns().campaigns] == [campaign_id]
    (entry,) = entries(ledger, "campaign_awaiting")
    assert entry.target == f"campaign {campaign_id}" and entry.after["countries"] == ["GB", "US"]

    engine = CampaignEngine(ledger, lambda: pytest.fail("nothing may be sent"))
    with pytest.raises(ValueError, match="waits for approval"):
        engine.start(campaign_id)
    with pytest.raises(ValueError, match="waits for approval"):
        engine.run_sync(campaign_id)
    with pytest.raises(ValueError, match="waits for approval"):
        engine.cancel(campaign_id)
    assert ledger.campaign(campaign_id).status == "awaiting"
    with pytest.raises(ApprovalError, match="not started yet"):
        ledger.hold_campaign(campaign_id, by=MAKER, threshold_micros=100_000)


def test_no_run_moves_a_held_rejected_or_cancelled_campaign_to_sending(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = planned_campaign(ledger, "Held")
    ledger.hold_campaign(held, by=MAKER, threshold_micros=100_000)
    rejected = planned_campaign(ledger, "Rejected")
    ledger.reject(
        ledger.hold_campaign(rejected, by=MAKER, threshold_micros=100_000).id,
        by=CHECKER,
        reason="no",
    )
    cancelled = planned_campaign(ledger, "Cancelled")
    ledger.set_campaign_status(cancelled, "cancelled", error="cancelled")
    for campaign_id, status in (
        (held, "awaiting"),
        (rejected, "rejected"),
        (cancelled, "cancelled"),
    ):
        assert not ledger.mark_campaign_sending(campaign_id)  # the UPDATE itself refuses
        assert ledger.campaign(campaign_id).status == status
    sendable = planned_campaign(ledger, "Planned")
    assert ledger.mark_campaign_sending(sendable)
    assert ledger.campaign(sendable).status == "sending"

    # A run that checked the campaign a moment before it was held sends nothing, and the
    # campaign keeps waiting (not "paused": a resume would then send it unapproved).
    racing = planned_campaign(ledger, "Race")
    engine = CampaignEngine(ledger, lambda: pytest.fail("nothing may be sent"))
    monkeypatch.setattr(
        ledger,
        "hold_uncertain_batches",  # called by the run between its check and its first request
        lambda cid: ledger.hold_campaign(cid, by=MAKER, threshold_micros=100_000),
    )
    with pytest.raises(ValueError, match="waits for approval"):
        engine.run_sync(racing)
    assert ledger.campaign(racing).status == "awaiting"
    assert ledger.approval_of("campaign", racing).waiting


def test_approving_a_campaign_plans_it_again_and_rejecting_ends_it(ledger: Ledger) -> None:
    first = planned_campaign(ledger, "First")
    second = planned_campaign(ledger, "Second")
    a = ledger.hold_campaign(first, by=MAKER, threshold_micros=100_000)
    b = ledger.hold_campaign(second, by=MAKER, threshold_micros=100_000)
    ledger.approve(a.id, by=CHECKER, reason="Spring budget")
    assert ledger.campaign(first).status == "planned"
    ledger.reject(b.id, by=CHECKER, reason="Wrong list")
    rejected = ledger.campaign(second)
    assert rejected.status == "rejected" and rejected.error == f"Rejected by {CHECKER}: Wrong list"
    assert ledger.approval_of("campaign", second).reason == "Wrong list"
    assert [f.id for f in ledger.active_campaigns().campaigns] == [first]
    engine = CampaignEngine(ledger, lambda: pytest.fail("nothing may be sent"))
    with pytest.raises(ValueError, match="was rejected"):
        engine.start(second)


def test_two_approvers_at_once_approve_it_exactly_once(ledger: Ledger) -> None:
    for round_ in range(5):
        campaign_id = planned_campaign(ledger, f"Race {round_}")
        item = ledger.hold_campaign(campaign_id, by=MAKER, threshold_micros=100_000)
        start = threading.Barrier(2)
        won: list[str] = []
        lost: list[str] = []

        def decide(who: str, item_id: int = item.id, barrier=start, won=won, lost=lost) -> None:
            barrier.wait()
            try:
                ledger.approve(item_id, by=who, reason=f"ok by {who}")
                won.append(who)
            except ApprovalError as exc:
                lost.append(str(exc))

        threads = [threading.Thread(target=decide, args=(w,)) for w in (CHECKER, OTHER)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(won) == 1 and len(lost) == 1, (won, lost)
        assert f"{won[0]} approved it" in lost[0]
        decided = ledger.approval(item.id)
        assert decided.state == "approved" and decided.decided_by == won[0]
        assert ledger.campaign(campaign_id).status == "planned"
        done = [
            e
            for e in entries(ledger, "approve")
            if e.target == f"campaign {campaign_id}" and e.outcome == "done"
        ]
        assert [e.actor for e in done] == won


def test_the_queue_and_my_requests(ledger: Ledger, clock: Clock) -> None:
    one = hold_send(ledger, "console-1")
    clock.now = T0 + timedelta(minutes=1)
    two = hold_send(ledger, "console-2", by=OTHER)
    clock.now = T0 + timedelta(minutes=2)
    ledger.reject(one.id, by=CHECKER, reason="no")
    assert [a.id for a in ledger.approvals(states=["waiting"], oldest_first=True)] == [two.id]
    assert [a.id for a in ledger.approvals(requested_by=MAKER)] == [one.id]
    assert [a.id for a in ledger.approvals()] == [two.id, one.id]
    assert ledger.approval_of("send", "console-2").id == two.id
    assert ledger.approval_of("send", "nope") is None
