"""Opt-outs on the campaign paths: the preview leaves opted-out numbers out and counts them,
the frequency guard flags and (one choice) leaves out the recently messaged, the command line
says "N opted out, left out" and sends none of them, and a campaign's start leaves out the
numbers opted out while it waited."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from kedacore.api.types import Pricing, SendResult, SentMessage
from kedacore.campaign.cli import EXIT_DONE, EXIT_PREVIEW
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.preview import left_out_words
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.audit import AuditFilter
from tests.kedacore.campaign.helpers import GatewayTally
from tests.support import REPO_ROOT

PRICING = Pricing("USD", {"US": Decimal("0.05")})
CSV = "phone,name\n+12062000001,Ana\n+12062000002,Ben\n+12062000003,Cy\n+12062000004,Di\n"


def preview(**kwargs):
    return preview_campaign(read_recipients(CSV.encode()), "Hi {name}", pricing=PRICING, **kwargs)


def test_preview_leaves_opted_out_numbers_out_and_counts_them() -> None:
    asked: list[list[str]] = []

    def suppressed(numbers):
        asked.append(sorted(numbers))
        return {"+12062000002", "+19999999999"}

    p = preview(suppressed=suppressed)
    assert asked == [["+12062000001", "+12062000002", "+12062000003", "+12062000004"]]
    assert [r.e164 for r in p.rows] == ["+12062000001", "+12062000003", "+12062000004"]
    assert [(r.row, r.e164) for r in p.opted_out] == [(3, "+12062000002")]
    assert p.problems == () and p.rejected_rows == 0  # not problems
    assert left_out_words(p) == "1 opted out, left out"
    assert plan_requests(p).recipients == 3
    assert preview(suppressed=set()).opted_out == ()


def test_frequency_guard_flags_and_leaves_out_on_one_choice() -> None:
    p = preview(suppressed={"+12062000001"}, recent={"+12062000001", "+12062000004"})
    assert p.recent == {"+12062000004"}  # the opted-out one is not flagged again
    assert len(p.rows) == 3
    out = p.leave_out_recent()
    assert [r.e164 for r in out.rows] == ["+12062000002", "+12062000003"]
    assert [r.e164 for r in out.recent_left_out] == ["+12062000004"]
    assert left_out_words(out) == "1 opted out, left out; 1 messaged recently, left out"


@pytest.fixture
def setup(gateway, tmp_path: Path, ledger_url: Callable[..., str]) -> dict:
    account = gateway.create_account(balance="100")
    env = {
        **os.environ,
        "KEDA_API_KEY": account.api_key,
        "KEDA_ENCRYPTION_KEY": account.encryption_key,
        "KEDA_BASE_URL": gateway.base_url,
        "KEDA_BACKUP_URL": gateway.base_url,
        "KEDA_CAMPAIGN_WORKERS": "off",
    }
    for name in ("KEDA_DATABASE_URL", "KEDA_MAX_ROWS", "KEDA_CALLBACK_URL"):
        env.pop(name, None)
    file = tmp_path / "list.csv"
    file.write_text(CSV, encoding="utf-8")
    url = ledger_url()
    with Ledger(url) as ledger:
        ledger.add_optouts(
            ["+12062000002", "+12062000003"], by="mia@example.com", reason="STOP", source="import"
        )
    return {"env": env, "file": file, "ledger": url}


def cli(setup: dict, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "kedacore.campaign", "send", "--ledger", setup["ledger"]]
    command += ["--file", str(setup["file"]), "--template", "Hi {name}", "--country", "US"]
    return subprocess.run(
        [*command, *args],
        env=setup["env"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_line_says_it_and_sends_none_of_them(gateway, setup: dict) -> None:
    shown = cli(setup)
    assert shown.returncode == EXIT_PREVIEW, shown.stderr
    assert "Left out: 2 opted out, left out." in shown.stdout
    assert "row 3: +12062000002 — opted out" in shown.stdout
    done = cli(setup, "--yes", "--name", "Opt-out test")
    assert done.returncode == EXIT_DONE, done.stderr
    assert "Left out: 2 opted out, left out." in done.stdout
    sent = {r for (r,) in gateway.query("SELECT recipient FROM messages")}
    assert {"+" + r.lstrip("+") for r in sent} == {"+12062000001", "+12062000004"}
    assert GatewayTally.read(gateway.query).messages == 2
    with Ledger(setup["ledger"]) as ledger:
        (created,) = ledger.audit_entries(AuditFilter(actions=["campaign_create"]))
        assert created.after["opted_out_left_out"] == 2 and created.after["recipients"] == 2


def test_the_frequency_guard_on_the_command_line(gateway, setup: dict) -> None:
    with Ledger(setup["ledger"]) as ledger:
        result = SendResult(
            "T0", "ok", Decimal("0.05"), "USD", 1, (SentMessage("m0", "+12062000004"),)
        )
        ledger.record_send(
            result,
            country="US",
            sender=None,
            content="earlier",
            created_at=ledger.now() - timedelta(hours=2),
        )
    shown = cli(setup)
    assert "Frequency guard: 1 recipient messaged within the last 24 hours" in shown.stdout
    done = cli(setup, "--yes", "--leave-out-recent")
    assert done.returncode == EXIT_DONE, done.stderr
    assert "Left out: 2 opted out, left out; 1 messaged recently, left out." in done.stdout
    sent = {"+" + r.lstrip("+") for (r,) in gateway.query("SELECT recipient FROM messages")}
    assert sent == {"+12062000001"}


def test_numbers_opted_out_while_a_campaign_waited_are_left_out_at_its_start(
    ledger_url: Callable[..., str],
) -> None:
    with Ledger(ledger_url()) as ledger:
        plan = plan_requests(preview())  # 4 requests of one recipient (personal text)
        cid = ledger.create_campaign("Wait", currency="USD")
        ledger.plan_campaign(cid, plan.batches(), returned=False)
        before = ledger.campaign(cid)
        assert before is not None and before.recipients == 4
        ledger.add_optouts(["+12062000003"], by="mia@example.com", reason="STOP")
        assert ledger.leave_out_opted_out(cid) == 1
        after = ledger.campaign(cid)
        assert after is not None and (after.recipients, after.batches) == (3, 3)
        assert after.estimated_micros == before.estimated_micros - 50_000
        left = {p for b in ledger.campaign_batches(cid) for p in b.recipients}
        assert "+12062000003" not in left and len(left) == 3
        assert ledger.leave_out_opted_out(cid) == 0
        (entry,) = ledger.audit_entries(AuditFilter(actions=["campaign_optouts"]))
        assert entry.after == {"opted_out_left_out": 1, "requests_dropped": 1}
        assert ledger.left_out_of(cid) == {"opted_out_after": 1}  # what its page says


def test_the_start_check_reads_the_batches_page_by_page_and_skips_a_tried_one(
    ledger_url: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kedacore.ledger import optouts

    monkeypatch.setattr(optouts, "_BATCH_PAGE", 1)  # four pages of one batch
    with Ledger(ledger_url()) as ledger:
        plan = plan_requests(preview())
        cid = ledger.create_campaign("Paged", currency="USD")
        ledger.plan_campaign(cid, plan.batches(), returned=False)
        batches = ledger.campaign_batches(cid)
        tried = next(b for b in batches if "+12062000001" in b.recipients)
        with ledger.engine.begin() as conn:  # a request already tried keeps its recipients
            conn.execute(
                s.campaign_batches.update()
                .where(s.campaign_batches.c.id == tried.id)
                .values(attempts=1)
            )
        ledger.add_optouts(
            ["+12062000001", "+12062000002", "+12062000004"], by="mia@example.com", reason="STOP"
        )
        assert ledger.leave_out_opted_out(cid) == 2
        left = {p for b in ledger.campaign_batches(cid) for p in b.recipients}
        assert left == {"+12062000001", "+12062000003"}
        after = ledger.campaign(cid)
        assert after is not None and (after.recipients, after.batches) == (2, 2)
