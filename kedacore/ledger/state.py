"""The no-regression rule as a pure function, and strict parsing of callback events.

A message's status only moves forward: ``QUEUED`` < ``SENT`` < a final status
(``DELIVERED``, ``UNDELIVERED``, ``FAILED``), and the first final status wins. Facts that an
event carries (``sent_time``, ``delivered_time``, the cost) fill what the ledger does not know
yet even when the event itself is too late to move the status, so any order of the same events
ends in the same row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kedacore.api.types import FINAL_STATUSES, MessageStatus
from kedacore.money import to_micros
from kedacore.wiretime import format_time, parse_time

RANK = {"QUEUED": 0, "SENT": 1, "DELIVERED": 2, "UNDELIVERED": 2, "FAILED": 2}
EVENT_STATUSES = ("SENT", "DELIVERED", "UNDELIVERED", "FAILED", "CLICKED")

MSGID_RE = re.compile(r"msg_[0-9a-f]{12,60}")
EVENT_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
COST_RE = re.compile(r"\d{1,9}(\.\d{1,6})?")
_MS = timedelta(milliseconds=1)
# Statuses whose reported cost is the charge (FAILED: released, 0); QUEUED is not charged yet.
_PRICED = frozenset({"SENT", "DELIVERED", "UNDELIVERED", "FAILED"})


class Outcome(StrEnum):
    """What applying one status, click or event did to the ledger."""

    APPLIED = "applied"  # the status moved forward (or a click was counted)
    STALE = "stale"  # too late to move the status; only missing facts were filled
    DUPLICATE = "duplicate"  # this event was seen before; nothing changed
    UNKNOWN = "unknown"  # no such msgid in the ledger (an event is kept to be replayed)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One fact about a message, from a callback, a status lookup or a click."""

    msgid: str
    status: str  # a status of STATUSES, or CLICKED
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    occurred_at: datetime | None = None  # when it happened: final_at, or the click's time
    cost_micros: int | None = None
    segments: int | None = None

    @classmethod
    def from_status(cls, status: MessageStatus) -> StatusUpdate:
        """The update a status-API answer stands for.

        Its cost counts only once the message is charged or released (SENT and after): the
        service reports ``cost`` 0 for a QUEUED message, which is "not charged yet", not
        "charged nothing" — taken as a cost, it would turn the pending estimate into 0.
        """
        occurred = status.updated_time
        if status.status == "DELIVERED":
            occurred = status.delivered_time or occurred
        elif status.status == "SENT":
            occurred = status.sent_time or occurred
        return cls(
            msgid=status.msgid,
            status=status.status,
            sent_at=status.sent_time,
            delivered_at=status.delivered_time,
            occurred_at=occurred,
            cost_micros=(
                to_micros(status.cost)
                if status.cost is not None and status.status in _PRICED
                else None
            ),
            segments=status.segments,
        )


@dataclass(frozen=True, slots=True)
class MessageState:
    """The columns of a message row that updates may change."""

    status: str
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    final_at: datetime | None = None
    delivery_ms: int | None = None
    cost_micros: int | None = None
    segments: int | None = None
    clicks: int = 0
    last_click_at: datetime | None = None


def merge(state: MessageState, update: StatusUpdate) -> tuple[MessageState, Outcome]:
    """The state after ``update``; never moves the status back, fills what is missing."""
    if update.status == "CLICKED":
        last = update.occurred_at
        if state.last_click_at is not None and (last is None or state.last_click_at > last):
            last = state.last_click_at
        return replace(state, clicks=state.clicks + 1, last_click_at=last), Outcome.APPLIED
    if update.status not in RANK:
        raise ValueError(f"not a message status: {update.status!r}")
    advance = RANK[update.status] > RANK.get(state.status, 0)
    status = update.status if advance else state.status
    final_at = state.final_at
    if advance and status in FINAL_STATUSES:
        final_at = update.occurred_at or update.delivered_at
    sent_at = state.sent_at or update.sent_at
    if sent_at is None and update.status == "SENT":
        sent_at = update.occurred_at
    delivered_at = state.delivered_at
    if status == "DELIVERED" and update.status == "DELIVERED" and delivered_at is None:
        delivered_at = update.delivered_at or update.occurred_at
        final_at = final_at or delivered_at
    if advance:
        cost = update.cost_micros if update.cost_micros is not None else state.cost_micros
    else:
        cost = state.cost_micros if state.cost_micros is not None else update.cost_micros
    delivery_ms = state.delivery_ms
    if delivered_at is not None and sent_at is not None:
        delivery_ms = max(0, (delivered_at - sent_at) // _MS)
    new = replace(
        state,
        status=status,
        sent_at=sent_at,
        delivered_at=delivered_at,
        final_at=final_at,
        delivery_ms=delivery_ms,
        cost_micros=cost,
        segments=update.segments if update.segments is not None else state.segments,
    )
    return new, Outcome.APPLIED if advance else Outcome.STALE


class EventError(ValueError):
    """A callback body that breaks the contract; ``errors`` lists (field, problem) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in errors))


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """A validated status or click callback, with the text it came as."""

    msgid: str
    status: str
    recipient: str
    sender: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    updated_at: datetime | None
    clicked_at: datetime | None
    cost_micros: int | None
    url: str | None
    payload: str
    event_id: str | None = None  # X-Keda-Event-Id
    emitted_at: datetime | None = None  # X-Keda-Timestamp, when there was one

    @property
    def own_time(self) -> datetime | None:
        """The time the body itself gives for what it reports (no header involved)."""
        return {
            "SENT": self.sent_at,
            "DELIVERED": self.delivered_at,
            "CLICKED": self.clicked_at,
        }.get(self.status, self.updated_at)

    @property
    def dedup_key(self) -> str:
        """The event id, or ``msgid:status:time`` from the body when the event has none."""
        if self.event_id:
            return self.event_id
        # Never the header timestamp: a retry is signed afresh and must still match.
        return f"{self.msgid}:{self.status}:{format_time(self.own_time) or ''}"

    def update(self, received_at: datetime) -> StatusUpdate:
        """The status update this event stands for."""
        return StatusUpdate(
            msgid=self.msgid,
            status=self.status,
            sent_at=self.sent_at,
            delivered_at=self.delivered_at,
            occurred_at=self.own_time or self.emitted_at or received_at,
            cost_micros=self.cost_micros,
        )


def _time(data: dict[str, Any], key: str, errors: list[tuple[str, str]]) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not TIME_RE.fullmatch(value):
        errors.append((key, "must be a UTC ISO-8601 time ending in Z, or null"))
        return None
    try:
        return parse_time(value)
    except ValueError:
        errors.append((key, f"not a valid time: {value!r}"))
        return None


def parse_event(
    data: Any,
    *,
    event_id: str | None = None,
    emitted_at: datetime | None = None,
    payload: str | None = None,
) -> CallbackEvent:
    """A CallbackEvent from a decoded JSON body; raises EventError naming every bad field."""
    if not isinstance(data, dict):
        raise EventError([("body", "must be a JSON object")])
    errors: list[tuple[str, str]] = []
    if event_id is not None and not EVENT_ID_RE.fullmatch(event_id):
        errors.append(("X-Keda-Event-Id", "must be 1-128 characters of A-Z a-z 0-9 . _ : -"))
    msgid = data.get("msgid")
    if not isinstance(msgid, str) or not MSGID_RE.fullmatch(msgid):
        errors.append(("msgid", "must be msg_ followed by 12 or more lower-case hex digits"))
    status = data.get("status")
    if status not in EVENT_STATUSES:
        errors.append(("status", f"must be one of {', '.join(EVENT_STATUSES)}"))
    recipient = data.get("recipient")
    if not isinstance(recipient, str) or not E164_RE.fullmatch(recipient):
        errors.append(("recipient", "must be an E.164 number such as +12065550123"))
    sender = data.get("sender")
    if sender is not None and (not isinstance(sender, str) or len(sender) > 32):
        errors.append(("sender", "must be a string of at most 32 characters, or null"))
    times = {key: _time(data, key, errors) for key in _TIME_KEYS}
    cost = data.get("cost")
    cost_micros = None
    if cost is not None:
        if isinstance(cost, str) and COST_RE.fullmatch(cost):
            cost_micros = to_micros(cost)
        else:
            errors.append(("cost", 'must be a decimal string such as "0.05"'))
    url = data.get("url")
    if status == "CLICKED":
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors.append(("url", "a click must carry the http(s) url that was visited"))
    elif status in EVENT_STATUSES and cost is None:
        errors.append(("cost", 'a status event must carry the charged cost ("0" if none)'))
    for key, status_needing_it in _REQUIRED_TIMES.items():
        if status == status_needing_it and times[key] is None and key not in _bad(errors):
            errors.append((key, f"is required for {status}"))
    if times["delivered_time"] is not None and status not in (None, "DELIVERED", "CLICKED"):
        errors.append(("delivered_time", "must be null unless the status is DELIVERED"))
    if errors:
        raise EventError(errors)
    return CallbackEvent(
        msgid=str(msgid),
        status=str(status),
        recipient=str(recipient),
        sender=sender,
        sent_at=times["sent_time"],
        delivered_at=times["delivered_time"],
        updated_at=times["updated_time"],
        clicked_at=times["clicked_time"],
        cost_micros=cost_micros,
        url=url if isinstance(url, str) else None,
        payload=payload if payload is not None else json.dumps(data, separators=(",", ":")),
        event_id=event_id,
        emitted_at=emitted_at,
    )


_TIME_KEYS = ("sent_time", "delivered_time", "updated_time", "clicked_time")
_REQUIRED_TIMES = {"sent_time": "SENT", "delivered_time": "DELIVERED", "clicked_time": "CLICKED"}


def _bad(errors: list[tuple[str, str]]) -> set[str]:
    return {field for field, _ in errors}
