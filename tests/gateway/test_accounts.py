"""Accounts over HTTP (register → mail outbox → verify), balance, and isolation between them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kedacore.envelope import seal


def outbox(gateway) -> list[Path]:
    folder = gateway.db_path.parent / "mail"
    return sorted(folder.glob("*.txt")) if folder.exists() else []


def token_from(mail: Path) -> str:
    match = re.search(r"^Verification token: (\S+)$", mail.read_text(), re.MULTILINE)
    assert match, mail.read_text()
    return match.group(1)


def register(gateway, email: str, password: str = "correct horse"):
    return gateway.http.post(
        gateway.base_url + "/accounts/register", json={"email": email, "password": password}
    )


def verify(gateway, token):
    return gateway.http.post(gateway.base_url + "/accounts/verify", json={"token": token})


def test_register_writes_a_mail_and_verify_returns_working_keys(gateway):
    response = register(gateway, "New.User@Example.com", "s3cret-password")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["email"] == "new.user@example.com"
    [mail] = outbox(gateway)
    text = mail.read_text()
    assert "To: new.user@example.com" in text and "Subject: " in text
    assert "s3cret-password" not in text
    verified = verify(gateway, token_from(mail))
    assert verified.status_code == 200
    data = verified.json()["data"]
    assert data["email"] == "new.user@example.com"
    assert data["apiKey"] and len(data["encryptionKey"]) == 44
    headers = {"X-Api-Key": data["apiKey"]}
    balance = gateway.http.get(gateway.base_url + "/external/accounts/balance", headers=headers)
    assert balance.json()["data"] == {"balance": 0, "frozen": 0, "currency": "USD"}
    body = seal(
        {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "hi"},
        data["encryptionKey"],
        api_key=data["apiKey"],
    )
    sent = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert sent.json()["code"] == "3001"  # a new account has keys, but no money yet
    gateway.topup("new.user@example.com", "1")
    assert (
        gateway.http.post(
            gateway.base_url + "/sms/send",
            json=seal(
                {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "hi"},
                data["encryptionKey"],
                api_key=data["apiKey"],
            ),
        ).json()["code"]
        == "0"
    )


def test_a_verification_token_works_once(gateway):
    register(gateway, "once@example.com")
    token = token_from(outbox(gateway)[0])
    assert verify(gateway, token).status_code == 200
    again = verify(gateway, token)
    assert again.status_code == 404 and again.json()["code"] == "4004"


def test_registering_again_before_verifying_replaces_the_token(gateway):
    register(gateway, "twice@example.com")
    register(gateway, "twice@example.com")
    first, second = outbox(gateway)
    assert verify(gateway, token_from(first)).status_code == 404
    assert verify(gateway, token_from(second)).status_code == 200
    assert register(gateway, "twice@example.com").json()["code"] == "2001"  # verified now


def test_an_unverified_account_has_no_key_and_cli_accounts_are_verified(gateway):
    register(gateway, "pending@example.com")
    account = gateway.create_account("cli@example.com")
    assert gateway.balance(account)["balance"] == 100
    assert register(gateway, "cli@example.com").json()["code"] == "2001"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "2001"),
        ({"email": "a@example.com", "password": "short"}, "2001"),
        ({"email": "a@example.com"}, "2001"),
        ([], "2001"),
    ],
)
def test_register_validation(gateway, body, code):
    response = gateway.http.post(gateway.base_url + "/accounts/register", json=body)
    assert response.json()["code"] == code and response.status_code == 422
    assert outbox(gateway) == []


@pytest.mark.parametrize("token", [None, "", "x" * 20, 12345])
def test_verify_rejects_unknown_tokens(gateway, token):
    response = verify(gateway, token)
    assert response.status_code in (404, 422)
    assert response.json()["code"] in ("4004", "2001")


def test_register_refuses_non_json(gateway):
    response = gateway.http.post(gateway.base_url + "/accounts/register", content=b"{{")
    assert response.status_code == 400 and response.json()["code"] == "1004"


def test_balance_needs_a_known_key(gateway):
    account = gateway.create_account(balance="12.5")
    url = gateway.base_url + "/external/accounts/balance"
    assert gateway.http.get(url).json()["code"] == "1001"
    assert gateway.http.get(url, headers={"X-Api-Key": "wrong"}).status_code == 401
    query = gateway.http.get(url, params={"apiKey": account.api_key}).json()
    assert query["data"] == {"balance": 12.5, "frozen": 0, "currency": "USD"}
    assert '"balance":12.5,' in gateway.http.get(url, params={"apiKey": account.api_key}).text


def test_one_account_never_sees_anothers_messages_links_balance_or_limits(gateway):
    alice = gateway.create_account(balance="100")
    bob = gateway.create_account(balance="7")
    sent = gateway.send(
        alice, {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "private"}
    ).json()["data"]
    msgid, task_id = sent["messages"][0]["msgid"], sent["taskId"]

    mine = gateway.get("/sms/status", alice, msgid=msgid)
    theirs = gateway.get("/sms/status", bob, msgid=msgid)
    missing = gateway.get("/sms/status", bob, msgid="msg_ffffffffffffffff")
    assert mine.status_code == 200
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json().keys() == missing.json().keys()
    assert theirs.json()["success"] is False and theirs.json()["data"] is None
    assert gateway.get("/sms/status", bob, taskId=task_id).status_code == 404

    link = gateway.post_envelope("/shortlinks", alice, {"url": "https://example.com/a"}).json()
    code = link["data"]["code"]
    assert gateway.get(f"/shortlinks/{code}", bob).status_code == 404
    assert gateway.get("/shortlinks", bob).json()["data"] == []
    assert [x["code"] for x in gateway.get("/shortlinks", alice).json()["data"]] == [code]

    assert gateway.balance(bob) == {"balance": 7, "frozen": 0, "currency": "USD"}
    gateway.http.put(
        gateway.base_url + "/external/accounts/limits",
        json={"apiKey": alice.api_key, "dailySmsCap": 1, "blockOnLimit": True},
    )
    bob_limits = gateway.get("/external/accounts/limits", bob).json()["data"]
    assert bob_limits["dailySmsCap"] is None and bob_limits["blockOnLimit"] is False
    assert bob_limits["usage"]["smsSent"] == 0


def test_healthz_is_at_the_root(gateway):
    response = gateway.http.get(gateway.root_url + "/healthz")
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_unknown_paths_answer_4004_in_the_api_shape(gateway):
    response = gateway.http.get(gateway.base_url + "/nothing/here")
    assert response.status_code == 404
    assert response.json() == {
        "code": "4004",
        "message": "no such endpoint: GET /api/nothing/here",
        "data": None,
    }


def test_secret_holding_records_keep_their_secrets_out_of_repr() -> None:
    """A repr lands in logs and tracebacks: keys and callback URLs must not be in it."""
    from gateway.accounts import AccountKey
    from gateway.outbox import Claimed
    from gateway.validation import SendRequest

    secret = "S3CRET-abcdef0123456789"
    records = [
        AccountKey(1, secret, "USD"),
        Claimed(1, "evt_1", f"https://example.com/hooks/keda/{secret}", b"{}", secret.encode(),
                1, 0),
        SendRequest("US", ("+12065550123",), "hi", 1, "KedaSMS",
                    f"https://example.com/hooks/keda/{secret}", None, False),
    ]  # fmt: skip
    for record in records:
        assert secret not in repr(record), repr(record)
