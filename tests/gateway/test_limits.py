"""Daily caps, usage and the alert: exactly at the limit, per UTC day, applied at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

LIMITS = "/external/accounts/limits"


def us(count: int, start: int = 0) -> dict:
    numbers = [f"+1206555{start + i:04d}" for i in range(count)]
    return {"countryCode": "US", "phoneNumbers": numbers, "content": "hello"}


def put(gateway, account, **fields):
    return gateway.http.put(gateway.base_url + LIMITS, json={"apiKey": account.api_key, **fields})


def limits(gateway, account) -> dict:
    return gateway.get(LIMITS, account).json()["data"]


def test_defaults_no_caps_threshold_0_8(gateway):
    account = gateway.create_account()
    data = limits(gateway, account)
    today = datetime.now(UTC).date().isoformat()
    assert data == {
        "dailySmsCap": None,
        "dailySpendCap": None,
        "alertThreshold": 0.8,
        "blockOnLimit": False,
        "currency": "USD",
        "usage": {"date": today, "smsSent": 0, "spend": 0, "frozen": 0},
        "alert": {"triggered": False, "at": None},
    }


def test_put_the_seed_body_and_read_it_back(gateway):
    account = gateway.create_account()
    response = put(
        gateway, account, dailySmsCap=5000, dailySpendCap=200, alertThreshold=0.8, blockOnLimit=True
    )
    assert response.status_code == 200 and response.json()["code"] == "0"
    data = response.json()["data"]
    assert (data["dailySmsCap"], data["dailySpendCap"], data["alertThreshold"]) == (5000, 200, 0.8)
    assert data["blockOnLimit"] is True
    assert limits(gateway, account) == data
    assert '"dailySpendCap":200,' in response.text


def test_put_a_subset_keeps_the_rest_and_null_removes_a_cap(gateway):
    account = gateway.create_account()
    put(gateway, account, dailySmsCap=10, dailySpendCap="12.345678")
    data = put(gateway, account, alertThreshold=0.5).json()["data"]
    assert data["dailySmsCap"] == 10 and data["dailySpendCap"] == 12.345678
    assert data["alertThreshold"] == 0.5
    data = put(gateway, account, dailySmsCap=None).json()["data"]
    assert data["dailySmsCap"] is None and data["dailySpendCap"] == 12.345678


@pytest.mark.parametrize(
    "fields",
    [
        {"dailySmsCap": -1},
        {"dailySmsCap": 1.5},
        {"dailySmsCap": "10"},
        {"dailySmsCap": True},
        {"dailySpendCap": -1},
        {"dailySpendCap": "abc"},
        {"dailySpendCap": 0.0000001},
        {"dailySpendCap": False},
        {"dailySpendCap": [1]},
        {"alertThreshold": 0},
        {"alertThreshold": 1.01},
        {"alertThreshold": -0.5},
        {"alertThreshold": None},
        {"alertThreshold": "high"},
        {"blockOnLimit": "yes"},
        {"blockOnLimit": 1},
        {"dailySMSCap": 10},
        {"dailySmsCap": 10, "blockOnLimit": "no"},  # one bad field spoils the whole update
    ],
)
def test_invalid_limits_are_2001_and_change_nothing(gateway, fields):
    account = gateway.create_account()
    before = limits(gateway, account)
    response = put(gateway, account, **fields)
    assert response.status_code == 422 and response.json()["code"] == "2001"
    assert response.json()["data"]["errors"]
    assert limits(gateway, account) == before


def test_limits_authentication(gateway):
    account = gateway.create_account()
    url = gateway.base_url + LIMITS
    assert gateway.http.put(url, json={"dailySmsCap": 1}).json()["code"] == "1001"
    assert gateway.http.put(url, json={"apiKey": "nope", "dailySmsCap": 1}).status_code == 401
    bad = gateway.http.put(url, content=b"{", headers={"X-Api-Key": account.api_key})
    assert bad.status_code == 400 and bad.json()["code"] == "1004"
    assert gateway.get(LIMITS).status_code == 401
    query = gateway.http.get(url, params={"apiKey": account.api_key})
    assert query.json()["data"]["dailySmsCap"] is None


def test_sms_cap_refuses_exactly_above_the_limit_with_block(gateway):
    account = gateway.create_account()
    put(gateway, account, dailySmsCap=3, blockOnLimit=True)
    assert gateway.send(account, us(2)).status_code == 200
    before = gateway.books(account.email)
    refused = gateway.send(account, us(2, start=10))  # 2 + 2 > 3: refused whole
    assert refused.status_code == 429 and refused.json()["code"] == "3002"
    assert gateway.books(account.email) == before
    assert gateway.send(account, us(1, start=20)).status_code == 200  # reaches 3 exactly
    assert gateway.send(account, us(1, start=30)).json()["code"] == "3002"
    data = limits(gateway, account)
    assert data["usage"]["smsSent"] == 3 and data["alert"]["triggered"] is True


def test_spend_cap_refuses_exactly_above_the_limit_with_block(gateway):
    account = gateway.create_account()
    put(gateway, account, dailySpendCap="0.15", blockOnLimit=True)
    assert gateway.send(account, us(3)).status_code == 200  # 0.15 exactly
    refused = gateway.send(account, us(1, start=10))
    assert refused.status_code == 429 and refused.json()["code"] == "3003"
    assert limits(gateway, account)["usage"]["spend"] == 0.15


def test_the_sms_cap_is_checked_before_the_spend_cap_and_both_before_balance(gateway):
    account = gateway.create_account(balance="0")
    put(gateway, account, dailySmsCap=1, dailySpendCap="0.01", blockOnLimit=True)
    assert gateway.send(account, us(2)).json()["code"] == "3002"
    assert gateway.send(account, us(1)).json()["code"] == "3003"
    put(gateway, account, dailySpendCap=None)
    assert gateway.send(account, us(1)).json()["code"] == "3001"


def test_without_block_sends_go_through_and_raise_the_alert(gateway):
    account = gateway.create_account()
    put(gateway, account, dailySmsCap=2, blockOnLimit=False)
    assert gateway.send(account, us(3)).status_code == 200
    data = limits(gateway, account)
    assert data["usage"]["smsSent"] == 3
    assert data["alert"]["triggered"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", data["alert"]["at"])


def test_alert_triggers_on_reaching_the_threshold_exactly(gateway):
    account = gateway.create_account()
    put(gateway, account, dailySmsCap=10, alertThreshold=0.5)
    gateway.send(account, us(4))
    assert limits(gateway, account)["alert"]["triggered"] is False
    gateway.send(account, us(1, start=10))  # 5 = 0.5 × 10
    alert = limits(gateway, account)["alert"]
    assert alert["triggered"] is True
    gateway.send(account, us(1, start=20))
    assert limits(gateway, account)["alert"] == alert  # raised once; its time stays


def test_spend_alert_at_the_threshold(gateway):
    account = gateway.create_account()
    put(gateway, account, dailySpendCap=1)
    gateway.send(account, us(15))  # 0.75
    assert limits(gateway, account)["alert"]["triggered"] is False
    gateway.send(account, us(1, start=100))  # 0.80 = 0.8 × 1
    assert limits(gateway, account)["alert"]["triggered"] is True


def test_lowering_a_cap_below_todays_usage_raises_the_alert_at_once(gateway):
    account = gateway.create_account()
    gateway.send(account, us(5))
    data = put(gateway, account, dailySmsCap=5).json()["data"]
    assert data["alert"]["triggered"] is True


def test_changes_apply_to_the_very_next_request(gateway):
    account = gateway.create_account()
    assert gateway.send(account, us(2)).status_code == 200
    put(gateway, account, dailySmsCap=2, blockOnLimit=True)
    assert gateway.send(account, us(1, start=10)).json()["code"] == "3002"
    put(gateway, account, blockOnLimit=False)
    assert gateway.send(account, us(1, start=10)).status_code == 200


def test_usage_counts_frozen_then_charged_and_limits_are_per_account(gateway_factory):
    gateway = gateway_factory(sent_delay=2.5)
    a, b = gateway.create_account(), gateway.create_account()
    put(gateway, b, dailySmsCap=1, blockOnLimit=True)
    data = gateway.send(a, us(2)).json()["data"]
    usage = limits(gateway, a)["usage"]
    assert (usage["smsSent"], usage["spend"], usage["frozen"]) == (2, 0.1, 0.1)
    for m in data["messages"]:
        gateway.wait_for_status(a, m["msgid"])
    usage = limits(gateway, a)["usage"]
    assert (usage["smsSent"], usage["spend"], usage["frozen"]) == (2, 0.1, 0)
    other = limits(gateway, b)
    assert other["usage"]["smsSent"] == 0 and other["dailySmsCap"] == 1
    assert limits(gateway, a)["dailySmsCap"] is None


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def test_usage_and_alert_reset_with_the_utc_day(gateway_factory):
    clock = FakeClock(datetime(2030, 1, 1, 23, 59, 0, tzinfo=UTC))
    gateway = gateway_factory(clock=clock)
    account = gateway.create_account()
    put(gateway, account, dailySmsCap=2, blockOnLimit=True)

    def send(count: int, start: int) -> str:
        body = gateway.send(account, us(count, start), timestamp=int(clock.now)).json()
        return body["data"]["taskId"] if body["code"] == "0" else body["code"]

    assert send(2, 0).startswith("20300101-")
    assert send(1, 10) == "3002"
    data = limits(gateway, account)
    assert data["usage"]["date"] == "2030-01-01" and data["alert"]["triggered"] is True
    clock.now += timedelta(minutes=2).total_seconds()  # 2030-01-02 00:01 UTC
    data = limits(gateway, account)
    assert data["usage"] == {"date": "2030-01-02", "smsSent": 0, "spend": 0, "frozen": 0}
    assert data["alert"] == {"triggered": False, "at": None}
    assert send(2, 20) == "20300102-0001"  # the task sequence restarts too


@pytest.mark.parametrize(
    "body",
    [
        '{"dailySpendCap": 1e999999999}',
        '{"dailySpendCap": "1e999999999"}',
        '{"alertThreshold": 1E+1000000}',
        '{"dailySpendCap": "1e-999999999"}',
        '{"alertThreshold": 1e-999999999}',
    ],
)
def test_extreme_exponents_are_2001_not_5000_nor_zero(gateway, body):
    account = gateway.create_account()
    response = gateway.http.put(
        gateway.base_url + LIMITS,
        content=body.encode(),
        headers={"X-Api-Key": account.api_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["code"] == "2001", response.text
    assert limits(gateway, account)["dailySpendCap"] is None  # nothing changed


def test_small_money_is_written_in_fixed_notation(gateway):
    """DESIGN: money is a JSON number in its shortest decimal form: 0.00001, never 1e-05."""
    account = gateway.create_account()
    response = put(gateway, account, dailySpendCap="0.00001", alertThreshold="0.00005")
    assert response.status_code == 200, response.text
    assert '"dailySpendCap":0.00001' in response.text
    assert '"alertThreshold":0.00005' in response.text
    assert "e-" not in response.text.lower()
    read = gateway.get(LIMITS, account)
    assert '"dailySpendCap":0.00001' in read.text and "e-0" not in read.text
