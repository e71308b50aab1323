"""The rows a send's answer becomes: one ``tasks`` row and one ``messages`` row per recipient.

Both write paths build them here — ``Ledger.record_send`` / ``mark_batch_sent`` one send at a
time, ``mark_batches_sent`` a group of a campaign's answers in a few statements — so the two
cannot drift apart (tests/kedacore/campaign/test_campaign_ledger.py compares the tables they
write). Whoever inserts these rows also adds them to the rollup (``rollup.add_rows``): every
write of ``messages`` goes through the rollup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kedacore.api.types import SendResult
from kedacore.money import to_micros


@dataclass(frozen=True, slots=True)
class Send:
    """What was sent, besides the answer: the facts its task and message rows repeat."""

    country: str
    sender: str | None
    content: str
    campaign_id: int | None = None
    client_ref: str | None = None


def split_micros(total: int, parts: int) -> list[int]:
    """``total`` split in ``parts`` integer shares that add up to it exactly."""
    share, rest = divmod(total, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


def estimates(result: SendResult, estimated_micros: int | Sequence[int] | None) -> list[int]:
    """One estimate per message: the task's (by default the amount debited) split exactly,
    or one given per message in ``result.messages`` order."""
    count = len(result.messages)
    if estimated_micros is None or isinstance(estimated_micros, int):
        total = to_micros(result.debited_amount) if estimated_micros is None else estimated_micros
        return split_micros(total, count) if count else []
    given = list(estimated_micros)
    if len(given) != count:
        raise ValueError(f"{len(given)} estimates for {count} messages")
    return given


def task_row(
    result: SendResult, send: Send, created: datetime, debited_micros: int | None = None
) -> dict[str, Any]:
    """The ``tasks`` row of a send (``debited_micros``: the debited amount's, if known)."""
    if debited_micros is None:
        debited_micros = to_micros(result.debited_amount)
    return {
        "task_id": result.task_id,
        "campaign_id": send.campaign_id,
        "country": send.country.upper(),
        "sender": send.sender,
        "content": send.content,
        "recipients": len(result.messages),
        "segments": result.segments,
        "debited_micros": debited_micros,
        "currency": result.currency,
        "client_ref": send.client_ref,
        "created_at": created,
        "day": created.date(),
    }


def message_rows(
    result: SendResult,
    send: Send,
    estimated: Sequence[int],
    created: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """The ``messages`` rows of a send, all ``QUEUED`` (``estimated``: from :func:`estimates`).

    Per-message ``segments`` only when the task's total divides evenly by its recipients.
    """
    count = len(result.messages)
    segments = result.segments // count if count and result.segments % count == 0 else None
    return [
        {
            "msgid": m.msgid,
            "task_id": result.task_id,
            "campaign_id": send.campaign_id,
            "recipient": m.recipient,
            "country": send.country.upper(),
            "sender": send.sender,
            "status": "QUEUED",
            "segments": segments,
            "estimated_micros": estimate,
            "currency": result.currency,
            "created_at": created,
            "day": created.date(),
            "updated_at": now,
            "clicks": 0,
            "source": "send",
        }
        for m, estimate in zip(result.messages, estimated, strict=True)
    ]
