"""The console through Streamlit's AppTest: every page renders, and flows driven by widget key.

Each test module shares one sandbox data folder (starting the embedded gateway takes about
a second); tests that need a fresh start make their own. Nothing here ticks fragments or
opens a browser: see tests/browser for that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.shell import account_changed
from console.views import WORD_JOINER
from kedacore.ledger import Ledger
from kedacore.settings import load_settings

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = [
    "pages/send.py",
    "pages/campaigns.py",
    "pages/status.py",
    "pages/links.py",
    "pages/spend.py",
    "pages/limits.py",
    "pages/settings.py",
]
KEDA_VARIABLES = [
    "KEDA_API_KEY",
    "KEDA_ENCRYPTION_KEY",
    "KEDA_BASE_URL",
    "KEDA_BACKUP_URL",
    "KEDA_CALLBACK_URL",
    "KEDA_WEBHOOK_TOKEN",
    "KEDA_DATABASE_URL",
    "KEDA_CAMPAIGN_WORKERS",
]


def clean_env(
    mp: pytest.MonkeyPatch, data_dir: Path, ledger_url: Callable[..., str] | None = None
) -> None:
    """No KEDA_ variables but the data folder; on PostgreSQL (``ledger_url``, the suite's store
    fixture, on its postgresql case) KEDA_DATABASE_URL names a new empty store, on SQLite it
    stays unset: the console's ledger is the data folder's ``ledger.db``, as by default.
    ``ledger(data_dir)`` opens the same ledger the console uses either way."""
    for name in KEDA_VARIABLES:
        mp.delenv(name, raising=False)
    mp.setenv("KEDA_DATA_DIR", str(data_dir))
    if ledger_url is not None and getattr(ledger_url, "store", None) == "postgresql":
        mp.setenv("KEDA_DATABASE_URL", ledger_url())
        # No worker runs beside AppTest: the console runs campaigns itself, through the same
        # task code (workers: tests/kedacore/campaign/test_worker*.py, tests/browser/).
        mp.setenv("KEDA_CAMPAIGN_WORKERS", "off")


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory, module_ledger_url: Callable[..., str]
) -> Iterator[Path]:
    """A sandbox data folder shared by the module's tests; the runtime stops afterwards."""
    folder = tmp_path_factory.mktemp("console")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, folder, module_ledger_url)
        yield folder
    _runtime.reset()


def start(page: str = "pages/send.py") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    if page != "pages/send.py":
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def balance(at: AppTest) -> Decimal:
    value = next(m.value for m in at.sidebar.metric if m.label == "Balance")
    amount, currency = value.split()
    assert currency == "USD"
    return Decimal(amount)


def shown(markdown: str) -> str:
    """What a person reads of a Markdown body whose user text went through ``plain``: its
    backslash escapes and word joiners taken out (tests compare the text, not the escapes)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(WORD_JOINER, "")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def ledger(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def send(at: AppTest, numbers: str, content: str) -> str:
    """Send from the Send page; returns the task id shown."""
    at.text_area(key="send_numbers").input(numbers).run()
    at.text_area(key="send_content").input(content).run()
    at.button(key="send_submit").click().run()
    at.button(key="send_confirm").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    found = re.search(r"task \*\*(\d{8}-\d{4,})\*\*", at.success[0].value)
    assert found, at.success[0].value
    return found.group(1)


def test_every_page_renders_with_the_sandbox_banner(data_dir: Path) -> None:
    at = start()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.title, page
        banner = [w.value for w in at.sidebar.warning]
        assert any("no real SMS is sent" in text for text in banner), page
        assert balance(at) >= 0


def test_a_send_shows_its_task_and_the_balance_drops_by_the_estimate(data_dir: Path) -> None:
    at = start()
    before = balance(at)
    at.text_area(key="send_numbers").input("+12015550123\n2015550124").run()
    at.text_area(key="send_content").input("Your code is 123456").run()
    assert "Encoding **GSM-7**" in " ".join(m.value for m in at.markdown)
    assert metric(at, "Segments") == "1"
    estimate = metric(at, "Estimated cost")
    assert estimate == "0.10 USD"  # US: 0.05 per segment × 1 × 2

    at.button(key="send_submit").click().run()
    assert "send_pending" in at.session_state  # the confirmation is open; nothing sent yet
    assert balance(at) == before
    at.button(key="send_confirm").click().run()
    assert not at.exception and not at.error
    success = at.success[0].value
    task_id = re.search(r"task \*\*(\d{8}-\d{4,})\*\*", success).group(1)
    assert "**0.10 USD** debited" in success
    assert balance(at) == before - Decimal("0.10")

    with ledger(data_dir) as book:
        task = book.task(task_id)
        assert task is not None and task.debited == Decimal("0.10")
        msgids = [m.msgid for m in book.task_messages(task_id)]
    assert len(msgids) == 2
    assert all(msgid in at.code[0].value for msgid in msgids)


def test_a_bad_number_is_named_and_nothing_is_sent(data_dir: Path) -> None:
    at = start()
    before = balance(at)
    with ledger(data_dir) as book:
        tasks_before = len(book.messages_by_recipient("+12015550125"))
    at.text_area(key="send_numbers").input("+12015550125\n12345\n+8613800138000").run()
    at.text_area(key="send_content").input("Hello").run()
    error = shown(at.error[0].value)
    assert "“12345” — too short" in error
    assert "“+8613800138000” — belongs to CN, not US" in error
    assert at.button(key="send_submit").disabled
    assert "correct the numbers listed in red" in " ".join(c.value for c in at.caption)
    assert "send_pending" not in at.session_state
    assert not at.success
    assert balance(at) == before
    with ledger(data_dir) as book:
        assert len(book.messages_by_recipient("+12015550125")) == tasks_before


def test_the_counter_names_the_characters_that_force_ucs2(data_dir: Path) -> None:
    at = start()
    at.text_area(key="send_numbers").input("2015550123").run()
    at.text_area(key="send_content").input("Price: 5€, thank you 😀").run()
    assert "Encoding **UCS-2**" in " ".join(m.value for m in at.markdown)
    captions = " ".join(c.value for c in at.caption)
    assert "U+1F600" in captions and "€" not in captions.split("because of")[1].split(".")[0]


def test_lookups_by_msgid_task_and_phone_show_the_message(data_dir: Path) -> None:
    at = start()
    task_id = send(at, "2015550126", "Status lookups")
    with ledger(data_dir) as book:
        (message,) = book.task_messages(task_id)
    at.switch_page("pages/status.py").run()

    at.text_input(key="status_query").input(message.msgid)  # a form: sent with the click
    at.button(key="status_lookup").click().run()
    assert not at.exception and not at.error
    assert message.msgid in at.markdown[0].value or any(
        message.msgid in m.value for m in at.markdown
    )
    table = at.dataframe[0].value
    assert list(table["msgid"]) == [message.msgid]

    at.text_input(key="status_query").input(task_id)
    at.button(key="status_lookup").click().run()
    assert list(at.dataframe[0].value["Task"]) == [task_id]

    at.text_input(key="status_query").input("(201) 555-0126")  # national, US selected
    at.button(key="status_lookup").click().run()
    table = at.dataframe[0].value
    assert message.msgid in list(table["msgid"])
    assert set(table["Recipient"]) == {"+12015550126"}


def test_a_pasted_list_of_msgids_is_looked_up_and_exported(data_dir: Path) -> None:
    at = start()
    task_id = send(at, "2015550127\n2015550128", "A list")
    with ledger(data_dir) as book:
        msgids = [m.msgid for m in book.task_messages(task_id)]
    at.switch_page("pages/status.py").run()
    pasted = f"msgid\n{msgids[0]}\n{msgids[1]}, msg_nothex\n{msgids[0]}"
    at.text_area(key="status_list").input(pasted).run()
    at.button(key="status_lookup_many").click().run()
    assert not at.exception
    assert "msg_nothex" in shown(at.warning[0].value)
    assert list(at.dataframe[0].value["msgid"]) == msgids
    assert at.get("download_button")  # the CSV export is offered


def test_an_unknown_query_says_what_is_expected(data_dir: Path) -> None:
    at = start("pages/status.py")
    at.text_input(key="status_query").input("hello")
    at.button(key="status_lookup").click().run()
    assert not at.exception
    assert "not a msgid" in at.error[0].value


def test_a_short_link_is_created_and_listed(data_dir: Path) -> None:
    at = start("pages/links.py")
    # Inside a form: values go with the submit, as in a browser.
    at.text_input(key="links_url").input("https://example.com/spring")
    at.text_input(key="links_title").input("Spring")
    at.button(key="links_create").click().run()
    assert not at.exception and not at.error
    short = at.code[0].value
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/s/\w+", short)
    table = at.dataframe[0].value
    assert short in list(table["Short link"])
    assert list(table.loc[table["Short link"] == short, "Clicks"]) == [0]


def test_settings_registers_a_sandbox_account_and_tops_up(data_dir: Path) -> None:
    at = start("pages/settings.py")
    texts = " ".join(str(c.value) for c in at.code)
    assert "/hooks/keda/" in texts  # the callback URL to give KedaSMS
    keys = at.dataframe[1].value if len(at.dataframe) > 1 else None
    assert keys is not None
    assert all(v.startswith("…") and len(v) <= 5 for v in keys["Value (last 4 characters)"])

    token = (data_dir / "webhook_token").read_text().strip()
    shown = [str(e.value) for e in [*at.code, *at.markdown, *at.caption]]
    shown += [at.dataframe[i].value.to_csv() for i in range(len(at.dataframe))]
    assert not any(token in text for text in shown)  # a secret is never shown whole

    at.text_input(key="settings_reg_email").input("new.user@example.com")
    at.text_input(key="settings_reg_password").input("correct horse")
    at.button(key="settings_register").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = " ".join(str(c.value) for c in at.code)
    assert re.search(r"KEDA_API_KEY=keda_[0-9a-f]{32}", shown)

    before = balance(at)
    at.text_input(key="settings_topup_amount").input("12.345")
    at.button(key="settings_topup").click().run()
    assert not at.exception and not at.error
    assert balance(at) == before + Decimal("12.345")
    assert "12.345 USD" in at.success[0].value


def test_the_headroom_under_the_caps_is_shown_before_sending(
    tmp_path: Path, ledger_url: Callable[..., str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        try:
            at = start()
            rt = _runtime.runtime(load_settings(None, os.environ))  # the one the page uses
            rt.client.limits.update(daily_sms_cap=2, daily_spend_cap="1", block_on_limit=True)
            account_changed()  # what the Limits page calls after a change
            at.text_area(key="send_numbers").input("2015550130\n2015550131\n2015550132").run()
            at.text_area(key="send_content").input("Three is one too many").run()
            assert "**2 messages** · **1.00 USD**" in " ".join(c.value for c in at.caption)
            refusal = at.error[0].value  # a blocking cap: red, and Send is not offered
            assert "3 messages would pass today's SMS cap" in refusal
            assert "will refuse" in refusal and at.button(key="send_submit").disabled
        finally:
            _runtime.reset()


def sidebar_text(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.sidebar.caption, *at.sidebar.markdown])


def test_caps_changed_elsewhere_reach_every_page_once_limits_reads_them(
    tmp_path: Path, ledger_url: Callable[..., str]
) -> None:
    """Another replica (or member, or the service's site) sets a blocking cap: the sidebar's
    figures are a few seconds old, but once the Limits page has read the new caps, its own
    sidebar and the Send page's banner say them too — not "no daily cap" beside "Cap 1"."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        try:
            at = start()
            assert "SMS today: **0** · no daily cap" in sidebar_text(at)
            rt = _runtime.runtime(load_settings(None, os.environ))
            rt.client.limits.update(daily_sms_cap=0, block_on_limit=True)  # not account_changed
            at.switch_page("pages/limits.py").run()
            assert not at.exception, at.exception
            assert "SMS today: **0** · no daily cap" not in sidebar_text(at)
            assert at.sidebar.get("progress"), "the SMS cap's bar (0 of 0)"
            at.switch_page("pages/send.py").run()
            assert "the daily SMS cap is reached" in " ".join(e.value for e in at.error)
        finally:
            _runtime.reset()


def test_an_unreachable_live_service_shows_what_to_do(
    tmp_path: Path, ledger_url: Callable[..., str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        mp.setenv("KEDA_API_KEY", "keda_" + "0" * 32)
        mp.setenv("KEDA_ENCRYPTION_KEY", "A" * 43 + "=")
        mp.setenv("KEDA_BASE_URL", "http://127.0.0.1:9/api")  # discard port: refused
        mp.setenv("KEDA_BACKUP_URL", "http://127.0.0.1:9/api")
        try:
            for page in ["pages/send.py", "pages/status.py", "pages/settings.py"]:
                at = start(page)
                assert not at.exception
                assert any("KEDA_BASE_URL" in shown(e.value) for e in at.error), page
                assert any("Live" in s.value for s in at.sidebar.success)
        finally:
            _runtime.reset()


def test_an_unusable_key_is_an_error_not_a_traceback(
    tmp_path: Path, ledger_url: Callable[..., str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        mp.setenv("KEDA_API_KEY", "keda_" + "0" * 32)
        mp.setenv("KEDA_ENCRYPTION_KEY", "not base64 at all")
        at = start()
        assert not at.exception
        assert "KEDA_ENCRYPTION_KEY" in at.error[0].value
        assert "secrets.toml" in at.error[0].value
