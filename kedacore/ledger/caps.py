"""The audit trail of the daily caps: who changed which field, when, from what, to what."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from kedacore.api.types import Limits
from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading, writing
from kedacore.ledger.records import CapChange
from kedacore.money import normalize

CAP_FIELDS = ("daily_sms_cap", "daily_spend_cap", "alert_threshold", "block_on_limit")
_DECIMAL_FIELDS = ("daily_spend_cap", "alert_threshold")
_WIRE_NAMES = {
    "dailySmsCap": "daily_sms_cap",
    "dailySpendCap": "daily_spend_cap",
    "alertThreshold": "alert_threshold",
    "blockOnLimit": "block_on_limit",
}


def cap_values(caps: Limits | Mapping[str, Any]) -> dict[str, Any]:
    """The four caps of a Limits or a mapping (snake_case or the wire's camelCase names)."""
    if isinstance(caps, Limits):
        return {name: getattr(caps, name) for name in CAP_FIELDS}
    values = {_WIRE_NAMES.get(key, key): value for key, value in caps.items()}
    unknown = set(values) - set(CAP_FIELDS)
    if unknown:
        raise ValueError(f"not cap fields: {sorted(unknown)}")
    return values


def _encode(field: str, value: Any) -> str:
    """JSON of a cap value; money and ratios as exact decimal strings."""
    if value is None:
        return "null"
    if field in _DECIMAL_FIELDS:
        if isinstance(value, float):
            raise TypeError(f"{field} must be a Decimal, int or str, not a float")
        return json.dumps(format(normalize(Decimal(str(value))), "f"))
    if field == "block_on_limit":
        return json.dumps(bool(value))
    return json.dumps(int(value))


def _decode(field: str, text: str | None) -> Any:
    value = json.loads(text) if text is not None else None
    if value is not None and field in _DECIMAL_FIELDS:
        return Decimal(value)
    return value


class CapsMixin:
    """Cap-change helpers of the Ledger."""

    engine: Any
    audit: Callable[..., None]  # kedacore.ledger.team.TeamMixin.audit

    def now(self) -> datetime:
        raise NotImplementedError

    def record_cap_change(
        self,
        before: Limits | Mapping[str, Any],
        after: Limits | Mapping[str, Any],
        *,
        changed_by: str,
        changed_at: datetime | None = None,
    ) -> list[CapChange]:
        """Record each cap field that differs between ``before`` and ``after``, and the change
        in the audit log ("caps_change", before → after) in the same transaction.

        Args:
            before: the caps as they were (a Limits, or a mapping of the changed fields).
            after: the caps as they are now; fields missing from it are unchanged.
            changed_by: who made the change (a user name or e-mail; never a secret).
        """
        if not changed_by.strip():
            raise ValueError(f"changed_by must name someone, got {changed_by!r}")
        old, new = cap_values(before), cap_values(after)
        when = changed_at or self.now()
        change_id = uuid.uuid4().hex
        rows = []
        for field in CAP_FIELDS:
            if field not in new:
                continue
            was, now = _encode(field, old.get(field)), _encode(field, new[field])
            if was != now:
                rows.append(
                    {
                        "change_id": change_id,
                        "changed_at": when,
                        "changed_by": changed_by.strip(),
                        "field": field,
                        "before": was,
                        "after": now,
                    }
                )
        if not rows:
            return []
        changed = [row["field"] for row in rows]
        with writing(self.engine) as conn:
            conn.execute(insert(s.cap_changes), rows)
            self.audit(
                changed_by,
                "caps_change",
                target="daily caps",
                before={f: _decode(f, r["before"]) for f, r in zip(changed, rows, strict=True)},
                after={f: _decode(f, r["after"]) for f, r in zip(changed, rows, strict=True)},
                detail=f"change {change_id[:8]}",
                conn=conn,
            )
        t = s.cap_changes
        return self._cap_rows(select(t).where(t.c.change_id == change_id).order_by(t.c.id))

    def cap_changes(self, *, limit: int = 500) -> list[CapChange]:
        """The audit trail, newest first."""
        t = s.cap_changes
        return self._cap_rows(select(t).order_by(t.c.changed_at.desc(), t.c.id.desc()).limit(limit))

    def _cap_rows(self, query: Any) -> list[CapChange]:
        with reading(self.engine) as conn:
            return [
                CapChange(
                    id=row.id,
                    change_id=row.change_id,
                    changed_at=row.changed_at,
                    changed_by=row.changed_by,
                    field=row.field,
                    before=_decode(row.field, row.before),
                    after=_decode(row.field, row.after),
                )
                for row in conn.execute(query)
            ]
