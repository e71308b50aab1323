"""Metric cards that never cut a figure: the Finance pages' ``st.metric``, fitted to its card.

``st.metric`` cuts a value wider than its column with "…" (Spend read "1734…" for
17,349.156 at 1280 px; Limits "Balance 199.077 …", "Not rai…"), and its label too
("Click-through …"). Here each card is a keyed container that CSS measures (a container
query: ``100cqi`` is its width). The value keeps Streamlit's size (2.25rem) when it fits and
gets a smaller font when it does not — from the value's estimated width, down to 1rem — and
below that it wraps: it is never cut. Labels wrap onto a second line instead of ending in "…".
The CSS is ours and constant but for numbers; no text of anyone's goes into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

# Widths in em of Streamlit's font (Source Sans), rounded up: the estimate errs wide.
_NARROW = {",": 0.24, ".": 0.24, " ": 0.22, "\u202f": 0.22, ":": 0.24}
_WIDE = {"%": 0.88, "—": 1.0, "–": 0.55}
CARD_PADDING = "2.25rem"  # a bordered metric's padding and border, both sides
VALUE_SIZE = "2.25rem"  # Streamlit's own
SMALLEST = "1rem"


def text_em(text: str) -> float:
    """The width of ``text`` in em, estimated on the wide side (digits 0.52, capitals 0.66)."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += _NARROW[char]
        elif char in _WIDE:
            width += _WIDE[char]
        elif char.isdigit():
            width += 0.52
        elif char.isupper():
            width += 0.66
        elif char.islower():
            width += 0.54
        else:
            width += 0.6
    return max(width, 1.0)


def card_css(key: str, value: str) -> str:
    """The CSS of one card: its container measured, the value's font fitted, nothing cut."""
    card = f".st-key-{key}"
    metric_value = f'{card} [data-testid="stMetricValue"]'
    return (
        f"{card} {{ container-type: inline-size; }}\n"
        f"{metric_value} {{ font-size: clamp({SMALLEST}, "
        f"calc((100cqi - {CARD_PADDING}) / {text_em(value):.2f}), {VALUE_SIZE}); "
        "min-height: 2.8rem; display: flex; align-items: center; }\n"
        f"{metric_value}, {metric_value} * {{ white-space: normal; overflow: visible; "
        "text-overflow: clip; overflow-wrap: anywhere; }\n"
        f'{card} [data-testid="stMetricLabel"] * {{ white-space: normal; text-overflow: clip; }}'
    )


@dataclass(frozen=True, slots=True)
class Card:
    """One metric: what ``st.metric`` takes, and the key of the card around it."""

    key: str
    label: str
    value: str
    delta: str | None = None
    delta_color: str = "normal"
    help: str | None = None


def metric_card(card: Card, *, border: bool = False) -> None:
    """``st.metric`` in a card whose value is never cut."""
    with st.container(key=card.key):
        st.html(f"<style>{card_css(card.key, card.value)}</style>")
        st.metric(
            card.label,
            card.value,
            delta=card.delta,
            delta_color=card.delta_color,  # type: ignore[arg-type]
            help=card.help,
            border=border,
        )
