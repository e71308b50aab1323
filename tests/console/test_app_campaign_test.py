"""New campaign → Send a test, through AppTest with the sandbox gateway.

The first rendered rows go to the member's own numbers through the Send page's money-safe
path (recorded first with a clientRef, sent once, audited ``campaign_test``); no campaign is
created; the ledger and Spend mark them as tests. A number that is not one is refused with a
sentence and an opted-out own number is left out, nothing sent.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from streamlit.testing.v1 import AppTest

from console.shell import account_changed
from kedacore.ledger import Ledger
from kedacore.ledger.audit import AuditFilter
from tests.console.test_app import balance, shown, start
from tests.console.test_app_campaigns import PAGE, campaign_ids, compose, recipients_csv, runtime

OWN = "+12062009999"
TEMPLATE = "Hi {name}, your code is {code}"


def gateway_messages(data_dir: Path) -> list[tuple[str, str]]:
    """Every message the sandbox gateway holds: (recipient, text)."""
    with sqlite3.connect(f"file:{data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        return sorted(db.execute("SELECT recipient, content FROM messages"))


def everything(at: AppTest) -> str:
    parts = [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]
    return shown(" ".join([*parts, *(m.value for m in at.markdown)]))


def composed() -> AppTest:
    at = start(PAGE)
    compose(at, recipients_csv(), TEMPLATE)
    return at


def test_a_test_goes_to_the_own_number_once_marked_and_in_spend(data_dir: Path) -> None:
    at = composed()
    before = balance(at)
    at.text_input(key="campaigns_test_numbers").input(OWN).run()
    at.selectbox(key="campaigns_test_rows").set_value(2).run()
    assert "2 test messages, about 0.10 USD" in everything(at)
    assert gateway_messages(data_dir) == []

    at.button(key="campaigns_test_send").click().run()
    assert not at.exception, at.exception
    assert "Test sent" in everything(at)
    at.run()  # a rerun sends nothing again
    at.button(key="campaigns_test_send").click().run()  # nor a second click of the same test
    assert "this test was sent already" in everything(at)
    assert gateway_messages(data_dir) == [
        (OWN, "Hi Ana, your code is C0"),
        (OWN, "Hi Ben, your code is C1"),
    ]
    assert campaign_ids() == []  # a test creates no campaign
    assert balance(at) == before - Decimal("0.10")  # charged once

    with Ledger(data_dir=data_dir) as led:
        tests = [r for r in led.recent_sends() if r.test]
        assert sorted(r.content for r in tests) == [
            "Hi Ana, your code is C0",
            "Hi Ben, your code is C1",
        ]
        assert {r.state for r in tests} == {"sent"} and all(r.recipients == (OWN,) for r in tests)
        audited = led.audit_entries(AuditFilter(actions=["campaign_test"]))
        assert len(audited) == 2 and {e.outcome for e in audited} == {"done"}
    # The numbers typed are kept for the session.
    assert at.session_state["campaigns_test_saved"] == OWN

    at.switch_page("pages/spend.py").run()
    assert not at.exception, at.exception
    assert "Of which campaign tests" in everything(at)
    assert "2 messages" in everything(at)


def test_a_number_that_is_not_one_is_refused_and_nothing_is_sent(data_dir: Path) -> None:
    at = composed()
    at.text_input(key="campaigns_test_numbers").input("12345").run()
    assert "12345 is not a phone number" in everything(at)
    assert at.button(key="campaigns_test_send").disabled
    at.text_input(key="campaigns_test_numbers").input(", ".join([OWN] * 6)).run()
    assert "at most 5 numbers" in everything(at)
    assert at.button(key="campaigns_test_send").disabled
    assert gateway_messages(data_dir) == []


def test_an_opted_out_own_number_is_left_out(data_dir: Path) -> None:
    at = composed()
    with Ledger(data_dir=data_dir) as led:
        led.add_optouts([OWN], by="mia@example.com", reason="STOP")
    at.text_input(key="campaigns_test_numbers").input(f"{OWN}, +12062008888").run()
    assert "1 opted-out number left out" in everything(at)
    at.button(key="campaigns_test_send").click().run()
    assert not at.exception, at.exception
    assert gateway_messages(data_dir) == [("+12062008888", "Hi Ana, your code is C0")]
    at.text_input(key="campaigns_test_numbers").input(OWN).run()
    assert "Every number typed is opted out" in everything(at)
    assert at.button(key="campaigns_test_send").disabled


def test_a_test_the_caps_refuse_is_not_offered(data_dir: Path) -> None:
    at = start(PAGE)
    runtime().client.limits.update(daily_sms_cap=1, block_on_limit=True)
    account_changed()  # as the Limits page does after a change
    compose(at, recipients_csv(), TEMPLATE)
    at.text_input(key="campaigns_test_numbers").input(OWN).run()
    at.selectbox(key="campaigns_test_rows").set_value(2).run()
    assert "KedaSMS will refuse this send" in everything(at)
    assert at.button(key="campaigns_test_send").disabled
    assert gateway_messages(data_dir) == []
