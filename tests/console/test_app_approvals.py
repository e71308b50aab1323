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
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

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

ADMIN = "boss@example.com"
MAKER = "m@example.com"  # marketing
CHECKER = "f@example.com"  # finance
BOTH = "o@example.com"  # finance and marketing: may approve, but not what they asked for
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "c",
    "client_secret": "s",
    "server_metadata_url": "http://localhost:1/.well-known/openid-configuration",
}


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Path]:
    """A fresh sandbox with a team and an approval threshold of 0.05 USD."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path)
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
    return Ledger(f"sqlite:///{data_dir / 'ledger.db'}")


def member(email: str, page: str = "pages/send.py") -> AppTest:
    """A new browser session signed in as ``email``, on ``page``."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = AUTH
    at.secrets["team"] = {"admins": [ADMIN]}
    at.user = {"is_logged_in": True, "email": email, "iat": 7}
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
    assert "over the threshold of 0.05 USD" in queued and "2 recipient(s) · US 2" in queued
    assert [t.value for t in checker.text] == ["Spring sale: 20% off"]
    decide(checker, approval_id, "approve", "Spring budget")

    assert "Approved and sent" in texts(checker), texts(checker)
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
    mine = frame(maker, "State").iloc[0]
    assert (mine["State"], mine["Decided by"], mine["Reason"]) == (
        "approved", CHECKER, "Spring budget",
    )  # fmt: skip
    assert not [b for b in maker.button if b.key.startswith("approvals_approve_")]  # no queue


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
    assert "Approved — campaign #1 Spring started" in texts(checker), texts(checker)
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
    assert "write why you reject" in texts(checker)
    assert waiting_id(team) == approval_id
    decide(checker, approval_id, "reject", "Wrong list: use the opt-in one")
    assert "Rejected" in texts(checker)

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

    # A send too: its creator reads the reason in Recent sends.
    sender = member(MAKER)
    ask_to_send(sender, "2015550125\n2015550126")
    decide(member(CHECKER, "pages/approvals.py"), waiting_id(team), "reject", "Not this week")
    row = frame(member(MAKER), "Outcome").iloc[0]
    assert row["Outcome"] == f"Not sent: Rejected by {CHECKER}: Not this week"
    assert row["Cost"] == "not charged"
    assert gateway_messages(team) == [] and gateway_balance() == before


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


def test_the_local_operator_is_never_held(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path)
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
