"""Signing in for real: the console with ``[auth]`` against an OpenID Connect provider on
loopback (oidc-provider-mock), in Chromium — the sign-in page, a stranger, each role's
navigation, a page outside one's roles, signing out, and signing out everywhere."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from kedacore.ledger import Ledger
from tests.browser.conftest import TEAM_ADMIN, screenshot, sign_in, sign_out, wait_ready

NAV = '[data-testid="stSidebarNav"] a'
EXPECTED_NAV = {
    "marketing": [
        "Send", "Campaigns", "Short links", "Message log", "Contacts", "Templates", "Opt-outs",
        "Approvals",
    ],
    "finance": [
        "Campaigns", "Message log", "Opt-outs", "Spend", "Limits", "Approvals", "Statement",
        "Audit log", "Notifications", "Settings",
    ],
    "support": ["Status", "Message log", "Opt-outs"],
    "admin": [
        "Send", "Campaigns", "Status", "Short links", "Message log", "Contacts", "Templates",
        "Opt-outs", "Spend", "Limits", "Approvals", "Statement", "Audit log", "Notifications",
        "Members", "Settings",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def ledger(team_console) -> Ledger:
    led = Ledger(f"sqlite:///{team_console.data_dir / 'ledger.db'}")
    for role in ("marketing", "finance", "support"):
        led.add_member(f"{role}@example.com", [role], by=TEAM_ADMIN)
    return led


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    return context, context.new_page()


def text_of(page, selector: str) -> str:
    """What a part of the page says (without the word joiners that keep e-mails from linking)."""
    return page.locator(selector).inner_text().replace("\u2060", "")


def nav(page) -> list[str]:
    """The navigation's page names (each link's text after its icon's ligature)."""
    return [t.strip().split("\n")[-1] for t in page.locator(NAV).all_inner_texts()]


def titles(page) -> list[str]:
    return page.locator("h1").all_inner_texts()


def test_a_stranger_sees_only_the_sign_in_page_then_whom_to_ask(
    team_console, browser, ledger
) -> None:
    context, page = new_page(browser)
    try:
        page.goto(team_console.url)
        wait_ready(page)
        assert titles(page) == ["Sign in to KedaSMS Console"]
        assert page.locator(NAV).count() == 0
        assert page.locator('[data-testid="stMetric"]').count() == 0  # no balance, no data
        screenshot(page, "team-sign-in")
        sign_in(page, team_console, "stranger@example.com")
        assert titles(page) == ["You are not a member of this team"]
        body = text_of(page, '[data-testid="stMain"]')
        assert "stranger@example.com" in body and TEAM_ADMIN in body
        assert page.locator(NAV).count() == 0
        assert page.locator('[data-testid="stMetric"]').count() == 0
        entries = ledger.audit_entries()
        assert not any(e.actor == "stranger@example.com" and e.action == "sign_in" for e in entries)
    finally:
        context.close()


@pytest.mark.parametrize("role", ["marketing", "finance", "support", "admin"])
def test_each_role_sees_exactly_its_pages(team_console, browser, ledger, role) -> None:
    email = TEAM_ADMIN if role == "admin" else f"{role}@example.com"
    context, page = new_page(browser)
    try:
        sign_in(page, team_console, email)
        assert nav(page) == EXPECTED_NAV[role]
        landing = {"finance": "Approvals", "support": "Status"}.get(role, "Send")
        assert titles(page) == [landing]
        sidebar = text_of(page, '[data-testid="stSidebarContent"]')
        assert email in sidebar and role in sidebar
        signed_in = [e for e in ledger.audit_entries() if e.action == "sign_in"]
        assert any(e.actor == email for e in signed_in)
    finally:
        context.close()


def test_a_page_outside_the_role_refuses_itself_by_its_address_and_is_audited(
    team_console, browser, ledger
) -> None:
    context, page = new_page(browser)
    try:
        sign_in(page, team_console, "support@example.com")
        assert page.url.rstrip("/").endswith("/status")  # the root lands on their first page
        for path, title in (("limits", "Limits"), ("audit", "Audit log"), ("members", "Members"),
                            ("send", "Send")):  # fmt: skip
            page.goto(f"{team_console.url}/{path}")
            wait_ready(page)
            main = text_of(page, '[data-testid="stMain"]')
            assert "Not allowed" in main and f"open the {title} page" in main, (path, main)
            assert "Change the caps" not in main and "Invite" not in main
            assert page.locator('[data-testid="stDialog"]').count() == 0  # no "page not found"
        refused = [
            e.target
            for e in ledger.audit_entries()
            if e.action == "refused" and e.actor == "support@example.com"
        ]
        assert {"Limits", "Audit log", "Members", "Send"} <= set(refused)
        page.goto(f"{team_console.url}/status")  # their own page by its address: no pop-up
        wait_ready(page)
        assert titles(page) == ["Status"]
        assert page.locator('[data-testid="stDialog"]').count() == 0
    finally:
        context.close()


def test_sign_out_and_sign_out_everywhere(team_console, browser, ledger) -> None:
    email = "marketing@example.com"
    first, one = new_page(browser)
    second, two = new_page(browser)
    try:
        sign_in(one, team_console, email)
        sign_in(two, team_console, email)
        sign_out(one, team_console)
        assert titles(one) == ["Sign in to KedaSMS Console"]
        two.reload()
        wait_ready(two)
        assert titles(two) == ["Send"], "signing out in one browser leaves the other signed in"
        sign_in(one, team_console, email)
        sign_out(one, team_console, "Everywhere")
        assert titles(one) == ["Sign in to KedaSMS Console"]
        two.reload()
        wait_ready(two)
        assert titles(two) == ["You were signed out"]
        assert two.locator(NAV).count() == 0
        entries = [e for e in ledger.audit_entries() if e.target == email]
        assert entries[0].action == "sign_out_everywhere" and entries[0].actor == email
    finally:
        first.close()
        second.close()


def test_members_added_one_after_another_get_only_their_own_roles(
    team_console, browser, ledger
) -> None:
    """The walk-through's finding: the form kept the last e-mail and roles, so roles piled up."""
    from tests.browser.test_console import key

    context, page = new_page(browser)
    try:
        sign_in(page, team_console, TEAM_ADMIN)
        page.goto(f"{team_console.url}/members")
        wait_ready(page)
        for email, role in (("first@example.com", "Marketing"), ("second@example.com", "Support")):
            box = page.locator(f"{key('members_invite_email')} input")
            # the outcome above the form may be drawn a moment before the emptied form
            expect(box).to_have_value("", timeout=10_000)
            box.fill(email)
            roles = page.locator(f"{key('members_invite_roles')}")
            expect(roles.get_by_text("Marketing")).to_have_count(0)  # nothing carried over
            roles.locator("input").click()
            page.get_by_role("option", name=re.compile(f"^{role}")).click()
            page.keyboard.press("Escape")
            page.locator(f"{key('members_invite')} button").click()
            wait_ready(page)
            said = re.compile(re.escape(email).replace("@", "@\u2060?") + " is a member now")
            page.get_by_text(said).wait_for()
        assert ledger.member("first@example.com").roles == {"marketing"}
        assert ledger.member("second@example.com").roles == {"support"}
        screenshot(page, "team-members")
    finally:
        context.close()
