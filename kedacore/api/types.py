"""Typed results of the KedaSMS API (frozen dataclasses; the wire's camelCase stays at the wire)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from kedacore.redaction import mask
from kedacore.wiretime import parse_time

FINAL_STATUSES = frozenset({"DELIVERED", "UNDELIVERED", "FAILED"})
STATUSES = ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED")


def parse_money(value: Any) -> Decimal | None:
    """Money from the wire (a JSON number read with ``parse_float=Decimal``, or a string)."""
    if value is None:
        return None
    if isinstance(value, float):  # only if a caller parsed JSON without parse_float=Decimal
        return Decimal(repr(value))
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class SentMessage:
    msgid: str
    recipient: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """What ``POST /sms/send`` answered: the task, the amount frozen, one msgid per recipient."""

    task_id: str
    message: str
    debited_amount: Decimal
    currency: str
    segments: int
    messages: tuple[SentMessage, ...]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SendResult:
        return cls(
            task_id=data["taskId"],
            message=data.get("message", ""),
            debited_amount=parse_money(data["debitedAmount"]) or Decimal(0),
            currency=data.get("currency", "USD"),
            segments=int(data.get("segments", 0)),
            messages=tuple(
                SentMessage(m["msgid"], m["recipient"]) for m in data.get("messages", [])
            ),
        )


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """One message as the status API reports it."""

    msgid: str
    status: str
    recipient: str
    sender: str | None
    message: str | None
    task_id: str | None
    segments: int | None
    cost: Decimal | None
    created_time: datetime | None
    sent_time: datetime | None
    delivered_time: datetime | None
    updated_time: datetime | None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> MessageStatus:
        segments = data.get("segments")
        return cls(
            msgid=data["msgid"],
            status=data["status"],
            recipient=data.get("recipient", ""),
            sender=data.get("sender"),
            message=data.get("message"),
            task_id=data.get("taskId"),
            segments=int(segments) if segments is not None else None,
            cost=parse_money(data.get("cost")),
            created_time=parse_time(data.get("created_time")),
            sent_time=parse_time(data.get("sent_time")),
            delivered_time=parse_time(data.get("delivered_time")),
            updated_time=parse_time(data.get("updated_time")),
        )


@dataclass(frozen=True, slots=True)
class StatusBatch:
    """One batch lookup (our gateway's extension ``POST /sms/status/batch``).

    ``messages`` are the messages found, in the order asked; ``not_found`` the msgids the
    service has no message for (for this account: another account's msgid is not found).
    """

    messages: tuple[MessageStatus, ...]
    not_found: tuple[str, ...]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> StatusBatch:
        missing = data.get("notFound") or ()
        if not isinstance(missing, list | tuple):
            raise TypeError(f"expected a list of notFound msgids, got {type(missing).__name__}")
        return cls(
            messages=tuple(MessageStatus.from_wire(m) for m in data["messages"]),
            not_found=tuple(str(m) for m in missing),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    date: str
    sms_sent: int
    spend: Decimal
    frozen: Decimal


@dataclass(frozen=True, slots=True)
class Alert:
    triggered: bool
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Limits:
    """Daily caps (None = no cap), today's usage and the alert state."""

    daily_sms_cap: int | None
    daily_spend_cap: Decimal | None
    alert_threshold: Decimal
    block_on_limit: bool
    usage: Usage
    alert: Alert

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Limits:
        usage = data.get("usage") or {}
        alert = data.get("alert") or {}
        cap = data.get("dailySmsCap")
        return cls(
            daily_sms_cap=int(cap) if cap is not None else None,
            daily_spend_cap=parse_money(data.get("dailySpendCap")),
            alert_threshold=parse_money(data.get("alertThreshold")) or Decimal("0.8"),
            block_on_limit=bool(data.get("blockOnLimit", False)),
            usage=Usage(
                date=usage.get("date", ""),
                sms_sent=int(usage.get("smsSent", 0)),
                spend=parse_money(usage.get("spend")) or Decimal(0),
                frozen=parse_money(usage.get("frozen")) or Decimal(0),
            ),
            alert=Alert(triggered=bool(alert.get("triggered")), at=parse_time(alert.get("at"))),
        )


@dataclass(frozen=True, slots=True)
class Balance:
    balance: Decimal
    frozen: Decimal
    currency: str

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Balance:
        return cls(
            balance=parse_money(data["balance"]) or Decimal(0),
            frozen=parse_money(data.get("frozen")) or Decimal(0),
            currency=data.get("currency", "USD"),
        )


@dataclass(frozen=True, slots=True)
class Pricing:
    """Price per segment by ISO country code."""

    currency: str
    prices: dict[str, Decimal]

    def price_for(self, country_code: str) -> Decimal | None:
        return self.prices.get(country_code.upper())

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Pricing:
        return cls(
            currency=data.get("currency", "USD"),
            prices={
                c["countryCode"]: parse_money(c["pricePerSegment"]) or Decimal(0)
                for c in data.get("countries", [])
            },
        )


@dataclass(frozen=True, slots=True)
class ShortLink:
    """A short link and its clicks; ``msgid`` and ``recipient`` are set for the links that
    ``trackClick`` made for one message (our service names them; others may not)."""

    code: str
    short_url: str
    url: str
    title: str | None
    created_at: datetime | None
    clicks: int
    unique_clicks: int
    last_click_at: datetime | None
    msgid: str | None = None
    recipient: str | None = None

    @property
    def tracking(self) -> bool:
        """Made by ``trackClick`` for one message (not by ``shortlinks.create``)."""
        return self.msgid is not None

    @property
    def kind(self) -> str:
        """``"tracking"`` or ``"manual"`` (the ``kind`` filter of ``shortlinks.list``)."""
        return "tracking" if self.tracking else "manual"

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ShortLink:
        return cls(
            code=data["code"],
            short_url=data["shortUrl"],
            url=data["url"],
            title=data.get("title"),
            created_at=parse_time(data.get("createdAt")),
            clicks=int(data.get("clicks", 0)),
            unique_clicks=int(data.get("uniqueClicks", 0)),
            last_click_at=parse_time(data.get("lastClickAt")),
            msgid=data.get("msgid") or None,
            recipient=data.get("recipient") or None,
        )


@dataclass(frozen=True, slots=True)
class ShortLinkPage:
    """One page of ``GET /shortlinks``: its links, how many match in all, where the next starts.

    ``paged`` is False when the service answered every link at once (it does not page): the
    client then filtered, sorted and cut the page itself, with the same result.
    """

    links: tuple[ShortLink, ...]
    total: int
    offset: int
    limit: int
    next_offset: int | None
    paged: bool = True


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration waiting for its e-mail to be verified."""

    email: str
    message: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """The API key and encryption key, shown once after verification."""

    email: str
    api_key: str = field(repr=False)
    encryption_key: str = field(repr=False)

    def __repr__(self) -> str:  # never print secrets whole
        key = mask(self.api_key)
        return f"Credentials(email={self.email!r}, api_key='{key}', encryption_key='…')"
