"""``client.shortlinks``: every link read page by page, one page with its total, kinds, search.

Against the real gateway (``GET /shortlinks`` pages: docs/protocol.md, *Short-link lists*), and
against ``httpx.MockTransport`` for a service that answers a bare list (no paging), a link
repeated across pages and a service whose pages do not advance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from kedacore import APIError, AsyncKedaClient, KedaClient, envelope

API_KEY = "ak_test_5f2b9c0e7a1d4e38"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_BASE_URL", "KEDA_BACKUP_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- against the gateway -----------------------------------------------------------------------


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="100")


@pytest.fixture
def client(gateway, account) -> Iterator[KedaClient]:
    with KedaClient(
        account.api_key,
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ) as c:
        yield c


def tracked_campaign(client: KedaClient, recipients: int, start: int = 1000) -> list[str]:
    """A trackClick send to ``recipients`` numbers: one short link per recipient."""
    numbers = [f"+1201555{start + i:04d}" for i in range(recipients)]
    result = client.sms.send("US", numbers, "Sale https://shop.example.com/sale", track_click=True)
    return [m.msgid for m in result.messages]


def hand_made(client: KedaClient, count: int) -> list[str]:
    made = [
        client.shortlinks.create(f"https://example.com/offer/{i}", title=f"Offer {i}")
        for i in range(count)
    ]
    return [link.code for link in made]


def test_list_reads_every_page(gateway, client) -> None:
    msgids = tracked_campaign(client, 1000) + tracked_campaign(client, 150, start=3000)
    codes = hand_made(client, 4)
    links = client.shortlinks.list()
    assert len(links) == 1154 and len({link.code for link in links}) == 1154
    assert [link.code for link in links[:4]] == codes[::-1]  # newest first
    manual = client.shortlinks.list(kind="manual")
    assert [link.code for link in manual] == codes[::-1]
    assert not any(link.tracking for link in manual)
    tracking = client.shortlinks.list(kind="tracking")
    assert {link.msgid for link in tracking} == set(msgids)
    assert all(link.tracking and link.recipient for link in tracking)
    assert [link.code for link in client.shortlinks.list(search="offer/2")] == [codes[2]]


def test_one_page_with_its_total_search_and_sort(gateway, client) -> None:
    tracked_campaign(client, 120)
    codes = hand_made(client, 3)
    for _ in range(2):
        httpx.get(client.shortlinks.get(codes[0]).short_url)
    page = client.shortlinks.page(limit=50)
    assert (page.total, page.offset, page.limit, page.next_offset) == (123, 0, 50, 50)
    assert len(page.links) == 50 and page.paged
    last = client.shortlinks.page(limit=50, offset=100)
    assert len(last.links) == 23 and last.next_offset is None
    ranked = client.shortlinks.page(kind="manual", sort="clicks")
    assert (ranked.links[0].code, ranked.links[0].clicks) == (codes[0], 2)
    assert ranked.total == 3
    found = client.shortlinks.page(kind="manual", search="OFFER/1")
    assert [link.code for link in found.links] == [codes[1]] and found.total == 1
    assert client.shortlinks.page(limit=0, kind="tracking").total == 120


@pytest.mark.anyio
async def test_the_async_client_reads_every_page_too(gateway, account) -> None:
    async with AsyncKedaClient(
        account.api_key,
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ) as client:
        numbers = [f"+1201555{1000 + i:04d}" for i in range(130)]
        await client.sms.send("US", numbers, "See https://example.com/x", track_click=True)
        await client.shortlinks.create("https://example.com/menu", title="Menu")
        links = await client.shortlinks.list()
        assert len({link.code for link in links}) == 131
        page = await client.shortlinks.page(kind="manual")
        assert page.total == 1 and page.links[0].title == "Menu"


def test_arguments_are_checked_before_any_request() -> None:
    client = KedaClient(API_KEY, envelope.generate_key(), transport=httpx.MockTransport(_never))
    with pytest.raises(ValueError, match="kind"):
        client.shortlinks.page(kind="hand")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sort"):
        client.shortlinks.list(sort="url")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        client.shortlinks.page(limit=1001)
    with pytest.raises(ValueError, match="offset"):
        client.shortlinks.page(offset=-1)


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.url}")


# -- against a mock service --------------------------------------------------------------------


def link(code: str, *, clicks: int = 0, title: str | None = None, msgid: str | None = None) -> dict:
    return {
        "code": code,
        "shortUrl": f"https://www.kedasms.net/s/{code}",
        "url": f"https://example.com/{code.lower()}",
        "title": title,
        "createdAt": "2024-01-01T10:00:00Z",
        "clicks": clicks,
        "uniqueClicks": clicks,
        "lastClickAt": None,
        **({"msgid": msgid, "recipient": "+12065550100"} if msgid else {}),
    }


def mock(reply: Callable[[httpx.Request], Any]) -> tuple[KedaClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply(request))

    transport = httpx.MockTransport(handler)
    return KedaClient(API_KEY, envelope.generate_key(), transport=transport), seen


def test_a_service_that_does_not_page_is_paged_here() -> None:
    everything = [
        link("AAAAAAA", clicks=1, title="Spring sale"),
        link("BBBBBBB", clicks=5, msgid="msg_00000000000b"),
        link("CCCCCCC", clicks=9, title="Sale ends"),
        link("DDDDDDD", title="Menu"),
    ]
    client, seen = mock(lambda r: {"code": "0", "message": "Success", "data": everything})
    assert [x.code for x in client.shortlinks.list()] == [x["code"] for x in everything]
    assert len(seen) == 1  # a bare list is every link: no second request
    page = client.shortlinks.page(kind="manual", search="sale", sort="clicks", limit=1)
    assert not page.paged
    assert [x.code for x in page.links] == ["CCCCCCC"] and page.total == 2
    assert page.next_offset == 1
    assert [x.code for x in client.shortlinks.list(kind="tracking")] == ["BBBBBBB"]


def test_pages_are_followed_and_a_link_seen_twice_is_listed_once() -> None:
    pages = {
        "0": ([link("AAAAAAA"), link("BBBBBBB")], 2),
        # A link created meanwhile pushed B onto the next page as well.
        "2": ([link("BBBBBBB"), link("CCCCCCC")], 4),
        "4": ([link("DDDDDDD")], None),
    }

    def reply(request: httpx.Request) -> dict:
        offset = request.url.params.get("offset", "0")
        assert request.url.params["limit"] == "1000"
        data, nxt = pages[offset]
        return {
            "code": "0",
            "message": "Success",
            "data": data,
            "page": {"total": 5, "offset": int(offset), "limit": 2, "nextOffset": nxt},
        }

    client, seen = mock(reply)
    listed = [x.code for x in client.shortlinks.list()]
    assert listed == ["AAAAAAA", "BBBBBBB", "CCCCCCC", "DDDDDDD"]
    assert [r.url.params["offset"] for r in seen] == ["0", "2", "4"]


def test_pages_that_do_not_advance_are_an_error_not_a_loop() -> None:
    def reply(request: httpx.Request) -> dict:
        page = {"total": 9, "offset": 0, "limit": 2, "nextOffset": 0}
        return {"code": "0", "message": "Success", "data": [link("AAAAAAA")], "page": page}

    client, seen = mock(reply)
    with pytest.raises(APIError, match="next page"):
        client.shortlinks.list()
    assert len(seen) == 1
