"""The audit log: every action that moves money, changes a control or touches access — who,
when, what, the outcome, before → after. Append-only: rows are inserted, never updated or
deleted (no code path does, and the database's triggers refuse it: :func:`protect_audit_log`).

Write an entry in the transaction of the change it records (``ledger.audit(..., conn=conn)``),
so the log never shows a change that did not happen nor misses one that did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, String, cast, func, insert, literal, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading, writing

# What the audit log records (action → how a page names it). Grouped by the first word.
ACTIONS: dict[str, str] = {
    "sign_in": "Signed in",
    "sign_out_everywhere": "Signed out everywhere",
    "refused": "Refused (no permission)",
    "send": "Send",
    "send_awaiting": "Send waits for approval",
    "campaign_create": "Campaign created",
    "campaign_start": "Campaign started",
    "campaign_pause": "Campaign paused",
    "campaign_resume": "Campaign resumed",
    "campaign_cancel": "Campaign cancelled",
    "campaign_schedule": "Campaign scheduled",
    "campaign_reschedule": "Campaign schedule changed",
    "campaign_awaiting": "Campaign waits for approval",
    "campaign_resend": "Campaign resent (failed and undelivered)",
    "approve": "Approved",
    "reject": "Rejected",
    "withdraw": "Approval request withdrawn",
    "caps_change": "Caps changed",
    "setting_change": "Team setting changed",
    "topup": "Top-up",
    "member_add": "Member added",
    "member_roles": "Roles changed",
    "member_remove": "Member removed",
    "notification": "Notification sent",
    "contact_list_create": "Contact list created",
    "contact_list_rename": "Contact list renamed",
    "contact_list_delete": "Contact list deleted",
    "contacts_import": "Contacts imported",
    "contact_edit": "Contact edited",
    "contacts_delete": "Contacts deleted",
    "template_create": "Template created",
    "template_edit": "Template changed",
    "template_delete": "Template deleted",
    "sender_profile_create": "Sender profile created",
    "sender_profile_edit": "Sender profile changed",
    "sender_profile_delete": "Sender profile deleted",
    "optout_add": "Opt-out added",
    "optout_import": "Opt-outs imported",
    "optout_remove": "Opt-out removed",
    "campaign_optouts": "Opted-out numbers left out of a campaign",
    "send_transactional": "Transactional send (opted-out numbers included)",
    "campaign_test": "Campaign test send (to the member's own numbers)",
}
OUTCOMES = ("done", "refused", "failed")


def protect_audit_log(engine: Engine | Connection) -> None:
    """Make the database itself refuse UPDATE and DELETE on ``audit_log`` (idempotent).

    Given a connection, in its transaction (a new ledger is made and stamped in one:
    kedacore.ledger.migrate); given an engine, in a transaction of its own. A ledger from
    before migrations gets the same triggers from the baseline revision (a frozen copy)."""
    if isinstance(engine, Connection):
        _protect(engine)
        return
    with engine.begin() as conn:
        _protect(conn)


def _protect(conn: Connection) -> None:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} "
                f"BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif dialect == "postgresql":
        # Opened by several replicas at once: replace nothing that is already there.
        have = conn.exec_driver_sql(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only' "
            "AND tgrelid = 'audit_log'::regclass"
        ).first()
        if have:
            return
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def _json(value: Any) -> str | None:
    """Canonical JSON of a before/after value: money and ratios as decimal strings."""
    if value is None:
        return None

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return format(item, "f")
        if isinstance(item, (datetime, date)):
            return item.isoformat()
        if isinstance(item, (set, frozenset)):
            return sorted(item)
        raise TypeError(f"not recordable in the audit log: {type(item).__name__}")

    return json.dumps(value, sort_keys=True, default=default, ensure_ascii=False)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    outcome: str
    target: str
    before: Any
    after: Any
    detail: str

    @property
    def action_label(self) -> str:
        return ACTIONS.get(self.action, self.action)


@dataclass(frozen=True)
class AuditFilter:
    """What the Audit page filters on; every part optional."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    actors: Sequence[str] = ()
    actions: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    text: str = ""  # in who, the target (a campaign also by its name), before/after, the detail


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        outcome=row.outcome,
        target=row.target,
        before=json.loads(row.before) if row.before is not None else None,
        after=json.loads(row.after) if row.after is not None else None,
        detail=row.detail,
    )


def _lower_function() -> Any:
    """lower() that folds every letter: SQLite's folds ASCII only, so the ledger's connections
    have a ``casefold`` function (kedacore.ledger.engine); PostgreSQL's lower() folds Unicode."""

    def lower(column: Any) -> Any:
        return _Lower(column)

    return lower


class _Lower(FunctionElement):  # type: ignore[type-arg]
    """``casefold(x)`` on SQLite, ``lower(x)`` elsewhere."""

    inherit_cache = True
    type = String()


@compiles(_Lower)
def _lower_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_Lower, "sqlite")
def _lower_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"casefold({compiler.process(element.clauses, **kw)})"


def _escape_like(text: str) -> str:
    """``text`` matched literally by LIKE … ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class AuditMixin:
    """The audit log of the Ledger."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def audit(
        self,
        actor: str,
        action: str,
        *,
        target: str = "",
        before: Any = None,
        after: Any = None,
        detail: str = "",
        outcome: str = "done",
        conn: Connection | None = None,
    ) -> None:
        """Append one entry (in ``conn``'s transaction when given, else in its own)."""
        if action not in ACTIONS:
            raise ValueError(f"not an audit action: {action!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"not an audit outcome: {outcome!r}")
        if not actor.strip():
            raise ValueError("an audit entry needs someone who acted")
        row = {
            "at": self.now(),
            "actor": actor.strip()[:254],
            "action": action,
            "outcome": outcome,
            "target": target[:200],
            "before": _json(before),
            "after": _json(after),
            "detail": detail,
        }
        if conn is not None:
            conn.execute(insert(s.audit_log), row)
            return
        with writing(self.engine) as own:
            own.execute(insert(s.audit_log), row)

    def _audit_query(self, where: AuditFilter) -> Any:
        t = s.audit_log
        query = select(t)
        if where.since is not None:
            query = query.where(t.c.at >= where.since)
        if where.until is not None:
            query = query.where(t.c.at < where.until)
        if where.actors:
            query = query.where(t.c.actor.in_(list(where.actors)))
        if where.actions:
            query = query.where(t.c.action.in_(list(where.actions)))
        if where.outcomes:
            query = query.where(t.c.outcome.in_(list(where.outcomes)))
        text = where.text.strip().lower()
        if text:
            lower = _lower_function()
            like = "%" + _escape_like(text) + "%"
            c = s.campaigns
            named = select(literal("campaign ") + cast(c.c.id, String)).where(
                lower(c.c.name).like(like, escape="\\")
            )  # a campaign is its entries' target by id: find them by its name too
            query = query.where(
                or_(
                    lower(t.c.target).like(like, escape="\\"),
                    lower(t.c.detail).like(like, escape="\\"),
                    lower(t.c.actor).like(like, escape="\\"),
                    lower(t.c.before).like(like, escape="\\"),
                    lower(t.c.after).like(like, escape="\\"),
                    t.c.target.in_(named),
                )
            )
        return query

    def left_out_of(self, campaign_id: int) -> dict[str, int]:
        """What a campaign left out, as its audit entries say: ``rows_left_out``,
        ``opted_out_left_out``, ``recent_left_out`` when it was created, plus the numbers
        opted out after the plan (``opted_out_after``, each run's start). Zeros are left out."""
        t = s.audit_log
        query = (
            select(t.c.action, t.c.after)
            .where(
                t.c.action.in_(("campaign_create", "campaign_optouts")),
                t.c.target == f"campaign {campaign_id}",
                t.c.outcome == "done",
            )
            .order_by(t.c.id)
        )
        found: dict[str, int] = {}
        with reading(self.engine) as conn:
            for action, after in conn.execute(query):
                values = json.loads(after) if after else {}
                if action == "campaign_create":
                    for key in ("rows_left_out", "opted_out_left_out", "recent_left_out"):
                        if values.get(key):
                            found[key] = int(values[key])
                elif values.get("opted_out_left_out"):
                    after_plan = found.get("opted_out_after", 0)
                    found["opted_out_after"] = after_plan + int(values["opted_out_left_out"])
        return found

    def audit_entries(
        self, where: AuditFilter | None = None, *, limit: int = 200, offset: int = 0
    ) -> list[AuditEntry]:
        """The log, newest first, filtered."""
        t = s.audit_log
        query = self._audit_query(where or AuditFilter())
        query = query.order_by(t.c.id.desc()).limit(limit).offset(offset)
        with reading(self.engine) as conn:
            return [_entry(row) for row in conn.execute(query)]

    def audit_count(self, where: AuditFilter | None = None) -> int:
        query = self._audit_query(where or AuditFilter()).subquery()
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(query)).scalar_one())

    def audit_actors(self) -> list[str]:
        """Everyone who appears in the log (for the Audit page's filter)."""
        t = s.audit_log
        with reading(self.engine) as conn:
            return list(conn.execute(select(t.c.actor).distinct().order_by(t.c.actor)).scalars())
