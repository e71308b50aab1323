"""The Send page's views: the caps and character checks, the confirm dialog, the send itself
and its outcome. This console's recent sends from the ledger (the Recent sends table, and every
send still without an answer) are in :mod:`console.messaging.send_recent`.

A send is recorded in the ledger as *pending* (with its clientRef) before the request goes
out and completed with the answer (``kedacore.ledger.sends``), so a reload, a second tab or a
lost answer never hides it: the page lists the recent sends of every session, a send in
flight as such, and offers *Check what happened* for a pending send whose answer was lost —
the same request with the same clientRef, which KedaSMS answers with the first result.
The send waits in ``st.session_state["send_pending"]`` between the Send click and the dialog;
the last outcome of this session is ``st.session_state["send_last"]``.

Over the team's approval threshold (members sign in), Confirm sends nothing: the send is
recorded as *awaiting* with its approval request (``kedacore.ledger.approvals``) and goes out
— with the same clientRef, through :func:`deliver` — when another member approves it on the
Approvals page. Every answer is audited with who made the send go out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console import access
from console.audience import optouts
from console.audience.templates import mark_used
from console.messaging import approval_rules as rules
from console.shell import Console, account_changed, advice
from console.views import money, plain
from console.wording import explain
from kedacore import APIError, ConfigurationError, KedaError
from kedacore.api.types import Balance, Limits, SendResult
from kedacore.ledger import LedgerSend
from kedacore.ledger.approvals import ApprovalError
from kedacore.money import to_micros
from kedacore.segments import GSM7_EXTENSION, UCS2, count_segments
from kedacore.team import Actor, Permission
from kedacore.words import counted

# -- checks on the form (no Streamlit) ----------------------------------------------------


def units_note(content: str) -> str | None:
    """Why the count differs from the characters typed (Markdown), or None when it does not.

    ``36 characters (36 emoji count as 2 each: 72 units)``: emoji (and any character beyond
    U+FFFF) take two of UCS-2's units, and GSM-7's extension characters (``€ [ ] { } ~ ^ | \\``)
    two septets; a segment holds units, not characters.
    """
    info = count_segments(content)
    if info.units == info.characters:
        return None
    if info.encoding == UCS2:
        doubles = [c for c in content if ord(c) > 0xFFFF]
        emoji = all(0x1F000 <= ord(c) <= 0x1FAFF for c in doubles)
        what = f"{len(doubles):,} emoji" if emoji else f"{len(doubles):,} of them, beyond U+FFFF,"
        return f"{info.characters:,} characters ({what} count as 2 each: {info.units:,} units)"
    doubles = [c for c in content if c in GSM7_EXTENSION]
    names = [
        f"“{plain(c)}”" if c.isprintable() else f"U+{ord(c):04X}" for c in dict.fromkeys(doubles)
    ]
    listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    return (
        f"{info.characters:,} characters ({len(doubles):,} of them count as 2 each: "
        f"{info.units:,} units): {listed} {'are' if len(names) > 1 else 'is'} in GSM-7's "
        "extension table"
    )


@dataclass(frozen=True, slots=True)
class CapCheck:
    """What today's caps and the balance say about a send, before it is sent (Markdown)."""

    refusals: tuple[str, ...] = ()  # KedaSMS will refuse it: sending is not offered
    alerts: tuple[str, ...] = ()  # it goes through, and raises the usage alert
    over_caps: bool = False
    over_balance: bool = False


def cap_check(
    limits: Limits | None, balance: Balance | None, messages: int, total: Decimal | None
) -> CapCheck:
    """Whether a send of ``messages`` costing ``total`` fits today's caps and the balance."""
    if limits is None or balance is None or messages == 0:
        return CapCheck()
    cur, usage = balance.currency, limits.usage
    refuse = "**KedaSMS will refuse this send:**"
    later = "raise the cap on the Limits page, or wait until it resets at 00:00 UTC"
    go_on = "Caps do not block sends, so it will go through and raise the usage alert."
    refusals: list[str] = []
    alerts: list[str] = []
    if limits.daily_sms_cap is not None:
        cap = limits.daily_sms_cap
        left = max(cap - usage.sms_sent, 0)
        if messages > left:
            over = (
                f"{messages:,} messages would pass today's SMS cap ({usage.sms_sent:,} of "
                f"{cap:,} sent, {left:,} left)"
            )
            if not limits.block_on_limit:
                alerts.append(f"{over}. {go_on}")
            elif left:
                s = "s" if left != 1 else ""
                refusals.append(f"{refuse} {over}. Send to at most {left:,} number{s}, {later}.")
            else:
                refusals.append(f"{refuse} {over}. {later[0].upper()}{later[1:]}.")
    if limits.daily_spend_cap is not None and total is not None:
        cap_m = limits.daily_spend_cap
        left_m = max(cap_m - usage.spend, Decimal(0))
        if total > left_m:
            over = (
                f"{money(total, cur)} would pass today's spend cap ({money(usage.spend, cur)} of "
                f"{money(cap_m, cur)} spent, {money(left_m, cur)} left)"
            )
            if limits.block_on_limit:
                refusals.append(
                    f"{refuse} {over}. Send to fewer numbers or a shorter text, {later}."
                )
            else:
                alerts.append(f"{over}. {go_on}")
    over_caps = bool(refusals)
    over_balance = total is not None and total > balance.balance
    if over_balance:
        refusals.append(
            f"{refuse} it costs {money(total, cur)} and the balance is "
            f"{money(balance.balance, cur)}. Top up the account (in the sandbox: on the Settings "
            "page), or send to fewer numbers."
        )
    return CapCheck(tuple(refusals), tuple(alerts), over_caps, over_balance)


def approval_note(console: Console, total: Decimal | None, currency: str) -> None:
    """Over the approval threshold: that it will wait (or, for the local operator, why not)."""
    gate = rules.gate(console.ledger, console.actor)
    if gate.holds(total):
        st.info(
            f"Over the team's approval threshold of {money(gate.threshold, currency)}: it will "
            "wait for a finance or admin member's approval before anything is sent.",
            icon=":material/approval:",
        )
    elif note := gate.unheld(total, currency):
        st.caption(note)


def show_check(check: CapCheck) -> None:
    """The refusals in red, the alerts in orange (on the form, and again in the dialog)."""
    for text in check.refusals:
        st.error(text, icon=":material/block:")
    for text in check.alerts:
        st.warning(text, icon=":material/warning:")


# -- the send (no Streamlit) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one request for a recorded send ended (or why none went out yet)."""

    # sent / refused / unknown (no clear answer) / unrecorded (sent, ledger failed) /
    # awaiting (over the approval threshold: nothing sent until another member approves it)
    kind: str
    client_ref: str
    result: SendResult | None = None
    error: KedaError | None = None
    problem: str = ""  # the ledger's failure, for "unrecorded"


def definite(exc: KedaError) -> bool:
    """Whether an error means the send certainly did not go out (an answer below 500)."""
    return isinstance(exc, ConfigurationError) or (
        isinstance(exc, APIError) and exc.http_status < 500
    )


def deliver(console: Console, record: LedgerSend, *, actor: str) -> Delivery:
    """Send a recorded send with its clientRef and record the answer in the ledger, audited
    as ``actor``'s (who made it go out: its sender, or the member who approved it).

    No Streamlit call in here: a rerun or a closed tab cannot cut it between the request
    and the record of its answer.
    """
    ref, ledger = record.client_ref, console.ledger
    try:
        result = console.client.sms.send(
            record.country,
            list(record.recipients),
            record.content,
            sender_id=record.sender,
            track_click=record.track_click,
            callback_url=console.callback_url,
            client_ref=ref,
        )
    except KedaError as exc:
        told = explain(exc, currency=record.currency)
        try:
            if definite(exc):
                ledger.refuse_send(ref, told, code=getattr(exc, "code", None), actor=actor)
            else:
                ledger.note_send_error(ref, told, actor=actor)
        except (SQLAlchemyError, OSError):
            pass  # the send stays pending in the ledger: checking it is still right
        return Delivery("refused" if definite(exc) else "unknown", ref, error=exc)
    try:
        ledger.finish_send(ref, result, actor=actor)
    except (SQLAlchemyError, OSError) as exc:
        return Delivery("unrecorded", ref, result=result, problem=type(exc).__name__)
    return Delivery("sent", ref, result=result)


def session_tag() -> str:
    """A short random name for this browser session (a reload is a new one)."""
    return st.session_state.setdefault("send_session", secrets.token_hex(3))


def start_send(
    console: Console, pending: dict[str, Any], currency: str, actor: Actor
) -> Delivery | str:
    """Record the send, then send it — or, over the approval threshold, hold it for another
    member's approval (nothing sent); a sentence (Markdown) if it could not be recorded, in
    which case nothing was sent."""
    estimate = pending["estimate"]
    gate = rules.gate(console.ledger, actor)
    facts = {
        "country": pending["country"],
        "sender": pending["sender"],
        "content": pending["content"],
        "recipients": pending["numbers"],
        "currency": currency,
        "track_click": pending["track"],
        "session": session_tag(),
    }
    try:
        if gate.holds(estimate):
            assert gate.threshold_micros is not None
            console.ledger.hold_send(
                pending["client_ref"],
                estimated_micros=to_micros(estimate),
                threshold_micros=gate.threshold_micros,
                created_by=actor.name,
                **facts,
            )
            return Delivery("awaiting", pending["client_ref"])
        record = console.ledger.begin_send(
            pending["client_ref"],
            estimated_micros=to_micros(estimate) if estimate is not None else None,
            created_by=actor.name,
            **facts,
        )
    except ApprovalError as exc:  # its reference was used already (cannot happen twice)
        return f"**Nothing was sent:** {plain(exc)}."
    except (SQLAlchemyError, OSError) as exc:
        return (
            "**Nothing was sent:** the console could not record the send in its ledger first "
            f"({plain(type(exc).__name__)}). Check KEDA\\_DATABASE\\_URL and the free space of "
            "the data folder, then send again."
        )
    if not record.pending:  # the same confirmation twice: it was answered already
        return Delivery(record.state, record.client_ref)
    return deliver(console, record, actor=actor.name)


# -- Streamlit views ----------------------------------------------------------------------


def _dismiss() -> None:
    st.session_state.pop("send_pending", None)


@st.dialog("Send this message?", on_dismiss=_dismiss)
def confirm(console: Console, pending: dict[str, Any], currency: str) -> None:
    """Ask before spending money, with the caps checked again; the send happens on Confirm."""
    n = len(pending["numbers"])
    st.markdown(
        f"To **{counted(n, 'recipient')}** in **{plain(pending['country'])}**"
        + (f" from **{plain(pending['sender'])}**" if pending["sender"] else "")
        + f", {pending['segments']} segment(s) each."
    )
    st.text(pending["content"])
    st.markdown(f"Estimated cost: **{money(pending['estimate'], currency)}**")
    if pending.get("opted_out") and pending.get("transactional"):
        st.caption(f"Transactional: {counted(pending['opted_out'], 'opted-out number')} included.")
    elif pending.get("opted_out") or pending.get("recent_left_out"):
        st.caption(optouts.left_out_sentence(pending))  # 2 opted out, left out; 1 messaged…
    check = cap_check(console.limits, console.balance, n, pending["estimate"])
    show_check(check)
    gate = rules.gate(console.ledger, console.actor)
    holds = gate.holds(pending["estimate"])
    if holds:
        approvers = console.ledger.approvers(besides=console.actor.name)
        st.info(
            f"**It waits for approval:** {money(pending['estimate'], currency)} is over the "
            f"team's approval threshold of {money(gate.threshold, currency)}. Nothing is sent "
            f"until {plain(rules.who_approves(approvers))} approves it on the Approvals page.",
            icon=":material/approval:",
        )
    elif note := gate.unheld(pending["estimate"], currency):
        st.caption(note)
    if console.sandbox:
        st.caption("Sandbox: nothing leaves this machine.")
    yes, no = st.columns(2)
    if yes.button(
        "Confirm and ask for approval" if holds else "Confirm and send",
        key="send_confirm",
        type="primary",
        width="stretch",
        disabled=bool(check.refusals),
    ):
        actor = access.require(console.ledger, Permission.SEND, "send messages", target="send")
        transactional = bool(pending.get("transactional"))
        late = optouts.recheck(console, pending["numbers"], transactional)  # at the click
        if late is not None:
            st.session_state["send_last"] = late
            _dismiss()
            st.rerun()
        with st.spinner("Sending…"):
            outcome_ = start_send(console, pending, currency, actor)
        if transactional and not isinstance(outcome_, str) and pending.get("opted_out"):
            optouts.audit_transactional(
                console.ledger, actor.name, pending["client_ref"], pending["opted_out"], n
            )
        st.session_state["send_last"] = outcome_
        if not isinstance(outcome_, str):  # recorded: its template (if any) was used
            mark_used(console.ledger, "send")
        _dismiss()
        account_changed()
        st.rerun()
    if no.button("Cancel", key="send_cancel", width="stretch"):
        _dismiss()
        st.rerun()


def last_outcome(console: Console) -> None:
    """This session's last send: its task and msgids, or why it was not sent, or what to do."""
    last = st.session_state.get("send_last")
    if last is None:
        return
    if isinstance(last, str):
        st.error(last, icon=":material/error:")
        return
    told = (
        advice(last.error, sandbox=console.sandbox, currency=console.currency) if last.error else ""
    )
    if last.kind == "awaiting":
        waiting(console, last.client_ref)
    elif last.kind == "refused":
        st.error(f"**The message was not sent.** {told}", icon=":material/block:")
    elif last.kind == "unknown":
        st.warning(
            f"**No clear answer from KedaSMS: the message may have gone out.** {told} "
            "**Do not send it again:** use *Check what happened* below.",
            icon=":material/help:",
        )
    elif last.result is not None:
        _sent(last.result, last.problem)


def waiting(console: Console, client_ref: str) -> None:
    """A send held for approval: what it waits for, and who can approve it."""
    item = console.ledger.approval_of("send", client_ref)
    if item is None:
        return
    if not item.waiting:
        st.info(plain(rules.decision_text(item)), icon=":material/approval:")
        return
    approvers = console.ledger.approvers(besides=item.requested_by)
    st.info(
        f"**Waiting for approval — nothing was sent.** It costs "
        f"{money(item.estimate, item.currency)}, over the team's approval threshold of "
        f"{money(item.threshold, item.currency)}: {plain(rules.who_approves(approvers))} can "
        "approve it on the Approvals page, where you can also withdraw it. Its reference "
        f"is {plain(item.ref)}; it is sent with it once approved.",
        icon=":material/approval:",
    )
    st.page_link("pages/approvals.py", label="Approvals", icon=":material/arrow_forward:")


def _sent(result: SendResult, problem: str) -> None:
    n = len(result.messages)
    st.success(
        f"Sent — task **{result.task_id}**: {counted(n, 'message')}, "
        f"**{money(result.debited_amount, result.currency)}** debited "
        f"({result.segments} segment(s) billed).",
        icon=":material/check_circle:",
    )
    if problem:
        st.warning(
            f"The console could not record this send in its ledger ({plain(problem)}): the "
            "Status page can still look its msgids up. Check KEDA\\_DATABASE\\_URL.",
            icon=":material/database:",
        )
    st.code("\n".join(f"{m.msgid}  {m.recipient}" for m in result.messages[:20]), language=None)
    if n > 20:
        st.dataframe(
            pd.DataFrame([{"msgid": m.msgid, "recipient": m.recipient} for m in result.messages]),
            hide_index=True,
            key="send_result_table",
        )
    if st.button("Follow them on the Status page", key="send_follow"):
        st.session_state["status_ids"] = [m.msgid for m in result.messages]
        st.session_state["status_label"] = f"task {result.task_id}"
        st.switch_page("pages/status.py")
