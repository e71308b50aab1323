"""A campaign's message template (``{column}`` placeholders) and its sender id."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kedacore.campaign.recipients.columns import column_key
from kedacore.campaign.recipients.limits import RecipientsError


@dataclass(frozen=True, slots=True)
class Template:
    """A message template with ``{name}`` placeholders (``{{`` and ``}}`` are literal braces)."""

    text: str
    parts: tuple[tuple[str, str | None, str | None, str], ...]  # literal, key, conversion, spec
    fields: tuple[str, ...]  # placeholders as written, first-seen order

    def render(self, values: Mapping[str, str]) -> str:
        """The text for one recipient; ``values`` are keyed by column key (see ``column_key``)."""
        out = []
        for literal, key, conversion, spec in self.parts:
            out.append(literal)
            if key is not None:
                value: Any = values[key]
                if conversion:
                    value = _FORMATTER.convert_field(value, conversion)
                out.append(format(value, spec) if spec else str(value))
        return "".join(out)

    def renderer(self, keys: Sequence[str]) -> Callable[..., str]:
        """``render`` for rows of cells in ``keys`` order: ``renderer(keys)(*cells)``.

        The template becomes one format string with positional fields, so a row is rendered
        by a single ``str.format`` call — no dict of its values, no loop over the parts in
        Python (a campaign renders every one of its rows). ``str.format`` applies the
        conversion and the spec exactly as ``render`` does. A key given twice in ``keys`` is
        its last position, as in ``dict(zip(keys, cells))``.
        """
        at = {key: i for i, key in enumerate(keys)}
        pieces = []
        for literal, key, conversion, spec in self.parts:
            pieces.append(literal.replace("{", "{{").replace("}", "}}"))
            if key is not None:
                conv = f"!{conversion}" if conversion else ""
                pieces.append(f"{{{at[key]}{conv}{':' + spec if spec else ''}}}")
        return "".join(pieces).format


_FORMATTER = string.Formatter()


def _unbalanced(text: str) -> str:
    """A malformed template's fault, for a person (Python's own message says "format string")."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                where = text[max(0, i - 15) : i + 1]
                return (
                    f"the template is malformed: a }} with no {{ before it (…{where}). Close "
                    "each placeholder like {name}; for a brace as text, write it twice: }}"
                )
            depth -= 1
    return (
        "the template is malformed: a { is never closed. Close each placeholder like {name}; "
        "for a brace as text, write it twice: {{"
    )


def parse_template(text: str, columns: Iterable[str] | None = None) -> Template:
    """Check a template (and, given the file's columns, that every placeholder is one).

    Raises:
        RecipientsError: naming the unknown placeholder, or what is malformed.
    """
    if not text.strip():
        raise RecipientsError("the template is empty")
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError:
        raise RecipientsError(_unbalanced(text)) from None
    known = {column_key(c): c for c in columns or () if c}
    parts, fields = [], []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None, None, ""))
            continue
        name = field.strip()
        # Only plain names: "{0}", "{}" and "{a.b}"/"{a[0]}" would reach into Python objects.
        if not name or name.isdigit() or any(ch in name for ch in ".[]"):
            raise RecipientsError(f"placeholder {{{field}}} is not a column name")
        if "{" in (spec or ""):
            raise RecipientsError(f"placeholder {{{field}}} has a nested placeholder")
        try:
            format("", spec or "")
        except ValueError:
            raise RecipientsError(
                f"placeholder {{{field}:{spec}}} is malformed: write just {{{name}}}, or drop "
                "the colon and what follows it"
            ) from None
        if columns is not None and column_key(name) not in known:
            raise RecipientsError(
                f"unknown placeholder {{{name}}}: the file has no such column "
                f"(columns: {', '.join(known.values())})"
            )
        if name not in fields:
            fields.append(name)
        parts.append((literal, column_key(name), conversion, spec or ""))
    return Template(text, tuple(parts), tuple(fields))


def check_sender(sender: str) -> str | None:
    """Why a sender id would be refused (None when it is fine): 1–11 letters/digits or a number."""
    plain = sender[1:] if sender.startswith("+") else sender
    if plain.isascii() and plain.isdigit() and len(plain) <= 15:
        return None
    if sender.isascii() and sender.isalnum() and 1 <= len(sender) <= 11:
        return None
    return f"sender {sender!r} must be 1–11 letters and digits, or a number of up to 15 digits"
