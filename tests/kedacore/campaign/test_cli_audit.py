"""The command line is in the team's records: ``python -m kedacore.campaign run`` (a start, or
a resume) and ``cancel`` are in the ledger's audit log, by ``command line (<OS user>)`` — and
so are their refusals (a campaign waiting for approval, rejected, cancelled, done).

Against a real sandbox gateway: a start sends, a resume sends the rest, nothing is sent for a
refused command.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from kedacore.campaign import cli as command_line
from kedacore.campaign.cli import EXIT_BAD_INPUT, actor
from kedacore.campaign.cli import main as cli
from kedacore.ledger import Ledger, PlannedBatch
from kedacore.ledger.audit import AuditFilter
from tests.kedacore.campaign.helpers import GatewayTally

# The OS user of the process, whatever LOGNAME and USER say (``keys`` sets them to "ops-anna").
ME = f"command line ({pwd.getpwuid(os.geteuid()).pw_name})"
NUMBERS = [f"+1206555{i:04d}" for i in range(6)]


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Ledger:
    with Ledger(ledger_url()) as led:
        yield led


@pytest.fixture
def keys(gateway, monkeypatch: pytest.MonkeyPatch):
    account = gateway.create_account(balance="100")
    monkeypatch.setenv("KEDA_API_KEY", account.api_key)
    monkeypatch.setenv("KEDA_ENCRYPTION_KEY", account.encryption_key)
    monkeypatch.setenv("KEDA_BASE_URL", gateway.base_url)
    monkeypatch.setenv("KEDA_BACKUP_URL", gateway.base_url)
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "ops-anna")
    return account


def campaign(ledger: Ledger, name: str = "CLI", numbers: list[str] = NUMBERS) -> int:
    """A planned campaign of one request per two numbers, 0.05 USD a message."""
    campaign_id = ledger.create_campaign(name, template="Hi", created_by="m@example.com")
    ledger.plan_campaign(
        campaign_id,
        [
            PlannedBatch("US", "Hi", tuple(numbers[i : i + 2]), 100_000)
            for i in range(0, len(numbers), 2)
        ],
    )
    return campaign_id


def log(ledger: Ledger) -> list[tuple[str, str, str, str]]:
    """(action, actor, outcome, target) of the audit log, oldest first."""
    found = ledger.audit_entries(AuditFilter())
    return [(e.action, e.actor, e.outcome, e.target) for e in reversed(found)]


def run(ledger: Ledger, campaign_id: int, *more: str) -> int:
    return cli(["run", "--ledger", ledger.url, "--campaign", str(campaign_id), *more])


def cancel(ledger: Ledger, campaign_id: int) -> int:
    return cli(["cancel", "--ledger", ledger.url, "--campaign", str(campaign_id)])


def test_the_actor_is_the_command_line_and_its_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's user, not LOGNAME/USER: whoever runs the command sets those to anything."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "boss@example.com approved by finance")
    assert actor() == ME
    named = SimpleNamespace(pw_name="ops\x1b[31m-bob\n")  # no terminal codes in the log
    monkeypatch.setattr(command_line.pwd, "getpwuid", lambda uid: named)
    assert actor() == "command line (ops[31m-bob)"


def test_run_cancel_status_refuse_an_absent_ledger_and_create_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --ledger, from a folder where the console has no ledger: refused, not created."""
    monkeypatch.chdir(tmp_path)
    for name in ("KEDA_DATABASE_URL", "KEDA_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    default = tmp_path.resolve() / ".kedasms" / "ledger.db"
    for command in ("run", "cancel", "status"):
        assert cli([command, "--campaign", "1"]) == EXIT_BAD_INPUT
        assert capsys.readouterr().err == (
            f"error: no ledger at {default}: pass --ledger with the console's database "
            "(KEDA_DATABASE_URL)\n"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_start_and_a_resume_from_the_command_line_are_audited(
    gateway, keys, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign_id = campaign(ledger)
    assert run(ledger, campaign_id, "--concurrency", "2") == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])["report"]
    assert (report["status"], report["recipients_sent"]) == ("done", 6)
    assert GatewayTally.read(gateway.query).messages == 6
    (entry,) = ledger.audit_entries(AuditFilter(actions=["campaign_start"]))
    assert (entry.actor, entry.outcome, entry.target) == (ME, "done", f"campaign {campaign_id}")
    assert entry.before == {"status": "planned"}
    assert entry.after == {
        "name": "CLI",
        "recipients": 6,
        "recipients_left": 6,
        "estimate": "0.3",
        "currency": "USD",
        "concurrency": 2,
        "rate": None,
    }

    # Paused half-way (by anyone): the next run is a resume, and sends the rest once.
    other = campaign(ledger, "Second", [f"+1206556{i:04d}" for i in range(4)])
    ledger.pause_campaign(other, "Paused by someone")
    assert run(ledger, other) == 0
    assert GatewayTally.read(gateway.query).messages == 10
    assert log(ledger) == [
        ("campaign_start", ME, "done", f"campaign {campaign_id}"),
        ("campaign_resume", ME, "done", f"campaign {other}"),
    ]


def test_refused_runs_and_cancels_are_audited_and_send_nothing(
    gateway, keys, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    held = campaign(ledger, "Held")
    ledger.hold_campaign(held, by="m@example.com", threshold_micros=50_000)
    assert run(ledger, held) == 1
    assert cancel(ledger, held) == 1
    said = capsys.readouterr().err
    assert f"campaign {held} waits for approval: it cannot be sent" in said
    assert "it cannot be cancelled; it is decided on the Approvals page" in said
    assert ledger.campaign(held).status == "awaiting"
    assert ledger.approval_of("campaign", held).waiting

    rejected = campaign(ledger, "Rejected", [f"+1206557{i:04d}" for i in range(2)])
    item = ledger.hold_campaign(rejected, by="m@example.com", threshold_micros=50_000)
    ledger.reject(item.id, by="f@example.com", reason="Wrong list")
    assert run(ledger, rejected) == 1
    assert GatewayTally.read(gateway.query).messages == 0

    refused = [row for row in log(ledger) if row[2] == "refused"]
    assert refused == [
        ("campaign_start", ME, "refused", f"campaign {held}"),
        ("campaign_cancel", ME, "refused", f"campaign {held}"),
        ("campaign_start", ME, "refused", f"campaign {rejected}"),
    ]
    (first, *_) = ledger.audit_entries(AuditFilter(actions=["campaign_start"]), limit=1)
    assert "was rejected" in first.detail


def test_a_cancel_from_the_command_line_is_audited_and_nothing_more_is_sent(
    gateway, keys, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign_id = campaign(ledger)
    ledger.pause_campaign(campaign_id, "Paused before it started")
    assert cancel(ledger, campaign_id) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert ledger.campaign(campaign_id).status == "cancelled"
    (entry,) = ledger.audit_entries(AuditFilter(actions=["campaign_cancel"]))
    assert (entry.actor, entry.outcome) == (ME, "done")
    assert entry.before == {"status": "paused"}
    assert entry.after == {"status": "cancelled", "recipients_left": 6}

    assert run(ledger, campaign_id) == 1  # cancelled: refused, audited, nothing sent
    assert cancel(ledger, campaign_id) == 1
    assert GatewayTally.read(gateway.query).messages == 0
    assert [row[:3] for row in log(ledger)] == [
        ("campaign_cancel", ME, "done"),
        ("campaign_resume", ME, "refused"),
        ("campaign_cancel", ME, "refused"),
    ]
