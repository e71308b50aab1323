"""Messaging → Send: one text to one or many numbers, with its cost known before sending."""

from __future__ import annotations

import secrets

import pandas as pd
import streamlit as st

from console.shell import account_changed, advice, country_select, keda_errors, page_setup
from console.views import (
    check_numbers,
    describe_characters,
    estimate_send,
    headroom,
    money,
    plain,
)
from kedacore import KedaError
from kedacore.money import to_micros

MAX_RECIPIENTS = 1000  # one send request takes 1 to 1,000 numbers (DESIGN.md)

console = page_setup("Send", "One message to one or many numbers of one country.")
with keda_errors("The price table could not be read", sandbox=console.sandbox):
    pricing = console.pricing()
state = st.session_state
cur = pricing.currency
outcome = st.container()  # the last send's result, above the form where it is seen

compose, summary = st.columns([3, 2], gap="large")

with compose:
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
        st.caption(f"{len(report.valid)} valid recipient(s){dupes}")
    sender = st.text_input(
        "Sender id (optional)",
        key="send_sender",
        max_chars=15,
        help="Up to 11 letters and digits, or a number of up to 15 digits.",
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

estimate = estimate_send(
    content,
    recipients=len(report.valid),
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

with summary, st.container(border=True):
    st.markdown("**Estimate**")
    a, b, c = st.columns(3)
    a.metric("Characters", f"{estimate.characters:,}")
    b.metric("Segments", estimate.segments)
    c.metric("Recipients", f"{estimate.recipients:,}")
    capacity = (
        "160 per segment, 153 when longer"
        if estimate.encoding == "GSM-7"
        else ("70 per segment, 67 when longer")
    )
    st.markdown(f"Encoding **{estimate.encoding}** ({capacity})")
    if estimate.ucs2_characters:
        st.caption(
            "UCS-2 because of "
            + describe_characters(estimate.ucs2_characters)
            + ". Without them the text would be GSM-7."
        )
    elif estimate.segments:
        st.caption(f"{estimate.remaining} more characters fit in the last segment.")
    if estimate.urls_rewritten:
        st.caption(
            f"Counted with {estimate.urls_rewritten} link(s) shortened as trackClick sends them."
        )
    st.metric(
        "Estimated cost",
        money(estimate.total, cur) if estimate.recipients and estimate.segments else "—",
        help=f"{money(estimate.price_per_segment, cur)} per segment × {estimate.segments} "
        f"segment(s) × {estimate.recipients} recipient(s)",
    )
    if room is not None:
        if room.sms_left is None and room.spend_left is None:
            st.caption("No daily cap is set.")
        else:
            sms_left = "no SMS cap" if room.sms_left is None else f"{room.sms_left:,} messages"
            spend_left = "no spend cap" if room.spend_left is None else money(room.spend_left, cur)
            st.caption(f"Left under today's caps: **{sms_left}** · **{spend_left}**")
        for problem in room.problems:
            st.warning(problem, icon=":material/warning:")

    blockers = []
    if not report.valid:
        blockers.append("add at least one valid number")
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
    clicked = st.button(
        "Send…", key="send_submit", type="primary", disabled=bool(blockers), width="stretch"
    )
    if blockers:
        st.caption("To send: " + "; ".join(blockers) + ".")

if clicked and not blockers:
    state["send_pending"] = {
        "country": country,
        "numbers": report.e164,
        "sender": sender.strip() or None,
        "content": content,
        "track": track,
        "estimate": estimate.total,
        "segments": estimate.segments,
        # One reference per confirmation: a retried or double-clicked send is sent once.
        "client_ref": "console-" + secrets.token_hex(12),
    }


def _dismiss() -> None:
    state.pop("send_pending", None)


@st.dialog("Send this message?", on_dismiss=_dismiss)
def confirm(pending: dict) -> None:
    """Ask before spending money; the send happens only on Confirm."""
    n = len(pending["numbers"])
    st.markdown(
        f"To **{n} recipient(s)** in **{plain(pending['country'])}**"
        + (f" from **{plain(pending['sender'])}**" if pending["sender"] else "")
        + f", {pending['segments']} segment(s) each."
    )
    st.text(pending["content"])
    st.markdown(f"Estimated cost: **{money(pending['estimate'], cur)}**")
    if console.sandbox:
        st.caption("Sandbox: nothing leaves this machine.")
    yes, no = st.columns(2)
    if yes.button("Confirm and send", key="send_confirm", type="primary", width="stretch"):
        try:
            result = console.client.sms.send(
                pending["country"],
                pending["numbers"],
                pending["content"],
                sender_id=pending["sender"],
                track_click=pending["track"],
                callback_url=console.callback_url,
                client_ref=pending["client_ref"],
            )
        except KedaError as exc:
            state["send_error"] = advice(exc, sandbox=console.sandbox)
            state.pop("send_result", None)
            _dismiss()
            st.rerun()
        _dismiss()
        account_changed()
        console.ledger.record_send(
            result,
            country=pending["country"],
            sender=pending["sender"],
            content=pending["content"],
            client_ref=pending["client_ref"],
            estimated_micros=to_micros(pending["estimate"]) if pending["estimate"] else None,
        )
        state.pop("send_error", None)
        state["send_result"] = {"result": result, "estimate": pending["estimate"]}
        st.rerun()
    if no.button("Cancel", key="send_cancel", width="stretch"):
        _dismiss()
        st.rerun()


if "send_pending" in state:
    confirm(state["send_pending"])

if "send_error" in state:
    outcome.error(f"**The message was not sent.** {state['send_error']}", icon=":material/error:")

if "send_result" in state:
    with outcome:
        result = state["send_result"]["result"]
        n = len(result.messages)
        st.success(
            f"Sent — task **{result.task_id}**: {n} message(s), "
            f"**{money(result.debited_amount, result.currency)}** debited "
            f"({result.segments} segment(s) billed).",
            icon=":material/check_circle:",
        )
        listing = "\n".join(f"{m.msgid}  {m.recipient}" for m in result.messages[:20])
        st.code(listing, language=None)
        if n > 20:
            st.dataframe(
                pd.DataFrame(
                    [{"msgid": m.msgid, "recipient": m.recipient} for m in result.messages]
                ),
                hide_index=True,
                key="send_result_table",
            )
        if st.button("Follow them on the Status page", key="send_follow"):
            state["status_ids"] = [m.msgid for m in result.messages]
            state["status_label"] = f"task {result.task_id}"
            st.switch_page("pages/status.py")
