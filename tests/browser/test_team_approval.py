"""The team at work, signed in for real (OpenID Connect on loopback) in Chromium: finance sets
the approval threshold; a marketing member's campaign over it waits, nothing sent; a finance
member approves it with a reason; it sends, each recipient once; the audit log names each
person for each step; the marketing member cannot open Limits or the Audit log. (The same
pages forced through AppTest as that member are refused and audited:
tests/console/test_app_access.py and tests/console/test_app_team.py.)"""

from __future__ import annotations

import sqlite3
import time

import pytest

from kedacore.ledger import Ledger
from kedacore.ledger.team import APPROVAL_THRESHOLD
from tests.browser.conftest import TEAM_ADMIN, after_run, screenshot, sign_in, wait_ready
from tests.browser.test_console import key, no_traceback

pytestmark = pytest.mark.browser

MIA, FIN = "mia@example.com", "fin@example.com"


def person(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    return context, context.new_page()


def gateway_messages(console) -> tuple[int, int]:
    with sqlite3.connect(f"file:{console.data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*), count(DISTINCT recipient) FROM messages").fetchone()


def heading(page) -> list[str]:
    return page.locator("h1").all_inner_texts()


def test_a_campaign_over_the_threshold_waits_for_finance_then_sends(team_console, browser) -> None:
    ledger = Ledger(f"sqlite:///{team_console.data_dir / 'ledger.db'}")
    ledger.add_member(MIA, ["marketing"], by=TEAM_ADMIN)
    ledger.add_member(FIN, ["finance"], by=TEAM_ADMIN)
    before = gateway_messages(team_console)[0]
    fin_context, fin = person(browser)
    mia_context, mia = person(browser)
    try:
        # Finance sets the threshold on Limits → Team controls.
        sign_in(fin, team_console, FIN)
        fin.goto(f"{team_console.url}/limits")
        wait_ready(fin)
        fin.locator(f"{key('limits_approval_threshold')} input").fill("0.10")
        fin.locator(f"{key('limits_controls_save')} button").click()
        wait_ready(fin)
        assert ledger.team_setting(APPROVAL_THRESHOLD) == "0.1"

        # Marketing: a 5-recipient campaign (0.25 USD) over it waits.
        sign_in(mia, team_console, MIA)
        mia.goto(f"{team_console.url}/campaigns")
        wait_ready(mia)
        name = mia.locator(f"{key('campaigns_name')} input")
        name.fill("Autumn news")
        after_run(mia, lambda: name.press("Enter"))
        rows = ["phone,name"] + [f"+1206{7_000_000 + i:07d},N{i}" for i in range(5)]
        mia.locator(f"{key('campaigns_file')} input[type=file]").set_input_files(
            {"name": "autumn.csv", "mimeType": "text/csv", "buffer": "\n".join(rows).encode()}
        )
        mia.get_by_text("5 row(s) read").wait_for()
        template = mia.locator(f"{key('campaigns_template')} textarea")
        template.fill("Hi {name}, autumn news is out.")
        template.press("Control+Enter")
        mia.get_by_text("All 5 rows can be sent").wait_for()
        wait_ready(mia)
        mia.locator(f"{key('campaigns_submit')} button").click()
        dialog = mia.get_by_role("dialog")
        confirm = dialog.locator(f"{key('campaigns_confirm')} button")
        assert confirm.inner_text().strip() == "Confirm and ask for approval"
        confirm.click()
        mia.get_by_text("awaiting approval").first.wait_for()
        wait_ready(mia)
        no_traceback(mia)
        screenshot(mia, "team-campaign-awaiting")
        time.sleep(1.0)
        assert gateway_messages(team_console)[0] == before, "nothing is sent while it waits"

        # Marketing cannot open Limits nor the Audit log, by the navigation or by address.
        nav = " ".join(mia.locator('[data-testid="stSidebarNav"]').all_inner_texts())
        assert "Limits" not in nav and "Audit log" not in nav
        for path, title in (("limits", "Limits"), ("audit", "Audit log")):
            mia.goto(f"{team_console.url}/{path}")
            wait_ready(mia)
            main = mia.locator('[data-testid="stMain"]').inner_text()
            assert heading(mia) == [] and f"Not allowed. To open the {title} page" in main
        assert {("refused", "Limits"), ("refused", "Audit log")} <= {
            (e.action, e.target) for e in ledger.audit_entries() if e.actor == MIA
        }

        # Finance approves it with a reason; it starts and sends every recipient once.
        fin.goto(f"{team_console.url}/approvals")
        wait_ready(fin)
        fin.get_by_text("Autumn news").first.wait_for()
        screenshot(fin, "team-approvals-queue")
        item = fin.locator("[class*='st-key-approvals_item_']").first
        item.locator("input").fill("Budgeted in the autumn plan")
        after_run(fin, lambda: item.locator("input").press("Enter"))
        fin.locator("[class*='st-key-approvals_approve_'] button").first.click()
        wait_ready(fin)
        no_traceback(fin)
        deadline = time.monotonic() + 30
        while gateway_messages(team_console)[0] < before + 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        count, distinct = gateway_messages(team_console)
        assert count - before == 5 and distinct == count

        # The creator sees it done.
        [campaign] = [c for c in ledger.campaigns() if c.name == "Autumn news"]
        deadline = time.monotonic() + 30
        while ledger.campaign(campaign.id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ledger.campaign(campaign.id).status == "done"
        assert ledger.campaign(campaign.id).created_by == MIA
        mia.goto(f"{team_console.url}/campaigns?campaign={campaign.id}")
        wait_ready(mia)
        mia.get_by_text("All 5 recipients sent").first.wait_for(timeout=30_000)
        screenshot(mia, "team-campaign-sent")

        # The audit log names each person for each step (and shows them on its page).
        steps = [
            (e.actor, e.action, e.outcome)
            for e in reversed(ledger.audit_entries(limit=500))
            if e.action.startswith(("campaign", "approve", "setting"))
        ]
        assert steps == [
            (FIN, "setting_change", "done"),
            (MIA, "campaign_create", "done"),
            (MIA, "campaign_awaiting", "done"),
            (FIN, "approve", "done"),
            (FIN, "campaign_start", "done"),
        ]
        [approved] = [e for e in ledger.audit_entries() if e.action == "approve"]
        assert approved.detail == "Budgeted in the autumn plan" or "Budgeted" in str(approved.after)
        fin.goto(f"{team_console.url}/audit")
        wait_ready(fin)
        no_traceback(fin)
        assert heading(fin) == ["Audit log"]
        screenshot(fin, "team-audit-log")
    finally:
        fin_context.close()
        mia_context.close()
