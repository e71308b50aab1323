"""New campaign → When: at a time / at each recipient's local time, quiet hours; the parts
before Confirm; a scheduled campaign waits (nothing sent, nothing charged), is listed as
scheduled, and is started when its time comes — by the server's timer, or after a restart by
the first page run (``wake_once``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from console.messaging import campaign_schedule
from kedacore.campaign.schedule import armed, disarm
from kedacore.ledger import schema as s
from tests.console.test_app import balance, start
from tests.console.test_app_campaigns import (
    GOOD,
    PAGE,
    campaign_ids,
    compose,
    data_dir,  # noqa: F401 - the fixture
    frame,
    gateway_recipients,
    recipients_csv,
    runtime,
    texts,
    wait_for_the_run,
)


def test_a_campaign_at_a_time_waits_and_its_parts_are_shown(data_dir: Path) -> None:  # noqa: F811
    at = start(PAGE)
    before = balance(at)
    compose(at, recipients_csv(), "Hi {name}")
    at.radio(key="campaigns_when").set_value("At each recipient's local time").run()
    assert not at.exception, at.exception
    at.selectbox(key="campaigns_when_zone").set_value("America/Los_Angeles").run()
    at.button(key="campaigns_submit").click().run()
    assert not at.exception, at.exception
    parts = frame(at, "Zones")  # Seattle numbers: America/Los_Angeles, one part at 09:00
    assert list(parts["Recipients"]) == [5]
    assert parts["Zones"][0] == "America/Los_Angeles 5"
    assert "When each part goes" in texts(at.markdown)
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    (campaign_id,) = campaign_ids()
    ledger = runtime().ledger
    campaign = ledger.campaign(campaign_id)
    assert campaign.status == "scheduled" and campaign.scheduled_at > datetime.now(UTC)
    assert armed(ledger.url, campaign_id)  # this server starts it then
    assert ledger.campaign_schedule(campaign_id)["mode"] == "local"
    actions = [e.action for e in ledger.audit_entries()]
    assert "campaign_schedule" in actions and "campaign_start" not in actions
    at.run()
    assert not at.exception
    assert gateway_recipients(data_dir) == [] and balance(at) == before

    # The server restarts at its time: the first page run starts it.
    disarm(ledger.url, campaign_id)
    campaign_schedule._WOKEN.clear()
    with ledger.engine.begin() as conn:  # its time has come (as if the clock moved)
        conn.execute(
            s.campaign_batches.update()
            .where(s.campaign_batches.c.campaign_id == campaign_id)
            .values(not_before=datetime.now(UTC) - timedelta(seconds=1))
        )
    start(PAGE)
    wait_for_the_run(campaign_id)
    assert ledger.campaign(campaign_id).status == "done"
    assert gateway_recipients(data_dir) == GOOD


def test_a_time_in_the_past_blocks_sending(data_dir: Path) -> None:  # noqa: F811
    at = start(PAGE)
    compose(at, recipients_csv(), "Hi {name}")
    at.radio(key="campaigns_when").set_value("At a time").run()
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date()
    at.date_input(key="campaigns_when_date").set_value(yesterday).run()
    assert at.button(key="campaigns_submit").disabled
    assert "choose a time ahead" in texts(at.caption)


def test_a_scheduled_campaign_is_listed_with_its_parts_and_cancelled(data_dir: Path) -> None:  # noqa: F811
    at = start(PAGE)
    before = balance(at)
    compose(at, recipients_csv(), "Hi all")  # one text: one request
    at.radio(key="campaigns_when").set_value("At a time").run()
    at.toggle(key="campaigns_quiet").set_value(False).run()
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    (campaign_id,) = campaign_ids()
    ledger = runtime().ledger
    at.run()
    assert not at.exception, at.exception
    assert "**Scheduled:** the next part goes at" in texts(at.info)
    assert list(frame(at, "Requests")["Recipients"]) == [5]
    at.button(key="campaigns_cancel_scheduled").click().run()
    assert not at.exception, at.exception
    assert ledger.campaign(campaign_id).status == "cancelled"
    assert not armed(ledger.url, campaign_id)
    cancel = [e for e in ledger.audit_entries() if e.action == "campaign_cancel"]
    assert len(cancel) == 1
    at.run()
    assert gateway_recipients(data_dir) == [] and balance(at) == before
