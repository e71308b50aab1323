"""Messaging → Message log in AppTest: filters, Next and Previous, the empty state, refused
without the log permission, and the export refused at the click for a removed member."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console.access import ExportRefused
from console.messaging.message_log import _digest
from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger
from kedacore.ledger.team import AuditFilter
from kedacore.team import Permission, roles
from tests.console.test_app_exports_guard import clicks  # noqa: F401 (a fixture)
from tests.console.test_app_team import BOSS, signed_in
from tests.support import REPO_ROOT

PAGE = str(REPO_ROOT / "pages/log.py")
SUP = "sup@example.com"


def fill(data_dir: Path, n_us: int = 120, n_gb: int = 10) -> None:
    """``n_us`` messages to US numbers and ``n_gb`` to GB ones, over the last hours; a support
    member and the admin."""
    now = datetime.now(UTC)
    with Ledger(data_dir=data_dir) as book:
        book.ensure_admins([BOSS])
        book.add_member(SUP, ["support"], by=BOSS)
        for name, country, n, text in (
            ("us", "US", n_us, "Your code is 4321"),
            ("gb", "GB", n_gb, "Soldes d'été"),
        ):
            msgs = tuple(
                SentMessage(f"msg_{name}{i:05d}", f"+1206555{i:04d}" if country == "US"
                            else f"+447700900{i:03d}")
                for i in range(n)
            )  # fmt: skip
            result = SendResult(f"t-{name}", "ok", Decimal("1"), "USD", n, msgs)
            book.record_send(
                result, country=country, sender=None, content=text,
                created_at=now - timedelta(hours=2 if country == "US" else 1),
            )  # fmt: skip


def table(at: AppTest) -> list[dict[str, object]]:
    (frame,) = [d for d in at.dataframe if "To" in d.value.columns]
    return frame.value.to_dict("records")


def test_filters_and_pages(data_dir: Path) -> None:
    fill(data_dir)
    at = signed_in(SUP, PAGE).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    rows = table(at)
    assert len(rows) == 100 and {r["Country"] for r in rows[:10]} == {"GB"}  # newest first
    assert any("Messages 1–100 of 130" in c.value for c in at.caption)

    at.button(key="log_next").click().run()
    second = table(at)
    assert len(second) == 30 and not {r["To"] for r in second} & {r["To"] for r in rows}
    assert any("Messages 101–130 of 130" in c.value for c in at.caption)
    assert at.button(key="log_next").disabled
    at.button(key="log_prev").click().run()
    assert table(at) == rows

    at.multiselect(key="log_country").set_value(["GB"]).run()
    assert {r["Country"] for r in table(at)} == {"GB"} and len(table(at)) == 10
    at.text_input(key="log_text").input("ETE").run()  # folded: "été"
    assert len(table(at)) == 10 and table(at)[0]["Text"] == "Soldes d'été"
    at.multiselect(key="log_status").set_value(["DELIVERED"]).run()
    assert not at.exception and not [d for d in at.dataframe if "To" in d.value.columns]
    (advice,) = at.info
    assert "No message matches" in advice.value and "clear the search" in advice.value


def test_refused_without_the_log_permission(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(data_dir, 3, 0)
    monkeypatch.setitem(roles.PERMISSIONS, "support", frozenset({Permission.LOOKUP}))
    at = signed_in(SUP, PAGE).run()
    assert any("Not allowed" in e.value for e in at.error)
    assert not at.dataframe and not at.get("download_button")
    with Ledger(data_dir=data_dir) as book:
        (refused,) = book.audit_entries(AuditFilter(outcomes=["refused"]))
    assert (refused.actor, refused.target) == (SUP, "Message log")


def test_the_export_is_the_filtered_set_and_refused_to_a_removed_member(
    data_dir: Path,
    clicks: dict[str, Callable[[], bytes]],  # noqa: F811
) -> None:
    fill(data_dir)
    at = signed_in(SUP, PAGE).run()
    at.multiselect(key="log_country").set_value(["GB"]).run()
    assert not at.exception and not at.error
    csv = clicks["log_csv"]().decode("utf-8-sig").splitlines()
    assert len(csv) == 1 + 10 and all("'+447700900" in line for line in csv[1:])
    assert csv[0].startswith("created_utc,msgid,task_id,recipient,country")
    assert clicks["log_xlsx"]()[:2] == b"PK"

    with Ledger(data_dir=data_dir) as book:
        book.remove_member(SUP, by=BOSS)
    for key in ("log_csv", "log_xlsx"):
        with pytest.raises(ExportRefused):
            clicks[key]()
    with Ledger(data_dir=data_dir) as book:
        entries = book.audit_entries(AuditFilter(actions=["refused"]))
    assert [(e.actor, e.target, e.detail) for e in entries] == [
        (SUP, "Message log", "export the message log (needs log)")
    ] * 2


def test_a_selected_row_opens_its_text_and_timeline(data_dir: Path) -> None:
    fill(data_dir, 3, 2)
    at = signed_in(SUP, PAGE).run()
    key = f"log_table_{_digest(at.session_state['log_signature'])}_1"
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}  # a click
    at.run()
    assert not at.exception and not at.error
    assert any("`msg_gb00001`" in m.value and "t-gb" in m.value for m in at.markdown)
    assert [c.value for c in at.code] == ["Soldes d'été"]
    (timeline,) = [d.value for d in at.dataframe if "Event" in d.value.columns]
    assert list(timeline["Event"]) == ["QUEUED"]
