"""Callback delivery under faults: a receiver down or losing answers, a gateway SIGKILLed,
duplicate, out-of-order and forged events. Real servers on loopback throughout."""

from __future__ import annotations

import base64
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gateway.accounts import Accounts
from gateway.cli import main as gateway_cli
from gateway.db import Database
from kedacore.api.types import SendResult, SentMessage
from kedacore.envelope import seal
from kedacore.ledger import Ledger
from kedacore.webhooks import sign_event
from tests.support import GatewayHandle, ReceiverHandle, phone_numbers, poll

FAST_RETRIES = {"callback_backoff_base": 0.05, "callback_backoff_cap": 0.2}
FAST_RETRY_ARGS = ["--callback-backoff", "0.05", "--callback-backoff-cap", "0.2"]


def send_and_record(
    gw: GatewayHandle, account: Any, ledger: Ledger, url: str, count: int, start: int = 0
) -> list[str]:
    """Send to ``count`` US numbers with a callback URL; record the send; return msgids."""
    payload = {
        "countryCode": "US",
        "phoneNumbers": phone_numbers("US", count, start),
        "content": "Your parcel is on its way",
        "callbackUrl": url,
    }
    response = gw.send(account, payload)
    assert response.status_code == 200, response.text
    result = SendResult.from_wire(response.json()["data"])
    ledger.record_send(result, country="US", sender="KedaSMS", content=payload["content"])
    return [m.msgid for m in result.messages]


def events_per_message(ledger: Ledger) -> dict[tuple[str, str], int]:
    with ledger.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT msgid, status, count(*) FROM events GROUP BY msgid, status"
        ).all()
    return {(m, s): n for m, s, n in rows}


def snapshot(ledger: Ledger) -> tuple[list[tuple], list[tuple]]:
    with ledger.engine.connect() as conn:
        messages = conn.exec_driver_sql("SELECT * FROM messages ORDER BY msgid").all()
        events = conn.exec_driver_sql("SELECT * FROM events ORDER BY id").all()
    return [tuple(r) for r in messages], [tuple(e) for e in events]


def all_delivered(gw: GatewayHandle, expected: int) -> bool:
    return gw.query("SELECT state, count(*) FROM outbox GROUP BY state") == [
        ("delivered", expected)
    ]


def test_receiver_down_for_a_while_then_up_gets_every_event_once(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True, **FAST_RETRIES)
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key, start=False)
    msgids = send_and_record(gw, account, receiver.ledger, receiver.url, 20)
    msgids += send_and_record(gw, account, receiver.ledger, receiver.url, 20, start=20)

    # Down: every event has been tried and refused at least twice, none is lost.
    def tried_twice() -> bool:
        count, fewest = gw.query("SELECT count(*), min(attempts) FROM outbox")[0]
        return count == 80 and fewest >= 2

    poll(tried_twice, timeout=10)
    assert gw.query("SELECT count(*) FROM outbox WHERE state != 'pending'") == [(0,)]
    errors = {e for (e,) in gw.query("SELECT DISTINCT last_error FROM outbox")}
    assert errors and all("Connect" in e for e in errors), errors
    assert receiver.faults.requests == 0

    receiver.start()
    poll(lambda: all_delivered(gw, 80), timeout=10)
    assert set(receiver.statuses().values()) == {"DELIVERED"}
    assert receiver.event_count() == 80
    assert events_per_message(receiver.ledger) == {
        (m, s): 1 for m in msgids for s in ("SENT", "DELIVERED")
    }


def test_answers_lost_after_storing_are_sent_again_without_a_second_effect(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True, **FAST_RETRIES)
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key)
    receiver.faults.lose_answers = 25  # stored in the ledger, but the gateway sees a 500
    receiver.faults.refuse = 5  # and a few plain 503s
    msgids = send_and_record(gw, account, receiver.ledger, receiver.url, 30)
    poll(lambda: all_delivered(gw, 60), timeout=10)
    assert receiver.faults.requests >= 60 + 25 + 5
    # Each refused or unanswered request costs its event one more attempt, whichever event.
    ((retries,),) = gw.query("SELECT sum(attempts) - count(*) FROM outbox")
    assert retries >= 30
    assert receiver.event_count() == 60
    assert events_per_message(receiver.ledger) == {
        (m, s): 1 for m in msgids for s in ("SENT", "DELIVERED")
    }
    assert set(receiver.statuses().values()) == {"DELIVERED"}
    costs = {m.cost_micros for m in receiver.ledger.messages_many(msgids)}
    assert costs == {50_000}


def test_events_pending_when_the_gateway_is_killed_are_delivered_after_a_restart(
    tmp_path: Path,
    receiver_factory: Callable[..., ReceiverHandle],
    gateway_process: Callable[..., tuple[Any, str]],
    capsys: Any,
) -> None:
    db_path = tmp_path / "gateway.db"
    db = Database(db_path)
    created = Accounts(db, time.time).create("kill@example.com", 100_000_000, "USD")
    db.close()
    args = ["--allow-private-callbacks", "--sent-delay", "0.05", "--deliver-delay", "0.05"]
    args += ["--rate-limit", "0", *FAST_RETRY_ARGS]
    receiver = receiver_factory(signing_key=created["encryptionKey"], start=False)
    proc, base_url = gateway_process(db_path, *args)

    def send(start: int) -> list[str]:
        payload = {
            "countryCode": "US",
            "phoneNumbers": phone_numbers("US", 10, start),
            "content": "Your code is 123456",
            "callbackUrl": receiver.url,
        }
        body = seal(payload, created["encryptionKey"], api_key=created["apiKey"])
        data = httpx.post(f"{base_url}/sms/send", json=body, timeout=10).json()["data"]
        result = SendResult.from_wire(data)
        receiver.ledger.record_send(result, country="US", sender="KedaSMS", content="x")
        return [m.msgid for m in result.messages]

    def outbox(sql: str) -> list[tuple]:
        with Database(db_path).engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).all()]

    # Receiver down: the first events wait for their next attempt (backoff) ...
    msgids = send(0)
    poll(lambda: outbox("SELECT count(*), min(attempts) FROM outbox")[0] >= (20, 1), timeout=10)
    # ... then it hangs on every request: the next attempts are leased, in flight.
    receiver.faults.hang = 1.0
    receiver.start()
    msgids += send(10)
    poll(
        lambda: (
            outbox("SELECT count(*), sum(leased) FROM outbox WHERE attempts > 0")[0][0] == 40
            and outbox("SELECT sum(leased) FROM outbox")[0][0] > 0
        ),
        timeout=10,
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert outbox("SELECT state, count(*) FROM outbox GROUP BY state") == [("pending", 40)]
    assert receiver.event_count() == 0

    assert gateway_cli(["outbox", "--db", str(db_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"] == {"pending": 40, "delivered": 0, "dead": 0}
    assert all(receiver.token not in e["url"] for e in listed["events"])  # the token is masked

    receiver.faults.hang = 0.0
    gateway_process(db_path, *args)  # the same database: the outbox is picked up at start
    # Leased events are due again at once (not after their lease): well within 5 s.
    poll(lambda: receiver.event_count() == 40, timeout=5)
    poll(lambda: outbox("SELECT state, count(*) FROM outbox GROUP BY state") == [("delivered", 40)])
    assert set(receiver.statuses().values()) == {"DELIVERED"}
    assert events_per_message(receiver.ledger) == {
        (m, s): 1 for m in msgids for s in ("SENT", "DELIVERED")
    }


_http = httpx.Client(timeout=10)  # one pool for the whole module: a client per post is slow


def post_signed(receiver: ReceiverHandle, body: bytes, key: bytes, event_id: str) -> httpx.Response:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Keda-Event-Id": event_id,
        "X-Keda-Timestamp": stamp,
        "X-Keda-Signature": sign_event(body, stamp, key),
    }
    return _http.post(receiver.url, content=body, headers=headers)


def test_duplicate_and_out_of_order_events_end_in_the_right_state(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True)
    account = gw.create_account()
    key = base64.b64decode(account.encryption_key)
    first = receiver_factory(signing_key=account.encryption_key)
    msgids = send_and_record(gw, account, first.ledger, first.url, 5)
    poll(lambda: all_delivered(gw, 10), timeout=10)
    delivered = snapshot(first.ledger)
    events = gw.query("SELECT event_id, body FROM outbox ORDER BY id")

    # The gateway's own events again, newest first, each twice: nothing changes.
    for event_id, body in reversed(events * 2):
        response = post_signed(first, body.encode(), key, event_id)
        assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert snapshot(first.ledger) == delivered

    # A second ledger hears them out of order (DELIVERED before SENT) and twice over.
    second = receiver_factory(signing_key=account.encryption_key)
    second.ledger.record_send(_result(first, msgids), country="US", sender=None, content="x")
    for event_id, body in reversed(events):
        assert post_signed(second, body.encode(), key, event_id).status_code == 200
    for event_id, body in events:
        assert post_signed(second, body.encode(), key, event_id).json()["outcome"] == "duplicate"
    columns = ("status", "sent_at", "delivered_at", "cost_micros", "delivery_ms")
    for msgid in msgids:
        a, b = first.ledger.message(msgid), second.ledger.message(msgid)
        assert [getattr(a, c) for c in columns] == [getattr(b, c) for c in columns]
        assert b.status == "DELIVERED" and b.sent_at is not None


def _result(receiver: ReceiverHandle, msgids: list[str]) -> SendResult:
    """The send as the first ledger recorded it, to record it in another ledger."""
    rows = receiver.ledger.messages_many(msgids)
    task = receiver.ledger.task(rows[0].task_id)
    messages = tuple(SentMessage(m.msgid, m.recipient) for m in rows)
    return SendResult(task.task_id, "ok", task.debited, task.currency, task.segments, messages)


def test_events_signed_with_another_key_are_refused_and_dead_lettered(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True, callback_max_attempts=2, **FAST_RETRIES)
    account, other = gw.create_account(), gw.create_account()
    receiver = receiver_factory(signing_key=other.encryption_key)  # expects the other key
    send_and_record(gw, account, receiver.ledger, receiver.url, 3)
    before = snapshot(receiver.ledger)
    poll(lambda: gw.query("SELECT state, count(*) FROM outbox GROUP BY state") == [("dead", 6)])
    assert gw.query("SELECT DISTINCT attempts, last_code, last_error FROM outbox") == [
        (2, 401, "HTTP 401; gave up after 2 attempts")
    ]
    assert snapshot(receiver.ledger) == before
    assert set(receiver.statuses().values()) == {"QUEUED"}


def test_forged_events_over_http_leave_the_ledger_unchanged(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True)
    account = gw.create_account()
    key = base64.b64decode(account.encryption_key)
    receiver = receiver_factory(signing_key=account.encryption_key)
    msgids = send_and_record(gw, account, receiver.ledger, receiver.url, 2)
    poll(lambda: all_delivered(gw, 4), timeout=10)
    before = snapshot(receiver.ledger)
    (body,) = gw.query("SELECT body FROM outbox WHERE status = 'SENT'")[0]
    forged = body.replace('"status":"SENT"', '"status":"FAILED"').replace('"0.05"', '"0"')
    stamp = str(int(time.time()))
    genuine = sign_event(body.encode(), stamp, key)
    headers = {"X-Keda-Event-Id": "evt_forged1", "X-Keda-Timestamp": stamp}

    wrong_token = receiver.url.rsplit("/", 1)[0] + "/not-the-token"
    assert (
        _http.post(
            wrong_token, content=body, headers={**headers, "X-Keda-Signature": genuine}
        ).status_code
        == 401
    )
    tampered = _http.post(
        receiver.url, content=forged, headers={**headers, "X-Keda-Signature": genuine}
    )
    assert tampered.status_code == 401 and tampered.json()["error"] == "bad_signature"
    stale = str(int(time.time()) - 3600)
    old = {
        **headers,
        "X-Keda-Timestamp": stale,
        "X-Keda-Signature": sign_event(body.encode(), stale, key),
    }
    assert _http.post(receiver.url, content=body, headers=old).status_code == 401
    big = body[:-1] + ',"pad":"' + "x" * 70_000 + '"}'
    assert post_signed(receiver, big.encode(), key, "evt_big").status_code == 413
    assert post_signed(receiver, body[:-5].encode(), key, "evt_cut").status_code == 400
    wrong_field = body.replace(msgids[0], "msg_NOT-HEX").replace(msgids[1], "msg_NOT-HEX")
    assert post_signed(receiver, wrong_field.encode(), key, "evt_bad").status_code == 400
    assert snapshot(receiver.ledger) == before
