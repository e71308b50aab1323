"""Finance → Statement through AppTest, on the console's own sandbox: a send and a top-up made
through the pages add up to the micro-unit; money moved at the gateway behind the console's
back is flagged and explained; the page and the top-up belong to the roles that may use them,
and a top-up re-checks its permission when it runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.finance.statement import explain, export_frames
from console.shell import account_changed
from kedacore.exports import to_csv
from kedacore.ledger import Ledger
from kedacore.ledger.statement import ZERO, Movements, Split, StatementDay
from kedacore.ledger.team import AuditFilter
from kedacore.reconcile import reconcile
from kedacore.settings import load_settings
from tests.console.test_app import APP, balance, clean_env, send, shown
from tests.support import REPO_ROOT, signed_at

STATEMENT = "pages/statement.py"
BOSS = "boss@example.com"
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "c",
    "client_secret": "s",
    "server_metadata_url": "http://localhost:1/.well-known/openid-configuration",
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path)
        yield tmp_path
        _runtime.reset()


def runtime() -> _runtime.Runtime:
    return _runtime.runtime(load_settings(None, os.environ))  # the one the pages use


def start(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def hear_results(rt: _runtime.Runtime) -> None:
    """What a status check does: every open message's result from the service (AppTest has
    no server for the callbacks to reach)."""
    assert rt.ledger is not None

    async def check() -> None:
        async with rt.async_client() as client:
            await reconcile(rt.ledger, client)

    deadline = time.monotonic() + 15
    while rt.ledger.non_final_messages():
        assert time.monotonic() < deadline, "the sandbox did not finish its messages"
        asyncio.run(check())
        time.sleep(0.2)


def days_table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value  # then by campaign, by member


def warnings(at: AppTest) -> list[str]:
    return [shown(w.value) for w in at.main.warning]


def test_a_send_and_a_top_up_through_the_pages_add_up(data_dir: Path) -> None:
    at = start("pages/send.py")  # the first page view keeps the first balance reading
    send(at, "+12015550123\n+12015550124", "Your parcel is on its way")
    at.switch_page("pages/settings.py").run()
    before = balance(at)
    at.text_input(key="settings_topup_amount").input("12.5")
    at.button(key="settings_topup").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert balance(at) == before + Decimal("12.5")

    rt = runtime()
    hear_results(rt)
    account_changed()  # read the balance again on the next run, as after any change
    at.switch_page(STATEMENT).run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    table = days_table(at)
    today = table.iloc[-1]
    assert today["Top-ups"] == "12.50 USD"
    assert today["Charged"] == "0.10 USD"  # two one-segment US messages, charged
    assert today["Frozen by sends"] == "0.10 USD"
    assert today["Unexplained"] == "0.00 USD"
    assert "so far (today)" in today["Note"]
    assert not warnings(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Unexplained"] == "0.00 USD" and metrics["Top-ups"] == "12.50 USD"

    # The same figures underneath, exact, and the top-up recorded with who made it.
    assert rt.ledger is not None
    day = rt.ledger.statement(rt.ledger.now().date(), rt.ledger.now().date(), "USD").days[0]
    assert day.difference == ZERO and day.moved.topups == 12_500_000
    topups = rt.ledger.audit_entries(AuditFilter(actions=["topup"]))
    assert [(e.actor, e.after["amount"]) for e in topups] == [("local operator", "12.5")]
    members = at.dataframe[2].value
    assert list(members["Member"]) == ["local operator"]
    assert list(members["Charged"]) == ["0.10 USD"]

    # The export: exact decimals, nothing a spreadsheet would run.
    frames = export_frames(rt.ledger.statement(day.day, day.day, "USD"))
    assert frames["days"].loc[0, "charged"] == Decimal("0.1")
    assert frames["days"].loc[0, "unexplained_balance"] == Decimal("0")
    assert b"12.5" in to_csv(frames["days"])


def test_a_top_up_behind_the_consoles_back_is_flagged_and_explained(data_dir: Path) -> None:
    at = start(STATEMENT)  # opens the day with a reading
    assert not at.exception and not warnings(at)
    rt = runtime()
    assert rt.gateway is not None and rt.account is not None
    rt.gateway.topup(rt.account.email, Decimal("3"))  # at the provider, not through Settings
    account_changed()
    at.run()
    assert not at.exception and not at.error
    today = days_table(at).iloc[-1]
    assert today["Unexplained"] == "+3.00 USD"
    assert "UNEXPLAINED DIFFERENCE" in today["Note"]
    told = warnings(at)
    assert len(told) == 1
    assert "3.00 USD more" in told[0] and "top-up made at the provider" in told[0]
    assert "It arose between the balance readings at" in told[0]
    metric = next(m for m in at.metric if m.label == "Unexplained")
    assert metric.value == "3.00 USD"


def signed_in(email: str, script: str = APP) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.secrets["auth"] = dict(AUTH)
    at.secrets["team"] = {"admins": [BOSS]}
    at.user = {"is_logged_in": True, "email": email, "iat": signed_at(7)}
    return at


def test_only_finance_and_admins_read_the_statement(data_dir: Path) -> None:
    with Ledger(f"sqlite:///{data_dir / 'ledger.db'}") as book:
        book.add_member("mkt@example.com", ["marketing"], by=BOSS)
        book.add_member("fin@example.com", ["finance"], by=BOSS)
    forced = signed_in("mkt@example.com", str(REPO_ROOT / STATEMENT)).run()
    assert not forced.exception
    assert any("Not allowed" in e.value for e in forced.error)
    assert not forced.dataframe and not forced.metric
    finance = signed_in("fin@example.com").run()
    finance.switch_page(STATEMENT).run()
    assert not finance.exception and not finance.error
    assert len(days_table(finance)) >= 1


def test_finance_tops_up_in_settings_and_a_top_up_re_checks_its_permission(
    data_dir: Path,
) -> None:
    book = Ledger(f"sqlite:///{data_dir / 'ledger.db'}")
    book.add_member("fin@example.com", ["finance"], by=BOSS)
    at = signed_in("fin@example.com").run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception and not at.error
    headings = [h.value for h in at.subheader]
    assert headings == ["Sandbox: top up"]  # no connection, addresses, keys or sign-up
    assert not at.dataframe and not at.code

    at.text_input(key="settings_topup_amount").input("4.25")
    at.button(key="settings_topup").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    entries = book.audit_entries(AuditFilter(actions=["topup"]))
    assert [(e.actor, e.after["amount"]) for e in entries] == [("fin@example.com", "4.25")]
    today = book.now().date()
    assert book.statement(today, today, "USD").days[0].moved.topups == 4_250_000

    # The role goes while the page is open: the top-up is refused, audited, and not made.
    book.set_member_roles("fin@example.com", ["support"], by=BOSS)
    rt = runtime()
    before = rt.client.account.balance().balance
    at.text_input(key="settings_topup_amount").input("100")
    at.button(key="settings_topup").click().run()
    assert not at.exception and any("Not allowed" in e.value for e in at.error)
    assert rt.client.account.balance().balance == before
    refused = book.audit_entries(AuditFilter(actors=["fin@example.com"], outcomes=["refused"]))
    assert [e.action for e in refused] == ["refused"]
    assert book.statement(today, today, "USD").days[0].moved.topups == 4_250_000
    book.close()


def flagged_day(day: int, difference: Split) -> StatementDay:
    return StatementDay(
        day=date(2030, 3, day),
        moved=Movements(),
        opening=Split(10_000_000, 0),
        closing=Split(10_000_000, 0) + difference,
        opening_read=datetime(2030, 3, day - 1, 23, tzinfo=UTC),
        closing_read=datetime(2030, 3, day, 23, tzinfo=UTC),
        difference=difference,
    )


def test_a_difference_is_explained_by_what_moved_where() -> None:
    utc = ZoneInfo("UTC")

    def said(difference: Split, following: Split | None = None) -> str:
        nxt = flagged_day(3, following) if following is not None else None
        return explain(flagged_day(2, difference), nxt, [], "USD", utc)

    topup = said(Split(7_500_000, 0))
    assert "7.50 USD more" in topup and "top-up made at the provider" in topup
    other_tool = said(Split(-50_000, 0))
    assert "0.05 USD less" in other_tool and "another tool or script" in other_tool
    unheard = said(Split(0, -50_000))
    assert "0.05 USD less" in unheard and "not heard yet" in unheard
    assert "Status page" in unheard
    in_flight = said(Split(-50_000, 50_000), following=Split(50_000, -50_000))
    assert "the balance adds up" in in_flight and "a matter of timing" in in_flight
    assert "timing" not in said(Split(-50_000, 50_000), following=ZERO)
