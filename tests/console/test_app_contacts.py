"""Audience → Contacts through AppTest, from app.py, on both stores: a file becomes a list (the
invalid rows listed, nothing made from a file over the limits), another file is added to it,
the list is searched, a contact edited (its number checked again) and deleted, the list
exported formula-safe; a campaign to a list through Campaigns → New campaign and the real
sandbox gateway; and a member without the contacts permission refused, audited."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from console.audience.contacts import LIST_SOURCE, contacts_frame
from kedacore.campaign.contacts import contacts_from_file
from kedacore.campaign.recipients import read_recipients
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.contacts import Contact
from kedacore.ledger.engine import reading
from kedacore.ledger.team import AuditFilter
from tests.console.test_app import metric, shown, start
from tests.console.test_app_campaigns import runtime, texts, wait_for_the_run
from tests.console.test_app_team import BOSS, losing, not_allowed, page_alone, signed_in

PAGE = "pages/contacts.py"
FILE = (
    b"phone,name,city\n"
    b"+12062000001,Ana,Paris\n"
    b"2062000002,Ben,\n"
    b"12345,Zed,Nowhere\n"
    b"+12062000001,,Lyon\n"  # Ana again: merged
    b'+447400123456,=HYPERLINK("http://x"),London\n'
)


def ledger_of(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def new_list(at, name: str, data: bytes, filename: str = "people.csv") -> None:
    at.text_input(key="contacts_new_name").input(name)
    at.file_uploader(key="contacts_new_file").upload(filename, data, "text/csv").run()
    at.button(key="contacts_new_import").click().run()
    assert not at.exception, at.exception


def test_a_file_becomes_a_list_that_is_added_to_searched_edited_and_deleted(
    data_dir: Path,
) -> None:
    at = start(PAGE)
    assert "No contact list yet" in texts(at.info)
    new_list(at, "VIP", FILE)
    said = texts(at.success)
    assert (
        "5 row(s) read into VIP: 3 added, 0 updated, 1 invalid (left out), 1 repeated in the "
        "file (merged into their first row)." in said
    )
    invalid = next(d.value for d in at.dataframe if "Reason" in d.value.columns)
    assert invalid.to_dict("list") == {
        "Row": [4],
        "Phone": ["12345"],
        "Reason": ["invalid number: too short"],
    }
    lists = next(d.value for d in at.dataframe if "List" in d.value.columns)
    assert list(lists["List"]) == ["VIP"] and list(lists["Contacts"]) == [3]
    table = next(d.value for d in at.dataframe if "Phone" in d.value.columns and "city" in d.value)
    assert list(table["Phone"]) == ["+12062000001", "+12062000002", "+447400123456"]
    assert list(table["city"]) == ["Lyon", "", "London"]

    # Another file into the same list: one known number updated, one new.
    at.file_uploader(key="contacts_add_file").upload(
        "more.csv", b"Mobile,Name\n+12062000002,Benjamin\n+12062000003,Cy\n", "text/csv"
    ).run()
    at.button(key="contacts_add_import").click().run()
    assert "2 row(s) read into VIP: 1 added, 1 updated, 0 invalid" in texts(at.success)

    at.text_input(key="contacts_search").input("benj").run()
    assert "1 contact matching the search." in texts(at.caption)
    at.text_input(key="contacts_search").input("").run()

    # Edit: a number that is not one is refused with the reason; a good one is saved.
    with ledger_of(data_dir) as book:
        vip_id = book.contact_list_named("VIP").id  # type: ignore[union-attr]
        ben_id = next(c.id for c in book.contacts(vip_id) if c.phone == "+12062000002")
    at.selectbox(key="contacts_edit_pick").set_value(ben_id).run()
    at.text_input(key=f"contacts_edit_phone_{ben_id}").input("+1 206 ABC").run()
    at.button(key="contacts_edit_save").click().run()
    assert "Not saved:" in at.error[0].value and "letter" in shown(at.error[0].value)
    at.text_input(key=f"contacts_edit_phone_{ben_id}").input("(206) 200-0009").run()
    at.button(key="contacts_edit_save").click().run()
    assert not at.exception
    assert "+12062000009 saved." in shown(texts(at.success))
    at.selectbox(key="contacts_edit_pick").set_value(ben_id).run()
    at.button(key="contacts_edit_delete").click().run()
    with ledger_of(data_dir) as book:
        vip = book.contact_list_named("VIP")
        assert vip is not None and vip.size == 3
        assert [c.phone for c in book.contacts(vip.id)] == [
            "+12062000001",
            "+447400123456",
            "+12062000003",
        ]
        actions = [e.action for e in book.audit_entries(AuditFilter())]
    assert actions[:5] == [
        "contacts_delete",
        "contact_edit",
        "contacts_import",
        "contacts_import",
        "contact_list_create",
    ]
    assert {b.key for b in at.get("download_button")} >= {"contacts_csv", "contacts_xlsx"}

    # Delete the list: only once it is confirmed.
    assert at.button(key="contacts_delete_list").disabled
    at.checkbox(key="contacts_delete_sure").check().run()
    at.button(key="contacts_delete_list").click().run()
    assert "List VIP deleted with its 3 contacts." in shown(texts(at.success))
    assert "No contact list yet" in texts(at.info)


def test_a_file_over_the_row_limit_is_refused_and_no_list_is_made(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEDA_MAX_ROWS", "3")
    at = start(PAGE)
    new_list(at, "Too big", FILE)
    error = shown(at.error[0].value)
    assert "more than 3 rows" in error and "KEDA_MAX_ROWS" in error
    with ledger_of(data_dir) as book:
        assert book.contact_lists() == []
        assert book.audit_entries(AuditFilter()) == []


def test_the_export_is_formula_safe() -> None:
    when = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    people = [
        Contact(1, 1, "+12062000001", "US", {"name": '=HYPERLINK("http://x")'}, when, when),
        Contact(2, 1, "+447400123456", "GB", {"name": "Ana", "city": "@SUM(A1)"}, when, when),
    ]
    frame = contacts_frame(people, None)
    rows = list(csv.reader(io.StringIO(to_csv(frame, bom=True).decode("utf-8-sig"))))
    assert rows == [
        ["Phone", "Country", "name", "city", "Changed (UTC)"],
        ["'+12062000001", "US", '\'=HYPERLINK("http://x")', "", "2026-12-01T09:30:00Z"],
        ["'+447400123456", "GB", "Ana", "'@SUM(A1)", "2026-12-01T09:30:00Z"],
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(frame))).active
    cell = sheet["C2"]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"
    assert sheet["A2"].value == "+12062000001"


def test_a_campaign_to_a_list_sends_each_contact_once_with_their_attributes(
    data_dir: Path,
) -> None:
    at = start("pages/campaigns.py")
    book = runtime().ledger
    vip = book.create_contact_list("VIP", by="mkt@example.com")
    found = contacts_from_file(read_recipients(FILE), "US")
    book.import_contacts(vip, found.contacts, by="mkt@example.com")
    at.run()
    at.radio(key="campaigns_source").set_value(LIST_SOURCE).run()
    at.text_input(key="campaigns_name").input("To VIP").run()
    at.text_area(key="campaigns_template").input("Hi {name}, see you in {city}").run()
    assert not at.exception, at.exception
    assert "3 contacts in the list; attributes: **name**, **city**." in shown(texts(at.caption))
    assert metric(at, "Recipients") == "2"  # Ben has no city: a problem, left out
    problems = next(d.value for d in at.dataframe if "Problem" in d.value.columns)
    assert list(problems["Row"]) == [3] and "empty value for {city}" in problems["Reason"][0]
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    (campaign,) = book.campaigns()
    wait_for_the_run(campaign.id)
    with sqlite3.connect(f"file:{data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        sent = sorted(db.execute("SELECT recipient, content FROM messages"))
    assert sent == [
        ("+12062000001", "Hi Ana, see you in Lyon"),
        ("+447400123456", 'Hi =HYPERLINK("http://x"), see you in London'),
    ]
    with reading(book.engine) as conn:
        assert conn.scalar(select(s.campaigns.c.list_id)) == vip
    (created,) = book.audit_entries(AuditFilter(actions=["campaign_create"]))
    assert created.after["list"] == vip


def test_without_the_contacts_permission_the_page_and_its_actions_are_refused(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ledger_of(data_dir) as book:
        book.add_member("support@example.com", ["support"], by=BOSS)
    at = page_alone(PAGE, "support@example.com")
    assert not at.exception and not_allowed(at)
    assert not at.file_uploader and not at.dataframe

    # An admin whose role goes between the page and the click: the import is refused.
    at = signed_in(BOSS).run()
    at.switch_page(PAGE).run()
    losing("admin", monkeypatch)
    new_list(at, "VIP", FILE)
    assert any("To import contacts you need" in e.value for e in at.error)
    with ledger_of(data_dir) as book:
        assert book.contact_lists() == []
        refused = book.audit_entries(AuditFilter(outcomes=["refused"]))
    assert [(e.actor, e.target, e.detail) for e in refused] == [
        (BOSS, "contact lists", "import contacts (needs contacts)"),
        ("support@example.com", "Contacts", "open the Contacts page (needs contacts)"),
    ]
