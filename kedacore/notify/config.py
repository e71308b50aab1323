"""Where notifications go and how: SMTP from ``[smtp]`` in secrets, the console's public
address, the recipients finance or admin set (addresses and webhooks), and how webhooks are
shown (masked: their address is their secret).

No Streamlit here: the console passes ``st.secrets`` in as a plain mapping.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kedacore.redaction import mask
from kedacore.team import normalize_email

DEFAULT_CONSOLE_URL = "http://localhost:8501"
SECURITIES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
TIMEOUT = 5.0  # seconds for one SMTP session or one webhook POST
DEFAULT_INTERVAL = 15.0  # seconds between two looks (KEDA_NOTIFY_INTERVAL)
MAX_TARGETS = 20  # addresses, and webhooks, each
# Set to "true" by an operator whose webhooks are on the local network (a Mattermost on
# 10.x, the tests' receiver on loopback): otherwise a webhook may only reach public addresses.
ALLOW_PRIVATE_WEBHOOKS = "KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS"
TRUE_WORDS = ("1", "true", "yes", "on")


def allow_private_webhooks(env: Mapping[str, str] | None = None) -> bool:
    """Whether webhooks may reach loopback, private and link-local addresses
    (``KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS=true``; off by default)."""
    env = os.environ if env is None else env
    return str(env.get(ALLOW_PRIVATE_WEBHOOKS) or "").strip().lower() in TRUE_WORDS


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP server notifications are mailed through (``[smtp]`` in secrets)."""

    host: str
    port: int
    sender: str  # the From address ("from" in secrets)
    security: str = "starttls"  # starttls / ssl / none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = TIMEOUT

    @property
    def where(self) -> str:
        """Host, port and security, to show (never the password)."""
        return f"{self.host}:{self.port} ({self.security})"


@dataclass(frozen=True)
class NotifyConfig:
    """How notifications are sent: the console's public address (for links) and SMTP.

    ``smtp_problem``: why an ``[smtp]`` section present in secrets could not be used.
    """

    console_url: str = DEFAULT_CONSOLE_URL
    smtp: SmtpConfig | None = None
    smtp_problem: str | None = None
    # KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS (read when the config is made)
    allow_private_webhooks: bool = field(default_factory=lambda: allow_private_webhooks())

    def link(self, path: str) -> str:
        """An address of the console: ``/limits`` → ``https://console.example.com/limits``."""
        return self.console_url.rstrip("/") + path


def _section(secrets: Any, name: str) -> Mapping[str, Any]:
    if secrets is None:
        return {}
    try:
        value = secrets.get(name)
    except Exception:  # st.secrets raises when there is no secrets file at all
        return {}
    return value if isinstance(value, Mapping) else {}


def smtp_config(section: Mapping[str, Any]) -> SmtpConfig:
    """SMTP settings from an ``[smtp]`` section; ValueError saying what is wrong."""
    host = str(section.get("host") or "").strip()
    if not host:
        raise ValueError("[smtp] has no host")
    security = str(section.get("security") or "starttls").strip().lower()
    if security not in SECURITIES:
        choices = ", ".join(SECURITIES)
        raise ValueError(f"[smtp] security must be one of {choices}, not {security[:20]!r}")
    port_value = section.get("port") or DEFAULT_PORTS[security]
    try:
        port = int(port_value)
    except (TypeError, ValueError):
        raise ValueError(f"[smtp] port must be a number, not {str(port_value)[:20]!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"[smtp] port {port} is not a port")
    username = str(section.get("username") or "").strip() or None
    password = str(section.get("password") or "") or None
    sender = str(section.get("from") or "").strip()
    if not sender:
        sender = username if username and "@" in username else "kedasms-console@localhost"
    if any(ch in sender for ch in "\r\n"):
        raise ValueError("[smtp] from must be one line")
    return SmtpConfig(host, port, sender, security, username, password)


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def console_url(
    secrets: Any = None, env: Mapping[str, str] | None = None, page_url: str | None = None
) -> str:
    """Where people open the console (links in notifications, the address an invited member
    signs in at): ``KEDA_CONSOLE_URL``, ``[team] console_url``, the origin of ``[auth]
    redirect_uri``, the address the page was opened at, else ``http://localhost:8501``."""
    env = os.environ if env is None else env
    for candidate in (
        str(env.get("KEDA_CONSOLE_URL") or "").strip(),
        str(_section(secrets, "team").get("console_url") or "").strip(),
        _origin(str(_section(secrets, "auth").get("redirect_uri") or "")),
        _origin(page_url or ""),
    ):
        if candidate:
            return candidate.rstrip("/")
    return DEFAULT_CONSOLE_URL


def notify_config(secrets: Any = None, env: Mapping[str, str] | None = None) -> NotifyConfig:
    """The notification settings from the environment and secrets.

    The console's address: :func:`console_url`. SMTP: the ``[smtp]`` section (host, port,
    username, password, from, security = "starttls" | "ssl" | "none").
    """
    env = os.environ if env is None else env
    url = console_url(secrets, env)
    section = _section(secrets, "smtp")
    smtp, problem = None, None
    if section:
        try:
            smtp = smtp_config(section)
        except ValueError as exc:
            problem = str(exc)
    return NotifyConfig(
        console_url=url.rstrip("/"),
        smtp=smtp,
        smtp_problem=problem,
        allow_private_webhooks=allow_private_webhooks(env),
    )


def interval(env: Mapping[str, str] | None = None) -> float:
    """Seconds between the watcher's looks: ``KEDA_NOTIFY_INTERVAL`` (0 turns it off)."""
    env = os.environ if env is None else env
    text = str(env.get("KEDA_NOTIFY_INTERVAL") or "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_INTERVAL
    return max(value, 0.0)


# -- recipients ----------------------------------------------------------------------------


def _lines(text: str | Iterable[str]) -> list[str]:
    items = text.replace(",", "\n").splitlines() if isinstance(text, str) else list(text)
    return [str(i).strip() for i in items if str(i).strip()]


def parse_emails(text: str | Iterable[str]) -> list[str]:
    """Addresses, one a line (or comma-separated), each checked, in order, each once;
    ValueError naming the first one that is not an address."""
    found = [normalize_email(item) for item in _lines(text)]
    found = list(dict.fromkeys(found))
    if len(found) > MAX_TARGETS:
        raise ValueError(f"at most {MAX_TARGETS} addresses")
    return found


def check_webhook(url: str) -> str:
    """A webhook address as kept: http(s) with a host; ValueError (showing it masked)."""
    value = url.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{mask_webhook(value)} is not a webhook address: it must start with https:// "
            "(or http://) and name a host"
        )
    if any(ch.isspace() for ch in value):
        raise ValueError(f"{mask_webhook(value)} has a space in it")
    return value


def parse_webhooks(text: str | Iterable[str]) -> list[str]:
    """Webhook addresses, one a line, each checked, each once (ValueError otherwise)."""
    found = list(dict.fromkeys(check_webhook(item) for item in _lines_only(text)))
    if len(found) > MAX_TARGETS:
        raise ValueError(f"at most {MAX_TARGETS} webhooks")
    return found


# -- where a webhook may point ------------------------------------------------------------------

# A webhook is an address finance types: it must not reach the console's own machine or network
# (an admin API on loopback, a database, the cloud's metadata service on 169.254.169.254).
# Checked on the addresses its host resolves to (a name can point anywhere), when it is saved
# and again at every delivery, which then connects to the address it checked (kedacore.notify.
# deliver), so that a name re-pointed in between is refused too.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookRefused(ValueError):
    """A webhook whose host is not found, or resolves to an address it may not reach.

    ``str()`` names the webhook masked; ``why`` says it without the webhook (a delivery's
    error, next to the masked webhook already).
    """

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"{mask_webhook(url)} is refused: {why}")
        self.why = why


def _embedded_v4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str) -> str | None:
    """Why a webhook may not connect to ``address`` ("loopback", "private"…), or None for a
    public unicast address. An IPv6 address carrying an IPv4 one is judged by both."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return "not an IP address"
    inner = _embedded_v4(ip)
    for candidate in (inner, ip) if inner is not None else (ip,):
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address (cloud metadata lives there)"
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_private:
            return "a private address"
        if candidate.is_reserved or not candidate.is_global:
            return "not a public address"
    return None


Resolver = Callable[..., list[Any]]  # socket.getaddrinfo's signature


def webhook_addresses(
    url: str, *, allow_private: bool = False, resolve: Resolver | None = None
) -> list[str]:
    """The addresses a webhook's host resolves to now, in the resolver's order, each once.

    Raises :class:`WebhookRefused` when the host is not found or, unless ``allow_private``
    (``KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS``), when any of its addresses is loopback, private
    (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), unspecified, multicast or
    otherwise not public.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = _port(parts) or (443 if parts.scheme.lower() == "https" else 80)
    resolve = resolve or socket.getaddrinfo
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise WebhookRefused(url, f"the host {host[:100]} could not be found") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise WebhookRefused(url, f"the host {host[:100]} could not be found")
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                where = host if host == address else f"{host[:100]} resolves to {address}"
                raise WebhookRefused(
                    url,
                    f"{where}, {problem}; webhooks may only reach public addresses "
                    f"(an operator may allow the local network: {ALLOW_PRIVATE_WEBHOOKS}=true)",
                )
    return addresses


def _lines_only(text: str | Iterable[str]) -> list[str]:
    # A webhook address may hold commas (query values): one a line only.
    items = text.splitlines() if isinstance(text, str) else list(text)
    return [str(i).strip() for i in items if str(i).strip()]


def mask_webhook(url: str) -> str:
    """A webhook as it may be shown: its scheme and host, then the last 4 characters.

    A Slack-compatible webhook's whole path is its secret (``/services/T…/B…/x…``), so
    nothing of it is shown beyond what ``mask`` shows of any secret; nor a ``user:pass@``.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return mask(text)
    prefix = f"{parts.scheme}://{parts.netloc}"
    rest = text[len(prefix) :] if text.startswith(prefix) else text
    port = _port(parts)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    shown = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")
    return f"{shown}/{mask(rest)}" if rest.strip("/") else shown


def _port(parts: Any) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def masked_webhooks(urls: Iterable[str]) -> list[str]:
    return [mask_webhook(u) for u in urls]
