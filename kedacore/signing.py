"""Callback signatures: ``X-Keda-Signature`` and ``X-Keda-Timestamp`` (DESIGN.md, "Callbacks").

The signature is the lower-case hex HMAC-SHA256, keyed with the 32 raw bytes of the
account's encryption key (not its base64 text), of the UTF-8 bytes of
``"{timestamp}.{body}"``, where ``timestamp`` is the ``X-Keda-Timestamp`` value in Unix
seconds and ``body`` the exact request body.

Standard library only: the gateway signs with it and the console's receiver
(``kedacore.webhooks``) checks with it, without either pulling in the other's framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300
SIGNING_KEY_BYTES = 32


def sign_event(body: bytes, timestamp: int | str, key: bytes) -> str:
    """The X-Keda-Signature of a callback body: hex HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_problem(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    key: bytes,
    *,
    tolerance: int | None,
    now: float | None,
) -> str | None:
    """Why a signature is not acceptable, or None when it is."""
    if not signature:
        return "the X-Keda-Signature header is missing"
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "X-Keda-Timestamp must be the signing time in Unix seconds"
    if tolerance is not None:
        skew = int(timestamp) - (time.time() if now is None else now)
        if abs(skew) > tolerance:
            return (
                f"X-Keda-Timestamp is {abs(skew):.0f} s away from this server's clock "
                f"(at most {tolerance} s allowed)"
            )
    expected = sign_event(body, timestamp, key)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        return "X-Keda-Signature does not match the body"
    return None


def verify_signature(
    body: bytes,
    timestamp: int | str | None,
    signature: str | None,
    key: bytes,
    *,
    tolerance: int | None = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` signs ``body`` at ``timestamp`` (within ``tolerance`` s of now)."""
    stamp = None if timestamp is None else str(timestamp)
    return signature_problem(body, stamp, signature, key, tolerance=tolerance, now=now) is None


def signing_key_bytes(key: bytes | str) -> bytes:
    """The 32 raw key bytes, from themselves or from the base64 text of the encryption key."""
    if isinstance(key, str):
        try:
            key = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the signing key must be base64 of 32 bytes") from None
    if len(key) != SIGNING_KEY_BYTES:
        raise ValueError(f"the signing key must be {SIGNING_KEY_BYTES} bytes, not {len(key)}")
    return key
