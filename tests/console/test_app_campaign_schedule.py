"""New campaign → When: at a time / at each recipient's local time, quiet hours; the parts
before Confirm; a scheduled campaign waits (nothing sent, nothing charged), is listed as
scheduled, and is started when its time comes — by the server's timer, or by its watcher
(``wake_once``: after a restart, or for a campaign no timer of this server waits for)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console.messaging import campaign_schedule
from kedacore.campaign.schedule import armed, disarm
from kedacore.ledger import schema as s
from tests.console.test_app import balance, start
from tests.console.test_app_campaigns import (
    GOOD,
    PAGE,
    campaign_ids,
    compose,
    frame,
    gateway_recipients,
    recipients_csv,
    runtime,
    texts,
    wait_for_the_run,
)


def schedule_one(at: AppTest) -> None:
    """New campaign: five recipients, one text, at tomorrow 09:00, no quiet hours; confirmed."""
    compose(at, recipients_csv(), "Hi all")
    at.radio(key="campaigns_when").set_value("At a time").run()
    at.toggle(key="campaigns_quiet").set_value(False).run()
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception


def queue_only(ledger_url, monkeypatch) -> None:
    """PostgreSQL only: the console enqueues the campaign for the workers."""
    if getattr(ledger_url, "store", None) != "postgresql":
        pytest.skip("the job queue is PostgreSQL's (SQLite: the server's own timer, above)")
    monkeypatch.delenv("KEDA_CAMPAIGN_WORKERS", raising=False)


def test_a_campaign_at_a_time_waits_and_its_parts_are_shown(data_dir: Path) -> None:
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

    # No timer of this server waits for it (the command line scheduled it, or the timer's start
    # failed) and its time comes: the server's watcher starts it, with no page run.
    disarm(ledger.url, campaign_id)
    with ledger.engine.begin() as conn:  # its time has come (as if the clock moved)
        conn.execute(
            s.campaign_batches.update()
            .where(s.campaign_batches.c.campaign_id == campaign_id)
            .values(not_before=datetime.now(UTC) - timedelta(seconds=1))
        )
    deadline = time.monotonic() + campaign_schedule.SCHEDULE_POLL_S + 10
    while ledger.campaign(campaign_id).status == "scheduled" and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_for_the_run(campaign_id)
    assert ledger.campaign(campaign_id).status == "done"
    assert gateway_recipients(data_dir) == GOOD
    (started,) = [e for e in ledger.audit_entries() if e.action == "campaign_start"]
    assert started.actor == "schedule"


def test_a_time_in_the_past_blocks_sending(data_dir: Path) -> None:
    at = start(PAGE)
    compose(at, recipients_csv(), "Hi {name}")
    at.radio(key="campaigns_when").set_value("At a time").run()
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date()
    at.date_input(key="campaigns_when_date").set_value(yesterday).run()
    assert at.button(key="campaigns_submit").disabled
    assert "choose a time ahead" in texts(at.caption)


def test_a_scheduled_campaign_is_listed_with_its_parts_and_cancelled(data_dir: Path) -> None:
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


def test_on_postgresql_a_scheduled_campaign_waits_in_the_queue_and_is_cancelled(
    data_dir: Path,
    ledger_url,
    monkeypatch,
) -> None:
    """With workers (PostgreSQL), the campaign's job waits in procrastinate's queue for its
    time; the list still offers Move and Cancel (which take the job back first)."""
    from kedacore.campaign.tasks import active_jobs

    queue_only(ledger_url, monkeypatch)
    at = start(PAGE)
    schedule_one(at)
    (campaign_id,) = campaign_ids()
    ledger = runtime().ledger
    assert ledger.campaign(campaign_id).status == "scheduled"
    assert active_jobs(ledger)[campaign_id][1] == "todo"  # for a worker, at its time
    at.run()
    assert not at.exception, at.exception
    assert "**Scheduled:** the next part goes at" in texts(at.info)
    at.button(key="campaigns_cancel_scheduled").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    assert ledger.campaign(campaign_id).status == "cancelled"
    assert campaign_id not in active_jobs(ledger)  # the job taken back: no worker sends it
    at.run()
    assert gateway_recipients(data_dir) == []


def test_on_postgresql_a_move_that_fails_half_way_gives_the_job_back(
    data_dir: Path,
    ledger_url,
    monkeypatch,
) -> None:
    """Move takes the campaign's job back first; the database failing before the new time is
    written must not leave a scheduled campaign that no worker will ever start."""
    from sqlalchemy.exc import OperationalError

    from kedacore.campaign.engine import CampaignEngine
    from kedacore.campaign.tasks import active_jobs

    queue_only(ledger_url, monkeypatch)
    at = start(PAGE)
    schedule_one(at)
    (campaign_id,) = campaign_ids()
    ledger = runtime().ledger
    assert active_jobs(ledger)[campaign_id][1] == "todo"
    at.run()

    def unreachable(*args, **kwargs):
        raise OperationalError("UPDATE campaign_batches", {}, Exception("server closed"))

    monkeypatch.setattr(CampaignEngine, "reschedule", unreachable)
    at.radio(key="campaigns_move_when").set_value("At a time").run()
    at.toggle(key="campaigns_move_quiet").set_value(False).run()
    at.button(key="campaigns_move_go").click().run()
    assert not at.exception, at.exception
    said = texts(at.error)
    assert "Not moved:" in said and "It keeps its time." in said, said
    assert ledger.campaign(campaign_id).status == "scheduled"
    assert active_jobs(ledger)[campaign_id][1] == "todo"  # its job is back in the queue
