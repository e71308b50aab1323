"""The client address of a request: forwarding headers count only from named proxies.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the
connection comes from a reverse proxy the operator named (``serve --trusted-proxy``;
``GatewayConfig.trusted_proxies``); by default nobody is named and the address is always the
connection's own. The header is read from the right: each named proxy appends the address it
saw, so the first entry that is not a named proxy is the client (what a client wrote itself
further left is never believed). An entry that is not an IP address ends the walk at the
last hop known: the proxy that passed it on.

The connection's own address is taken from the socket whenever the server lets us see it:
uvicorn rewrites ``scope["client"]`` from ``X-Forwarded-For`` itself when the peer is in its
``forwarded_allow_ips`` — loopback by default — which an embedder (the console's sandbox)
does not turn off. Reading the socket keeps the gateway's rule whatever the server was told.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.requests import Request

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


def parse_proxy(name: str) -> Network:
    """One ``--trusted-proxy`` entry: an IP address or a network; ValueError otherwise."""
    text = name.strip()
    if not text or text == "*":
        raise ValueError(
            f"{name!r} is not a proxy address: name each proxy by its IP address or network "
            "(0.0.0.0/0 and ::/0 if you really mean every address)"
        )
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{name!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/8, ::1)"
        ) from None


def _address(text: str) -> Address | None:
    """An IP address, from ``1.2.3.4``, ``1.2.3.4:80``, ``::1`` or ``[::1]:80``; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # the same client, however its proxy wrote it
    return address


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed; none by default."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(parse_proxy(n) for n in names)
        self.names: tuple[str, ...] = tuple(
            str(n) if n.num_addresses > 1 else str(n.network_address) for n in self.networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def client(self, peer: str, forwarded_for: Sequence[bytes]) -> str:
        """The client's address, given the connection's ``peer`` and the header values."""
        hop = _address(peer)
        if hop is None:  # a Unix socket, or no address at all: nothing to compare
            return peer or UNKNOWN
        if not self.trusts(hop) or not forwarded_for:
            return str(hop)
        entries = b",".join(forwarded_for).decode("latin-1").split(",")
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                break  # not an address: believe nothing further left
            hop = address
            if not self.trusts(hop):
                break
        return str(hop)


def socket_peer(scope: dict, receive: Any) -> str:
    """The address of the connection itself, before any server rewrote it from a header.

    uvicorn's ``receive`` is a method of its request cycle, which holds the transport; other
    servers do not rewrite ``scope["client"]`` unless told to, and then it is used as is.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    extra = getattr(transport, "get_extra_info", None)
    if extra is not None:
        peer = extra("peername")
        if isinstance(peer, (tuple, list)) and peer and isinstance(peer[0], str):
            return peer[0]
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN


def client_address(request: Request, proxies: TrustedProxies) -> str:
    """The request's client address under the gateway's rule (see the module docstring)."""
    peer = socket_peer(request.scope, request.receive)
    if not proxies:
        return str(_address(peer) or peer)
    headers = [v for k, v in request.scope["headers"] if k == b"x-forwarded-for"]
    return proxies.client(peer, headers)


def client_group(address: str) -> str:
    """What one client is counted as: an IPv4 address, or the /64 network of an IPv6 one.

    An IPv6 host usually holds a whole /64 and may pick any address in it, so counting
    single addresses would let one client count as millions (clicks, unique clicks, the
    registration throttle). A zone id (``%eth0``) is dropped; IPv4-mapped IPv6 is IPv4.
    """
    text = address.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
