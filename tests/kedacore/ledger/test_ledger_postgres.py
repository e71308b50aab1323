"""The ledger on PostgreSQL: a callback and its send, written at the same time, lose nothing.

Under READ COMMITTED a callback that arrives while its send's transaction is still open finds
no message, and the send does not see the callback's stored event either: without the
advisory locks of ``kedacore.ledger.engine.lock_messages`` the event stayed ``unknown`` for
ever. SQLite needs no test of this: ``BEGIN IMMEDIATE`` serialises every writer.

PostgreSQL only, through the suite's one ``store`` fixture (``tests/conftest.py``): each test
gets a schema of its own in the ``KEDA_TEST_POSTGRES_URL`` database, e.g.
``postgresql+psycopg://postgres@/keda_test?host=/tmp/pg&port=5432``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, Outcome, PlannedBatch, parse_event
from kedacore.ledger.engine import MESSAGE_LOCK_CLASS

# About PostgreSQL's concurrency only: the one store fixture, on its postgresql case.
pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)


@pytest.fixture
def ledger(ledger_url: Callable[..., str]) -> Iterator[Ledger]:
    with Ledger(ledger_url()) as led:
        yield led


def sent(msgid: str, task_id: str = "20250301-0001") -> SendResult:
    return SendResult(
        task_id, "ok", Decimal("0.05"), "USD", 1, (SentMessage(msgid, "+12065550123"),)
    )


def delivered(msgid: str, event_id: str) -> Any:
    body = {
        "msgid": msgid,
        "status": "DELIVERED",
        "recipient": "+12065550123",
        "sender": "Shop",
        "sent_time": "2025-03-01T00:00:00Z",
        "delivered_time": "2025-03-01T00:00:01Z",
        "cost": "0.05",
    }
    return parse_event(body, event_id=event_id)


def waiting_for_lock(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = :cls"
        )
        return int(conn.execute(query, {"cls": MESSAGE_LOCK_CLASS}).scalar_one())


def start_and_let_it_block(ledger: Ledger, work: Callable[[], Any]) -> threading.Thread:
    """Run ``work`` in a thread while the caller's transaction is open; return once it waits
    for that transaction's lock (or has finished: without the lock nothing makes it wait)."""
    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 5
    while thread.is_alive() and not waiting_for_lock(ledger) and time.monotonic() < deadline:
        time.sleep(0.02)
    return thread


def test_a_callback_that_overtakes_its_send_is_applied(ledger: Ledger) -> None:
    msgid = "msg_00112233445566aa"
    outcomes: list[Outcome] = []
    threads: list[threading.Thread] = []
    replay = ledger._replay_orphans

    def callback_lands_mid_send(conn: Any, msgids: Any, *rest: Any) -> None:
        replay(conn, msgids, *rest)  # no stored event yet: nothing to replay
        work = lambda: outcomes.extend(ledger.apply_events([delivered(msgid, "evt_1")]))  # noqa: E731
        threads.append(start_and_let_it_block(ledger, work))

    ledger._replay_orphans = callback_lands_mid_send  # type: ignore[method-assign]
    ledger.record_send(sent(msgid), country="US", sender="Shop", content="hi")
    threads[0].join(10)
    assert outcomes == [Outcome.APPLIED]
    assert ledger.message(msgid).status == "DELIVERED"
    assert ledger.unknown_events() == []


def test_a_send_recorded_while_its_callback_is_stored_replays_it(ledger: Ledger) -> None:
    msgid = "msg_00112233445566bb"
    threads: list[threading.Thread] = []
    store = ledger._apply_events

    def send_lands_mid_callback(conn: Any, events: Any) -> list[Outcome]:
        outcomes = store(conn, events)  # stored as unknown, not committed yet
        work = lambda: ledger.record_send(sent(msgid), country="US", sender="S", content="hi")  # noqa: E731
        threads.append(start_and_let_it_block(ledger, work))
        return outcomes

    ledger._apply_events = send_lands_mid_callback  # type: ignore[method-assign]
    assert ledger.apply_events([delivered(msgid, "evt_2")]) == [Outcome.UNKNOWN]
    threads[0].join(10)
    assert ledger.message(msgid).status == "DELIVERED"
    assert [e.outcome for e in ledger.message_events(msgid)] == ["applied"]


def test_a_campaign_group_write_replays_a_callback_stored_meanwhile(ledger: Ledger) -> None:
    cid = ledger.create_campaign("Spring", template="Hi")
    (batch,) = ledger.plan_campaign(cid, [PlannedBatch("US", "Hi", ("+12065550123",), 50_000)])
    msgid = "msg_00112233445566cc"
    threads: list[threading.Thread] = []
    store = ledger._apply_events

    def group_write_mid_callback(conn: Any, events: Any) -> list[Outcome]:
        outcomes = store(conn, events)
        work = lambda: ledger.mark_batches_sent([(batch.id, sent(msgid))])  # noqa: E731
        threads.append(start_and_let_it_block(ledger, work))
        return outcomes

    ledger._apply_events = group_write_mid_callback  # type: ignore[method-assign]
    ledger.apply_events([delivered(msgid, "evt_3")])
    threads[0].join(10)
    assert ledger.message(msgid).status == "DELIVERED"
    assert ledger.unknown_events() == []


def test_sends_and_callbacks_racing_in_many_threads_lose_nothing(ledger: Ledger) -> None:
    msgids = [f"msg_{i:016x}" for i in range(60)]
    errors: list[BaseException] = []

    def guarded(work: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        return run

    threads = []
    for i, msgid in enumerate(msgids):
        result = sent(msgid, task_id=f"20250301-{i:04d}")
        threads.append(
            threading.Thread(
                target=guarded(
                    lambda r=result: ledger.record_send(r, country="US", sender="S", content="x")
                )
            )
        )
        threads.append(
            threading.Thread(
                target=guarded(lambda m=msgid: ledger.apply_events([delivered(m, f"e-{m}")]))
            )
        )
    for i in range(0, len(threads), 2):  # the callback first half of the time
        if i % 4:
            threads[i], threads[i + 1] = threads[i + 1], threads[i]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert {m.status for m in ledger.messages_many(msgids)} == {"DELIVERED"}
    assert ledger.unknown_events() == []


def test_a_group_write_of_thousands_of_messages_fits_the_lock_table(ledger: Ledger) -> None:
    # One lock per msgid would need 12,000 lock-table entries in one transaction
    # (PostgreSQL's default table holds about 6,400): the locks are taken per bucket.
    cid = ledger.create_campaign("Big", template="Hi")
    numbers = [f"+1206{2_000_000 + i:07d}" for i in range(12_000)]
    batches = ledger.plan_campaign(
        cid,
        [
            PlannedBatch("US", "Hi", tuple(numbers[i : i + 1000]), 50_000)
            for i in range(0, 12_000, 1000)
        ],
    )
    answers = []
    for k, batch in enumerate(batches):
        msgs = tuple(SentMessage(f"msg_{k:04x}{i:012x}", n) for i, n in enumerate(batch.recipients))
        answers.append(
            (batch.id, SendResult(f"20250301-{k:04d}", "ok", Decimal(50), "USD", 1000, msgs))
        )
    assert ledger.mark_batches_sent(answers) == 12_000


def test_the_audit_log_is_append_only_in_the_database(ledger: Ledger) -> None:
    """PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE of the audit log (a trigger)."""
    from sqlalchemy.exc import DatabaseError

    ledger.audit("finance@example.com", "caps_change", before={"a": 1}, after={"a": 2})
    for sql in (
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DatabaseError, match="append-only"), ledger.engine.begin() as conn:
            conn.execute(text(sql))
    # The trigger and its function are in the ledger's schema (the test's own), not public.
    with ledger.engine.connect() as conn:
        where = conn.execute(
            text(
                "SELECT n.nspname, current_schema() FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'audit_log_append_only' "
                "AND n.nspname IN ('public', current_schema())"
            )
        ).all()
    assert len(where) == 1 and where[0][0] == where[0][1] != "public", where
    url = ledger.engine.url.render_as_string(hide_password=False)
    again = Ledger(url)  # opening an existing ledger keeps (re-creates) the trigger
    with pytest.raises(DatabaseError, match="append-only"), again.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    [entry] = again.audit_entries()
    assert (entry.actor, entry.before, entry.after) == ("finance@example.com", {"a": 1}, {"a": 2})
    again.close()


def test_two_admins_removing_each_other_at_once_leave_one(ledger: Ledger) -> None:
    """Each removal counts the admins left; on PostgreSQL both count under a table lock, so the
    second waits for the first and then refuses (the team keeps an admin)."""
    ledger.add_member("a@example.com", ["admin"], by="secrets")
    ledger.add_member("b@example.com", ["admin"], by="secrets")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def remove(who: str, whom: str) -> None:
        barrier.wait()
        try:
            ledger.remove_member(whom, by=who)
            outcomes[who] = "removed"
        except ValueError as exc:
            outcomes[who] = str(exc)

    threads = [
        threading.Thread(target=remove, args=("a@example.com", "b@example.com")),
        threading.Thread(target=remove, args=("b@example.com", "a@example.com")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v == "removed" for v in outcomes.values()) == [False, True], outcomes
    assert [m.email for m in ledger.members() if "admin" in m.roles] != []


def test_two_first_settings_at_once_one_wins_the_other_is_told(ledger: Ledger) -> None:
    from kedacore.ledger.team import APPROVAL_THRESHOLD, SettingChanged

    def save(value: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
        barrier.wait()
        try:
            ledger.set_team_setting(APPROVAL_THRESHOLD, value, by="f@x.com", expect=None)
            outcomes.append("saved")
        except SettingChanged:
            outcomes.append("changed")

    for _ in range(5):
        with ledger.engine.begin() as conn:
            conn.execute(text("DELETE FROM team_settings"))
        barrier, outcomes = threading.Barrier(2), []
        threads = [threading.Thread(target=save, args=(v, barrier, outcomes)) for v in ("5", "7")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["changed", "saved"], outcomes


def test_the_audit_search_folds_every_letter_on_postgresql(ledger: Ledger) -> None:
    from kedacore.ledger.audit import AuditFilter

    ledger.audit("f@x.com", "approve", target="campaign 1", detail="Étude ÜBERWEISUNG")
    assert ledger.audit_count(AuditFilter(text="étude")) == 1
    assert ledger.audit_count(AuditFilter(text="überWEISUNG")) == 1
