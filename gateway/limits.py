"""Daily caps, usage and the alert: the rules of DESIGN.md in integer arithmetic.

Usage counts per UTC day: ``smsSent`` = messages accepted that day, ``spend`` = what those
messages froze or were charged (a FAILED message leaves both). The threshold is stored in
millionths (0.8 → 800000) so that "usage reaches threshold × cap" is an exact integer test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.sqlite import insert

from gateway.clock import iso, to_ms, utc_day
from gateway.db import Database, accounts, daily_usage
from gateway.errors import ApiError, field_error, invalid
from gateway.sql import Prepared
from kedacore.money import MAX_MICROS, MoneyError, json_number, to_micros

MILLIONTHS = 1_000_000
MAX_SMS_CAP = 10**12
LIMIT_FIELDS = ("dailySmsCap", "dailySpendCap", "alertThreshold", "blockOnLimit")


@dataclass(frozen=True, slots=True)
class Caps:
    sms_cap: int | None
    spend_cap: int | None  # micro-units
    threshold: int  # millionths, 1..1_000_000
    block: bool


@dataclass(frozen=True, slots=True)
class Usage:
    sms_sent: int = 0
    spend: int = 0
    frozen: int = 0
    alert_at: int | None = None


CAP_COLUMNS = (
    accounts.c.daily_sms_cap,
    accounts.c.daily_spend_cap_micros,
    accounts.c.alert_threshold_micros,
    accounts.c.block_on_limit,
)


def caps_of(row: Any) -> Caps:
    return Caps(
        row.daily_sms_cap,
        row.daily_spend_cap_micros,
        row.alert_threshold_micros,
        bool(row.block_on_limit),
    )


_READ_USAGE = Prepared(
    select(
        daily_usage.c.sms_sent,
        daily_usage.c.spend_micros,
        daily_usage.c.frozen_micros,
        daily_usage.c.alert_at,
    ).where(
        daily_usage.c.account_id == bindparam("account_id"), daily_usage.c.day == bindparam("day")
    )
)
_UPSERT = insert(daily_usage)
_WRITE_USAGE = Prepared(
    _UPSERT.on_conflict_do_update(
        index_elements=["account_id", "day"],
        set_={
            name: _UPSERT.excluded[name]
            for name in ("sms_sent", "spend_micros", "frozen_micros", "alert_at")
        },
    )
)


def read_usage(conn: Connection, account_id: int, day: str) -> Usage:
    row = _READ_USAGE.first(conn, {"account_id": account_id, "day": day})
    return Usage(*row) if row is not None else Usage()


def reaches(used: int, cap: int | None, threshold: int) -> bool:
    """Whether usage has reached threshold × cap (exactly: used × 10⁶ ≥ threshold × cap)."""
    return cap is not None and used > 0 and used * MILLIONTHS >= threshold * cap


def alert_due(caps: Caps, sms_sent: int, spend: int) -> bool:
    return reaches(sms_sent, caps.sms_cap, caps.threshold) or reaches(
        spend, caps.spend_cap, caps.threshold
    )


def check_caps(caps: Caps, usage: Usage, messages: int, price: int) -> None:
    """Refuse (3002/3003) a send that would take usage above a cap, with ``blockOnLimit``."""
    if not caps.block:
        return
    if caps.sms_cap is not None and usage.sms_sent + messages > caps.sms_cap:
        raise ApiError(
            "3002",
            f"daily SMS cap reached: {usage.sms_sent} sent today, cap {caps.sms_cap}, "
            f"this request has {messages}",
            {"dailySmsCap": caps.sms_cap, "smsSent": usage.sms_sent, "requested": messages},
        )
    if caps.spend_cap is not None and usage.spend + price > caps.spend_cap:
        raise ApiError(
            "3003",
            "daily spend cap reached: this request would take today's spend above the cap",
            {
                "dailySpendCap": json_number(caps.spend_cap),
                "spend": json_number(usage.spend),
                "requested": json_number(price),
            },
        )


def write_usage(conn: Connection, account_id: int, day: str, usage: Usage) -> None:
    """Store a day's usage (computed from a ``read_usage`` in this same transaction)."""
    _WRITE_USAGE.run(
        conn,
        {
            "account_id": account_id,
            "day": day,
            "sms_sent": usage.sms_sent,
            "spend_micros": usage.spend,
            "frozen_micros": usage.frozen,
            "alert_at": usage.alert_at,
        },
    )


def _money(name: str, value: Any, errors: list) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        errors.append(field_error(name, "must be a non-negative amount or null", value))
        return None
    try:
        micros = to_micros(value)
    except MoneyError as exc:
        errors.append(field_error(name, str(exc), value if isinstance(value, str) else None))
        return None
    if not 0 <= micros <= MAX_MICROS:
        errors.append(field_error(name, "must be a non-negative amount or null", str(value)))
        return None
    return micros


def parse_limits_update(body: dict) -> dict[str, Any]:
    """Column values for a PUT body (any subset of the four fields), or 2001."""
    errors: list[dict] = []
    values: dict[str, Any] = {}
    for name in body:
        if name not in (*LIMIT_FIELDS, "apiKey"):
            errors.append(field_error(name, "unknown field; expected " + ", ".join(LIMIT_FIELDS)))
    if "dailySmsCap" in body:
        cap = body["dailySmsCap"]
        if cap is None or (
            isinstance(cap, int) and not isinstance(cap, bool) and 0 <= cap <= MAX_SMS_CAP
        ):
            values["daily_sms_cap"] = cap
        else:
            errors.append(field_error("dailySmsCap", "must be a non-negative integer or null", cap))
    if "dailySpendCap" in body:
        cap = body["dailySpendCap"]
        micros = None if cap is None else _money("dailySpendCap", cap, errors)
        if cap is None or micros is not None:
            values["daily_spend_cap_micros"] = micros
    if "alertThreshold" in body:
        raw = body["alertThreshold"]
        bad = isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str))
        try:
            millionths = None if bad else to_micros(raw)
        except MoneyError:
            millionths = None
        if millionths is None or not 0 < millionths <= MILLIONTHS:
            errors.append(
                field_error(
                    "alertThreshold",
                    "must be a number above 0 and at most 1 (6 decimals at most)",
                    raw if isinstance(raw, (str, int)) else None,
                )
            )
        else:
            values["alert_threshold_micros"] = millionths
    if "blockOnLimit" in body:
        if isinstance(body["blockOnLimit"], bool):
            values["block_on_limit"] = body["blockOnLimit"]
        else:
            errors.append(field_error("blockOnLimit", "must be true or false"))
    if errors:
        raise invalid(errors)
    return values


class Limits:
    """``GET``/``PUT /external/accounts/limits``."""

    def __init__(self, db: Database, clock: Any) -> None:
        self.db = db
        self.clock = clock

    def get(self, account_id: int) -> dict:
        now = to_ms(self.clock())
        with self.db.read() as conn:
            return self._wire(conn, account_id, utc_day(now))

    def update(self, account_id: int, body: dict) -> dict:
        """Apply a subset of the caps; the very next request obeys them."""
        values = parse_limits_update(body)
        now = to_ms(self.clock())
        day = utc_day(now)
        with self.db.write() as conn:
            if values:
                conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
            # A lowered cap may put today's usage past the threshold already: raise it now.
            row = conn.execute(select(*CAP_COLUMNS).where(accounts.c.id == account_id)).one()
            usage = read_usage(conn, account_id, day)
            if usage.alert_at is None and alert_due(caps_of(row), usage.sms_sent, usage.spend):
                write_usage(conn, account_id, day, replace(usage, alert_at=now))
            return self._wire(conn, account_id, day)

    def _wire(self, conn: Connection, account_id: int, day: str) -> dict:
        row = conn.execute(
            select(*CAP_COLUMNS, accounts.c.currency).where(accounts.c.id == account_id)
        ).one()
        usage = read_usage(conn, account_id, day)
        spend_cap = row.daily_spend_cap_micros
        return {
            "dailySmsCap": row.daily_sms_cap,
            "dailySpendCap": None if spend_cap is None else json_number(spend_cap),
            "alertThreshold": json_number(row.alert_threshold_micros),
            "blockOnLimit": bool(row.block_on_limit),
            "currency": row.currency,
            "usage": {
                "date": day,
                "smsSent": usage.sms_sent,
                "spend": json_number(usage.spend),
                "frozen": json_number(usage.frozen),
            },
            "alert": {"triggered": usage.alert_at is not None, "at": iso(usage.alert_at)},
        }
