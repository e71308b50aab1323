"""Finance → Statement through AppTest, on the console's own sandbox: a send and a top-up made
through the pages add up to the micro-unit; money moved at the gateway behind the console's
back is flagged and explained; the page and the top-up belong to the roles that may use them,
and a top-up re-checks its permission when it runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from streamlit.proto.Metric_pb2 import Metric as MetricProto
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.finance.statement import explain, export_frames, note
from console.shell import account_changed
from kedacore.exports import to_csv
from kedacore.ledger import Ledger
from kedacore.ledger.statement import ZERO, Movements, Split, StatementDay
from kedacore.ledger.team import AuditFilter
from kedacore.reconcile import reconcile
from kedacore.settings import load_settings
from tests.console.test_app import APP, balance, send, shown
from tests.support import AUTH_SECRETS, REPO_ROOT, signed_at

STATEMENT = "pages/statement.py"
BOSS = "boss@example.com"
AUTH = AUTH_SECRETS


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


def cards(at: AppTest) -> dict[str, tuple[str, str, int]]:
    """The summary cards: label → (value, the words under it, the arrow's direction)."""
    assert [m.label for m in at.main.metric] == CARDS
    assert all(m.proto.show_border for m in at.main.metric)
    return {m.label: (m.value, m.delta, m.proto.direction) for m in at.main.metric}


def captions(at: AppTest) -> list[str]:
    return [shown(c.value) for c in at.main.caption]


CARDS = ["Opening balance", "Top-ups", "Charged", "Closing balance", "Unexplained"]
NO_ARROW = MetricProto.MetricDirection.NONE


def test_a_fresh_sandbox_opens_at_its_first_reading_and_starts_its_days_there(
    data_dir: Path,
) -> None:
    at = start(STATEMENT)  # the first page view ever: the first reading, before any send
    at.selectbox(key="statement_period").set_value("30d").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    today = runtime().ledger.now().date()  # type: ignore[union-attr]

    shown_cards = cards(at)
    assert shown_cards["Opening balance"][0] == "100.00 USD"  # the reading, less nothing
    assert shown_cards["Closing balance"][0] == "100.00 USD"
    assert shown_cards["Unexplained"] == ("0.00 USD", "adds up", NO_ARROW)
    assert not any("opening balance is unknown" in c for c in captions(at))

    # The 29 days before the console existed are not rows of dashes: the table starts today.
    table = days_table(at)
    assert list(table["Day"]) == [today.isoformat()]
    row = table.iloc[0]
    assert row["Opening balance"] == "100.00 USD" == row["Expected closing"]
    assert row["Note"].startswith("Opening = first balance reading (")
    assert "; nothing moved before it; so far (today)" in row["Note"]
    assert f"Before {today.isoformat()} the console kept no record" in " ".join(captions(at))


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
    assert today["Opening balance"] == "100.00 USD"  # the first reading came before the send
    assert today["Top-ups"] == "12.50 USD"
    assert today["Charged"] == "0.10 USD"  # two one-segment US messages, charged
    assert today["Frozen by sends"] == "0.10 USD"
    assert today["Unexplained"] == "0.00 USD"
    assert "so far (today)" in today["Note"]
    assert not warnings(at)
    shown_cards = cards(at)
    assert shown_cards["Opening balance"][0] == "100.00 USD"
    assert shown_cards["Top-ups"][0] == "12.50 USD" and shown_cards["Charged"][0] == "0.10 USD"
    assert shown_cards["Closing balance"][0] == "112.40 USD"
    assert shown_cards["Unexplained"] == ("0.00 USD", "adds up", NO_ARROW)

    # The same figures underneath, exact, and the top-up recorded with who made it.
    assert rt.ledger is not None
    day = rt.ledger.statement(rt.ledger.now().date(), rt.ledger.now().date(), "USD").days[0]
    assert day.difference == ZERO and day.moved.topups == 12_500_000
    topups = rt.ledger.audit_entries(AuditFilter(actions=["topup"]))
    assert [(e.actor, e.after["amount"]) for e in topups] == [("local operator", "12.5")]
    campaigns, members = at.dataframe[1].value, at.dataframe[2].value
    # Short headers (the words are in their help), so none is cut off beside the other table.
    assert list(campaigns.columns) == ["Campaign", "Frozen", "Charged", "Released"]
    assert list(campaigns["Campaign"]) == ["Single sends (no campaign)"]
    assert list(members.columns) == ["Member", "Frozen", "Charged", "Released"]
    assert list(members["Member"]) == ["local operator"]
    assert list(members["Charged"]) == ["0.10 USD"]
    assert list(members["Released"]) == ["0.00 USD"]

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
    assert cards(at)["Unexplained"] == ("3.00 USD", "1 day flagged", NO_ARROW)


def test_money_moved_before_any_reading_is_unknown_and_not_checked(data_dir: Path) -> None:
    today = datetime.now(UTC).date()
    then = today - timedelta(days=10)
    with Ledger(
        data_dir=data_dir,
        clock=lambda: datetime.combine(then, datetime.min.time(), UTC) + timedelta(hours=12),
    ) as book:  # a top-up recorded ten days ago, before the console ever read the balance
        book.record_topup(5_000_000, "USD", account="sandbox", by="finance@example.com")
    at = start(STATEMENT)  # today's first reading
    at.selectbox(key="statement_period").set_value("custom").run()
    at.date_input(key="statement_range").set_value((then - timedelta(days=2), then)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    shown_cards = cards(at)
    assert shown_cards["Opening balance"][0] == "—" == shown_cards["Closing balance"][0]
    assert shown_cards["Top-ups"][0] == "5.00 USD"
    assert shown_cards["Unexplained"] == ("—", "not checked (no reading before)", NO_ARROW)
    table = days_table(at)
    assert list(table["Day"]) == [then.isoformat()]  # the two days before it: no record
    assert table.iloc[0]["Opening balance"] == "—" and table.iloc[0]["Unexplained"] == "—"
    assert table.iloc[0]["Note"] == "No balance reading yet: balances unknown"
    said = " ".join(captions(at))
    assert f"Before {then.isoformat()} the console kept no record" in said
    assert any("No balance reading in this period" in shown(i.value) for i in at.main.info)

    # Up to today: the days of the top-up are still unknown, today is checked from its
    # first reading, and the card says since when.
    at.selectbox(key="statement_period").set_value("30d").run()
    assert not at.exception and not at.error
    shown_cards = cards(at)
    assert shown_cards["Opening balance"][0] == "—"
    assert shown_cards["Unexplained"] == ("0.00 USD", f"adds up since {today}", NO_ARROW)
    assert any("The opening balance is unknown" in c for c in captions(at))
    assert days_table(at)["Day"].iloc[0] == then.isoformat()

    # A period before any record at all says so, without a table of dashes.
    at.selectbox(key="statement_period").set_value("custom").run()
    at.date_input(key="statement_range").set_value(
        (then - timedelta(days=5), then - timedelta(days=1))
    ).run()
    assert not at.exception and not at.error and not at.main.metric and not at.dataframe
    told = [shown(i.value) for i in at.main.info]
    assert any(
        f"kept no record from {then - timedelta(days=5)} to {then - timedelta(days=1)}" in x
        for x in told
    ), told


def signed_in(email: str, script: str = APP) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.secrets["auth"] = dict(AUTH)
    at.secrets["team"] = {"admins": [BOSS]}
    at.user = {"is_logged_in": True, "email": email, "iat": signed_at(7)}
    return at


def test_only_finance_and_admins_read_the_statement(data_dir: Path) -> None:
    with Ledger(data_dir=data_dir) as book:
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
    book = Ledger(data_dir=data_dir)
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


def test_a_days_note_says_where_its_opening_comes_from() -> None:
    utc = ZoneInfo("UTC")
    first = datetime(2030, 3, 2, 10, 1, tzinfo=UTC)

    def day(unchecked: Movements | None, opening: Split | None) -> StatementDay:
        return StatementDay(
            day=date(2030, 3, 2),
            moved=Movements(frozen_by_sends=50_000, charged=50_000),
            opening=opening,
            closing=Split(9_950_000, 0),
            opening_read=first if unchecked is not None else None,
            closing_read=first,
            difference=ZERO,
            checked_from=first if unchecked is not None else None,
            unchecked=unchecked,
        )

    assert note(day(Movements(), Split(10_000_000, 0)), utc) == (
        "Opening = first balance reading (2030-03-02 10:01:00); nothing moved before it"
    )
    carried = note(day(Movements(frozen_by_sends=50_000), Split(10_000_000, 0)), utc)
    assert (
        carried == "Opening = first balance reading (2030-03-02 10:01:00) less what moved before it"
    )
    assert note(day(None, None), utc) == "No balance reading yet: balances unknown"
