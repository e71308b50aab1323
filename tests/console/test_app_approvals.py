"""Maker–checker through AppTest, signed in as members of a team, against the sandbox gateway.

A marketing member's send or campaign over the approval threshold waits — nothing sent,
nothing frozen at the gateway — until a finance member approves it with a reason; then it
goes out once and the gateway's balance drops by what it costs. A rejection sends nothing
and its creator reads why; nobody approves their own request; an approval the balance no
longer covers is refused and the request keeps waiting. Each step is in the audit log with
the identity that took it.

Each ``member()`` is a new browser session of that person (``at.user``, with ``[auth]`` in
the secrets), on the same server (the same runtime, ledger and gateway).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.shell import account_changed
from kedacore.ledger import Ledger
from kedacore.ledger.team import APPROVAL_THRESHOLD, AuditFilter
from kedacore.settings import load_settings
from tests.console.test_app import APP, clean_env, shown
from tests.console.test_app_campaigns import GOOD, compose, recipients_csv, wait_for_the_run
from tests.kedacore.test_notify import start_smtp
from tests.support import AUTH_SECRETS, signed_at

ADMIN = "boss@example.com"
MAKER = "m@example.com"  # marketing
CHECKER = "f@example.com"  # finance
BOTH = "o@example.com"  # finance and marketing: may approve, but not what they asked for
AUTH = AUTH_SECRETS


@pytest.fixture
def team(tmp_path: Path, ledger_url: Callable[..., str]) -> Iterator[Path]:
    """A fresh sandbox with a team and an approval threshold of 0.05 USD."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        with book(tmp_path) as led:
            led.add_member(MAKER, ["marketing"], by=ADMIN)
            led.add_member(CHECKER, ["finance"], by=ADMIN)
            led.add_member(BOTH, ["finance", "marketing"], by=ADMIN)
            led.set_team_setting(APPROVAL_THRESHOLD, "0.05", by=CHECKER)
        try:
            yield tmp_path
        finally:
            _runtime.reset()


def book(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def member(email: str, page: str = "pages/send.py", *, smtp: int | None = None) -> AppTest:
    """A new browser session signed in as ``email``, on ``page`` (``smtp``: the port of a mail
    server on loopback, as ``[smtp]``)."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = AUTH
    at.secrets["team"] = {"admins": [ADMIN]}
    if smtp is not None:
        at.secrets["smtp"] = {
            "host": "127.0.0.1",
            "port": smtp,
            "security": "none",
            "from": "console@example.com",
        }
    at.user = {"is_logged_in": True, "email": email, "iat": signed_at(7)}
    at.run()
    assert not at.exception, at.exception
    if page != "pages/send.py":
        at.switch_page(page).run()
        assert not at.exception, at.exception
    assert [t.value for t in at.title][-1] != "You are not a member of this team"
    return at


def client():
    return _runtime.runtime(load_settings(None, os.environ)).client


def gateway_balance() -> Decimal:
    return client().account.balance().balance


def gateway_messages(data_dir: Path) -> list[str]:
    with sqlite3.connect(f"file:{data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        return sorted(r for (r,) in db.execute("SELECT recipient FROM messages"))


def texts(at: AppTest) -> str:
    parts = [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]
    parts += [m.value for m in at.markdown]
    return shown(" ".join(parts)).replace("**", "")  # the words, not their bold


def errors(at: AppTest) -> str:
    return shown(" ".join(e.value for e in at.error)).replace("**", "")


def frame(at: AppTest, column: str) -> pd.DataFrame:
    for found in at.dataframe:
        if column in found.value.columns:
            return found.value
    raise AssertionError(f"no table with a {column!r} column")


def audit(data_dir: Path, *actions: str) -> list[tuple[str, str, str]]:
    """(action, actor, outcome) of the audit log, oldest first."""
    with book(data_dir) as led:
        entries = led.audit_entries(AuditFilter(actions=list(actions)))
    return [(e.action, e.actor, e.outcome) for e in reversed(entries)]


def ask_to_send(at: AppTest, numbers: str, content: str = "Spring sale: 20% off") -> None:
    at.text_area(key="send_numbers").input(numbers).run()
    at.text_area(key="send_content").input(content).run()
    at.button(key="send_submit").click().run()
    assert at.button(key="send_confirm").label == "Confirm and ask for approval"
    at.button(key="send_confirm").click().run()
    assert not at.exception, at.exception


def waiting_id(data_dir: Path) -> int:
    with book(data_dir) as led:
        (item,) = led.approvals(states=["waiting"])
    return item.id


def decide(at: AppTest, approval_id: int, verdict: str, reason: str) -> None:
    at.text_input(key=f"approvals_reason_{approval_id}").input(reason).run()
    at.button(key=f"approvals_{verdict}_{approval_id}").click().run()
    assert not at.exception, at.exception


def under_reason(at: AppTest, approval_id: int, *, above: bool = False) -> str:
    """What is said right under a waiting request's reason box (errors, warnings), inside
    its bordered box (``above``: in that box, above the reason box)."""
    key = f"approvals_reason_{approval_id}"

    def walk(block: Any) -> str | None:
        kids = list(block.children.values())
        for i, kid in enumerate(kids):
            if getattr(kid, "type", None) == "text_input" and kid.key == key:
                part = kids[:i] if above else kids[i + 1 :]
                said = [k.value for k in part if getattr(k, "type", "") in ALERTS]
                return shown(" ".join(said)).replace("**", "")
            if hasattr(kid, "children") and (found := walk(kid)) is not None:
                return found
        return None

    found = walk(at.main)
    assert found is not None, f"no reason box for request {approval_id}"
    return found


ALERTS = ("error", "warning", "info", "success")


def warned(at: AppTest) -> str:
    return " ".join(shown(w.value) for w in at.warning)


def top(at: AppTest) -> str:
    """What the page says above its sections: what the last decision did."""
    said = []
    for kid in at.main.children.values():
        if getattr(kid, "type", None) == "subheader" or hasattr(kid, "children"):
            break
        if getattr(kid, "type", None) in ALERTS:
            said.append(kid.value)
    return shown(" ".join(said)).replace("**", "")


def test_a_send_over_the_threshold_waits_and_goes_out_once_approved(team: Path) -> None:
    maker = member(MAKER)
    before = gateway_balance()
    ask_to_send(maker, "2015550123\n2015550124")  # 2 × 0.05 USD = 0.10 USD > 0.05 USD

    said = texts(maker)
    assert "Waiting for approval — nothing was sent." in said
    assert f"other than you ({CHECKER}, {BOTH})" in said
    with book(team) as led:
        (record,) = led.recent_sends()
    assert record.state == "awaiting" and record.created_by == MAKER
    assert gateway_balance() == before and gateway_messages(team) == []
    row = frame(maker, "Outcome").iloc[0]
    assert row["Outcome"] == "Waiting for approval" and row["Cost"] == "0.10 USD (estimate)"
    assert row["By"] == f"{MAKER} (this session)"

    checker = member(CHECKER, "pages/approvals.py")
    approval_id = waiting_id(team)
    queued = texts(checker)
    assert f"Asked by {MAKER}" in queued and "estimate 0.10 USD" in queued
    assert "over the threshold of 0.05 USD" in queued and "2 recipients · US 2" in queued
    assert "Send of 2 messages to US" in queued
    assert [t.value for t in checker.text] == ["Spring sale: 20% off"]
    decide(checker, approval_id, "approve", "")  # the reason is required: said where it is
    assert under_reason(checker, approval_id) == (
        "Write a reason for approving this send first: it is kept in the audit log."
    )
    assert top(checker) == "" and waiting_id(team) == approval_id
    decide(checker, approval_id, "approve", "Spring budget")

    said = top(checker)
    assert said.startswith("Approved and sent — Send of 2 messages to US by m@example.com at ")
    assert "2 messages, 0.10 USD debited" in said and "console-" not in said, said
    assert f"{MAKER} was not told by e-mail (no mail server is configured)" in said
    with book(team) as led:
        record = led.send_record(record.client_ref)
        decided = led.approval(approval_id)
    assert record.state == "sent" and record.debited == Decimal("0.10")
    assert (decided.state, decided.decided_by, decided.reason) == (
        "approved", CHECKER, "Spring budget",
    )  # fmt: skip
    assert gateway_balance() == before - Decimal("0.10")
    assert gateway_messages(team) == ["+12015550123", "+12015550124"]
    assert audit(team, "send_awaiting", "approve", "send") == [
        ("send_awaiting", MAKER, "done"),
        ("approve", CHECKER, "done"),
        ("send", CHECKER, "done"),
    ]

    again = member(CHECKER, "pages/approvals.py")  # decided: nothing waits any more
    assert not [b for b in again.button if b.key.startswith("approvals_approve_")]
    maker = member(MAKER, "pages/approvals.py")
    mine = texts(maker)  # the decision, who took it and why first
    assert f"Send of 2 messages to US approved Approved by {CHECKER} at " in mine.replace(
        ":green-badge[approved]", "approved"
    )
    assert ": Spring budget" in mine
    assert not [b for b in maker.button if b.key.startswith("approvals_approve_")]  # no queue
    assert not maker.dataframe  # no table cutting the reason off


def test_a_campaign_over_the_threshold_waits_then_runs_to_done_once_approved(
    team: Path,
) -> None:
    maker = member(MAKER, "pages/campaigns.py")
    before = gateway_balance()
    compose(maker, recipients_csv(), "Hi {name}, your code is {code}")  # 5 × 0.05 USD
    maker.button(key="campaigns_submit").click().run()
    assert maker.button(key="campaigns_confirm").label == "Confirm and ask for approval"
    maker.button(key="campaigns_confirm").click().run()
    assert not maker.exception, maker.exception
    with book(team) as led:
        (campaign,) = led.campaigns()
    assert campaign.status == "awaiting" and campaign.created_by == MAKER
    maker.run()
    assert frame(maker, "Campaign")["Status"][0] == "awaiting approval"
    assert "Awaiting approval — asked by m@example.com" in texts(maker)
    assert gateway_messages(team) == [] and gateway_balance() == before

    checker = member(CHECKER, "pages/approvals.py")
    queued = texts(checker)
    assert "Campaign #1 Spring" in queued and "estimate 0.25 USD" in queued
    assert [t.value for t in checker.text] == [
        "Hi Ana, your code is C0\n\n(template: Hi {name}, your code is {code})"
    ]
    decide(checker, waiting_id(team), "approve", "Planned for spring")
    assert "Approved — Campaign #1 Spring started" in top(checker), texts(checker)
    wait_for_the_run(campaign.id)

    with book(team) as led:
        assert led.campaign(campaign.id).status == "done"
    assert gateway_messages(team) == sorted(GOOD)  # each recipient once
    assert gateway_balance() == before - Decimal("0.25")
    assert audit(team, "campaign_create", "campaign_awaiting", "approve", "campaign_start") == [
        ("campaign_create", MAKER, "done"),
        ("campaign_awaiting", MAKER, "done"),
        ("approve", CHECKER, "done"),
        ("campaign_start", CHECKER, "done"),
    ]
    maker = member(MAKER, "pages/campaigns.py")
    maker.session_state["campaigns_pick"] = campaign.id
    maker.session_state["campaigns_tab"] = "Campaigns"
    maker.run()
    assert f"Approved by {CHECKER}" in texts(maker) and "Planned for spring" in texts(maker)


def test_a_rejection_sends_nothing_and_its_creator_reads_why(team: Path) -> None:
    maker = member(MAKER, "pages/campaigns.py")
    before = gateway_balance()
    compose(maker, recipients_csv(), "Hi {name}")
    maker.button(key="campaigns_submit").click().run()
    maker.button(key="campaigns_confirm").click().run()
    checker = member(CHECKER, "pages/approvals.py")
    approval_id = waiting_id(team)
    decide(checker, approval_id, "reject", "")  # the reason is required
    assert under_reason(checker, approval_id) == (
        "Write a reason for rejecting this campaign first: it is kept in the audit log, and "
        f"{MAKER} reads it."
    )
    assert top(checker) == "" and waiting_id(team) == approval_id
    decide(checker, approval_id, "reject", "Wrong list: use the opt-in one")
    assert top(checker).startswith("Rejected — Campaign #1 Spring: nothing is sent.")

    with book(team) as led:
        (campaign,) = led.campaigns()
    assert campaign.status == "rejected"
    assert gateway_messages(team) == [] and gateway_balance() == before
    maker = member(MAKER, "pages/campaigns.py")
    maker.session_state["campaigns_pick"] = campaign.id
    maker.session_state["campaigns_tab"] = "Campaigns"
    maker.run()
    assert frame(maker, "Campaign")["Status"][0] == "rejected"
    said = errors(maker)
    assert f"Rejected by {CHECKER}" in said and "Wrong list: use the opt-in one" in said
    assert not [b for b in maker.button if b.key == "campaigns_resume"]
    assert audit(team, "reject") == [("reject", CHECKER, "done")]

    # A send too: its creator reads the whole reason in Recent sends, and on Approvals.
    sender = member(MAKER)
    ask_to_send(sender, "2015550125\n2015550126")
    why = (
        "Not this week: promo sends to more than one person go through a campaign with the "
        "opt-out list"
    )
    decide(member(CHECKER, "pages/approvals.py"), waiting_id(team), "reject", why)
    row = frame(member(MAKER), "Outcome").iloc[0]
    assert (row["Outcome"], row["Why"]) == (f"Rejected by {CHECKER}", why)
    assert list(frame(member(MAKER), "Outcome").columns[:3]) == ["When", "Outcome", "Why"]
    assert row["Cost"] == "not charged"
    assert gateway_messages(team) == [] and gateway_balance() == before
    mine = texts(member(MAKER, "pages/approvals.py"))
    assert f"Rejected by {CHECKER} at " in mine and f": {why}" in mine
    assert f"Rejected by {CHECKER} at " in mine and ": Wrong list: use the opt-in one" in mine


def test_nobody_approves_their_own_request(team: Path) -> None:
    both = member(BOTH)
    before = gateway_balance()
    ask_to_send(both, "2015550127\n2015550128")
    approval_id = waiting_id(team)

    at = member(BOTH, "pages/approvals.py")
    assert at.button(key=f"approvals_approve_{approval_id}").disabled  # offered to nobody
    assert "You asked for this" in texts(at)
    assert at.button(key=f"approvals_reject_{approval_id}").disabled
    # Forced all the same, as a browser bypassing the disabled widgets could: Streamlit's
    # server discards a disabled widget's value, and nothing is decided. (The ledger refuses
    # and audits it too: tests/kedacore/ledger/test_approvals.py.)
    reason = at.text_input(key=f"approvals_reason_{approval_id}")
    button = at.button(key=f"approvals_approve_{approval_id}")
    reason.proto.disabled = button.proto.disabled = False
    reason.input("I am finance too")
    button.click()
    at.run()
    assert not at.exception, at.exception
    assert waiting_id(team) == approval_id and gateway_balance() == before
    assert audit(team, "approve", "send") == []

    decide(member(ADMIN, "pages/approvals.py"), approval_id, "approve", "Fine by me")
    with book(team) as led:
        assert led.approval(approval_id).decided_by == ADMIN
    assert gateway_balance() == before - Decimal("0.10")


def test_an_approval_the_balance_no_longer_covers_is_refused_and_keeps_waiting(
    team: Path,
) -> None:
    maker = member(MAKER)
    ask_to_send(maker, "2015550129\n2015550130")
    approval_id = waiting_id(team)
    # Meanwhile the balance is spent: 1,000 messages of 2 segments at 0.05 USD = 100 USD.
    numbers = [f"+1206555{i:04d}" for i in range(1000)]
    client().sms.send("US", numbers, "x" * 161)
    account_changed()
    assert gateway_balance() == Decimal(0)

    checker = member(CHECKER, "pages/approvals.py")
    decide(checker, approval_id, "approve", "Budgeted")
    said = errors(checker)
    assert "Not approved yet" in said and "keeps waiting, nothing was sent" in said
    assert "The balance of 0.00 USD no longer covers the 0.10 USD it costs now" in said
    assert any(link.label == "Top up on Settings" for link in checker.get("page_link"))
    assert waiting_id(team) == approval_id
    with book(team) as led:
        (entry,) = led.audit_entries(AuditFilter(actions=["approve"]))
        (record,) = [r for r in led.recent_sends() if r.client_ref.startswith("console-")]
    assert (entry.actor, entry.outcome) == (CHECKER, "refused")
    assert "no longer covers" in entry.detail and entry.after["estimate"] == "0.10"
    assert record.state == "awaiting"
    assert "+12015550129" not in gateway_messages(team)


def test_the_local_operator_is_never_held(tmp_path: Path, ledger_url: Callable[..., str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        try:
            with book(tmp_path) as led:
                led.set_team_setting(APPROVAL_THRESHOLD, "0.05", by="local operator")
            at = AppTest.from_file(APP, default_timeout=30).run()
            at.text_area(key="send_numbers").input("2015550123\n2015550124").run()
            at.text_area(key="send_content").input("Hello").run()
            assert "nobody signs in to this console" in texts(at)
            at.button(key="send_submit").click().run()
            assert at.button(key="send_confirm").label == "Confirm and send"
            at.button(key="send_confirm").click().run()
            assert "Sent — task" in texts(at)
            with book(tmp_path) as led:
                assert led.approvals() == []
                (record,) = led.recent_sends()
            assert record.state == "sent" and record.created_by == "local operator"
            assert audit(tmp_path, "send") == [("send", "local operator", "done")]
            at.switch_page("pages/approvals.py").run()
            assert not at.exception
            assert "Nobody signs in to this console" in texts(at)
        finally:
            _runtime.reset()


# -- separation of duties, the cost the approver saw, a requester who left -----------------


def save_threshold(at: AppTest, threshold: str) -> None:
    at.text_input(key="limits_approval_threshold").input(threshold)
    at.button(key="limits_controls_save").click().run()
    assert not at.exception, at.exception


def threshold(data_dir: Path) -> str | None:
    with book(data_dir) as led:
        return led.team_setting(APPROVAL_THRESHOLD)


def test_who_also_sends_cannot_raise_the_threshold_or_turn_it_off(team: Path) -> None:
    both = member(BOTH, "pages/limits.py")  # finance and marketing
    for typed in ("1000", ""):  # raised; turned off
        save_threshold(both, typed)
        said = errors(both)
        assert "Nothing was changed" in said, said
        assert "must be done by a finance member who does not send" in said
        assert threshold(team) == "0.05"
    # So the maker's own send still waits for someone else.
    both.switch_page("pages/send.py").run()
    ask_to_send(both, "2015550140\n2015550141\n2015550142")
    assert waiting_id(team)

    admin = member(ADMIN, "pages/limits.py")  # an admin may send too
    save_threshold(admin, "0.10")
    assert "must be done by a finance member who does not send" in errors(admin)
    assert threshold(team) == "0.05"

    # Stricter is anyone's to make: lowered by who sends, then raised by finance alone.
    both = member(BOTH, "pages/limits.py")
    save_threshold(both, "0.01")
    assert not both.error and threshold(team) == "0.01"
    checker = member(CHECKER, "pages/limits.py")
    save_threshold(checker, "1000")
    assert not checker.error and threshold(team) == "1000"
    save_threshold(checker, "")
    assert threshold(team) is None
    both = member(BOTH, "pages/limits.py")
    save_threshold(both, "0.05")  # set where there was none
    assert not both.error and threshold(team) == "0.05"

    with book(team) as led:
        log = [
            (e.actor, e.outcome, e.before, e.after)
            for e in reversed(led.audit_entries(AuditFilter(actions=["setting_change"])))
        ]
    key = APPROVAL_THRESHOLD
    assert log == [
        (CHECKER, "done", {key: None}, {key: "0.05"}),  # the fixture
        (BOTH, "refused", {key: "0.05"}, {key: "1000"}),
        (BOTH, "refused", {key: "0.05"}, {key: None}),
        (ADMIN, "refused", {key: "0.05"}, {key: "0.1"}),
        (BOTH, "done", {key: "0.05"}, {key: "0.01"}),
        (CHECKER, "done", {key: "0.01"}, {key: "1000"}),
        (CHECKER, "done", {key: "1000"}, {key: None}),
        (BOTH, "done", {key: None}, {key: "0.05"}),
    ]


def gateway_prices() -> dict[str, int]:
    """The sandbox gateway's price table (micro-units per segment), as it charges."""
    gateway = _runtime.runtime(load_settings(None, os.environ)).gateway
    assert gateway is not None and gateway._server is not None
    return gateway._server.config.app.state.gateway.prices._micros


def test_an_approval_never_sends_at_a_higher_cost_than_the_approver_saw(
    team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask_to_send(member(MAKER), "2015550150\n2015550151")  # 2 × 0.05 USD
    approval_id = waiting_id(team)
    checker = member(CHECKER, "pages/approvals.py")
    assert "estimate 0.10 USD" in texts(checker)
    before = gateway_balance()
    monkeypatch.setitem(gateway_prices(), "US", 70_000)  # the price rises to 0.07 USD

    decide(checker, approval_id, "approve", "Spring budget")
    said = texts(checker)
    assert "Not approved yet — it costs more now: 0.14 USD" in said, said
    assert "not the 0.10 USD you were shown. Nothing was sent" in said
    assert "estimate 0.14 USD" in said  # the request shows what it costs now
    assert gateway_balance() == before and gateway_messages(team) == []
    with book(team) as led:
        item = led.approval(approval_id)
        (refused,) = led.audit_entries(AuditFilter(actions=["approve"]))
    assert item.waiting and item.estimate == Decimal("0.14")
    assert (refused.actor, refused.outcome) == (CHECKER, "refused")
    assert (refused.before["estimate"], refused.after["estimate"]) == ("0.1", "0.14")

    decide(checker, approval_id, "approve", "Spring budget, at 0.14")  # knowingly
    assert "Approved and sent" in texts(checker), texts(checker)
    assert gateway_balance() == before - Decimal("0.14")
    assert gateway_messages(team) == ["+12015550150", "+12015550151"]
    assert audit(team, "approve", "send") == [
        ("approve", CHECKER, "refused"),
        ("approve", CHECKER, "done"),
        ("send", CHECKER, "done"),
    ]


def test_a_request_of_a_member_who_left_cannot_be_approved_only_rejected(team: Path) -> None:
    ask_to_send(member(MAKER), "2015550160\n2015550161")
    approval_id = waiting_id(team)
    with book(team) as led:
        led.remove_member(MAKER, by=ADMIN, reason="left the company")
    before = gateway_balance()

    checker = member(CHECKER, "pages/approvals.py")
    assert f"{MAKER}, who asked for it, is no longer a member of the team" in texts(checker)
    decide(checker, approval_id, "approve", "Budgeted")
    said = errors(checker)
    assert "Not approved" in said and "Reject it instead" in said, said
    assert waiting_id(team) == approval_id
    assert gateway_balance() == before and gateway_messages(team) == []
    assert audit(team, "approve") == [("approve", CHECKER, "refused")]

    decide(checker, approval_id, "reject", "The requester left")
    with book(team) as led:
        assert led.approval(approval_id).state == "rejected"
        (record,) = led.recent_sends()
    assert record.state == "rejected" and gateway_messages(team) == []


# -- the requester told; nobody left to approve; singular and plural -----------------------


def test_the_requester_is_mailed_each_decision_and_a_failed_mail_never_undoes_it(
    team: Path,
) -> None:
    server = start_smtp()
    try:
        ask_to_send(member(MAKER), "2015550170\n2015550171")
        approval_id = waiting_id(team)
        checker = member(CHECKER, "pages/approvals.py", smtp=server.port)
        decide(checker, approval_id, "approve", "Spring budget")
        said = top(checker)
        assert "Approved and sent" in said and f"{MAKER} was told by e-mail." in said, said
        (mail,) = server.mails
        assert mail.to == [MAKER]
        assert mail.subject.strip().startswith(
            f"Approved by {CHECKER}: Send of 2 messages to US by {MAKER} at "
        )
        assert f"{CHECKER} approved your request at " in mail.body
        assert "Reason: Spring budget" in mail.body
        assert "Estimate: 0.10 USD, over the approval threshold of 0.05 USD." in mail.body
        assert "http://localhost:8501/approvals" in mail.body  # [auth] redirect_uri's origin
        assert "console-" not in mail.subject

        ask_to_send(member(MAKER), "2015550172\n2015550173")
        checker.run()
        decide(checker, waiting_id(team), "reject", "Not this week")
        assert f"{MAKER} was told by e-mail." in top(checker)
        rejected = server.mails[1]
        assert rejected.subject.strip().startswith(
            f"Rejected by {CHECKER}: Send of 2 messages to US"
        )
        assert "Reason: Not this week" in rejected.body
        assert "Nothing was sent and nothing was charged." in rejected.body
    finally:
        server.controller.stop()

    # The mail server is gone: the decision stands, the page says the requester was not told.
    ask_to_send(member(MAKER), "2015550174\n2015550175")
    approval_id = waiting_id(team)
    checker = member(CHECKER, "pages/approvals.py", smtp=server.port)
    decide(checker, approval_id, "reject", "Too late for this one")
    said = top(checker)
    assert said.startswith("Rejected — Send of 2 messages to US"), said
    assert f"{MAKER} could not be told by e-mail (could not connect to 127.0.0.1:" in said
    assert "tell them yourself" in said
    with book(team) as led:
        assert led.approval(approval_id).state == "rejected"
    assert len(server.mails) == 2
    assert audit(team, "notification") == [
        ("notification", "console", "done"),
        ("notification", "console", "done"),
        ("notification", "console", "failed"),
    ]


def test_a_request_nobody_can_approve_says_so(team: Path) -> None:
    ask_to_send(member(BOTH), "2015550180\n2015550181")  # BOTH is finance and marketing
    ask_to_send(member(MAKER), "2015550182\n2015550183")
    with book(team) as led:  # finance is taken from the only other approver
        led.set_member_roles(CHECKER, ["marketing"], by=ADMIN)  # (the admin never signed in)
        mine, theirs = sorted(led.approvals(states=["waiting"]), key=lambda a: a.id)
    nobody = (
        "Nobody can approve this now: no member other than you may approve requests — ask an "
        "admin to give someone the finance role."
    )

    both = member(BOTH, "pages/approvals.py")
    assert under_reason(both, mine.id, above=True) == nobody  # on its card in the queue
    assert warned(both).count(nobody) == 2  # and in My requests
    assert f"Asked by {MAKER}" in texts(both)  # the maker's request: BOTH can approve it
    assert not both.button(key=f"approvals_approve_{theirs.id}").disabled
    assert nobody not in under_reason(both, theirs.id, above=True)

    maker = member(MAKER, "pages/approvals.py")
    assert nobody not in texts(maker)  # BOTH may approve it
    assert f"Waits for a finance or admin member other than you ({BOTH})" in texts(maker)

    with book(team) as led:
        led.set_member_roles(BOTH, ["marketing"], by=ADMIN)
    maker = member(MAKER, "pages/approvals.py")
    assert nobody in warned(maker)

    member(ADMIN, "pages/approvals.py")  # the admin signs in: a member who may approve
    both = member(BOTH, "pages/approvals.py")
    assert "Nobody can approve" not in texts(both)
    assert f"other than you ({ADMIN})" in texts(both)
    assert mine.requested_by == BOTH


def test_one_recipient_is_worded_in_the_singular(team: Path) -> None:
    maker = member(MAKER, "pages/campaigns.py")  # 1 × 0.05 USD: at the threshold, it goes
    compose(maker, b"phone,name,code\n+12062000001,Ana,C0\n", "Hi {name}")
    maker.button(key="campaigns_submit").click().run()
    assert maker.button(key="campaigns_confirm").label != "Confirm and ask for approval"
    maker.button(key="campaigns_confirm").click().run()
    assert not maker.exception, maker.exception
    with book(team) as led:
        (campaign,) = led.campaigns()
    wait_for_the_run(campaign.id)
    maker = member(MAKER, "pages/campaigns.py")
    maker.session_state["campaigns_pick"] = campaign.id
    maker.session_state["campaigns_tab"] = "Campaigns"
    maker.run()
    said = " ".join(s.value for s in maker.success)
    assert "The 1 recipient was sent; 0.05 USD" in said, said
    assert "All 1 recipients" not in said and "recipient(s)" not in texts(maker)


LINKS = " ".join(f"http://a.co/{i}" for i in range(8))  # 1 segment as written, 2 shortened


def test_a_tracked_campaign_is_held_and_rechecked_at_what_its_short_links_cost(
    team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trackClick KedaSMS bills each text with its links replaced by short links: that
    cost — not the text as written — is compared with the threshold, kept as the estimate
    the approver sees, re-checked on approval and charged, to the micro-unit."""
    with book(team) as led:
        led.set_team_setting(APPROVAL_THRESHOLD, "0.30", by=CHECKER)
    maker = member(MAKER, "pages/campaigns.py")
    before = gateway_balance()
    compose(maker, recipients_csv(), "Hi {name} " + LINKS)  # 5 × 0.05 USD as written
    maker.checkbox(key="campaigns_track").check().run()
    assert "counted with short links, as KedaSMS bills them: 0.50 USD (0.25 USD" in texts(maker)
    maker.button(key="campaigns_submit").click().run()
    assert "Total cost: 0.50 USD" in texts(maker)
    assert maker.button(key="campaigns_confirm").label == "Confirm and ask for approval"
    maker.button(key="campaigns_confirm").click().run()
    assert not maker.exception, maker.exception
    with book(team) as led:
        (campaign,) = led.campaigns()
        (item,) = led.approvals(states=["waiting"])
    assert campaign.status == "awaiting" and campaign.estimated_micros == 500_000
    assert item.estimate_micros == 500_000
    assert gateway_messages(team) == [] and gateway_balance() == before

    checker = member(CHECKER, "pages/approvals.py")
    assert "estimate 0.50 USD" in texts(checker)
    monkeypatch.setitem(gateway_prices(), "US", 60_000)  # 0.30 USD as written, 0.60 tracked
    decide(checker, item.id, "approve", "Spring links")
    said = texts(checker)
    assert "it costs more now: 0.60 USD with today's prices, not the 0.50 USD" in said, said
    assert gateway_messages(team) == [] and gateway_balance() == before

    decide(checker, item.id, "approve", "Spring links, at 0.60")
    assert "Approved — Campaign #1 Spring started" in top(checker), texts(checker)
    wait_for_the_run(campaign.id)
    with book(team) as led:
        seen = led.approval(item.id)
        assert led.campaign(campaign.id).status == "done"
    assert seen.state == "approved" and seen.estimate_micros == 600_000
    assert gateway_messages(team) == sorted(GOOD)
    assert before - gateway_balance() == seen.estimate == Decimal("0.60")


def test_a_tracked_send_is_held_at_what_its_short_links_cost(team: Path) -> None:
    with book(team) as led:
        led.set_team_setting(APPROVAL_THRESHOLD, "0.30", by=CHECKER)
    maker = member(MAKER)
    before = gateway_balance()
    maker.checkbox(key="send_track").check().run()
    numbers = "2015550150\n2015550151\n2015550152\n2015550153"  # 0.20 USD as written
    ask_to_send(maker, numbers, "Spring sale " + LINKS)
    with book(team) as led:
        (item,) = led.approvals(states=["waiting"])
    assert item.estimate_micros == 400_000  # 4 × 2 segments × 0.05 USD
    checker = member(CHECKER, "pages/approvals.py")
    assert "estimate 0.40 USD" in texts(checker)
    decide(checker, item.id, "approve", "Spring links")
    assert "4 messages, 0.40 USD debited" in top(checker), texts(checker)
    assert before - gateway_balance() == Decimal("0.40")
