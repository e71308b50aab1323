"""Limits → Team controls: the approval threshold and the balance floor, finance's settings.

Both are amounts in the account's currency, off when empty, kept in the ledger's team settings
(``APPROVAL_THRESHOLD``, ``BALANCE_FLOOR``) as exact decimal strings; every change is audited
there with before → after. Saving re-checks ``Permission.THRESHOLDS`` when it runs. Bad input
changes nothing: both fields are checked before either is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.access import require
from console.shell import Console
from console.views import local_time, money, plain
from kedacore.ledger.audit import AuditFilter
from kedacore.ledger.team import APPROVAL_THRESHOLD, BALANCE_FLOOR
from kedacore.money import MAX_MICROS, MoneyError, normalize, to_decimal, to_micros
from kedacore.team import Permission

CONTROLS = {  # setting → (label, what it does)
    APPROVAL_THRESHOLD: (
        "Approval threshold",
        "A send or campaign whose estimated cost is over this amount waits for a finance or "
        "admin member other than its creator to approve it. Empty: no approvals.",
    ),
    BALANCE_FLOOR: (
        "Balance floor",
        "When the balance falls below this amount, the team is notified (once a day). "
        "Empty: no floor.",
    ),
}
FORM_KEYS = {APPROVAL_THRESHOLD: "limits_approval_threshold", BALANCE_FLOOR: "limits_balance_floor"}


def parse_amount(text: str, label: str, currency: str) -> Decimal | None:
    """An amount typed for a control: empty → off; else exact, ≥ 0, at most 6 decimals."""
    raw = text.strip().replace(",", "").replace(" ", "").replace("_", "")
    if raw.upper().endswith(currency.upper()):
        raw = raw[: -len(currency)]
    if not raw:
        return None
    try:
        amount = to_decimal(raw) if "e" not in raw.lower() else None
    except MoneyError:
        amount = None
    if amount is None:
        raise ValueError(
            f"{label}: “{text.strip()}” is not an amount. Enter it in {currency} like 500 or "
            "250.50 (a dot for decimals), or leave it empty to turn it off."
        )
    if amount < 0:
        raise ValueError(f"{label}: the amount cannot be negative.")
    try:
        to_micros(amount)
    except MoneyError:
        if amount * 1_000_000 > MAX_MICROS:
            raise ValueError(f"{label}: at most {MAX_MICROS // 10**6:,} {currency}.") from None
        raise ValueError(
            f"{label}: {raw} has more than 6 decimals; amounts are exact to 0.000001 {currency}."
        ) from None
    return normalize(amount)


def stored(amount: Decimal | None) -> str | None:
    """How a control is kept: an exact decimal string, or None (off)."""
    return None if amount is None else format(normalize(amount), "f")


def form_text(value: Any) -> str:
    """A stored control as its text box shows it ("" when off)."""
    return "" if value is None else format(normalize(Decimal(str(value))), "f")


def shown(value: Any, currency: str) -> str:
    """A stored control for a person: ``500.00 USD`` or ``off``."""
    return "off" if value is None else money(Decimal(str(value)), currency)


@dataclass(frozen=True, slots=True)
class ControlsForm:
    """The two fields, checked: the values to store, or every problem found."""

    values: dict[str, str | None]
    errors: tuple[str, ...]


def parse_controls(texts: dict[str, str], currency: str) -> ControlsForm:
    """Check both fields; each problem becomes one sentence saying what to type."""
    values: dict[str, str | None] = {}
    errors = []
    for key, (label, _) in CONTROLS.items():
        try:
            values[key] = stored(parse_amount(texts.get(key, ""), label, currency))
        except ValueError as exc:
            errors.append(str(exc))
    return ControlsForm(values if not errors else {}, tuple(errors))


def _last_change(console: Console, key: str) -> str:
    try:
        found = console.ledger.audit_entries(
            AuditFilter(actions=["setting_change"], text=key), limit=5
        )
    except SQLAlchemyError:
        return ""
    entry = next((e for e in found if e.target == key), None)
    if entry is None:
        return "never set"
    return f"set by {plain(entry.actor)} at {local_time(entry.at, console.tz)}"


def _save(console: Console, texts: dict[str, str]) -> None:
    """Check, re-check the permission, then write what changed; the outcome goes to state."""
    state, cur = st.session_state, console.currency
    form = parse_controls(texts, cur)
    if form.errors:
        state["limits_controls_error"] = "**Nothing was changed.** Correct the form:\n" + "\n".join(
            f"- {plain(p)}" for p in form.errors
        )
        return
    actor = require(
        console.ledger, Permission.THRESHOLDS, "change the team controls", target="team controls"
    )
    before = {key: console.ledger.team_setting(key) for key in CONTROLS}
    changed = []
    for key, value in form.values.items():
        if console.ledger.set_team_setting(key, value, by=actor.name):
            label = CONTROLS[key][0]
            changed.append(f"{label}: {shown(before[key], cur)} → {shown(value, cur)}")
    if changed:
        state["limits_controls_result"] = (
            f"**Team controls saved** by {plain(actor.name)}. " + "; ".join(changed) + "."
        )
    else:
        state["limits_controls_result"] = "These are the controls already in force: no change."


def team_controls(console: Console, *, sign_in: bool) -> None:
    """The section: the two amounts, who set them last, and saving them."""
    state, cur = st.session_state, console.currency
    if not sign_in:
        st.info(
            "**Approvals need sign-in.** A second member has to approve what is over the "
            "threshold, and without an `[auth]` section in secrets this console has only the "
            "local operator (docs/team.md).",
            icon=":material/info:",
        )
    current = {key: console.ledger.team_setting(key) for key in CONTROLS}
    with st.form("limits_controls_form", border=True):
        columns = st.columns(len(CONTROLS))
        texts = {}
        for column, (key, (label, what)) in zip(columns, CONTROLS.items(), strict=True):
            texts[key] = column.text_input(
                f"{label} ({cur})",
                value=form_text(current[key]),
                placeholder="off",
                key=FORM_KEYS[key],
                help=f"{what} An amount in {cur}, 0 or more, up to 6 decimals.",
            )
            column.caption(f"Now **{shown(current[key], cur)}** · {_last_change(console, key)}")
        saved = st.form_submit_button("Save the team controls", key="limits_controls_save")
    if saved:
        state.pop("limits_controls_error", None)
        state.pop("limits_controls_result", None)
        _save(console, texts)
        if "limits_controls_result" in state:
            for name in FORM_KEYS.values():  # the form starts again from what is stored
                state.pop(name, None)
            st.rerun()
    if "limits_controls_error" in state:
        st.error(state.pop("limits_controls_error"), icon=":material/edit:")
    if "limits_controls_result" in state:
        st.success(state.pop("limits_controls_result"), icon=":material/check_circle:")
