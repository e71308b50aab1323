"""Our extension beside the seed's status call: ``POST /api/sms/status/batch``.

Up to 1,000 msgids in one request: the messages found, in the seed's shape and in the order
asked, and the ids this account has no message for; one rate-limit token per request.
"""

from __future__ import annotations

from tests.support import phone_numbers

BATCH = "/sms/status/batch"
MAX_BATCH_IDS = 1000  # documented in docs/protocol.md


def post(gateway, account, body, **kwargs):
    headers = {"X-Api-Key": account.api_key} if account else {}
    return gateway.http.post(gateway.base_url + BATCH, json=body, headers=headers, **kwargs)


def sent(gateway, account, count: int) -> list[str]:
    payload = {"countryCode": "US", "phoneNumbers": phone_numbers("US", count), "content": "Hi"}
    data = gateway.send(account, payload).json()["data"]
    return [m["msgid"] for m in data["messages"]]


def test_found_messages_in_the_seed_shape_and_the_ids_not_found(gateway):
    account = gateway.create_account()
    msgids = sent(gateway, account, 3)
    gateway.wait_for_status(account, msgids[-1])
    unknown = ["msg_0123456789ab", "msg_doesnotexist"]
    asked = [unknown[0], msgids[2], msgids[0], unknown[1], msgids[0], msgids[1]]
    response = post(gateway, account, {"msgids": asked})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["code"] == 200
    data = body["data"]
    # In the order asked, each once; every one exactly as GET /sms/status?msgid= answers it.
    assert [m["msgid"] for m in data["messages"]] == [msgids[2], msgids[0], msgids[1]]
    for message in data["messages"]:
        assert message == gateway.status(account, message["msgid"])
    assert data["notFound"] == unknown


def test_another_accounts_messages_are_not_found(gateway):
    owner, other = gateway.create_account(), gateway.create_account()
    msgids = sent(gateway, owner, 2)
    data = post(gateway, other, {"msgids": msgids}).json()["data"]
    assert data == {"messages": [], "notFound": msgids}


def test_one_rate_limit_token_per_request_whatever_the_number_of_ids(gateway_factory):
    gateway = gateway_factory(rate_limit=0.5, rate_burst=2)  # slow refill: no race
    account = gateway.create_account()
    ids = [f"msg_{i:012x}" for i in range(MAX_BATCH_IDS)]
    first = post(gateway, account, {"msgids": ids})
    assert first.status_code == 200 and len(first.json()["data"]["notFound"]) == MAX_BATCH_IDS
    assert post(gateway, account, {"msgids": ids[:10]}).status_code == 200
    limited = post(gateway, account, {"msgids": ids[:1]})
    assert limited.status_code == 429 and limited.headers["Retry-After"].isdigit()
    assert limited.json() == {
        "success": False,
        "data": None,
        "code": 429,
        "message": limited.json()["message"],
    }


def test_refusals_answer_in_the_status_shape(gateway):
    account = gateway.create_account()
    too_many = [f"msg_{i:012x}" for i in range(MAX_BATCH_IDS + 1)]
    cases = [
        ({"msgids": too_many}, 422, f"at most {MAX_BATCH_IDS}"),
        ({"msgids": []}, 422, "at least one"),
        ({"msgid": "msg_0123456789ab"}, 422, "msgids"),
        ({"msgids": "msg_0123456789ab"}, 422, "list"),
        ({"msgids": ["msg_0123456789ab", 7]}, 422, "msgids[1]"),
        ({"msgids": ["x" * 101]}, 422, "msgids[0]"),
        (["msg_0123456789ab"], 422, "object"),
    ]
    for body, status, words in cases:
        response = post(gateway, account, body)
        assert response.status_code == status, (body, response.text)
        answer = response.json()
        assert answer["success"] is False and answer["code"] == status
        assert words in answer["message"], (words, answer["message"])
    garbled = gateway.http.post(
        gateway.base_url + BATCH,
        content=b"{not json",
        headers={"X-Api-Key": account.api_key, "Content-Type": "application/json"},
    )
    assert garbled.status_code == 400 and garbled.json()["success"] is False
    assert post(gateway, None, {"msgids": ["msg_0123456789ab"]}).status_code == 401
    wrong = gateway.http.post(
        gateway.base_url + BATCH, json={"msgids": ["msg_0123456789ab"]}, params={"apiKey": "nope"}
    )
    assert wrong.status_code == 401


def test_the_api_key_may_come_as_a_query_parameter(gateway):
    account = gateway.create_account()
    msgids = sent(gateway, account, 1)
    response = gateway.http.post(
        gateway.base_url + BATCH, json={"msgids": msgids}, params={"apiKey": account.api_key}
    )
    assert [m["msgid"] for m in response.json()["data"]["messages"]] == msgids


def test_the_seed_status_call_is_unchanged(gateway):
    account = gateway.create_account()
    msgid = sent(gateway, account, 1)[0]
    answer = gateway.get("/sms/status", account, msgid=msgid).json()
    assert answer["success"] is True and answer["data"]["msgid"] == msgid
    assert gateway.get("/sms/status", account, msgids=msgid).status_code == 422
