"""Opt-outs in the console: the Opt-outs page's pieces (the list searched a page at a time,
numbers added by hand or from a file, a number taken off the list, the export) and the guard
the Send page and New campaign put before a send (opted-out numbers left out and counted; a
transactional send, for those allowed, includes them; the frequency guard).

Every action checks the member's permission again when it runs (``console.access.require``);
the ledger does the work (``kedacore.ledger.optouts``) and audits it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from console import access
from console.shell import Console
from console.views import local_time, plain, utc_iso
from kedacore.campaign.plan import CampaignPlan, CampaignPreview, plan_requests
from kedacore.campaign.preview import with_audience
from kedacore.campaign.recipients import RecipientsError, load_limits, read_recipients
from kedacore.exports import to_csv
from kedacore.ledger import Ledger
from kedacore.ledger.optouts import NumbersRead, Optout, OptoutError, frequency_hours
from kedacore.ledger.optouts import normalize_numbers as normalize
from kedacore.team import Permission
from kedacore.words import counted

PAGE_SIZE = 50
FLASH = "optouts_flash"  # what the last action did, shown on the next run
TRANSACTIONAL_HELP = (
    "A transactional message (an order, a code, an alert) may go to opted-out numbers; "
    "marketing never. Audited with the number of opted-out recipients."
)


def opted_out_words(n: int) -> str:
    """``37 opted out, left out``."""
    return f"{n:,} opted out, left out"


# -- the guard before a send --------------------------------------------------------------


@dataclass(frozen=True)
class Guarded:
    """The numbers a send goes to after the opt-outs and the frequency guard."""

    numbers: tuple[str, ...]
    opted_out: tuple[str, ...] = ()  # left out (or, transactional, included)
    recent: tuple[str, ...] = ()  # messaged within the window
    recent_left_out: bool = False
    transactional: bool = False
    notes: list[str] = field(default_factory=list)


def window_hours() -> float:
    try:
        return frequency_hours()
    except ValueError:
        return 24.0


def guard(console: Console, numbers: Sequence[str], *, key: str) -> Guarded:
    """Show the opted-out and recently messaged among ``numbers`` with their one choice each."""
    ledger = console.ledger
    out = ledger.suppressed(numbers) if numbers else set()
    opted = tuple(n for n in numbers if n in out)
    transactional = False
    if opted and console.actor.can(Permission.TRANSACTIONAL):
        transactional = st.checkbox(
            "Transactional (opted-out numbers too)",
            key=f"{key}_transactional",
            help=TRANSACTIONAL_HELP,
        )
    if opted and not transactional:
        st.warning(f"**{opted_out_words(len(opted))}.**", icon=":material/block:")
    elif opted:
        st.warning(
            f"**Transactional:** {counted(len(opted), 'opted-out number')} included (audited).",
            icon=":material/priority_high:",
        )
    keep = [n for n in numbers if transactional or n not in out]
    hours = window_hours()
    since = ledger.messaged_within(hours)
    recent = tuple(sorted(since(keep))) if since is not None and keep else ()
    leave = False
    if recent:
        leave = st.checkbox(
            f"Leave out the {counted(len(recent), 'recipient')} messaged in the last "
            f"{hours:g} hours",
            key=f"{key}_leave_recent",
        )
        if not leave:
            st.caption(
                f"Frequency guard: {counted(len(recent), 'recipient')} already messaged in the "
                f"last {hours:g} hours."
            )
    if leave:
        keep = [n for n in keep if n not in set(recent)]
    return Guarded(tuple(keep), opted, recent, leave, transactional)


def campaign_guard(
    console: Console, preview: CampaignPreview, plan: CampaignPlan
) -> tuple[CampaignPreview, CampaignPlan]:
    """New campaign: the opted-out rows left out (said), the recently messaged flagged with
    one choice to leave them out; the plan made again only when something was left out."""
    hours = window_hours()
    checked = with_audience(
        preview, suppressed=console.ledger.suppressed, recent=console.ledger.messaged_within(hours)
    )
    if checked.opted_out:
        st.warning(f"**{opted_out_words(len(checked.opted_out))}.**", icon=":material/block:")
    if checked.recent:
        n = counted(len(checked.recent), "recipient")
        if st.checkbox(
            f"Leave out the {n} messaged in the last {hours:g} hours", key="campaigns_leave_recent"
        ):
            checked = checked.leave_out_recent()
        else:
            st.caption(f"Frequency guard: {n} already messaged in the last {hours:g} hours.")
    if checked is preview:
        return preview, plan
    return checked, plan_requests(checked)


def left_out_sentence(pending: dict[str, Any]) -> str:
    """The confirm dialog's line: ``2 opted out, left out; 1 messaged recently, left out.``"""
    parts = []
    if pending.get("opted_out"):
        parts.append(opted_out_words(pending["opted_out"]))
    if pending.get("recent_left_out"):
        parts.append(f"{pending['recent_left_out']:,} messaged recently, left out")
    return "; ".join(parts) + "." if parts else ""


def recheck(console: Console, numbers: Sequence[str], transactional: bool) -> str | None:
    """At the confirm click: why the send cannot go as shown (Markdown), else None.

    A transactional send needs Permission.TRANSACTIONAL still (refused and audited
    otherwise); any other send is checked against the opt-outs again (a number opted out
    since the form was drawn is never sent)."""
    if transactional:
        access.require(
            console.ledger, Permission.TRANSACTIONAL, "send to opted-out numbers", target="send"
        )
        return None
    late = console.ledger.suppressed(numbers)
    if late:
        return (
            f"**Nothing was sent:** {counted(len(late), 'number')} opted out since the form was "
            "drawn. Review the send again: they are now left out."
        )
    return None


def audit_transactional(ledger: Ledger, actor: str, ref: str, opted: int, total: int) -> None:
    ledger.audit(
        actor,
        "send_transactional",
        target=f"send {ref}",
        after={"opted_out_included": opted, "recipients": total},
        detail=f"{counted(opted, 'opted-out number')} included in a transactional send",
    )


# -- the Opt-outs page --------------------------------------------------------------------


def flash() -> None:
    said = st.session_state.pop(FLASH, None)
    if said:
        st.success(said, icon=":material/check_circle:")


def frame(rows: Sequence[Optout], tz: ZoneInfo) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Number": r.phone,
                "Opted out": local_time(r.added_at, tz),
                "By": r.added_by,
                "Why": r.reason,
                "How": r.source,
                "Removed": local_time(r.removed_at, tz) if r.removed_at else "",
                "Removed by": r.removed_by or "",
                "Why removed": r.removed_reason or "",
            }
            for r in rows
        ]
    )


def optouts_to_csv(ledger: Ledger, search: str, active: bool | None) -> bytes:
    """Every row that matches (formula-safe, kedacore.exports), times in UTC."""
    rows: list[Optout] = []
    while True:
        part = ledger.optouts(search, active=active, limit=5_000, offset=len(rows))
        rows.extend(part)
        if len(part) < 5_000:
            break
    data = [
        {
            "phone": r.phone,
            "opted_out_at_utc": utc_iso(r.added_at),
            "added_by": r.added_by,
            "reason": r.reason,
            "source": r.source,
            "removed_at_utc": utc_iso(r.removed_at) if r.removed_at else "",
            "removed_by": r.removed_by or "",
            "removed_reason": r.removed_reason or "",
        }
        for r in rows
    ]
    return to_csv(pd.DataFrame(data, columns=None if data else ["phone"]), bom=True)


def add_by_hand(console: Console, country: str | None) -> None:
    with st.form("optouts_add", clear_on_submit=True):
        raw = st.text_area("Numbers (one per line)", key="optouts_numbers", height=90)
        reason = st.text_input("Reason", key="optouts_reason", placeholder="Replied STOP")
        clicked = st.form_submit_button("Add to the opt-out list", type="primary")
    if not clicked:
        return
    read = normalize([line for line in raw.splitlines() if line.strip()], country)
    _add(console, read, reason, "hand")


def import_file(console: Console, country: str | None) -> None:
    upload = st.file_uploader(
        "Or import a file (CSV or XLSX): its phone column",
        type=["csv", "txt", "xlsx"],
        key="optouts_file",
    )
    reason = st.text_input("Reason for the file's numbers", key="optouts_file_reason")
    if upload is None:
        return
    try:
        limits = load_limits(st.secrets, os.environ)  # type: ignore[arg-type]
        table = read_recipients(upload.getvalue(), filename=upload.name, limits=limits)
    except (RecipientsError, ValueError) as exc:
        st.error(f"**The file cannot be read:** {plain(exc)}.", icon=":material/error:")
        return
    if table.broken:  # a row not read could hold a number to opt out: all or nothing
        lines = "\n".join(f"- row {n}: {plain(why)}" for n, why in table.broken[:20])
        st.error(
            f"**Nothing can be imported:** {counted(len(table.broken), 'row')} of the file "
            f"cannot be read; correct them:\n{lines}",
            icon=":material/phonelink_erase:",
        )
        return
    at = table.columns.index(table.phone_column)
    read = normalize([cells[at] for _, cells in table.rows], country)
    st.caption(
        f"{counted(len(read.valid), 'number')} in column {plain(table.phone_column)}"
        + (f", {counted(len(read.invalid), 'invalid row')}" if read.invalid else "")
    )
    if st.button("Import these numbers", key="optouts_import", disabled=not read.valid):
        _add(console, read, reason, "import", rows=[n for n, _ in table.rows])


def _add(
    console: Console, read: NumbersRead, reason: str, source: str, rows: list[int] | None = None
) -> None:
    """Nothing half-done: invalid rows listed and nothing added; else all added, audited."""
    if read.invalid:
        where = [f"row {rows[i - 1]}" if rows else f"line {i}" for i, _, _ in read.invalid]
        lines = "\n".join(
            f"- {w}: “{plain(raw)}” — {plain(why)}"
            for w, (_, raw, why) in list(zip(where, read.invalid, strict=True))[:20]
        )
        st.error(
            f"**Nothing was added:** {counted(len(read.invalid), 'number')} cannot be read; "
            f"correct or remove them:\n{lines}",
            icon=":material/phonelink_erase:",
        )
        return
    actor = access.require(console.ledger, Permission.OPTOUTS, "add opt-outs", target="opt-outs")
    try:
        done = console.ledger.add_optouts(read.valid, by=actor.name, reason=reason, source=source)
    except OptoutError as exc:
        st.error(f"**Nothing was added:** {plain(exc)}.", icon=":material/error:")
        return
    said = f"{counted(len(done.added), 'number')} opted out"
    if done.already:
        said += f"; {len(done.already):,} already opted out (counted, not added again)"
    st.session_state[FLASH] = said + "."
    st.rerun()


def remove(console: Console, rows: Sequence[Optout]) -> None:
    """Take one number off the list: finance and admin only, with a reason."""
    if not console.actor.can(Permission.OPTOUT_REMOVE):
        st.caption("Only finance and admin members take a number off the list.")
        return
    active = [r.phone for r in rows if r.active]
    if not active:
        st.caption("No opted-out number shown above: search for one to take it off the list.")
        return
    with st.form("optouts_remove"):
        phone = st.selectbox("Number", active, key="optouts_remove_phone")
        reason = st.text_input("Why it may be messaged again", key="optouts_remove_reason")
        clicked = st.form_submit_button("Take off the opt-out list")
    if clicked:
        remove_number(console, str(phone), reason)


def remove_number(console: Console, phone: str, reason: str) -> None:
    actor = access.require(
        console.ledger,
        Permission.OPTOUT_REMOVE,
        "take a number off the opt-out list",
        target=f"opt-out {phone}",
    )
    try:
        console.ledger.remove_optout(phone, by=actor.name, reason=reason)
    except OptoutError as exc:
        st.error(f"**Not removed:** {plain(exc)}.", icon=":material/error:")
        return
    st.session_state[FLASH] = f"{phone} taken off the opt-out list."
    st.rerun()


def state_words(state: Optout | None, tz: ZoneInfo) -> tuple[str, str]:
    """(kind, sentence) of a number's opt-out state for the Status page; kind: error/info/""."""
    if state is None:
        return "", "Not opted out."
    if state.active:
        return "error", (
            f"**Opted out** since {local_time(state.added_at, tz)} by {plain(state.added_by)}: "
            f"{plain(state.reason)}. Marketing is not sent to it."
        )
    return "info", (
        f"**Not opted out:** taken off the list {local_time(state.removed_at, tz)} by "
        f"{plain(state.removed_by or '')}: {plain(state.removed_reason or '')} (opted out "
        f"{local_time(state.added_at, tz)}: {plain(state.reason)})."
    )


def show_state(ledger: Ledger, phone: str, tz: ZoneInfo) -> None:
    kind, said = state_words(ledger.optout_state(phone), tz)
    shown: dict[str, Any] = {"error": st.error, "info": st.info}
    if kind:
        shown[kind](f"{plain(phone)} — {said}", icon=":material/block:")
    else:
        st.caption(f"{plain(phone)} — {said}")
