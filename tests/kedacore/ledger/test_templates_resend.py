"""Templates, sender profiles and resending a campaign's failures (Step 10), on both stores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kedacore.api.types import Pricing, SendResult, SentMessage
from kedacore.campaign.resend import AlreadyResent, create_resend, plan_resend
from kedacore.ledger import Ledger, PlannedBatch, StatusUpdate
from kedacore.ledger.audit import AuditFilter
from kedacore.ledger.templates import TemplateError

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PRICING = Pricing("USD", {"US": Decimal("0.05"), "GB": Decimal("0.04")})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Iterator[Ledger]:
    with Ledger(ledger_url(), clock=clock) as led:
        yield led


def actions(ledger: Ledger, *names: str) -> list[tuple[str, str, str]]:
    found = ledger.audit_entries(AuditFilter(actions=names))
    return [(e.action, e.actor, e.target) for e in reversed(found)]


# -- templates -------------------------------------------------------------------------------


def test_templates_are_created_edited_and_deleted_each_audited(ledger: Ledger) -> None:
    tid = ledger.create_template("Welcome", "Hi {name}, welcome!", by="ana@example.com")
    (t,) = ledger.templates()
    assert (t.id, t.name, t.body, t.owner, t.last_used_at) == (
        tid,
        "Welcome",
        "Hi {name}, welcome!",
        "ana@example.com",
        None,
    )
    ledger.update_template(tid, name="Welcome 2", body="Hello {name}", by="ben@example.com")
    assert ledger.template(tid).body == "Hello {name}"
    assert ledger.template(tid).owner == "ana@example.com"  # an edit does not take it over
    with pytest.raises(TemplateError, match="exists already"):
        ledger.create_template("Welcome 2", "x", by="ana@example.com")
    with pytest.raises(TemplateError, match="name"):
        ledger.create_template("  ", "x", by="ana@example.com")
    with pytest.raises(TemplateError, match="text"):
        ledger.create_template("Empty", "   ", by="ana@example.com")
    assert ledger.delete_template(tid, by="ben@example.com")
    assert not ledger.delete_template(tid, by="ben@example.com")  # gone: nothing audited
    assert ledger.templates() == []
    assert actions(ledger, "template_create", "template_edit", "template_delete") == [
        ("template_create", "ana@example.com", f"template {tid}"),
        ("template_edit", "ben@example.com", f"template {tid}"),
        ("template_delete", "ben@example.com", f"template {tid}"),
    ]
    (edit,) = ledger.audit_entries(AuditFilter(actions=["template_edit"]))
    assert edit.before == {"name": "Welcome", "body": "Hi {name}, welcome!"}
    assert edit.after == {"name": "Welcome 2", "body": "Hello {name}"}


def test_a_name_is_taken_whatever_its_case(ledger: Ledger) -> None:
    first = ledger.create_template("Welcome", "Hi {name}", by="a@x.io")
    with pytest.raises(TemplateError, match="'Welcome' exists already"):
        ledger.create_template("welcome", "Hello", by="b@x.io")
    other = ledger.create_template("Reminder", "Hi", by="a@x.io")
    with pytest.raises(TemplateError, match="exists already"):
        ledger.update_template(other, name="WELCOME", body="Hi", by="a@x.io")
    ledger.update_template(first, name="welcome", body="Hi {name}", by="a@x.io")  # its own
    assert sorted(t.name for t in ledger.templates()) == ["Reminder", "welcome"]  # its own
    ledger.create_template("Été", "Bonjour", by="a@x.io")
    with pytest.raises(TemplateError, match="'Été' exists already"):
        ledger.create_template("été", "Salut", by="a@x.io")  # not ASCII either
    ledger.save_sender_profile("Shop", sender="Shop", default_country="US", by="a@x.io")
    with pytest.raises(TemplateError, match="sender profile named 'Shop'"):
        ledger.save_sender_profile("SHOP", sender="Shop", default_country="US", by="a@x.io")


def test_a_template_remembers_when_it_was_last_used(ledger: Ledger, clock: Clock) -> None:
    tid = ledger.create_template("Promo", "Sale today", by="ana@example.com")
    clock.now = T0 + timedelta(hours=3)
    ledger.mark_template_used(tid)
    assert ledger.template(tid).last_used_at == T0 + timedelta(hours=3)
    ledger.mark_template_used(tid + 99)  # deleted meanwhile: nothing happens


# -- sender profiles -------------------------------------------------------------------------


def test_sender_profiles_take_the_gateways_sender_rule_and_an_iso_country(ledger: Ledger) -> None:
    pid = ledger.save_sender_profile("Shop US", sender="Shop", default_country="us", by="a@x.io")
    p = ledger.sender_profile(pid)
    assert (p.sender, p.default_country, p.owner) == ("Shop", "US", "a@x.io")
    for bad in ("Shop Now", "ÉCOLE", "TOOLONGSENDER1", "+1234567890123456"):
        with pytest.raises(TemplateError, match="sender id"):
            ledger.save_sender_profile("Bad", sender=bad, default_country="US", by="a@x.io")
    with pytest.raises(TemplateError, match="two-letter"):
        ledger.save_sender_profile("Bad", sender="Shop", default_country="USA", by="a@x.io")
    default = ledger.save_sender_profile("Default", sender="", default_country=None, by="a@x.io")
    assert ledger.sender_profile(default).sender is None  # the account's default sender
    ledger.save_sender_profile(
        "Shop GB", sender="+447400000001", default_country="GB", by="b@x.io", profile_id=pid
    )
    assert ledger.sender_profile(pid).sender == "+447400000001"
    with pytest.raises(TemplateError, match="exists already"):
        ledger.save_sender_profile("Default", sender="A", default_country=None, by="a@x.io")
    assert ledger.delete_sender_profile(pid, by="b@x.io")
    assert [p.name for p in ledger.sender_profiles()] == ["Default"]
    assert [a for a, _, _ in actions(ledger, "sender_profile_create", "sender_profile_edit",
                                     "sender_profile_delete")] == [
        "sender_profile_create", "sender_profile_create", "sender_profile_edit",
        "sender_profile_delete",
    ]  # fmt: skip


# -- resend ----------------------------------------------------------------------------------


def sent_campaign(ledger: Ledger, fates: dict[str, str], *, texts: dict[str, str]) -> int:
    """A campaign whose messages went out, one task per text, then reached ``fates``."""
    cid = ledger.create_campaign("Spring", template="Hi {name}", sender="Shop")
    ledger.set_campaign_options(cid, {"track_click": False, "callback": True})
    ledger.plan_campaign(
        cid, [PlannedBatch("US", texts[n], (n,), 50_000, "Shop") for n in fates], returned=False
    )
    for i, number in enumerate(fates):
        result = SendResult(
            f"task{cid}-{i}", "ok", Decimal("0.05"), "USD", 1, (SentMessage(f"m{cid}-{i}", number),)
        )
        ledger.record_send(
            result, country="US", sender="Shop", content=texts[number], campaign_id=cid
        )
    ledger.apply_statuses(
        [
            StatusUpdate(f"m{cid}-{i}", "SENT", occurred_at=T0)
            for i, fate in enumerate(fates.values())
            if fate != "FAILED"
        ]
    )
    ledger.apply_statuses(
        [
            StatusUpdate(f"m{cid}-{i}", fate, occurred_at=T0 + timedelta(seconds=1))
            for i, fate in enumerate(fates.values())
        ]
    )
    ledger.set_campaign_status(cid, "done")
    return cid


FATES = {
    "+12065550001": "DELIVERED",
    "+12065550002": "FAILED",
    "+12065550003": "UNDELIVERED",
    "+12065550004": "FAILED",
    "+12065550005": "DELIVERED",
}
TEXTS = {n: f"Hi friend {n[-1]}" for n in FATES}


def test_a_resend_holds_exactly_the_failed_and_undelivered_with_their_texts(
    ledger: Ledger,
) -> None:
    cid = sent_campaign(ledger, FATES, texts=TEXTS)
    ledger.add_optouts(["+12065550004"], by="ana@example.com", reason="asked to stop")
    resend = plan_resend(ledger, cid, PRICING)
    assert (resend.failed, resend.undelivered, resend.opted_out) == (2, 1, ("+12065550004",))
    assert resend.left_out() == ["1 opted out, left out"]
    sent = {(r.recipients, r.content, r.sender) for r in resend.plan.requests}
    assert sent == {
        (("+12065550002",), "Hi friend 2", "Shop"),
        (("+12065550003",), "Hi friend 3", "Shop"),
    }
    assert resend.total == Decimal("0.1")
    new = create_resend(ledger, resend, created_by="ana@example.com")
    campaign = ledger.campaign(new)
    assert (campaign.name, campaign.status, campaign.recipients) == (
        "Spring — resend",
        "planned",
        2,
    )
    assert campaign.estimated_micros == 100_000
    batches = ledger.campaign_batches(new)
    assert sorted((b.recipients, b.content) for b in batches) == [
        (("+12065550002",), "Hi friend 2"),
        (("+12065550003",), "Hi friend 3"),
    ]
    assert ledger.campaign_options(new) == {"track_click": False, "callback": True}
    assert ledger.resend_of(cid) == new
    (entry,) = ledger.audit_entries(AuditFilter(actions=["campaign_resend"]))
    assert (entry.actor, entry.target) == ("ana@example.com", f"campaign {cid}")
    assert entry.after["resend"] == new and entry.after["opted_out_left_out"] == 1


def test_a_campaign_is_resent_once_however_many_ask(ledger: Ledger) -> None:
    cid = sent_campaign(ledger, FATES, texts=TEXTS)
    resend = plan_resend(ledger, cid, PRICING)
    first = create_resend(ledger, resend, created_by="ana@example.com")
    with pytest.raises(AlreadyResent) as caught:
        create_resend(ledger, resend, created_by="ben@example.com")
    assert caught.value.resend_id == first
    assert "already resent as campaign" in str(caught.value)
    assert plan_resend(ledger, cid, PRICING).resent_as == first
    assert len(ledger.audit_entries(AuditFilter(actions=["campaign_resend"]))) == 1
    assert len(ledger.campaigns()) == 2  # the original and one resend, no orphan row


@pytest.mark.parametrize("status", ["paused", "sending", "planned"])
def test_a_campaign_not_finished_is_not_resent(ledger: Ledger, status: str) -> None:
    """It may fail more later, and a campaign is resent only once."""
    cid = sent_campaign(ledger, FATES, texts=TEXTS)
    ledger.set_campaign_status(cid, status)
    resend = plan_resend(ledger, cid, PRICING)
    with pytest.raises(ValueError, match="only a finished campaign"):
        create_resend(ledger, resend, created_by="ana@example.com")
    assert ledger.resend_of(cid) is None and len(ledger.campaigns()) == 1
    assert ledger.audit_entries(AuditFilter(actions=["campaign_resend"])) == []


def test_two_resends_at_the_same_moment_make_one_campaign(
    ledger_url: Callable[..., str],
) -> None:
    url = ledger_url()
    with Ledger(url) as first, Ledger(url) as second:  # two replicas on one database
        cid = sent_campaign(first, FATES, texts=TEXTS)
        plans = [plan_resend(led, cid, PRICING) for led in (first, second)]
        barrier = threading.Barrier(2)
        made: list[int] = []
        refused: list[AlreadyResent] = []

        def go(led: Ledger, plan: object) -> None:
            barrier.wait()
            try:
                made.append(create_resend(led, plan, created_by="x@example.com"))
            except AlreadyResent as exc:
                refused.append(exc)

        threads = [
            threading.Thread(target=go, args=(led, plan))
            for led, plan in zip((first, second), plans, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(made) == 1 and len(refused) == 1
        assert refused[0].resend_id == made[0]
        assert len(first.audit_entries(AuditFilter(actions=["campaign_resend"]))) == 1
        assert [c.id for c in first.campaigns()] == [made[0], cid]


def test_nothing_to_resend_when_everything_was_delivered(ledger: Ledger) -> None:
    cid = sent_campaign(ledger, {"+12065550001": "DELIVERED"}, texts=TEXTS)
    resend = plan_resend(ledger, cid, PRICING)
    assert resend.recipients == 0 and not resend.plan.requests
    with pytest.raises(ValueError, match="no failed"):
        create_resend(ledger, resend, created_by="ana@example.com")
    assert ledger.resend_of(cid) is None
