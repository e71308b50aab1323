"""The Templates page's pieces, and "Start from a template" / "Sender profile" on Send and New
campaign.

A template's segments and encoding are counted on its text as written (a ``{variable}`` counts
as its own characters until a recipient's value replaces it): the same counter as the Send
page's (``kedacore.segments``). Choosing a template or a profile on Send or New campaign fills
the form's fields (a widget callback, so the fields can still be edited); the template chosen
is marked *last used* when the send or campaign is confirmed (:func:`mark_used`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from console.views import describe_characters, local_time, plain
from kedacore.campaign.recipients import RecipientsError
from kedacore.campaign.recipients.template import parse_template
from kedacore.ledger import Ledger
from kedacore.ledger.templates import SenderProfile, Template
from kedacore.segments import GSM7, count_segments


@dataclass(frozen=True, slots=True)
class BodyFacts:
    """What a template's text makes: encoding, segments, variables (or why it is malformed)."""

    characters: int
    encoding: str
    segments: int
    remaining: int
    ucs2_characters: tuple[str, ...]
    variables: tuple[str, ...]
    problem: str | None  # the template is malformed (said as the campaign would say it)


def body_facts(body: str) -> BodyFacts:
    """Encoding, segments and variables of a template's text as written."""
    info = count_segments(body)
    variables: tuple[str, ...] = ()
    problem = None
    if body.strip():
        try:
            variables = parse_template(body).fields
        except RecipientsError as exc:
            problem = str(exc)
    return BodyFacts(
        info.characters,
        info.encoding,
        info.segments,
        info.remaining,
        info.ucs2_characters,
        variables,
        problem,
    )


def preview_lines(body: str) -> list[str]:
    """The live preview under the editor (Markdown), as the Send page's counter says it."""
    facts = body_facts(body)
    if not facts.characters:
        return ["Write the text to see its segments and encoding."]
    capacity = (
        "160 per segment, 153 when longer"
        if facts.encoding == GSM7
        else "70 per segment, 67 when longer"
    )
    lines = [
        f"**{facts.characters:,}** characters · **{facts.segments}** segment(s) · "
        f"encoding **{facts.encoding}** ({capacity})"
    ]
    if facts.ucs2_characters:
        lines.append(
            "UCS-2 because of " + describe_characters(facts.ucs2_characters) + ". Without them "
            "the text would be GSM-7."
        )
    if facts.segments > 10:
        lines.append("Over 10 segments: KedaSMS refuses it. Shorten it.")
    if facts.problem:
        lines.append(f":red[{plain(facts.problem)}]")
    elif facts.variables:
        names = ", ".join("{" + plain(v) + "}" for v in facts.variables)
        lines.append(
            f"Variables: {names}; counted as written here, each recipient's values change the "
            "count (a campaign's file must have these columns)."
        )
    return lines


def templates_frame(templates: Sequence[Template], tz: ZoneInfo) -> pd.DataFrame:
    """One row per template: name, owner, last used, segments and encoding, variables."""
    rows = []
    for t in templates:
        facts = body_facts(t.body)
        rows.append(
            {
                "Name": t.name,
                "Owner": t.owner,
                "Last used": local_time(t.last_used_at, tz) or "never",
                "Segments": facts.segments,
                "Encoding": facts.encoding,
                "Variables": ", ".join(facts.variables),
                "Text": t.body,
                "Changed": local_time(t.updated_at, tz),
            }
        )
    columns = ["Name", "Owner", "Last used", "Segments", "Encoding", "Variables", "Text"]
    return pd.DataFrame(rows, columns=[*columns, "Changed"])


def profiles_frame(profiles: Sequence[SenderProfile], tz: ZoneInfo) -> pd.DataFrame:
    """One row per sender profile."""
    rows = [
        {
            "Name": p.name,
            "Sender id": p.sender or "(account default)",
            "Default country": p.default_country or "",
            "Owner": p.owner,
            "Changed": local_time(p.updated_at, tz),
        }
        for p in profiles
    ]
    return pd.DataFrame(rows, columns=["Name", "Sender id", "Default country", "Owner", "Changed"])


# -- "Start from a template" and "Sender profile" on Send and New campaign ------------------


def _fill_text(ledger: Ledger, prefix: str, text_key: str) -> None:
    chosen = st.session_state.get(f"{prefix}_start_template")
    template = ledger.template(chosen) if chosen else None
    if template is None:
        st.session_state.pop(f"{prefix}_template_used", None)
        return
    st.session_state[text_key] = template.body
    st.session_state[f"{prefix}_template_used"] = template.id


def _fill_sender(
    ledger: Ledger, prefix: str, sender_key: str, country_key: str, countries: Sequence[str]
) -> None:
    chosen = st.session_state.get(f"{prefix}_sender_profile")
    profile = ledger.sender_profile(chosen) if chosen else None
    if profile is None:
        return
    st.session_state[sender_key] = profile.sender or ""
    if profile.default_country and profile.default_country in countries:
        st.session_state[country_key] = profile.default_country


def starters(
    ledger: Ledger,
    prefix: str,
    *,
    text_key: str,
    sender_key: str,
    country_key: str,
    countries: Sequence[str],
) -> None:
    """Two pickers above a form: a template fills the text, a sender profile the sender id
    and the default country (nothing drawn when there are neither)."""
    templates = {t.id: t.name for t in ledger.templates()}
    profiles = {p.id: p for p in ledger.sender_profiles()}
    if not templates and not profiles:
        return
    left, right = st.columns(2)
    if templates:
        left.selectbox(
            "Start from a template",
            [None, *templates],
            format_func=lambda i: "—" if i is None else templates.get(i, "(deleted)"),
            key=f"{prefix}_start_template",
            on_change=_fill_text,
            args=(ledger, prefix, text_key),
            help="Fills the text below with the saved template; you can still change it. "
            "Templates are kept on the Templates page.",
        )
    if profiles:
        right.selectbox(
            "Sender profile",
            [None, *profiles],
            format_func=lambda i: "—" if i is None else _profile_label(profiles.get(i)),
            key=f"{prefix}_sender_profile",
            on_change=_fill_sender,
            args=(ledger, prefix, sender_key, country_key, tuple(countries)),
            help="Fills the sender id and the default country.",
        )


def _profile_label(profile: SenderProfile | None) -> str:
    if profile is None:
        return "(deleted)"
    parts = [profile.sender or "default sender", profile.default_country or ""]
    return f"{profile.name} ({', '.join(p for p in parts if p)})"


def mark_used(ledger: Ledger, prefix: str) -> None:
    """The send or campaign of this form was confirmed: its template was used now."""
    template_id = st.session_state.get(f"{prefix}_template_used")
    if template_id is not None:
        ledger.mark_template_used(template_id)
