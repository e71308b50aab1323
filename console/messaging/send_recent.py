"""The Send page's recent sends, from the ledger: the Recent sends table (every session's
sends, refused and held ones included) with the details of the row selected, and — above the
form — every send still without an answer, with *Check what happened* for one whose answer was
lost (the same request with the same clientRef, through :func:`console.messaging.send.deliver`).

The table refreshes itself while a send is in flight. The send itself, its confirm dialog and
its outcome are in :mod:`console.messaging.send`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console import access
from console.messaging import approval_rules as rules
from console.messaging.send import deliver, session_tag
from console.shell import Console, account_changed
from console.views import local_time, money, plain
from kedacore.ledger import LedgerSend
from kedacore.team import Permission

IN_FLIGHT = timedelta(seconds=60)  # the client's timeout and retries fit well within it
CHECKABLE = timedelta(hours=23)  # KedaSMS keeps a clientRef 24 h: later, a check sends again
RECENT = 20  # sends listed
REFRESH = 2  # seconds between looks at the ledger while a send is in flight
STATE_WORDS = {"DELIVERED": "delivered", "UNDELIVERED": "undelivered", "FAILED": "failed"}
HELD = ("awaiting", "rejected", "withdrawn")  # did not go out, for the team's approval
REFUSALS = {  # the service's code of a refusal, in a few words (the whole why: select the row)
    "3002": "over today's SMS cap",
    "3003": "over today's spend cap",
    "3001": "the balance is too low",
    "2001": "a field was refused",
    "4029": "too many requests",
}


# -- the recent sends (no Streamlit) ------------------------------------------------------


def who(record: LedgerSend, session: str) -> str:
    here = record.session == session
    if record.created_by:
        return record.created_by + (" (this session)" if here else "")
    return "this session" if here else "another session"


def held(record: LedgerSend) -> tuple[str, str]:
    """(outcome, why) of a send held for approval: ``("Rejected by fin@example.com", "Not
    this week")`` — the ledger keeps ``Rejected by <who>: <reason>``."""
    if record.state == "awaiting":
        return "Waiting for approval", ""
    decision, _, reason = (record.error or "").partition(": ")
    if not decision:
        return ("Rejected" if record.state == "rejected" else "Withdrawn"), ""
    if record.state == "withdrawn":  # "Withdrawn by <who> before approval"
        decision = decision.removesuffix(" before approval")
        reason = reason or "before approval"
    return decision, reason


def outcome(record: LedgerSend, now: datetime, counts: dict[str, int]) -> str:
    """What became of a send, in a few words (plain text, for a table cell; the whole why is
    in :func:`why`)."""
    if record.state in HELD:
        return held(record)[0]
    if record.state == "sent":
        done = [f"{counts[s]:,} {w}" for s, w in STATE_WORDS.items() if counts.get(s)]
        going = counts.get("QUEUED", 0) + counts.get("SENT", 0)
        if going:
            done.append(f"{going:,} on the way")
        return "Sent: " + ", ".join(done) if done else "Sent"
    if record.state == "refused":
        short = REFUSALS.get(record.error_code or "")
        if short is None:
            first = (record.error or "KedaSMS refused it").split(". ")[0].rstrip(".")
            short = first if len(first) <= 60 else first[:59] + "…"
        return f"Refused: {short}"
    if record.error is None and now - record.created_at < IN_FLIGHT:
        return "In flight: no answer yet"
    if now - record.updated_at < CHECKABLE:
        return "No answer: check what happened (above)"
    return "No answer for over 23 h: look its numbers up on the Status page"


def why(record: LedgerSend) -> str:
    """Why a send was not sent (the approver's reason, the service's refusal) or has no
    answer yet, in full (plain text); empty for a send that went out."""
    if record.state in HELD:
        return held(record)[1]
    if record.state == "refused" or record.pending:
        return record.error or ""
    return ""


def cost(record: LedgerSend) -> str:
    """Debited once sent; the estimate until then; nothing for a refusal."""
    if record.debited is not None:
        return money(record.debited, record.currency)
    if record.state in ("refused", "rejected", "withdrawn"):
        return "not charged"
    if record.estimated is not None:
        return f"{money(record.estimated, record.currency)} (estimate)"
    return "—"


def when(value: datetime, now: datetime, tz: ZoneInfo) -> str:
    """The time of day for today's sends, the date and minute for older ones."""
    shown = local_time(value, tz)
    return shown[11:] if shown[:10] == local_time(now, tz)[:10] else shown[:16]


COLUMNS = {  # what became of a send and why first: the rest scrolls
    "When": st.column_config.TextColumn(width=70),
    "Outcome": st.column_config.TextColumn(width=200),
    "Why": st.column_config.TextColumn(
        width=330, help="The approver's reason, or the refusal, in full (select the row)"
    ),
    "Recipients": st.column_config.NumberColumn(width=80),
    "Country": st.column_config.TextColumn(width=60),
    "Cost": st.column_config.TextColumn(width=120),
    "By": st.column_config.TextColumn(width=150),
    "Task": st.column_config.TextColumn(width=110),
    "Message": st.column_config.TextColumn(width=200),
}


def recent_frame(
    records: list[LedgerSend],
    *,
    now: datetime,
    tz: ZoneInfo,
    session: str,
    counts: dict[str, dict[str, int]],
) -> pd.DataFrame:
    """The Recent sends table: plain text cells, newest first."""
    return pd.DataFrame(
        {
            "When": [when(r.created_at, now, tz) for r in records],
            "Outcome": [outcome(r, now, counts.get(r.task_id or "", {})) for r in records],
            "Why": [why(r) for r in records],
            "Recipients": [r.recipient_count for r in records],
            "Country": [r.country for r in records],
            "Cost": [cost(r) for r in records],
            "By": [who(r, session) for r in records],
            "Task": [r.task_id or "" for r in records],
            "Message": [
                ("(test) " if r.test else "")  # a campaign's test send (New campaign)
                + (r.content if len(r.content) <= 40 else r.content[:39] + "…")
                for r in records
            ],
        },
        columns=list(COLUMNS),
    )


# -- Streamlit views ----------------------------------------------------------------------


def open_sends(console: Console) -> None:
    """Every recent send without an answer, said where it is seen first (above the form)."""
    try:
        records = [r for r in console.ledger.recent_sends(limit=RECENT) if r.pending]
    except SQLAlchemyError:
        return  # the Recent sends section says it
    now, session = console.ledger.now(), session_tag()
    for r in records:
        what = (
            f"{rules.counted(r.recipient_count, 'recipient')} in {plain(r.country)}, sent at "
            f"{local_time(r.created_at, console.tz)} by {plain(who(r, session))}: "
            f"“{plain(r.content[:60])}{'…' if len(r.content) > 60 else ''}”"
        )
        if r.error is None and now - r.created_at < IN_FLIGHT:
            st.info(
                f"**A send is in flight** — {what}. Its answer should come within a minute; "
                "do not send it again.",
                icon=":material/send:",
            )
        elif now - r.updated_at < CHECKABLE:
            st.warning(
                f"**No answer yet for a send** — {what}. It may have gone out. **Do not send it "
                "again:** *Check what happened* sends the same request with the same reference; "
                "KedaSMS answers with the first send's result instead of sending twice (or, if "
                "the first request never arrived, sends it now, once).",
                icon=":material/help:",
            )
            if st.button("Check what happened", key=f"send_check_{r.id}", icon=":material/sync:"):
                actor = access.require(
                    console.ledger, Permission.SEND, "check a send", target=f"send {r.client_ref}"
                )
                with st.spinner("Asking KedaSMS…"):
                    st.session_state["send_last"] = deliver(
                        console, console.ledger.retry_send(r.client_ref), actor=actor.name
                    )
                account_changed()
                st.rerun()
        else:
            st.warning(
                f"**No answer for over 23 hours for a send** — {what}. KedaSMS has forgotten its "
                "reference, so a check would send it again: look its numbers up on the Status "
                "page before sending anything.",
                icon=":material/help:",
            )


def details(console: Console, r: LedgerSend, now: datetime, counts: dict) -> None:
    """One send whole, for the row selected in Recent sends."""
    with st.container(border=True):
        head = outcome(r, now, counts.get(r.task_id or "", {})).split(":")[0]
        if r.state in ("rejected", "withdrawn"):
            head = "Not sent"  # who decided, and why: said below
        st.markdown(
            f"**{plain(head)}** — {local_time(r.created_at, console.tz)}, by "
            f"{plain(who(r, session_tag()))}: {rules.counted(r.recipient_count, 'recipient')} in "
            f"{plain(r.country)}, {plain(cost(r))}"
            + (f", task {plain(r.task_id)}" if r.task_id else "")
        )
        item = console.ledger.approval_of("send", r.client_ref)
        if item is not None:
            shown = rules.decision_text(item)
            if not item.waiting and item.state == "approved":
                shown = f"{shown} (over the threshold of {money(item.threshold, item.currency)})"
            st.info(plain(shown), icon=":material/approval:")
        if r.error and r.state == "refused":
            st.error(plain(r.error), icon=":material/block:")
        elif r.error and r.pending:
            st.warning(plain(r.error), icon=":material/help:")
        st.text(r.content)
        st.caption(
            f"Sender id {plain(r.sender) if r.sender else 'KedaSMS default'} · reference "
            f"{plain(r.client_ref)} · {rules.counted(r.attempts, 'attempt')}"
        )
        if r.task_id and st.button("Follow them on the Status page", key="send_recent_follow"):
            msgids = [m.msgid for m in console.ledger.task_messages(r.task_id)]
            st.session_state["status_ids"] = msgids
            st.session_state["status_label"] = f"task {r.task_id}"
            st.switch_page("pages/status.py")


def recent_sends(console: Console) -> None:
    """The Recent sends section; it refreshes itself while a send is in flight."""
    st.subheader("Recent sends", anchor=False)
    st.caption(
        f"The last {RECENT} sends of this console, from its ledger: every session's, refused "
        "ones included. Campaigns are on the Campaigns page."
    )

    def table(was_in_flight: bool) -> None:
        try:
            records = console.ledger.recent_sends(limit=RECENT)
            counts = console.ledger.task_status_counts(r.task_id for r in records if r.task_id)
        except SQLAlchemyError as exc:
            st.error(
                f"The ledger cannot be read ({plain(type(exc).__name__)}). Check "
                "KEDA\\_DATABASE\\_URL.",
                icon=":material/database:",
            )
            return
        if not records:
            st.caption("Nothing sent from this console yet.")
            return
        now = console.ledger.now()
        frame = recent_frame(records, now=now, tz=console.tz, session=session_tag(), counts=counts)
        picked = st.dataframe(
            frame,
            hide_index=True,
            key="send_recent",
            width="stretch",
            column_config=COLUMNS,
            on_select="rerun",
            selection_mode="single-row",
        )
        rows = picked.selection.rows if picked is not None else []
        if rows and rows[0] < len(records):
            details(console, records[rows[0]], now, counts)
        else:
            st.caption(
                "Select a row to see that send whole: who decided on it and why, or why it "
                "was refused; its text."
            )
        in_flight = any(
            r.pending and r.error is None and now - r.created_at < IN_FLIGHT for r in records
        )
        if was_in_flight and not in_flight:
            st.rerun()  # answered: the whole page shows it (and stops refreshing)

    try:
        flying = any(
            r.pending and r.error is None and console.ledger.now() - r.created_at < IN_FLIGHT
            for r in console.ledger.recent_sends(limit=RECENT)
        )
    except SQLAlchemyError:
        flying = False
    st.fragment(table, run_every=REFRESH if flying else None)(flying)
