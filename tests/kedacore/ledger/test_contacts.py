"""Contact lists in the ledger: import (deduplicated by E.164 within the file and against the
list, attributes updated, invalid rows listed, all or nothing), search and paging, edits that
check the number again, deletions, the list a running campaign keeps — on both stores. And the
file and list conversions of ``kedacore.campaign.contacts``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from kedacore.campaign.contacts import contacts_from_file, list_recipients
from kedacore.campaign.recipients import RecipientLimits, RecipientsLimitError, read_recipients
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.contacts import ContactsError, NewContact
from kedacore.ledger.engine import reading
from kedacore.ledger.team import AuditFilter

ME = "mkt@example.com"
A, B, C = "+12062000001", "+12062000002", "+12062000003"


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url()) as led:
        yield led


def imported(ledger: Ledger, list_id: int, csv: str, country: str = "US"):
    found = contacts_from_file(read_recipients(csv.encode()), country)
    counts = ledger.import_contacts(list_id, found.contacts, by=ME, invalid=len(found.invalid))
    return found, counts


def test_an_import_dedupes_updates_and_lists_the_invalid_rows(ledger: Ledger) -> None:
    vip = ledger.create_contact_list("VIP", by=ME)
    found, counts = imported(
        ledger,
        vip,
        "phone,name,city\n"
        f"{A},Ana,Paris\n"
        "(206) 200-0002,Ben,\n"  # national: the default country
        "12345,Zed,Nowhere\n"
        f"{A},,Lyon\n"  # the same number again: merged into the first row
        "+447400123456,Gil,London\n",
    )
    assert [c.phone for c in found.contacts] == [A, B, "+447400123456"]
    assert [(r.row, r.phone, r.reason) for r in found.invalid] == [
        (4, "12345", "invalid number: too short")
    ]
    assert found.repeated == 1 and found.rows_read == 5
    assert (counts.added, counts.updated, counts.unchanged) == (3, 0, 0)
    first = ledger.contacts(vip)[0]
    assert first.attributes == {"name": "Ana", "city": "Lyon"} and first.country == "US"

    # A second file: one number new, one known with a new value, one known and the same.
    _, counts = imported(ledger, vip, f"Mobile,Name,code\n{A},Anna,C1\n{C},Cy,C3\n{B},Ben,\n")
    assert (counts.added, counts.updated, counts.unchanged) == (1, 1, 1)
    assert ledger.contact_lists()[0].size == 4
    anna = ledger.contacts(vip, search="anna")
    # "Name" is the attribute "name" (spelled as it was first): the value replaced, city kept.
    assert [c.attributes for c in anna] == [{"name": "Anna", "city": "Lyon", "code": "C1"}]
    entries = ledger.audit_entries(AuditFilter(actions=["contacts_import"]))
    assert entries[0].after == {
        "list": "VIP",
        "added": 1,
        "updated": 1,
        "unchanged": 1,
        "invalid": 0,
    }
    assert entries[1].after["invalid"] == 1


def test_an_import_is_all_or_nothing(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    vip = ledger.create_contact_list("VIP", by=ME)
    imported(ledger, vip, f"phone,name\n{A},Ana\n")
    with pytest.raises(ContactsError, match=r"not an E\.164 number"):
        ledger.import_contacts(
            vip, [NewContact(B, "US", {}), NewContact("2062000003", "US", {})], by=ME
        )

    def broken(*args: object, **kwargs: object) -> None:  # fails after the rows were written
        raise RuntimeError("the audit log is full")

    monkeypatch.setattr(ledger, "audit", broken)
    with pytest.raises(RuntimeError):
        ledger.import_contacts(
            vip, [NewContact(A, "US", {"name": "Changed"}), NewContact(B, "US", {})], by=ME
        )
    assert [(c.phone, c.attributes) for c in ledger.contacts(vip)] == [(A, {"name": "Ana"})]


def test_search_pages_and_a_list_is_read_back_as_a_recipients_table(ledger: Ledger) -> None:
    vip = ledger.create_contact_list("VIP", by=ME)
    rows = "".join(f"+1206200{i:04d},P{i},{'Chloé' if i == 7 else ''}\n" for i in range(1, 26))
    imported(ledger, vip, "phone,first name,nick\n" + rows)
    assert ledger.contact_count(vip) == 25
    page = ledger.contacts(vip, limit=10, offset=20)
    assert [c.phone for c in page] == [f"+1206200{i:04d}" for i in range(21, 26)]
    assert [c.phone for c in ledger.contacts(vip, search="CHLOÉ")] == ["+12062000007"]
    assert ledger.contact_count(vip, search="206 200-0012") == 1  # digits as people write them
    assert ledger.contact_count(vip, search="100%") == 0  # LIKE's wildcards are literal

    table = list_recipients(ledger.all_contacts(vip, page=7))
    assert table.columns == ("phone", "first name", "nick")
    assert table.rows[6] == (8, ("+12062000007", "P7", "Chloé"))
    assert table.rows[0] == (2, ("+12062000001", "P1", ""))
    assert table.phone_column == "phone" and table.country_column is None
    with pytest.raises(RecipientsLimitError) as refused:
        list_recipients(ledger.all_contacts(vip), limits=RecipientLimits(rows=24))
    assert refused.value.setting == "KEDA_MAX_ROWS"


def test_an_edit_checks_the_number_again_and_is_audited(ledger: Ledger) -> None:
    vip = ledger.create_contact_list("VIP", by=ME)
    imported(ledger, vip, f"phone,name\n{A},Ana\n{B},Ben\n")
    ana, ben = ledger.contacts(vip)
    for bad, why in [("12", "national number without a country"), ("+1 206 ABC", "letter")]:
        with pytest.raises(ContactsError, match=why):
            ledger.update_contact(ana.id, by=ME, phone=bad)
    with pytest.raises(ContactsError, match="already"):
        ledger.update_contact(ana.id, by=ME, phone=B)
    with pytest.raises(ContactsError, match="number"):
        ledger.update_contact(ana.id, by=ME, attributes={"Phone": "x"})
    after = ledger.update_contact(
        ana.id, by=ME, phone="206-200-0009", default_country="US", attributes={"name": "Ann"}
    )
    assert (after.phone, after.country, after.attributes) == ("+12062000009", "US", {"name": "Ann"})
    (entry,) = ledger.audit_entries(AuditFilter(actions=["contact_edit"]))
    assert entry.before == {"phone": A, "attributes": {"name": "Ana"}}
    assert entry.after == {"phone": "+12062000009", "attributes": {"name": "Ann"}}
    assert ledger.delete_contacts(vip, [ben.id, 999_999], by=ME) == 1
    assert [c.phone for c in ledger.contacts(vip)] == ["+12062000009"]


def test_a_list_is_named_once_renamed_and_deleted_unless_a_campaign_runs_to_it(
    ledger: Ledger,
) -> None:
    vip = ledger.create_contact_list("VIP", by=ME)
    with pytest.raises(ContactsError, match="exists already"):
        ledger.create_contact_list(" VIP ", by=ME)
    imported(ledger, vip, f"phone\n{A}\n{B}\n")
    ledger.rename_contact_list(vip, "Best customers", by=ME)
    assert ledger.contact_list_named("best CUSTOMERS").id == vip  # type: ignore[union-attr]
    campaign = ledger.create_campaign("To VIP", list_id=vip)
    ledger.set_campaign_status(campaign, "sending")
    with pytest.raises(ContactsError, match="is not finished"):
        ledger.delete_contact_list(vip, by=ME)
    ledger.set_campaign_status(campaign, "done")
    assert ledger.delete_contact_list(vip, by=ME) == 2
    assert ledger.contact_lists() == []
    with reading(ledger.engine) as conn:
        assert conn.scalar(select(s.contacts.c.id)) is None
        assert conn.scalar(select(s.campaigns.c.list_id)) == vip  # the campaign remembers it
    actions = [e.action for e in ledger.audit_entries(AuditFilter(actors=[ME]))]
    assert actions == [
        "contact_list_delete",
        "contact_list_rename",
        "contacts_import",
        "contact_list_create",
    ]
