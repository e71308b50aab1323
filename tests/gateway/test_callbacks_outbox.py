"""The callback outbox and its sender: what is written, when, how it is signed and retried."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.cli import main as gateway_cli
from gateway.outbox import Outbox, mask_url
from kedacore.api.types import SendResult
from kedacore.webhooks import verify_signature
from tests.support import GatewayHandle, ReceiverHandle, phone_numbers, poll

STATUS_KEYS = [
    "msgid",
    "status",
    "recipient",
    "sender",
    "sent_time",
    "delivered_time",
    "cost",
    "updated_time",
    "taskId",
]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")


def us_send(gw: GatewayHandle, account: Any, numbers: list[str], **extra: Any) -> dict:
    payload = {"countryCode": "US", "phoneNumbers": numbers, "content": "hi", **extra}
    response = gw.send(account, payload)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_one_signed_event_per_status_change_with_the_seed_body(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True)
    account = gw.create_account()
    receiver = receiver_factory()  # checks no signature: we check it here, byte for byte
    numbers = ["+15005550001", "+15005550002", phone_numbers("US", 1)[0]]
    data = us_send(gw, account, numbers, callbackUrl=receiver.url, senderId="Shop")
    poll(lambda: len(receiver.faults.captured) == 5 and receiver.event_count() == 5)

    key = base64.b64decode(account.encryption_key)
    bodies = []
    for headers, raw in receiver.faults.captured:
        stamp, signature = headers["x-keda-timestamp"], headers["x-keda-signature"]
        assert re.fullmatch(r"[0-9a-f]{64}", signature)
        assert verify_signature(bytes(raw), stamp, signature, key)
        assert headers["content-type"] == "application/json"
        body = json.loads(raw)
        assert list(body) == STATUS_KEYS
        bodies.append((headers["x-keda-event-id"], body))
    assert len({event_id for event_id, _ in bodies}) == 5

    ids = {m["recipient"]: m["msgid"] for m in data["messages"]}
    seen = {(b["recipient"], b["status"]): b for _, b in bodies}
    assert set(seen) == {
        ("+15005550001", "FAILED"),
        ("+15005550002", "SENT"),
        ("+15005550002", "UNDELIVERED"),
        (numbers[2], "SENT"),
        (numbers[2], "DELIVERED"),
    }
    failed = seen[("+15005550001", "FAILED")]
    assert (failed["cost"], failed["sent_time"], failed["delivered_time"]) == ("0", None, None)
    lost = seen[("+15005550002", "UNDELIVERED")]
    assert (
        lost["cost"] == "0.05" and lost["delivered_time"] is None and ISO.match(lost["sent_time"])
    )
    done = seen[(numbers[2], "DELIVERED")]
    status = gw.status(account, ids[numbers[2]])
    assert done["delivered_time"] == status["delivered_time"] == done["updated_time"]
    assert done["sent_time"] == status["sent_time"] == seen[(numbers[2], "SENT")]["sent_time"]
    assert all(b["sender"] == "Shop" and b["taskId"] == data["taskId"] for _, b in bodies)

    # In the outbox exactly as sent; one row per change the carrier made. The sender records
    # its results in batches, a moment after the receiver has answered: wait for that.
    def all_delivered() -> list | None:
        rows = gw.query("SELECT event_id, body, state, attempts, last_code FROM outbox")
        return rows if all(state == "delivered" for _, _, state, *_ in rows) else None

    rows = poll(all_delivered)
    assert sorted((e, json.loads(b)) for e, b, *_ in rows) == sorted(bodies, key=lambda x: x[0])
    assert {(state, attempts, code) for *_, state, attempts, code in rows} == {
        ("delivered", 1, 200)
    }


def test_no_callback_url_no_events(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    data = us_send(gateway, account, phone_numbers("US", 3))
    gateway.wait_for_status(account, data["messages"][-1]["msgid"])
    assert gateway.query("SELECT count(*) FROM outbox") == [(0,)]


def test_an_event_exists_exactly_when_its_change_committed(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True, carrier_batch=7)
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key, start=False)
    us_send(gw, account, phone_numbers("US", 40), callbackUrl=receiver.url)
    looks: set[int] = set()
    deadline = time.monotonic() + 10
    while 80 not in looks and time.monotonic() < deadline:  # while the carrier moves them
        # One statement: one snapshot of both tables.
        ((changes, events),) = gw.query(
            "SELECT (SELECT sum(CASE status WHEN 'SENT' THEN 1 WHEN 'DELIVERED' THEN 2 "
            "ELSE 0 END) FROM messages), (SELECT count(*) FROM outbox)"
        )
        assert changes == events
        looks.add(events)
        time.sleep(0.005)
    assert len(looks) > 2 and max(looks) == 80


def test_failed_attempts_back_off_exponentially_until_a_2xx(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(
        allow_private_callbacks=True, callback_backoff_base=0.1, callback_backoff_cap=10
    )
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key)
    receiver.faults.refuse = 3
    us_send(gw, account, ["+15005550001"], callbackUrl=receiver.url)  # one FAILED event
    poll(lambda: receiver.event_count() == 1, timeout=5)
    assert len(receiver.faults.captured) == 4
    # The sender records the 200 a moment after the receiver has stored the event.
    poll(lambda: gw.query("SELECT state FROM outbox") == [("delivered",)])
    assert gw.query("SELECT state, attempts, last_code, last_error FROM outbox") == [
        ("delivered", 4, 200, None)
    ]
    # Waits of about 0.1, 0.2 and 0.4 s (75-100 % of each, for jitter): 0.5 s at least.
    ((created, done),) = gw.query("SELECT created_at, done_at FROM outbox")
    assert done - created >= 500


def test_dead_lettered_after_its_attempts_kept_and_listed(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
    capsys: Any,
) -> None:
    gw = gateway_factory(
        allow_private_callbacks=True,
        callback_backoff_base=0.02,
        callback_backoff_cap=0.05,
        callback_max_attempts=3,
    )
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key)
    receiver.faults.refuse = 1000
    data = us_send(gw, account, ["+15005550001"], callbackUrl=receiver.url)
    poll(lambda: gw.query("SELECT state FROM outbox") == [("dead",)], timeout=5)
    assert gw.query("SELECT attempts, last_code, last_error FROM outbox") == [
        (3, 503, "HTTP 503; gave up after 3 attempts")
    ]
    assert receiver.faults.requests == 3

    assert gateway_cli(["outbox", "--db", str(gw.db_path), "--state", "dead"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "outbox: 0 pending, 0 delivered, 1 dead"
    assert data["messages"][0]["msgid"] in out[1] and "FAILED dead attempts=3" in out[1]
    assert "HTTP 503; gave up after 3 attempts" in out[1] and receiver.token not in out[1]


def test_dead_lettered_once_too_old_even_with_the_receiver_down(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(
        allow_private_callbacks=True,
        callback_backoff_base=0.05,
        callback_backoff_cap=10,
        callback_dead_after=0.4,
    )
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key, start=False)
    us_send(gw, account, ["+15005550001"], callbackUrl=receiver.url)
    poll(lambda: gw.query("SELECT state FROM outbox") == [("dead",)], timeout=5)
    ((created, done, error),) = gw.query("SELECT created_at, done_at, last_error FROM outbox")
    assert done - created >= 400 and error.endswith("gave up after 0.4 s")


def test_a_click_on_a_tracked_link_sends_a_clicked_event(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True)
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key)
    number = phone_numbers("US", 1)[0]
    payload = {
        "countryCode": "US",
        "phoneNumbers": [number],
        "content": "Deals at https://shop.example/sale?x=1 today",
        "trackClick": True,
        "callbackUrl": receiver.url,
    }
    response = gw.send(account, payload)
    result = SendResult.from_wire(response.json()["data"])
    receiver.ledger.record_send(result, country="US", sender=None, content=payload["content"])
    msgid = result.messages[0].msgid
    gw.wait_for_status(account, msgid)
    short = re.search(r"http://\S+/s/\w+", gw.status(account, msgid)["message"]).group()
    for agent in ["a", "a", "b"]:
        visit = gw.http.get(short, headers={"User-Agent": agent})
        assert visit.status_code == 302
        assert visit.headers["location"] == "https://shop.example/sale?x=1"
    # The DELIVERED callback and the clicks are separate POSTs, in no guaranteed order.
    poll(
        lambda: (m := receiver.ledger.message(msgid)).clicks == 3 and m.status == "DELIVERED",
        timeout=10,
    )
    clicks = [
        json.loads(b) for (b,) in gw.query("SELECT body FROM outbox WHERE status = 'CLICKED'")
    ]
    assert len(clicks) == 3
    assert list(clicks[0]) == ["msgid", "status", "recipient", "url", "shortUrl", "clicked_time"]
    assert clicks[0]["url"] == "https://shop.example/sale?x=1" and clicks[0]["shortUrl"] == short
    assert {c["msgid"] for c in clicks} == {msgid} and {c["recipient"] for c in clicks} == {number}
    code = short.rsplit("/", 1)[1]
    link = gw.get(f"/shortlinks/{code}", account).json()["data"]
    assert (link["clicks"], link["uniqueClicks"]) == (3, 2)
    assert receiver.ledger.message(msgid).status == "DELIVERED"


def test_a_click_on_a_plain_short_link_sends_nothing(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    link = gateway.post_envelope("/shortlinks", account, {"url": "https://example.com"})
    assert gateway.http.get(link.json()["data"]["shortUrl"]).status_code == 302
    assert gateway.query("SELECT count(*) FROM clicks") == [(1,)]
    assert gateway.query("SELECT count(*) FROM outbox") == [(0,)]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "http://127.0.0.1:8501/hooks/keda/s3cr3t-t0ken-abcdef",
            "http://127.0.0.1:8501/hooks/keda/***cdef",
        ),
        ("https://example.com/cb?token=abc", "https://example.com/***?***"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com/a/very-long-secret-part/x", "https://example.com/a/***part/***"),
    ],
)
def test_listed_urls_hide_what_may_be_a_secret(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_delivered_events_are_pruned_after_their_retention_dead_ones_kept(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True)
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key)
    us_send(gw, account, ["+15005550001"], callbackUrl=receiver.url)
    poll(lambda: gw.query("SELECT state FROM outbox") == [("delivered",)])
    db = gw.app.state.gateway.db
    with db.write() as conn:  # and a dead letter, as old as the delivered event
        conn.exec_driver_sql(
            "INSERT INTO outbox (event_id, account_id, msgid, status, url, body, state, "
            "leased, attempts, created_at, done_at) SELECT 'evt_dead', account_id, msgid, "
            "status, url, body, 'dead', 0, 9, created_at, done_at FROM outbox"
        )
    later = Outbox(db, lambda: time.time() + 3600)  # an hour on
    assert later.prune(7200) == 0
    assert later.prune(60) == 1
    assert later.counts() == {"pending": 0, "delivered": 0, "dead": 1}
