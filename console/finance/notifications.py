"""The Notifications page's pieces, and what every page may call to reach the notifier.

- ``configure(rt)`` hands the runtime's notifier (``kedacore.notify.Notifier``, a thread of
  ``console.runtime``) the console's secrets: SMTP (``[smtp]``) and the console's address
  (``[team] console_url`` / ``KEDA_CONSOLE_URL``). Cheap: call it on every page run. The
  notifier does not look before it was configured once.
- ``notify_now(rt)``: look now (after a refused send, a paused campaign…); never waits.
- The page: how notifications are sent (SMTP, the address links use), the recipients with
  their edit form (addresses in full, webhooks masked: their address is their secret; saved
  by a finance or admin member, re-checked with ``require`` and audited, webhooks masked in
  the audit log too), "Send a test notification", and the list of notifications.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from console.access import require
from console.views import local_time, plain
from kedacore.ledger import Ledger
from kedacore.ledger.notices import DELIVERED, FAILED, NO_RECIPIENT, PENDING, Notification
from kedacore.ledger.team import NOTIFY_EMAILS, NOTIFY_WEBHOOKS
from kedacore.notify import (
    KINDS,
    NotifyConfig,
    mask_webhook,
    masked_webhooks,
    notify_config,
    parse_emails,
    parse_webhooks,
)
from kedacore.notify.config import MAX_TARGETS, webhook_addresses
from kedacore.team import Permission

PAGE_SIZE = 25
EMAILS_KEY = "notifications_emails"
NEW_HOOK_KEY = "notifications_new_webhook"


def configure(rt: Any) -> NotifyConfig:
    """Give the runtime's notifier the console's secrets (every page run may call it)."""
    config = notify_config(st.secrets, os.environ)
    if getattr(rt, "notifier", None) is not None:
        rt.notifier.configure(config)
    return config


def notify_now(rt: Any) -> None:
    """Ask the notifier to look now rather than at its next interval (never waits)."""
    configure(rt)
    if getattr(rt, "notifier", None) is not None:
        rt.notifier.poke()


# -- plain functions (tests call them) ---------------------------------------------------------


def delivery_text(n: Notification, now: datetime | None = None) -> str:
    """Where a notification went, in one cell: ``e-mail a@x.com ✓ · webhook https://h/…abcd ✗``."""
    now = now or datetime.now(UTC)
    if not n.deliveries:
        if n.state == FAILED:
            return "not sent"
        if n.leased(now):
            return "being delivered"
        return "waiting to be sent" if not n.attempts else "interrupted: it is sent again"
    parts = []
    for d in n.deliveries:
        if d.channel == "none":
            parts.append(f"undelivered: {d.error}" if d.error == NO_RECIPIENT else d.error)
            continue
        channel = "e-mail" if d.channel == "email" else d.channel
        parts.append(f"{channel} {d.to} {'✓' if d.ok else '✗'}")
    return " · ".join(parts or ["not delivered"])


def outcome_text(n: Notification, tz: ZoneInfo | None = None) -> str:
    """``ok``; or each error, and whether it is tried again (when) or was given up (why)."""
    failed: dict[str, list[str]] = {}  # the same error once, with every target it hit
    for d in n.deliveries:
        if not d.ok and d.channel != "none":
            failed.setdefault(d.error, []).append(d.to)
    errors = [f"{', '.join(targets)}: {error}" for error, targets in failed.items()]
    if n.state == DELIVERED:
        return "ok"
    if n.state == PENDING and n.waits_for_recipients:
        return f"waiting: sent if a recipient is added on {n.day.isoformat()} (UTC day)"
    said = "; ".join(errors) or next((d.error for d in n.deliveries if d.error), "")
    if n.state == FAILED:
        why = n.note or "not tried again"
        return f"{said} — {why}" if said else why
    if n.next_attempt_at is not None and n.attempts:
        when = local_time(n.next_attempt_at, tz) if tz is not None else n.next_attempt_at
        missed = "did not reach everyone" if any(d.ok for d in n.deliveries) else "failed"
        again = f"attempt {n.attempts} {missed}; next try at {when}"
        return f"{said} — {again}" if said else again
    return said or "—"


def delivery_lines(n: Notification, now: datetime | None = None) -> list[str]:
    """Where a notification went, one target a line, with why it did not reach one."""
    lines = []
    for d in n.deliveries:
        if d.channel == "none":
            continue
        channel = "e-mail" if d.channel == "email" else d.channel
        if d.ok:
            lines.append(f"{channel} {d.to}: delivered")
        else:
            lines.append(f"{channel} {d.to}: not delivered — {d.error or 'no reason given'}")
    return lines or [delivery_text(n, now)]


def cause_text(n: Notification) -> str:
    """``Campaign paused (campaign 12)``."""
    label = KINDS.get(n.kind, n.kind)
    _, _, ref = n.cause.partition(":")
    if not ref or n.kind == "test":
        return label
    what = {"campaign_paused": "campaign", "campaign_failed": "campaign", "approval": "request"}
    return f"{label} ({what.get(n.kind, n.kind)} {ref.partition(':')[0]})"


def notifications_frame(items: Sequence[Notification], tz: ZoneInfo) -> pd.DataFrame:
    """The list as a table: when, cause, subject, where it went, ok or the error."""
    return pd.DataFrame(
        {
            "When": [local_time(n.created_at, tz) for n in items],
            "Cause": [cause_text(n) for n in items],
            "Subject": [n.subject for n in items],
            "Where it went": [delivery_text(n) for n in items],
            "Outcome": [outcome_text(n, tz) for n in items],
        }
    )


def keep_key(url: str) -> str:
    """The widget key of an existing webhook's "keep" box (a digest: never the address)."""
    return "notifications_keep_" + hashlib.sha256(url.encode()).hexdigest()[:12]


def new_targets(
    emails_text: str,
    current_hooks: Sequence[str],
    keep: Sequence[bool],
    added: str,
    *,
    allow_private: bool = False,
) -> tuple[list[str], list[str]]:
    """The recipients a save asks for; ValueError saying what is wrong (nothing saved).

    A webhook added is resolved and refused when it points at loopback, the local network or
    link-local (cloud metadata) addresses, unless ``allow_private``
    (``KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS``); every delivery checks again.
    """
    emails = parse_emails(emails_text)
    hooks = [url for url, kept in zip(current_hooks, keep, strict=True) if kept]
    new = parse_webhooks(added) if added.strip() else []
    for url in new:
        if url not in hooks:
            webhook_addresses(url, allow_private=allow_private)
    hooks = list(dict.fromkeys(hooks + new))
    if len(hooks) > MAX_TARGETS:
        raise ValueError(f"at most {MAX_TARGETS} webhooks")
    return emails, hooks


def save_targets(
    ledger: Ledger, emails: list[str], hooks: list[str], *, by: str, hooks_before: list[str]
) -> bool:
    """Save both lists (audited; webhooks masked in the audit log). True if anything changed."""
    changed = ledger.set_team_setting(NOTIFY_EMAILS, emails, by=by)
    shown = {"before": masked_webhooks(hooks_before), "after": masked_webhooks(hooks)}
    return ledger.set_team_setting(NOTIFY_WEBHOOKS, hooks, by=by, shown=shown) or changed


# -- the page's sections -----------------------------------------------------------------------


def how_sent(config: NotifyConfig, rt: Any, tz: ZoneInfo) -> None:
    """SMTP, the address links point at, and the watcher's state."""
    left, right = st.columns(2, gap="large")
    with left:
        if config.smtp is not None:
            smtp = config.smtp
            who = f", signing in as {plain(smtp.username)}" if smtp.username else ""
            st.markdown(
                f":material/mail: **E-mail** through {plain(smtp.where)}{who}, "
                f"from {plain(smtp.sender)}."
            )
        elif config.smtp_problem:
            st.error(
                f"**E-mail cannot be sent:** {plain(config.smtp_problem)}. Fix the `[smtp]` "
                "section of `.streamlit/secrets.toml` (docs/team.md) and reload.",
                icon=":material/mail:",
            )
        else:
            st.info(
                "**E-mail is off:** no `[smtp]` section in `.streamlit/secrets.toml` (host, "
                "port, username, password, from, security; docs/team.md). Webhooks still work.",
                icon=":material/mail:",
            )
        st.caption(f"Links in notifications open {plain(config.console_url)}")
        if config.allow_private_webhooks:
            st.caption(
                ":material/lan: Webhooks may reach loopback and local-network addresses "
                "(the operator set KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS=true)."
            )
    with right:
        notifier = getattr(rt, "notifier", None)
        if notifier is None:
            st.caption("The notifier is not running.")
            return
        every = f"every {notifier.interval:g} s" if notifier.interval > 0 else "only when asked"
        seen = local_time(notifier.last_look, tz) if notifier.last_look else "not yet"
        st.caption(
            f"The console looks for causes {every}: usage at the alert threshold, a cap "
            "refusing sends, the balance below its floor, a campaign paused or failed, "
            "something waiting for approval. Each cause once per UTC day; a delivery that "
            "fails is tried again after 1, 5 and 15 minutes, then every hour, for up to a "
            f"day. Last look: {seen}."
        )
        if notifier.last_error:
            st.warning(
                f"The last look failed: {plain(notifier.last_error)}", icon=":material/error:"
            )


def recipients(ledger: Ledger, config: NotifyConfig) -> None:
    """The addresses and masked webhooks notifications go to, and the form to change them."""
    state = st.session_state
    emails = [str(e) for e in ledger.team_setting(NOTIFY_EMAILS) or []]
    hooks = [str(h) for h in ledger.team_setting(NOTIFY_WEBHOOKS) or []]
    # The fields hold their values in the session (set before they are drawn, never passed
    # as value=): after a save they are set to what was saved — the new webhook's field
    # empty, so its secret is not left in the browser for the eye icon to show. Only
    # dropping the keys would not do: a browser sends the field's last value back.
    reset = state.pop("notifications_reset", False)
    if reset:
        for key in [k for k in state if str(k).startswith("notifications_keep_")]:
            del state[key]
    if reset or EMAILS_KEY not in state:
        state[EMAILS_KEY] = "\n".join(emails)
    if reset or NEW_HOOK_KEY not in state:
        state[NEW_HOOK_KEY] = ""
    for url in hooks:
        state.setdefault(keep_key(url), True)
    if not emails and not hooks:
        st.info(
            "Nobody receives notifications yet: add an e-mail address or a webhook below. "
            "Until then notifications are listed here, undelivered; those raised today are "
            "sent as soon as someone is added.",
            icon=":material/notifications_off:",
        )
    with st.form("notifications_form", border=True):
        text = st.text_area("E-mail addresses, one a line", key=EMAILS_KEY, height=110)
        st.markdown('**Webhooks** (Slack-compatible: JSON `{"text": …}`)')
        keep = []
        for url in hooks:
            keep.append(st.checkbox(f"Keep {plain(mask_webhook(url))}", key=keep_key(url)))
        if not hooks:
            st.caption("No webhook yet.")
        added = st.text_input(
            "Add a webhook address",
            key=NEW_HOOK_KEY,
            type="password",
            placeholder="https://hooks.slack.com/services/…",
            help="The address is a secret (anyone who has it can post to your channel): it is "
            "kept in the ledger and shown only masked, here and in the audit log. It must "
            "reach a public address: loopback, private and link-local ones are refused unless "
            "the operator set KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS=true.",
        )
        saved = st.form_submit_button("Save recipients", key="notifications_save", type="primary")
    if saved:
        actor = require(
            ledger,
            Permission.NOTIFICATIONS,
            "change where notifications go",
            target="notifications",
        )
        try:
            new_emails, new_hooks = new_targets(
                text, hooks, keep, added, allow_private=config.allow_private_webhooks
            )
        except ValueError as exc:
            st.error(f"**Nothing was saved.** {plain(exc)}", icon=":material/error:")
            return
        changed = save_targets(ledger, new_emails, new_hooks, by=actor.name, hooks_before=hooks)
        state["notifications_saved"] = "Recipients saved." if changed else "Nothing changed."
        state["notifications_reset"] = True
        st.rerun()
    message = state.pop("notifications_saved", None)
    if message:
        st.success(message, icon=":material/check:")


def send_test(ledger: Ledger, rt: Any) -> None:
    """The "Send a test notification" button and what became of the last one."""
    state = st.session_state
    if st.button(
        "Send a test notification",
        key="notifications_test",
        icon=":material/send:",
        help="Sends a short message to every address and webhook above now, and shows whether "
        "each got it.",
    ):
        actor = require(
            ledger, Permission.NOTIFICATIONS, "send a test notification", target="notifications"
        )
        configure(rt)
        with st.spinner("Sending…"):
            sent = rt.notifier.send_test(actor.name)
        state["notifications_test_id"] = sent.id
    shown = state.get("notifications_test_id")
    found = ledger.notification(shown) if shown else None
    if found is None:
        return
    for d in found.deliveries:
        channel = "e-mail" if d.channel == "email" else d.channel
        if d.channel == "none":
            st.warning(f"Test notification: {plain(d.error)}.", icon=":material/info:")
        elif d.ok:
            st.success(
                f"Test notification delivered: {channel} {plain(d.to)}", icon=":material/check:"
            )
        else:
            st.error(
                f"Test notification **not** delivered: {channel} {plain(d.to)} — {plain(d.error)}",
                icon=":material/error:",
            )


def look_now(ledger: Ledger, rt: Any) -> None:
    """The "Look for causes now" button (re-checked like every action)."""
    if st.button("Look for causes now", key="notifications_look", icon=":material/refresh:"):
        require(ledger, Permission.NOTIFICATIONS, "look for causes", target="notifications")
        notify_now(rt)
        st.toast("Looking now: new notifications appear here within a few seconds.")


def history(ledger: Ledger, tz: ZoneInfo) -> None:
    """Every notification, newest first, a page at a time; one read in full."""
    total = ledger.notification_count()
    if not total:
        st.caption("No notification yet.")
        return
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = 1
    if pages > 1:
        page = int(
            st.number_input(
                f"Page (of {pages:,})",
                min_value=1,
                max_value=pages,
                value=1,
                key="notifications_page",
            )
        )
    items = ledger.notifications(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    st.dataframe(
        notifications_frame(items, tz),
        hide_index=True,
        width="stretch",
        key="notifications_list",
        column_config={  # When and Cause whole; the rest in full under "Read one"
            "When": st.column_config.TextColumn(width=145),
            "Cause": st.column_config.TextColumn(width=190),
            "Subject": st.column_config.TextColumn(width=280),
            "Where it went": st.column_config.TextColumn(width=300),
            "Outcome": st.column_config.TextColumn(width=240),
        },
    )
    st.caption(
        f"{total:,} notification{'s' if total != 1 else ''}, newest first; times in your zone "
        f"({tz.key}). "
        f"Showing {(page - 1) * PAGE_SIZE + 1:,}–{(page - 1) * PAGE_SIZE + len(items):,}."
    )
    by_id = {n.id: n for n in items}
    chosen = st.selectbox(
        "Read one",
        list(by_id),
        format_func=lambda i: f"{local_time(by_id[i].created_at, tz)} · {by_id[i].subject}",
        key="notifications_read",
    )
    if chosen is not None:
        read(by_id[chosen], tz)


def read(n: Notification, tz: ZoneInfo) -> None:
    """One notification in full: what, when, where it went (a target a line), what became
    of it, and the message as it was sent (plain text)."""
    with st.container(border=True, key="notifications_details"):
        st.markdown(f"**{plain(n.subject)}**")
        st.caption(f"{local_time(n.created_at, tz)} ({tz.key}) · {plain(cause_text(n))}")
        st.markdown(
            "**Where it went**\n\n" + "\n".join(f"- {plain(line)}" for line in delivery_lines(n))
        )
        st.markdown(f"**Outcome:** {plain(outcome_text(n, tz))}")
        st.code(n.body, language=None, wrap_lines=True)
