"""Status lookups in the ledger: every answer of the status API is kept, then applied."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from kedacore.api.types import MessageStatus
from kedacore.ledger import schema as s
from kedacore.ledger.engine import writing
from kedacore.ledger.queries import chunks
from kedacore.ledger.state import Outcome, StatusUpdate
from kedacore.wiretime import format_time


class LookupsMixin:
    """``record_lookups`` / ``apply_lookups`` of the Ledger."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def _apply(
        self, conn: Connection, updates: Sequence[StatusUpdate], *, source: str
    ) -> list[Outcome]:
        raise NotImplementedError

    def record_lookups(
        self, results: Iterable[MessageStatus], *, looked_up_at: datetime | None = None
    ) -> int:
        """Keep what the status API answered (one row per message); returns the rows written."""
        results = list(results)
        if results:
            with writing(self.engine) as conn:
                self._insert_lookups(conn, results, looked_up_at or self.now())
        return len(results)

    def apply_lookups(
        self, results: Iterable[MessageStatus], *, source: str = "lookup"
    ) -> list[Outcome]:
        """Record status-API answers and apply them (no regression), in one transaction."""
        results = list(results)
        if not results:
            return []
        updates = [StatusUpdate.from_status(r) for r in results]
        with writing(self.engine) as conn:
            self._insert_lookups(conn, results, self.now())
            return self._apply(conn, updates, source=source)

    def _insert_lookups(
        self, conn: Connection, results: Sequence[MessageStatus], when: datetime
    ) -> None:
        rows = [
            {
                "msgid": r.msgid,
                "status": r.status,
                "looked_up_at": when,
                "result": json.dumps(_status_json(r), separators=(",", ":")),
            }
            for r in results
        ]
        for part in chunks(rows):
            conn.execute(insert(s.status_lookups), list(part))


def _status_json(status: MessageStatus) -> dict[str, Any]:
    """A MessageStatus as JSON-ready values (times as UTC ISO-8601, money as a string)."""
    out: dict[str, Any] = {}
    for f in fields(status):
        value = getattr(status, f.name)
        if isinstance(value, datetime):
            value = format_time(value)
        elif value is not None and not isinstance(value, (str, int)):
            value = str(value)
        out[f.name] = value
    return out
