"""The Send page through AppTest: recent sends from the ledger (a reload loses nothing), the
sender id and the caps checked on the form, refusals kept and worded for a person, the
character count explained.

A new ``AppTest`` is a new browser session: what a reload of the page gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.shell import account_changed
from kedacore.api.errors import APIConnectionError
from kedacore.settings import load_settings
from tests.console.test_app import clean_env, ledger, shown, start

NUMBERS_500 = "\n".join(f"+1206555{i:04d}" for i in range(500))


@pytest.fixture
def fresh(tmp_path: Path, ledger_url: Callable[..., str]) -> Iterator[Path]:
    """A data folder of its own (money and caps are exact per test); the runtime stops after."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        try:
            yield tmp_path
        finally:
            _runtime.reset()


def rt() -> _runtime.Runtime:
    """The runtime the page uses (started by the first ``start()``)."""
    return _runtime.runtime(load_settings(None, os.environ))


def real_balance() -> Decimal:
    return rt().client.account.balance().balance


def recent(at: AppTest) -> pd.DataFrame:
    """The Recent sends table."""
    for frame in at.dataframe:
        if "Outcome" in frame.value.columns:
            return frame.value
    raise AssertionError("no Recent sends table on the page")


def texts(at: AppTest) -> str:
    parts = [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]
    parts += [m.value for m in at.markdown]
    return shown(" ".join(parts))


def fill(at: AppTest, numbers: str, content: str, sender: str = "") -> None:
    at.text_area(key="send_numbers").input(numbers).run()
    if sender:
        at.text_input(key="send_sender").input(sender).run()
    at.text_area(key="send_content").input(content).run()


def losing_the_answer(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The request reaches KedaSMS and is sent, but its answer never comes back."""
    sms = rt().client.sms
    original: Callable[..., Any] = sms.send
    refs: list[str] = []

    def send(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        refs.append(kwargs["client_ref"])
        raise APIConnectionError("POST", "http://127.0.0.1/api/sms/send", "connection reset")

    monkeypatch.setattr(sms, "send", send)
    return refs


# -- (5) a reload during a send leaves a trace ------------------------------------------


def test_a_send_is_listed_after_a_reload_with_its_task_and_cost(fresh: Path) -> None:
    at = start()
    fill(at, "2015550123\n2015550124", "Listed after a reload")
    at.button(key="send_submit").click().run()
    at.button(key="send_confirm").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    again = start()  # the same page in a new session: the form is empty
    assert again.text_area(key="send_numbers").value == ""
    table = recent(again)
    assert len(table) == 1
    row = table.iloc[0]
    with ledger(fresh) as book:
        (record,) = book.recent_sends()
    assert row["Task"] == record.task_id and record.task_id
    assert row["Country"] == "US" and row["Recipients"] == 2
    assert row["Cost"] == "0.10 USD"
    assert row["Outcome"].startswith("Sent")
    assert row["By"] == "local operator"  # who sent it; not "(this session)": another did
    assert record.created_by == "local operator"
    assert row["When"]


def test_a_send_whose_answer_was_lost_is_checked_not_sent_twice(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start()
    before = real_balance()
    with monkeypatch.context() as mp:
        refs = losing_the_answer(mp)
        fill(at, NUMBERS_500, "A 500-number send")
        at.button(key="send_submit").click().run()
        at.button(key="send_confirm").click().run()
    assert not at.exception
    assert real_balance() == before - Decimal("25")  # it went out: 500 × 0.05
    assert "was not sent" not in texts(at)  # never claim that: nobody knows

    reloaded = start()
    row = recent(reloaded).iloc[0]
    assert row["Recipients"] == 500 and row["Task"] == ""
    assert "No answer" in row["Outcome"]
    page = texts(reloaded)
    assert "Do not send it again" in page and "Check what happened" in page
    assert "No answer yet for a send** — 500 recipients in US" in page
    checks = [b for b in reloaded.button if (b.key or "").startswith("send_check_")]
    assert len(checks) == 1

    checks[0].click().run()
    assert not reloaded.exception and not reloaded.error, [e.value for e in reloaded.error]
    assert real_balance() == before - Decimal("25")  # the gateway answered the first send
    with ledger(fresh) as book:
        (record,) = book.recent_sends()
        assert record.client_ref == refs[0] and record.state == "sent"
        assert record.attempts == 2
        assert len(book.task_messages(record.task_id)) == 500
    row = recent(reloaded).iloc[0]
    assert row["Outcome"].startswith("Sent") and row["Task"] == record.task_id
    assert row["Cost"] == "25.00 USD"
    assert any(record.task_id in s.value for s in reloaded.success)


def test_a_send_in_flight_is_shown_as_such(fresh: Path) -> None:
    at = start()
    with ledger(fresh) as book:
        book.begin_send(
            "console-inflight",
            country="US",
            sender=None,
            content="On its way",
            recipients=("+12015550123",),
            currency="USD",
            estimated_micros=50_000,
        )
    at = start()
    row = recent(at).iloc[0]
    assert row["Outcome"].startswith("In flight")
    assert row["Cost"] == "0.05 USD (estimate)"
    assert "A send is in flight** — 1 recipient in US" in texts(at)  # not "1 recipient(s)"


# -- (9) the sender id on the form -------------------------------------------------------


def test_a_bad_sender_id_is_named_on_the_form(fresh: Path) -> None:
    at = start()
    fill(at, "2015550123", "Hello", sender="Hello World!!")
    assert not at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    assert "Sender id “Hello World!!”" in errors and "letters and digits" in errors
    assert at.button(key="send_submit").disabled
    assert "correct the sender id" in texts(at)

    at.text_input(key="send_sender").input("+123456789012345").run()  # 16 characters, valid
    assert at.text_input(key="send_sender").value == "+123456789012345"
    assert not at.error and not at.button(key="send_submit").disabled


# -- (10) a blocking cap: said on the form, repeated in the dialog, refusals kept ----------


def test_over_a_blocking_cap_the_form_says_it_will_be_refused(fresh: Path) -> None:
    at = start()
    rt().client.limits.update(daily_sms_cap=2, block_on_limit=True)
    account_changed()
    fill(at, "2015550130\n2015550131\n2015550132", "Three is one too many")
    refusal = " ".join(e.value for e in at.error)
    assert "KedaSMS will refuse this send" in refusal and "at most 2" in refusal
    assert at.button(key="send_submit").disabled
    assert "stay within today's caps" in texts(at)


def test_the_dialog_repeats_the_warning_with_fresh_usage(fresh: Path) -> None:
    at = start()
    fill(at, "2015550130\n2015550131", "Two fit, until someone else sends")
    assert not at.button(key="send_submit").disabled
    # Meanwhile, elsewhere (another tab, a campaign): a cap, and usage that fills it.
    rt().client.limits.update(daily_sms_cap=3, block_on_limit=True)
    rt().client.sms.send("US", ["+12015550140", "+12015550141"], "elsewhere")
    at.button(key="send_submit").click().run()
    assert "send_pending" in at.session_state
    dialog = " ".join(e.value for e in at.error)
    assert "KedaSMS will refuse this send" in dialog and "at most 1" in dialog
    assert at.button(key="send_confirm").disabled


def test_a_non_blocking_cap_warning_is_repeated_in_the_dialog(fresh: Path) -> None:
    at = start()
    rt().client.limits.update(daily_sms_cap=1, block_on_limit=False)
    account_changed()
    fill(at, "2015550130\n2015550131", "Over, but caps do not block")
    warnings = [w.value for w in at.warning if "raise the usage alert" in w.value]
    assert len(warnings) == 1
    at.button(key="send_submit").click().run()
    warnings = [w.value for w in at.warning if "raise the usage alert" in w.value]
    assert len(warnings) == 2  # the form's, and the dialog's
    assert not at.button(key="send_confirm").disabled


def test_a_send_refused_by_a_cap_is_worded_kept_and_listed(fresh: Path) -> None:
    at = start()
    rt().client.limits.update(daily_sms_cap=2, block_on_limit=True)
    account_changed()
    fill(at, "2015550130\n2015550131", "Refused by the cap")
    at.button(key="send_submit").click().run()
    assert not at.button(key="send_confirm").disabled  # it fits, as far as anyone knows
    rt().client.sms.send("US", ["+12015550150"], "a send from elsewhere")  # 1 left now
    at.button(key="send_confirm").click().run()  # the page still has the usage of just now
    assert not at.exception

    error = " ".join(e.value for e in at.error)
    assert "today's SMS cap" in error and "Limits" in error
    assert "dailySmsCap" not in error and "code 3002" not in error
    with ledger(fresh) as book:
        (record,) = book.recent_sends()
    assert record.state == "refused" and record.error_code == "3002"
    row = recent(at).iloc[0]
    assert row["Outcome"].startswith("Refused") and "today's SMS cap" in row["Outcome"]
    assert row["Why"] == record.error  # the whole why, in a column of its own
    assert list(recent(at).columns[:3]) == ["When", "Outcome", "Why"]
    assert row["By"] == "local operator (this session)" and row["Task"] == ""
    assert row["Cost"] == "not charged"
    with ledger(fresh) as book:  # the refusal is in the audit log, with its reason in words
        (entry,) = [e for e in book.audit_entries() if e.action == "send"]
    assert (entry.actor, entry.outcome) == ("local operator", "refused")
    assert "today's SMS cap" in entry.detail and entry.after["code"] == "3002"
    assert entry.target == f"send {record.client_ref}" and entry.after["recipients"] == 2

    later = start()  # kept: another session sees who, when and why
    row = recent(later).iloc[0]
    assert row["Outcome"].startswith("Refused") and row["By"] == "local operator"


# -- (16) the character count explained ---------------------------------------------------


def test_emoji_are_explained_where_the_count_is_shown(fresh: Path) -> None:
    at = start()
    fill(at, "2015550123", "😀" * 36)
    assert next(m.value for m in at.metric if m.label == "Segments") == "2"
    assert "36 characters (36 emoji count as 2 each: 72 units)" in texts(at)


def test_gsm_extension_characters_are_explained_too(fresh: Path) -> None:
    at = start()
    fill(at, "2015550123", "Price: 5€ [sale]")
    assert "16 characters (3 of them count as 2 each" in texts(at)
