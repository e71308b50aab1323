"""Admin → Members: who may use the console and with which roles.

The list (e-mail, roles, who added them and when, last sign-in, named in ``[team] admins``),
inviting by e-mail with roles, changing roles, removing (confirmed, with an optional reason)
and signing a member out everywhere. Every action re-checks ``Permission.MEMBERS`` with
``console.access.require`` when it runs and records the actor; the ledger writes the audit
entry in the same transaction as the change and refuses to leave the team without an admin
(its sentence is shown as is). Outcomes are kept in session state (``members_result`` /
``members_error``) across the rerun that redraws the list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.access import TeamConfig, require
from console.views import local_time, plain
from kedacore.ledger import Ledger
from kedacore.ledger.team import Member
from kedacore.notify import Notice, send_mail
from kedacore.notify.config import console_url, notify_config
from kedacore.team import PERMISSIONS, ROLES, Actor, Permission

ROLE_LABELS = {role: role.capitalize() for role in ROLES}
# What each permission allows, in the words of docs/team.md's table.
PERMISSION_WORDS = {
    Permission.SEND: "send messages",
    Permission.CAMPAIGNS: "run campaigns",
    Permission.LINKS: "make tracked short links",
    Permission.LOOKUP: "look up what happened to messages",
    Permission.SPEND: "see spend",
    Permission.CAPS: "change the daily caps",
    Permission.THRESHOLDS: "set the approval threshold and balance floor",
    Permission.APPROVE: "approve or reject",
    Permission.STATEMENTS: "read the money statement",
    Permission.AUDIT: "read the audit log",
    Permission.NOTIFICATIONS: "choose where notifications go",
    Permission.TOPUP: "top up the sandbox account",
    Permission.MEMBERS: "manage members",
    Permission.SETTINGS: "change the console's settings",
    Permission.CONTACTS: "manage contact lists",
    Permission.TEMPLATES: "manage templates and sender profiles",
    Permission.LOG: "browse the message log",
    Permission.OPTOUTS: "add numbers to the opt-out list",
    Permission.OPTOUT_REMOVE: "take numbers off the opt-out list",
    Permission.TRANSACTIONAL: "send transactional messages to opted-out numbers",
}
SETUP_EXAMPLE = """\
# .streamlit/secrets.toml — sign-in through your OpenID Connect provider (docs/team.md)
[auth]
redirect_uri = "https://console.example.com/oauth2callback"
cookie_secret = "a long random string"
client_id = "…"
client_secret = "…"
server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"

[team]
admins = ["you@example.com"]  # admins from their first sign-in
"""


# -- plain functions ---------------------------------------------------------------------------


def console_address(
    secrets: Any, page_url: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Where members sign in (``kedacore.notify.config.console_url``)."""
    return console_url(secrets, env, page_url)


def role_words(roles: Sequence[str]) -> str:
    """``finance, marketing`` in the table's order."""
    return ", ".join(r for r in ROLES if r in roles)


def permission_table() -> pd.DataFrame:
    """What each role may do (``kedacore.team.PERMISSIONS``), for the page's reminder."""

    def may(role: str) -> str:
        if role == "admin":
            return "everything (members and settings too)"
        return "; ".join(PERMISSION_WORDS[p] for p in Permission if p in PERMISSIONS[role])

    return pd.DataFrame({"Role": [ROLE_LABELS[r] for r in ROLES], "May": [may(r) for r in ROLES]})


def members_frame(
    members: Sequence[Member], named_admins: Sequence[str], tz: ZoneInfo
) -> pd.DataFrame:
    """The list: every member, then the admins named in secrets who have not signed in yet."""
    named = set(named_admins)
    rows = [
        {
            "E-mail": m.email,
            "Roles": role_words(m.role_list),
            "Added by": m.added_by,
            "Added": local_time(m.added_at, tz),
            "Last sign-in": local_time(m.last_sign_in_at, tz) or "never",
            "Named in secrets": m.email in named,
        }
        for m in members
    ]
    known = {m.email for m in members}
    rows += [
        {
            "E-mail": email,
            "Roles": "admin",
            "Added by": "secrets",
            "Added": "at their first sign-in",
            "Last sign-in": "never",
            "Named in secrets": True,
        }
        for email in named_admins
        if email not in known
    ]
    columns = ["E-mail", "Roles", "Added by", "Added", "Last sign-in", "Named in secrets"]
    return pd.DataFrame(rows, columns=columns)


def next_step(config: TeamConfig, address: str) -> str:
    """What an admin tells a member just added (Markdown)."""
    if not config.sign_in:
        return (
            "They can sign in once sign-in is configured (an `[auth]` section in secrets, "
            "docs/team.md); until then only the local operator uses this console."
        )
    return (
        f"They can sign in now at **{plain(address)}** with their work account: pass the "
        "address on."
    )


def invite_mail(member: Member, actor: Actor, config: TeamConfig, address: str) -> str:
    """Mail the new member where to sign in (with sign-in and ``[smtp]`` configured); what to
    tell the admin next (Markdown)."""
    smtp = notify_config(st.secrets).smtp
    if not config.sign_in or smtp is None:
        return next_step(config, address)
    roles = role_words(member.role_list)
    notice = Notice(
        cause="invite",
        kind="invite",
        subject="You can sign in to your team's KedaSMS Console",
        body=f"{actor.name} added you to the team's KedaSMS Console ({roles}).\n\n"
        f"Sign in with your work account ({member.email}) at:\n{address}\n",
        link=address,
    )
    [outcome] = send_mail(smtp, [member.email], notice)
    if outcome.ok:
        return f"An e-mail told them to sign in at **{plain(address)}**."
    return (
        f"The e-mail to them could not be sent ({plain(outcome.error or 'unknown')}): "
        + next_step(config, address)
    )


# -- the page's pieces -------------------------------------------------------------------------


def setup_note(config: TeamConfig) -> None:
    """Without sign-in: members only matter once ``[auth]`` is set; how to set it."""
    if config.sign_in:
        return
    st.info(
        "**Nobody signs in to this console yet.** Members and their roles take effect once "
        "sign-in is configured: until then one local operator uses it, as admin, from this "
        "machine only. You can prepare the list now. To turn sign-in on, add an `[auth]` "
        "section to `.streamlit/secrets.toml` and name the first admins (docs/team.md has "
        "the settings for Google, Microsoft Entra ID, Okta and Keycloak):",
        icon=":material/info:",
    )
    st.code(SETUP_EXAMPLE, language="toml")


def show_outcome() -> None:
    state = st.session_state
    if "members_error" in state:
        st.error(state.pop("members_error"), icon=":material/error:")
    if "members_result" in state:
        st.success(state.pop("members_result"), icon=":material/check_circle:")


def member_list(members: Sequence[Member], config: TeamConfig, tz: ZoneInfo) -> None:
    frame = members_frame(members, config.admins, tz)
    if frame.empty:
        st.caption("No member yet: add the first below.")
        return
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="members_table",
        column_config={
            "Named in secrets": st.column_config.CheckboxColumn(
                help="Named in [team] admins in secrets: an admin from their first sign-in, "
                "and made an admin again at every sign-in while named there."
            )
        },
    )
    with st.expander("What each role may do", key="members_roles_help"):
        st.dataframe(permission_table(), hide_index=True, width="stretch", key="members_perms")


_EMPTY = {"members_invite_email": "", "members_invite_roles": [], "members_remove_reason": ""}


def _done(message: str, *clear: str) -> None:
    """Keep the outcome, empty the given widgets at the next run (before they are drawn: a
    browser keeps a widget's value otherwise), and redraw the page."""
    st.session_state["members_result"] = message
    st.session_state["members_clear"] = list(clear)
    st.rerun()


def clear_finished() -> None:
    """Empty what the last action asked to (call before any widget of the page is drawn)."""
    state = st.session_state
    for name in state.pop("members_clear", []):
        state[name] = _EMPTY.get(name)


def invite_form(ledger: Ledger, config: TeamConfig, address: str) -> None:
    """Add a member by e-mail with one or more roles."""
    with st.form("members_invite_form", border=True):
        email_col, roles_col = st.columns([3, 2])
        email = email_col.text_input(
            "E-mail", key="members_invite_email", placeholder="name@example.com",
            help="The address their sign-in provider gives (the e-mail they sign in with).",
        )  # fmt: skip
        roles = roles_col.multiselect(
            "Roles", list(ROLES), format_func=ROLE_LABELS.get, key="members_invite_roles",
            placeholder="Choose one or more", help="A member may hold several roles.",
        )  # fmt: skip
        add = st.form_submit_button("Add the member", key="members_invite", type="primary")
    if not add:
        return
    actor = require(ledger, Permission.MEMBERS, "add a member", target=email.strip()[:200])
    try:
        member = ledger.add_member(email, roles, by=actor.name)
    except ValueError as exc:
        st.error(f"**Nobody was added.** {plain(exc)}", icon=":material/person_add_disabled:")
        return
    _done(
        f"**{plain(member.email)}** is a member now ({role_words(member.role_list)}). "
        + invite_mail(member, actor, config, address),
        "members_invite_email",
        "members_invite_roles",
    )


def _pick(members: Sequence[Member]) -> Member | None:
    """The member the controls below act on, once one is chosen (none is chosen for you, and
    one removed meanwhile is no longer chosen); the roles box follows the choice."""
    state = st.session_state
    by_email = {m.email: m for m in members}
    if state.get("members_pick") not in by_email:
        state["members_pick"] = None
    chosen = st.selectbox(
        "Member", list(by_email), index=None, placeholder="Choose a member", key="members_pick"
    )
    if chosen is None:
        return None
    member = by_email[chosen]
    if state.get("members_roles_of") != member.email:
        state["members_roles_of"] = member.email
        state["members_roles"] = member.role_list
    return member


def manage(ledger: Ledger, members: Sequence[Member], config: TeamConfig, actor: Actor) -> None:
    """Change a member's roles, sign them out everywhere, or remove them (confirmed)."""
    if not members:
        return
    state = st.session_state
    member = _pick(members)
    if member is None:
        st.caption("Choose a member to change their roles, sign them out or remove them.")
        return
    if member.email == actor.name:
        st.caption("This is you: the change applies to your own access.")
    roles = st.multiselect(
        "Roles", list(ROLES), format_func=ROLE_LABELS.get, key="members_roles",
        help="Their next page view uses the new roles; so does every action they take.",
    )  # fmt: skip
    row = st.container(horizontal=True, gap="small")
    save = row.button("Save the roles", key="members_save_roles", type="primary")
    out = row.button(
        "Sign out everywhere",
        key="members_sign_out",
        disabled=not config.sign_in,
        help="End every session they have: they must sign in again."
        if config.sign_in
        else "Only with sign-in configured.",
    )
    if row.button("Remove…", key="members_remove", icon=":material/person_remove:"):
        state["members_removing"] = member.email
    if save:
        _save_roles(ledger, member, roles, config)
    if out:
        who = require(ledger, Permission.MEMBERS, "sign a member out", target=member.email)
        ledger.sign_out_everywhere(member.email, by=who.name)
        _done(
            f"**{plain(member.email)}** is signed out on every browser and device; they must "
            "sign in again."
        )
    if state.get("members_removing") == member.email:
        _confirm_removal(ledger, member, config)


def _save_roles(ledger: Ledger, member: Member, roles: Sequence[str], config: TeamConfig) -> None:
    actor = require(ledger, Permission.MEMBERS, "change a member's roles", target=member.email)
    try:
        after = ledger.set_member_roles(member.email, roles, by=actor.name, protected=config.admins)
    except ValueError as exc:
        st.session_state.pop("members_roles_of", None)  # the box shows what is stored again
        st.session_state["members_error"] = f"**The roles were not changed.** {plain(exc)}"
        st.rerun()
    if after.roles == member.roles:
        st.info("These are their roles already: nothing to change.", icon=":material/info:")
        return
    _done(
        f"**{plain(member.email)}**: {role_words(member.role_list)} → "
        f"{role_words(after.role_list)}."
    )


def _confirm_removal(ledger: Ledger, member: Member, config: TeamConfig) -> None:
    state = st.session_state
    with st.container(border=True):
        st.warning(
            f"**Remove {plain(member.email)}?** They lose access at once: the next page they "
            "open says they are not a member. What they did stays in the audit log.",
            icon=":material/person_remove:",
        )
        if member.email in config.admins:
            st.caption(
                "Named in `[team] admins` in secrets: take them out of secrets first, or the "
                "removal is refused."
            )
        reason = st.text_input(
            "Reason (optional, kept in the audit log)", key="members_remove_reason", max_chars=500
        )
        yes, no = st.columns(2)
        confirmed = yes.button(
            "Remove the member", key="members_remove_confirm", type="primary", width="stretch"
        )
        if no.button("Cancel", key="members_remove_cancel", width="stretch"):
            state.pop("members_removing", None)
            st.rerun()
    if not confirmed:
        return
    state.pop("members_removing", None)
    actor = require(ledger, Permission.MEMBERS, "remove a member", target=member.email)
    try:
        ledger.remove_member(
            member.email, by=actor.name, reason=reason.strip(), protected=config.admins
        )
    except ValueError as exc:
        state["members_error"] = f"**Nobody was removed.** {plain(exc)}"
        st.rerun()
    _done(
        f"**{plain(member.email)}** is no longer a member.", "members_remove_reason", "members_pick"
    )


def read_members(ledger: Ledger) -> list[Member]:
    """Every member, or an error that stops the page when the ledger cannot be read."""
    try:
        return ledger.members()
    except SQLAlchemyError as exc:
        st.error(
            f"The members cannot be read ({type(exc).__name__}). Check the ledger database "
            "(KEDA_DATABASE_URL or the data folder).",
            icon=":material/error:",
        )
        st.stop()
        raise AssertionError("unreachable") from None
