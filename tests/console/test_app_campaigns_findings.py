"""The Campaigns page as marketing used it: what they found, each held by a test (AppTest).

Encodings shown and chosen, the cost of a finished campaign (estimate, debited, refunded,
charged, as Spend counts it), one snapshot per view, running campaigns on every page, demo
campaigns marked and numbered apart, pause reasons with fresh figures, an over-long template
named as such, the Pause button heard whenever it is clicked.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.shell import account_changed
from kedacore import RateLimitError
from kedacore.analytics import Filters, spend_by_campaign
from kedacore.campaign.progress import holder
from kedacore.demo import generate
from tests.console.test_app import metric, shown, start
from tests.console.test_app_campaigns import (
    PAGE,
    campaign_ids,
    compose,
    frame,
    recipients_csv,
    runtime,
    texts,
    wait_for_the_run,
)

KOREAN = (
    "phone,이름,쿠폰코드\n"
    "+12062000001,김민준,SPRING10\n"
    "+12062000002,이서연,SPRING15\n"
    "+12062000003,박지훈,SPRING10\n"
)


def placeholders(at: AppTest) -> str:
    return next(shown(c.value) for c in at.caption if "Placeholders" in c.value)


def test_a_korean_csv_is_read_as_korean_and_another_encoding_can_be_chosen(
    data_dir: Path,
) -> None:
    at = start(PAGE)
    at.text_input(key="campaigns_name").input("Seoul").run()
    data = KOREAN.encode("cp949")  # what Excel saves on a Korean Windows
    at.file_uploader(key="campaigns_file").upload("고객.csv", data, "text/csv").run()
    assert not at.exception, at.exception
    assert "Korean (cp949 / EUC-KR), detected" in texts(at.caption)
    assert "{이름}" in placeholders(at) and "{쿠폰코드}" in placeholders(at)

    # The read is redone in the encoding chosen; "detected" again goes back.
    choice = at.selectbox(key="campaigns_encoding")
    assert choice.value == "" and "Chinese, simplified (GB18030 / GBK)" in choice.options
    choice.set_value("gb18030").run()
    assert "Chinese, simplified (GB18030 / GBK), chosen" in texts(at.caption)
    assert "{捞抚}" in placeholders(at)
    at.selectbox(key="campaigns_encoding").set_value("").run()
    assert "{이름}" in placeholders(at)

    # A choice that cannot read the file says so, and what to do.
    at.selectbox(key="campaigns_encoding").set_value("utf-8").run()
    assert "cannot be read as Unicode (UTF-8) text" in texts(at.error)
    assert "choose its encoding" in texts(at.error)


def test_an_over_long_template_is_named_as_such_with_what_to_shorten(data_dir: Path) -> None:
    """The finding: "60 rows … too long … Correct the file" — but the file was fine."""
    at = start(PAGE)
    rows = ["phone,name,note"]
    rows += [f"+1206200{i:04d},Ana,{'x' * (60 if i < 3 else 2)}" for i in range(1, 6)]
    template = "Dear {name}, " + "our spring offer is here. " * 57 + "{note}"  # 1,492 chars
    at.text_input(key="campaigns_name").input("Long").run()
    at.file_uploader(key="campaigns_file").upload("list.csv", "\n".join(rows).encode()).run()
    at.text_area(key="campaigns_template").input(template).run()
    assert not at.exception, at.exception
    error = shown(at.error[0].value)
    assert "The template is too long for 2 row(s)' variables" in error, error
    assert "Shorten the template, or the values of its variables" in error
    assert "Correct the file" not in error
    problems = next(d.value for d in at.dataframe if "Problem" in d.value.columns)
    assert list(problems["Row"]) == [2, 3]
    assert problems["Problem"][0] == "Too long for the template"
    assert "with this row's values the message is 11 segments" in problems["Reason"][0]


def test_a_balance_pause_says_when_the_balance_was_read_and_shows_it_now(data_dir: Path) -> None:
    """The finding: "the balance is 0.027 USD" still shown after a 200 USD top-up."""
    at = start(PAGE)
    rt = runtime()
    with sqlite3.connect(data_dir / "gateway.db") as db:  # 0.1 USD: two messages of five
        db.execute("UPDATE accounts SET balance_micros = 100000")
    account_changed()
    compose(at, recipients_csv(), "Hi {name}")
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    (campaign_id,) = campaign_ids()
    wait_for_the_run(campaign_id)
    at.run()
    paused = texts(at.warning)
    assert re.search(r"the balance was 0 USD at \d\d:\d\d UTC", paused), paused
    assert "The balance now is 0.00 USD: 0.15 USD short of what is left." in texts(at.caption)

    rt.gateway.topup(rt.account.email, Decimal(200))  # as the Settings page does
    account_changed()
    at.run()
    now = texts(at.caption)
    assert "The balance now is 200.00 USD: it covers the 0.15 USD left; resume." in now, now


def deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message SENT after 0.5 s and DELIVERED 1 s later; +15005550001 FAILED."""
    monkeypatch.setenv("KEDA_SANDBOX_CARRIER", "deterministic")


def finish_campaign(at: AppTest, data: bytes, template: str, *, name: str = "Spring") -> int:
    compose(at, data, template, name=name)
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    campaign_id = campaign_ids()[0]
    wait_for_the_run(campaign_id)
    return campaign_id


def learn_final_statuses(campaign_id: int) -> None:
    """What the Status page does: ask the service about every message, apply the answers."""
    rt = runtime()
    msgids = [m.msgid for m in rt.ledger._messages(rt_messages(campaign_id))]
    for _ in range(50):
        answers = [rt.client.sms.status(m) for m in msgids]
        if all(a.status in ("DELIVERED", "FAILED") for a in answers):
            break
        time.sleep(0.1)
    rt.ledger.apply_statuses(answers)


def rt_messages(campaign_id: int):
    from kedacore.ledger import schema

    return schema.messages.c.campaign_id == campaign_id


def test_a_finished_campaign_shows_estimate_debited_refunded_and_charged_as_spend_does(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: Cost and Debited kept the estimate (99.123 USD) when 31 FAILED messages had
    been refunded and Spend and the export said 97.573."""
    deterministic(monkeypatch)
    at = start(PAGE)
    data = recipients_csv("+15005550001,Fay,C9\n")  # FAILED: refused by the channel, refunded
    campaign_id = finish_campaign(at, data, "Hi {name}")
    learn_final_statuses(campaign_id)
    at.run()
    assert not at.exception, at.exception

    listed = frame(at, "Campaign").to_dict("records")[0]
    money = {k: listed[k] for k in ("Estimate", "Debited", "Refunded", "Charged")}
    assert money == {
        "Estimate": "0.30 USD",
        "Debited": "0.30 USD",
        "Refunded": "0.05 USD",
        "Charged": "0.25 USD",
    }
    # The Spend page counts the same: kedacore.analytics over the same ledger.
    spend = spend_by_campaign(runtime().ledger, Filters.last_days(1))
    assert spend.set_index("campaign_id").loc[campaign_id, "spend"] == Decimal("0.25")
    assert metric(at, "Charged") == "0.25 USD"
    assert "6 recipients sent; 0.25 USD charged (0.05 USD of the 0.30 USD debited refunded" in (
        texts(at.success)
    )


def test_the_progress_the_delivery_line_and_the_list_come_from_one_ledger_read(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: the progress said 1,380 sent while the list said 230. Each view reads the
    ledger once, in one transaction, so its figures are of one moment."""
    deterministic(monkeypatch)
    at = start(PAGE)
    finish_campaign(at, recipients_csv(), "Hi {name}")
    engine = runtime().ledger.engine
    transaction = itertools.count(1)
    reads: set[int] = set()

    def began(conn) -> None:
        conn.info["transaction"] = next(transaction)

    def statement(conn, cursor, text, parameters, context, executemany) -> None:
        if text.lstrip().startswith("SELECT DISTINCT messages.recipient"):
            return  # the New campaign form's frequency guard (its file is still chosen)
        if any(table in text for table in ("campaign_batches", "message_rollup", "messages")):
            reads.add(conn.info.get("transaction", 0))

    event.listen(engine, "begin", began)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        at.run()
    finally:
        event.remove(engine, "begin", began)
        event.remove(engine, "before_cursor_execute", statement)
    assert not at.exception, at.exception
    assert metric(at, "Recipients sent") == "5 / 5"
    # The progress, the delivery line, the messages and the list: one transaction.
    assert len(reads) == 1, f"{len(reads)} ledger reads for one view"


def test_demo_campaigns_are_marked_and_real_ones_are_numbered_from_1(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: demo campaigns were listed unmarked and a third real campaign was "#39"."""
    deterministic(monkeypatch)
    at = start(PAGE)
    report = generate(runtime().ledger, days=20, messages=2_000)
    assert report.campaigns >= 5
    first = finish_campaign(at, recipients_csv(), "Hi {name}", name="First")
    assert first > report.campaigns  # the ids come after the demo's, and stay so
    assert "Campaign #1 First was started" in texts(at.success)
    listed = frame(at, "Campaign")
    real = listed[~listed["Campaign"].str.startswith("Demo")]
    assert list(real["Campaign"]) == ["#1 First"]
    demo = listed[listed["Campaign"].str.startswith("Demo")]
    assert len(demo) == report.campaigns
    assert sorted(demo["Campaign"].str.extract(r"Demo #(\d+) ")[0].astype(int)) == list(
        range(1, report.campaigns + 1)
    )
    header = next(m.value for m in at.markdown if m.value.startswith("#### "))
    assert shown(header).startswith("#### #1 First")

    # A demo campaign, picked, says it is demo data.
    at.selectbox(key="campaigns_pick").set_value(1).run()
    header = next(shown(m.value) for m in at.markdown if m.value.startswith("#### "))
    assert header.startswith("#### Demo #1 ") and "demo data" in header


def test_running_and_paused_campaigns_show_on_every_page_with_a_link(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: after a reload the page opened on "New campaign" with no sign of the
    campaign still sending."""
    deterministic(monkeypatch)
    at = start(PAGE)
    runtime().client.limits.update(daily_sms_cap=3, block_on_limit=True)
    account_changed()
    campaign_id = finish_campaign(at, recipients_csv(), "Hi {name}", name="Capped")

    for page in ("pages/send.py", "pages/status.py", "pages/spend.py"):
        at.switch_page(page).run()
        links = [link.proto for link in at.sidebar.get("page_link")]
        found = [link for link in links if "Capped" in link.label]
        assert found, (page, [link.label for link in links])
        assert shown(found[0].label) == "#1 Capped · paused"
        assert shown(found[0].help) == "#1 Capped · paused: 3 of 5 sent"
        assert "campaigns" in found[0].page
        assert found[0].query_string == f"campaign={campaign_id}"

    fresh = start(PAGE)  # a reload: a new session, on "New campaign"
    assert fresh.session_state["campaigns_tab"] != "Campaigns"
    top = texts(fresh.markdown)
    assert "#1 Capped · paused: 3 of 5 sent" in top, top
    fresh.button(key=f"campaigns_open_{campaign_id}").click().run()  # opens it
    assert fresh.session_state["campaigns_tab"] == "Campaigns"
    assert fresh.session_state["campaigns_pick"] == campaign_id

    # The sidebar's link opens it too (its query parameter), from a page elsewhere.
    other = start("pages/send.py")
    other.query_params["campaign"] = str(campaign_id)
    other.switch_page(PAGE).run()
    assert other.session_state["campaigns_tab"] == "Campaigns"
    assert other.session_state["campaigns_pick"] == campaign_id
    assert "campaign" not in other.query_params


def test_pause_says_pausing_until_the_engine_confirms_then_where_it_stopped(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: Pause clicked during the first requests did nothing visible; the page must
    say "pausing…" until the engine confirms, then where it stopped."""
    deterministic(monkeypatch)
    gate, in_flight = threading.Event(), threading.Event()
    real = _runtime.Runtime.async_client

    def held(self: _runtime.Runtime):  # each request waits at the gate: the run is slow
        client = real(self)
        send = client.sms.send

        async def waiting(*args, **kwargs):
            in_flight.set()
            while not gate.is_set():
                await asyncio.sleep(0.01)
            return await send(*args, **kwargs)

        client.sms.send = waiting
        return client

    monkeypatch.setattr(_runtime.Runtime, "async_client", held)
    try:
        paused_by_the_page(gate, in_flight)
    finally:
        gate.set()  # never leave a run waiting


def paused_by_the_page(gate: threading.Event, in_flight: threading.Event) -> None:
    at = start(PAGE)
    rows = "".join(f"+1206300{i:04d},N{i},C{i}\n" for i in range(95))
    compose(at, recipients_csv(rows), "Hi {name}")
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    (campaign_id,) = campaign_ids()
    assert at.button(key="campaigns_stop")  # sending: Pause offered
    assert in_flight.wait(10)  # the first requests are out, waiting for their answers

    at.button(key="campaigns_stop").click().run()
    assert not at.exception, at.exception
    assert "Pausing…" in texts(at.info), texts(at.info)  # until the engine confirms
    assert not at.get("button") or not [b for b in at.button if b.key == "campaigns_stop"]

    gate.set()  # the requests in flight are answered; no new one goes out
    wait_for_the_run(campaign_id)
    at.run()
    paused = texts(at.warning)
    assert re.search(r"Paused at your request: (\d+) of 100 recipients sent", paused), paused
    sent = int(re.search(r"(\d+) of 100 recipients sent", paused).group(1))
    assert 0 < sent < 100 and f"{100 - sent} recipients in {100 - sent} batches are left" in paused
    assert at.button(key="campaigns_resume")


def test_the_console_s_own_reads_keep_working_while_a_campaign_sends(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: a running campaign used up the sandbox's 100 requests/s per key, and a
    reload said "Cannot reach the service. too many requests (4029)". The sidebar's reads
    (balance, caps: ``runtime.probe``, no retries of its own) go on ten times a second while
    a campaign of 1,200 requests sends; none is refused, and the pages show no error."""
    deterministic(monkeypatch)
    at = start(PAGE)
    rows = "".join(f"+1206400{i:04d},N{i},C{i}\n" for i in range(1_195))  # 1,200 requests
    compose(at, recipients_csv(rows), "Hi {name}, your code is {code}")
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    (campaign_id,) = campaign_ids()
    run = holder(runtime().ledger.url, campaign_id)[1]
    probe = runtime().probe
    reads, refused, reloads = 0, [], 0
    started = time.monotonic()
    while run.running:
        try:
            probe.account.balance()
        except RateLimitError as exc:
            refused.append(str(exc))
        reads += 1
        if time.monotonic() - started > 2 * (reloads + 1):  # now and then, a reload
            account_changed()
            at.run()
            assert "Cannot reach the service" not in texts(at.error), texts(at.error)
            reloads += 1
        time.sleep(0.1)
    assert reads >= 30, "the campaign ended before the reads could tell"
    assert refused == [], f"{len(refused)} of {reads} reads refused: {refused[:1]}"
    wait_for_the_run(campaign_id)
    assert runtime().ledger.campaign(campaign_id).status == "done"
