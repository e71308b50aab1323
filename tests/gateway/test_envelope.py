"""The envelope as the gateway checks it: shape, key, window, decryption, replay — in order.

Every refusal is checked for its code and HTTP status, and for changing nothing: no money
moved, no task, and no IV recorded unless the body was decrypted.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time

import pytest

from kedacore import envelope as env
from kedacore.envelope import generate_key, seal

US = {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "Code 123456"}


def used_ivs(gateway) -> int:
    return gateway.query("SELECT count(*) FROM used_ivs")[0][0]


def tasks(gateway) -> int:
    return gateway.query("SELECT count(*) FROM tasks")[0][0]


def assert_refused(response, code: str, http: int) -> None:
    assert response.status_code == http, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]


def test_a_valid_envelope_is_accepted(gateway):
    account = gateway.create_account()
    response = gateway.send(account, US)
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "0" and body["message"] == "Success"
    assert used_ivs(gateway) == 1


def _valid_body(gateway, account) -> dict:
    return gateway.seal(account, US)


MALFORMED = {
    "not JSON": b"{not json",
    "not an object": b"[1, 2, 3]",
    "empty": b"",
    "missing cipherText": None,
    "iv not base64": None,
    "iv of 8 bytes": None,
    "timestamp as string": None,
    "timestamp as float": None,
    "cipherText shorter than a tag": None,
    "apiKey empty": None,
    "apiKey missing": None,
}


def _malformed(name: str, body: dict) -> dict | bytes:
    body = dict(body)
    if name == "missing cipherText":
        del body["cipherText"]
    elif name == "iv not base64":
        body["iv"] = "***"
    elif name == "iv of 8 bytes":
        body["iv"] = base64.b64encode(os.urandom(8)).decode()
    elif name == "timestamp as string":
        body["timestamp"] = str(body["timestamp"])
    elif name == "timestamp as float":
        body["timestamp"] = body["timestamp"] + 0.5
    elif name == "cipherText shorter than a tag":
        body["cipherText"] = base64.b64encode(b"short").decode()
    elif name == "apiKey empty":
        body["apiKey"] = ""
    elif name == "apiKey missing":
        del body["apiKey"]
    return body


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_envelopes_are_1004_and_change_nothing(gateway, name):
    account = gateway.create_account()
    before = gateway.money(account.email)
    raw = MALFORMED[name]
    if raw is not None:
        response = gateway.http.post(
            gateway.base_url + "/sms/send",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
    else:
        response = gateway.http.post(
            gateway.base_url + "/sms/send", json=_malformed(name, _valid_body(gateway, account))
        )
    assert_refused(response, "1004", 400)
    assert gateway.money(account.email) == before
    assert used_ivs(gateway) == 0 and tasks(gateway) == 0


def test_a_body_over_the_size_limit_is_1004(gateway_factory):
    gateway = gateway_factory(max_body_bytes=1024)
    account = gateway.create_account()
    payload = {**US, "content": "x" * 2000}
    assert_refused(gateway.send(account, payload), "1004", 400)


def test_unknown_api_key_is_1001(gateway):
    account = gateway.create_account()
    before = gateway.money(account.email)
    body = gateway.seal(account, US, api_key="keda_" + "0" * 32)
    response = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert_refused(response, "1001", 401)
    assert gateway.money(account.email) == before and used_ivs(gateway) == 0


@pytest.mark.parametrize("skew", [-301, 301, -3600, 10**6])
def test_timestamps_outside_the_window_are_1002(gateway, skew):
    account = gateway.create_account()
    before = gateway.money(account.email)
    response = gateway.send(account, US, timestamp=int(time.time()) + skew)
    assert_refused(response, "1002", 401)
    assert gateway.money(account.email) == before and used_ivs(gateway) == 0


@pytest.mark.parametrize("skew", [-290, 290])
def test_timestamps_inside_the_window_are_accepted(gateway, skew):
    account = gateway.create_account()
    assert gateway.send(account, US, timestamp=int(time.time()) + skew).status_code == 200


def test_wrong_encryption_key_is_1005(gateway):
    account = gateway.create_account()
    before = gateway.money(account.email)
    body = seal(US, generate_key(), api_key=account.api_key)  # A's apiKey, another key
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=body), "1005", 400)
    assert gateway.money(account.email) == before and used_ivs(gateway) == 0


def test_tampered_ciphertext_is_1005(gateway):
    account = gateway.create_account()
    body = gateway.seal(account, US)
    raw = bytearray(base64.b64decode(body["cipherText"]))
    raw[3] ^= 0x01
    tampered = {**body, "cipherText": base64.b64encode(bytes(raw)).decode()}
    before = gateway.money(account.email)
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=tampered), "1005", 400)
    assert gateway.money(account.email) == before and used_ivs(gateway) == 0
    # Nothing was recorded, so the untampered body (same IV) still goes through.
    assert gateway.http.post(gateway.base_url + "/sms/send", json=body).status_code == 200


def test_an_altered_timestamp_breaks_the_aad_1005(gateway):
    account = gateway.create_account()
    body = gateway.seal(account, US)
    altered = {**body, "timestamp": body["timestamp"] - 1}  # inside the window, wrong AAD
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=altered), "1005", 400)


def test_a_replayed_body_is_1003_and_charged_once(gateway):
    account = gateway.create_account()
    body = gateway.seal(account, US)
    first = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert first.status_code == 200
    after_first = gateway.books(account.email)
    second = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert_refused(second, "1003", 409)
    assert gateway.books(account.email) == after_first
    assert tasks(gateway) == 1


def test_the_iv_is_recorded_even_when_the_send_is_refused(gateway):
    """A body refused for its balance can never be replayed, not even after a top-up."""
    account = gateway.create_account(balance="0.01")
    body = gateway.seal(account, US)
    refused = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert_refused(refused, "3001", 402)
    assert used_ivs(gateway) == 1
    gateway.topup(account.email, "10")
    before = gateway.money(account.email)
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=body), "1003", 409)
    assert gateway.money(account.email) == before and tasks(gateway) == 0


def test_the_iv_is_recorded_for_an_invalid_payload_and_for_non_json_plaintext(gateway):
    account = gateway.create_account()
    invalid = gateway.seal(account, {**US, "countryCode": "XX"})
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=invalid), "2001", 422)
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=invalid), "1003", 409)
    not_json = gateway.seal(account, b"\xff\xfe not json")
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=not_json), "1004", 400)
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=not_json), "1003", 409)
    assert used_ivs(gateway) == 2 and tasks(gateway) == 0


def test_replay_protection_is_per_api_key(gateway):
    a, b = gateway.create_account(), gateway.create_account()
    iv = os.urandom(12)
    assert gateway.send(a, US, iv=iv).status_code == 200
    assert gateway.send(b, US, iv=iv).status_code == 200


def test_checks_run_in_the_order_of_design(gateway):
    account = gateway.create_account()
    stale = int(time.time()) - 1000
    # unknown key beats a stale timestamp
    body = gateway.seal(account, US, api_key="keda_unknown", timestamp=stale)
    assert gateway.http.post(gateway.base_url + "/sms/send", json=body).json()["code"] == "1001"
    # a stale timestamp beats a wrong encryption key
    body = seal(US, generate_key(), api_key=account.api_key, timestamp=stale)
    assert gateway.http.post(gateway.base_url + "/sms/send", json=body).json()["code"] == "1002"
    # a replay beats an invalid payload
    invalid = gateway.seal(account, {"countryCode": "XX"})
    gateway.http.post(gateway.base_url + "/sms/send", json=invalid)
    again = gateway.http.post(gateway.base_url + "/sms/send", json=invalid)
    assert again.json()["code"] == "1003"


def test_envelope_endpoints_refuse_get_with_4004(gateway):
    response = gateway.http.get(gateway.base_url + "/sms/send")
    assert_refused(response, "4004", 404)


# A lone surrogate, as JSON escapes it: valid JSON syntax, but no UTF-8 can carry it.
LONE = "\\ud800"


def _raw_payload(**fields: str) -> str:
    """The payload's JSON text with ``fields`` spliced in verbatim (escapes kept as written)."""
    base = '{"countryCode":"US","phoneNumbers":["+12065550123"],"content":"hi"'
    return base + "".join(f',"{k}":{v}' for k, v in fields.items()) + "}"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"countryCode":"US","phoneNumbers":["+12065550123"],"content":"hi ' + LONE + '"}',
         "content"),
        (_raw_payload(clientRef=f'"{LONE}x"'), "clientRef"),
        (_raw_payload(callbackUrl=f'"https://example.com/{LONE}"'), "callbackUrl"),
        (_raw_payload(senderId=f'"A{LONE}"'), "senderId"),
        ('{"countryCode":"US","phoneNumbers":["+1206555' + LONE + '"],"content":"hi"}',
         "phoneNumbers[0]"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_in_the_payload_is_2001_and_the_iv_is_spent(gateway, payload, field):
    account = gateway.create_account()
    before = gateway.money(account.email)
    body = gateway.seal(account, payload)
    response = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert_refused(response, "2001", 422)
    assert response.json()["data"]["errors"][0]["field"] == field
    assert used_ivs(gateway) == 1 and tasks(gateway) == 0
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=body), "1003", 409)
    assert gateway.money(account.email) == before


def test_a_lone_surrogate_in_a_short_link_payload_is_2001(gateway):
    account = gateway.create_account()
    body = gateway.seal(account, '{"url":"https://example.com/' + LONE + '"}')
    response = gateway.http.post(gateway.base_url + "/shortlinks", json=body)
    assert_refused(response, "2001", 422)
    assert_refused(gateway.http.post(gateway.base_url + "/shortlinks", json=body), "1003", 409)


def _post_raw(gateway, method: str, path: str, text: str, **headers: str):
    return gateway.http.request(
        method,
        gateway.base_url + path,
        content=text.encode("ascii"),
        headers={"Content-Type": "application/json", **headers},
    )


def test_a_lone_surrogate_in_a_plain_body_or_the_envelope_is_1004(gateway):
    account = gateway.create_account()
    sealed = gateway.seal(account, US)
    envelope = json.dumps({**sealed, "apiKey": "KEY"}).replace('"KEY"', f'"{LONE}"')
    assert_refused(_post_raw(gateway, "POST", "/sms/send", envelope), "1004", 400)
    envelope = json.dumps({**sealed, "extra": "X"}).replace('"X"', f'"{LONE}"')
    assert_refused(_post_raw(gateway, "POST", "/sms/send", envelope), "1004", 400)
    for method, path, text in [
        ("POST", "/accounts/verify", '{"token":"abcdefghij' + LONE + '"}'),
        (
            "POST",
            "/accounts/register",
            '{"email":"a' + LONE + '@example.com","password":"pw123456"}',
        ),
        ("PUT", "/external/accounts/limits", '{"apiKey":"keda_' + LONE + '"}'),
        ("PUT", "/external/accounts/limits", '{"dailySmsCap":1,"' + LONE + '":1}'),
    ]:
        response = _post_raw(gateway, method, path, text, **{"X-Api-Key": account.api_key})
        assert_refused(response, "1004", 400)
    assert used_ivs(gateway) == 0


def test_an_api_key_utf8_cannot_encode_is_unknown(gateway):
    core = gateway.app.state.gateway
    assert core.accounts.by_api_key("keda_\udc80") is None


def test_an_unexpected_error_after_decryption_still_spends_the_iv(gateway, caplog):
    """Not only refusals: any exception rolls back to the savepoint and keeps the IV."""
    account = gateway.create_account()
    core = gateway.app.state.gateway

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    core.sending._accept = broken
    body = gateway.seal(account, US)
    with caplog.at_level(logging.CRITICAL, logger="gateway.http"):
        assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=body), "5000", 500)
    assert used_ivs(gateway) == 1 and tasks(gateway) == 0
    assert_refused(gateway.http.post(gateway.base_url + "/sms/send", json=body), "1003", 409)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _core(tmp_path, clock):
    from gateway.config import GatewayConfig
    from gateway.service import Gateway

    core = Gateway(GatewayConfig(db_path=tmp_path / "g.db", clock=clock, rate_limit=0))
    created = core.accounts.create("race@example.com", 10_000_000)
    return core, core.accounts.by_api_key(created["apiKey"]), created


def test_an_iv_pruned_while_a_request_waited_for_the_lock_is_not_accepted_again(tmp_path):
    """The window is checked again under the write lock, so pruning cannot reopen a body."""
    from gateway.errors import ApiError
    from gateway.replay import prune_ivs

    t0 = 1_760_000_000
    clock = _Clock(t0)
    core, account, created = _core(tmp_path, clock)
    envelope = env.parse(
        seal(US, created["encryptionKey"], api_key=created["apiKey"], timestamp=t0)
    )
    with core.guard.transaction(account.id, envelope):
        pass  # first use: the IV is recorded
    # The replay passed the pre-lock window check at t0 + 300, then waited for the lock;
    # meanwhile the clock moved on and a prune forgot the IV.
    clock.now = t0 + 1000
    assert prune_ivs(core.db, clock(), core.config.window) == 1
    with pytest.raises(ApiError) as refused, core.guard.transaction(account.id, envelope):
        pytest.fail("a pruned IV was accepted a second time")
    assert refused.value.code == "1002"
    core.db.close()


def test_ivs_are_kept_past_the_window_by_the_busy_timeout_and_a_margin(tmp_path):
    from gateway.db import BUSY_TIMEOUT_MS
    from gateway.replay import prune_ivs

    t0 = 1_760_000_000
    clock = _Clock(t0)
    core, account, created = _core(tmp_path, clock)
    envelope = env.parse(
        seal(US, created["encryptionKey"], api_key=created["apiKey"], timestamp=t0)
    )
    with core.guard.transaction(account.id, envelope):
        pass
    window = core.config.window
    # Still kept when a request that passed the window at its edge may still wait for the lock.
    assert prune_ivs(core.db, t0 + window + BUSY_TIMEOUT_MS / 1000 + 5, window) == 0
    assert prune_ivs(core.db, t0 + window + BUSY_TIMEOUT_MS / 1000 + 61, window) == 1
    core.db.close()
