"""Opt-outs in the console (AppTest, sandbox gateway, both stores): the Send page leaves
opted-out numbers out and says how many; "Transactional" is offered only to those allowed,
re-checked at the click and audited; the frequency guard flags and leaves out; the Opt-outs
page adds (by hand, nothing half-imported), refuses removal to marketing and audits it;
Status shows a number's opt-out state."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console import access
from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger
from kedacore.ledger.audit import AuditFilter
from kedacore.team import Actor
from tests.console.test_app import APP, shown
from tests.support import AUTH_SECRETS, signed_at

A, B, C = "+12015550101", "+12015550102", "+12015550103"
BOSS = "boss@example.com"


def book(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def page(path: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def signed_in(email: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = dict(AUTH_SECRETS)
    at.secrets["team"] = {"admins": [BOSS]}
    at.user = {"is_logged_in": True, "email": email, "iat": signed_at(7)}
    return at.run()


def everything(at: AppTest) -> str:
    parts = [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]
    return shown(" ".join([*parts, *(m.value for m in at.markdown)]))


def fill(at: AppTest, numbers: list[str]) -> AppTest:
    at.text_area(key="send_numbers").input("\n".join(numbers)).run()
    at.text_area(key="send_content").input("Your order shipped").run()
    return at


def sent_to(data_dir: Path) -> set[str]:
    with book(data_dir) as led:
        return {r for s in led.recent_sends(limit=10) if s.task_id for r in s.recipients}


def test_the_send_page_leaves_opted_out_numbers_out_and_says_how_many(data_dir: Path) -> None:
    at = page("pages/send.py")
    with book(data_dir) as led:
        led.add_optouts([B], by="mia@example.com", reason="STOP")
    fill(at, [A, B, C])
    assert "1 opted out, left out" in everything(at)
    assert next(m.value for m in at.metric if m.label == "Recipients") == "2"
    at.button(key="send_submit").click().run()
    at.button(key="send_confirm").click().run()
    assert not at.exception, at.exception[0].stack_trace if at.exception else None
    assert sent_to(data_dir) == {A, C}


def test_a_number_opted_out_after_the_form_is_not_sent(data_dir: Path) -> None:
    at = fill(page("pages/send.py"), [A, B])
    at.button(key="send_submit").click().run()
    with book(data_dir) as led:
        led.add_optouts([A], by="mia@example.com", reason="STOP")
    at.button(key="send_confirm").click().run()
    assert "1 number opted out since the form was drawn" in everything(at)
    assert sent_to(data_dir) == set()


def test_transactional_includes_them_audited_and_is_rechecked_at_the_click(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with book(data_dir) as led:
        led.add_optouts([B], by="mia@example.com", reason="STOP")
    at = fill(page("pages/send.py"), [A, B])  # the local operator: an admin
    at.checkbox(key="send_transactional").check().run()
    assert next(m.value for m in at.metric if m.label == "Recipients") == "2"
    at.button(key="send_submit").click().run()
    at.button(key="send_confirm").click().run()
    assert not at.exception, at.exception
    assert sent_to(data_dir) == {A, B}
    with book(data_dir) as led:
        (entry,) = led.audit_entries(AuditFilter(actions=["send_transactional"]))
    assert entry.after == {"opted_out_included": 1, "recipients": 2}

    # The role gone between the form and the click: refused, audited, nothing sent.
    real = access.who

    def who_now(ledger: Ledger) -> Actor | None:
        actor = real(ledger)
        return actor and replace(actor, roles=frozenset({"marketing"}))

    at = fill(page("pages/send.py"), [B, C])
    at.checkbox(key="send_transactional").check().run()
    at.button(key="send_submit").click().run()
    monkeypatch.setattr(access, "who", who_now)
    at.button(key="send_confirm").click().run()
    assert C not in sent_to(data_dir)
    with book(data_dir) as led:
        refused = led.audit_entries(AuditFilter(outcomes=["refused"]))
    assert [e.detail for e in refused] == ["send to opted-out numbers (needs transactional)"]


def test_marketing_is_not_offered_transactional(data_dir: Path) -> None:
    with book(data_dir) as led:
        led.ensure_admins([BOSS])
        led.add_member("mkt@example.com", ["marketing"], by=BOSS)
        led.add_optouts([B], by="mkt@example.com", reason="STOP")
    at = fill(signed_in("mkt@example.com"), [A, B])
    assert not at.exception, at.exception
    assert "1 opted out, left out" in everything(at)
    assert not [c for c in at.checkbox if c.key == "send_transactional"]


def test_the_frequency_guard_flags_and_leaves_out(data_dir: Path) -> None:
    at = page("pages/send.py")
    with book(data_dir) as led:
        result = SendResult("T9", "ok", Decimal("0.05"), "USD", 1, (SentMessage("m9", A),))
        led.record_send(
            result,
            country="US",
            sender=None,
            content="x",
            created_at=led.now() - timedelta(hours=1),
        )
    fill(at, [A, B])
    assert "Frequency guard: 1 recipient already messaged in the last 24 hours" in everything(at)
    at.checkbox(key="send_leave_recent").check().run()
    assert next(m.value for m in at.metric if m.label == "Recipients") == "1"
    at.button(key="send_submit").click().run()
    assert "1 messaged recently, left out." in everything(at)  # the confirmation says it too
    at.button(key="send_confirm").click().run()
    assert not at.exception, at.exception
    assert sent_to(data_dir) == {B}


def test_the_opt_outs_page_adds_lists_and_refuses_removal_to_marketing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with book(data_dir) as led:
        led.ensure_admins([BOSS])
        led.add_member("mkt@example.com", ["marketing"], by=BOSS)
        led.add_member("fin@example.com", ["finance"], by=BOSS)
    at = page("pages/optouts.py", signed_in("mkt@example.com"))
    at.text_area(key="optouts_numbers").input(f"{A}\nnot a number")
    at.text_input(key="optouts_reason").input("Replied STOP")
    submit = next(b for b in at.button if "Add to the opt-out list" in b.label)
    submit.click().run()
    assert "Nothing was added" in everything(at) and "line 2" in everything(at)
    at.text_area(key="optouts_numbers").input(f"{A}\n{B}")
    at.text_input(key="optouts_reason").input("Replied STOP")
    next(b for b in at.button if "Add to the opt-out list" in b.label).click().run()
    assert "2 numbers opted out." in everything(at)
    assert "Only finance and admin members take a number off the list." in everything(at)
    with book(data_dir) as led:
        assert led.suppressed([A, B, C]) == {A, B}
        assert led.audit_entries(AuditFilter(actions=["optout_add"]))[0].actor == "mkt@example.com"

    # finance removes with a reason; the same click by someone who lost the role is refused
    at = page("pages/optouts.py", signed_in("fin@example.com"))
    at.selectbox(key="optouts_remove_phone").select(A)
    at.text_input(key="optouts_remove_reason").input("opted in again")
    next(b for b in at.button if "Take off" in b.label).click().run()
    assert f"{A} taken off the opt-out list." in everything(at)
    real = access.who  # the role gone between the view and the click (as test_app_team)

    def who_now(ledger: Ledger) -> Actor | None:
        actor = real(ledger)
        return actor and replace(actor, roles=frozenset({"marketing"}))

    monkeypatch.setattr(access, "who", who_now)
    at.selectbox(key="optouts_remove_phone").select(B)
    at.text_input(key="optouts_remove_reason").input("asked")
    next(b for b in at.button if "Take off" in b.label).click().run()
    with book(data_dir) as led:
        assert led.suppressed([A, B]) == {B}
        refused = led.audit_entries(AuditFilter(actors=["fin@example.com"], outcomes=["refused"]))
        assert refused and refused[0].target == f"opt-out {B}"


def test_status_shows_a_numbers_opt_out_state(data_dir: Path) -> None:
    with book(data_dir) as led:
        led.add_optouts([A], by="mia@example.com", reason="Replied STOP")
    at = page("pages/status.py")
    at.text_input(key="status_query").input(A)
    at.button(key="status_lookup").click().run()
    assert not at.exception, at.exception
    said = " ".join(shown(e.value) for e in at.error)
    assert "Opted out" in said and "mia@example.com" in said and "Replied STOP" in said


def test_new_campaign_leaves_opted_out_out_says_it_and_sends_none_of_them(
    data_dir: Path,
) -> None:
    from tests.console.test_app_campaigns import (
        GOOD,
        compose,
        gateway_recipients,
        recipients_csv,
        runtime,
        wait_for_the_run,
    )

    with book(data_dir) as led:
        led.add_optouts(GOOD[1:3], by="mia@example.com", reason="STOP")
    at = page("pages/campaigns.py")
    compose(at, recipients_csv(), "Hi {name}")
    assert "2 opted out, left out" in everything(at)
    assert next(m.value for m in at.metric if m.label == "Recipients") == "3"
    at.button(key="campaigns_submit").click().run()
    assert "2 opted out, left out." in everything(at)
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    (campaign,) = runtime().ledger.campaigns()
    wait_for_the_run(campaign.id)
    assert gateway_recipients(data_dir) == [GOOD[0], *GOOD[3:]]
    (created,) = runtime().ledger.audit_entries(AuditFilter(actions=["campaign_create"]))
    assert created.after["opted_out_left_out"] == 2 and created.after["recipients"] == 3
    at.run()  # the campaign's own view says it too
    assert "Left out: 2 opted out." in everything(at)


def test_an_import_with_an_unreadable_row_adds_nothing(data_dir: Path) -> None:
    """A row the reader cannot read (more fields than the header) is named, not dropped:
    an opt-out file is all or nothing."""
    at = page("pages/optouts.py")
    at.text_input(key="optouts_file_reason").input("Replied STOP")
    data = f"phone\n{A}\n{B},extra\n{C}\n".encode()
    at.file_uploader(key="optouts_file").upload("stop.csv", data, "text/csv").run()
    said = everything(at)
    assert "Nothing can be imported" in said and "row 3" in said, said
    assert not [b for b in at.button if b.key == "optouts_import"]
    with book(data_dir) as led:
        assert led.suppressed([A, B, C]) == set()
    # corrected, the whole file goes in
    data = f"phone\n{A}\n{B}\n{C}\n".encode()
    at.file_uploader(key="optouts_file").upload("stop.csv", data, "text/csv").run()
    next(b for b in at.button if b.key == "optouts_import").click().run()
    assert "3 numbers opted out." in everything(at)
    with book(data_dir) as led:
        assert led.suppressed([A, B, C]) == {A, B, C}
