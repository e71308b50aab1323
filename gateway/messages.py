"""The status calls, in the seed's shape: ``GET /sms/status`` (one message by msgid, or every
message of a task) and our extension ``POST /sms/status/batch`` (up to ``MAX_BATCH_IDS``
msgids in one request: the messages found, and the ids not found).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, func, literal_column, select

from gateway.carrier import CHARGED
from gateway.clock import iso
from gateway.db import Database, messages
from gateway.errors import field_error, invalid, not_found
from gateway.sql import Prepared
from kedacore.money import json_number

_COLUMNS = (
    messages.c.msgid,
    messages.c.task_id,
    messages.c.status,
    messages.c.recipient,
    messages.c.sender,
    messages.c.content,
    messages.c.segments,
    messages.c.price_micros,
    messages.c.created_at,
    messages.c.sent_at,
    messages.c.delivered_at,
    messages.c.updated_at,
)

# Compiled once: reconciliation asks about thousands of messages one at a time, and
# SQLAlchemy's per-call work was ten times SQLite's own (~300 µs against ~30 µs).
_BY_MSGID = Prepared(
    select(*_COLUMNS).where(
        messages.c.msgid == bindparam("msgid"), messages.c.account_id == bindparam("account_id")
    )
)
# Many msgids in one statement: the ids travel as one JSON array (one parameter, compiled once).
_BY_MSGIDS = Prepared(
    select(*_COLUMNS).where(
        messages.c.account_id == bindparam("account_id"),
        messages.c.msgid.in_(
            select(literal_column("value"))
            .select_from(func.json_each(bindparam("msgids")))
            .scalar_subquery()
        ),
    )
)
_BY_TASK = Prepared(
    select(*_COLUMNS)
    .where(
        messages.c.task_id == bindparam("task_id"),
        messages.c.account_id == bindparam("account_id"),
    )
    .order_by(messages.c.position)
)


MAX_BATCH_IDS = 1000  # msgids in one batch lookup (docs/protocol.md)
MAX_MSGID_LENGTH = 100  # longer than any msgid: refused rather than looked up
BATCH_BODY_LIMIT = 256 * 1024  # bytes: 1,000 of the longest ids fit with room to spare


def batch_msgids(body: Any) -> list[str]:
    """The msgids of a batch lookup's body ``{"msgids": [...]}``, each once, in order (2001)."""
    if not isinstance(body, dict):
        raise invalid([field_error("body", 'the body must be a JSON object: {"msgids": [...]}')])
    ids = body.get("msgids")
    if not isinstance(ids, list):
        raise invalid(
            [field_error("msgids", f"msgids must be a list of 1 to {MAX_BATCH_IDS} msgids")]
        )
    if not ids:
        raise invalid([field_error("msgids", "msgids must list at least one msgid")])
    if len(ids) > MAX_BATCH_IDS:
        raise invalid(
            [
                field_error(
                    "msgids",
                    f"msgids lists {len(ids)} msgids; at most {MAX_BATCH_IDS} in one request",
                )
            ]
        )
    errors = [
        field_error(
            f"msgids[{i}]",
            f"msgids[{i}] must be a msgid: a string of 1 to {MAX_MSGID_LENGTH} characters",
            value,
        )
        for i, value in enumerate(ids)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_MSGID_LENGTH
    ]
    if errors:
        raise invalid(errors)
    return list(dict.fromkeys(ids))


def status_wire(row: Any) -> dict:
    """A message as the status API shows it; ``cost`` is what has been charged so far."""
    return {
        "msgid": row.msgid,
        "taskId": row.task_id,
        "status": row.status,
        "recipient": row.recipient,
        "sender": row.sender,
        "message": row.content,
        "segments": row.segments,
        "cost": json_number(row.price_micros if row.status in CHARGED else 0),
        "created_time": iso(row.created_at),
        "sent_time": iso(row.sent_at),
        "delivered_time": iso(row.delivered_at),
        "updated_time": iso(row.updated_at),
    }


class Messages:
    """Status look-ups, always within one account: another's msgid is simply not found."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_msgid(self, account_id: int, msgid: str) -> dict:
        with self.db.read() as conn:
            row = _BY_MSGID.first(conn, {"msgid": msgid, "account_id": account_id})
        if row is None:
            raise not_found(f"message {msgid!r}")
        return status_wire(row)

    def by_msgids(self, account_id: int, msgids: list[str]) -> tuple[list[dict], list[str]]:
        """``(found, not_found)``: the messages among ``msgids`` in their order, the rest."""
        with self.db.read() as conn:
            rows = _BY_MSGIDS.all(conn, {"msgids": json.dumps(msgids), "account_id": account_id})
        by_id = {row.msgid: row for row in rows}
        found = [status_wire(by_id[m]) for m in msgids if m in by_id]
        return found, [m for m in msgids if m not in by_id]

    def by_task(self, account_id: int, task_id: str) -> list[dict]:
        with self.db.read() as conn:
            rows = _BY_TASK.all(conn, {"task_id": task_id, "account_id": account_id})
        if not rows:
            raise not_found(f"task {task_id!r}")
        return [status_wire(row) for row in rows]
