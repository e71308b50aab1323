"""Contact lists: named lists of E.164 numbers, each with the attributes (text) its file gave.

A list holds a number once (``uq_contacts_list_phone``); an import adds the numbers the list
does not have and updates the attributes of those it has (a non-empty value replaces the one
kept, an empty one leaves it alone), all in one transaction — nothing is half-imported. Every
change (a list made, renamed or deleted, an import, an edit, a deletion) is audited in the
transaction that makes it. Files are read, and their numbers checked, before they get here
(``kedacore.campaign.contacts``): the ledger takes E.164 numbers only, and checks one again
when a person edits it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.ledger import schema as s
from kedacore.ledger.audit import _escape_like, _lower_function
from kedacore.ledger.engine import reading, writing
from kedacore.ledger.queries import chunks
from kedacore.phones import parse_number

MAX_LIST_NAME = 120  # contact_lists.name
MAX_ATTRIBUTES = 100  # as KEDA_MAX_COLUMNS' default: what one contact may carry
MAX_ATTRIBUTE_CHARS = 2_000  # as KEDA_MAX_CELL_CHARS' default
# A campaign still to finish keeps its list: the list cannot be deleted under it.
UNFINISHED = ("draft", "planned", "scheduled", "awaiting", "sending", "pausing", "paused")
# Names a contact's attribute may not take: the number itself is the contact's phone.
RESERVED = frozenset({"phone", "e164"})
_E164 = re.compile(r"\+[1-9][0-9]{5,16}")


class ContactsError(ValueError):
    """A change to a contact list that cannot be made; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class ContactList:
    """A named list and how many contacts it holds."""

    id: int
    name: str
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Contact:
    """One number of a list, with its attributes (column name → text)."""

    id: int
    list_id: int
    phone: str  # E.164
    country: str
    attributes: dict[str, str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewContact:
    """A number to import (already E.164) and its attributes."""

    phone: str
    country: str
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did: numbers added, contacts whose attributes changed, the rest."""

    added: int
    updated: int
    unchanged: int


def attribute_key(name: str) -> str:
    """An attribute's name as compared: case, spaces, ``_`` and ``-`` ignored (as columns are
    matched to ``{placeholders}``, kedacore.campaign.recipients.column_key)."""
    return "".join(ch for ch in name.casefold() if ch not in " _-\t")


def merged(kept: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """``kept`` with ``new``'s non-empty values: a name written differently (``First name`` /
    ``first_name``) is the same attribute and keeps the name it had."""
    out = dict(kept)
    names = {attribute_key(k): k for k in out}
    for name, value in new.items():
        value = value.strip()
        if not value:
            continue
        out[names.setdefault(attribute_key(name), name)] = value
    return out


def check_attributes(attributes: Mapping[str, Any]) -> dict[str, str]:
    """Attributes as kept (names and values trimmed, empty values dropped), or ContactsError."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in attributes.items():
        name = str(name).strip()
        text = "" if value is None else str(value).strip()
        if not name:
            if text:
                raise ContactsError("an attribute needs a name")
            continue
        key = attribute_key(name)
        if key in RESERVED:
            raise ContactsError(f"{name!r} cannot be an attribute: it is the contact's number")
        if key in seen:
            raise ContactsError(f"the attribute {name!r} is given twice")
        seen.add(key)
        if len(text) > MAX_ATTRIBUTE_CHARS:
            raise ContactsError(
                f"the value of {name!r} is {len(text):,} characters long; at most "
                f"{MAX_ATTRIBUTE_CHARS:,}"
            )
        if text:
            out[name] = text
    if len(out) > MAX_ATTRIBUTES:
        raise ContactsError(f"a contact has at most {MAX_ATTRIBUTES} attributes")
    return out


def _dump(attributes: Mapping[str, str]) -> str:
    # Not ASCII-escaped: a search for "Chloé" finds it in the stored text.
    return json.dumps(dict(attributes), ensure_ascii=False)  # in the file's column order


def _load(text: str | None) -> dict[str, str]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _contact(row: Any) -> Contact:
    return Contact(
        row.id,
        row.list_id,
        row.phone,
        row.country,
        _load(row.attributes),
        row.created_at,
        row.updated_at,
    )


def _list_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ContactsError("a list needs a name")
    if len(name) > MAX_LIST_NAME:
        raise ContactsError(f"a list's name has at most {MAX_LIST_NAME} characters")
    return name


class ContactsMixin:
    """Contact lists of the Ledger (see the module docstring)."""

    engine: Any
    audit: Any  # kedacore.ledger.audit.AuditMixin's (annotations only: a stub would shadow it)
    now: Any  # the Ledger's clock

    # -- lists ---------------------------------------------------------------------------

    def create_contact_list(self, name: str, *, by: str, description: str = "") -> int:
        """A new, empty list; returns its id. Raises ContactsError for a name in use."""
        name = _list_name(name)
        now = self.now()
        try:
            with writing(self.engine) as conn:
                list_id = int(
                    conn.execute(
                        insert(s.contact_lists).values(
                            name=name,
                            description=description.strip(),
                            created_by=by,
                            created_at=now,
                            updated_at=now,
                        )
                    ).inserted_primary_key[0]
                )
                self.audit(
                    by,
                    "contact_list_create",
                    target=f"contact list {list_id}",
                    after={"name": name},
                    conn=conn,
                )
        except IntegrityError:
            raise ContactsError(
                f"a list named {name!r} exists already: choose another name"
            ) from None
        return list_id

    def rename_contact_list(self, list_id: int, name: str, *, by: str) -> None:
        """Give a list another name (unique)."""
        name = _list_name(name)
        try:
            with writing(self.engine) as conn:
                before = self._locked_list(conn, list_id)
                conn.execute(
                    update(s.contact_lists)
                    .where(s.contact_lists.c.id == list_id)
                    .values(name=name, updated_at=self.now())
                )
                self.audit(
                    by,
                    "contact_list_rename",
                    target=f"contact list {list_id}",
                    before={"name": before.name},
                    after={"name": name},
                    conn=conn,
                )
        except IntegrityError:
            raise ContactsError(
                f"a list named {name!r} exists already: choose another name"
            ) from None

    def delete_contact_list(self, list_id: int, *, by: str) -> int:
        """Delete a list and its contacts; returns how many contacts went. Refused while a
        campaign to it is still to finish (planned, awaiting approval, sending or paused)."""
        with writing(self.engine) as conn:
            found = self._locked_list(conn, list_id)
            c = s.campaigns
            busy = conn.execute(
                select(c.c.id, c.c.name)
                .where(c.c.list_id == list_id, c.c.status.in_(UNFINISHED))
                .order_by(c.c.id)
            ).first()
            if busy is not None:
                raise ContactsError(
                    f"campaign #{busy.id} {busy.name!r} to this list is not finished: the list "
                    "can be deleted once it is done or cancelled"
                )
            gone = conn.execute(delete(s.contacts).where(s.contacts.c.list_id == list_id))
            conn.execute(delete(s.contact_lists).where(s.contact_lists.c.id == list_id))
            self.audit(
                by,
                "contact_list_delete",
                target=f"contact list {list_id}",
                before={"name": found.name, "contacts": gone.rowcount},
                conn=conn,
            )
            return int(gone.rowcount)

    def contact_lists(self) -> list[ContactList]:
        """Every list with its size, by name."""
        t, c = s.contact_lists, s.contacts
        sizes = select(c.c.list_id, func.count().label("size")).group_by(c.c.list_id).subquery()
        query = (
            select(t, func.coalesce(sizes.c.size, 0).label("size"))
            .select_from(t.outerjoin(sizes, sizes.c.list_id == t.c.id))
            .order_by(t.c.name)
        )
        with reading(self.engine) as conn:
            return [ContactList(**row._mapping) for row in conn.execute(query)]

    def contact_list(self, list_id: int) -> ContactList | None:
        """One list (with its size), or None."""
        return next((x for x in self.contact_lists() if x.id == list_id), None)

    def contact_list_named(self, name: str) -> ContactList | None:
        """The list of this name (exactly, else the one matching it but for case), or None."""
        lists = self.contact_lists()
        wanted = " ".join(name.split())
        exact = [x for x in lists if x.name == wanted]
        loose = [x for x in lists if x.name.casefold() == wanted.casefold()]
        return exact[0] if exact else loose[0] if len(loose) == 1 else None

    def _locked_list(self, conn: Connection, list_id: int) -> Any:
        """The list's row, locked until the transaction ends (one writer per list)."""
        query = select(s.contact_lists).where(s.contact_lists.c.id == list_id)
        row = conn.execute(query.with_for_update()).first()
        if row is None:
            raise ContactsError(f"no contact list {list_id}: it may have been deleted")
        return row

    # -- contacts ------------------------------------------------------------------------

    def import_contacts(
        self,
        list_id: int,
        contacts: Iterable[NewContact],
        *,
        by: str,
        source: str = "",
        invalid: int = 0,
    ) -> ImportCounts:
        """Add or update contacts in one transaction (all of them, or none on an error).

        Args:
            contacts: E.164 numbers; one repeated is merged into its first (``merged``).
            source: what they came from (a file's name), for the audit log.
            invalid: rows of the file left out (for the audit log).
        """
        wanted: dict[str, NewContact] = {}
        for item in contacts:
            if not _E164.fullmatch(item.phone):
                raise ContactsError(f"{item.phone!r} is not an E.164 number: nothing imported")
            if item.phone in wanted:
                first = wanted[item.phone]
                item = NewContact(
                    first.phone, first.country, merged(first.attributes, item.attributes)
                )
            wanted[item.phone] = item
        phones = list(wanted)
        with writing(self.engine) as conn:
            found = self._locked_list(conn, list_id)
            now = self.now()
            kept: dict[str, tuple[int, dict[str, str]]] = {}
            c = s.contacts
            for part in chunks(phones):
                query = select(c.c.id, c.c.phone, c.c.attributes).where(
                    c.c.list_id == list_id, c.c.phone.in_(part)
                )
                for row in conn.execute(query):
                    kept[row.phone] = (row.id, _load(row.attributes))
            new_rows, changed = [], []
            for phone, item in wanted.items():
                if phone not in kept:
                    attributes = merged({}, item.attributes)
                    new_rows.append(
                        {
                            "list_id": list_id,
                            "phone": phone,
                            "country": item.country,
                            "attributes": _dump(attributes),
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                    continue
                contact_id, before = kept[phone]
                after = merged(before, item.attributes)
                if after != before:
                    changed.append({"b_id": contact_id, "attributes": _dump(after)})
            for rows in chunks(new_rows):
                conn.execute(insert(c), list(rows))
            if changed:
                stmt = (
                    update(c)
                    .where(c.c.id == bindparam("b_id"))
                    .values(attributes=bindparam("attributes"), updated_at=now)
                )
                for rows in chunks(changed):
                    conn.execute(stmt, list(rows))
            conn.execute(
                update(s.contact_lists)
                .where(s.contact_lists.c.id == list_id)
                .values(updated_at=now)
            )
            counts = ImportCounts(
                len(new_rows), len(changed), len(wanted) - len(new_rows) - len(changed)
            )
            self.audit(
                by,
                "contacts_import",
                target=f"contact list {list_id}",
                after={
                    "list": found.name,
                    "added": counts.added,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "invalid": invalid,
                },
                detail=source[:200],
                conn=conn,
            )
        return counts

    def _contacts_query(self, list_id: int, search: str) -> Any:
        c = s.contacts
        query = select(c).where(c.c.list_id == list_id)
        text = search.strip().lower()
        if text:
            lower = _lower_function()
            like = "%" + _escape_like(text) + "%"
            digits = "".join(ch for ch in text if ch.isdigit())
            match = [lower(c.c.attributes).like(like, escape="\\")]
            if digits:  # a number as people write it: "+1 206 200-0001" finds +12062000001
                match.append(c.c.phone.like("%" + digits + "%"))
            match.append(c.c.phone.like(like, escape="\\"))
            query = query.where(or_(*match))
        return query

    def contacts(
        self, list_id: int, *, search: str = "", limit: int = 100, offset: int = 0
    ) -> list[Contact]:
        """A page of the list's contacts (oldest first), those matching ``search`` — in the
        number (its digits) or any attribute (names and values, case ignored)."""
        query = self._contacts_query(list_id, search).order_by(s.contacts.c.id)
        with reading(self.engine) as conn:
            rows = conn.execute(query.limit(limit).offset(offset))
            return [_contact(row) for row in rows]

    def contact_count(self, list_id: int, *, search: str = "") -> int:
        query = self._contacts_query(list_id, search).subquery()
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(query)).scalar_one())

    def all_contacts(self, list_id: int, *, page: int = 5_000) -> Iterator[Contact]:
        """Every contact of the list, oldest first, read a page at a time (by id)."""
        c = s.contacts
        after = 0
        while True:
            query = (
                select(c).where(c.c.list_id == list_id, c.c.id > after).order_by(c.c.id).limit(page)
            )
            with reading(self.engine) as conn:
                rows = [_contact(row) for row in conn.execute(query)]
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].id

    def contact(self, contact_id: int) -> Contact | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(s.contacts).where(s.contacts.c.id == contact_id)).first()
        return _contact(row) if row is not None else None

    def update_contact(
        self,
        contact_id: int,
        *,
        by: str,
        phone: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        default_country: str | None = None,
    ) -> Contact:
        """Change a contact's number (checked again: E.164, or national with
        ``default_country``) and/or replace its attributes; audited with before and after."""
        new_attributes = check_attributes(attributes) if attributes is not None else None
        parsed = None
        if phone is not None:
            text = phone.strip()
            international = text.startswith(("+", "00"))
            parsed = parse_number(text, None if international else default_country)
            if parsed.error is not None or parsed.e164 is None or parsed.country is None:
                raise ContactsError(f"{text or 'the number'}: {parsed.error or 'not a number'}")
        c = s.contacts
        with writing(self.engine) as conn:
            row = conn.execute(select(c).where(c.c.id == contact_id)).first()
            if row is None:
                raise ContactsError(f"no contact {contact_id}: it may have been deleted")
            self._locked_list(conn, row.list_id)
            before = _contact(row)
            values: dict[str, Any] = {}
            if parsed is not None and parsed.e164 != before.phone:
                taken = conn.scalar(
                    select(c.c.id).where(c.c.list_id == row.list_id, c.c.phone == parsed.e164)
                )
                if taken is not None:
                    raise ContactsError(f"{parsed.e164} is in this list already")
                values.update(phone=parsed.e164, country=parsed.country)
            if new_attributes is not None and new_attributes != before.attributes:
                values["attributes"] = _dump(new_attributes)
            if not values:
                return before
            now = self.now()
            conn.execute(update(c).where(c.c.id == contact_id).values(**values, updated_at=now))
            conn.execute(
                update(s.contact_lists)
                .where(s.contact_lists.c.id == row.list_id)
                .values(updated_at=now)
            )
            after = _contact(conn.execute(select(c).where(c.c.id == contact_id)).one())
            self.audit(
                by,
                "contact_edit",
                target=f"contact list {row.list_id}",
                before={"phone": before.phone, "attributes": before.attributes},
                after={"phone": after.phone, "attributes": after.attributes},
                conn=conn,
            )
            return after

    def delete_contacts(self, list_id: int, contact_ids: Sequence[int], *, by: str) -> int:
        """Delete these contacts of the list; returns how many were there."""
        c = s.contacts
        ids = sorted(set(contact_ids))
        with writing(self.engine) as conn:
            found = self._locked_list(conn, list_id)
            phones: list[str] = []
            for part in chunks(ids):
                where = (c.c.list_id == list_id, c.c.id.in_(part))
                phones.extend(conn.scalars(select(c.c.phone).where(*where)))
                conn.execute(delete(c).where(*where))
            if phones:
                conn.execute(
                    update(s.contact_lists)
                    .where(s.contact_lists.c.id == list_id)
                    .values(updated_at=self.now())
                )
                self.audit(
                    by,
                    "contacts_delete",
                    target=f"contact list {list_id}",
                    before={"list": found.name, "contacts": len(phones), "phones": phones[:20]},
                    conn=conn,
                )
            return len(phones)
