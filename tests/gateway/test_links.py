"""Short links: creation by envelope, listing with click figures, the public redirect."""

from __future__ import annotations

import re
import time

import pytest


def create(gateway, account, **payload):
    return gateway.post_envelope("/shortlinks", account, payload)


def test_create_returns_code_short_url_and_target(gateway):
    account = gateway.create_account()
    response = create(gateway, account, url="https://example.com/sale?x=1", title="Sale")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert re.fullmatch(r"[A-Za-z0-9]{7}", data["code"])
    assert data["shortUrl"] == f"{gateway.root_url}/s/{data['code']}"
    assert data["url"] == "https://example.com/sale?x=1" and data["title"] == "Sale"
    assert data["createdAt"].endswith("Z")
    assert gateway.money(account.email)["balance"] == 100_000_000  # links are free


def test_redirect_counts_clicks_and_unique_visitors(gateway):
    account = gateway.create_account()
    data = create(gateway, account, url="https://example.com/landing").json()["data"]
    for agent in ["phone-a", "phone-a", "phone-a", "phone-b"]:
        response = gateway.http.get(data["shortUrl"], headers={"User-Agent": agent})
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.com/landing"
    link = gateway.get(f"/shortlinks/{data['code']}", account).json()["data"]
    assert link["clicks"] == 4 and link["uniqueClicks"] == 2
    assert link["lastClickAt"].endswith("Z") and link["lastClickAt"] >= link["createdAt"]
    assert {k: link[k] for k in ("code", "shortUrl", "url", "title", "createdAt")} == data


def test_a_link_without_clicks(gateway):
    account = gateway.create_account()
    code = create(gateway, account, url="http://example.com").json()["data"]["code"]
    link = gateway.get(f"/shortlinks/{code}", account).json()["data"]
    assert (link["clicks"], link["uniqueClicks"], link["lastClickAt"]) == (0, 0, None)


def test_unknown_code_is_a_404_page(gateway):
    response = gateway.http.get(gateway.root_url + "/s/nosuch1")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "not found" in response.text.lower()
    assert gateway.get("/shortlinks/nosuch1", gateway.create_account()).json()["code"] == "4004"


def test_list_newest_first_with_paging(gateway):
    account = gateway.create_account()
    codes = [
        create(gateway, account, url=f"https://example.com/{i}").json()["data"]["code"]
        for i in range(5)
    ]
    listed = gateway.get("/shortlinks", account).json()["data"]
    assert [x["code"] for x in listed] == codes[::-1]
    page = gateway.get("/shortlinks", account, limit=2, offset=1).json()["data"]
    assert [x["code"] for x in page] == codes[::-1][1:3]
    bad = gateway.get("/shortlinks", account, limit="lots")
    assert bad.status_code == 422 and bad.json()["code"] == "2001"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "ftp://example.com/file"}, "url"),
        ({"url": "example.com"}, "url"),
        ({"url": "https://exa mple.com"}, "url"),
        ({"url": None}, "url"),
        ({"url": "https://example.com", "title": "t" * 201}, "title"),
        ({"url": "https://example.com", "title": 5}, "title"),
    ],
)
def test_invalid_links_are_2001_and_their_iv_is_spent(gateway, payload, field):
    account = gateway.create_account()
    body = gateway.seal(account, payload)
    response = gateway.http.post(gateway.base_url + "/shortlinks", json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["data"]["errors"]]
    replay = gateway.http.post(gateway.base_url + "/shortlinks", json=body)
    assert replay.json()["code"] == "1003"
    assert gateway.query("SELECT count(*) FROM shortlinks") == [(0,)]


def test_link_envelope_refusals(gateway):
    account = gateway.create_account()
    body = gateway.seal(account, {"url": "https://example.com"}, timestamp=1)
    assert gateway.http.post(gateway.base_url + "/shortlinks", json=body).json()["code"] == "1002"
    assert gateway.get("/shortlinks").json()["code"] == "1001"


def test_public_url_sets_the_short_link_base(gateway_factory):
    gateway = gateway_factory(public_url="https://sms.example.com/")
    account = gateway.create_account()
    data = create(gateway, account, url="https://example.com").json()["data"]
    assert data["shortUrl"] == f"https://sms.example.com/s/{data['code']}"
    listed = gateway.get("/shortlinks", account).json()["data"][0]
    assert listed["shortUrl"] == data["shortUrl"]


def _clicks(gateway, account, code):
    link = gateway.get(f"/shortlinks/{code}", account).json()["data"]
    return link["clicks"], link["uniqueClicks"]


def test_a_burst_of_clicks_from_one_address_redirects_but_records_at_most_the_bound(gateway):
    account = gateway.create_account()
    data = create(gateway, account, url="https://example.com/landing").json()["data"]
    for i in range(25):  # a new user agent each time: uniqueClicks would grow with each
        response = gateway.http.get(data["shortUrl"], headers={"User-Agent": f"bot-{i}"})
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.com/landing"
    assert _clicks(gateway, account, data["code"]) == (10, 10)  # the default bound


def test_the_click_bound_is_per_link_and_per_window(gateway_factory):
    shift = [0.0]
    gateway = gateway_factory(click_limit=3, click_window=60, clock=lambda: time.time() + shift[0])
    account = gateway.create_account()
    stamp = {"timestamp": int(time.time())}
    first = create(gateway, account, url="https://example.com/1", **stamp).json()["data"]
    second = create(gateway, account, url="https://example.com/2", **stamp).json()["data"]
    for _ in range(5):
        assert gateway.http.get(first["shortUrl"]).status_code == 302
        assert gateway.http.get(second["shortUrl"]).status_code == 302
    assert _clicks(gateway, account, first["code"])[0] == 3
    assert _clicks(gateway, account, second["code"])[0] == 3
    shift[0] = 61.0  # the next window
    for _ in range(5):
        assert gateway.http.get(first["shortUrl"]).status_code == 302
    assert _clicks(gateway, account, first["code"])[0] == 6


def test_unrecorded_clicks_send_no_callback(gateway_factory):
    gateway = gateway_factory(click_limit=2, allow_private_callbacks=True)
    account = gateway.create_account()
    payload = {
        "countryCode": "US",
        "phoneNumbers": ["+12065550100"],
        "content": "Sale http://shop.example/sale",
        "trackClick": True,
        "callbackUrl": "http://127.0.0.1:9/hook",
    }
    data = gateway.send(account, payload).json()["data"]
    text = gateway.status(account, data["messages"][0]["msgid"])["message"]
    short = re.search(r"http://\S+/s/\w+", text).group()
    for _ in range(6):
        assert gateway.http.get(short).status_code == 302
    assert gateway.query("SELECT count(*) FROM clicks") == [(2,)]
    assert gateway.query("SELECT count(*) FROM outbox WHERE status = 'CLICKED'") == [(2,)]


# -- the listing's paging, kinds, search and sort (our extension, docs/protocol.md) ------------


def _tracked_send(gateway, account, recipients: int) -> list[str]:
    """A trackClick send: one short link per recipient, tied to its msgid."""
    payload = {
        "countryCode": "US",
        "phoneNumbers": [f"+1201555{1000 + i:04d}" for i in range(recipients)],
        "content": "Spring sale https://shop.example.com/spring",
        "trackClick": True,
    }
    response = gateway.send(account, payload)
    assert response.status_code == 200, response.text
    return [m["msgid"] for m in response.json()["data"]["messages"]]


def _listing(gateway, account, **params):
    response = gateway.get("/shortlinks", account, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["data"], body["page"]


def test_every_link_is_reachable_page_by_page_with_the_total(gateway):
    account = gateway.create_account()
    msgids = _tracked_send(gateway, account, 150)
    manual = [
        create(gateway, account, url=f"https://example.com/hand/{i}", title=f"Hand {i}").json()[
            "data"
        ]["code"]
        for i in range(3)
    ]
    first, page = _listing(gateway, account)
    assert len(first) == 100  # the default page
    assert page == {"total": 153, "offset": 0, "limit": 100, "nextOffset": 100}
    second, page = _listing(gateway, account, offset=100)
    assert len(second) == 53 and page["nextOffset"] is None
    codes = [link["code"] for link in first + second]
    assert len(set(codes)) == 153  # each link once, nothing lost past the first hundred
    assert codes[:3] == manual[::-1]  # newest first

    links, page = _listing(gateway, account, kind="manual")
    assert [link["code"] for link in links] == manual[::-1] and page["total"] == 3
    assert {(link["kind"], link["msgid"], link["recipient"]) for link in links} == {
        ("manual", None, None)
    }
    links, page = _listing(gateway, account, kind="tracking", limit=1000)
    assert page["total"] == 150 and len(links) == 150
    assert {link["msgid"] for link in links} == set(msgids)
    assert all(link["kind"] == "tracking" and link["recipient"] for link in links)

    counted, page = _listing(gateway, account, limit=0)  # only the count
    assert counted == [] and page["total"] == 153 and page["nextOffset"] == 0


def test_the_listing_searches_and_sorts_by_clicks(gateway):
    account = gateway.create_account()
    msgids = _tracked_send(gateway, account, 5)
    made = {
        name: create(gateway, account, url=f"https://example.com/{name}", title=title).json()[
            "data"
        ]
        for name, title in [("spring", "Spring OFFER"), ("menu", "Menu"), ("faq", None)]
    }
    for name, visits in [("menu", 3), ("faq", 1)]:
        for i in range(visits):
            gateway.http.get(made[name]["shortUrl"], headers={"User-Agent": f"ua-{i}"})

    found, page = _listing(gateway, account, q="offer")  # the title, any case
    assert [x["code"] for x in found] == [made["spring"]["code"]] and page["total"] == 1
    found, _ = _listing(gateway, account, q="EXAMPLE.COM/FAQ")  # the target
    assert [x["code"] for x in found] == [made["faq"]["code"]]
    found, _ = _listing(gateway, account, q=made["menu"]["code"])  # the code
    assert [x["code"] for x in found] == [made["menu"]["code"]]
    found, _ = _listing(gateway, account, q=msgids[2])  # a tracking link by its message
    assert [x["msgid"] for x in found] == [msgids[2]]
    found, _ = _listing(gateway, account, q="%")  # a wildcard is a character, not "anything"
    assert found == []

    ranked, _ = _listing(gateway, account, sort="clicks", kind="manual")
    assert [(x["code"], x["clicks"]) for x in ranked] == [
        (made["menu"]["code"], 3),
        (made["faq"]["code"], 1),
        (made["spring"]["code"], 0),
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "other"}, "kind"),
        ({"sort": "url"}, "sort"),
        ({"limit": "1001"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_listing_parameters_are_named(gateway, params, field):
    response = gateway.get("/shortlinks", gateway.create_account(), **params)
    assert response.status_code == 422 and response.json()["code"] == "2001"
    assert [e["field"] for e in response.json()["data"]["errors"]] == [field]
