"""Client addresses: forwarding headers are trusted only from the proxies the operator names.

uvicorn trusts ``X-Forwarded-For`` from loopback by default; the gateway must not, or
anyone on the machine (or behind a proxy that passes the header on) could choose the
address that ``uniqueClicks`` and the per-address registration throttle count. The
fixtures serve the app under uvicorn's defaults, as the console's sandbox does.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway import GatewayConfig, create_app
from gateway.forwarding import client_group
from tests.support import GatewayHandle, poll


def _link(gw: GatewayHandle) -> tuple[object, str, str]:
    account = gw.create_account()
    data = gw.post_envelope("/shortlinks", account, {"url": "https://example.com/x"}).json()
    return account, data["data"]["code"], data["data"]["shortUrl"]


def _click(gw: GatewayHandle, short_url: str, forwarded: str | None) -> None:
    headers = {"User-Agent": "phone"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    response = gw.http.get(short_url, headers=headers)
    assert response.status_code == 302 and response.headers["location"] == "https://example.com/x"


def test_a_forged_x_forwarded_for_from_loopback_counts_as_loopback(gateway: GatewayHandle) -> None:
    account, code, short_url = _link(gateway)
    _click(gateway, short_url, None)
    for i in range(1, 5):
        _click(gateway, short_url, f"203.0.113.{i}")
    _click(gateway, short_url, "198.51.100.7, 203.0.113.9")
    link = gateway.get(f"/shortlinks/{code}", account).json()["data"]
    assert (link["clicks"], link["uniqueClicks"]) == (6, 1)
    assert gateway.query("SELECT DISTINCT ip FROM clicks") == [("127.0.0.1",)]


@pytest.mark.parametrize(
    ("http", "loop"), [("auto", "auto"), ("h11", "asyncio"), ("httptools", "asyncio")]
)
def test_embedded_under_uvicorn_s_defaults_the_header_is_not_believed(
    tmp_path: Path, http: str, loop: str
) -> None:
    """``create_app`` served as the console's sandbox serves it: uvicorn's own defaults,
    which rewrite the client from ``X-Forwarded-For`` sent from loopback."""
    app = create_app(GatewayConfig(db_path=tmp_path / "g.db", rate_limit=0))
    links = app.state.gateway.links
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", access_log=False, http=http, loop=loop
    )
    assert config.proxy_headers  # the embedder left uvicorn's default on
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        poll(lambda: server.started, timeout=15)
        core = app.state.gateway
        created = core.accounts.create("embedded@example.com", 0)
        owner = core.accounts.by_api_key(created["apiKey"]).id
        with links.db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO shortlinks (code, account_id, url, created_at) "
                "VALUES ('Embed01', ?, 'https://example.com/x', 0)",
                (owner,),
            )
        for i in range(3):
            response = httpx.get(
                f"http://127.0.0.1:{port}/s/Embed01",
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            assert response.status_code == 302
        with links.db.read() as conn:
            ips = conn.exec_driver_sql("SELECT DISTINCT ip FROM clicks").all()
        assert ips == [("127.0.0.1",)]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_the_header_of_a_named_proxy_is_honoured(gateway_factory) -> None:
    gw = gateway_factory(trusted_proxies=("127.0.0.1",))
    account, code, short_url = _link(gw)
    _click(gw, short_url, "203.0.113.1")
    _click(gw, short_url, "203.0.113.2")
    # What the client wrote itself, left of the address the proxy saw, is not believed.
    _click(gw, short_url, "6.6.6.6, 198.51.100.7")
    _click(gw, short_url, None)  # the proxy's own request
    link = gw.get(f"/shortlinks/{code}", account).json()["data"]
    assert (link["clicks"], link["uniqueClicks"]) == (4, 4)
    ips = {row[0] for row in gw.query("SELECT ip FROM clicks")}
    assert ips == {"203.0.113.1", "203.0.113.2", "198.51.100.7", "127.0.0.1"}


def test_the_registration_throttle_counts_the_real_address(gateway_factory) -> None:
    gw = gateway_factory(rate_limit=1, rate_burst=2)
    codes = []
    for i in range(4):
        response = gw.http.post(
            gw.base_url + "/accounts/register",
            json={"email": f"who{i}@example.com", "password": "correct horse battery"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
        codes.append(response.json()["code"])
    assert codes[:2] == ["0", "0"] and "4029" in codes[2:], codes


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("127.0.0.1", "203.0.113.5", "127.0.0.1"),  # nobody trusted: the peer, always
        ("10.0.0.2", "203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5:4711", "203.0.113.5"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5, 10.0.0.9", "203.0.113.5"),  # through two of ours
        ("10.0.0.2", "10.0.0.7", "10.0.0.7"),  # every hop ours: the first
        ("10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.2", "::ffff:203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "not-an-address", "10.0.0.2"),  # garbage: the last hop we know
        ("10.0.0.2", "", "10.0.0.2"),
        ("192.0.2.1", "203.0.113.5", "192.0.2.1"),  # not a named proxy
    ],
)
def test_the_client_address_is_the_last_hop_not_a_named_proxy(peer, header, client) -> None:
    from gateway.forwarding import TrustedProxies

    trusted = TrustedProxies(() if peer == "127.0.0.1" else ("10.0.0.0/24",))
    assert trusted.client(peer, [header.encode()]) == client


def test_proxy_names_are_checked() -> None:
    from gateway.forwarding import TrustedProxies

    assert TrustedProxies(["127.0.0.1", "::1", "10.0.0.0/8"]).names == (
        "127.0.0.1",
        "::1",
        "10.0.0.0/8",
    )
    for bad in ["*", "proxy.example.com", "10.0.0.0/33", ""]:
        with pytest.raises(ValueError):
            TrustedProxies([bad])


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8::1%eth1", "2001:db8::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("::1", "::/64"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(address: str, group: str) -> None:
    assert client_group(address) == group


def test_one_ipv6_64_cannot_inflate_clicks_or_unique_clicks(gateway_factory) -> None:
    """Review finding: an IPv6 host picks any address of its /64; each counted as new."""
    gw = gateway_factory(trusted_proxies=("127.0.0.1",), click_limit=5)
    account, code, short_url = _link(gw)
    for i in range(1, 41):
        _click(gw, short_url, f"2001:db8:1:2::{i:x}")
    _click(gw, short_url, "2001:db8:1:3::1")  # another /64: another client
    link = gw.get(f"/shortlinks/{code}", account).json()["data"]
    assert (link["clicks"], link["uniqueClicks"]) == (6, 2)
