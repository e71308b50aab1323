"""Typed rows the ledger returns (frozen dataclasses; money stays in integer micro-units)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import Result, Row

from kedacore.api.types import FINAL_STATUSES
from kedacore.money import from_micros


class _FromRow:
    """Build a dataclass from a result row holding at least its fields."""

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        """The record of one result row."""
        mapping = row._mapping
        return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LedgerMessage(_FromRow):
    """One message as the ledger knows it."""

    msgid: str
    task_id: str
    campaign_id: int | None
    recipient: str
    country: str
    sender: str | None
    status: str
    segments: int | None
    cost_micros: int | None
    estimated_micros: int | None
    currency: str
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    final_at: datetime | None
    delivery_ms: int | None
    updated_at: datetime
    clicks: int
    last_click_at: datetime | None
    source: str

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def cost(self) -> Decimal | None:
        """The charged amount, once the service has reported it."""
        return from_micros(self.cost_micros) if self.cost_micros is not None else None


@dataclass(frozen=True, slots=True)
class LedgerTask(_FromRow):
    """One send request: its task id, what it cost and how many recipients it had."""

    task_id: str
    campaign_id: int | None
    country: str
    sender: str | None
    content: str
    recipients: int
    segments: int
    debited_micros: int
    currency: str
    client_ref: str | None
    created_at: datetime

    @property
    def debited(self) -> Decimal:
        return from_micros(self.debited_micros)


@dataclass(frozen=True, slots=True)
class LedgerEvent(_FromRow):
    """One callback as received (deduplicated), for a message's timeline."""

    id: int
    event_id: str
    msgid: str
    status: str
    payload: str
    occurred_at: datetime | None
    received_at: datetime
    outcome: str

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.payload)


@dataclass(frozen=True, slots=True)
class StatusLookup(_FromRow):
    """One answer of the status API, as recorded."""

    id: int
    msgid: str
    status: str
    looked_up_at: datetime
    result: str


@dataclass(frozen=True, slots=True)
class Campaign(_FromRow):
    """A campaign and its totals."""

    id: int
    name: str
    template: str
    sender: str | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    status: str
    recipients: int
    batches: int
    estimated_micros: int
    debited_micros: int
    currency: str
    error: str | None
    scheduled_at: datetime | None = None  # when its first part goes (None: at once)


@dataclass(frozen=True, slots=True)
class CampaignBatch(_FromRow):
    """One planned request of a campaign (up to 1,000 recipients of one country and text)."""

    id: int
    campaign_id: int
    seq: int
    country: str
    sender: str | None
    content: str
    recipients: tuple[str, ...]
    client_ref: str
    state: str
    task_id: str | None
    estimated_micros: int
    debited_micros: int | None
    attempts: int
    error: str | None
    attempted_at: datetime | None = None  # the request whose fate is unknown went out then
    not_before: datetime | None = None  # scheduled: sent from then (UTC; migration 0006)

    @property
    def uncertain(self) -> bool:
        """Sent status unknown: its answer was lost more than 23 h ago (check before resending)."""
        return self.state == "uncertain"

    @classmethod
    def from_row(cls, row: Row[Any]) -> CampaignBatch:
        """The batch of one result row (its recipients decoded from JSON)."""
        if row._fields == _BATCH_FIELDS:  # the ledger's own queries: by position
            return cls._by_position(row)
        mapping = {f.name: row._mapping[f.name] for f in fields(cls)}
        mapping["recipients"] = tuple(json.loads(mapping["recipients"]))
        return cls(**mapping)

    @classmethod
    def from_result(cls, result: Result[Any]) -> list[CampaignBatch]:
        """Every batch of a result; its columns are looked at once, not once per row
        (``Row._fields`` is computed afresh on each call: a third of the cost of 10,000)."""
        if tuple(result.keys()) == _BATCH_FIELDS:
            return [cls._by_position(row) for row in result.all()]
        return [cls.from_row(row) for row in result]

    @classmethod
    def _by_position(cls, row: Row[Any]) -> CampaignBatch:
        values = list(row)
        values[_RECIPIENTS_AT] = tuple(json.loads(values[_RECIPIENTS_AT]))
        return cls(*values)


_BATCH_FIELDS = tuple(f.name for f in fields(CampaignBatch))
_RECIPIENTS_AT = _BATCH_FIELDS.index("recipients")


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    """What a campaign engine asks the ledger to plan: one future send request."""

    country: str
    content: str
    recipients: tuple[str, ...]
    estimated_micros: int = 0
    sender: str | None = None
    not_before: datetime | None = None  # scheduled: not sent before this (UTC); None: now


@dataclass(frozen=True, slots=True)
class CapChange:
    """One field of the daily caps changed by someone (values decoded from JSON)."""

    id: int
    change_id: str
    changed_at: datetime
    changed_by: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class LedgerSend:
    """One send of the console's Send page: pending, sent or refused (kedacore.ledger.sends)."""

    id: int
    client_ref: str
    state: str
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    session: str | None
    country: str
    sender: str | None
    content: str
    recipients: tuple[str, ...]
    recipient_count: int
    track_click: bool
    estimated_micros: int | None
    currency: str
    task_id: str | None
    debited_micros: int | None
    error_code: str | None
    error: str | None
    attempts: int
    test: bool = False  # a campaign's test send (New campaign → Send a test)

    @property
    def pending(self) -> bool:
        """Sent out, no answer recorded (yet): it may or may not have been accepted."""
        return self.state == "pending"

    @property
    def awaiting(self) -> bool:
        """Over the approval threshold: nothing sent until another member approves it."""
        return self.state == "awaiting"

    @property
    def estimated(self) -> Decimal | None:
        return from_micros(self.estimated_micros) if self.estimated_micros is not None else None

    @property
    def debited(self) -> Decimal | None:
        return from_micros(self.debited_micros) if self.debited_micros is not None else None

    @classmethod
    def from_row(cls, row: Row[Any]) -> LedgerSend:
        """The send of one result row (its recipients decoded from JSON)."""
        mapping = {f.name: row._mapping[f.name] for f in fields(cls)}
        mapping["recipients"] = tuple(json.loads(mapping["recipients"]))
        mapping["track_click"] = bool(mapping["track_click"])
        mapping["test"] = bool(mapping["test"])
        return cls(**mapping)


@dataclass(frozen=True, slots=True)
class Approval(_FromRow):
    """A campaign or a send waiting for (or decided by) a second person (maker–checker);
    ``summary`` says what it is in one line (kedacore.ledger.approvals)."""

    id: int
    kind: str  # campaign / send
    ref: str  # the campaign's id, or the send's clientRef
    summary: str
    requested_by: str
    requested_at: datetime
    estimate_micros: int
    threshold_micros: int
    currency: str
    state: str  # waiting / approved / rejected / withdrawn
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None

    @property
    def waiting(self) -> bool:
        return self.state == "waiting"

    @property
    def estimate(self) -> Decimal:
        return from_micros(self.estimate_micros)

    @property
    def threshold(self) -> Decimal:
        return from_micros(self.threshold_micros)

    @property
    def campaign_id(self) -> int | None:
        return int(self.ref) if self.kind == "campaign" and self.ref.isdigit() else None
