"""The Limits page's pieces: today's usage against the caps, the change form with its review and
confirmation dialog, and the audit trail. ``pages/limits.py`` lays these out.

A change is recorded as made by the actor (``console.actor.name``: the signed-in member's
e-mail, or "local operator"), re-checked with ``require`` when it is confirmed, and written to
the cap trail and the audit log in one transaction (``Ledger.record_cap_change``).

The form's checks and the wording of values are ``console.finance.views``'s (plain functions);
this module draws them and changes the caps. The outcome of a change is kept in session state
(``limits_result`` / ``limits_error``) because the dialog reruns the page to close itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.access import guarded, require
from console.finance.alerts import alert_state, percent
from console.finance.cards import Card, metric_card
from console.finance.views import (
    FIELD_LABELS,
    FieldChange,
    amount,
    audit_export,
    audit_frame,
    cap_changes,
    cap_text,
    change_warnings,
    changes_frame,
    form_text,
    next_reset,
    parse_cap_form,
    update_arguments,
    usage_gauge,
)
from console.shell import Console, account_changed, advice
from console.views import local_time, money, plain
from kedacore import Balance, KedaError, Limits
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.team import Actor, Permission

FORM_KEYS = ("limits_sms_cap", "limits_spend_cap", "limits_threshold", "limits_block")
AUDIT_ROWS = 500  # the newest changes shown (and exported)
GAUGE_CONFIG = {"displayModeBar": False, "staticPlot": True}


def caps_differ(cached: Limits | None, fresh: Limits) -> bool:
    """Whether the caps (not the usage, which moves with every send) differ from those read
    a few seconds ago for the sidebar."""

    def caps(limits: Limits) -> tuple:
        return (
            limits.daily_sms_cap,
            limits.daily_spend_cap,
            limits.alert_threshold,
            limits.block_on_limit,
        )

    return cached is not None and caps(cached) != caps(fresh)


def reset_form_after_change() -> None:
    """After a change the form starts again from the caps as they now are (call before it)."""
    if st.session_state.pop("limits_reset_form", False):
        for name in FORM_KEYS:
            st.session_state.pop(name, None)


# -- today -------------------------------------------------------------------------------------


def today_heading(limits: Limits) -> str:
    """``Today (UTC day 2026-01-31)``: the day the usage counts for."""
    return f"Today (UTC day {limits.usage.date or datetime.now(UTC).date().isoformat()})"


def sms_today(limits: Limits) -> None:
    """Messages sent today, and the gauge against the SMS cap when there is one."""
    usage, cap, threshold = limits.usage, limits.daily_sms_cap, limits.alert_threshold
    metric_card(
        Card(
            "limits_today_sms",
            "Messages today",
            f"{usage.sms_sent:,}",
            help="Messages accepted today (one per recipient); FAILED messages leave the count.",
        )
    )
    if cap is None:
        st.caption("No daily SMS cap.")
    else:
        left = max(cap - usage.sms_sent, 0)
        st.caption(f"Cap **{cap:,}** · alert at {percent(threshold)} · **{left:,} left** today")
        st.plotly_chart(
            usage_gauge(usage.sms_sent, cap, threshold, lambda n: f"{n:,}"),
            key="limits_sms_gauge",
            config=GAUGE_CONFIG,
        )


def spend_today(limits: Limits, cur: str) -> None:
    """Spend today (charged + frozen), and the gauge against the spend cap when there is one."""
    usage, cap_money, threshold = limits.usage, limits.daily_spend_cap, limits.alert_threshold
    metric_card(
        Card(
            "limits_today_spend",
            f"Spend today ({cur})",  # the unit in the label keeps the value short
            amount(usage.spend),
            help="Charged plus frozen (messages not charged yet): what the daily spend cap counts.",
        )
    )
    frozen = f"of which frozen {money(usage.frozen, cur)}"
    if cap_money is None:
        st.caption(f"{frozen} · no daily spend cap.")
    else:
        left_money = max(cap_money - usage.spend, 0)
        st.caption(
            f"{frozen} · cap **{money(cap_money, cur)}** · alert at {percent(threshold)} · "
            f"**{money(left_money, cur)} left** today"
        )
        st.plotly_chart(
            usage_gauge(usage.spend, cap_money, threshold, amount),
            key="limits_spend_gauge",
            config=GAUGE_CONFIG,
        )


def balance_today(balance: Balance) -> None:
    """What can still be spent, and what is frozen."""
    metric_card(
        Card(
            "limits_today_balance",
            f"Balance ({balance.currency})",
            amount(balance.balance),
            help="What can still be spent.",
        )
    )
    st.caption(f"Frozen for messages not yet charged: {money(balance.frozen, balance.currency)}")


def alert_today(limits: Limits, tz: ZoneInfo) -> None:
    """The usage alert's state today: not raised, raised (since when, by which cap), blocked,
    or raised earlier while no cap is at its alert point any more (removed or raised)."""
    # The banner above (every page's) says what to do; here: the state, and since when.
    raised_at = local_time(limits.alert.at, tz) if limits.alert.at else "earlier today"
    state, detail = alert_state(limits, raised_at)
    metric_card(
        Card(
            "limits_today_alert",
            "Alert today",
            state,
            help="The usage alert is raised once a day's usage reaches the alert threshold of "
            "a cap, and resets with the UTC day.",
        )
    )
    st.caption(detail)


def reset_note(limits: Limits, tz: ZoneInfo) -> str:
    """When usage starts again, and whether the caps block sends."""
    blocking = (
        "Caps **block** sends that would pass them."
        if limits.block_on_limit
        else "Caps **do not block**: a send over a cap goes through and raises the alert."
    )
    reset = next_reset(datetime.now(UTC), tz)
    return f"Usage counts per UTC day and starts again at {reset}. {blocking}"


# -- change ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapEntry:
    """What the change form held when "Review the change…" was pressed."""

    sms_cap: str
    spend_cap: str
    threshold: str
    block: bool


def change_form(limits: Limits, cur: str, actor: Actor) -> CapEntry | None:
    """The form, prefilled with the caps in force; what it holds once reviewed, else None."""
    with st.form("limits_form", border=True):
        a, b, c = st.columns(3)
        sms_text = a.text_input(
            "Daily SMS cap (messages)",
            value=form_text("daily_sms_cap", limits.daily_sms_cap),
            placeholder="no cap",
            key="limits_sms_cap",
            help="A whole number of messages per UTC day, 0 or more. Empty: no cap.",
        )
        spend_text = b.text_input(
            f"Daily spend cap ({cur})",
            value=form_text("daily_spend_cap", limits.daily_spend_cap),
            placeholder="no cap",
            key="limits_spend_cap",
            help=f"An amount in {cur} per UTC day (charged + frozen), 0 or more, up to 6 "
            "decimals. Empty: no cap.",
        )
        threshold_text = c.text_input(
            "Alert threshold (share of a cap)",
            value=form_text("alert_threshold", limits.alert_threshold),
            key="limits_threshold",
            help="Above 0 and at most 1: 0.8 raises the alert at 80 % of a cap. 80 % works too.",
        )
        block = st.toggle(
            "Block sends over a cap (blockOnLimit)",
            value=limits.block_on_limit,
            key="limits_block",
            help="On: a send that would take today's usage past a cap is refused whole. Off: "
            "it goes through and raises the alert.",
        )
        st.caption(f"The change is recorded as made by **{plain(actor.label)}**.")
        review = st.form_submit_button("Review the change…", key="limits_review", type="primary")
    if not review:
        return None
    return CapEntry(sms_text, spend_text, threshold_text, block)


def review(entry: CapEntry, limits: Limits, cur: str) -> None:
    """Check the form: say what is wrong, or that nothing changes, or hold the change for the
    confirmation dialog (``limits_pending``)."""
    state = st.session_state
    form = parse_cap_form(entry.sms_cap, entry.spend_cap, entry.threshold, entry.block, cur)
    problems = list(form.errors)
    changes = cap_changes(limits, form.values) if not form.errors else []
    if problems:
        st.error(
            "**Nothing was changed.** Correct the form:\n"
            + "\n".join(f"- {plain(p)}" for p in problems),
            icon=":material/edit:",
        )
    elif not changes:
        st.info("These are the caps already in force: nothing to change.", icon=":material/info:")
    else:
        state["limits_pending"] = {"changes": changes}
        state.pop("limits_result", None)
        state.pop("limits_error", None)


def _dismiss() -> None:
    st.session_state.pop("limits_pending", None)


def _apply(console: Console, limits: Limits, changes: list[FieldChange], who: Actor) -> None:
    """Change the caps at the service, then write the trail and the audit log (one
    transaction); the outcome goes to state."""
    state, cur = st.session_state, console.currency
    try:
        after = console.client.limits.update(**update_arguments(changes))
    except KedaError as exc:
        state["limits_error"] = (
            f"**The caps were not changed.** {advice(exc, sandbox=console.sandbox)}"
        )
        # A change the service refused is part of the record too (the page says it failed).
        with contextlib.suppress(SQLAlchemyError, OSError):
            console.ledger.audit(
                who.name,
                "caps_change",
                target="daily caps",
                before={c.field: c.before for c in changes},
                after={c.field: c.after for c in changes},
                detail=advice(exc, sandbox=console.sandbox, markdown=False),
                outcome="failed",
            )
        return
    account_changed()  # the sidebar and every page's banner must show the new caps
    state["limits_reset_form"] = True
    new_values = {c.field: getattr(after, c.field) for c in changes}
    summary = "; ".join(
        f"{FIELD_LABELS[c.field]}: {cap_text(c.field, c.before, cur)} → "
        f"{cap_text(c.field, new_values[c.field], cur)}"
        for c in changes
    )
    try:
        console.ledger.record_cap_change(limits, new_values, changed_by=who.name)
    except (SQLAlchemyError, OSError) as exc:
        state["limits_error"] = (
            f"**The caps were changed ({summary}), but the audit trail could not be written** "
            f"({type(exc).__name__}). Check the ledger database (KEDA_DATABASE_URL or the data "
            "folder) and note this change by hand."
        )
        return
    state["limits_result"] = (
        f"**Caps changed** by {plain(who.name)}. {summary}. They apply to the next send."
    )


@st.dialog("Change the caps?", on_dismiss=_dismiss, width="medium")
def confirm(pending: dict[str, Any], console: Console, limits: Limits) -> None:
    """Show old → new for each changed field; the change happens only on Confirm, and only
    if the actor may still change the caps then (``require``: refused and audited if not)."""
    cur = console.currency
    changes = pending["changes"]
    st.table(changes_frame(changes, cur).set_index("Field"))
    for note in change_warnings(limits, changes, cur):
        st.warning(note, icon=":material/warning:")
    st.caption(
        f"Recorded in the audit log as made by **{plain(console.actor.label)}**. Applies to the "
        "very next send, from this console and from the API."
    )
    yes, no = st.columns(2)
    if yes.button("Confirm the change", key="limits_confirm", type="primary", width="stretch"):
        _dismiss()
        actor = require(console.ledger, Permission.CAPS, "change the caps", target="daily caps")
        _apply(console, limits, changes, actor)
        st.rerun()
    if no.button("Cancel", key="limits_cancel", width="stretch"):
        _dismiss()
        st.rerun()


def show_outcome(where: Any) -> None:
    """The last change's result (kept in state across the dialog's rerun), in ``where``."""
    state = st.session_state
    if "limits_error" in state:
        where.error(state["limits_error"], icon=":material/error:")
    if "limits_result" in state:
        where.success(state["limits_result"], icon=":material/check_circle:")


# -- audit trail -------------------------------------------------------------------------------


def audit_trail(ledger: Ledger, tz: ZoneInfo, cur: str) -> None:
    """The newest cap changes with CSV/XLSX exports; stops the page if the ledger fails."""
    try:
        trail = ledger.cap_changes(limit=AUDIT_ROWS)
    except SQLAlchemyError as exc:
        st.error(
            f"The audit trail cannot be read ({type(exc).__name__}). Check the ledger database "
            "(KEDA_DATABASE_URL or the data folder).",
            icon=":material/error:",
        )
        st.stop()
    if not trail:
        st.caption("No cap has been changed from this console yet.")
        return
    st.dataframe(audit_frame(trail, tz, cur), hide_index=True, width="stretch", key="limits_audit")
    row = st.container(horizontal=True, gap="medium", vertical_alignment="center")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")

    def checked(build: Callable[[], bytes]) -> Callable[[], bytes]:
        """Built at the click, for someone who may still see the caps then."""
        return guarded(ledger, Permission.CAPS, "export the cap changes", build, target="Limits")

    row.download_button(
        "Export CSV",
        checked(lambda: to_csv(audit_export(trail))),
        file_name=f"cap-changes-{stamp}.csv",
        mime="text/csv",
        key="limits_audit_csv",
        icon=":material/download:",
        on_click="ignore",
    )
    row.download_button(
        "Export XLSX",
        checked(lambda: to_xlsx({"cap_changes": audit_export(trail)})),
        file_name=f"cap-changes-{stamp}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="limits_audit_xlsx",
        icon=":material/download:",
        on_click="ignore",
    )
    row.caption(
        f"Newest first; times in your zone ({tz.key}), in UTC in the exports. "
        f"Showing the latest {min(len(trail), AUDIT_ROWS):,} field changes."
    )
