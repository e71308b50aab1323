"""``trackClick``: per-recipient short links, priced on the text as sent."""

from __future__ import annotations

import re
import time

import pytest

from gateway.tracking import find_urls
from kedacore.segments import count_segments
from tests.support import GatewayHandle, phone_numbers

SHORT = re.compile(r"http://127\.0\.0\.1:\d+/s/([A-Za-z0-9]{7})")


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("Go to https://shop.example/sale now", ["https://shop.example/sale"]),
        ("See http://a.io/x. Or HTTPS://b.io/y, ok?", ["http://a.io/x", "HTTPS://b.io/y"]),
        (
            "(https://example.com/a_(b)) and 'https://q.example/?a=1&b=2'",
            ["https://example.com/a_(b)", "https://q.example/?a=1&b=2"],
        ),
        ("no links, not even ftp://files.example or www.example.com", []),
        ("http:// alone, and http://exa mple", ["http://exa"]),
    ],
)
def test_urls_found_without_the_punctuation_around_them(text: str, urls: list[str]) -> None:
    assert [text[a:b] for a, b in find_urls(text)] == urls


def send(gw: GatewayHandle, account, content: str, count: int = 2, **extra) -> dict:
    payload = {
        "countryCode": "US",
        "phoneNumbers": phone_numbers("US", count),
        "content": content,
        "trackClick": True,
        **extra,
    }
    return gw.send(account, payload).json()


def test_each_recipient_gets_short_links_of_its_own(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    content = "Sale at https://shop.example/sale?id=7! Stores: https://shop.example/stores."
    data = send(gateway, account, content, count=3)["data"]
    seen: set[str] = set()
    for m in data["messages"]:
        text = gateway.status(account, m["msgid"])["message"]  # the text as sent
        codes = SHORT.findall(text)
        assert len(codes) == 2 and not seen & set(codes)
        seen |= set(codes)
        assert SHORT.sub("<link>", text) == "Sale at <link>! Stores: <link>."
        links = gateway.query(
            "SELECT url, msgid, recipient FROM shortlinks WHERE code IN (?, ?) ORDER BY url",
            *codes,
        )
        assert links == [
            ("https://shop.example/sale?id=7", m["msgid"], m["recipient"]),
            ("https://shop.example/stores", m["msgid"], m["recipient"]),
        ]
        target = gateway.http.get(SHORT.search(text).group())
        assert (target.status_code, target.headers["location"]) == (
            302,
            "https://shop.example/sale?id=7",
        )
    assert len(seen) == 6


def test_segments_and_price_are_counted_on_the_rewritten_text(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    # A short URL grows: 143 characters (1 segment) become 2 segments once rewritten.
    grows = "A" * 130 + " http://a.io"
    assert count_segments(grows).segments == 1
    data = send(gateway, account, grows, count=3)["data"]
    assert (data["segments"], data["debitedAmount"]) == (6, 0.3)
    status = gateway.status(account, data["messages"][0]["msgid"])
    assert status["segments"] == 2 == count_segments(status["message"]).segments
    # A long URL shrinks: 2 segments become 1.
    shrinks = "B" * 100 + " https://example.com/" + "p" * 100
    data = send(gateway, account, shrinks, count=2)["data"]
    assert (data["segments"], data["debitedAmount"]) == (2, 0.1)
    money = gateway.money(account.email)
    assert money["frozen"] + money["charged"] == 400_000


def test_a_text_too_long_once_rewritten_is_refused(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    content = "a" * 1518 + " http://a.io"  # exactly 10 segments before rewriting
    assert count_segments(content).segments == 10
    answer = send(gateway, account, content)
    assert answer["code"] == "2001"
    assert "tracked links" in answer["data"]["errors"][0]["message"]
    assert gateway.money(account.email)["balance"] == 100_000_000
    assert gateway.query("SELECT count(*) FROM shortlinks") == [(0,)]


def test_without_track_click_or_urls_the_text_is_untouched(gateway: GatewayHandle) -> None:
    account = gateway.create_account()
    content = "Visit https://shop.example/sale"
    plain = send(gateway, account, content, trackClick=False)["data"]
    assert gateway.status(account, plain["messages"][0]["msgid"])["message"] == content
    no_url = send(gateway, account, "Hello there")["data"]
    assert gateway.status(account, no_url["messages"][0]["msgid"])["message"] == "Hello there"
    assert gateway.query("SELECT count(*) FROM shortlinks") == [(0,)]


def test_short_links_use_the_public_url(gateway_factory) -> None:
    gw = gateway_factory(public_url="https://sms.example.com")
    account = gw.create_account()
    data = send(gw, account, "Go https://shop.example/")["data"]
    text = gw.status(account, data["messages"][0]["msgid"])["message"]
    assert re.fullmatch(r"Go https://sms\.example\.com/s/[A-Za-z0-9]{7}", text)


# A text of 127 URLs fits 10 segments (1,523 characters); rewritten, each URL becomes a
# 32-character short link: 28 segments. Sent to 1,000 recipients it used to make 127,000
# codes and rewrite every text (~1.3 s on the event loop) before it was refused, for free.
MANY_URLS = " ".join(["http://a.io"] * 127)


def test_a_tracked_send_with_too_many_urls_is_refused_fast_and_changes_nothing(
    gateway: GatewayHandle,
) -> None:
    assert count_segments(MANY_URLS).segments == 10
    account = gateway.create_account()
    before = gateway.books(account.email)
    body = gateway.seal(
        account,
        {
            "countryCode": "US",
            "phoneNumbers": phone_numbers("US", 1000),
            "content": MANY_URLS,
            "trackClick": True,
        },
    )
    cpu = time.process_time()  # the gateway serves from a thread of this process
    answer = gateway.http.post(gateway.base_url + "/sms/send", json=body)
    cpu = time.process_time() - cpu
    assert answer.status_code == 422 and answer.json()["code"] == "2001"
    message = answer.json()["data"]["errors"][0]["message"]
    assert "at most 10 links" in message and "127" in message, message
    assert gateway.query("SELECT count(*) FROM shortlinks") == [(0,)]
    assert gateway.query("SELECT count(*) FROM tasks") == [(0,)]
    assert gateway.books(account.email) == before
    assert cpu < 0.25, f"refusing took {cpu:.3f} s of CPU"  # ~2 ms; it was > 1.3 s


def test_the_url_limit_of_a_tracked_message_is_a_setting(gateway_factory) -> None:
    gw = gateway_factory(max_tracked_urls=3)
    account = gw.create_account()
    three = "a http://a.io/1 b http://a.io/2 c http://a.io/3"
    data = send(gw, account, three, count=2)["data"]
    assert data["segments"] == 2
    assert gw.query("SELECT count(*) FROM shortlinks") == [(6,)]
    answer = send(gw, account, three + " d http://a.io/4", count=2)
    assert answer["code"] == "2001"
    assert answer["data"]["errors"] == [
        {
            "field": "content",
            "message": "has 4 links; a message with trackClick may carry at most 3 links "
            "(each becomes a short link of its own for every recipient)",
        }
    ]
    # Without trackClick the URLs are left alone, and so is the limit.
    assert send(gw, account, three + " d http://a.io/4", trackClick=False)["code"] == "0"


def test_a_text_too_long_once_rewritten_is_refused_before_any_code_is_made(
    gateway_factory,
) -> None:
    gw = gateway_factory(max_tracked_urls=200)  # the URL count alone lets it through
    account = gw.create_account()
    cpu = time.process_time()
    answer = send(gw, account, MANY_URLS, count=1000)
    cpu = time.process_time() - cpu
    assert answer["code"] == "2001"
    assert answer["data"]["errors"][0]["message"] == (
        "is 28 segments long with its tracked links; at most 10 are allowed"
    )
    assert gw.query("SELECT count(*) FROM shortlinks") == [(0,)]
    assert gw.books(account.email)["balance"] == 100_000_000
    assert cpu < 0.25, f"refusing took {cpu:.3f} s of CPU"


def test_a_tracked_send_refused_for_its_balance_makes_no_links(gateway: GatewayHandle) -> None:
    account = gateway.create_account(balance="0.05")
    answer = send(gateway, account, "Sale http://a.io/x", count=2)
    assert answer["code"] == "3001"
    assert gateway.query("SELECT count(*) FROM shortlinks") == [(0,)]


def test_ten_links_for_a_thousand_recipients_are_all_distinct(gateway: GatewayHandle) -> None:
    account = gateway.create_account(balance="1000")
    content = " ".join(f"http://a.io/{i}" for i in range(10))
    data = send(gateway, account, content, count=1000)["data"]
    per_text = count_segments(" ".join(f"{gateway.root_url}/s/0000000" for _ in range(10))).segments
    assert data["segments"] == 1000 * per_text
    rows = gateway.query(
        "SELECT count(*), count(DISTINCT code), count(DISTINCT msgid) FROM shortlinks"
    )
    assert rows == [(10_000, 10_000, 1000)]
    sample = gateway.status(account, data["messages"][-1]["msgid"])["message"]
    assert len(SHORT.findall(sample)) == 10 and count_segments(sample).segments == per_text
