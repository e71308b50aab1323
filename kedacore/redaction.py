"""Secrets as they may be shown: the last 4 characters at most, and never inside a URL.

DESIGN.md: secrets are never printed, logged, stored in the ledger or shown whole. Besides the
API key, secrets travel inside URLs — the console receiver's token (``/hooks/keda/<token>``),
a ``user:password@`` part, query values — and a service that echoes a URL it refused (a
``callbackUrl``, say) would carry them into a page, a log or the ledger. Every error message
kedacore makes goes through :func:`redact_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["mask", "redact_secrets", "redact_text", "redact_url", "url_secrets"]


def mask(secret: str | None) -> str:
    """A secret as it may be shown: its last 4 characters, and only when it is long.

    The one masking function (pages, settings, errors): "not set" when there is none.
    """
    if not secret:
        return "not set"
    return "…" + secret[-4:] if len(secret) > 8 else "…"


_URL_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>\\]+")
_HOOK_RE = re.compile(r"(/hooks/keda/)([^/\s?#\"'<>\\]+)")
_URL_PARTS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?:(?P<userinfo>[^/?#@]*)@)?(?P<rest>.*)", re.S
)
# A path segment this long, with letters and digits, is taken for a token (url_secrets only).
_TOKEN_SEGMENT = re.compile(r"(?=.*[A-Za-z])(?=.*[0-9])[A-Za-z0-9_\-.~%]{16,}")


def _masked(value: str) -> str:
    """``mask``, but leaves what is masked already (so redacting twice changes nothing)."""
    return value if not value or value.startswith("…") else mask(value)


def _mask_query(query: str) -> str:
    parts = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        parts.append(f"{name}={_masked(value)}" if eq else _masked(name))
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with its secrets masked: user:password@, the receiver's token, query values and
    the fragment (each keeps its last 4 characters at most). Scheme, host and path stay, so the
    message still says which address was meant."""
    m = _URL_PARTS.match(url)
    if m is None:
        return _HOOK_RE.sub(lambda h: h.group(1) + _masked(h.group(2)), url)
    userinfo = m.group("userinfo")
    rest = m.group("rest")
    rest, hash_, fragment = rest.partition("#")
    path, q, query = rest.partition("?")
    path = _HOOK_RE.sub(lambda h: h.group(1) + _masked(h.group(2)), path)
    out = m.group("scheme") + (f"{_masked(userinfo)}@" if userinfo is not None else "") + path
    if q:
        out += "?" + _mask_query(query)
    if hash_:
        out += "#" + _masked(fragment)
    return out


def redact_text(text: str) -> str:
    """Every URL in ``text`` through :func:`redact_url`, and any ``/hooks/keda/<token>``."""
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    return _HOOK_RE.sub(lambda h: h.group(1) + _masked(h.group(2)), text)


def url_secrets(url: str | None) -> list[str]:
    """The secret parts of a URL one knows (a callback URL): to mask wherever they appear,
    even in a form :func:`redact_text` would not recognise (percent-encoded, cut short)."""
    if not url:
        return []
    m = _URL_PARTS.match(url)
    if m is None:
        return []
    found = []
    userinfo = m.group("userinfo")
    if userinfo:
        found += [userinfo, *userinfo.split(":", 1)[1:]]
    rest, _, fragment = m.group("rest").partition("#")
    path, _, query = rest.partition("?")
    found += [h.group(2) for h in _HOOK_RE.finditer(path)]
    found += [seg for seg in path.split("/")[1:] if _TOKEN_SEGMENT.fullmatch(seg)]
    found += [pair.partition("=")[2] or pair for pair in query.split("&") if pair]
    found.append(fragment)
    # Longest first, so that a secret containing another is masked whole.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each given secret masked, then every URL secret (:func:`redact_text`)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask(secret))
    return redact_text(text)
