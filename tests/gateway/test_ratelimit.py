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


def test_a_limited_send_spends_its_iv_and_changes_nothing_else(gateway_factory):
    """Throttled after decryption: the IV is recorded, so the body can never be replayed."""
    # The carrier waits: the money snapshot below must not move by a charge meanwhile.
    gateway = gateway_factory(rate_limit=2, rate_burst=1, sent_delay=60)
    account = gateway.create_account()
    assert gateway.send(account, US).status_code == 200
    before = gateway.money(account.email)
    body = gateway.seal(account, US)
    limited = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    assert limited.status_code == 429 and limited.json()["code"] == "4029"
    assert limited.headers["Retry-After"].isdigit()
    assert gateway.money(account.email) == before
    assert gateway.query("SELECT count(*) FROM used_ivs") == [(2,)]
    assert gateway.query("SELECT count(*) FROM tasks") == [(1,)]

    def replayed() -> bool:
        code = gateway.http.post(gateway.base_url + "/sms/send", json=body).json()["code"]
        assert code in ("4029", "1003"), code
        return code == "1003"

    gateway.poll(replayed, interval=0.1)  # once a token is back: a replay, never a send
    assert gateway.money(account.email) == before
    # A freshly sealed body (new IV) goes through, as the client's retries do.
    gateway.poll(lambda: gateway.send(account, US).status_code == 200, interval=0.1)
    assert gateway.money(account.email)["balance"] == 100_000_000 - 2 * 50_000


def test_a_limited_short_link_spends_its_iv(gateway_factory):
    gateway = gateway_factory(rate_limit=0.5, rate_burst=1)
    account = gateway.create_account()
    assert gateway.get("/external/accounts/balance", account).status_code == 200
    response = gateway.post_envelope("/shortlinks", account, {"url": "https://example.com/"})
    assert response.json()["code"] == "4029"
    assert gateway.query("SELECT count(*) FROM used_ivs") == [(1,)]
    assert gateway.query("SELECT count(*) FROM shortlinks") == [(0,)]


def test_envelopes_with_unknown_keys_are_1001_never_4029(gateway_factory):
    gateway = gateway_factory(rate_limit=1, rate_burst=1)
    account = gateway.create_account()
    codes = set()
    for _ in range(5):
        body = gateway.seal(account, US, api_key="keda_" + "0" * 32)
        codes.add(gateway.http.post(gateway.base_url + "/sms/send", json=body).json()["code"])
    assert codes == {"1001"}


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
