"""The Campaigns page through AppTest, from app.py: upload, problems by row, confirm, resume.

AppTest uploads files (``at.file_uploader(key=...).upload``), so the page needs no pasted-CSV
box. It does not tick fragments: after Confirm the tests wait for the background run (a
thread of this process) and run the script again to see where it got.
"""

from __future__ import annotations

import io
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.messaging import campaigns as cv
from console.shell import account_changed
from kedacore.campaign import CampaignEngine
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.progress import holder
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from kedacore.settings import load_settings
from tests.console.test_app import balance, metric, shown, start

PAGE = "pages/campaigns.py"
GOOD = [f"+1206200{i:04d}" for i in range(1, 6)]
NAMES = ["Ana", "Ben", "Chloé", "Dev", "Emma"]


def recipients_csv(extra: str = "") -> bytes:
    """Five good US recipients, each with a name and a code; ``extra`` lines appended."""
    lines = ["phone,name,code"]
    lines += [f"{p},{n},C{i}" for i, (p, n) in enumerate(zip(GOOD, NAMES, strict=True))]
    return ("\n".join(lines) + "\n" + extra).encode()


def runtime() -> _runtime.Runtime:
    return _runtime.runtime(load_settings(None, os.environ))  # the one the page uses


def gateway_recipients(data_dir: Path) -> list[str]:
    """Every message the sandbox gateway holds, by recipient."""
    with sqlite3.connect(f"file:{data_dir / 'gateway.db'}?mode=ro", uri=True) as db:
        return sorted(r for (r,) in db.execute("SELECT recipient FROM messages"))


def compose(at: AppTest, data: bytes, template: str, *, name: str = "Spring") -> None:
    at.text_input(key="campaigns_name").input(name).run()
    at.file_uploader(key="campaigns_file").upload("recipients.csv", data, "text/csv").run()
    at.text_area(key="campaigns_template").input(template).run()
    assert not at.exception, at.exception


def wait_for_the_run(campaign_id: int) -> None:
    """Wait for the background run the page started (a thread of this process)."""
    run = holder(runtime().ledger.url, campaign_id)[1]
    if run is not None:
        run.wait(30)
        assert not run.running, "the campaign did not finish in 30 s"


def campaign_ids() -> list[int]:
    return [c.id for c in runtime().ledger.campaigns()]


def frame(at: AppTest, column: str):
    """The first table with this column (AppTest does not know a read-only table's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def texts(elements) -> str:
    return "\n".join(shown(str(e.value)) for e in elements)


def test_the_page_offers_a_sample_and_waits_for_a_file(data_dir: Path) -> None:
    at = start(PAGE)
    assert not at.error
    assert at.button(key="campaigns_submit").disabled
    captions = texts(at.caption)
    assert "To send: name the campaign; upload the recipients file" in captions
    assert at.get("download_button")  # the sample CSV
    assert "No campaign yet" in texts(at.info)


def test_a_csv_campaign_with_a_bad_row_lists_the_row_and_sends_the_rest(data_dir: Path) -> None:
    at = start(PAGE)
    before = balance(at)
    data = recipients_csv("12345,Zed,C9\n" + f"{GOOD[0]},Ana again,C0\n")
    compose(at, data, "Hi {name}, your code is {code}")

    # The problems, by row number, before anything is sent.
    assert "**2 row(s) will not be sent**" in at.error[0].value
    problems = frame(at, "Problem")
    assert list(problems["Row"]) == [7, 8]  # the header is row 1
    assert list(problems["Problem"]) == ["Invalid number", "Duplicate"]
    assert "too short" in problems["Reason"][0] and "duplicate of row 2" in problems["Reason"][1]
    assert any(b.key == "campaigns_problems_csv" for b in at.get("download_button"))
    assert metric(at, "Recipients") == "5"
    assert metric(at, "Requests") == "5"  # personalised: one text per request
    total = metric(at, "Total cost")
    assert total == "0.25 USD"  # 5 × 1 segment × 0.05 USD
    shown = frame(at, "Message")
    assert shown["Message"][0] == "Hi Ana, your code is C0"
    assert list(shown["To"]) == GOOD
    assert frame(at, "Requests").to_dict("list") == {
        "Country": ["US"],
        "Recipients": [5],
        "Requests": [5],
        "Cost": ["0.25 USD"],
    }
    assert gateway_recipients(data_dir) == []

    at.button(key="campaigns_submit").click().run()
    assert "campaigns_pending" in at.session_state  # the confirmation is open; nothing sent
    assert gateway_recipients(data_dir) == [] and campaign_ids() == []
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    (campaign_id,) = campaign_ids()
    wait_for_the_run(campaign_id)
    at.run().run()  # the second run's sidebar has the fresh balance
    assert not at.exception

    assert gateway_recipients(data_dir) == GOOD  # one message per good recipient, no more
    assert balance(at) == before - Decimal(total.split()[0])
    assert metric(at, "Recipients sent") == "5 / 5"
    assert metric(at, "Debited") == total
    assert "All 5 recipients sent; 0.25 USD debited — charged, or refunded" in texts(at.success)
    assert at.session_state["campaigns_tab"] == "Campaigns"
    listed = frame(at, "Campaign")
    assert listed.to_dict("records")[0] | {"Created": ""} == {
        "Campaign": "#1 Spring",
        "Status": "done",
        "Recipients": 5,
        "Sent": 5,
        "Delivered": 0,  # AppTest serves no callback receiver: the reports never arrive
        "Not delivered": 0,
        "Pending": 5,
        "Estimate": "0.25 USD",
        "Debited": "0.25 USD",
        "Refunded": "0.00 USD",  # nothing reported yet: neither refunded nor charged
        "Charged": "0.00 USD",
        "Created": "",
    }
    messages = frame(at, "msgid")
    assert sorted(messages["Recipient"]) == GOOD
    assert any(b.key == "campaigns_export" for b in at.get("download_button"))
    # The name is cleared: sending the same campaign again needs a deliberate new name.
    assert at.button(key="campaigns_submit").disabled


def test_a_blocking_cap_pauses_and_raising_it_then_resuming_completes(data_dir: Path) -> None:
    at = start(PAGE)
    client = runtime().client
    client.limits.update(daily_sms_cap=3, block_on_limit=True)
    account_changed()  # as the Limits page does after a change
    compose(at, recipients_csv(), "Hi {name}")

    blocked = texts(at.error)
    assert "daily SMS cap blocks it: 3 messages left, it needs 5 messages — 2 messages over" in (
        blocked
    )
    assert any(link.proto.page.endswith("limits") for link in at.get("page_link"))
    at.button(key="campaigns_submit").click().run()
    warnings = at.session_state["campaigns_pending"]["warnings"]
    assert any("daily SMS cap blocks it" in w for w in warnings)  # said again in the dialog
    at.button(key="campaigns_confirm").click().run()
    (campaign_id,) = campaign_ids()
    wait_for_the_run(campaign_id)
    at.run()

    assert len(gateway_recipients(data_dir)) == 3
    paused = texts(at.warning)
    assert "Paused: dailySmsCap reached" in paused and "Raise the cap in Limits" in paused
    assert "2 recipients in 2 batches are left" in paused
    assert metric(at, "Recipients sent") == "3 / 5"
    assert any("Raise the cap on Limits" in str(link.proto.label) for link in at.get("page_link"))

    client.limits.update(daily_sms_cap=10)
    account_changed()
    at.button(key="campaigns_resume").click().run()
    wait_for_the_run(campaign_id)
    at.run()
    assert not at.exception
    assert gateway_recipients(data_dir) == GOOD  # the rest, each once
    assert metric(at, "Recipients sent") == "5 / 5"
    assert "All 5 recipients sent" in texts(at.success)


def test_an_interrupted_campaign_is_listed_and_resumed(data_dir: Path) -> None:
    at = start(PAGE)
    rt = runtime()
    preview = preview_campaign(
        read_recipients(recipients_csv()), "Hello {name}", pricing=rt.client.pricing()
    )
    engine = CampaignEngine(rt.ledger, rt.async_client)
    campaign_id = engine.create(plan_requests(preview), name="Killed")
    # What a server killed mid-run leaves: the campaign marked sending, no run holding it.
    rt.ledger.set_campaign_status(campaign_id, "sending")

    at.run()
    at.session_state["campaigns_pick"] = campaign_id
    at.run()
    assert frame(at, "Campaign")["Status"][0] == "interrupted"
    assert "Interrupted: the console stopped" in texts(at.warning)
    at.button(key="campaigns_resume").click().run()
    wait_for_the_run(campaign_id)
    at.run()
    assert gateway_recipients(data_dir) == GOOD
    assert frame(at, "Campaign")["Status"][0] == "done"


def test_a_run_that_breaks_says_so_and_resume_completes_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(PAGE)
    working = _runtime.Runtime.async_client

    def broken(self: _runtime.Runtime) -> None:
        raise RuntimeError("the client cannot be built")

    monkeypatch.setattr(_runtime.Runtime, "async_client", broken)
    compose(at, recipients_csv(), "Hi {name}")
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    (campaign_id,) = campaign_ids()
    wait_for_the_run(campaign_id)
    at.run()
    assert "stopped on an error** (RuntimeError: the client cannot be built)" in texts(at.error)
    assert gateway_recipients(data_dir) == []

    monkeypatch.setattr(_runtime.Runtime, "async_client", working)
    at.button(key="campaigns_resume").click().run()
    wait_for_the_run(campaign_id)
    at.run()
    assert gateway_recipients(data_dir) == GOOD
    assert "All 5 recipients sent" in texts(at.success)
    assert not any("stopped on an error" in e.value for e in at.error)


def test_an_unusable_file_or_template_says_what_to_fix(data_dir: Path) -> None:
    at = start(PAGE)
    compose(at, b"name,code\nAna,C1\n", "Hi {name}")
    assert "no phone column" in at.error[0].value
    compose(at, recipients_csv(), "Hi {nickname}")
    error = shown(at.error[0].value)
    assert "unknown placeholder {nickname}" in error and "phone, name, code" in error
    assert at.button(key="campaigns_submit").disabled


def test_a_workbook_is_read_like_a_csv(data_dir: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Mobile", "Name"])
    sheet.append([12062000001, "Ana"])  # a number typed into a numeric cell
    sheet.append(["+12062000002", "Ben"])
    buffer = io.BytesIO()
    book.save(buffer)
    at = start(PAGE)
    at.file_uploader(key="campaigns_file").upload("list.xlsx", buffer.getvalue()).run()
    at.text_area(key="campaigns_template").input("Hi {name}").run()
    assert not at.exception and not at.error
    assert "Excel workbook" in texts(at.caption)
    assert metric(at, "Recipients") == "2"
    assert list(frame(at, "Message")["To"]) == [
        "+12062000001",
        "+12062000002",
    ]


# About the data folder's option files beside its ledger.db: SQLite only.
def test_send_options_are_kept_for_the_resume(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as book:
        first = book.campaign(book.create_campaign("One"))
        second = book.campaign(book.create_campaign("Two"))
    cv.save_options(tmp_path, first, cv.CampaignOptions(track_click=True, callback=False))
    assert cv.load_options(tmp_path, first) == cv.CampaignOptions(True, False)
    assert cv.load_options(tmp_path, second) == cv.CampaignOptions()  # not kept: defaults
    (tmp_path / cv.OPTIONS_FILE).write_text("{broken")
    assert cv.load_options(tmp_path, first) == cv.CampaignOptions()


def test_a_pause_reason_points_to_the_page_that_fixes_it() -> None:
    cap = "Paused: dailySpendCap reached — over the cap. Raise the cap in Limits, then resume."
    assert cv.fix_for(cap) == ("pages/limits.py", "Raise the cap on Limits")
    short = "Paused: insufficient balance — the batches left need 3 USD"
    assert cv.fix_for(short) == ("pages/settings.py", "Top up on Settings")
    assert cv.fix_for("Stopped; 3 recipients in 3 batches are left.") is None
    assert cv.status_label("sending", running=False) == "interrupted"
    assert cv.status_label("sending", running=True) == "sending"
    assert cv.status_label("planned", running=False) == "not started"


# -- files over the limits (docs/campaigns.md, "Limits") ---------------------------------------


def refused(at: AppTest, name: str, data: bytes, sentence: str) -> None:
    """Upload the file: the page says the sentence, and draws no preview, cost nor Send."""
    at.text_input(key="campaigns_name").input("Too big").run()
    at.text_area(key="campaigns_template").input("Hi {name}").run()
    at.file_uploader(key="campaigns_file").upload(name, data).run()
    assert not at.exception, at.exception
    assert sentence in texts(at.error), texts(at.error)
    assert not [d for d in at.dataframe if "Message" in d.value.columns]  # no preview
    assert metric(at, "Recipients") == "—" and metric(at, "Total cost") == "—"
    assert at.button(key="campaigns_submit").disabled


def test_a_file_over_the_row_limit_gets_the_sentence_and_no_preview(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEDA_MAX_ROWS", "4")
    at = start(PAGE)
    refused(
        at,
        "recipients.csv",
        recipients_csv(),  # 5 rows
        "The file has more than 4 rows, the most a campaign takes (KEDA_MAX_ROWS). "
        "Split it into smaller files.",
    )
    # Within the limit, the same page previews it.
    monkeypatch.setenv("KEDA_MAX_ROWS", "5")
    at.run()
    assert not at.error and metric(at, "Recipients") == "5"


def test_an_upload_over_the_size_limit_gets_the_sentence(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEDA_MAX_UPLOAD_MB", "1")
    at = start(PAGE)
    big = recipients_csv() + b"+12062000009,Zed,C9\n" * 60_000  # 1.2 MB
    refused(
        at,
        "recipients.csv",
        big,
        "The file is larger than 1 MB, the largest a campaign takes (KEDA_MAX_UPLOAD_MB). "
        "Split it into smaller files.",
    )


def test_a_workbook_bomb_gets_the_sentence_and_no_preview(data_dir: Path) -> None:
    from tests.kedacore.campaign.workbooks import shared_string_bomb

    at = start(PAGE)
    refused(
        at,
        "list.xlsx",
        shared_string_bomb(1 << 30),  # 1 MB, one shared string of 1 GiB
        "The workbook unpacks to more than 200 MB, the most a campaign takes "
        "(KEDA_MAX_XLSX_MB). Save it as CSV, or split it into smaller files.",
    )


def test_a_misconfigured_limit_is_named_on_the_page(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEDA_MAX_COLUMNS", "lots")
    at = start(PAGE)
    assert "KEDA_MAX_COLUMNS must be a whole number, not 'lots'" in texts(at.error)
    assert not at.get("file_uploader")


def test_parsed_files_are_kept_within_a_budget_of_bytes() -> None:
    from console.messaging.campaign_new import ParsedCache, approx_size

    table = read_recipients(recipients_csv())
    size = approx_size(table)
    assert 500 < size < 20_000
    big = read_recipients(b"phone,name\n" + b"+12062000001,Ann\n" * 20_000)
    assert 20_000 * 100 < approx_size(big) < 20_000 * 400  # estimated from a sample of rows
    cache = ParsedCache(budget=3 * size)
    for key in "abc":
        cache.put((key,), table, size)
    assert cache.get(("a",)) is table  # a is now the most recent
    cache.put(("d",), table, size)  # b goes, the least recently used
    assert cache.get(("b",)) is None and cache.get(("a",)) is table
    assert cache.used <= cache.budget and len(cache) == 3
    cache.put(("huge",), big, 10 * size)  # larger than the budget: not kept, nothing evicted
    assert cache.get(("huge",)) is None and len(cache) == 3


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_campaign_queued_with_no_worker_says_to_start_one(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the console only enqueues: with no worker alive, the page says nothing is
    being sent and how to start a worker; the gateway holds nothing and no money moved."""
    monkeypatch.delenv("KEDA_CAMPAIGN_WORKERS")  # workers on, as a team's replicas run
    at = start(PAGE)
    before = balance(at)
    compose(at, recipients_csv(), "Hi {name}, your code is {code}")
    at.button(key="campaigns_submit").click().run()
    at.button(key="campaigns_confirm").click().run()
    assert not at.exception, at.exception
    (campaign_id,) = campaign_ids()
    at.switch_page(PAGE).run()
    said = texts(at.warning)
    assert "No campaign worker is running" in said, said
    assert "python -m kedacore.campaign worker" in said
    assert any("queued" in m.value for m in at.markdown)  # the badge, not "not started"
    assert gateway_recipients(data_dir) == []
    assert balance(at) == before
    assert runtime().ledger.campaign(campaign_id).status == "planned"
    # Kept for the worker: where to post statuses, without the receiver's secret token.
    token = (data_dir / "webhook_token").read_text().strip()
    kept = runtime().ledger.campaign_options(campaign_id)
    assert kept["callback_url"].endswith("/hooks/keda/{webhook_token}")
    assert token not in str(kept)
