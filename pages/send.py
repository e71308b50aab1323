"""Messaging → Send: one text to one or many numbers, with its cost known before sending.

Every send is in the ledger before its request goes out (pending, then sent or refused), so
the page lists this console's recent sends — a reload or another tab loses nothing — and
offers *Check what happened* for one whose answer was lost. Over the team's approval
threshold a send waits for another member's approval instead (Approvals page). Views:
``console.messaging.send``.
"""

from __future__ import annotations

import secrets

import streamlit as st

from console.audience import optouts as ov
from console.audience import templates as tv
from console.messaging import send as sv
from console.messaging import send_recent as recent
from console.messaging import send_schedule as later
from console.shell import account_changed, country_select, keda_errors, page_setup
from console.views import (
    check_numbers,
    describe_characters,
    estimate_send,
    headroom,
    money,
    plain,
)
from kedacore.senders import sender_problem
from kedacore.team import Permission
from kedacore.words import counted

MAX_RECIPIENTS = 1000  # one send request takes 1 to 1,000 numbers (DESIGN.md)

console = page_setup(
    "Send", "One message to one or many numbers of one country.", needs=Permission.SEND
)
with keda_errors("The price table could not be read", sandbox=console.sandbox):
    pricing = console.pricing()
state = st.session_state
cur = pricing.currency
sv.last_outcome(console)  # this session's last send, above the form where it is seen
later.said_later()  # or what its send for later became
recent.open_sends(console)  # any send without an answer yet, whoever sent it

compose, summary = st.columns([3, 2], gap="large")

with compose:
    tv.starters(  # a saved template fills the text, a sender profile the sender and country
        console.ledger,
        "send",
        text_key="send_content",
        sender_key="send_sender",
        country_key="send_country",
        countries=sorted(pricing.prices),
    )
    country = country_select(
        "Country",
        pricing,
        cur,
        key="send_country",
        help="Decides the price. Numbers of another country are refused.",
    )
    numbers_text = st.text_area(
        "Phone numbers",
        key="send_numbers",
        height=110,
        placeholder="One per line (or separated by commas): national, like 2015550123, "
        "or international, like +12015550123",
    )
    report = check_numbers(numbers_text, country)
    if report.invalid:
        lines = "\n".join(f"- “{plain(n.raw)}” — {plain(n.error)}" for n in report.invalid[:20])
        more = f"\n- … and {len(report.invalid) - 20} more" if len(report.invalid) > 20 else ""
        st.error(
            f"**{len(report.invalid)} number(s) cannot be sent to** — correct or remove them:\n"
            f"{lines}{more}",
            icon=":material/phonelink_erase:",
        )
    if report.valid or report.duplicates:
        dupes = f" · {len(report.duplicates)} duplicate(s) left out" if report.duplicates else ""
        st.caption(f"{counted(len(report.valid), 'valid recipient')}{dupes}")
    # Opted-out numbers left out (or, transactional, included); the frequency guard.
    guarded = ov.guard(console, report.e164, key="send")
    sender = st.text_input(
        "Sender id (optional)",
        key="send_sender",
        max_chars=16,
        help="1–11 letters and digits (A–Z, 0–9), or a number of up to 15 digits with an "
        "optional leading +. Empty: KedaSMS's default.",
    )
    sender_id = sender.strip()
    bad_sender = sender_problem(sender_id) if sender_id else None
    if bad_sender:  # the gateway's own rule (kedacore.senders): refused there, so said here
        st.error(
            f"**Sender id “{plain(sender_id)}”** {plain(bad_sender)}: no spaces, accents or "
            "punctuation.",
            icon=":material/badge:",
        )
    content = st.text_area(
        "Message",
        key="send_content",
        height=140,
        help="The counter updates when you leave the box or press Ctrl+Enter.",
    )
    track = st.checkbox(
        "Track clicks (each link becomes a short link per recipient)", key="send_track"
    )
    schedule, later_blockers = later.when_inputs(console)  # now, or later (as a campaign)

estimate = estimate_send(
    content,
    recipients=len(guarded.numbers),
    price_per_segment=pricing.price_for(country),
    currency=cur,
    track_click=track,
    short_base=console.runtime.short_link_base,
)
room = (
    headroom(console.limits, console.balance, estimate.recipients, estimate.total)
    if console.limits and console.balance
    else None
)
check = sv.cap_check(console.limits, console.balance, estimate.recipients, estimate.total)

with summary, st.container(border=True):
    st.markdown("**Estimate**")
    a, b, c = st.columns(3)
    a.metric("Characters", f"{estimate.characters:,}")
    b.metric("Segments", estimate.segments)
    c.metric("Recipients", f"{estimate.recipients:,}")
    note = sv.units_note(content)
    if note:  # emoji and GSM-7's extension characters count as 2
        st.caption(note)
    per = " units" if note else ""
    capacity = (
        f"160{per} per segment, 153 when longer"
        if estimate.encoding == "GSM-7"
        else f"70{per} per segment, 67 when longer"
    )
    st.markdown(f"Encoding **{estimate.encoding}** ({capacity})")
    if estimate.ucs2_characters:
        st.caption(
            "UCS-2 because of "
            + describe_characters(estimate.ucs2_characters)
            + ". Without them the text would be GSM-7."
        )
    elif estimate.segments:
        st.caption(
            f"{estimate.remaining} more {per.strip() or 'characters'} fit in the last segment."
        )
    if estimate.urls_rewritten:
        st.caption(
            f"Counted with {estimate.urls_rewritten} link(s) shortened as trackClick sends them."
        )
    st.metric(
        "Estimated cost",
        money(estimate.total, cur) if estimate.recipients and estimate.segments else "—",
        help=f"{money(estimate.price_per_segment, cur)} per segment × {estimate.segments} "
        f"segment(s) × {counted(estimate.recipients, 'recipient')}",
    )
    if room is not None:
        if room.sms_left is None and room.spend_left is None:
            st.caption("No daily cap is set.")
        else:
            n = room.sms_left
            sms_left = "no SMS cap" if n is None else f"{n:,} message{'s' if n != 1 else ''}"
            spend_left = "no spend cap" if room.spend_left is None else money(room.spend_left, cur)
            st.caption(f"Left under today's caps: **{sms_left}** · **{spend_left}**")
    sv.show_check(check)  # what the caps and the balance say: said again in the dialog
    sv.approval_note(console, estimate.total if estimate.recipients else None, cur)

    blockers = []
    if not report.valid:
        blockers.append("add at least one valid number")
    if report.valid and not guarded.numbers:
        blockers.append("every number is left out (opted out or messaged recently)")
    if report.invalid:
        blockers.append("correct the numbers listed in red")
    if len(report.valid) > MAX_RECIPIENTS:
        blockers.append(
            f"send to at most {MAX_RECIPIENTS:,} numbers at once (Campaigns takes more)"
        )
    if not content.strip():
        blockers.append("write the message")
    if estimate.too_long:
        blockers.append(f"shorten the message to 10 segments (it has {estimate.segments})")
    if bad_sender:
        blockers.append("correct the sender id")
    if check.over_caps and schedule is None:  # a send for later: the caps of its day, then
        blockers.append("stay within today's caps (see above)")
    if check.over_balance:
        blockers.append("stay within the balance")
    blockers += later_blockers
    if schedule is not None and guarded.transactional:
        blockers.append("send a transactional message now (When: Now)")
    clicked = st.button(
        "Send later…" if schedule is not None else "Send…",
        key="send_submit",
        type="primary",
        disabled=bool(blockers),
        width="stretch",
    )
    if blockers:
        st.caption("To send: " + "; ".join(blockers) + ".")

if clicked and not blockers:
    state["send_pending"] = {
        "country": country,
        "numbers": list(guarded.numbers),
        "transactional": guarded.transactional,
        "opted_out": len(guarded.opted_out),
        "recent_left_out": len(guarded.recent) if guarded.recent_left_out else 0,
        "sender": sender_id or None,
        "content": content,
        "track": track,
        "estimate": estimate.total,
        "segments": estimate.segments,
        # One reference per confirmation: a retried or double-clicked send is sent once.
        "client_ref": "console-" + secrets.token_hex(12),
        "schedule": schedule,  # None: now
    }
    account_changed()  # the dialog checks the caps again, against usage read afresh
    st.rerun()

if "send_pending" in state and state["send_pending"].get("schedule") is not None:
    later.confirm_later(console, state["send_pending"], pricing)
elif "send_pending" in state:
    sv.confirm(console, state["send_pending"], cur)

recent.recent_sends(console)
