"""Concurrency: many simultaneous sends never overdraw, overshoot a cap or send twice."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import httpx


def us(i: int) -> dict:
    return {"countryCode": "US", "phoneNumbers": [f"+1206555{i:04d}"], "content": "hi"}


async def _send_all(gateway, bodies: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30, limits=limits) as client:
        return await asyncio.gather(*(client.post("/sms/send", json=b) for b in bodies))


def send_concurrently(gateway, account, payloads: list[dict]) -> list[httpx.Response]:
    bodies = [gateway.seal(account, p) for p in payloads]
    return asyncio.run(_send_all(gateway, bodies))


def test_100_concurrent_sends_against_a_balance_for_40_accept_exactly_40(gateway):
    account = gateway.create_account(balance="2")  # 40 × 0.05
    responses = send_concurrently(gateway, account, [us(i) for i in range(100)])
    codes = [r.json()["code"] for r in responses]
    assert codes.count("0") == 40 and codes.count("3001") == 60
    assert all(r.status_code in (200, 402) for r in responses)
    debited = sum(
        Decimal(str(r.json()["data"]["debitedAmount"])) for r in responses if r.status_code == 200
    )
    money = gateway.money(account.email)
    assert money["balance"] == 0
    assert Decimal(money["frozen"] + money["charged"]) / 1_000_000 == debited == Decimal(2)
    assert gateway.query("SELECT count(*) FROM messages") == [(40,)]


def test_the_cap_holds_under_concurrency(gateway):
    account = gateway.create_account()
    gateway.http.put(
        gateway.base_url + "/external/accounts/limits",
        json={"apiKey": account.api_key, "dailySmsCap": 25, "blockOnLimit": True},
    )
    responses = send_concurrently(gateway, account, [us(i) for i in range(60)])
    codes = [r.json()["code"] for r in responses]
    assert codes.count("0") == 25 and codes.count("3002") == 35


def test_concurrent_retries_with_one_client_ref_send_once(gateway):
    account = gateway.create_account()
    payload = {**us(1), "clientRef": "same-ref"}
    responses = send_concurrently(gateway, account, [payload] * 20)
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert gateway.query("SELECT count(*) FROM tasks") == [(1,)]
    assert gateway.money(account.email)["balance"] == 100_000_000 - 50_000


def test_top_ups_from_another_connection_interleave_safely(gateway):
    """A top-up (as the CLI does it, its own connection) during a burst of sends."""
    account = gateway.create_account(balance="1")  # 20 sends
    topped = threading.Event()

    def top_up() -> None:
        for _ in range(10):
            gateway.topup(account.email, "0.1")  # 2 sends each
        topped.set()

    thread = threading.Thread(target=top_up)
    thread.start()
    responses = send_concurrently(gateway, account, [us(i) for i in range(100)])
    thread.join()
    assert topped.is_set()
    accepted = sum(r.status_code == 200 for r in responses)
    assert 20 <= accepted <= 40
    assert {r.json()["code"] for r in responses} <= {"0", "3001"}
    money = gateway.money(account.email)
    assert money["topped_up"] == 2_000_000
    assert money["balance"] + money["frozen"] + money["charged"] == money["topped_up"]
    assert money["frozen"] + money["charged"] == accepted * 50_000
    assert money["balance"] >= 0


def test_the_money_invariant_holds_while_the_carrier_charges(gateway):
    account = gateway.create_account(balance="10")
    responses = send_concurrently(gateway, account, [us(i) for i in range(100)])
    assert all(r.status_code == 200 for r in responses)

    def settled() -> bool:
        money = gateway.money(account.email)
        assert money["balance"] + money["frozen"] + money["charged"] == money["topped_up"]
        return money["frozen"] == 0

    gateway.poll(settled, timeout=10)
    assert gateway.money(account.email)["charged"] == 5_000_000
