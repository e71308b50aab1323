"""An unexpected exception answers 5000 with a generic message; the log keeps no secrets.

A client that hangs up is not an unexpected exception: one line, no traceback."""

from __future__ import annotations

import logging
import socket
import time

import pytest


def boom(*_args, **_kwargs):
    raise RuntimeError("something broke deep inside")


def test_unexpected_errors_are_5000_in_both_shapes_and_logged_without_secrets(gateway, caplog):
    account = gateway.create_account()
    core = gateway.app.state.gateway
    core.accounts.balance = boom
    core.messages.by_msgid = boom
    core.sending.send = boom
    with caplog.at_level(logging.ERROR, logger="gateway.http"):
        balance = gateway.get("/external/accounts/balance", account)
        status = gateway.get("/sms/status", account, msgid="msg_0123456789ab")
        sent = gateway.send(
            account, {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "secret"}
        )
    assert balance.status_code == 500
    assert balance.json() == {
        "code": "5000",
        "message": "internal error; try again later",
        "data": None,
    }
    assert status.status_code == 500
    assert status.json() == {
        "success": False,
        "data": None,
        "code": 500,
        "message": "internal error; try again later",
    }
    assert sent.json()["code"] == "5000" and "broke" not in sent.text
    logged = caplog.text
    assert "something broke deep inside" in logged  # the traceback is kept for the operator
    for secret in (account.api_key, account.encryption_key, "secret"):
        assert secret not in logged
    assert gateway.money(account.email)["balance"] == 100_000_000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/sms/send"),  # dispatched straight to its handler
        ("POST", "/api/shortlinks"),
        ("PUT", "/api/external/accounts/limits"),  # through the router
        ("POST", "/api/accounts/register"),
    ],
)
def test_a_client_hanging_up_mid_body_is_one_line_without_traceback(
    gateway, caplog, method: str, path: str
) -> None:
    """The client's doing, not the gateway's: one INFO/WARNING line, no ERROR, no traceback."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.DEBUG):
        with socket.create_connection(("127.0.0.1", gateway.config.port), timeout=5) as sock:
            sock.sendall(head.encode("ascii") + b'{"apiKey":')  # 10 of the 1000 bytes
        gateway.poll(lambda: [r for r in caplog.records if r.name.startswith("gateway")])
        time.sleep(0.2)  # anything else it would log comes now
    records = [r for r in caplog.records if r.name.startswith(("gateway", "uvicorn", "starlette"))]
    assert not [r for r in records if r.levelno >= logging.ERROR], caplog.text
    assert not [r for r in records if r.exc_info or r.exc_text or r.stack_info], caplog.text
    (line,) = records
    assert line.levelno in (logging.INFO, logging.WARNING)
    message = line.getMessage()
    assert "\n" not in message and path in message
    assert "10 of 1000" in message, message
