"""``python -m kedacore.campaign send``: a recipients file to a campaign from the command line.

The real command in a subprocess, against a real sandbox gateway: a preview creates nothing;
``--yes`` sends every valid row exactly once, charged as priced; rows with problems are listed
by row number and left out; over the team's approval threshold the campaign waits (nothing at
the gateway, an approvals row waiting); a short balance pauses it (exit 3, as ``run``); bad
input changes nothing; ``--at`` schedules it (exit 6, nothing sent before its time). Without
``--ledger`` the ledger is the console's (its secrets file), and a ledger that does not exist
is refused, never created.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from kedacore.campaign.cli import (
    EXIT_AWAITING,
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_DONE,
    EXIT_PAUSED,
    EXIT_PREVIEW,
    EXIT_QUEUED,
    EXIT_SCHEDULED,
)
from kedacore.campaign.cli import main as cli
from kedacore.ledger import Ledger
from kedacore.ledger.audit import AuditFilter
from kedacore.ledger.team import APPROVAL_THRESHOLD
from kedacore.money import from_micros
from tests.kedacore.campaign.helpers import GatewayTally
from tests.support import REPO_ROOT

# The OS user of the process, whatever LOGNAME and USER say (the commands run with "ops-anna").
ME = f"command line ({pwd.getpwuid(os.geteuid()).pw_name})"
# Rows 2–9 of the file (the header is row 1): four can be sent (three US at 0.05, one GB at
# 0.045 USD a segment); the others have a problem each.
CSV = """phone,name,country
+12062000001,Ana,US
+12062000002,Ben,US
12345,Chloé,US
+447400000001,Dev,GB
+12062000001,Ana again,US
+12062000003,,US
2062000004,Emma,
+4915100000001,Felix,US
"""
SENT = {"+12062000001", "+12062000002", "+447400000001", "+12062000004"}
COST = Decimal("0.195")  # 3 × 0.05 + 0.045


@pytest.fixture
def setup(gateway, tmp_path: Path, ledger_url: Callable[..., str]) -> dict:
    """An account of 100 USD, its keys in the environment of the command, the file, a ledger."""
    account = gateway.create_account(balance="100")
    env = {
        **os.environ,
        "KEDA_API_KEY": account.api_key,
        "KEDA_ENCRYPTION_KEY": account.encryption_key,
        "KEDA_BASE_URL": gateway.base_url,
        "KEDA_BACKUP_URL": gateway.base_url,
        **dict.fromkeys(("LOGNAME", "USER", "LNAME", "USERNAME"), "ops-anna"),
    }
    for name in ("KEDA_DATABASE_URL", "KEDA_MAX_ROWS", "KEDA_CALLBACK_URL"):
        env.pop(name, None)
    file = tmp_path / "spring.csv"
    file.write_text(CSV, encoding="utf-8")
    # On either store. These tests read what ``send --yes`` sent when it returns: on
    # PostgreSQL it would queue the campaign for the workers (exit 7, the path of
    # tests/kedacore/campaign/test_worker*.py), so here it runs it itself, as on SQLite.
    env["KEDA_CAMPAIGN_WORKERS"] = "off"
    ledger = ledger_url()
    Ledger(ledger).close()  # the console's ledger exists: the command never creates one
    return {"account": account, "env": env, "file": file, "ledger": ledger}


def command(setup: dict, *args: str) -> list[str]:
    base = [sys.executable, "-m", "kedacore.campaign", "send", "--ledger", setup["ledger"]]
    return [*base, *args]


def send(setup: dict, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(setup, *args),
        env=env or setup["env"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def standard(setup: dict, *more: str) -> list[str]:
    return ["--file", str(setup["file"]), "--template", "Hi {name}", "--country", "US", *more]


def nothing_created(setup: dict, gateway) -> None:
    """No campaign, no audit entry, no message, no money moved."""
    with Ledger(setup["ledger"]) as ledger:
        assert ledger.campaigns() == []
        assert ledger.audit_entries(AuditFilter()) == []
        assert ledger.approvals() == []
    assert GatewayTally.read(gateway.query).messages == 0
    assert gateway.money(setup["account"].email)["balance"] == 100_000_000


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_preview_lists_the_problems_by_row_and_the_cost_and_creates_nothing(
    gateway, setup: dict, tmp_path: Path
) -> None:
    problems = tmp_path / "problems.csv"
    done = send(setup, *standard(setup, "--problems", str(problems)))
    assert done.returncode == EXIT_PREVIEW, done.stderr
    out = done.stdout
    assert "spring.csv: 8 row(s) read as Unicode (UTF-8), detected; phone column phone" in out
    assert "Left out: 4 row(s) with problems" in out
    # Each row left out, by its number in the file, with why.
    assert "row 4: 12345 — invalid_number: invalid number" in out
    assert "row 6: +12062000001 — duplicate: duplicate of row 2" in out
    assert "row 7: +12062000003 — missing_variable: empty value for {name}" in out
    assert "row 9: +4915100000001 — wrong_country: number of another country" in out
    assert not re.search(r"row (2|3|5|8):", out)  # the rows sent are not problems
    lines = [line.split() for line in out.splitlines()]
    assert ["US", "3", "3", "3", "0.15", "USD"] in lines
    assert ["GB", "1", "1", "1", "0.045", "USD"] in lines
    assert ["total", "4", "4", "4", "0.195", "USD"] in lines
    assert "Balance: 100.00 USD now; 99.805 USD left after this campaign." in out
    assert "Preview only: nothing was created or sent. Add --yes to send it." in out
    # --problems: every problem, as the page's download (phone cells formula-safe).
    written = list(csv.reader(problems.read_text(encoding="utf-8-sig").splitlines()))
    assert [row[:3] for row in written] == [
        ["row", "phone", "problem"],
        ["4", "12345", "invalid_number"],
        ["6", "'+12062000001", "duplicate"],
        ["7", "'+12062000003", "missing_variable"],
        ["9", "'+4915100000001", "wrong_country"],
    ]
    nothing_created(setup, gateway)


def test_yes_sends_every_valid_row_once_charged_as_priced_and_audited(gateway, setup: dict) -> None:
    done = send(setup, *standard(setup, "--yes", "--name", "Spring sale", "--concurrency", "4"))
    assert done.returncode == EXIT_DONE, done.stderr
    assert "Campaign #1 Spring sale (id 1) created: sending." in done.stdout
    *progress, last = json_lines(done.stdout)
    assert progress and progress[-1]["status"] == "done"
    report = last["report"]
    assert (report["status"], report["recipients_sent"], report["debited"]) == ("done", 4, "0.195")

    # The gateway holds one message per valid row, and none for the rows left out.
    tally = GatewayTally.read(gateway.query)
    assert (tally.messages, tally.recipients, tally.repeated) == (4, 4, [])
    sent = dict(gateway.query("SELECT recipient, content FROM messages"))
    assert {"+" + r.lstrip("+") for r in sent} == SENT
    assert sorted(sent.values()) == ["Hi Ana", "Hi Ben", "Hi Dev", "Hi Emma"]

    # Charged as priced: balance drop = ledger's debited = Σ message prices = the total.
    drop = 100_000_000 - gateway.money(setup["account"].email)["balance"]
    with Ledger(setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        assert (campaign.name, campaign.status, campaign.created_by) == ("Spring sale", "done", ME)
        assert from_micros(drop) == from_micros(campaign.debited_micros) == COST
        assert from_micros(tally.price_micros) == COST
        entries = [(e.action, e.actor, e.outcome) for e in ledger.audit_entries(AuditFilter())]
        assert list(reversed(entries)) == [
            ("campaign_create", ME, "done"),
            ("campaign_start", ME, "done"),
        ]
        (created,) = ledger.audit_entries(AuditFilter(actions=["campaign_create"]))
        assert created.target == f"campaign {campaign.id}"
        assert created.after == {
            "name": "Spring sale",
            "recipients": 4,
            "requests": 4,
            "estimate": "0.195",
            "currency": "USD",
            "rows_left_out": 4,
        }


def test_over_the_approval_threshold_it_waits_and_nothing_is_sent(gateway, setup: dict) -> None:
    with Ledger(setup["ledger"]) as ledger:
        ledger.set_team_setting(APPROVAL_THRESHOLD, "0.1", by="f@example.com")
        ledger.add_member("f@example.com", ["finance"], by="boss@example.com")

    preview = send(setup, *standard(setup))
    assert preview.returncode == EXIT_PREVIEW
    assert "over the team's approval threshold of 0.10 USD: it waits" in preview.stdout

    done = send(setup, *standard(setup, "--yes"))
    assert done.returncode == EXIT_AWAITING, done.stderr
    assert "(id 1) waits for approval: nothing was sent" in done.stdout
    assert "A finance or admin member (f@example.com) approves or rejects it" in done.stdout
    (said,) = json_lines(done.stdout)
    assert said == {
        "campaign": 1,
        "status": "awaiting",
        "approval": said["approval"],
        "estimate": "0.195",
        "threshold": "0.1",
        "currency": "USD",
    }
    assert GatewayTally.read(gateway.query).messages == 0
    assert gateway.money(setup["account"].email)["balance"] == 100_000_000
    with Ledger(setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        assert (campaign.status, campaign.name, campaign.recipients) == (
            "awaiting",
            "spring.csv",
            4,
        )
        item = ledger.approval_of("campaign", campaign.id)
        assert item.id == said["approval"]
        assert (item.state, item.requested_by, item.estimate) == ("waiting", ME, COST)
        actions = [e.action for e in reversed(ledger.audit_entries(AuditFilter(actors=[ME])))]
        assert actions == ["campaign_create", "campaign_awaiting"]


def test_a_short_balance_pauses_it_as_run_does(gateway, setup: dict) -> None:
    """0.12 USD pays two of the four messages: the rest waits for a top-up (exit 3)."""
    account = gateway.create_account(balance="0.12")
    env = {**setup["env"], "KEDA_API_KEY": account.api_key}
    env["KEDA_ENCRYPTION_KEY"] = account.encryption_key
    done = send(setup, *standard(setup, "--yes", "--concurrency", "1"), env=env)
    assert done.returncode == EXIT_PAUSED, done.stderr
    assert "Balance: 0.12 USD now; 0.075 USD short of this campaign." in done.stdout
    assert "Warning: The balance is 0.12 USD; the campaign costs 0.195 USD" in done.stdout
    report = json_lines(done.stdout)[-1]["report"]
    assert report["status"] == "paused"
    sent = GatewayTally.read(gateway.query)
    assert sent.messages == report["recipients_sent"] == 2
    with Ledger(setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        assert campaign.status == "paused"


def test_bad_input_says_why_and_changes_nothing(gateway, setup: dict, tmp_path: Path) -> None:
    """Each case exits 2 with its sentence on stderr; all run at once."""
    file = str(setup["file"])
    nobody = tmp_path / "nobody.csv"
    nobody.write_text("phone,name\n123,Ana\n,Ben\n", encoding="utf-8")
    no_key = {k: v for k, v in setup["env"].items() if k != "KEDA_API_KEY"}
    cases: list[tuple[Sequence[str], dict | None, int, str]] = [
        (["--file", str(tmp_path / "missing.csv")], None, EXIT_BAD_INPUT, "no such file: "),
        (["--file", file, "--template", "Hi {name"], None, EXIT_BAD_INPUT, "error: spring.csv: "),
        (
            ["--file", file, "--template", "Hi {first_name}"],
            None,
            EXIT_BAD_INPUT,
            "unknown placeholder {first_name}: the file has no such column",
        ),
        (["--file", file], {**setup["env"], "KEDA_MAX_ROWS": "3"}, EXIT_BAD_INPUT, "KEDA_MAX_ROWS"),
        (["--file", str(nobody), "--template", "Hi {name}"], None, EXIT_BAD_INPUT, "no row can"),
        (["--file", file], no_key, EXIT_BAD_INPUT, "KEDA_API_KEY"),
        (["--file", file, "--at", "2099-03-02T09:00"], None, EXIT_BAD_INPUT, "has no time zone"),
        (["--file", file, "--local-time", "9am"], None, EXIT_BAD_INPUT, "a time is HH:MM"),
        (["--file", file, "--quiet", "22-7"], None, EXIT_BAD_INPUT, "a time is HH:MM"),
        (["--file", file, "--local-time", "09:00", "--zone", "Mars/Base"], None, 2, "unknown"),
    ]
    running = [
        subprocess.Popen(
            command(setup, "--template", "Hi", *args, "--yes"),
            env=env or setup["env"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, env, _, _ in cases
    ]
    for proc, (args, _, code, sentence) in zip(running, cases, strict=True):
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, sentence in err) == (code, True), (args, out, err)
        assert err.startswith("error: ") and "Traceback" not in err
        assert "created: sending" not in out
    nothing_created(setup, gateway)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--template", "   "], "the template is empty"),
        (["--country", "XX"], "unknown default country 'XX'"),
        (["--sender", "no spaces allowed"], "sender"),
        (["--name", "x" * 201], "--name is 201 characters long; at most 200"),
        (["--name", "  "], "--name is empty"),
        (["--at", "tomorrow 9am"], "is not an ISO 8601 time"),
        (["--at", "2001-03-02T09:00Z"], "is in the past"),
        (["--rate", "0"], "--rate must be more than 0"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'"),
    ],
)
def test_more_bad_input_in_process(
    gateway,
    setup: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    sentence: str,
) -> None:
    """The same ``main`` as the command (started as a process above), called in this one."""
    for name, value in setup["env"].items():
        if name.startswith("KEDA_"):
            monkeypatch.setenv(name, value)
    options = ["--file", str(setup["file"]), "--template", "Hi {name}", *args, "--yes"]
    assert cli(["send", "--ledger", setup["ledger"], *options]) == EXIT_BAD_INPUT
    said = capsys.readouterr()
    assert sentence in said.err, said.err
    assert "created: sending" not in said.out
    nothing_created(setup, gateway)


def test_help_documents_the_exit_codes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kedacore.campaign", "send", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert sorted(EXIT_CODES) == list(range(8))
    for code, text in EXIT_CODES.items():
        assert f"\n  {code}  {text}\n" in done.stdout
    for code, meaning in (
        (EXIT_DONE, "sent to the end"),
        (EXIT_BAD_INPUT, "bad input"),
        (EXIT_PAUSED, "paused"),
        (EXIT_PREVIEW, "preview only (no --yes)"),
        (EXIT_AWAITING, "created and waiting for approval"),
        (EXIT_SCHEDULED, "created and scheduled"),
        (EXIT_QUEUED, "created and queued"),
    ):
        assert EXIT_CODES[code].startswith(meaning)


def test_a_held_command_line_campaign_is_approved_on_the_console_side_then_runs(
    gateway, setup: dict
) -> None:
    with Ledger(setup["ledger"]) as ledger:
        ledger.set_team_setting(APPROVAL_THRESHOLD, "0.1", by="f@example.com")
        ledger.add_member("f@example.com", ["finance"], by="boss@example.com")
    held = send(setup, *standard(setup, "--yes"))
    assert held.returncode == EXIT_AWAITING, held.stderr
    with Ledger(setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        item = ledger.approval_of("campaign", campaign.id)
        approved = ledger.approve(item.id, by="f@example.com", reason="planned for spring")
        assert approved.state == "approved"
        assert ledger.campaign(campaign.id).status == "planned"
    run = subprocess.run(
        [sys.executable, "-m", "kedacore.campaign", "run", "--ledger", setup["ledger"],
         "--campaign", str(campaign.id)],
        env=setup["env"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert GatewayTally.read(gateway.query).messages == 4
    assert gateway.money(setup["account"].email)["balance"] == 100_000_000 - 195_000


def elsewhere(setup: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The command run from another folder (no ``.streamlit`` there), without ``--ledger``."""
    folder = tmp_path / "ops"
    folder.mkdir(exist_ok=True)
    env = {**setup["env"], "PYTHONPATH": str(REPO_ROOT)}
    env.pop("KEDA_DATA_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "kedacore.campaign", *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_absent_ledger_is_refused_and_never_created(gateway, setup: dict, tmp_path: Path):
    """A new ledger has no approval threshold and is not the audit log the team reads: ``send
    --yes``, ``run``, ``cancel``, ``status`` refuse it (exit 2), a preview reads it as empty."""
    folder = tmp_path / "ops"
    default = folder.resolve() / ".kedasms" / "ledger.db"
    said = f"error: no ledger at {default}: pass --ledger with the console's database"
    sent = elsewhere(setup, tmp_path, "send", *standard(setup, "--yes"))
    assert (sent.returncode, said in sent.stderr) == (EXIT_BAD_INPUT, True), sent.stderr
    assert "created: sending" not in sent.stdout
    for command in ("run", "cancel", "status"):
        done = elsewhere(setup, tmp_path, command, "--campaign", "1")
        assert (done.returncode, said in done.stderr) == (EXIT_BAD_INPUT, True), done.stderr
    preview = elsewhere(setup, tmp_path, "send", *standard(setup))
    assert preview.returncode == EXIT_PREVIEW, preview.stderr
    assert ["total", "4", "4", "4", "0.195", "USD"] in [
        x.split() for x in preview.stdout.splitlines()
    ]
    assert f"Ledger: none at {default}, so no approval threshold was read" in preview.stdout
    # --ledger naming a file that does not exist (a typo) is refused the same way.
    typo = tmp_path / "ledgr.db"
    done = elsewhere(
        setup, tmp_path, "send", "--ledger", f"sqlite:///{typo}", *standard(setup, "--yes")
    )
    assert (done.returncode, f"no ledger at {typo}:" in done.stderr) == (EXIT_BAD_INPUT, True)
    assert list(folder.iterdir()) == [] and not typo.exists()  # nothing created
    nothing_created(setup, gateway)


def test_without_ledger_it_is_the_consoles_named_in_its_secrets(
    gateway, setup: dict, tmp_path: Path
) -> None:
    """Run where the console runs, ``send --yes`` finds the team's ledger as the console does
    (``[keda] keda_database_url`` in ``.streamlit/secrets.toml``): over its threshold, it waits."""
    with Ledger(setup["ledger"]) as ledger:
        ledger.set_team_setting(APPROVAL_THRESHOLD, "0.1", by="f@example.com")
    folder = tmp_path / "ops"
    (folder / ".streamlit").mkdir(parents=True)
    (folder / ".streamlit" / "secrets.toml").write_text(
        f"[keda]\nkeda_database_url = '{setup['ledger']}'\n", encoding="utf-8"
    )
    held = elsewhere(setup, tmp_path, "send", *standard(setup, "--yes"))
    assert held.returncode == EXIT_AWAITING, held.stderr
    with Ledger(setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        assert (campaign.status, ledger.approval_of("campaign", campaign.id).requested_by) == (
            "awaiting",
            ME,
        )
        actions = [e.action for e in reversed(ledger.audit_entries(AuditFilter(actors=[ME])))]
        assert actions == ["campaign_create", "campaign_awaiting"]
    assert sorted(p.name for p in folder.iterdir()) == [".streamlit"]  # no ./.kedasms
    assert GatewayTally.read(gateway.query).messages == 0


def test_send_at_a_time_schedules_the_campaign_and_sends_nothing_before_it(
    gateway, setup: dict
) -> None:
    done = send(setup, *standard(setup, "--at", "2099-03-02T09:00+01:00", "--quiet", "off"))
    assert done.returncode == EXIT_PREVIEW, done.stderr
    assert "Schedule: at, quiet hours off; 1 parts:" in done.stdout
    assert "2099-03-02 08:00 UTC" in done.stdout
    done = send(setup, *standard(setup, "--at", "2099-03-02T09:00+01:00", "--yes"))
    assert done.returncode == EXIT_SCHEDULED, done.stderr
    assert "its first part goes at 2099-03-02 08:00:00 UTC" in done.stdout
    (said,) = [line for line in json_lines(done.stdout) if "status" in line]
    assert said["status"] == "scheduled"
    with Ledger(setup["ledger"]) as ledger:
        (campaign,) = ledger.campaigns()
        assert (campaign.status, campaign.recipients) == ("scheduled", 4)
        assert campaign.scheduled_at.isoformat() == "2099-03-02T08:00:00+00:00"
        actions = [e.action for e in ledger.audit_entries(AuditFilter())]
        assert "campaign_schedule" in actions and "campaign_start" not in actions
        assert ledger.campaign_schedule(campaign.id)["quiet"] == "21:00-08:00"
    assert GatewayTally.read(gateway.query).messages == 0
    assert gateway.money(setup["account"].email)["balance"] == 100_000_000
