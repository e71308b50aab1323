"""The Send page's When: a send for later is kept as a small scheduled campaign — nothing sent
or frozen before its time, the opted-out left out, listed on Campaigns, started at its time
by the server's watcher; a transactional send is never scheduled."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from console.messaging import campaign_schedule
from kedacore.campaign.schedule import disarm
from kedacore.ledger import schema as s
from tests.console.test_app import APP, balance, shown
from tests.console.test_app_campaigns import gateway_recipients, runtime, wait_for_the_run

A, B, C = "+12062000001", "+12062000002", "+12062000003"


def everything(at: AppTest) -> str:
    parts = [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]
    return shown(" ".join([*parts, *(m.value for m in at.markdown)]))


def later(at: AppTest) -> AppTest:
    at.text_area(key="send_numbers").input("\n".join([A, B, C])).run()
    at.text_area(key="send_content").input("Doors open at nine").run()
    at.radio(key="send_when").set_value("At a time").run()
    at.toggle(key="send_quiet").set_value(False).run()
    assert not at.exception, at.exception
    return at


def test_a_send_for_later_is_a_scheduled_campaign_that_goes_at_its_time(data_dir: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    before = balance(at)
    ledger = runtime().ledger
    ledger.add_optouts([B], by="mia@example.com", reason="STOP")
    later(at)
    assert "1 opted out, left out" in everything(at)
    at.button(key="send_submit").click().run()
    assert "When each part goes" in everything(at)
    at.button(key="send_later_confirm").click().run()
    assert not at.exception, at.exception
    assert "is scheduled — see it on Campaigns" in everything(at)
    (campaign,) = ledger.campaigns()
    assert (campaign.status, campaign.recipients) == ("scheduled", 2)
    assert campaign.name == "Send: Doors open at nine"
    assert gateway_recipients(data_dir) == [] and balance(at) == before  # nothing frozen
    created = [e for e in ledger.audit_entries() if e.action == "campaign_create"]
    assert created[0].after["opted_out_left_out"] == 1

    # Its time comes (the timer left aside): the server's watcher starts it.
    disarm(ledger.url, campaign.id)
    with ledger.engine.begin() as conn:
        conn.execute(
            s.campaign_batches.update()
            .where(s.campaign_batches.c.campaign_id == campaign.id)
            .values(not_before=datetime.now(UTC) - timedelta(seconds=1))
        )
    deadline = time.monotonic() + campaign_schedule.SCHEDULE_POLL_S + 10
    while ledger.campaign(campaign.id).status == "scheduled" and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_for_the_run(campaign.id)
    assert ledger.campaign(campaign.id).status == "done"
    assert sorted(gateway_recipients(data_dir)) == [A, C]


def test_a_transactional_send_is_not_scheduled(data_dir: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    runtime().ledger.add_optouts([B], by="mia@example.com", reason="STOP")
    later(at)
    at.checkbox(key="send_transactional").check().run()
    assert at.button(key="send_submit").disabled
    assert "send a transactional message now (When: Now)" in everything(at)
