"""Callback URL rules: refused at send time (2001) or, after DNS, dead-lettered at delivery."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sqlite3
from collections.abc import Callable

import pytest

from gateway.addresses import (
    AddressRules,
    NotAnAddress,
    client_host_port,
    is_local_address,
    parse_ipv4,
)
from gateway.delivery import CallbackSender
from gateway.outbox import DEAD, Claimed, mask_url
from tests.support import GatewayHandle, ReceiverHandle, phone_numbers, poll


def full_width(text: str) -> str:
    """Digits as their full-width forms (U+FF10…): IDNA maps them back to ASCII digits."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isdigit() else ch for ch in text)


ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # 169.254.169.254 as one decimal number
    "http://0xa9fea9fe/",  # ... in hex
    "http://0251.0376.0251.0376/",  # ... in octal parts
    "http://169.254.43518/",  # ... with a 16-bit last part
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1%25eth0]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://1.2.3.999/",  # numeric, but no address: a browser refuses it too
    # What yarl (and so aiohttp) normalises to 169.254.169.254 and connects to directly:
    f"http://{full_width('169.254.169.254')}/",
    "http://169\u3002254\u3002169\u3002254/",  # ideographic full stops
    "http://\uff11\uff16\uff19\uff0e254\uff0e169\uff0e254/",  # full-width dots too
    "http://\u246f\u2468.254.169.254/",  # circled numbers ⑯⑨
    "http://127.0.0.1\\@example.com/",  # yarl refuses it: it could never be delivered
    "http://example.com:99999/",
]
PRIVATE = [
    "http://127.0.0.1:8000/hook",
    "http://localhost:8000/",
    "http://app.localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fd00::1]/",
    "http://[fec0::1]/",  # site-local (deprecated, but never public)
    f"http://{full_width('127.0.0.1')}:8000/hook",
    "http://127\u30020\u30020\u30021/",
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # full-width localhost
]
PUBLIC = [
    "https://example.com/hooks/keda/t",
    "http://93.184.215.14:8080/",
    "https://[2606:4700::1]/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_always_refused_even_in_a_sandbox(url: str) -> None:
    assert AddressRules(allow_private=True).url_problem(url)
    assert AddressRules(allow_private=False).url_problem(url)


@pytest.mark.parametrize("url", PRIVATE)
def test_loopback_and_private_only_when_allowed(url: str) -> None:
    assert "--allow-private-callbacks" in AddressRules(allow_private=False).url_problem(url)
    assert AddressRules(allow_private=True).url_problem(url) is None


NON_CANONICAL = ["http://127.1/", "http://2130706433/", "http://93.184.215.14./",
                 "http://0x5d.184.215.14/", "http://1572394766/"]  # fmt: skip


@pytest.mark.parametrize("url", NON_CANONICAL)
def test_legacy_numeric_forms_are_refused_even_for_allowed_addresses(url: str) -> None:
    """The HTTP client refuses them as non-canonical: they could never be delivered."""
    assert AddressRules(allow_private=False).url_problem(url)
    assert "four decimal numbers" in AddressRules(allow_private=True).url_problem(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_and_names_pass(url: str) -> None:
    assert AddressRules(allow_private=False).url_problem(url) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3.4.", "1.2.3.4"),
        ("16909060", "1.2.3.4"),
        ("0x1020304", "1.2.3.4"),
        ("01.02.03.04", "1.2.3.4"),
        ("1.0x2.0300", "1.2.0.192"),
        ("0x", "0.0.0.0"),
        ("example.com", None),
        ("1e3.example", None),
    ],
)
def test_numeric_ipv4_forms_read_as_browsers_read_them(host: str, address: str | None) -> None:
    expected = ipaddress.IPv4Address(address) if address else None
    assert parse_ipv4(host) == expected


@pytest.mark.parametrize(
    "host", ["4294967296", "1.256.0.0", "1.2.3.4.5", "08.1.1.1", "a.1", "1..2"]
)
def test_numeric_hosts_that_are_no_address_are_refused(host: str) -> None:
    with pytest.raises(NotAnAddress):
        parse_ipv4(host)


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        (f"http://{full_width('127.0.0.1')}:8000/", "127.0.0.1", 8000),
        ("https://B\u00fccher.example/", "xn--bcher-kva.example", 443),
        ("http://user:secret@Example.COM/", "example.com", 80),
        ("http://[::1]/", "::1", 80),
    ],
)
def test_the_host_judged_is_the_one_the_http_client_connects_to(
    url: str, host: str, port: int
) -> None:
    assert client_host_port(url) == (host, port)


class _NoOutbox:
    wake = None


def test_delivery_dead_letters_a_normalised_literal_without_posting() -> None:
    """The delivery re-check sees the address aiohttp would connect to (no resolver)."""
    sender = CallbackSender(_NoOutbox(), AddressRules(allow_private=False), lambda: 1e9)  # type: ignore[arg-type]
    for url in [
        f"http://{full_width('127.0.0.1')}:9/hook",
        f"http://{full_width('169.254.169.254')}/",
        "http://127.0.0.1\\@example.com/",
    ]:
        item = Claimed(1, "evt_1", url, b"{}", b"k" * 32, 1, 0)
        # The session is never opened: a refused URL is settled before any connection.
        settlement = asyncio.run(sender._attempt(item))
        assert settlement.state == DEAD, url
        assert settlement.error and settlement.error.startswith("refused destination"), url


def test_the_gateways_own_address_is_refused_always() -> None:
    rules = AddressRules.for_gateway(True, "127.0.0.1", 8787, "https://sms.example.com/")
    for url in [
        "http://127.0.0.1:8787/api/sms/send",
        "http://localhost:8787/",
        "http://127.0.0.2:8787/",
        "https://sms.example.com/hook",
        "https://SMS.example.com:443/",
    ]:
        assert "own address" in rules.url_problem(url), url
    assert rules.url_problem("http://127.0.0.1:8788/") is None
    assert rules.url_problem("http://sms.example.com/") is None  # port 80: not the gateway
    wildcard = AddressRules.for_gateway(True, "0.0.0.0", 8787, None)
    assert "own address" in wildcard.url_problem("http://127.0.0.1:8787/")


def refused_field(gw: GatewayHandle, url: str) -> str | None:
    """The 2001 message about ``callbackUrl``, or None when the send went through."""
    account = gw.create_account(balance="1")
    payload = {"countryCode": "US", "phoneNumbers": phone_numbers("US", 1), "content": "hi"}
    response = gw.send(account, {**payload, "callbackUrl": url})
    if response.status_code == 200:
        return None
    assert response.status_code == 422 and response.json()["code"] == "2001"
    assert gw.money(account.email)["balance"] == 1_000_000  # nothing frozen
    (error,) = response.json()["data"]["errors"]
    assert error["field"] == "callbackUrl" and "value" not in error
    return error["message"]


def test_a_refused_callback_url_is_not_echoed(gateway_factory: Callable[..., GatewayHandle]):
    """The reason is given, never the URL: its path carries the receiver's secret token."""
    gw = gateway_factory()
    token = "tok-3f9a0c1d2e4b5a6978"
    for url in [f"http://10.0.0.1/hooks/keda/{token}", f"ftp://example.com/{token}"]:
        account = gw.create_account(balance="1")
        payload = {"countryCode": "US", "phoneNumbers": phone_numbers("US", 1), "content": "hi"}
        response = gw.send(account, {**payload, "callbackUrl": url})
        assert response.json()["code"] == "2001"
        assert token not in response.text, url


def test_send_time_refusals_over_http(gateway_factory: Callable[..., GatewayHandle]) -> None:
    strict = gateway_factory()
    for url in ["http://2852039166/", "http://[::ffff:169.254.169.254]/", "http://10.0.0.1/"]:
        assert refused_field(strict, url), url
    assert "http" in (refused_field(strict, "ftp://example.com/") or "")
    assert refused_field(strict, "https://example.com/hook") is None
    assert "loopback" in refused_field(strict, f"http://{full_width('127.0.0.1')}:9/hook")
    assert refused_field(strict, "http://127.0.0.1\\@example.com/")
    sandbox = gateway_factory(allow_private_callbacks=True)
    assert refused_field(sandbox, "http://127.0.0.1:9/hook") is None
    assert "link-local" in refused_field(sandbox, "http://169.254.169.254/")
    own = f"http://127.0.0.1:{sandbox.config.port}/api/sms/send"
    assert "own address" in refused_field(sandbox, own)


def loopback_name() -> str:
    """A host name (not one the rules know) that resolves to loopback, or skip."""
    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except OSError:
        pytest.skip("the host name does not resolve")
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    if name.endswith("localhost") or not all(a.is_loopback for a in addresses):
        pytest.skip(f"{name} does not resolve to loopback only")
    return name


def test_a_name_resolving_to_a_refused_address_is_dead_lettered_at_delivery(
    gateway_factory: Callable[..., GatewayHandle],
    receiver_factory: Callable[..., ReceiverHandle],
) -> None:
    name = loopback_name()
    gw = gateway_factory()  # no private callbacks
    account = gw.create_account()
    receiver = receiver_factory(signing_key=account.encryption_key)
    url = receiver.url.replace("127.0.0.1", name)
    payload = {"countryCode": "US", "phoneNumbers": ["+15005550001"], "content": "hi"}
    assert gw.send(account, {**payload, "callbackUrl": url}).status_code == 200  # a name
    poll(lambda: gw.query("SELECT state FROM outbox") == [("dead",)], timeout=5)
    ((attempts, error),) = gw.query("SELECT attempts, last_error FROM outbox")
    assert attempts == 1
    assert error.startswith(f"refused destination: {name} resolves to 127.")
    assert "loopback" in error and receiver.token not in error
    assert receiver.faults.requests == 0


def test_a_name_resolving_to_the_gateway_itself_is_dead_lettered(
    gateway_factory: Callable[..., GatewayHandle],
) -> None:
    name = loopback_name()
    gw = gateway_factory(allow_private_callbacks=True)
    account = gw.create_account()
    url = f"http://{name}:{gw.config.port}/api/sms/send"
    payload = {"countryCode": "US", "phoneNumbers": ["+15005550001"], "content": "hi"}
    assert gw.send(account, {**payload, "callbackUrl": url}).status_code == 200
    poll(lambda: gw.query("SELECT state FROM outbox") == [("dead",)], timeout=5)
    (error,) = gw.query("SELECT last_error FROM outbox")[0]
    assert "the gateway's own address" in error


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pa55word@example.com/", "https://example.com/"),
        ("http://admin:s3cret@127.0.0.1:8501/hooks/keda/tok-abcdef1234", "http://127.0.0.1:8501/hooks/keda/***1234"),
        ("https://only-a-user@example.com/x", "https://example.com/***"),
        ("https://example.com/a@b", "https://example.com/***"),
        ("https://example.com/cb#frag-secret", "https://example.com/***#***"),
    ],
)  # fmt: skip
def test_masked_urls_never_show_userinfo(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "s3cret" not in mask_url(url) and "pa55word" not in mask_url(url)


# The gateway on 127.0.0.1:8787, written as other spellings of the same address.
OWN_SPELLINGS = [
    "http://[::ffff:127.0.0.1]:8787/api/sms/send",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:8787/",
    "http://[0:0:0:0:0:ffff:7f00:1]:8787/",
    "http://[0000:0000:0000:0000:0000:FFFF:7F00:0001]:8787/",
    "http://[::ffff:127.0.0.2]:8787/",  # another loopback address, mapped
    "http://[::127.0.0.1]:8787/",  # IPv4-compatible
    "http://127.1:8787/",
    "http://2130706433:8787/",
    "http://0x7f000001:8787/",
    "http://0177.0.0.1:8787/",
    "http://127.0.0.1.:8787/",
    "http://[::1]:8787/",
    "http://[0:0:0:0:0:0:0:1]:8787/",
    "http://localhost:8787/",
]


@pytest.mark.parametrize("url", OWN_SPELLINGS)
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::1", "::ffff:127.0.0.1"])
def test_the_gateways_own_address_is_refused_in_every_spelling(url: str, host: str) -> None:
    """Addresses are compared, not their text: IPv4-mapped, numeric and compressed forms."""
    rules = AddressRules.for_gateway(True, host, 8787, None)
    assert "own address" in (rules.url_problem(url) or ""), url
    assert "own address" not in (rules.url_problem(url.replace(":8787/", ":8788/")) or "")


def test_the_public_address_is_refused_in_every_spelling() -> None:
    """``--public-url`` with a literal address: its mapped forms are the gateway too."""
    for allow_private in (False, True):
        rules = AddressRules.for_gateway(allow_private, "10.0.0.5", 8080, "http://93.184.215.14")
        for url in [
            "http://93.184.215.14/hook",
            "http://[::ffff:93.184.215.14]/hook",
            "http://[::ffff:5db8:d70e]:80/hook",
            "http://[0:0:0:0:0:ffff:5db8:d70e]/",
        ]:
            assert "own address" in (rules.url_problem(url) or ""), url
        assert rules.url_problem("http://[::ffff:93.184.215.14]:81/hook") is None
    mapped = AddressRules.for_gateway(True, "127.0.0.1", 9000, "https://[::ffff:5db8:d70e]")
    assert "own address" in (mapped.url_problem("https://93.184.215.14/") or "")


def test_the_resolver_refuses_a_name_whose_answer_is_the_gateway_mapped(monkeypatch) -> None:
    """At delivery: a name whose DNS answer is ::ffff:127.0.0.1 is the gateway itself."""
    from aiohttp.resolver import ThreadedResolver

    from gateway.delivery import GuardedResolver, RefusedDestination

    async def answer(self, host, port=0, family=socket.AF_INET):
        return [
            {
                "hostname": host,
                "host": "::ffff:127.0.0.1",
                "port": port,
                "family": socket.AF_INET6,
                "proto": 0,
                "flags": 0,
            }
        ]

    monkeypatch.setattr(ThreadedResolver, "resolve", answer)
    rules = AddressRules.for_gateway(True, "127.0.0.1", 8787, None)

    async def resolve(port: int) -> list:
        return await GuardedResolver(rules).resolve("hooks.example.com", port)

    with pytest.raises(RefusedDestination, match="own address"):
        asyncio.run(resolve(8787))
    assert asyncio.run(resolve(8788))  # another port: allowed (private callbacks are on)


def test_delivery_dead_letters_the_gateways_own_address_in_any_spelling() -> None:
    rules = AddressRules.for_gateway(True, "127.0.0.1", 8787, None)
    sender = CallbackSender(_NoOutbox(), rules, lambda: 1e9)  # type: ignore[arg-type]
    for url in OWN_SPELLINGS:
        item = Claimed(1, "evt_1", url, b"{}", b"k" * 32, 1, 0)
        settlement = asyncio.run(sender._attempt(item))  # never opens a connection
        assert settlement.state == DEAD, url
        assert settlement.error and "own address" in settlement.error, url


def test_send_time_refuses_the_gateways_own_address_mapped(
    gateway_factory: Callable[..., GatewayHandle],
) -> None:
    gw = gateway_factory(allow_private_callbacks=True)
    port = gw.config.port
    for host in ["127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:7f00:1]"]:
        message = refused_field(gw, f"http://{host}:{port}/api/sms/send")
        assert message and "own address" in message, host
    assert refused_field(gw, f"http://[::ffff:127.0.0.1]:{port + 1}/hook") is None


def test_an_accepted_event_to_the_gateway_mapped_is_dead_lettered_at_delivery(
    gateway_factory: Callable[..., GatewayHandle],
) -> None:
    """A task accepted before the send-time check knew better (an older gateway, the same
    database): its events are refused before every attempt, never posted to the gateway."""
    gw = gateway_factory(allow_private_callbacks=True, sent_delay=1.0)
    account = gw.create_account()
    payload = {"countryCode": "US", "phoneNumbers": ["+15005550001"], "content": "hi"}
    sent = gw.send(account, {**payload, "callbackUrl": "http://127.0.0.1:9/hook"})
    assert sent.status_code == 200, sent.text
    own = f"http://[::ffff:127.0.0.1]:{gw.config.port}/api/sms/send"
    with sqlite3.connect(gw.db_path, timeout=10) as db:  # before the carrier writes the event
        db.execute("UPDATE tasks SET callback_url = ?", (own,))
    poll(lambda: gw.query("SELECT state FROM outbox") == [("dead",)], timeout=10)
    ((attempts, error),) = gw.query("SELECT attempts, last_error FROM outbox")
    assert attempts <= 1 and "own address" in error


def this_machines_address() -> str | None:
    """An address of this machine other than loopback (the route to a documentation net)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: no packet leaves
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_listener_knows_its_interface_addresses_as_its_own(wildcard: str) -> None:
    """Review finding: listening on 0.0.0.0 it posted callbacks to its own LAN address."""
    address = this_machines_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    rules = AddressRules.for_gateway(True, wildcard, 8787, None)
    problem = rules.url_problem(f"http://{address}:8787/hook")
    assert problem is not None and "own address" in problem
    assert rules.address_problem(ipaddress.ip_address(address), 8787) is not None
    # Another port of the same machine is not the gateway (private callbacks allowed).
    assert rules.url_problem(f"http://{address}:9999/hook") is None
    # An address that is not this machine's stays a plain destination.
    assert rules.url_problem("http://203.0.113.77:8787/hook") is None
    # A gateway bound to loopback only is not reachable on the LAN address: not its own.
    assert (
        AddressRules.for_gateway(True, "127.0.0.1", 8787, None).url_problem(
            f"http://{address}:8787/hook"
        )
        is None
    )


def test_is_local_address() -> None:
    assert is_local_address(ipaddress.ip_address("127.0.0.1"))
    assert is_local_address(ipaddress.ip_address("127.0.0.99"))
    assert is_local_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not is_local_address(ipaddress.ip_address("203.0.113.77"))
