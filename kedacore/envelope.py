"""The KedaSMS request envelope: AES-256-GCM with the timestamp as associated data.

Byte-for-byte the construction of the seed's Python, Java, Go and PHP examples:
a fresh 12-byte IV per request, AAD = the Unix timestamp as an 8-byte big-endian
unsigned integer, ``cipherText`` = base64(ciphertext || 16-byte tag).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

IV_BYTES = 12
KEY_BYTES = 32
TAG_BYTES = 16
WINDOW_SECONDS = 300


class EnvelopeError(Exception):
    """A body that cannot be opened; ``code`` is the wire error code of DESIGN.md."""

    code = "1004"


class MalformedEnvelope(EnvelopeError):
    code = "1004"


class StaleTimestamp(EnvelopeError):
    code = "1002"


class DecryptionFailed(EnvelopeError):
    code = "1005"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed (still encrypted) request body."""

    api_key: str = field(repr=False)  # a secret: never in a log line or traceback
    timestamp: int
    iv: bytes
    ciphertext: bytes  # ciphertext || tag


def generate_key() -> str:
    """A new encryption key: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_key(key: str | bytes) -> bytes:
    """The 32 raw key bytes from the base64 text of an encryption key (or raw bytes).

    Raises:
        ValueError: the key is not base64 of exactly 32 bytes.
    """
    if isinstance(key, bytes) and len(key) == KEY_BYTES:
        return key
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("the encryption key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"the encryption key must be 32 bytes, got {len(raw)}")
    return raw


def aad_for(timestamp: int) -> bytes:
    """The associated data: the timestamp as an 8-byte big-endian unsigned integer."""
    return int(timestamp).to_bytes(8, "big")


def encode_payload(payload: Mapping[str, Any] | bytes | str) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def seal(
    payload: Mapping[str, Any] | bytes | str,
    key: str | bytes,
    *,
    api_key: str,
    timestamp: int | None = None,
    iv: bytes | None = None,
) -> dict[str, Any]:
    """Encrypt a payload into the four-field request body.

    Args:
        payload: a JSON-able mapping, or the exact plaintext bytes/str.
        key: the encryption key (base64 text or 32 raw bytes).
        api_key: sent in the clear; tells the server whose key to use.
        timestamp: Unix seconds (UTC); now by default.
        iv: 12 bytes; fresh random bytes by default. Only tests should pass one.
    """
    raw_key = decode_key(key)
    ts = int(time.time()) if timestamp is None else int(timestamp)
    nonce = os.urandom(IV_BYTES) if iv is None else iv
    if len(nonce) != IV_BYTES:
        raise ValueError(f"the IV must be {IV_BYTES} bytes, got {len(nonce)}")
    sealed = AESGCM(raw_key).encrypt(nonce, encode_payload(payload), aad_for(ts))
    return {
        "apiKey": api_key,
        "timestamp": ts,
        "iv": base64.b64encode(nonce).decode("ascii"),
        "cipherText": base64.b64encode(sealed).decode("ascii"),
    }


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise MalformedEnvelope(f"{field} must be a non-empty base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEnvelope(f"{field} is not valid base64") from None


def parse(body: Any) -> Envelope:
    """Check the shape of a request body (code 1004 on any fault), decrypting nothing."""
    if not isinstance(body, Mapping):
        raise MalformedEnvelope("the body must be a JSON object")
    missing = [f for f in ("apiKey", "timestamp", "iv", "cipherText") if f not in body]
    if missing:
        raise MalformedEnvelope("missing field(s): " + ", ".join(missing))
    api_key = body["apiKey"]
    if not isinstance(api_key, str) or not api_key:
        raise MalformedEnvelope("apiKey must be a non-empty string")
    ts = body["timestamp"]
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < 2**63:
        raise MalformedEnvelope("timestamp must be an integer number of Unix seconds")
    iv = _b64(body["iv"], "iv")
    if len(iv) != IV_BYTES:
        raise MalformedEnvelope(f"iv must be {IV_BYTES} bytes, got {len(iv)}")
    ct = _b64(body["cipherText"], "cipherText")
    if len(ct) < TAG_BYTES:
        raise MalformedEnvelope("cipherText is shorter than the GCM tag")
    return Envelope(api_key=api_key, timestamp=ts, iv=iv, ciphertext=ct)


def check_window(timestamp: int, *, now: float | None = None, window: int = WINDOW_SECONDS) -> None:
    """Refuse a timestamp more than ``window`` seconds from ``now`` (code 1002)."""
    current = time.time() if now is None else now
    if abs(current - timestamp) > window:
        raise StaleTimestamp(
            f"timestamp {timestamp} is more than {window} s from the server's clock "
            f"({int(current)}); check the client's clock (UTC Unix seconds)"
        )


def decrypt(envelope: Envelope, key: str | bytes) -> bytes:
    """The plaintext of an envelope (code 1005 when the key, tag or timestamp is wrong)."""
    try:
        return AESGCM(decode_key(key)).decrypt(
            envelope.iv, envelope.ciphertext, aad_for(envelope.timestamp)
        )
    except InvalidTag:
        raise DecryptionFailed(
            "decryption failed: wrong encryption key, altered body or altered timestamp"
        ) from None


def open_body(
    body: Any, key: str | bytes, *, now: float | None = None, window: int = WINDOW_SECONDS
) -> bytes:
    """Parse, check the window and decrypt a body; returns the plaintext bytes."""
    envelope = parse(body)
    check_window(envelope.timestamp, now=now, window=window)
    return decrypt(envelope, key)
