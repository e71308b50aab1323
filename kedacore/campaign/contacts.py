"""Contact lists and recipients files: a file's rows as contacts to import, and a list's
contacts as the recipients table a campaign previews and plans.

A file is read by :func:`kedacore.campaign.recipients.read_recipients` (the same limits, the
same phone, country and sender columns as a campaign); :func:`contacts_from_file` checks each
row's number as the campaign preview does (the row's own country, strict, else the default
country for national numbers) and keeps the other columns as the contact's attributes.
:func:`list_recipients` turns a list back into a :class:`RecipientFile` — a ``phone`` column
and one column per attribute — so a campaign to a list has the very same preview, problems,
opt-outs and plan as one to a file, and every attribute is a ``{placeholder}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kedacore.campaign.preview import _number_problem, _parse, _plain_e164, _row_country
from kedacore.campaign.recipients import (
    SENDER_COLUMNS,
    RecipientFile,
    RecipientLimits,
    RecipientsLimitError,
    column_key,
)
from kedacore.ledger.contacts import Contact, NewContact, merged

PHONE = "phone"  # the phone column of a list's recipients table


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row of the file that is not imported, and why."""

    row: int
    phone: str
    reason: str


@dataclass(slots=True)
class FileContacts:
    """A file's rows as contacts: one per number (a repeated number merged into its first)."""

    contacts: list[NewContact] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    repeated: int = 0  # rows whose number came earlier in the file (merged into it)
    rows_read: int = 0


def contacts_from_file(table: RecipientFile, default_country: str | None = None) -> FileContacts:
    """Every row of the file checked: its number in E.164 and the other columns as attributes.

    Args:
        table: from ``read_recipients``.
        default_country: ISO code for national numbers of rows without a country of their own.
    """
    default = default_country.strip().upper() if default_country else None
    columns = table.columns
    phone_at = columns.index(table.phone_column)
    country_at = columns.index(table.country_column) if table.country_column else None
    named = [(i, name) for i, name in enumerate(columns) if name and i != phone_at]
    out = FileContacts(rows_read=len(table.rows) + len(table.broken))
    out.invalid.extend(InvalidRow(n, "", f"unreadable row: {why}") for n, why in table.broken)
    at: dict[str, int] = {}  # E.164 → its place in out.contacts
    for number, cells in table.rows:
        phone = cells[phone_at]
        own, why = _row_country(cells[country_at]) if country_at is not None else (None, None)
        if why:
            out.invalid.append(InvalidRow(number, phone, why))
            continue
        found = _plain_e164(phone, own)
        if found is None:
            parsed = _parse(phone, own if own is not None else default, strict=own is not None)
            found = (parsed.e164, parsed.country, parsed.error)
        e164, country, error = found
        if error is not None or not e164 or not country:
            reason = _number_problem(found)[1] if error else "invalid number: empty"
            out.invalid.append(InvalidRow(number, phone, reason))
            continue
        attributes = {name: cells[i] for i, name in named if cells[i]}
        if e164 in at:
            first = out.contacts[at[e164]]
            out.contacts[at[e164]] = NewContact(
                e164, first.country, merged(first.attributes, attributes)
            )
            out.repeated += 1
            continue
        at[e164] = len(out.contacts)
        out.contacts.append(NewContact(e164, country, attributes))
    out.invalid.sort(key=lambda r: r.row)
    return out


def list_recipients(
    contacts: Iterable[Contact], *, limits: RecipientLimits | None = None
) -> RecipientFile:
    """A list's contacts as a recipients table: ``phone`` and one column per attribute (its
    first spelling; empty where a contact has none). A ``sender`` attribute is the sender
    column, as in a file; the country is the number's own (E.164).

    Raises:
        RecipientsLimitError: more contacts than ``limits.rows`` (KEDA_MAX_ROWS).
    """
    limits = limits or RecipientLimits()
    people = []
    names: dict[str, str] = {}  # attribute key → the column's name
    for contact in contacts:
        if len(people) >= limits.rows:
            raise RecipientsLimitError(
                f"The list has more than {limits.rows:,} contacts, the most a campaign takes "
                "(KEDA_MAX_ROWS). Split it into smaller lists.",
                "KEDA_MAX_ROWS",
            )
        people.append(contact)
        for name in contact.attributes:
            names.setdefault(column_key(name), name)
    keys = list(names)
    rows = []
    for i, contact in enumerate(people):
        values = {column_key(k): v for k, v in contact.attributes.items()}
        rows.append((i + 2, (contact.phone, *(values.get(k, "") for k in keys))))
    columns = (PHONE, *names.values())
    sender = next((names[k] for k in SENDER_COLUMNS if k in names), None)
    return RecipientFile(
        columns=columns,
        rows=tuple(rows),
        broken=(),
        phone_column=PHONE,
        country_column=None,
        sender_column=sender,
        encoding="list",
        delimiter=None,
    )
