"""The Contacts page's pieces: lists with their sizes, a file imported into a new or an
existing list, a list browsed and searched a page at a time, a contact edited or deleted, a
list renamed, deleted and exported.

Every action checks the member's permission again when it runs (``console.access.require``);
the exports are built at the click for someone who may still read the contacts
(``console.access.guarded``). The ledger does the work (``kedacore.ledger.contacts``), a file's
rows are checked as a campaign checks them (``kedacore.campaign.contacts``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import phonenumbers
import streamlit as st

from console import access
from console.shell import Console
from console.views import local_time, plain, utc_iso
from kedacore.campaign.contacts import FileContacts, InvalidRow, contacts_from_file
from kedacore.campaign.recipients import (
    RecipientLimits,
    RecipientsError,
    load_limits,
    read_recipients,
)
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger.contacts import (
    Contact,
    ContactList,
    ContactsError,
    ImportCounts,
    attribute_key,
)
from kedacore.team import Permission
from kedacore.words import counted

PAGE_SIZE = 50
COUNTRIES = sorted(phonenumbers.SUPPORTED_REGIONS)
RESULT = "contacts_result"  # the last import's outcome, shown on the next run
FLASH = "contacts_flash"  # what the last action did, shown on the next run
FOCUS = "contacts_focus"  # the list to show on the next run (None: the first)


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """An import as the page reports it."""

    list_name: str
    counts: ImportCounts
    invalid: tuple[InvalidRow, ...]
    repeated: int
    rows_read: int

    def sentence(self) -> str:
        c = self.counts
        parts = [f"{c.added:,} added", f"{c.updated:,} updated"]
        if c.unchanged:
            parts.append(f"{c.unchanged:,} already there unchanged")
        parts.append(f"{len(self.invalid):,} invalid (left out)")
        if self.repeated:
            parts.append(f"{self.repeated:,} repeated in the file (merged into their first row)")
        return f"{self.rows_read:,} row(s) read into {self.list_name}: " + ", ".join(parts) + "."


def lists_frame(lists: Sequence[ContactList], tz: ZoneInfo) -> pd.DataFrame:
    return pd.DataFrame(
        [(x.name, x.size, local_time(x.updated_at, tz), x.created_by) for x in lists],
        columns=["List", "Contacts", "Changed", "Created by"],
    )


def invalid_frame(rows: Sequence[InvalidRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [(r.row, r.phone, r.reason) for r in rows], columns=["Row", "Phone", "Reason"]
    )


def contacts_frame(contacts: Sequence[Contact], tz: ZoneInfo | None) -> pd.DataFrame:
    """One row per contact: number, country, each attribute (in first-seen order), changed —
    in the user's zone on the page, UTC (ISO, ``Z``) in an export (``tz`` None)."""
    names = attribute_names(contacts)
    rows = [
        (
            c.phone,
            c.country,
            *(_value(c, key) for key in names),
            local_time(c.updated_at, tz) if tz else utc_iso(c.updated_at),
        )
        for c in contacts
    ]
    changed = "Changed" if tz else "Changed (UTC)"
    return pd.DataFrame(rows, columns=["Phone", "Country", *names.values(), changed])


def attribute_names(contacts: Sequence[Contact]) -> dict[str, str]:
    """The attributes of these contacts: key (``attribute_key``) → first spelling seen."""
    names: dict[str, str] = {}
    for c in contacts:
        for name in c.attributes:
            names.setdefault(attribute_key(name), name)
    return names


def _value(contact: Contact, key: str) -> str:
    return next((v for n, v in contact.attributes.items() if attribute_key(n) == key), "")


def _limits_or_stop() -> RecipientLimits:
    try:
        secrets: object = st.secrets
    except Exception:
        secrets = None
    try:
        return load_limits(secrets, os.environ)  # type: ignore[arg-type]
    except ValueError as exc:
        st.error(f"**Files cannot be read:** {plain(exc)}.", icon=":material/settings:")
        st.stop()


def read_file(name: str, data: bytes, country: str) -> FileContacts | str:
    """The uploaded file's rows as contacts, or why it cannot be used (a sentence)."""
    try:
        table = read_recipients(data, filename=name, limits=_limits_or_stop())
    except RecipientsError as exc:
        return str(exc)
    return contacts_from_file(table, country)


def import_form(console: Console, target: ContactList | None) -> None:
    """A file into a new list (``target`` None) or into ``target``: every row checked first,
    then all of it imported in one transaction, or none of it."""
    where = "new" if target is None else "add"
    name = ""
    if target is None:
        name = st.text_input("List name", key="contacts_new_name", max_chars=120)
    limits = _limits_or_stop()
    upload = st.file_uploader(
        "Contacts (CSV or XLSX)",
        type=["csv", "txt", "xlsx"],
        key=f"contacts_{where}_file",
        max_upload_size=limits.upload_mb,
        help="A phone column (phone, mobile, number…); every other column is kept as the "
        "contact's attributes, usable as {column} in a campaign's template. A number already "
        "in the list gets the file's values.",
    )
    country = st.selectbox(
        "Default country",
        COUNTRIES,
        index=COUNTRIES.index("US"),
        key=f"contacts_{where}_country",
        help="For national numbers (without +) in rows that have no country of their own.",
    )
    label = "Create the list and import" if target is None else "Import into this list"
    if not st.button(label, key=f"contacts_{where}_import", type="primary"):
        return
    what = f"contact list {target.id}" if target else "contact lists"
    actor = access.require(console.ledger, Permission.CONTACTS, "import contacts", target=what)
    if target is None and not name.strip():
        st.error("Name the list first.", icon=":material/edit:")
        return
    if upload is None:
        st.error("Upload the file first.", icon=":material/upload_file:")
        return
    found = read_file(upload.name, upload.getvalue(), country)
    if isinstance(found, str):
        why = plain(found.rstrip("."))  # a limit's sentence ends with its own full stop
        st.error(f"**This file cannot be used:** {why}.", icon=":material/description:")
        return
    try:
        list_id = target.id if target else console.ledger.create_contact_list(name, by=actor.name)
        try:
            counts = console.ledger.import_contacts(
                list_id,
                found.contacts,
                by=actor.name,
                source=upload.name,
                invalid=len(found.invalid),
            )
        except BaseException:
            if target is None:  # nothing half-made: the new list goes with its failed import
                console.ledger.delete_contact_list(list_id, by=actor.name)
            raise
    except ContactsError as exc:
        st.error(plain(exc), icon=":material/error:")
        return
    list_name = target.name if target else " ".join(name.split())
    st.session_state[RESULT] = ImportOutcome(
        list_name, counts, tuple(found.invalid), found.repeated, found.rows_read
    )
    st.session_state[FOCUS] = list_id
    st.rerun()


def import_result() -> None:
    """The last import: what it did, and the rows it left out (downloadable)."""
    outcome: ImportOutcome | None = st.session_state.get(RESULT)
    if outcome is None:
        return
    st.success(plain(outcome.sentence()), icon=":material/check_circle:")
    if outcome.invalid:
        st.dataframe(invalid_frame(outcome.invalid), hide_index=True, key="contacts_invalid")
        st.download_button(
            "Download the invalid rows (CSV)",
            to_csv(invalid_frame(outcome.invalid), bom=True),
            file_name="contacts-invalid-rows.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
            key="contacts_invalid_csv",
        )


def flash() -> None:
    if (text := st.session_state.pop(FLASH, None)) is not None:
        st.success(text, icon=":material/check_circle:")


def manage(console: Console, chosen: ContactList) -> None:
    """Rename or delete the list."""
    left, right = st.columns(2)
    new = left.text_input("New name", value=chosen.name, key=f"contacts_rename_{chosen.id}")
    if left.button("Rename", key="contacts_rename"):
        actor = access.require(
            console.ledger, Permission.CONTACTS, "rename a list", target=f"contact list {chosen.id}"
        )
        try:
            console.ledger.rename_contact_list(chosen.id, new, by=actor.name)
        except ContactsError as exc:
            st.error(plain(exc), icon=":material/error:")
            return
        st.session_state[FLASH] = f"Renamed to {plain(' '.join(new.split()))}."
        st.rerun()
    sure = right.checkbox(
        f"Delete the list and its {counted(chosen.size, 'contact')}", key="contacts_delete_sure"
    )
    if right.button("Delete the list", key="contacts_delete_list", disabled=not sure):
        actor = access.require(
            console.ledger, Permission.CONTACTS, "delete a list", target=f"contact list {chosen.id}"
        )
        try:
            gone = console.ledger.delete_contact_list(chosen.id, by=actor.name)
        except ContactsError as exc:
            st.error(plain(exc), icon=":material/error:")
            return
        st.session_state[FLASH] = (
            f"List {plain(chosen.name)} deleted with its {counted(gone, 'contact')}."
        )
        st.session_state[FOCUS] = None
        st.rerun()


def pager(total: int) -> int:
    """The offset of the page chosen (pages of ``PAGE_SIZE``)."""
    pages = max(1, -(-total // PAGE_SIZE))
    if pages == 1:
        return 0
    page = st.number_input("Page", 1, pages, 1, key="contacts_page", help=f"of {pages:,}")
    return (int(page) - 1) * PAGE_SIZE


def edit_form(console: Console, chosen: ContactList, shown: Sequence[Contact]) -> None:
    """One contact of the page: its number (checked again) and attributes; or delete it."""
    if not shown:
        return
    by_id = {c.id: c for c in shown}
    picked = st.selectbox(
        "Contact",
        list(by_id),
        format_func=lambda i: by_id[i].phone,
        key="contacts_edit_pick",
    )
    contact = by_id[picked]
    names = attribute_names(shown)
    own = {attribute_key(n): n for n in contact.attributes}  # the contact's own spellings
    phone = st.text_input("Number", value=contact.phone, key=f"contacts_edit_phone_{picked}")
    values = {}
    cols = st.columns(3)
    for i, (key, name) in enumerate(names.items()):
        values[own.get(key, name)] = cols[i % 3].text_input(
            name, value=_value(contact, key), key=f"contacts_edit_{picked}_{i}"
        )
    save, drop = st.columns(2)
    target = f"contact list {chosen.id}"
    if save.button("Save the contact", key="contacts_edit_save", type="primary"):
        actor = access.require(console.ledger, Permission.CONTACTS, "edit contacts", target=target)
        try:
            after = console.ledger.update_contact(
                picked,
                by=actor.name,
                phone=phone,
                attributes=values,
                default_country=contact.country,
            )
        except ContactsError as exc:
            st.error(f"**Not saved:** {plain(exc)}", icon=":material/error:")
            return
        st.session_state[FLASH] = f"{plain(after.phone)} saved."
        st.rerun()
    if drop.button("Delete the contact", key="contacts_edit_delete"):
        actor = access.require(
            console.ledger, Permission.CONTACTS, "delete contacts", target=target
        )
        console.ledger.delete_contacts(chosen.id, [picked], by=actor.name)
        st.session_state[FLASH] = f"{plain(contact.phone)} deleted from {plain(chosen.name)}."
        st.rerun()


def downloads(console: Console, chosen: ContactList) -> None:
    """The whole list as CSV or XLSX, built at the click (formula-safe: kedacore.exports)."""
    ledger = console.ledger

    def frame() -> pd.DataFrame:
        return contacts_frame(list(ledger.all_contacts(chosen.id)), None)

    def checked(build: Callable[[], bytes]) -> Callable[[], bytes]:
        return access.guarded(
            ledger,
            Permission.CONTACTS,
            "export contacts",
            build,
            target=f"contact list {chosen.id}",
        )

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = "".join(ch if ch.isalnum() else "-" for ch in chosen.name)[:40] or "list"
    row = st.container(horizontal=True, gap="medium")
    row.download_button(
        "Export CSV",
        checked(lambda: to_csv(frame(), bom=True)),
        file_name=f"contacts-{base}-{stamp}.csv",
        mime="text/csv",
        key="contacts_csv",
        icon=":material/download:",
        on_click="ignore",
        disabled=chosen.size == 0,
    )
    row.download_button(
        "Export XLSX",
        checked(lambda: to_xlsx(frame())),
        file_name=f"contacts-{base}-{stamp}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="contacts_xlsx",
        icon=":material/download:",
        on_click="ignore",
        disabled=chosen.size == 0,
    )


FILE_SOURCE = "A file"
LIST_SOURCE = "A contact list"


def list_choice(console: Console) -> ContactList | None:
    """New campaign's "Recipients: a file / a contact list": the list chosen, or None for a
    file (always, for a member who may not read contact lists, or when there is none)."""
    if not console.actor.can(Permission.CONTACTS):
        return None
    lists = [x for x in console.ledger.contact_lists() if x.size]
    if not lists:
        return None
    source = st.radio(
        "Recipients",
        [FILE_SOURCE, LIST_SOURCE],
        horizontal=True,
        key="campaigns_source",
        help="A list's contacts are checked like a file's rows: each of its attributes is a "
        "{placeholder} of the template.",
    )
    if source != LIST_SOURCE:
        return None
    by_id = {x.id: x for x in lists}
    picked = st.selectbox(
        "Contact list",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} ({counted(by_id[i].size, 'contact')})",
        key="campaigns_list",
    )
    return by_id.get(picked)
