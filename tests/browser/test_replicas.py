"""Two console replicas on one PostgreSQL database, in Chromium (issue 13, "Replicas").

One gateway process (`python -m gateway serve`, its account made with the CLI), one fresh
PostgreSQL database (beside the one KEDA_TEST_POSTGRES_URL names), and two `streamlit run
app.py` processes, each with its own data folder and the same [keda] secrets: API key,
encryption key, gateway address, KEDA_DATABASE_URL and webhook token. Both give the gateway
replica B's receiver as the callback URL (KEDA_CALLBACK_URL, as a deployment gives the
proxy's), so every delivery report of a message sent on A reaches B.

What is shown: a send on A appears on B's Status page with the status the gateway's callbacks
to B gave it; every one of those callbacks posted again to A and to B changes nothing (the
ledger holds each once); a callback built and signed as the gateway signs it, posted to A and
B at the same moment, is applied once; a cap set on A is what B shows and enforces; a member
added on A signs in on B.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from kedacore.signing import sign_event, signing_key_bytes

from .conftest import (
    Console,
    Replicas,
    _need_browser,
    scratch_database,
    screenshot,
    start_replicas,
    stop_replicas,
    wait_ready,
)

pytestmark = pytest.mark.browser


def key(name: str) -> str:
    return f".st-key-{name}"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    _need_browser()
    with scratch_database("replicas") as url:
        running = start_replicas(
            tmp_path_factory.mktemp("replicas"),
            url,
            callback_url=lambda _a, b, token: f"http://127.0.0.1:{b}/hooks/keda/{token}",
        )
        try:
            yield running
        finally:
            stop_replicas(running)


def sql(replicas: Replicas, query: str, **params: object) -> list[tuple]:
    """Read the shared ledger database directly (what both replicas see)."""
    engine = create_engine(replicas.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query), params).all()]
    finally:
        engine.dispose()


def send_on(page, console: Console, number: str, content: str) -> str:
    """Send one message through the Send page of ``console``; its msgid."""
    page.goto(console.url)
    wait_ready(page)
    numbers = page.locator(f"{key('send_numbers')} textarea")
    numbers.fill(number)
    numbers.press("Control+Enter")
    page.get_by_text("1 valid recipient").wait_for()
    box = page.locator(f"{key('send_content')} textarea")
    box.fill(content)
    box.press("Control+Enter")
    wait_ready(page)
    page.locator(f"{key('send_submit')} button").click()
    page.get_by_role("dialog").locator(f"{key('send_confirm')} button").click()
    page.get_by_text(re.compile(r"Sent — task \d{8}-\d{4}")).wait_for()
    wait_ready(page)
    listing = page.locator('[data-testid="stCode"]').first.inner_text()
    return re.search(r"msg_[0-9a-f]{12,}", listing).group(0)


def open_status(page, console: Console, msgid: str) -> None:
    page.goto(f"{console.url}/status")
    wait_ready(page)
    query = page.locator(f"{key('status_query')} input")
    query.fill(msgid)
    query.press("Enter")
    page.get_by_text(msgid).first.wait_for()


def post_callback(
    console: Console, replicas: Replicas, event_id: str, body: str, stamp: int | None = None
) -> httpx.Response:
    """POST a callback to a replica's receiver, signed as the gateway signs it."""
    stamp = stamp or int(time.time())
    key_bytes = signing_key_bytes(replicas.account["encryptionKey"])
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Keda-Event-Id": event_id,
        "X-Keda-Timestamp": str(stamp),
        "X-Keda-Signature": sign_event(raw, stamp, key_bytes),
    }
    return httpx.post(
        f"{console.url}/hooks/keda/{replicas.token}", content=raw, headers=headers, timeout=30
    )


def events_of(replicas: Replicas, msgid: str) -> list[tuple[str, str]]:
    return sql(
        replicas,
        "SELECT event_id, status FROM events WHERE msgid = :m ORDER BY received_at, event_id",
        m=msgid,
    )


def status_of(replicas: Replicas, msgid: str) -> str:
    return sql(replicas, "SELECT status FROM messages WHERE msgid = :m", m=msgid)[0][0]


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.2)
    return found


def test_a_send_on_a_shows_on_b_and_its_callbacks_land_once(replicas: Replicas, page) -> None:
    a, b = replicas.consoles
    msgid = send_on(page, a, "+12015550123", "Replica A says hello")

    # The gateway's own callbacks (SENT, DELIVERED) went to B's receiver; B shows the result.
    open_status(page, b, msgid)
    page.get_by_role("heading", name=re.compile("DELIVERED")).wait_for(timeout=30_000)
    wait_ready(page)
    screenshot(page, "replicas-status-on-b")
    outbox = wait_for(
        lambda: (rows := replicas.outbox(msgid)) and all(r[4] == "delivered" for r in rows) and rows
    )
    assert [r[1] for r in outbox] == ["SENT", "DELIVERED"]
    assert all(f":{b.url.rsplit(':', 1)[1]}/hooks/keda/" in r[3] for r in outbox)
    assert events_of(replicas, msgid) == [(r[0], r[1]) for r in outbox]
    assert status_of(replicas, msgid) == "DELIVERED"

    # The gateway retrying (or a proxy sending it elsewhere): each one posted again to A and
    # to B is answered as a duplicate, and the ledger still holds each once.
    for event_id, _status, body, _url, _state in outbox:
        for console in (a, b):
            answer = post_callback(console, replicas, event_id, body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["outcome"] == "duplicate"
    assert events_of(replicas, msgid) == [(r[0], r[1]) for r in outbox]

    # A's Status page shows the same message the same way.
    open_status(page, a, msgid)
    page.get_by_role("heading", name=re.compile("DELIVERED")).wait_for(timeout=30_000)


def test_one_callback_posted_to_both_replicas_at_once_lands_once(replicas: Replicas, page) -> None:
    a, b = replicas.consoles
    # +15005550003: SENT, then DELIVERED only 30 s later — the DELIVERED here is ours.
    msgid = send_on(page, a, "+15005550003", "Slow to arrive")
    sent = wait_for(lambda: [r for r in replicas.outbox(msgid) if r[4] == "delivered"])
    assert [r[1] for r in sent] == ["SENT"]
    assert status_of(replicas, msgid) == "SENT"
    body = json.loads(sent[0][2])
    body.update(status="DELIVERED", delivered_time=body["updated_time"])
    raw = json.dumps(body, separators=(",", ":"))
    event_id = "evt_" + secrets.token_hex(12)

    answers: dict[str, httpx.Response] = {}
    go = threading.Barrier(2)

    def post(name: str, console: Console) -> None:
        go.wait()
        answers[name] = post_callback(console, replicas, event_id, raw)

    threads = [threading.Thread(target=post, args=(n, c)) for n, c in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {n: r.status_code for n, r in answers.items()} == {"a": 200, "b": 200}
    outcomes = sorted(r.json()["outcome"] for r in answers.values())
    assert outcomes == ["applied", "duplicate"], outcomes
    assert events_of(replicas, msgid) == [(sent[0][0], "SENT"), (event_id, "DELIVERED")]
    assert status_of(replicas, msgid) == "DELIVERED"

    open_status(page, b, msgid)
    page.get_by_role("heading", name=re.compile("DELIVERED")).wait_for(timeout=30_000)
    wait_ready(page)
    screenshot(page, "replicas-callback-once")


def test_a_cap_set_on_a_is_what_b_shows_and_enforces(replicas: Replicas, page) -> None:
    a, b = replicas.consoles
    if not replicas.settled_sms_usage():  # run alone: one message today, so a cap is reached
        send_on(page, a, "+12015550124", "Before the cap")
    cap = replicas.settled_sms_usage()  # the service's count: a message that FAILED leaves it
    page.goto(f"{a.url}/limits")
    wait_ready(page)
    page.locator(f"{key('limits_sms_cap')} input").fill(str(cap))
    page.locator(f"{key('limits_block')} label").click()  # blockOnLimit: caps block sends
    page.locator(f"{key('limits_review')} button").click()
    page.get_by_role("dialog").locator(f"{key('limits_confirm')} button").click()
    wait_ready(page)
    page.get_by_text(f"Cap {cap:,} ·").first.wait_for(timeout=20_000)

    # B reads the account's caps from the service (its sidebar keeps them 10 s at most).
    shown = f"Cap {cap:,} ·"
    deadline = time.monotonic() + 30
    while True:
        page.goto(f"{b.url}/limits")
        wait_ready(page)
        if page.get_by_text(shown).count() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(2_000)
    expect(page.get_by_text(shown).first).to_be_visible()
    screenshot(page, "replicas-cap-on-b")

    page.goto(b.url)  # and B's Send page says sending is blocked
    wait_ready(page)
    page.get_by_text("the daily SMS cap is reached").first.wait_for(timeout=20_000)
    # and what A changed is in the audit B shows (one log for both)
    page.goto(f"{b.url}/audit")
    wait_ready(page)
    # the grid draws on a canvas: its cells are in the page, not visible
    cell = page.locator('[role="gridcell"]', has_text="Caps changed")
    cell.first.wait_for(state="attached")
    audit = sql(replicas, "SELECT count(*) FROM audit_log WHERE action = 'caps_change'")
    assert audit == [(1,)]
    screenshot(page, "replicas-audit-on-b")
