"""Sending: validation, price, freeze then charge, ids, status, clientRef, the money invariant."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

US_PRICE = 50_000  # micro-units per segment
CN = {"countryCode": "CN", "phoneNumbers": ["13800138000"], "content": "您的验证码为 123456"}


def us(*numbers: str, content: str = "Your code is 123456", **extra) -> dict:
    return {"countryCode": "US", "phoneNumbers": list(numbers), "content": content, **extra}


def invariant(gateway, email: str) -> dict:
    money = gateway.money(email)
    assert money["balance"] + money["frozen"] + money["charged"] == money["topped_up"], money
    assert money["balance"] >= 0 and money["frozen"] >= 0
    return money


def test_send_response_has_the_seed_shape_plus_msgids(gateway):
    account = gateway.create_account()
    payload = {
        **CN,
        "phoneNumbers": ["13800138000", "+8613800138001"],
        "senderId": "KedaSMS",
        "trackClick": True,
        "callbackUrl": "https://example.com/webhook/sms",
    }
    response = gateway.send(account, payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == "0" and body["message"] == "Success"
    data = body["data"]
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert re.fullmatch(rf"{today}-\d{{4,}}", data["taskId"])
    assert data["message"] == "SMS task created"
    assert data["debitedAmount"] == 0.096 and data["currency"] == "USD"
    assert data["segments"] == 2
    assert [m["recipient"] for m in data["messages"]] == ["+8613800138000", "+8613800138001"]
    for m in data["messages"]:
        assert re.fullmatch(r"msg_[0-9a-f]{12,}", m["msgid"])
    assert len({m["msgid"] for m in data["messages"]}) == 2


def test_money_is_written_in_its_shortest_form(gateway):
    account = gateway.create_account()
    response = gateway.send(account, CN)
    assert '"debitedAmount":0.048,' in response.text


def test_task_ids_follow_a_per_day_sequence(gateway):
    a, b = gateway.create_account(), gateway.create_account()
    ids = [gateway.send(x, us("+12065550123")).json()["data"]["taskId"] for x in (a, b, a)]
    numbers = [int(i.split("-")[1]) for i in ids]
    assert numbers == [1, 2, 3] and all(len(i.split("-")[1]) == 4 for i in ids)


@pytest.mark.parametrize(
    ("content", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 153 * 3, 3),
        ("€" * 80, 1),  # extension characters count two septets
        ("é" * 160, 1),  # in the GSM-7 basic table
        ("汉" * 70, 1),
        ("汉" * 71, 2),
        ("a" * 1530, 10),
    ],
)
def test_price_is_per_segment_times_recipients(gateway, content, segments):
    account = gateway.create_account()
    response = gateway.send(account, us("+12065550123", "+12065550124", content=content))
    data = response.json()["data"]
    assert data["segments"] == 2 * segments
    assert Decimal(str(data["debitedAmount"])) == Decimal("0.05") * segments * 2
    held = gateway.books(account.email)["held"]  # frozen, or already charged by the carrier
    assert held == US_PRICE * segments * 2


INVALID = [
    ({"countryCode": None}, "countryCode"),
    ({"countryCode": "XX"}, "countryCode"),
    ({"countryCode": 86}, "countryCode"),
    ({"phoneNumbers": "+12065550123"}, "phoneNumbers"),
    ({"phoneNumbers": []}, "phoneNumbers"),
    ({"phoneNumbers": [f"+1206555{i:04d}" for i in range(1001)]}, "phoneNumbers"),
    ({"phoneNumbers": ["12345"]}, "phoneNumbers[0]"),
    ({"phoneNumbers": ["+12065550123", 42]}, "phoneNumbers[1]"),
    ({"phoneNumbers": ["+8613800138000"]}, "phoneNumbers[0]"),  # a CN number in a US send
    ({"phoneNumbers": ["+12065550123", "(206) 555-0123"]}, "phoneNumbers[1]"),  # duplicate
    ({"content": ""}, "content"),
    ({"content": None}, "content"),
    ({"content": "a" * 1531}, "content"),  # 11 segments
    ({"senderId": "ABCDEFGHIJKL"}, "senderId"),
    ({"senderId": "Keda SMS"}, "senderId"),
    ({"senderId": "1234567890123456"}, "senderId"),
    ({"senderId": ""}, "senderId"),
    ({"callbackUrl": "ftp://example.com/x"}, "callbackUrl"),
    ({"callbackUrl": "https://"}, "callbackUrl"),
    ({"callbackUrl": "not a url"}, "callbackUrl"),
    ({"callbackUrl": 5}, "callbackUrl"),
    ({"clientRef": "x" * 65}, "clientRef"),
    ({"clientRef": ""}, "clientRef"),
    ({"clientRef": 7}, "clientRef"),
    ({"trackClick": "yes"}, "trackClick"),
]


@pytest.mark.parametrize(("change", "field"), INVALID)
def test_invalid_payloads_are_2001_listing_the_field_and_charge_nothing(gateway, change, field):
    account = gateway.create_account()
    before = gateway.money(account.email)
    response = gateway.send(account, {**us("+12065550123"), **change})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "2001"
    fields = [e["field"] for e in body["data"]["errors"]]
    assert field in fields, fields
    assert all(e["message"] for e in body["data"]["errors"])
    assert gateway.money(account.email) == before
    assert gateway.query("SELECT count(*) FROM tasks") == [(0,)]


def test_every_fault_is_listed_at_once_with_the_bad_values(gateway):
    account = gateway.create_account()
    payload = {
        "countryCode": "CN",
        "phoneNumbers": ["13800138000", "123", "+12065550123", "13800138000"],
        "content": "",
        "senderId": "!!",
    }
    errors = gateway.send(account, payload).json()["data"]["errors"]
    by_field = {e["field"]: e for e in errors}
    assert set(by_field) == {
        "phoneNumbers[1]",
        "phoneNumbers[2]",
        "phoneNumbers[3]",
        "content",
        "senderId",
    }
    assert by_field["phoneNumbers[1]"]["value"] == "123"
    assert "US" in by_field["phoneNumbers[2]"]["message"]
    assert "duplicate" in by_field["phoneNumbers[3]"]["message"]


def test_numbers_are_accepted_national_or_e164_and_returned_e164(gateway):
    account = gateway.create_account()
    payload = us("(206) 555-0123", "+1 206 555 0124", "0012065550125")
    data = gateway.send(account, payload).json()["data"]
    assert [m["recipient"] for m in data["messages"]] == [
        "+12065550123",
        "+12065550124",
        "+12065550125",
    ]


def test_a_thousand_recipients_in_one_send(gateway):
    account = gateway.create_account()
    numbers = [f"+1206555{i:04d}" for i in range(1000)]
    data = gateway.send(account, us(*numbers)).json()["data"]
    assert len(data["messages"]) == 1000 and data["debitedAmount"] == 50


def test_sender_ids(gateway):
    account = gateway.create_account()
    for sender, expected in [(None, "KedaSMS"), ("ACME01", "ACME01"), ("+123456789012345", None)]:
        payload = us("+12065550123", senderId=sender)
        data = gateway.send(account, payload).json()["data"]
        status = gateway.status(account, data["messages"][0]["msgid"])
        assert status["sender"] == (expected or sender)


def test_freeze_then_charge_exact_amounts(gateway_factory):
    gateway = gateway_factory(sent_delay=2.5, deliver_delay=0.1)
    account = gateway.create_account(balance="10")
    response = gateway.send(account, us("+12065550123", "+12065550124", content="a" * 200))
    data = response.json()["data"]
    assert data["debitedAmount"] == 0.2  # 2 recipients × 2 segments × 0.05
    frozen_now = invariant(gateway, account.email)
    assert frozen_now == {
        "balance": 9_800_000,
        "frozen": 200_000,
        "charged": 0,
        "topped_up": 10_000_000,
    }
    assert gateway.balance(account) == {"balance": 9.8, "frozen": 0.2, "currency": "USD"}
    first = gateway.status(account, data["messages"][0]["msgid"])
    assert first["status"] == "QUEUED" and first["cost"] == 0 and first["sent_time"] is None
    for m in data["messages"]:
        delivered = gateway.wait_for_status(account, m["msgid"])
        assert delivered["cost"] == 0.1
    assert invariant(gateway, account.email) == {
        "balance": 9_800_000,
        "frozen": 0,
        "charged": 200_000,
        "topped_up": 10_000_000,
    }


def test_status_by_msgid_reaches_delivered_with_times(gateway):
    account = gateway.create_account()
    data = gateway.send(account, us("+12065550123", content="Your code is 1")).json()["data"]
    msgid = data["messages"][0]["msgid"]
    status = gateway.wait_for_status(account, msgid)
    assert status["msgid"] == msgid and status["taskId"] == data["taskId"]
    assert status["recipient"] == "+12065550123" and status["message"] == "Your code is 1"
    assert status["segments"] == 1 and status["cost"] == 0.05
    for key in ("created_time", "sent_time", "delivered_time", "updated_time"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", status[key]), key
    assert status["created_time"] <= status["sent_time"] <= status["delivered_time"]
    assert status["updated_time"] == status["delivered_time"]
    raw = gateway.get("/sms/status", account, msgid=msgid).json()
    assert raw["success"] is True and raw["code"] == 200


def test_status_by_task_lists_its_messages_in_order(gateway):
    account = gateway.create_account()
    numbers = ["+12065550123", "+12065550124", "+12065550125"]
    data = gateway.send(account, us(*numbers)).json()["data"]

    def all_delivered():
        body = gateway.get("/sms/status", account, taskId=data["taskId"]).json()
        return body if all(m["status"] == "DELIVERED" for m in body["data"]) else None

    body = gateway.poll(all_delivered)
    assert body["success"] is True and body["code"] == 200
    assert [m["recipient"] for m in body["data"]] == numbers
    assert {m["taskId"] for m in body["data"]} == {data["taskId"]}


def test_status_accepts_the_api_key_as_a_query_parameter(gateway):
    account = gateway.create_account()
    msgid = gateway.send(account, CN).json()["data"]["messages"][0]["msgid"]
    response = gateway.http.get(
        gateway.base_url + "/sms/status", params={"msgid": msgid, "apiKey": account.api_key}
    )
    assert response.json()["data"]["msgid"] == msgid


@pytest.mark.parametrize(
    ("params", "headers", "http"),
    [
        ({"msgid": "msg_000000000000"}, True, 404),
        ({"taskId": "20240101-0001"}, True, 404),
        ({}, True, 422),
        ({"msgid": "msg_000000000000", "taskId": "20240101-0001"}, True, 422),
        ({"msgid": "msg_000000000000"}, False, 401),
    ],
)
def test_status_errors_keep_the_seed_shape(gateway, params, headers, http):
    account = gateway.create_account()
    response = gateway.get("/sms/status", account if headers else None, **params)
    assert response.status_code == http
    body = response.json()
    assert body["success"] is False and body["data"] is None and body["code"] == http
    assert body["message"]


def test_client_ref_returns_the_first_response_without_sending_again(gateway):
    account = gateway.create_account()
    payload = us("+12065550123", clientRef="campaign-7/batch-1")
    first = gateway.send(account, payload)
    after_first = gateway.books(account.email)
    again = gateway.send(account, payload)  # a fresh envelope: a retry, not a replay
    assert again.status_code == 200 and again.json() == first.json()
    other_payload = gateway.send(account, us("+12065550199", clientRef="campaign-7/batch-1"))
    assert other_payload.json() == first.json()
    assert gateway.books(account.email) == after_first
    assert gateway.query("SELECT count(*) FROM tasks") == [(1,)]
    # another account's identical ref is its own
    other = gateway.create_account()
    assert gateway.send(other, payload).json()["data"]["taskId"] != first.json()["data"]["taskId"]


def test_a_refused_send_does_not_claim_its_client_ref(gateway):
    account = gateway.create_account(balance="0")
    payload = us("+12065550123", clientRef="retry-me")
    assert gateway.send(account, payload).json()["code"] == "3001"
    gateway.topup(account.email, "1")
    assert gateway.send(account, payload).json()["code"] == "0"


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_client_ref_expires_after_its_time_to_live(gateway_factory):
    clock = FakeClock(datetime(2030, 5, 1, 10, tzinfo=UTC).timestamp())
    gateway = gateway_factory(clock=clock, client_ref_ttl=60)
    account = gateway.create_account()
    payload = us("+12065550123", clientRef="r1")
    first = gateway.send(account, payload, timestamp=int(clock.now)).json()["data"]
    clock.now += 59
    assert gateway.send(account, payload, timestamp=int(clock.now)).json()["data"] == first
    clock.now += 2
    later = gateway.send(account, payload, timestamp=int(clock.now)).json()["data"]
    assert later["taskId"] != first["taskId"]


def test_insufficient_balance_is_3001_and_changes_nothing(gateway):
    account = gateway.create_account(balance="0.09")
    before = gateway.money(account.email)
    response = gateway.send(account, us("+12065550123", "+12065550124"))
    assert response.status_code == 402 and response.json()["code"] == "3001"
    assert gateway.money(account.email) == before
    # exactly the balance is fine
    exact = gateway.create_account(balance="0.1")
    assert gateway.send(exact, us("+12065550123", "+12065550124")).status_code == 200
    assert gateway.money(exact.email)["balance"] == 0


def test_money_adds_up_after_many_sends(gateway):
    account = gateway.create_account(balance="50")
    total = Decimal(0)
    msgids = []
    for i in range(25):
        numbers = [f"+1206555{i:02d}{j:02d}" for j in range(1 + i % 4)]
        data = gateway.send(account, us(*numbers, content="x" * (100 + 40 * i))).json()["data"]
        total += Decimal(str(data["debitedAmount"]))
        msgids += [m["msgid"] for m in data["messages"]]
        invariant(gateway, account.email)
    for msgid in msgids:
        gateway.wait_for_status(account, msgid)
    money = invariant(gateway, account.email)
    assert money["frozen"] == 0
    assert Decimal(money["charged"]) / 1_000_000 == total
    limits = gateway.get("/external/accounts/limits", account).json()["data"]
    assert Decimal(str(limits["usage"]["spend"])) == total
    assert limits["usage"]["smsSent"] == len(msgids)
    costs = sum(Decimal(str(gateway.status(account, m)["cost"])) for m in msgids)
    assert costs == total
