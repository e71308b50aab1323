"""An unexpected exception answers 5000 with a generic message; the log keeps no secrets."""

from __future__ import annotations

import logging


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
