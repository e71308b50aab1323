"""The team through AppTest: each role's navigation, Admin → Members (invite, roles, remove,
sign out everywhere, the only admin kept), and refusals — a member whose role went while a
page was open, a member forced onto a page not theirs — each refused and audited.

Signed-in runs seed ``at.user`` with an ``[auth]`` section in ``at.secrets`` (nothing signs
in for real here: tests/browser does that through a real OpenID Connect provider).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console import access
from console import runtime as _runtime
from console.navigation import sections
from kedacore.ledger import Ledger
from kedacore.ledger.team import AuditFilter
from kedacore.settings import load_settings
from kedacore.team import Actor
from tests.console.test_app import APP, shown
from tests.support import AUTH_SECRETS, REPO_ROOT, signed_at

BOSS = "boss@example.com"  # named in [team] admins
AUTH = AUTH_SECRETS


def ledger_of(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def signed_in(email: str, script: str = APP, *, iat: int = 7) -> AppTest:
    """An AppTest of ``script`` (the app, or one page run alone) signed in as ``email``."""
    at = AppTest.from_file(script, default_timeout=60)
    at.secrets["auth"] = dict(AUTH)
    at.secrets["team"] = {"admins": [BOSS]}
    at.user = {"is_logged_in": True, "email": email, "iat": signed_at(iat)}
    return at


def page_alone(page: str, email: str) -> AppTest:
    """A page script run on its own (a forced run: an old link, a crafted request)."""
    return signed_in(email, str(REPO_ROOT / page)).run()


def refusals(data_dir: Path, who: str) -> list[tuple[str, str]]:
    with ledger_of(data_dir) as book:
        found = book.audit_entries(AuditFilter(actors=[who], outcomes=["refused"]))
    return [(e.action, e.target) for e in found]


def not_allowed(at: AppTest) -> bool:
    return any("Not allowed" in e.value for e in at.error)


# -- navigation --------------------------------------------------------------------------------


def titles(roles: set[str]) -> dict[str, list[str]]:
    found = sections(Actor("someone@example.com", frozenset(roles)))
    return {section: [spec.title for spec in specs] for section, specs in found.items()}


def test_each_role_sees_exactly_its_pages() -> None:
    assert titles({"marketing"}) == {
        "Messaging": ["Send", "Campaigns", "Short links", "Message log"],
        "Audience": ["Contacts", "Templates", "Opt-outs"],
        "Finance": ["Approvals"],  # where their own sends and campaigns wait
    }
    assert titles({"support"}) == {
        "Messaging": ["Status", "Message log"],
        "Audience": ["Opt-outs"],  # a number that replied STOP, added by hand
    }
    assert titles({"finance"}) == {
        "Messaging": ["Campaigns", "Message log"],  # to approve what waits there
        "Audience": ["Opt-outs"],  # and to take a number off it
        "Finance": ["Spend", "Limits", "Approvals", "Statement", "Audit log", "Notifications"],
        "Admin": ["Settings"],  # top-ups
    }
    everything = {
        "Messaging": ["Send", "Campaigns", "Status", "Short links", "Message log"],
        "Audience": ["Contacts", "Templates", "Opt-outs"],
        "Finance": ["Spend", "Limits", "Approvals", "Statement", "Audit log", "Notifications"],
        "Admin": ["Members", "Settings"],
    }
    assert titles({"admin"}) == everything
    assert titles({"marketing", "support"}) == {
        "Messaging": ["Send", "Campaigns", "Status", "Short links", "Message log"],
        "Audience": ["Contacts", "Templates", "Opt-outs"],
        "Finance": ["Approvals"],
    }
    assert titles(set()) == {}


# -- refusals ----------------------------------------------------------------------------------


def test_a_member_forced_onto_pages_not_theirs_is_refused_and_audited(data_dir: Path) -> None:
    with ledger_of(data_dir) as book:
        book.add_member("mkt@example.com", ["marketing"], by=BOSS)
    for page, title in [
        ("pages/limits.py", "Limits"),
        ("pages/audit.py", "Audit log"),
        ("pages/members.py", "Members"),
    ]:
        at = page_alone(page, "mkt@example.com")
        assert not at.exception, (page, at.exception)
        assert not_allowed(at), page
        assert not at.metric and not at.dataframe and not at.text_input, "nothing of the page"
        assert title not in [t.value for t in at.title]
    assert refusals(data_dir, "mkt@example.com") == [
        ("refused", "Members"),
        ("refused", "Audit log"),
        ("refused", "Limits"),
    ]
    with ledger_of(data_dir) as book:
        (entry, *_) = book.audit_entries(AuditFilter(outcomes=["refused"]))
    assert entry.detail == "open the Members page (needs members)"
    # The same member through the whole app: their navigation opens on Send, and works.
    at = signed_in("mkt@example.com").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Send"]


def test_a_cap_change_confirmed_after_the_role_went_is_refused(data_dir: Path) -> None:
    """Finance reviews a change; an admin takes finance away; Confirm is refused, audited, and
    the gateway's caps stay as they were."""
    with ledger_of(data_dir) as book:
        book.add_member("fin@example.com", ["finance", "support"], by=BOSS)
    at = signed_in("fin@example.com").run()
    at.switch_page("pages/limits.py").run()
    assert not at.exception and not at.error
    at.text_input(key="limits_sms_cap").input("5")
    at.button(key="limits_review").click().run()
    assert "limits_pending" in at.session_state
    assert any("fin@example.com" in shown(c.value) for c in at.caption)  # who will be recorded

    with ledger_of(data_dir) as book:
        book.set_member_roles("fin@example.com", ["support"], by=BOSS)
    at.button(key="limits_confirm").click().run()
    assert not at.exception
    assert not_allowed(at)
    assert not at.success
    caps = _runtime.runtime(load_settings(None, os.environ)).client.limits.get()
    assert caps.daily_sms_cap is None  # unchanged at the gateway
    with ledger_of(data_dir) as book:
        assert book.cap_changes() == []
        assert book.audit_entries(AuditFilter(actions=["caps_change"])) == []
    assert refusals(data_dir, "fin@example.com") == [("refused", "Limits")]


def losing(role: str, mp: pytest.MonkeyPatch) -> None:
    """From now on, the re-check an action makes when it runs (``access.who``) finds the actor
    without ``role`` — as if an admin took it away between the page's view and the click. The
    page itself (``page_setup``) still opens: this isolates the action's own check."""
    real = access.who

    def who_now(ledger: Ledger) -> Actor | None:
        actor = real(ledger)
        return actor and replace(actor, roles=actor.roles - {role})

    mp.setattr(access, "who", who_now)


def test_every_action_rechecks_its_permission_when_it_runs(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(BOSS).run()
    at.switch_page("pages/limits.py").run()
    at.text_input(key="limits_sms_cap").input("5")
    at.button(key="limits_review").click().run()
    losing("admin", monkeypatch)
    at.button(key="limits_confirm").click().run()
    assert not at.exception and not_allowed(at)
    assert any("To change the caps you need" in e.value for e in at.error)
    at.run()
    at.text_input(key="limits_approval_threshold").input("100")
    at.button(key="limits_controls_save").click().run()
    assert any("To change the team controls you need" in e.value for e in at.error)
    at.switch_page("pages/members.py").run()
    at.text_input(key="members_invite_email").input("new@example.com")
    at.multiselect(key="members_invite_roles").set_value(["support"])
    at.button(key="members_invite").click().run()
    assert any("To add a member you need the admin role" in e.value for e in at.error)
    at.run()  # the refusal stopped that run before the rest of the page
    at.selectbox(key="members_pick").set_value(BOSS).run()
    at.button(key="members_sign_out").click().run()
    assert any("To sign a member out you need" in e.value for e in at.error)

    assert (
        _runtime.runtime(load_settings(None, os.environ)).client.limits.get().daily_sms_cap is None
    )
    with ledger_of(data_dir) as book:
        assert book.cap_changes() == [] and book.team_settings() == {}
        assert [m.email for m in book.members()] == [BOSS]
        assert book.member(BOSS).signed_out_at is None  # type: ignore[union-attr]
    assert refusals(data_dir, BOSS) == [
        ("refused", BOSS),
        ("refused", "new@example.com"),
        ("refused", "team controls"),
        ("refused", "daily caps"),
    ]


def test_a_removed_member_is_not_let_back_in(data_dir: Path) -> None:
    with ledger_of(data_dir) as book:
        book.add_member("gone@example.com", ["finance"], by=BOSS)
    at = signed_in("gone@example.com").run()
    at.switch_page("pages/audit.py").run()
    assert [t.value for t in at.title] == ["Audit log"]
    with ledger_of(data_dir) as book:
        book.ensure_admins([BOSS])
        book.remove_member("gone@example.com", by=BOSS, reason="left the company")
    at.run()
    assert [t.value for t in at.title] == ["You are not a member of this team"]
    assert not at.dataframe


# -- Admin → Members ---------------------------------------------------------------------------


def members_table(at: AppTest) -> dict[str, dict[str, object]]:
    frame = next(d.value for d in at.dataframe if "E-mail" in d.value)
    return {row["E-mail"]: row for row in frame.to_dict("records")}


def test_an_admin_invites_changes_signs_out_and_removes_a_member(data_dir: Path) -> None:
    at = signed_in(BOSS).run()
    at.switch_page("pages/members.py").run()
    assert not at.exception and not at.error
    rows = members_table(at)
    assert rows[BOSS]["Roles"] == "admin" and rows[BOSS]["Named in secrets"] is True
    assert rows[BOSS]["Added by"] == "secrets" and rows[BOSS]["Last sign-in"] != "never"

    # Invite with two roles: the address to pass on is the console's (from [auth]).
    at.text_input(key="members_invite_email").input(" Ann@Example.com ")
    at.multiselect(key="members_invite_roles").set_value(["marketing", "support"])
    at.button(key="members_invite").click().run()
    assert not at.exception and not at.error
    told = shown(at.success[0].value)
    assert "ann@example.com** is a member now (marketing, support)" in told
    assert at.text_input(key="members_invite_email").value == ""  # ready for the next one
    assert at.multiselect(key="members_invite_roles").value == []  # no roles carried over
    assert "sign in now at **http://localhost:8501**" in told
    with ledger_of(data_dir) as book:
        ann = book.member("ann@example.com")
    assert ann is not None and ann.roles == {"marketing", "support"} and ann.added_by == BOSS
    assert members_table(at)["ann@example.com"]["Roles"] == "marketing, support"

    # Wrong addresses and duplicates add nobody, and say why.
    for typed, why in [
        ("ann@example.com", "is a member already"),
        ("not an address", "is not an e-mail address"),
    ]:
        at.text_input(key="members_invite_email").input(typed)
        at.multiselect(key="members_invite_roles").set_value(["support"])
        at.button(key="members_invite").click().run()
        assert any("Nobody was added" in e.value and why in shown(e.value) for e in at.error)
    at.text_input(key="members_invite_email").input("bo@example.com")
    at.multiselect(key="members_invite_roles").set_value([])
    at.button(key="members_invite").click().run()
    assert any("at least one role" in e.value for e in at.error)
    with ledger_of(data_dir) as book:
        assert [m.email for m in book.members()] == ["ann@example.com", BOSS]

    # Ann signs in (her first page view), then her roles change: finance only.
    ann_at = signed_in("ann@example.com", iat=100).run()
    assert [t.value for t in ann_at.title] == ["Send"]
    at.selectbox(key="members_pick").set_value("ann@example.com").run()
    assert at.multiselect(key="members_roles").value == ["marketing", "support"]
    at.multiselect(key="members_roles").set_value(["finance"])
    at.button(key="members_save_roles").click().run()
    assert not at.exception and not at.error
    assert "marketing, support → finance" in shown(at.success[0].value)
    ann_at.run()  # the Send page she has open is not hers any more: refused, audited
    assert not_allowed(ann_at) and not ann_at.text_area
    assert refusals(data_dir, "ann@example.com") == [("refused", "Send")]
    fresh = signed_in("ann@example.com", iat=100).run()  # a new visit: finance's landing
    assert [t.value for t in fresh.title] == ["Approvals"]

    # Sign out everywhere: her session (issued before) ends; a new sign-in gets in.
    at.selectbox(key="members_pick").set_value("ann@example.com").run()
    at.button(key="members_sign_out").click().run()
    assert "signed out on every browser" in shown(at.success[0].value)
    ann_at.run()
    assert [t.value for t in ann_at.title] == ["You were signed out"]
    again = signed_in("ann@example.com", iat=2**40).run()
    assert not again.exception and "You were signed out" not in [t.value for t in again.title]

    # Remove, with a confirmation and a reason.
    at.selectbox(key="members_pick").set_value("ann@example.com").run()
    at.button(key="members_remove").click().run()
    assert any("Remove ann@example.com?" in shown(w.value) for w in at.warning)
    at.text_input(key="members_remove_reason").input("moved to another team")
    at.button(key="members_remove_confirm").click().run()
    assert not at.exception and not at.error
    assert "ann@example.com** is no longer a member" in shown(at.success[0].value)
    assert "ann@example.com" not in members_table(at)
    # Nobody is chosen after a removal: no control can act on someone else by mistake.
    assert at.selectbox(key="members_pick").value is None
    assert "members_remove" not in [b.key for b in at.button]
    again.run()
    assert [t.value for t in again.title] == ["You are not a member of this team"]

    with ledger_of(data_dir) as book:
        log = [
            (e.actor, e.action, e.target, e.before, e.after, e.detail)
            for e in book.audit_entries(AuditFilter(actors=[BOSS]))
        ]
    assert log == [
        (BOSS, "member_remove", "ann@example.com", {"roles": ["finance"]}, None,
         "moved to another team"),
        (BOSS, "sign_out_everywhere", "ann@example.com", None, None, ""),
        (BOSS, "member_roles", "ann@example.com", {"roles": ["marketing", "support"]},
         {"roles": ["finance"]}, ""),
        (BOSS, "member_add", "ann@example.com", None, {"roles": ["marketing", "support"]}, ""),
        (BOSS, "sign_in", BOSS, None, None, ""),
    ]  # fmt: skip


def test_the_only_admin_can_be_neither_demoted_nor_removed(data_dir: Path) -> None:
    at = signed_in(BOSS).run()
    at.switch_page("pages/members.py").run()
    at.selectbox(key="members_pick").set_value(BOSS).run()
    assert any("This is you" in c.value for c in at.caption)
    at.multiselect(key="members_roles").set_value(["finance"])
    at.button(key="members_save_roles").click().run()
    assert not at.exception
    sentence = f"{BOSS} is the team's only admin: make someone else an admin first"
    assert any("roles were not changed" in e.value and sentence in shown(e.value) for e in at.error)
    assert at.multiselect(key="members_roles").value == ["admin"]  # back to what is stored

    at.button(key="members_remove").click().run()
    at.button(key="members_remove_confirm").click().run()
    assert any("Nobody was removed" in e.value and sentence in shown(e.value) for e in at.error)
    with ledger_of(data_dir) as book:
        boss = book.member(BOSS)
        assert boss is not None and boss.roles == {"admin"}
        assert book.audit_entries(AuditFilter(actions=["member_roles", "member_remove"])) == []

    # With a second admin, the first may step down.
    at.text_input(key="members_invite_email").input("deputy@example.com")
    at.multiselect(key="members_invite_roles").set_value(["admin"])
    at.button(key="members_invite").click().run()
    at.selectbox(key="members_pick").set_value(BOSS).run()
    at.multiselect(key="members_roles").set_value(["admin", "finance"])
    at.button(key="members_save_roles").click().run()
    assert "admin → admin, finance" in shown(at.success[0].value)


def test_without_sign_in_the_members_page_explains_and_still_prepares_the_list(
    data_dir: Path,
) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/members.py").run()
    assert not at.exception and not at.error
    note = at.info[0].value
    assert "Nobody signs in to this console yet" in note and "docs/team.md" in note
    assert "[auth]" in at.code[0].value and "server_metadata_url" in at.code[0].value
    at.text_input(key="members_invite_email").input("first@example.com")
    at.multiselect(key="members_invite_roles").set_value(["admin"])
    at.button(key="members_invite").click().run()
    assert "once sign-in is configured" in shown(at.success[0].value)
    assert at.text_input(key="members_invite_email").value == ""  # the form is empty again
    assert at.multiselect(key="members_invite_roles").value == []
    assert "members_remove" not in [b.key for b in at.button]  # nobody is chosen for you
    at.selectbox(key="members_pick").set_value("first@example.com").run()
    assert at.button(key="members_sign_out").disabled  # nothing to sign out of
    with ledger_of(data_dir) as book:
        (entry,) = book.audit_entries(AuditFilter(actions=["member_add"]))
    assert (entry.actor, entry.target) == ("local operator", "first@example.com")


def test_an_invited_member_is_mailed_where_to_sign_in(data_dir: Path) -> None:
    from tests.kedacore.test_notify import start_smtp

    smtp = start_smtp()
    stopped = False
    try:
        at = signed_in(BOSS)
        at.secrets["smtp"] = {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                              "from": "console@example.com"}  # fmt: skip
        at.secrets["team"] = {"admins": [BOSS], "console_url": "https://sms.example.com"}
        at.run()
        at.switch_page("pages/members.py").run()
        at.text_input(key="members_invite_email").input("new@example.com")
        at.multiselect(key="members_invite_roles").set_value(["support"])
        at.button(key="members_invite").click().run()
        assert not at.exception and not at.error
        assert "An e-mail told them to sign in at **https://sms.example.com**" in shown(
            at.success[0].value
        )
        [mail] = smtp.mails
        assert mail.to == ["new@example.com"]
        assert "sign in" in mail.subject.lower()
        assert "https://sms.example.com" in mail.body and BOSS in mail.body
        assert "support" in mail.body
        smtp.controller.stop()  # the SMTP server goes away: the member is still added
        stopped = True
        at.text_input(key="members_invite_email").input("second@example.com")
        at.multiselect(key="members_invite_roles").set_value(["finance"])
        at.button(key="members_invite").click().run()
        told = shown(at.success[0].value)
        assert "second@example.com** is a member now" in told
        assert "could not be sent" in told and "pass the address on" in told
    finally:
        if not stopped:
            smtp.controller.stop()
