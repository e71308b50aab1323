"""The per-API-key rate limit: 4029 with a whole-second Retry-After, nothing changed."""

from __future__ import annotations

from gateway.ratelimit import RateLimiter

US = {"countryCode": "US", "phoneNumbers": ["+12065550123"], "content": "hi"}


def test_burst_then_4029_with_retry_after(gateway_factory):
    gateway = gateway_factory(rate_limit=0.5, rate_burst=3)  # slow refill: no race
    account, other = gateway.create_account(), gateway.create_account()
    answers = [gateway.get("/external/accounts/balance", account) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.json()["code"] == "4029"
    assert limited.headers["Retry-After"].isdigit() and int(limited.headers["Retry-After"]) >= 1
    # Another key has its own bucket.
    assert gateway.get("/external/accounts/balance", other).status_code == 200
    # The status endpoint answers in its own shape.
    status = gateway.get("/sms/status", account, msgid="msg_000000000000")
    assert status.status_code == 429
    assert status.json() == {
        "success": False,
        "data": None,
        "code": 429,
        "message": status.json()["message"],
    }
    assert "Retry-After" in status.headers


def test_a_limited_send_changes_nothing_and_can_be_sent_later(gateway_factory):
    gateway = gateway_factory(rate_limit=2, rate_burst=1)
    account = gateway.create_account()
    assert gateway.send(account, US).status_code == 200
    before = gateway.money(account.email)
    body = gateway.seal(account, US)
    limited = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert limited.status_code == 429 and limited.json()["code"] == "4029"
    assert gateway.money(account.email) == before
    # Refused before decryption: the IV was not spent, so the very same body goes through.
    gateway.poll(
        lambda: gateway.http.post(gateway.base_url + "/sms/send", json=body).status_code == 200,
        interval=0.1,
    )
    assert gateway.money(account.email)["balance"] == 100_000_000 - 2 * 50_000


def test_rate_limit_zero_is_off(gateway):
    account = gateway.create_account()
    codes = {gateway.get("/external/accounts/balance", account).status_code for _ in range(50)}
    assert codes == {200}


def test_unknown_keys_are_1001_not_throttled(gateway_factory):
    gateway = gateway_factory(rate_limit=1, rate_burst=1)
    codes = {gateway.get("/external/accounts/balance").json()["code"] for _ in range(5)}
    assert codes == {"1001"}


def test_token_bucket_refills_at_the_rate():
    now = [100.0]
    limiter = RateLimiter(rate=2, burst=4, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(4)] == [0.0] * 4
    wait = limiter.acquire("k")
    assert wait == 0.5 and limiter.retry_after(wait) == "1"
    now[0] += 0.5
    assert limiter.acquire("k") == 0.0
    now[0] += 10
    limiter.prune()
    assert limiter.acquire("k") == 0.0  # a pruned bucket starts full again
    assert RateLimiter(rate=0, burst=1).acquire("k") == 0.0
    assert RateLimiter.retry_after(2.01) == "3"
