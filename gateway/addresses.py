"""Where callbacks may go: the address rules of DESIGN.md, at send time and at delivery.

Refused always: link-local (169.254.0.0/16, fe80::/10 — cloud metadata lives there),
multicast, unspecified, reserved and broadcast addresses, any of them hidden in another
spelling (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518``,
IPv4-mapped, -compatible, NAT64, 6to4 or Teredo IPv6), and the gateway's own address.
Loopback and private ranges are refused unless ``allow_private`` (the console's sandbox).

The host judged is the host the HTTP client (aiohttp, through yarl) will connect to: yarl
applies IDNA/UTS-46 mapping, so ``１２７.０.０.１`` (full-width digits) or ``127。0。0。1``
(ideographic full stops) *is* 127.0.0.1 to it, and aiohttp then treats it as an address
literal, without asking the resolver. A URL yarl refuses is refused here too (it could never
be delivered), and so is a host that is not ASCII once normalised.

At send time only what the URL says is judged (a literal address, or a name known to mean
loopback or metadata): resolving names there would put DNS on the send path. At delivery
the address a name resolves to is judged again, by the resolver the connection itself uses
(``gateway.delivery``), so DNS cannot smuggle a refused address in.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from yarl import URL

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_COMPAT = ipaddress.IPv6Network("::/96")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_LOOPBACK4 = ipaddress.IPv4Address("127.0.0.1")
_LOOPBACK6 = ipaddress.IPv6Address("::1")
# Names that mean an address without asking DNS (RFC 6761 and the clouds' metadata host).
_KNOWN_NAMES: dict[str, IP] = {
    "localhost": _LOOPBACK4,
    "localhost.localdomain": _LOOPBACK4,
    "ip6-localhost": _LOOPBACK6,
    "ip6-loopback": _LOOPBACK6,
    "metadata.google.internal": ipaddress.IPv4Address("169.254.169.254"),
}
PRIVATE_HINT = "allowed only when the gateway runs with --allow-private-callbacks"


class NotAnAddress(ValueError):
    """A host that looks numeric but is no valid IPv4 address (e.g. ``1.2.3.999``)."""


def _ipv4_part(text: str) -> int | None:
    """One dotted part as inet_aton and browsers read it: decimal, 0-octal or 0x-hex."""
    if text[:2].lower() == "0x":
        digits, base, allowed = text[2:], 16, "0123456789abcdefABCDEF"
    elif len(text) > 1 and text[0] == "0":
        digits, base, allowed = text[1:], 8, "01234567"
    else:
        digits, base, allowed = text, 10, "0123456789"
    if digits == "":
        return 0 if base == 16 else None  # "0x" alone is zero; an empty part is nothing
    if any(ch not in allowed for ch in digits):
        return None
    return int(digits, base)


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host spells in any numeric form (WHATWG URL rules), or None.

    Raises ``NotAnAddress`` when the last label is numeric but the whole is no address:
    a browser refuses such a host too, so it must not pass as a name.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot: "127.0.0.1." is still 127.0.0.1
    if not parts or _ipv4_part(parts[-1]) is None:
        return None  # the last label is not a number: a domain name
    numbers = [_ipv4_part(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise NotAnAddress(f"{host!r} is not a valid IPv4 address")
    *front, last = numbers
    if any(n > 255 for n in front) or last >= 256 ** (5 - len(numbers)):  # type: ignore[operator]
        raise NotAnAddress(f"{host!r} is not a valid IPv4 address")
    value = last + sum(n * 256 ** (3 - i) for i, n in enumerate(front))  # type: ignore[operator]
    return ipaddress.IPv4Address(value)


def literal_ip(host: str) -> IP | None:
    """The address a URL host spells (IPv6 without brackets, any IPv4 form), or None."""
    host = host.strip("[]").lower()
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])  # the zone id is irrelevant
        except ValueError:
            raise NotAnAddress(f"{host!r} is not a valid IPv6 address") from None
    return parse_ipv4(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _COMPAT and int(ip) > 1:  # :: and ::1 are themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def canonical(ip: IP) -> IP:
    """The address as the rules compare it: an IPv6 form of an IPv4 address is that address.

    ``::ffff:127.0.0.1`` is where a dual-stack socket connects for ``127.0.0.1``; the
    compatible, NAT64, 6to4 and Teredo forms are judged as their IPv4 address everywhere
    else (``ip_problem``), so they are compared as it too.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        return _embedded_ipv4(ip) or ip
    return ip


def ip_problem(ip: IP, allow_private: bool) -> str | None:
    """Why callbacks must not go to ``ip``, or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = ip_problem(inner, allow_private)
            return f"{problem} (inside the IPv6 address {ip})" if problem else None
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (169.254.0.0/16, fe80::/10)"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return None if allow_private else f"{ip} is a loopback address, {PRIVATE_HINT}"
    if ip.is_reserved or ip == _BROADCAST:
        return f"{ip} is a reserved address"
    # fec0::/10 (deprecated site-local) is "global" to the ipaddress module, not to us.
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    if not allow_private and (site_local or not ip.is_global):
        return f"{ip} is a private address, {PRIVATE_HINT}"
    return None


def _canonical_literal(host: str | None) -> IP | None:
    """The canonical address a host spells, or None (a name, or nothing)."""
    try:
        ip = literal_ip(host) if host else None
    except NotAnAddress:
        return None
    return canonical(ip) if ip is not None else None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class BadUrl(ValueError):
    """A URL the HTTP client would refuse, or whose host it would not judge as we do."""


def client_host_port(url: str) -> tuple[str, int]:
    """The host (lower case, IDNA-normalised, ASCII) and port the HTTP client connects to.

    Raises:
        BadUrl: yarl refuses the URL, it is not http(s), it has no host, or the host is
            not ASCII after normalisation.
    """
    try:
        parsed = URL(url)
        host, port, scheme = parsed.raw_host, parsed.port, parsed.scheme.lower()
    except (ValueError, TypeError) as exc:  # UnicodeError is a ValueError
        raise BadUrl(f"is not a valid URL ({type(exc).__name__})") from None
    if scheme not in ("http", "https"):
        raise BadUrl("must start with http:// or https://")
    if not host:
        raise BadUrl("must name a host")
    if not host.isascii():
        raise BadUrl("must have a host that is ASCII once normalised (IDNA)")
    return host.lower(), port or _default_port(scheme)


def is_local_address(ip: IP) -> bool:
    """Whether ``ip`` is an address of this machine (so a wildcard listener answers on it).

    Asked of the kernel, not of a list read once: binding a socket to an address succeeds
    only for a local one (an interface's address, or any loopback address), and a machine's
    addresses change (DHCP, VPNs). Port 0 binds nothing in use and the socket is closed at
    once.
    """
    ip = canonical(ip)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(ip), 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class AddressRules:
    """The callback address rules of one gateway.

    Attributes:
        allow_private: accept loopback and private addresses.
        own_host: the host the gateway listens on (a wildcard means every local address).
        own_port: its port; None when unknown (the gateway is embedded without one).
        public: (host, port) of ``--public-url``, also the gateway itself.
    """

    allow_private: bool = False
    own_host: str | None = None
    own_port: int | None = None
    public: tuple[str, int] | None = None
    _own_ip: IP | None = field(default=None, init=False)
    _public_ip: IP | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Both canonical: the gateway's addresses are compared with a destination's as
        # addresses, never as text (``::ffff:127.0.0.1`` *is* 127.0.0.1).
        object.__setattr__(self, "_own_ip", _canonical_literal(self.own_host))
        public_host = self.public[0] if self.public is not None else None
        object.__setattr__(self, "_public_ip", _canonical_literal(public_host))

    @classmethod
    def for_gateway(
        cls, allow_private: bool, host: str | None, port: int | None, public_url: str | None
    ) -> AddressRules:
        """The rules of a gateway listening on ``host:port``, reachable at ``public_url``."""
        public = None
        if public_url:
            try:
                public_host, public_port = client_host_port(public_url)
                public = (public_host.rstrip("."), public_port)
            except BadUrl:
                public = None
        return cls(allow_private, host, port, public)

    def _is_own(self, ip: IP, port: int) -> bool:
        ip = canonical(ip)
        if self.public is not None and port == self.public[1] and ip == self._public_ip:
            return True
        if port != self.own_port:
            return False
        own = self._own_ip
        if own is None or own.is_unspecified:  # a wildcard listens on every local address
            return ip.is_loopback or ip.is_unspecified or own is None or is_local_address(ip)
        return ip == own or (own.is_loopback and ip.is_loopback)

    def address_problem(self, ip: IP, port: int) -> str | None:
        """Why a resolved destination is refused (delivery time), or None."""
        if self._is_own(ip, port):
            return f"{ip} port {port} is the gateway's own address"
        return ip_problem(ip, self.allow_private)

    def name_problem(self, host: str, port: int) -> str | None:
        """Why a host name is refused before any DNS (the public URL's, or a known one)."""
        host = host.lower().rstrip(".")
        if self.public is not None and (host, port) == self.public:
            return f"{host} port {port} is the gateway's own address"
        if host.endswith(".localhost"):
            host = "localhost"
        known = _KNOWN_NAMES.get(host)
        if known is None:
            return None
        problem = self.address_problem(known, port)
        return f"{host}: {problem}" if problem else None

    def url_problem(self, url: str) -> str | None:
        """Why a callback URL is refused (send time, and again before each delivery), or None.

        The host is judged as the HTTP client will see it (``client_host_port``).
        """
        try:
            host, port = client_host_port(url)
        except BadUrl as exc:
            return str(exc)
        try:
            ip = literal_ip(host)
        except NotAnAddress as exc:
            return str(exc)
        if ip is None:
            return self.name_problem(host, port)
        problem = self.address_problem(ip, port)
        if problem is None and isinstance(ip, ipaddress.IPv4Address) and host != str(ip):
            # aiohttp refuses legacy numeric forms (127.1, 2130706433, a trailing dot) as
            # non-canonical: such a URL could never be delivered, only retried for a day.
            return f"must write the address {ip} as four decimal numbers ({host} is not)"
        return problem
