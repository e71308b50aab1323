"""The Status page as a support person uses it (AppTest, against the sandbox gateway).

What users found: a garbled sentence for a malformed msgid, an empty lookup that kept the
last result, thousands of unknown ids asked one by one (29 s for 3,000) and reported one
sentence each, a cramped table ("DELIVEF", latency "None"), and a *Timeline of* picker whose
label kept a status the message had left.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from kedacore.ledger import Ledger
from kedacore.ledger.state import StatusUpdate
from tests.console.test_app import APP, clean_env, shown


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory, module_ledger_url: Callable[..., str]
) -> Iterator[Path]:
    """A sandbox data folder shared by the module's tests; the runtime stops afterwards."""
    folder = tmp_path_factory.mktemp("console-status")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, folder, module_ledger_url)
        yield folder
    _runtime.reset()


def ledger(data_dir: Path) -> Ledger:
    return Ledger(data_dir=data_dir)


def runtime_of(data_dir: Path) -> _runtime.Runtime:
    (rt,) = [r for r in _runtime._runtimes.values() if r.settings.data_dir == data_dir]
    return rt


def status_page(at: AppTest | None = None) -> AppTest:
    """The Status page (opened straight, whatever the state of the other pages)."""
    if at is None:
        at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("pages/status.py").run()
    assert not at.exception, at.exception
    return at


def send(data_dir: Path, numbers: list[str], content: str) -> list[str]:
    """Send through the sandbox and record it in the ledger, as the Send page does."""
    rt = runtime_of(data_dir)
    result = rt.client.sms.send("US", numbers, content)
    rt.ledger.record_send(result, country="US", sender=None, content=content)
    return [m.msgid for m in result.messages]


def look_up(at: AppTest, text: str) -> AppTest:
    at.text_input(key="status_query").input(text)  # a form: sent with the click
    at.button(key="status_lookup").click().run()
    assert not at.exception, at.exception
    return at


def look_up_list(at: AppTest, text: str, timeout: float = 30) -> AppTest:
    at.text_area(key="status_list").input(text).run()
    at.button(key="status_lookup_many").click().run(timeout=timeout)
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [shown(e.value) for e in elements]


def sandbox_requests(data_dir: Path) -> Counter:
    """Count the requests that reach the sandbox gateway's rate limiter from now on."""
    rt = runtime_of(data_dir)
    limiter = rt.gateway._server.config.app.state.gateway.limiter
    seen: Counter = Counter()
    original = limiter.acquire

    def acquire(key: object) -> float:
        seen["requests"] += 1
        return original(key)

    limiter.acquire = acquire
    return seen


def table(at: AppTest, column: str):
    """The one table with this column (st.dataframe without selection has no key)."""
    (found,) = [t for t in at.dataframe if column in t.value.columns]
    return found


def unknown_ids(count: int) -> list[str]:
    return [f"msg_{0xABCD00000000 + i:012x}" for i in range(count)]


def test_a_malformed_msgid_is_explained_in_one_clear_sentence(data_dir: Path) -> None:
    at = look_up(status_page(), "msg_doesnotexist")
    assert [t.replace("**", "") for t in texts(at.error)] == [
        "msg_doesnotexist is not a message id: a message id is msg_ followed by 12 or more "
        "lower-case hex digits."
    ]


def test_an_empty_lookup_clears_the_result_and_says_what_to_type(data_dir: Path) -> None:
    at = status_page()
    (msgid,) = send(data_dir, ["+12015550141"], "Empty lookup")
    look_up(at, msgid)
    assert at.dataframe, "the task's message is shown"
    look_up(at, "   ")
    assert not at.dataframe and not at.error
    said = " ".join(texts(at.info))
    assert "msgid" in said and "task id" in said and "phone number" in said


def test_thousands_of_unknown_ids_are_asked_in_batches_and_summed_up(data_dir: Path) -> None:
    at = status_page()
    known = send(data_dir, ["+12015550142", "+12015550143"], "Known ones")
    missing = unknown_ids(2998)
    seen = sandbox_requests(data_dir)
    started = time.perf_counter()
    look_up_list(at, "\n".join(known + missing), timeout=120)  # 29 s before the fix
    elapsed = time.perf_counter() - started
    # A handful of requests, not one per id under the service's 100 requests/s.
    assert seen["requests"] <= 10, seen
    summary = " ".join(texts(at.markdown))
    assert "3,000 ids: 2 found, 2,998 unknown to the service" in summary
    # No sentence per id: the unknown ids are listed in a table, once each.
    for box in texts(at.warning) + texts(at.error) + texts(at.info):
        assert box.count("msg_") <= 1 and len(box) < 400, box
    assert list(table(at, "Why").value["msgid"]) == missing  # the unknown ids, and why
    assert list(table(at, "Latency (s)").value["msgid"]) == known
    assert elapsed < 20, elapsed


def test_the_table_shows_statuses_whole_and_empty_cells_empty(data_dir: Path) -> None:
    at = status_page()
    # Delivered, charged but undelivered, refused by the channel.
    msgids = send(data_dir, ["+12015550144", "+15005550002", "+15005550001"], "Table")
    time.sleep(2.5)  # the deterministic sandbox: every fate is known within 1.5 s
    with ledger(data_dir) as book:
        task_id = book.message(msgids[0]).task_id
    look_up(at, task_id)
    shown_table = table(at, "Latency (s)")
    proto = shown_table.proto
    assert proto.HasField("placeholder") and proto.placeholder == ""  # not "None"
    frame = shown_table.value
    latency = dict(zip(frame["msgid"], frame["Latency (s)"], strict=True))
    assert sum(1 for v in latency.values() if pd.isna(v)) == 2  # an empty cell, not a number
    columns = json.loads(proto.columns)
    status = columns.get("Status") or columns.get("col:Status") or {}
    badge = status.get("type_config", {}).get("type") == "multiselect"
    wide = isinstance(status.get("width"), int) and status["width"] >= 110
    assert badge or wide, status


def test_the_timeline_picker_follows_the_message_to_its_new_status(data_dir: Path) -> None:
    at = status_page()
    # +15005550003 is delivered only after 30 s: it is still open while we look.
    other, slow = send(data_dir, ["+12015550145", "+15005550003"], "Timeline")
    look_up_list(at, f"{other}\n{slow}")  # the slow one second: not the picker's default
    at.selectbox(key="status_timeline").select(slow).run()
    picker = at.selectbox(key="status_timeline")
    assert picker.value == slow
    before = picker.options[picker.index]
    # Its delivery report arrives (as the receiver would apply it).
    with ledger(data_dir) as book:
        now = datetime.now(UTC)
        book.apply_status(
            StatusUpdate(slow, "DELIVERED", sent_at=now, delivered_at=now, occurred_at=now)
        )
    at.run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="status_timeline")
    assert picker.value == slow
    # A selectbox's value in the browser is its option's label: when the label of the picked
    # message changes, the browser keeps showing the old one ("· SENT" for a DELIVERED
    # message). So the label holds nothing that changes; the status is shown beside it.
    assert picker.options[picker.index] == before
    assert "SENT" not in before and "QUEUED" not in before, before
    beside = [m for m in texts(at.markdown) if slow in m]
    assert beside and "DELIVERED" in beside[-1], beside
