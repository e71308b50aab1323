"""Exports built at the click re-check who clicks: a member removed, signed out everywhere or
without the role since the page was drawn gets no file, and the refusal is audited.

A download button with a callable ``data`` builds its file in a server thread when clicked,
without ``page_setup`` or ``require``. These tests draw a page signed in, keep the callable
Streamlit registered (as the server would), change the member in the ledger, then call it
outside any script run — as the server's thread does.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from console.access import ExportRefused
from kedacore import demo
from kedacore.ledger import Ledger
from kedacore.ledger.team import AuditFilter
from tests.console.test_app import send, start
from tests.console.test_app_team import BOSS, signed_in
from tests.support import REPO_ROOT, SIGNED_IN_AT

FIN = "fin@example.com"
Built = Callable[[], bytes]


@pytest.fixture
def clicks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Built]:
    """The callables the drawn download buttons registered, by widget key (AppTest's media
    manager is dropped after each run, so they are kept here)."""
    found: dict[str, Built] = {}
    original = MediaFileManager.add_deferred

    def keep(self: MediaFileManager, data_callable: Built, *args: object, **kw: object) -> str:
        element_id = str(kw.get("element_id") or "")
        found[element_id.split("-", 2)[-1]] = data_callable
        return original(self, data_callable, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(MediaFileManager, "add_deferred", keep)
    return found


def ledger_of(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def draw(page: str, email: str = FIN) -> None:
    at = signed_in(email, str(REPO_ROOT / page)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def refused(data_dir: Path) -> list[tuple[str, str, str]]:
    with ledger_of(data_dir) as book:
        entries = book.audit_entries(AuditFilter(actions=["refused"]))
    return [(e.actor, e.target, e.detail) for e in entries]


def add_finance(data_dir: Path) -> None:
    with ledger_of(data_dir) as book:
        book.ensure_admins([BOSS])
        book.add_member(FIN, ["finance"], by=BOSS)


# -- the audit log (the reviewer's case) -------------------------------------------------------


def test_a_removed_member_cannot_export_the_audit_log(
    data_dir: Path, clicks: dict[str, Built]
) -> None:
    add_finance(data_dir)
    draw("pages/audit.py")
    assert {"audit_csv", "audit_xlsx"} <= clicks.keys()
    still = clicks["audit_csv"]().decode("utf-8-sig")  # still a member: the file
    assert "member_add" in still and FIN in still

    with ledger_of(data_dir) as book:
        book.remove_member(FIN, by=BOSS, reason="SECRET-AFTER-REMOVAL")
    for key in ("audit_csv", "audit_xlsx"):
        with pytest.raises(ExportRefused):
            clicks[key]()
    assert refused(data_dir) == [
        (FIN, "Audit log", "export the audit log (needs audit)"),
        (FIN, "Audit log", "export the audit log (needs audit)"),
    ]


@pytest.mark.parametrize("change", ["sign_out_everywhere", "lost_the_role"])
def test_signed_out_everywhere_or_without_the_role_gets_no_export(
    data_dir: Path, clicks: dict[str, Built], change: str
) -> None:
    add_finance(data_dir)
    draw("pages/audit.py")
    with ledger_of(data_dir) as book:
        if change == "sign_out_everywhere":
            book.sign_out_everywhere(FIN, by=BOSS)
        else:
            book.set_member_roles(FIN, ["marketing"], by=BOSS)
    with pytest.raises(ExportRefused):
        clicks["audit_csv"]()
    assert refused(data_dir) == [(FIN, "Audit log", "export the audit log (needs audit)")]


def test_a_sign_in_after_the_draw_does_not_revive_the_old_page(
    data_dir: Path, clicks: dict[str, Built]
) -> None:
    """The page was drawn for one sign-in: the member signing in again elsewhere after "sign
    out everywhere" does not make the old page's buttons work again."""
    add_finance(data_dir)
    draw("pages/audit.py")
    old = clicks["audit_csv"]
    with ledger_of(data_dir) as book:
        book.sign_out_everywhere(FIN, by=BOSS)
    again = int(time.time()) + 1 - SIGNED_IN_AT  # a new sign-in, after the sign-out
    at = signed_in(FIN, str(REPO_ROOT / "pages/audit.py"), iat=again).run()
    assert not at.error and clicks["audit_csv"] is not old
    with pytest.raises(ExportRefused):
        old()
    assert b"sign_out_everywhere" in clicks["audit_csv"]()  # the new page's button works


# -- the other finance exports ----------------------------------------------------------------


def test_statement_spend_and_limits_exports_refuse_a_removed_member(
    data_dir: Path, clicks: dict[str, Built]
) -> None:
    add_finance(data_dir)
    with ledger_of(data_dir) as book:
        demo.generate(book, days=20, messages=400, seed=5)
        book.record_cap_change({"daily_sms_cap": None}, {"daily_sms_cap": 5}, changed_by=BOSS)
    for page in ("pages/statement.py", "pages/spend.py", "pages/limits.py"):
        draw(page)
    wanted = {
        "statement_csv": ("Statement", "export statements (needs statements)"),
        "statement_xlsx": ("Statement", "export statements (needs statements)"),
        "spend_csv_kpis": ("Spend", "export the spend (needs spend)"),
        "spend_xlsx_all": ("Spend", "export the spend (needs spend)"),
        "limits_audit_csv": ("Limits", "export the cap changes (needs caps)"),
        "limits_audit_xlsx": ("Limits", "export the cap changes (needs caps)"),
    }
    assert wanted.keys() <= clicks.keys()
    assert all(clicks[key]() for key in wanted)  # still a member: every file is built

    with ledger_of(data_dir) as book:
        book.remove_member(FIN, by=BOSS)
    for key in wanted:
        with pytest.raises(ExportRefused):
            clicks[key]()
    assert sorted(refused(data_dir)) == sorted((FIN, *v) for v in wanted.values())


# -- Status (recipients' phone numbers) ---------------------------------------------------------


def test_the_status_export_refuses_a_removed_member(
    data_dir: Path, clicks: dict[str, Built]
) -> None:
    task_id = send(start(), "2015550127", "Hello")  # sent by the local operator (no sign-in)
    with ledger_of(data_dir) as book:
        (message,) = book.task_messages(task_id)
        book.ensure_admins([BOSS])
        book.add_member("sup@example.com", ["support"], by=BOSS)
    at = signed_in("sup@example.com", str(REPO_ROOT / "pages/status.py")).run()
    at.text_input(key="status_query").input(message.msgid)
    at.button(key="status_lookup").click().run()
    assert not at.exception and not at.error
    assert b"+12015550127" in clicks["status_export"]()  # still support: the file

    with ledger_of(data_dir) as book:
        book.remove_member("sup@example.com", by=BOSS)
    with pytest.raises(ExportRefused):
        clicks["status_export"]()
    assert refused(data_dir) == [
        ("sup@example.com", "Status", "export message statuses (needs lookup)")
    ]


# -- the local operator ------------------------------------------------------------------------


def test_the_local_operator_always_gets_the_file(data_dir: Path, clicks: dict[str, Built]) -> None:
    with ledger_of(data_dir) as book:
        book.audit("local operator", "topup", target="acct", after={"amount": Decimal("5")})
    at = AppTest.from_file(str(REPO_ROOT / "pages/audit.py"), default_timeout=60).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert b"topup" in clicks["audit_csv"]()
    assert refused(data_dir) == []


# -- every lazy download is guarded ------------------------------------------------------------


def test_every_download_built_at_the_click_is_guarded() -> None:
    """A ``download_button`` whose data is a lambda or a bare function would build its file at
    the click for whoever clicks: it must go through ``console.access.guarded``."""
    offenders = []
    for folder in ("console", "pages"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "download_button"
                ):
                    continue
                data = next((k.value for k in node.keywords if k.arg == "data"), None)
                if data is None and len(node.args) > 1:
                    data = node.args[1]
                if isinstance(data, ast.Lambda | ast.Name | ast.Attribute) and not (
                    isinstance(data, ast.Attribute) and data.attr.isupper()  # a constant
                ):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == []
