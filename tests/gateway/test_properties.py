"""Property tests: whatever junk arrives, the gateway answers 1004/1001/1002/1005/2001/3001
(never 500) and no money moves."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import GatewayHandle

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

SEND_FIELDS = {
    "countryCode": st.sampled_from(["US", "CN", "us", "XX", "", "GB"]),
    "phoneNumbers": st.lists(
        st.sampled_from(["+12065550123", "13800138000", "123", "", "+447911123456"])
        | st.text(max_size=16),
        max_size=5,
    ),
    "content": st.text(max_size=400),
    "senderId": st.text(max_size=16),
    "callbackUrl": st.sampled_from(["https://example.com/h", "ftp://x", "http://"])
    | st.text(max_size=20),
    "clientRef": st.text(max_size=70),
    "trackClick": st.booleans(),
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[GatewayHandle]:
    handle = GatewayHandle.start(tmp_path_factory.mktemp("props") / "gateway.db", sent_delay=60)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def broke(gw):
    """An account with no money: any payload that passes validation ends at 3001."""
    return gw.create_account(balance="0")


@pytest.fixture(scope="module")
def funded(gw):
    return gw.create_account(balance="100")


def assert_no_effect(gw: GatewayHandle, account, before: dict) -> None:
    assert gw.money(account.email) == before
    assert gw.query("SELECT count(*) FROM tasks") == [(0,)]


@SETTINGS
@given(body=json_values)
def test_any_json_body_is_refused_cleanly(gw, funded, body):
    before = gw.money(funded.email)
    response = gw.http.post(gw.base_url + "/sms/send", json=body)
    assert response.json()["code"] in {"1004", "1001"}, response.text
    assert response.status_code in {400, 401}
    assert_no_effect(gw, funded, before)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_refused_cleanly(gw, funded, raw):
    response = gw.http.post(gw.base_url + "/sms/send", content=raw)
    assert response.status_code in {400, 401} and response.json()["code"] in {"1004", "1001"}


@SETTINGS
@given(field=st.sampled_from(["apiKey", "timestamp", "iv", "cipherText"]), junk=json_values)
def test_junk_in_any_envelope_field_is_refused(gw, funded, field, junk):
    before = gw.money(funded.email)
    body = gw.seal(funded, {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "x"})
    body[field] = junk
    response = gw.http.post(gw.base_url + "/sms/send", json=body)
    assert response.json()["code"] in {"1004", "1001", "1002", "1005"}, response.text
    assert_no_effect(gw, funded, before)


@SETTINGS
@given(field=st.sampled_from(["iv", "cipherText"]), data=st.binary(min_size=0, max_size=64))
def test_random_base64_in_iv_or_ciphertext_is_refused(gw, funded, field, data):
    body = gw.seal(funded, {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "x"})
    body[field] = base64.b64encode(data).decode()
    response = gw.http.post(gw.base_url + "/sms/send", json=body)
    assert response.json()["code"] in {"1004", "1005"}


@SETTINGS
@given(
    payload=st.fixed_dictionaries(
        {},
        optional={name: strategy | json_values for name, strategy in SEND_FIELDS.items()},
    )
)
def test_any_sealed_payload_is_validated_without_side_effects(gw, broke, payload):
    before = gw.money(broke.email)
    response = gw.send(broke, payload)
    body = response.json()
    assert body["code"] in {"2001", "3001"}, response.text
    if body["code"] == "2001":
        assert response.status_code == 422
        for error in body["data"]["errors"]:
            assert isinstance(error["field"], str) and isinstance(error["message"], str)
    assert_no_effect(gw, broke, before)


@SETTINGS
@given(plaintext=st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_sealed_plaintext_is_refused_without_side_effects(gw, broke, plaintext):
    before = gw.money(broke.email)
    response = gw.send(broke, plaintext)
    assert response.json()["code"] in {"1004", "2001", "3001"}, response.text
    assert_no_effect(gw, broke, before)


@SETTINGS
@given(
    fields=st.dictionaries(
        st.sampled_from(["dailySmsCap", "dailySpendCap", "alertThreshold", "blockOnLimit", "x"]),
        json_values,
        max_size=4,
    )
)
def test_any_limits_update_is_applied_whole_or_refused_whole(gw, fields):
    account = gw.create_account()
    before = gw.get("/external/accounts/limits", account).json()["data"]
    response = gw.http.put(
        gw.base_url + "/external/accounts/limits", json={**fields, "apiKey": account.api_key}
    )
    assert response.status_code in {200, 422}, response.text
    after = gw.get("/external/accounts/limits", account).json()["data"]
    if response.status_code == 422:
        assert response.json()["code"] == "2001" and after == before
    else:
        assert after == response.json()["data"]
