"""Finance → Audit log: append-only in the database, every row in words, filters, paging, and
the export of the filtered set; a cap change and its audit entry are one transaction."""

from __future__ import annotations

import ast
import csv
import io
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from streamlit.testing.v1 import AppTest

from console.finance.audit import (
    PAGE_SIZE,
    XLSX_OPTIONS,
    change_words,
    export_frame,
    period_bounds,
    period_days,
    rows_frame,
    xlsx_sheets,
)
from kedacore.exports import to_csv, to_xlsx
from kedacore.ledger import Ledger
from kedacore.ledger import schema as s
from kedacore.ledger.team import APPROVAL_THRESHOLD, AuditEntry, AuditFilter
from tests.console.test_app import APP
from tests.console.test_app_team import AUTH
from tests.support import REPO_ROOT, signed_at

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
NO_SMTP = "SMTP is not configured (an [smtp] section in secrets)"


def ledger_of(data_dir: Path, at: datetime | None = None) -> Ledger:
    clock = (lambda: at) if at is not None else None
    return Ledger(data_dir=data_dir, clock=clock)


# -- append-only -------------------------------------------------------------------------------


def test_the_database_refuses_to_update_or_delete_the_audit_log(
    store: str, tmp_path: Path, ledger_url: Callable[..., str]
) -> None:
    with Ledger(ledger_url(), clock=lambda: NOW) as book:
        book.audit("fin@example.com", "topup", target="acct", after={"amount": Decimal("5")})
        with pytest.raises(DBAPIError, match="append-only"), book.engine.begin() as conn:
            conn.execute(update(s.audit_log).values(actor="someone else"))
        with pytest.raises(DBAPIError, match="append-only"), book.engine.begin() as conn:
            conn.execute(delete(s.audit_log))
        with pytest.raises(DBAPIError, match="append-only"), book.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log WHERE id = 1"))
        (entry,) = book.audit_entries()
        assert entry.actor == "fin@example.com" and entry.after == {"amount": "5"}
    # Nor does another program get round the ledger's code: the triggers are in the file (on
    # PostgreSQL, in the database: the ledger's own engine above was such another client).
    if store == "sqlite":
        with sqlite3.connect(tmp_path / "ledger.db") as raw, pytest.raises(sqlite3.DatabaseError):
            raw.execute("UPDATE audit_log SET detail = 'x'")


def test_no_code_path_updates_or_deletes_the_audit_log() -> None:
    """Read from the source: no UPDATE, DELETE or TRUNCATE of audit_log outside the triggers."""
    offenders = []
    for package in ("kedacore", "console", "pages", "gateway"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    target = ast.unparse(func.value if isinstance(func, ast.Attribute) else node)
                    args = " ".join(ast.unparse(a) for a in node.args)
                    if name in ("update", "delete") and "audit_log" in args:
                        offenders.append(f"{path}:{node.lineno}")
                    if name == "delete" and "audit_log" in target:
                        offenders.append(f"{path}:{node.lineno}")
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    sql = " ".join(node.value.upper().split())
                    for verb in ("UPDATE AUDIT_LOG", "DELETE FROM AUDIT_LOG", "TRUNCATE AUDIT_LOG"):
                        if verb in sql and "TRIGGER" not in sql and "ON AUDIT_LOG" not in sql:
                            offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def test_a_cap_change_and_its_audit_entry_are_one_transaction(
    ledger_url: Callable[..., str],
) -> None:
    with Ledger(ledger_url(), clock=lambda: NOW) as book:
        changes = book.record_cap_change(
            {"daily_sms_cap": None, "block_on_limit": False},
            {"daily_sms_cap": 50, "block_on_limit": True},
            changed_by="fin@example.com",
        )
        assert [c.field for c in changes] == ["daily_sms_cap", "block_on_limit"]
        (entry,) = book.audit_entries(AuditFilter(actions=["caps_change"]))
        assert (entry.actor, entry.target, entry.outcome) == (
            "fin@example.com",
            "daily caps",
            "done",
        )
        assert entry.before == {"daily_sms_cap": None, "block_on_limit": False}
        assert entry.after == {"daily_sms_cap": 50, "block_on_limit": True}
        assert entry.detail == f"change {changes[0].change_id[:8]}"

        # When the audit entry cannot be written, the cap change is not kept either.
        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the audit log is full")

        book.audit = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            book.record_cap_change({"daily_sms_cap": 50}, {"daily_sms_cap": 9}, changed_by="x")
        assert [c.after for c in book.cap_changes()] == [True, 50]


# -- rows in words -----------------------------------------------------------------------------


def entry(action: str, before: object = None, after: object = None, **kw: object) -> AuditEntry:
    fields = {"id": 1, "at": NOW, "actor": "a@example.com", "outcome": "done", "target": "",
              "detail": ""} | kw  # fmt: skip
    return AuditEntry(action=action, before=before, after=after, **fields)  # type: ignore[arg-type]


def test_before_and_after_read_as_words() -> None:
    caps = entry(
        "caps_change",
        {"daily_sms_cap": None, "daily_spend_cap": "2.5", "block_on_limit": False},
        {"daily_sms_cap": 1000, "daily_spend_cap": None, "block_on_limit": True},
    )
    assert change_words(caps, "USD") == (
        "Daily SMS cap: no cap → 1,000 messages; Daily spend cap: 2.50 USD → no cap; "
        "Block on limit: off (alert only) → on (refuse sends over a cap)"
    )
    threshold = entry("setting_change", {APPROVAL_THRESHOLD: None}, {APPROVAL_THRESHOLD: "250.5"})
    assert change_words(threshold, "EUR") == "Approval threshold: off → 250.50 EUR"
    roles = entry("member_roles", {"roles": ["marketing", "support"]}, {"roles": ["finance"]})
    assert change_words(roles, "USD") == "Roles: marketing, support → finance"
    assert change_words(entry("member_add", None, {"roles": ["admin"]}), "USD") == "Roles: admin"
    removed = entry("member_remove", {"roles": ["finance"]}, None)
    assert change_words(removed, "USD") == "Roles: finance (removed)"
    topup = entry("topup", None, {"amount": "12.000001", "currency": "CNY"})
    assert change_words(topup, "USD") == "+12.000001 CNY"
    assert change_words(entry("sign_in"), "USD") == ""
    status = entry("approve", {"status": "awaiting"}, {"status": "approved"})
    assert change_words(status, "USD") == "Status: awaiting → approved"

    frame = rows_frame([caps, entry("refused", outcome="refused", target="Limits")],
                       ZoneInfo("Asia/Shanghai"), "USD")  # fmt: skip
    assert list(frame["When"]) == ["2026-03-10 20:00:00"] * 2  # the user's zone
    assert list(frame["Action"]) == ["Caps changed", "Refused (no permission)"]
    assert list(frame["Outcome"]) == ["Done", "Refused"]


NOTIFICATION_AFTER = {  # as kedacore.notify.watcher records it (JSON keys sorted)
    "attempt": 1,
    "deliveries": [
        {"channel": "email", "error": NO_SMTP, "ok": False, "to": "fin@example.com"},
        {"channel": "email", "error": NO_SMTP, "ok": False, "to": "ops@example.com"},
        {"channel": "webhook", "error": "", "ok": True, "to": "https://hooks.example/…WXYZ"},
    ],
    "state": "delivered",
    "subject": "Balance below the floor: 99.70 USD (floor 99.90 USD)",
}


def test_every_recorded_value_reads_as_words_never_as_a_program_wrote_it() -> None:
    """Walk-through: a notification's before → after showed a Python dict. Lists are joined,
    records said field by field, amounts with their currency (named once, by the amount)."""
    notified = entry("notification", None, NOTIFICATION_AFTER, target="balance_floor")
    assert change_words(notified, "USD") == (
        "Subject: Balance below the floor: 99.70 USD (floor 99.90 USD); State: delivered; "
        f"Deliveries: e-mail fin@example.com, ops@example.com: not delivered — {NO_SMTP} · "
        "webhook https://hooks.example/…WXYZ: delivered; Attempt: 1"
    )
    sent = entry("send", None, {"client_ref": "c-1", "country": "US", "currency": "USD",
                                "debited": "0.1", "estimate": "0.1", "recipients": 1200,
                                "task_id": "t-9"})  # fmt: skip
    assert change_words(sent, "EUR") == (
        "Recipients: 1,200; Country: US; Estimate: 0.10 USD; Debited: 0.10 USD; "
        "Client ref: c-1; Task: t-9"
    )
    approved = entry("approve", {"state": "waiting"}, {"approval": 2, "currency": "EUR",
                     "estimate": "0.25", "requested_by": "m@example.com", "state": "approved",
                     "threshold": "0.1"})  # fmt: skip
    assert change_words(approved, "USD") == (
        "State: waiting → approved; Estimate: 0.25 EUR; Threshold: 0.10 EUR; "
        "Asked by: m@example.com; Approval request: 2"
    )
    odd = entry("send", None, {"options": {"rate": 5, "quiet": True}, "tags": [], "n": None})
    assert change_words(odd, "USD") == "Options: (Rate: 5, Quiet: on); Tags: none; N: —"
    for record in (notified, sent, approved, odd):
        words = change_words(record, "USD").replace(NO_SMTP, "")  # "[smtp]" is its words
        assert not any(mark in words for mark in ("{", "[", "'", "True", "None", '"')), words


def test_a_period_is_whole_days_in_the_users_zone() -> None:
    tz = ZoneInfo("America/New_York")
    first, last = period_days("7d", NOW.date())  # type: ignore[misc]
    assert (first.isoformat(), last.isoformat()) == ("2026-03-04", "2026-03-10")
    since, until = period_bounds(first, last, tz)
    assert since == datetime(2026, 3, 4, 5, tzinfo=UTC)  # EST midnight
    assert until == datetime(2026, 3, 11, 4, tzinfo=UTC)  # EDT midnight (clocks went forward)
    assert period_days("all", NOW.date()) is None


# -- the page ----------------------------------------------------------------------------------


def fill(data_dir: Path, today: datetime) -> None:
    """120 sign-ins and a refusal today, a setting 10 days ago, a top-up 40 days ago."""
    with ledger_of(data_dir, today - timedelta(days=40)) as old:
        topped = {"amount": "5", "currency": "USD"}
        old.audit("old@example.com", "topup", target="acct", after=topped)
    with ledger_of(data_dir, today - timedelta(days=10)) as recent:
        recent.audit(
            "fin@example.com",
            "setting_change",
            target=APPROVAL_THRESHOLD,
            before={APPROVAL_THRESHOLD: None},
            after={APPROVAL_THRESHOLD: "100"},
        )
    with ledger_of(data_dir, today) as now:
        for i in range(120):
            now.audit(f"user{i % 3}@example.com", "sign_in", target=f"user{i % 3}@example.com")
        now.audit("mkt@example.com", "refused", target="Limits", outcome="refused",
                  detail="open the Limits page (needs caps)")  # fmt: skip


def table(at: AppTest) -> list[dict[str, object]]:
    return next(d.value for d in at.dataframe if "Action" in d.value).to_dict("records")


def caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith(("Entries", "No entry")))


def test_the_audit_page_filters_pages_and_exports(data_dir: Path) -> None:
    today = datetime.now(UTC).replace(microsecond=0)
    fill(data_dir, today)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/audit.py").run()
    assert not at.exception and not at.error

    # Last 30 days (the default), newest first, one page of 50.
    rows = table(at)
    assert len(rows) == PAGE_SIZE
    assert rows[0]["Action"] == "Refused (no permission)" and rows[0]["Outcome"] == "Refused"
    assert rows[0]["Who"] == "mkt@example.com" and rows[0]["Target"] == "Limits"
    assert rows[0]["Detail"] == "open the Limits page (needs caps)"
    assert caption(at).startswith("Entries 1–50 of 122 (")

    at.number_input(key="audit_page").set_value(3).run()
    rows = table(at)
    assert caption(at).startswith("Entries 101–122 of 122")
    assert rows[-1]["Action"] == "Team setting changed"
    assert rows[-1]["Before → after"] == "Approval threshold: off → 100.00 USD"

    # A filter brings paging back to the first page.
    at.multiselect(key="audit_who").set_value(["user1@example.com"]).run()
    assert caption(at).startswith("Entries 1–40 of 40")
    assert {r["Who"] for r in table(at)} == {"user1@example.com"}
    assert at.session_state["audit_page"] == 1

    at.multiselect(key="audit_who").set_value([]).run()
    at.multiselect(key="audit_outcome").set_value(["refused"]).run()
    assert [r["Who"] for r in table(at)] == ["mkt@example.com"]
    at.multiselect(key="audit_outcome").set_value([]).run()
    at.multiselect(key="audit_action").set_value(["setting_change", "topup"]).run()
    assert [r["Action"] for r in table(at)] == ["Team setting changed"]  # the top-up: too old
    at.selectbox(key="audit_period").set_value("all").run()
    assert [r["Action"] for r in table(at)] == ["Team setting changed", "Top-up"]
    assert table(at)[1]["Before → after"] == "+5.00 USD"
    at.multiselect(key="audit_action").set_value([]).run()
    at.text_input(key="audit_text").input("LIMITS PAGE").run()  # any case, in the detail
    assert [r["Who"] for r in table(at)] == ["mkt@example.com"]
    at.text_input(key="audit_text").input("nothing like this").run()
    assert caption(at).startswith("No entry matches") and not any(
        "Action" in d.value for d in at.dataframe
    )
    assert at.download_button(key="audit_csv").disabled

    # The export holds the whole filtered set (not only the page), in UTC.
    at.text_input(key="audit_text").input("").run()
    at.selectbox(key="audit_period").set_value("7d").run()
    assert caption(at).startswith("Entries 1–50 of 121")  # the setting is 10 days old
    assert not at.download_button(key="audit_csv").disabled
    first, last = period_days("7d", today.date())  # type: ignore[misc]
    since, until = period_bounds(first, last, ZoneInfo("UTC"))  # AppTest's zone
    with ledger_of(data_dir) as book:
        wanted = book.audit_entries(AuditFilter(since=since, until=until), limit=1000)
    exported = list(csv.DictReader(io.StringIO(to_csv(export_frame(wanted, "USD")).decode())))
    assert len(exported) == 121
    assert exported[0]["at"].endswith("Z") and exported[0]["outcome"] == "refused"
    assert exported[0]["action_label"] == "Refused (no permission)"


def the_table(at: AppTest):
    return next(d for d in at.dataframe if "Action" in d.value)


def test_the_table_shows_the_time_and_a_selected_entry_in_full(data_dir: Path) -> None:
    """Walk-through: the When column showed only the day, and long cells were cut. The time is
    there to the second (the zone said once, in the caption); a row selected shows its entry
    in full as plain text, and the XLSX holds UTC date-time cells under a header saying so."""
    at_time = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with ledger_of(data_dir, at_time) as book:
        book.audit("console", "notification", target="balance_floor", after=NOTIFICATION_AFTER,
                   detail=f"Balance below the floor: webhook: delivered; e-mail: not "
                   f"delivered — {NO_SMTP}")  # fmt: skip
        book.audit(
            "fin@example.com",
            "setting_change",
            target=APPROVAL_THRESHOLD,
            before={APPROVAL_THRESHOLD: None},
            after={APPROVAL_THRESHOLD: "100"},
        )
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/audit.py").run()
    assert not at.exception and not at.error
    rows = table(at)
    assert [r["When"] for r in rows] == [at_time.strftime("%Y-%m-%d %H:%M:%S")] * 2
    assert "times in your zone (UTC)" in caption(at)
    assert rows[1]["Outcome"] == "Done"
    assert "{" not in rows[1]["Before → after"]
    assert not at.code  # nothing selected yet
    assert any(c.value.startswith(":material/touch_app: Select a row") for c in at.caption)

    key = the_table(at).key
    assert key and key.startswith("audit_table_")
    at.session_state[key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.code[0].value == "\n".join(
        [
            f"When: {at_time.strftime('%Y-%m-%d %H:%M:%S')} (UTC)",
            "Who: console",
            "Action: Notification sent",
            "Outcome: Done",
            "Target: balance_floor",
            "Before → after:",
            "  Subject: Balance below the floor: 99.70 USD (floor 99.90 USD)",
            "  State: delivered",
            f"  Deliveries: e-mail fin@example.com, ops@example.com: not delivered — "
            f"{NO_SMTP} · webhook https://hooks.example/…WXYZ: delivered",
            "  Attempt: 1",
            f"Detail: Balance below the floor: webhook: delivered; e-mail: not delivered — "
            f"{NO_SMTP}",
        ]
    )
    # Another filter is another table: no selection carried to a row it does not mean.
    at.multiselect(key="audit_action").set_value(["setting_change"]).run()
    assert the_table(at).key != key and not at.code

    with ledger_of(data_dir) as book:
        workbook = to_xlsx(xlsx_sheets(export_frame(book.audit_entries(), "USD")), **XLSX_OPTIONS)
    sheet = openpyxl.load_workbook(io.BytesIO(workbook))["audit_log"]
    assert [c.value for c in sheet[1]][:3] == ["at (UTC)", "actor", "action"]
    assert sheet["A2"].is_date and sheet["A2"].value == at_time.replace(tzinfo=None)
    assert sheet["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet.column_dimensions["A"].width == 20 and sheet.column_dimensions["G"].width == 60
    assert sheet["G2"].value == "Approval threshold: off → 100.00 USD"  # the change in words


def test_a_campaigns_name_finds_its_entries(data_dir: Path) -> None:
    """Walk-through: searching a campaign's name found nothing. Its entries name it by id
    ("campaign 1"): the search finds them by its name too, and in what was recorded."""
    with ledger_of(data_dir) as book:
        sale = book.create_campaign("Weekend sale", created_by="mkt@example.com")
        other = book.create_campaign("Autumn news", created_by="mkt@example.com")
        for campaign, name in ((sale, "Weekend sale"), (other, "Autumn news")):
            book.audit("mkt@example.com", "campaign_create", target=f"campaign {campaign}",
                       after={"name": name, "recipients": 3, "estimate": "0.15",
                              "currency": "USD"})  # fmt: skip
            book.audit("mkt@example.com", "campaign_pause", target=f"campaign {campaign}")
        book.audit("fin@example.com", "approve", target=f"campaign {sale}",
                   before={"state": "waiting"}, after={"state": "approved"},
                   detail="fine")  # fmt: skip
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/audit.py").run()
    at.text_input(key="audit_text").input("weekend SALE").run()
    assert not at.exception and not at.error
    rows = table(at)
    assert [(r["Action"], r["Target"]) for r in rows] == [
        ("Approved", f"campaign {sale}"),
        ("Campaign paused", f"campaign {sale}"),
        ("Campaign created", f"campaign {sale}"),
    ]
    assert rows[2]["Before → after"] == ("Name: Weekend sale; Recipients: 3; Estimate: 0.15 USD")
    at.text_input(key="audit_text").input("autumn").run()
    assert {r["Target"] for r in table(at)} == {f"campaign {other}"}


def test_a_member_without_the_audit_permission_is_refused(data_dir: Path) -> None:
    with ledger_of(data_dir) as book:
        book.add_member("sup@example.com", ["support"], by="boss@example.com")
    at = AppTest.from_file(str(REPO_ROOT / "pages/audit.py"), default_timeout=60)
    at.secrets["auth"] = dict(AUTH)
    at.user = {"is_logged_in": True, "email": "sup@example.com", "iat": signed_at(7)}
    at.run()
    assert any("Not allowed" in e.value and "finance" in e.value for e in at.error)
    assert not at.dataframe and not at.get("download_button")
    with ledger_of(data_dir) as book:
        (refused,) = book.audit_entries(AuditFilter(outcomes=["refused"]))
    assert (refused.actor, refused.target) == ("sup@example.com", "Audit log")
