"""Limits → Team controls: the approval threshold and the balance floor, finance's settings.

Both are amounts in the account's currency, off when empty, kept in the ledger's team settings
(``APPROVAL_THRESHOLD``, ``BALANCE_FLOOR``) as exact decimal strings; every change is audited
there with before → after. Saving re-checks ``Permission.THRESHOLDS`` when it runs. Bad input
changes nothing: both fields are checked before either is written.

Separation of duties: raising the approval threshold or turning it off is refused (and the
refusal audited) to a member who may also send or run campaigns — marketing, admin — or they
could lift the control, send alone and put it back. It takes a finance member who does not
send. Lowering it, or setting one where there was none, anyone with the permission may do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console.access import require
from console.shell import Console
from console.views import local_time, money, plain
from kedacore.ledger.audit import AuditFilter
from kedacore.ledger.team import APPROVAL_THRESHOLD, BALANCE_FLOOR, SettingChanged
from kedacore.money import MAX_MICROS, MoneyError, normalize, to_decimal, to_micros
from kedacore.team import Actor, Permission

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
# Commas as thousands separators only: 1,234 and 1,234,567.89 — never 250,50 nor 1,5.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def parse_amount(text: str, label: str, currency: str) -> Decimal | None:
    """An amount typed for a control: empty → off; else exact, ≥ 0, at most 6 decimals.

    A point is the decimal mark; a comma is taken only between groups of three digits before
    it (``1,234,567.89``). Anything else with a comma (``250,50``, ``1,5``) is refused rather
    than guessed: read as a thousands separator it would be a hundred times the amount meant.
    """
    raw = text.strip().replace(" ", "").replace("_", "")
    if raw.upper().endswith(currency.upper()):
        raw = raw[: -len(currency)]
    if not raw:
        return None
    if "," in raw:
        if not _GROUPED.fullmatch(raw):
            raise ValueError(
                f"{label}: “{text.strip()}” — use a point for decimals (250.50); a comma is "
                "only taken between thousands (1,234,567.89)."
            )
        raw = raw.replace(",", "")
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


def loosens(before: Any, after: str | None) -> bool:
    """Whether the approval threshold going from ``before`` to ``after`` lets more go without
    a second person: raised, or turned off. Setting one where there was none, or lowering it,
    is stricter."""
    if before is None:
        return False
    return after is None or Decimal(after) > Decimal(str(before))


def sends_too(actor: Actor) -> bool:
    """Whether ``actor`` may send or run campaigns — and so must not loosen the control on their
    own sends (separation of duties). The local operator (no sign-in) is nobody's checker:
    approvals do not apply to them."""
    return not actor.local and (actor.can(Permission.SEND) or actor.can(Permission.CAMPAIGNS))


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
    after = form.values[APPROVAL_THRESHOLD]
    if loosens(before[APPROVAL_THRESHOLD], after) and sends_too(actor):
        told = (
            f"Raising the approval threshold ({shown(before[APPROVAL_THRESHOLD], cur)} → "
            f"{shown(after, cur)}) or turning it off must be done by a finance member who does "
            "not send: you may also send or run campaigns, so you would be lifting the control "
            "on your own sends. Ask a finance member without the marketing or admin role. "
            "Lowering it you may do."
        )
        console.ledger.audit(
            actor.name,
            "setting_change",
            target=APPROVAL_THRESHOLD,
            before={APPROVAL_THRESHOLD: before[APPROVAL_THRESHOLD]},
            after={APPROVAL_THRESHOLD: after},
            detail=told,
            outcome="refused",
        )
        state["limits_controls_error"] = f"**Nothing was changed.** {plain(told)}"
        return
    changed = []
    for key, value in form.values.items():
        try:  # decided on ``before``: a change made meanwhile by someone else is not overwritten
            saved = console.ledger.set_team_setting(key, value, by=actor.name, expect=before[key])
        except SettingChanged as exc:
            state["limits_controls_error"] = (
                f"**{CONTROLS[key][0]} was not changed:** someone changed it meanwhile (now "
                f"{shown(exc.current, cur)}). Look at it again and save once more."
            )
            return
        if saved:
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
    if state.pop("limits_controls_reset", False):  # after a save: the form shows what is stored
        for key, name in FORM_KEYS.items():  # (set before drawing: a browser keeps a popped value)
            state[name] = form_text(current[key])
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
            state["limits_controls_reset"] = True
            st.rerun()
    if "limits_controls_error" in state:
        st.error(state.pop("limits_controls_error"), icon=":material/edit:")
    if "limits_controls_result" in state:
        st.success(state.pop("limits_controls_result"), icon=":material/check_circle:")
