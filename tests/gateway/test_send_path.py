"""The send's fast path: group commit, the answer rendered once, dispatch past the router.

Sends that arrive together share one transaction and stay independent: each sees the ones
before it (balance, caps), a refusal among them changes nothing but its own IV record, every
answer comes after the commit, and a failed commit fails every send of the group with
nothing kept.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from sqlalchemy import event

from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.service import Gateway
from kedacore import envelope as env
from kedacore.envelope import seal

TEXT = "Your code is 123456"


@pytest.fixture
def core(tmp_path):
    gateway = Gateway(GatewayConfig(db_path=tmp_path / "g.db", rate_limit=0))
    yield gateway
    gateway.db.close()


def _account(core: Gateway, balance_micros: int):
    created = core.accounts.create("group@example.com", balance_micros)
    return core.accounts.by_api_key(created["apiKey"]), created


def _envelope(created: dict, number: str, **extra):
    payload = {"countryCode": "US", "phoneNumbers": [number], "content": TEXT, **extra}
    sealed = seal(payload, created["encryptionKey"], api_key=created["apiKey"])
    return env.parse(sealed), json.dumps(payload).encode()


def _commits(core: Gateway) -> list[int]:
    seen: list[int] = []
    event.listen(core.db.engine, "commit", lambda _conn: seen.append(1))
    return seen


def _rows(core: Gateway, sql: str) -> int:
    with core.db.read() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


async def _send_all(core: Gateway, account, bodies) -> list:
    """Each send's ``data`` (decoded from the JSON it answers), or its exception."""
    results = await asyncio.gather(
        *(core.sending.send(account, envelope, plaintext) for envelope, plaintext in bodies),
        return_exceptions=True,
    )
    return [r if isinstance(r, BaseException) else json.loads(r) for r in results]


def test_sends_arriving_together_commit_once_and_see_each_other(core):
    price = core.prices.per_segment("US")
    account, created = _account(core, balance_micros=3 * price)
    commits = _commits(core)
    bodies = [_envelope(created, f"+1206555{i:04d}") for i in range(5)]
    results = asyncio.run(_send_all(core, account, bodies))

    assert len(commits) == 1  # five requests, one transaction
    accepted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, ApiError)]
    # Each send saw the balance the ones before it left: three fit, two are refused.
    assert len(accepted) == 3 and [r.code for r in refused] == ["3001", "3001"]
    assert _rows(core, "SELECT count(*) FROM messages") == 3
    assert _rows(core, "SELECT balance_micros FROM accounts") == 0
    assert _rows(core, "SELECT frozen_micros FROM accounts") == 3 * price
    # Refused bodies are spent too: every IV is recorded, the refusals' and the sends'.
    assert _rows(core, "SELECT count(*) FROM used_ivs") == 5


def test_a_replay_inside_the_same_group_is_refused(core):
    account, created = _account(core, balance_micros=10_000_000)
    body = _envelope(created, "+12065550100")
    results = asyncio.run(_send_all(core, account, [body, body]))
    assert isinstance(results[0], dict)
    assert isinstance(results[1], ApiError) and results[1].code == "1003"
    assert _rows(core, "SELECT count(*) FROM tasks") == 1


def test_a_client_ref_repeated_in_the_same_group_sends_once(core):
    account, created = _account(core, balance_micros=10_000_000)
    bodies = [_envelope(created, "+12065550100", clientRef="batch-7") for _ in range(3)]
    results = asyncio.run(_send_all(core, account, bodies))
    assert all(isinstance(r, dict) for r in results)
    assert len({r["taskId"] for r in results}) == 1
    assert _rows(core, "SELECT count(*) FROM messages") == 1


def test_a_bug_in_one_send_leaves_the_others_and_its_iv(core, monkeypatch):
    account, created = _account(core, balance_micros=10_000_000)
    accept = core.sending._accept

    def flaky(conn, acct, request, now, base):
        if "+12065550101" in request.recipients:
            accept(conn, acct, request, now, base)  # writes, then fails half-way
            raise RuntimeError("bug after the writes")
        return accept(conn, acct, request, now, base)

    monkeypatch.setattr(core.sending, "_accept", flaky)
    bodies = [_envelope(created, f"+1206555010{i}") for i in range(3)]
    results = asyncio.run(_send_all(core, account, bodies))
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[0], dict) and isinstance(results[2], dict)
    # The failed send's writes were rolled back; its IV stays recorded.
    assert _rows(core, "SELECT count(*) FROM messages") == 2
    assert _rows(core, "SELECT count(*) FROM used_ivs") == 3
    price = core.prices.per_segment("US")
    assert _rows(core, "SELECT frozen_micros FROM accounts") == 2 * price


def test_a_failed_commit_fails_every_send_and_keeps_nothing(core, monkeypatch):
    account, created = _account(core, balance_micros=10_000_000)

    def refuse_commit(conn):
        raise RuntimeError("disk full")

    event.listen(core.db.engine, "commit", refuse_commit)
    bodies = [_envelope(created, f"+1206555020{i}") for i in range(3)]
    results = asyncio.run(_send_all(core, account, bodies))
    event.remove(core.db.engine, "commit", refuse_commit)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert _rows(core, "SELECT count(*) FROM messages") == 0
    assert _rows(core, "SELECT count(*) FROM used_ivs") == 0
    assert _rows(core, "SELECT balance_micros FROM accounts") == 10_000_000


def test_a_commit_that_fails_once_is_retried_send_by_send(core):
    account, created = _account(core, balance_micros=10_000_000)
    failures = [RuntimeError("disk busy")]

    def fail_once(conn):
        if failures:
            raise failures.pop()

    commits = _commits(core)  # counts attempts: it runs before the failure
    event.listen(core.db.engine, "commit", fail_once)
    bodies = [_envelope(created, f"+1206555040{i}") for i in range(3)]
    results = asyncio.run(_send_all(core, account, bodies))
    assert all(isinstance(r, dict) for r in results)
    assert len(commits) == 4  # the group's failed commit, then one per send
    assert len({r["taskId"] for r in results}) == 3
    assert _rows(core, "SELECT count(*) FROM messages") == 3


def test_a_full_disk_under_one_send_loses_no_other_send(core):
    """SQLite rolls the whole transaction back on SQLITE_FULL: no accepted send may go with it."""
    account, created = _account(core, balance_micros=10**12)

    @event.listens_for(core.db.engine, "connect")
    def nearly_full(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 8}")

    core.db.engine.dispose()
    big = [f"+1425555{i:04d}" for i in range(1000)]
    bodies = [_envelope(created, "+12065550501"), _envelope(created, "+12065550502")]
    bodies.append(
        (
            env.parse(
                seal(
                    {"countryCode": "US", "phoneNumbers": big, "content": "x" * 150},
                    created["encryptionKey"],
                    api_key=created["apiKey"],
                )
            ),
            json.dumps({"countryCode": "US", "phoneNumbers": big, "content": "x" * 150}).encode(),
        )
    )
    bodies += [_envelope(created, "+12065550503"), _envelope(created, "+12065550504")]
    results = asyncio.run(_send_all(core, account, bodies))

    assert not isinstance(results[2], dict)  # the send that cannot be written fails alone
    accepted = [results[i] for i in (0, 1, 3, 4)]
    assert all(isinstance(r, dict) for r in accepted)
    with core.db.read() as conn:
        stored = dict(conn.exec_driver_sql("SELECT task_id, message_count FROM tasks").all())
    # Every send answered as accepted is stored, under its own task id.
    assert stored == {r["taskId"]: 1 for r in accepted}
    assert _rows(core, "SELECT count(*) FROM used_ivs") == 4


def test_groups_are_bounded(core):
    account, created = _account(core, balance_micros=10_000_000)
    core.guard.group.max_group = 4
    commits = _commits(core)
    bodies = [_envelope(created, f"+1206555030{i}") for i in range(10)]
    results = asyncio.run(_send_all(core, account, bodies))
    assert all(isinstance(r, dict) for r in results)
    assert len(commits) == 3  # 4 + 4 + 2


def test_the_rendered_answer_is_the_one_ok_would_write():
    from gateway.web import ok, ok_rendered
    from kedacore.money import dumps

    data = {"taskId": "20260101-0001", "debitedAmount": Decimal("0.00001"), "segments": 1}
    assert ok_rendered(dumps(data)).body == ok(data).body
    assert ok_rendered(dumps(data)).headers["content-type"] == ok(data).headers["content-type"]


def test_hot_routes_are_the_routing_table_s_own_handlers():
    """The dispatch past Starlette's router must never answer differently from the router."""
    from gateway.routes import HOT_ROUTES, ROUTES

    routed = {(m, r.path): r.endpoint for r in ROUTES for m in r.methods or ()}
    assert HOT_ROUTES and all(routed[key] is handler for key, handler in HOT_ROUTES.items())


def test_other_methods_on_a_hot_path_still_answer_4004(gateway):
    response = gateway.http.get(gateway.base_url + "/sms/send")
    assert response.status_code == 404 and response.json()["code"] == "4004"
