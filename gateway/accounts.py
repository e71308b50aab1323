"""Accounts: creation (command line), registration and e-mail verification, top-ups, keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from gateway.clock import to_ms
from gateway.db import Database, accounts, topups, verification_tokens
from gateway.errors import ApiError, field_error, invalid
from gateway.mail import write_mail
from kedacore.envelope import generate_key
from kedacore.money import MAX_MICROS, json_number

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_TTL_MS = 24 * 3600 * 1000
# scrypt cost: about 50 ms and 16 MiB per hash, far above what brute force can afford.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AccountError(ValueError):
    """A command-line account operation that cannot be done (message for the operator)."""


@dataclass(frozen=True, slots=True)
class AccountKey:
    """What a request's API key unlocks: the account and its encryption key."""

    id: int
    encryption_key: str = field(repr=False)  # a secret: never in a log line or traceback
    currency: str


def sha256_hex(secret: str) -> str:
    """What is stored of API keys and verification tokens: their SHA-256, in hex.

    Never raises: a string UTF-8 cannot encode (a lone surrogate) hashes to a digest that
    no issued key or token (all ASCII) has, so it is simply unknown (1001, 4004).
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_api_key() -> str:
    return "keda_" + secrets.token_hex(16)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex); slow on purpose, so call it off the event loop."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` string (constant-time compare)."""
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate.hex(), digest)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_registration(body: Any) -> tuple[str, str]:
    """The e-mail and password of a registration body, or a 2001 listing what is wrong."""
    if not isinstance(body, dict):
        raise invalid([field_error("body", "must be a JSON object")])
    errors = []
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.match(email.strip()):
        errors.append(field_error("email", "must be an e-mail address", email))
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        errors.append(field_error("password", f"must be {MIN_PASSWORD} to 1024 characters"))
    if errors:
        raise invalid(errors)
    return normalize_email(email), password  # type: ignore[union-attr]


class Accounts:
    """Account rows and their money; every method is one short transaction."""

    def __init__(self, db: Database, clock: Any, currency: str = "USD") -> None:
        self.db = db
        self.clock = clock
        self.currency = currency
        # API key hash → key. Keys never change once issued, so a positive cache is safe;
        # misses (new accounts made by another process) fall through to the database.
        self._keys: dict[str, AccountKey] = {}

    def _now(self) -> int:
        return to_ms(self.clock())

    def create(self, email: str, balance_micros: int, currency: str | None = None) -> dict:
        """A verified account with its keys; returns the one-time credentials (wire names)."""
        email = normalize_email(email)
        if not EMAIL_RE.match(email) or len(email) > 254:
            raise AccountError(f"not an e-mail address: {email!r}")
        if not 0 <= balance_micros <= MAX_MICROS:
            raise AccountError("the balance must be a non-negative amount")
        currency = (currency or self.currency).upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise AccountError(f"not an ISO 4217 currency code: {currency!r}")
        api_key, encryption_key = new_api_key(), generate_key()
        now = self._now()
        with self.db.write() as conn:
            if conn.execute(select(accounts.c.id).where(accounts.c.email == email)).first():
                raise AccountError(f"an account for {email} already exists")
            account_id = conn.execute(
                insert(accounts).values(
                    email=email,
                    verified=True,
                    api_key_hash=sha256_hex(api_key),
                    encryption_key=encryption_key,
                    currency=currency,
                    balance_micros=balance_micros,
                    topped_up_micros=balance_micros,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            if balance_micros:
                conn.execute(
                    insert(topups).values(
                        account_id=account_id, amount_micros=balance_micros, created_at=now
                    )
                )
        return {
            "email": email,
            "apiKey": api_key,
            "encryptionKey": encryption_key,
            "balance": json_number(balance_micros),
            "currency": currency,
        }

    def topup(self, email: str, amount_micros: int) -> dict:
        """Add money to an account's balance; returns ``{email, balance, frozen, currency}``."""
        email = normalize_email(email)
        if amount_micros <= 0:
            raise AccountError("the amount must be positive")
        with self.db.write() as conn:
            row = conn.execute(
                select(accounts.c.id, accounts.c.balance_micros).where(accounts.c.email == email)
            ).first()
            if row is None:
                raise AccountError(f"no account for {email}")
            if row.balance_micros + amount_micros > MAX_MICROS:
                raise AccountError("the balance would be too large")
            conn.execute(
                update(accounts)
                .where(accounts.c.id == row.id)
                .values(
                    balance_micros=accounts.c.balance_micros + amount_micros,
                    topped_up_micros=accounts.c.topped_up_micros + amount_micros,
                )
            )
            conn.execute(
                insert(topups).values(
                    account_id=row.id, amount_micros=amount_micros, created_at=self._now()
                )
            )
            after = conn.execute(
                select(
                    accounts.c.balance_micros, accounts.c.frozen_micros, accounts.c.currency
                ).where(accounts.c.id == row.id)
            ).one()
        return {
            "email": email,
            "balance": json_number(after.balance_micros),
            "frozen": json_number(after.frozen_micros),
            "currency": after.currency,
        }

    def by_api_key(self, api_key: str) -> AccountKey | None:
        """The verified account holding this API key, or None."""
        digest = sha256_hex(api_key)
        cached = self._keys.get(digest)
        if cached is not None:
            return cached
        with self.db.read() as conn:
            row = conn.execute(
                select(accounts.c.id, accounts.c.encryption_key, accounts.c.currency).where(
                    accounts.c.api_key_hash == digest, accounts.c.verified.is_(True)
                )
            ).first()
        if row is None:
            return None
        key = AccountKey(row.id, row.encryption_key, row.currency)
        self._keys[digest] = key
        return key

    def balance(self, account_id: int) -> dict:
        """``GET /external/accounts/balance`` data."""
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    accounts.c.balance_micros, accounts.c.frozen_micros, accounts.c.currency
                ).where(accounts.c.id == account_id)
            ).one()
        return {
            "balance": json_number(row.balance_micros),
            "frozen": json_number(row.frozen_micros),
            "currency": row.currency,
        }

    def money(self, email: str) -> dict[str, int]:
        """The four money columns in micro-units (operators and tests check the invariant)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    accounts.c.balance_micros,
                    accounts.c.frozen_micros,
                    accounts.c.charged_micros,
                    accounts.c.topped_up_micros,
                ).where(accounts.c.email == normalize_email(email))
            ).first()
        if row is None:
            raise AccountError(f"no account for {email}")
        return {
            "balance": row.balance_micros,
            "frozen": row.frozen_micros,
            "charged": row.charged_micros,
            "topped_up": row.topped_up_micros,
        }

    def register(self, email: str, password_hash: str, mail_folder: Path) -> dict:
        """Create (or refresh) an unverified account and mail it a single-use token."""
        token = secrets.token_urlsafe(24)
        now = self._now()
        with self.db.write() as conn:
            row = conn.execute(
                select(accounts.c.id, accounts.c.verified).where(accounts.c.email == email)
            ).first()
            if row is not None and row.verified:
                raise invalid([field_error("email", "is already registered and verified", email)])
            if row is None:
                account_id = conn.execute(
                    insert(accounts).values(
                        email=email,
                        password_hash=password_hash,
                        verified=False,
                        currency=self.currency,
                        created_at=now,
                    )
                ).inserted_primary_key[0]
            else:  # registering again before verifying: new password, new token
                account_id = row.id
                conn.execute(
                    update(accounts)
                    .where(accounts.c.id == account_id)
                    .values(password_hash=password_hash)
                )
                conn.execute(
                    delete(verification_tokens).where(
                        verification_tokens.c.account_id == account_id
                    )
                )
            conn.execute(
                insert(verification_tokens).values(
                    token_hash=sha256_hex(token),
                    account_id=account_id,
                    expires_at=now + TOKEN_TTL_MS,
                )
            )
            write_mail(
                conn,
                mail_folder,
                email,
                "Verify your KedaSMS e-mail address",
                verification_mail(email, token),
                now,
            )
        return {
            "email": email,
            "message": "Verification e-mail sent; open it and submit its token to "
            "/api/accounts/verify",
        }

    def verify(self, token: Any) -> dict:
        """Exchange a verification token (once) for the account's API and encryption keys."""
        if not isinstance(token, str) or not 10 <= len(token) <= 200:
            raise invalid([field_error("token", "must be the token from the e-mail")])
        now = self._now()
        api_key, encryption_key = new_api_key(), generate_key()
        with self.db.write() as conn:
            row = conn.execute(
                select(verification_tokens.c.account_id, accounts.c.email)
                .join(accounts, accounts.c.id == verification_tokens.c.account_id)
                .where(
                    verification_tokens.c.token_hash == sha256_hex(token),
                    verification_tokens.c.expires_at > now,
                )
            ).first()
            if row is None:
                raise ApiError("4004", "unknown, used or expired verification token")
            conn.execute(
                delete(verification_tokens).where(
                    verification_tokens.c.account_id == row.account_id
                )
            )
            conn.execute(
                update(accounts)
                .where(accounts.c.id == row.account_id)
                .values(
                    verified=True,
                    api_key_hash=sha256_hex(api_key),
                    encryption_key=encryption_key,
                )
            )
        return {"email": row.email, "apiKey": api_key, "encryptionKey": encryption_key}

    def prune_tokens(self) -> None:
        """Forget expired verification tokens."""
        with self.db.write() as conn:
            conn.execute(
                delete(verification_tokens).where(verification_tokens.c.expires_at <= self._now())
            )


def verification_mail(email: str, token: str) -> str:
    return (
        f"Hello {email},\n\n"
        "Confirm your e-mail address to receive your KedaSMS API key and encryption key.\n\n"
        f"Verification token: {token}\n\n"
        "Submit it once, within 24 hours:\n"
        '  POST /api/accounts/verify  {"token": "' + token + '"}\n\n'
        "The keys are shown once, in the answer to that request. Keep them secret.\n"
    )
