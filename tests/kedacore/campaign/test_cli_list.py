"""``python -m kedacore.campaign send --list NAME``: a contact list of the console's ledger as the
campaign's recipients — the real command in a subprocess against a real sandbox gateway, on
both stores: each contact once, their attributes in the text, the list recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from kedacore.campaign.cli import EXIT_BAD_INPUT, EXIT_DONE, EXIT_PREVIEW
from kedacore.campaign.contacts import contacts_from_file
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.audit import AuditFilter
from kedacore.ledger.engine import reading
from tests.kedacore.campaign import test_cli_send
from tests.kedacore.campaign.helpers import GatewayTally
from tests.kedacore.campaign.test_cli_send import ME, json_lines, send


@pytest.fixture
def _setup(gateway, tmp_path: Path, ledger_url: Callable[..., str]) -> dict:
    """test_cli_send's: an account of 100 USD, its keys for the command, a ledger."""
    return test_cli_send.setup.__wrapped__(gateway, tmp_path, ledger_url)


CONTACTS = "phone,name,code\n+12062000001,Ana,C1\n+12062000002,Ben,C2\n+447400000001,Dev,C3\n"


def a_list(ledger_url: str) -> int:
    with Ledger(ledger_url) as ledger:
        list_id = ledger.create_contact_list("VIP customers", by="mkt@example.com")
        found = contacts_from_file(read_recipients(CONTACTS.encode()), "US")
        ledger.import_contacts(list_id, found.contacts, by="mkt@example.com")
        return list_id


def test_a_campaign_to_a_list_sends_each_contact_once_with_their_attributes(
    gateway, _setup: dict
) -> None:
    list_id = a_list(_setup["ledger"])
    preview = send(_setup, "--list", "vip customers", "--template", "Hi {name}, code {code}")
    assert preview.returncode == EXIT_PREVIEW, preview.stderr
    assert "List vip customers: 3 contacts; attributes name, code." in preview.stdout
    assert "Every row can be sent: 3 recipients." in preview.stdout

    done = send(_setup, "--list", "VIP customers", "--template", "Hi {name}, code {code}", "--yes")
    assert done.returncode == EXIT_DONE, done.stderr
    assert json_lines(done.stdout)[-1]["report"]["recipients_sent"] == 3
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.recipients, tally.repeated) == (3, 3, [])
    sent = sorted(content for (content,) in gateway.query("SELECT content FROM messages"))
    assert sent == ["Hi Ana, code C1", "Hi Ben, code C2", "Hi Dev, code C3"]
    with Ledger(_setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        assert campaign.name == "VIP customers"  # the list's name, without --name
        with reading(ledger.engine) as conn:
            assert conn.scalar(select(s.campaigns.c.list_id)) == list_id
        (created,) = ledger.audit_entries(AuditFilter(actions=["campaign_create"]))
        assert created.actor == ME and created.detail.endswith("--list VIP customers")


def test_an_unknown_list_or_placeholder_is_refused_and_nothing_is_sent(
    gateway, _setup: dict
) -> None:
    a_list(_setup["ledger"])
    done = send(_setup, "--list", "Nobody", "--template", "Hi", "--yes")
    assert done.returncode == EXIT_BAD_INPUT
    assert "no contact list named Nobody (lists: VIP customers)" in done.stderr
    done = send(_setup, "--list", "VIP customers", "--template", "Hi {nickname}", "--yes")
    assert done.returncode == EXIT_BAD_INPUT
    assert "unknown placeholder {nickname}" in done.stderr
    both = send(_setup, "--list", "VIP customers", "--file", "x.csv", "--template", "Hi")
    assert both.returncode != 0 and "not allowed with argument" in both.stderr
    assert GatewayTally.read(gateway.query).messages == 0
