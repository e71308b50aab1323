"""Finance → Spend and Limits through AppTest: rendering with and without data, filters by key,
KPIs equal to kedacore.analytics, and cap edits that change what the gateway enforces.

Each test that needs its own state starts the console on a fresh data folder (about a second
for the embedded gateway); the demo generator fills ledgers with a few thousand messages.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.finance.controls import parse_controls
from kedacore import CapReachedError, demo
from kedacore.analytics import Filters, Kpis, filter_options, spend_page
from kedacore.ledger import Ledger
from kedacore.ledger.team import APPROVAL_THRESHOLD, BALANCE_FLOOR, AuditFilter
from kedacore.settings import load_settings
from tests.console.test_app import clean_env, shown

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def data_dir(tmp_path: Path, ledger_url: Callable[..., str]) -> Iterator[Path]:
    """A fresh sandbox data folder (and store); the console's runtime is stopped afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        try:
            yield tmp_path
        finally:
            _runtime.reset()


def ledger_of(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def start(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def fill_with_demo(data_dir: Path, messages: int = 4_000, days: int = 60) -> None:
    with ledger_of(data_dir) as book:
        demo.generate(book, days=days, messages=messages, seed=5)


def main_metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    """The page's metrics (not the sidebar's): label → (value, delta)."""
    sidebar = {id(m.proto) for m in at.sidebar.metric}
    return {m.label: (m.value, m.delta) for m in at.metric if id(m.proto) not in sidebar}


def assert_kpis_shown(at: AppTest, k: Kpis) -> None:
    """Every KPI on the page is the analytics value (parsed back from its text)."""
    shown = main_metrics(at)
    cur = k.currency
    assert Decimal(shown[f"Spend ({cur})"][0]) == k.spend
    assert Decimal(shown[f"Pending ({cur})"][0]) == k.pending
    avg = shown[f"Avg cost ({cur})"][0]  # shortest form: 0.04212 for Decimal("0.042120")
    assert avg == "—" if k.avg_cost is None else Decimal(avg) == k.avg_cost
    assert int(shown["Messages"][0].replace(",", "")) == k.messages
    assert int(shown["Segments"][0].replace(",", "")) == k.segments
    for label, value in (
        ("Delivery rate", k.delivery_rate),
        ("Failure rate", k.failure_rate),
        ("Click-through rate", k.ctr),
    ):
        text = shown[label][0]
        if value is None:
            assert text == "—"
        else:
            assert float(text.removesuffix(" %")) == pytest.approx(value * 100, abs=0.005)
    for label, value in (("Median delivery time", k.median_ms), ("p95 delivery time", k.p95_ms)):
        text = shown[label][0]
        if value is None:
            assert text == "—"
        else:
            assert float(text.removesuffix(" s")) * 1000 == pytest.approx(value, abs=5)


# -- Spend -------------------------------------------------------------------------------------


def test_spend_without_data_explains_and_offers_demo_history(data_dir: Path) -> None:
    at = start("pages/spend.py")
    assert not at.error
    assert "Nothing to add up yet" in at.info[0].value
    assert at.button(key="spend_demo_load")  # sandbox: the demo button is offered
    assert not at.get("plotly_chart")


def test_spend_shows_the_analytics_kpis_and_every_chart(data_dir: Path) -> None:
    fill_with_demo(data_dir)
    at = start("pages/spend.py")
    assert not at.error, [e.value for e in at.error]
    assert "Demo data:" in at.warning[0].value
    assert len(at.get("plotly_chart")) == 7
    with ledger_of(data_dir) as book:
        today = book.now().date()
        data = spend_page(book, Filters.last_days(30, today=today))
    assert_kpis_shown(at, data.kpis.current)
    change = data.kpis.delta("messages").change
    assert main_metrics(at)["Messages"][1] == f"{change:+,}"
    # Exports are offered for every view, and for all at once.
    keys = {b.key for b in at.get("download_button")}
    for name in data.frames():
        assert {f"spend_csv_{name}", f"spend_xlsx_{name}"} <= keys
    assert "spend_xlsx_all" in keys


def test_spend_filters_driven_by_key_give_the_analytics_figures(data_dir: Path) -> None:
    fill_with_demo(data_dir)
    at = start("pages/spend.py")
    with ledger_of(data_dir) as book:
        today = book.now().date()

        at.selectbox(key="spend_period").set_value("90d").run()
        assert not at.exception
        assert_kpis_shown(at, spend_page(book, Filters.last_days(90, today=today)).kpis.current)

        at.multiselect(key="spend_countries").select("US").select("IN").run()
        at.multiselect(key="spend_senders").select("KedaOTP").select("").run()  # "" = none
        at.multiselect(key="spend_statuses").select("DELIVERED").select("FAILED").run()
        assert not at.exception and not at.error
        wanted = Filters.last_days(
            90,
            today=today,
            countries=["US", "IN"],
            senders=["KedaOTP", None],
            statuses=["DELIVERED", "FAILED"],
        )
        k = spend_page(book, wanted).kpis.current
        assert k.messages > 0
        assert_kpis_shown(at, k)

        at.multiselect(key="spend_senders").set_value([]).run()
        at.multiselect(key="spend_statuses").set_value([]).run()
        real = next(cid for cid, _ in filter_options(book).campaigns if cid is not None)
        at.multiselect(key="spend_campaigns").set_value([0, real]).run()  # 0 = no campaign
        wanted = Filters.last_days(
            90, today=today, countries=["US", "IN"], campaign_ids=[None, real]
        )
        assert_kpis_shown(at, spend_page(book, wanted).kpis.current)

        first = today - timedelta(days=20)
        at.selectbox(key="spend_period").set_value("custom").run()
        at.date_input(key="spend_range").set_value((first, today - timedelta(days=5))).run()
        assert not at.exception and not at.error
        wanted = Filters(
            first, today - timedelta(days=5), countries=["US", "IN"], campaign_ids=[None, real]
        )
        assert_kpis_shown(at, spend_page(book, wanted).kpis.current)
        period = f"{first.isoformat()} … {(today - timedelta(days=5)).isoformat()} (16 days)"
        assert any(period in c.value for c in at.caption)


def chart_colors(at: AppTest, index: int) -> dict[str, str]:
    """Country → colour of a chart on the page (from the figure Streamlit was given)."""
    spec = json.loads(at.get("plotly_chart")[index].proto.spec)
    colors = {}
    for trace in spec["data"]:
        if isinstance(trace["marker"]["color"], list):
            colors.update(zip(trace["x"], trace["marker"]["color"], strict=True))
        else:
            colors[trace["name"]] = trace["marker"]["color"]
    return colors


def test_a_country_keeps_its_colour_in_every_chart_and_under_any_filter(data_dir: Path) -> None:
    fill_with_demo(data_dir)
    at = start("pages/spend.py")
    daily, rates = chart_colors(at, 0), chart_colors(at, 2)
    assert len(daily) == 9 and len(set(daily.values())) == 9  # nine countries, nine colours
    assert {c: daily[c] for c in rates} == rates  # the same in both charts
    for country in ("US", "BR", "NG"):
        at.multiselect(key="spend_countries").set_value([country]).run()
        assert chart_colors(at, 0) == {country: daily[country]}
        assert chart_colors(at, 2) == {country: daily[country]}


def test_a_filter_without_messages_says_so(data_dir: Path) -> None:
    fill_with_demo(data_dir, days=10)
    at = start("pages/spend.py")
    at.selectbox(key="spend_period").set_value("custom").run()
    old = date.today() - timedelta(days=200)
    at.date_input(key="spend_range").set_value((old, old + timedelta(days=3))).run()
    assert not at.exception and not at.error
    assert "No messages in this period" in at.info[0].value
    assert not at.get("plotly_chart")


def test_demo_history_is_loaded_by_the_button_and_removed_again(data_dir: Path) -> None:
    at = start("pages/spend.py")
    at.number_input(key="spend_demo_days").set_value(14)
    at.number_input(key="spend_demo_messages").set_value(2_000)
    at.button(key="spend_demo_load").click().run()
    assert not at.exception and not at.error
    assert "Loaded **demo history**: 2,000 generated messages" in at.success[0].value
    assert len(at.get("plotly_chart")) == 7
    with ledger_of(data_dir) as book:
        today = book.now().date()
        assert_kpis_shown(at, spend_page(book, Filters.last_days(30, today=today)).kpis.current)

    at.button(key="spend_demo_remove").click().run()
    assert not at.exception
    assert "Removed 2,000 demo messages" in at.success[0].value
    assert "Nothing to add up yet" in at.info[0].value
    with ledger_of(data_dir) as book:
        assert spend_page(book, Filters.last_days(30, today=today)).empty


# -- Limits ------------------------------------------------------------------------------------


def runtime() -> _runtime.Runtime:
    """The runtime the pages use (same settings, same process)."""
    return _runtime.runtime(load_settings(None, os.environ))


def change_caps(at: AppTest, **fields: object) -> None:
    """Fill the cap form (by key), review, and confirm in the dialog."""
    for name, value in fields.items():
        if name == "block":
            at.toggle(key="limits_block").set_value(value)
        else:
            at.text_input(key=f"limits_{name}").input(str(value))
    at.button(key="limits_review").click().run()
    assert not at.exception
    assert not any("Nothing was changed" in e.value for e in at.error)
    assert "limits_pending" in at.session_state  # the dialog is held open
    at.button(key="limits_confirm").click().run()
    assert not at.exception
    assert "limits_pending" not in at.session_state


def test_limits_renders_without_changes(data_dir: Path) -> None:
    at = start("pages/limits.py")
    assert not at.error
    shown = main_metrics(at)
    assert shown["Messages today"][0] == "0"
    assert shown["Spend today (USD)"][0] == "0.00"  # the unit in the label: short values
    assert shown["Balance (USD)"][0] == "100.00"
    assert shown["Alert today"][0] == "No cap"
    assert "No cap has been changed" in " ".join(c.value for c in at.caption)
    assert at.text_input(key="limits_sms_cap").value == ""  # no cap
    assert at.text_input(key="limits_threshold").value == "0.8"


def test_a_cap_edit_changes_what_the_gateway_enforces_and_is_audited(data_dir: Path) -> None:
    at = start("pages/limits.py")
    assert "limits_who" not in [t.key for t in at.text_input]  # no name to type any more
    change_caps(at, sms_cap="2", block=True)
    # No sign-in configured: the one local operator, recorded as such (nothing typed).
    assert "**Caps changed** by local operator" in shown(at.success[0].value)
    client = runtime().client

    # The very next send through the API: three messages over a cap of two are refused whole.
    with pytest.raises(CapReachedError) as refused:
        client.sms.send("US", ["2015550140", "2015550141", "2015550142"], "Three")
    assert refused.value.cap == "dailySmsCap"
    assert "daily SMS cap" in str(refused.value)
    # And the console's Send page says so before sending, and does not offer Send.
    at.switch_page("pages/send.py").run()
    at.text_area(key="send_numbers").input("2015550143\n2015550144\n2015550145").run()
    at.text_area(key="send_content").input("Three from the page").run()
    assert any("KedaSMS will refuse this send" in e.value for e in at.error)
    assert at.button(key="send_submit").disabled

    # Two reach the cap exactly; then every page says sending is blocked.
    client.sms.send("US", ["2015550146", "2015550147"], "Two")
    from console.shell import account_changed

    account_changed()
    at.switch_page("pages/status.py").run()
    assert any("Sending is blocked" in e.value for e in at.error)

    # Spend cap instead: 0.10 USD used, a cap of 0.12 refuses one more 0.05 message.
    at.switch_page("pages/limits.py").run()
    assert any("Sending is blocked" in e.value for e in at.error)
    change_caps(at, sms_cap="", spend_cap="0.12")
    with pytest.raises(CapReachedError) as refused:
        client.sms.send("US", "2015550148", "One more")
    assert refused.value.cap == "dailySpendCap"
    assert "daily spend cap" in str(refused.value)
    caps = client.limits.get()
    assert (caps.daily_sms_cap, caps.daily_spend_cap) == (None, Decimal("0.12"))

    # The audit trail: every field change, newest first, who, old → new.
    with ledger_of(data_dir) as book:
        trail = [(c.field, c.before, c.after, c.changed_by) for c in book.cap_changes()]
    assert trail == [
        ("daily_spend_cap", None, Decimal("0.12"), "local operator"),
        ("daily_sms_cap", 2, None, "local operator"),
        ("block_on_limit", False, True, "local operator"),
        ("daily_sms_cap", None, 2, "local operator"),
    ]
    # And the team's audit log: one "caps_change" per confirmed change, before → after.
    with ledger_of(data_dir) as book:
        logged = [
            (e.actor, e.outcome, e.before, e.after)
            for e in book.audit_entries(AuditFilter(actions=["caps_change"]))
        ]
    assert logged == [
        ("local operator", "done", {"daily_sms_cap": 2, "daily_spend_cap": None},
         {"daily_sms_cap": None, "daily_spend_cap": "0.12"}),
        ("local operator", "done", {"block_on_limit": False, "daily_sms_cap": None},
         {"block_on_limit": True, "daily_sms_cap": 2}),
    ]  # fmt: skip
    table = at.dataframe[0].value
    assert list(table["Field"]) == [
        "Daily spend cap",
        "Daily SMS cap",
        "Block on limit",
        "Daily SMS cap",
    ]
    assert list(table["Before"]) == ["no cap", "2 messages", "off (alert only)", "no cap"]
    assert list(table["After"]) == [
        "0.12 USD",
        "no cap",
        "on (refuse sends over a cap)",
        "2 messages",
    ]
    assert at.download_button(key="limits_audit_csv")
    assert at.download_button(key="limits_audit_xlsx")


def test_the_alert_threshold_raises_the_banner_on_every_page(data_dir: Path) -> None:
    at = start("pages/limits.py")
    change_caps(at, sms_cap="4", threshold="50 %")
    runtime().client.sms.send("US", ["2015550150", "2015550151"], "Half the cap")
    from console.shell import account_changed

    account_changed()
    for page in ("pages/send.py", "pages/spend.py", "pages/limits.py"):
        at.switch_page(page).run()
        assert not at.exception
        banners = [w.value for w in at.warning]
        assert any("Usage alert" in b and "50 %" in b for b in banners), (page, banners)
        assert not any("Sending is blocked" in e.value for e in at.error)


def test_the_alert_banner_goes_as_soon_as_the_caps_are_removed(data_dir: Path) -> None:
    at = start("pages/limits.py")
    change_caps(at, sms_cap="4", threshold="50 %")
    runtime().client.sms.send("US", ["2015550160", "2015550161"], "Half the cap")
    from console.shell import account_changed

    account_changed()
    at.switch_page("pages/send.py").run()
    assert any("Usage alert" in w.value for w in at.warning)

    # The caps removed: the service keeps today's alert "triggered", but there is no cap to
    # warn about any more. No banner, on any page, at once.
    at.switch_page("pages/limits.py").run()
    change_caps(at, sms_cap="")
    assert runtime().client.limits.get().alert.triggered
    for page in ("pages/limits.py", "pages/send.py", "pages/status.py", "pages/spend.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert not [w.value for w in at.warning if "Usage alert" in w.value], page
        assert not any("Sending is blocked" in e.value for e in at.error), page
    # The Limits page still says that the alert was raised today, and that no cap is left.
    at.switch_page("pages/limits.py").run()
    assert main_metrics(at)["Alert today"][0] == "Raised earlier"
    assert any("There is no daily cap now" in c.value for c in at.caption)


def test_bad_cap_values_are_named_and_nothing_changes(data_dir: Path) -> None:
    at = start("pages/limits.py")
    at.text_input(key="limits_sms_cap").input("-5")
    at.text_input(key="limits_spend_cap").input("1.1234567")
    at.text_input(key="limits_threshold").input("1.5")
    at.button(key="limits_review").click().run()
    assert not at.exception
    error = shown(at.error[0].value)
    assert "Nothing was changed" in error
    assert "Daily SMS cap: “-5” is not a whole number" in error
    assert "more than 6 decimals" in error
    assert "Alert threshold: 1.5 is outside (0, 1]" in error
    assert "limits_pending" not in at.session_state

    at.text_input(key="limits_sms_cap").input("")
    at.text_input(key="limits_spend_cap").input("")
    at.text_input(key="limits_threshold").input("0.8")
    at.button(key="limits_review").click().run()
    assert "nothing to change" in at.info[0].value

    at.text_input(key="limits_threshold").input("0")
    at.button(key="limits_review").click().run()
    assert "Alert threshold: 0 is outside (0, 1]" in shown(at.error[0].value)
    caps = runtime().client.limits.get()
    assert (caps.daily_sms_cap, caps.daily_spend_cap, caps.alert_threshold) == (
        None,
        None,
        Decimal("0.8"),
    )
    with ledger_of(data_dir) as book:
        assert book.cap_changes() == []


def test_cancel_in_the_confirmation_changes_nothing(data_dir: Path) -> None:
    at = start("pages/limits.py")
    at.text_input(key="limits_sms_cap").input("10")
    at.button(key="limits_review").click().run()
    shown = at.table[0].value
    assert list(shown["Now"]) == ["no cap"] and list(shown["After"]) == ["10 messages"]
    at.button(key="limits_cancel").click().run()
    assert "limits_pending" not in at.session_state
    assert runtime().client.limits.get().daily_sms_cap is None
    with ledger_of(data_dir) as book:
        assert book.cap_changes() == []
    assert not re.search("Caps changed", " ".join(s.value for s in at.success))


# -- Limits → Team controls --------------------------------------------------------------------


def save_controls(at: AppTest, threshold: str, floor: str) -> None:
    at.text_input(key="limits_approval_threshold").input(threshold)
    at.text_input(key="limits_balance_floor").input(floor)
    at.button(key="limits_controls_save").click().run()
    assert not at.exception, at.exception


def test_the_team_controls_are_exact_audited_and_refuse_bad_amounts(data_dir: Path) -> None:
    at = start("pages/limits.py")
    assert any("Approvals need sign-in" in i.value for i in at.info)  # nobody signs in here
    assert at.text_input(key="limits_approval_threshold").value == ""  # off
    assert at.text_input(key="limits_approval_threshold").label == "Approval threshold (USD)"

    save_controls(at, "250.50", "10 USD")
    assert not at.error
    told = shown(at.success[0].value)
    assert "Team controls saved** by local operator" in told
    assert (
        "Approval threshold: off → 250.50 USD" in told and "Balance floor: off → 10.00 USD" in told
    )
    with ledger_of(data_dir) as book:
        assert book.money_setting(APPROVAL_THRESHOLD) == 250_500_000
        assert book.money_setting(BALANCE_FLOOR) == 10_000_000
    assert at.text_input(key="limits_approval_threshold").value == "250.5"
    assert any("set by local operator at" in c.value for c in at.caption)

    # Bad input: every problem named, and neither control changes (not even the good one).
    for threshold, floor, problem in [
        ("0.0000001", "20", "Approval threshold: 0.0000001 has more than 6 decimals"),
        ("-1", "20", "Approval threshold: the amount cannot be negative"),
        ("1e3", "20", "Approval threshold: “1e3” is not an amount"),
        ("100", "ten", "Balance floor: “ten” is not an amount"),
        ("10000000000", "20", "Approval threshold: at most 999,999,999 USD"),
    ]:
        save_controls(at, threshold, floor)
        error = shown(at.error[0].value)
        assert "Nothing was changed" in error and problem in error, error
    with ledger_of(data_dir) as book:
        assert book.money_setting(APPROVAL_THRESHOLD) == 250_500_000
        assert book.money_setting(BALANCE_FLOOR) == 10_000_000

    # Exact to the micro-unit; empty turns a control off.
    save_controls(at, "0.000001", "")
    assert "Balance floor: 10.00 USD → off" in shown(at.success[0].value)
    with ledger_of(data_dir) as book:
        assert book.money_setting(APPROVAL_THRESHOLD) == 1
        assert book.money_setting(BALANCE_FLOOR) is None
        log = [
            (e.actor, e.target, e.before, e.after)
            for e in book.audit_entries(AuditFilter(actions=["setting_change"]))
        ]
    assert log == [
        ("local operator", BALANCE_FLOOR, {BALANCE_FLOOR: "10"}, {BALANCE_FLOOR: None}),
        ("local operator", APPROVAL_THRESHOLD, {APPROVAL_THRESHOLD: "250.5"},
         {APPROVAL_THRESHOLD: "0.000001"}),
        ("local operator", BALANCE_FLOOR, {BALANCE_FLOOR: None}, {BALANCE_FLOOR: "10"}),
        ("local operator", APPROVAL_THRESHOLD, {APPROVAL_THRESHOLD: None},
         {APPROVAL_THRESHOLD: "250.5"}),
    ]  # fmt: skip

    # Saving what is in force changes nothing and logs nothing.
    save_controls(at, "0.000001", "")
    assert "no change" in at.success[0].value
    with ledger_of(data_dir) as book:
        assert len(book.audit_entries(AuditFilter(actions=["setting_change"]))) == 4


def test_a_decimal_comma_is_refused_not_read_as_a_thousands_separator(data_dir: Path) -> None:
    form = parse_controls({APPROVAL_THRESHOLD: "250,50", BALANCE_FLOOR: "1,5"}, "USD")
    assert form.values == {} and len(form.errors) == 2  # not 25,050 and 15
    assert all("use a point for decimals" in e for e in form.errors), form.errors
    for typed in ("1.000,50", ",5", "1,2345", "1,000,00", "12,34.5"):
        assert parse_controls({APPROVAL_THRESHOLD: typed}, "USD").errors, typed
    # Commas between thousands are what they look like.
    grouped = parse_controls(
        {APPROVAL_THRESHOLD: "1,234,567.89", BALANCE_FLOOR: "1,000 USD"}, "USD"
    )
    assert grouped.errors == ()
    assert grouped.values == {APPROVAL_THRESHOLD: "1234567.89", BALANCE_FLOOR: "1000"}

    at = start("pages/limits.py")
    save_controls(at, "250,50", "10")
    error = shown(at.error[0].value)
    assert "Nothing was changed" in error and "Approval threshold: “250,50” — use a point" in error
    with ledger_of(data_dir) as book:
        assert book.money_setting(APPROVAL_THRESHOLD) is None
        assert book.money_setting(BALANCE_FLOOR) is None
    save_controls(at, "1,250.50", "10")
    assert "Approval threshold: off → 1,250.50 USD" in shown(at.success[0].value)
