"""The console's own sends (the Send page): pending before the request, then sent or refused.

1. ``begin_send`` writes the send as ``pending`` — with its clientRef and everything it takes
   to send it again (country, sender, text, numbers, click tracking) — before the request
   goes out. A reload, a crash or a lost answer leaves it there, for any session to see.
2. The answer completes it: ``finish_send`` records the task and its messages
   (``record_send``) and marks the send ``sent`` in one transaction; ``refuse_send`` keeps a
   refusal (cap, balance, a field) with why. No clear answer (the connection broke, a 5xx):
   ``note_send_error`` keeps it pending with what happened.
3. A pending send is checked by sending it again with the same clientRef (``retry_send``
   counts the attempt): within 24 h KedaSMS answers with the first send's result instead of
   sending again — or, if the first request never arrived, sends it now, once.

``sent`` is a fact (money moved) and wins over anything recorded before it; a refusal never
replaces it. Errors are stored redacted (``kedacore.redaction.redact_text``).

A send over the team's approval threshold starts as ``awaiting`` instead (written with its
approval request, ``kedacore.ledger.approvals``): no request goes out until another member
approves it, which makes it ``pending`` — then as above — or rejects it (``rejected``); its
creator may withdraw it (``withdrawn``).

Given the ``actor`` (who made it go out), the answer's audit entry — ``send`` done, refused
or failed (no clear answer) — is written in the same transaction as the answer.

A campaign's test send (New campaign → Send a test, ``console.messaging.campaign_test``) is
such a send with ``test``: its answer is audited as ``campaign_test`` and its task is marked
``test`` too (migration 0005), for Spend, the message log and the recent sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.api.types import SendResult
from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading, writing
from kedacore.ledger.queries import chunks, unique
from kedacore.ledger.records import LedgerSend
from kedacore.money import from_micros, to_micros
from kedacore.redaction import redact_text

# awaiting approval → pending → sent / refused; awaiting → rejected / withdrawn (never sent)
SEND_STATES = ("awaiting", "pending", "sent", "refused", "rejected", "withdrawn")
MAX_ERROR = 2000  # characters of an error kept


def _error(text: str) -> str:
    return redact_text(text)[:MAX_ERROR]


def send_values(
    client_ref: str,
    state: str,
    now: datetime,
    *,
    country: str,
    sender: str | None,
    content: str,
    recipients: Sequence[str],
    currency: str,
    track_click: bool,
    estimated_micros: int | None,
    created_by: str | None,
    session: str | None,
    test: bool = False,
) -> dict[str, Any]:
    """A new ``sends`` row: everything it takes to send it (again) with its clientRef
    (``test``: a campaign's test send, audited as ``campaign_test``)."""
    return {
        "client_ref": client_ref,
        "state": state,
        "created_at": now,
        "updated_at": now,
        "created_by": created_by,
        "session": session,
        "country": country.upper(),
        "sender": sender,
        "content": content,
        "recipients": json.dumps(list(recipients)),
        "recipient_count": len(recipients),
        "track_click": bool(track_click),
        "estimated_micros": estimated_micros,
        "currency": currency,
        "attempts": 1,
        "test": bool(test),
    }


class SendsMixin:
    """The Send page's record of its sends (see the module docstring)."""

    engine: Any
    audit: Any  # TeamMixin.audit (an annotation only: a stub here would shadow it)

    def now(self) -> datetime:
        raise NotImplementedError

    def _record_send(self, conn: Connection, result: SendResult, **facts: Any) -> int:
        raise NotImplementedError

    def begin_send(
        self,
        client_ref: str,
        *,
        country: str,
        sender: str | None,
        content: str,
        recipients: Sequence[str],
        currency: str,
        track_click: bool = False,
        estimated_micros: int | None = None,
        created_by: str | None = None,
        session: str | None = None,
        test: bool = False,
    ) -> LedgerSend:
        """Record a send as ``pending`` before its request goes out; returns the record.
        ``test``: a campaign's test send (its task is marked ``test`` too when it is sent).

        The same ``client_ref`` again (a double click, a rerun) returns the first record
        unchanged: it is the same send.
        """
        row = send_values(
            client_ref,
            "pending",
            self.now(),
            country=country,
            sender=sender,
            content=content,
            recipients=recipients,
            currency=currency,
            track_click=track_click,
            estimated_micros=estimated_micros,
            created_by=created_by,
            session=session,
            test=test,
        )
        try:
            with writing(self.engine) as conn:
                if self._send_row(conn, client_ref) is None:
                    conn.execute(insert(s.sends).values(row))
        except IntegrityError:  # another writer recorded this reference first
            pass
        return self._must(client_ref)

    def finish_send(
        self, client_ref: str, result: SendResult, *, actor: str | None = None
    ) -> LedgerSend:
        """The answer: the task and its messages recorded, the send ``sent``, in one transaction.

        Idempotent (the same answer twice changes nothing), and it wins over a refusal or an
        error noted before: the service accepted the send, so money moved. With ``actor``,
        the audit entry ``send`` is written in the same transaction.
        """
        with writing(self.engine) as conn:
            row = self._send_row(conn, client_ref, lock=True)
            if row is None:
                raise KeyError(client_ref)
            if row.state == "sent" and row.task_id == result.task_id:
                return LedgerSend.from_row(row)
            if actor:
                self.audit(
                    actor,
                    _action(row),
                    target=f"send {client_ref}",
                    after={
                        "recipients": len(result.messages) or row.recipient_count,
                        "country": row.country,
                        "estimate": _amount(row.estimated_micros),
                        "debited": result.debited_amount,
                        "currency": result.currency or row.currency,
                        "task_id": result.task_id,
                        "client_ref": client_ref,
                    },
                    conn=conn,
                )
            self._record_send(
                conn,
                result,
                country=row.country,
                sender=row.sender,
                content=row.content,
                campaign_id=None,
                client_ref=client_ref,
                estimated_micros=row.estimated_micros,
                created_at=None,
            )
            if row.test:  # its task too: Spend, the message log and Status tell it
                conn.execute(
                    update(s.tasks).where(s.tasks.c.task_id == result.task_id).values(test=True)
                )
            conn.execute(
                update(s.sends)
                .where(s.sends.c.id == row.id)
                .values(
                    state="sent",
                    task_id=result.task_id,
                    debited_micros=to_micros(result.debited_amount),
                    currency=result.currency or row.currency,
                    error=None,
                    error_code=None,
                    updated_at=self.now(),
                )
            )
        return self._must(client_ref)

    def refuse_send(
        self,
        client_ref: str,
        reason: str,
        *,
        code: str | None = None,
        actor: str | None = None,
    ) -> LedgerSend:
        """A definite refusal (nothing was sent): kept with why. A ``sent`` send stays sent.
        With ``actor``, audited (``send``, refused, the reason in words)."""
        return self._change(
            client_ref,
            {"state": "refused", "error": _error(reason), "error_code": code},
            unless_state="sent",
            audit=(actor, "refused", _error(reason), code),
        )

    def note_send_error(
        self, client_ref: str, error: str, *, actor: str | None = None
    ) -> LedgerSend:
        """No clear answer (connection broke, timeout, 5xx): still pending, with what happened.
        With ``actor``, audited (``send``, failed: it may or may not have gone out)."""
        return self._change(
            client_ref,
            {"error": _error(error)},
            only_state="pending",
            audit=(actor, "failed", "No clear answer: " + _error(error), None),
        )

    def retry_send(self, client_ref: str) -> LedgerSend:
        """Count a check of a pending send (sent again with the same clientRef)."""
        return self._change(client_ref, {"attempts": s.sends.c.attempts + 1}, only_state="pending")

    def send_record(self, client_ref: str) -> LedgerSend | None:
        """The send with this clientRef, or None."""
        with reading(self.engine) as conn:
            row = self._send_row(conn, client_ref)
        return LedgerSend.from_row(row) if row is not None else None

    def recent_sends(self, *, limit: int = 20) -> list[LedgerSend]:
        """The console's latest sends, newest first (any state, any session)."""
        query = (
            select(s.sends).order_by(s.sends.c.created_at.desc(), s.sends.c.id.desc()).limit(limit)
        )
        with reading(self.engine) as conn:
            return [LedgerSend.from_row(row) for row in conn.execute(query)]

    def task_status_counts(self, task_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """How many of each task's messages are in each status (tasks with none left out)."""
        counts: dict[str, dict[str, int]] = {}
        m = s.messages.c
        with reading(self.engine) as conn:
            for part in chunks(unique(task_ids)):
                query = (
                    select(m.task_id, m.status, func.count())
                    .where(m.task_id.in_(part))
                    .group_by(m.task_id, m.status)
                )
                for task_id, status, n in conn.execute(query):
                    counts.setdefault(task_id, {})[status] = n
        return counts

    # -- helpers ------------------------------------------------------------------------

    def _send_row(self, conn: Connection, client_ref: str, *, lock: bool = False) -> Any:
        query = select(s.sends).where(s.sends.c.client_ref == client_ref)
        return conn.execute(query.with_for_update() if lock else query).first()

    def _must(self, client_ref: str) -> LedgerSend:
        record = self.send_record(client_ref)
        if record is None:
            raise KeyError(client_ref)
        return record

    def _change(
        self,
        client_ref: str,
        values: dict[str, Any],
        *,
        only_state: str | None = None,
        unless_state: str | None = None,
        audit: tuple[str | None, str, str, str | None] | None = None,
    ) -> LedgerSend:
        """Change a send unless its state says not to; ``audit``: (actor, outcome, detail,
        code) of the ``send`` entry written with the change (none without an actor)."""
        with writing(self.engine) as conn:
            row = self._send_row(conn, client_ref, lock=True)
            if row is None:
                raise KeyError(client_ref)
            skip = (only_state is not None and row.state != only_state) or (
                unless_state is not None and row.state == unless_state
            )
            if not skip:
                conn.execute(
                    update(s.sends)
                    .where(s.sends.c.id == row.id)
                    .values(**values, updated_at=self.now())
                )
                if audit is not None and audit[0]:
                    actor, outcome, detail, code = audit
                    self.audit(
                        actor,
                        _action(row),
                        target=f"send {client_ref}",
                        after={
                            "recipients": row.recipient_count,
                            "country": row.country,
                            "estimate": _amount(row.estimated_micros),
                            "currency": row.currency,
                            "client_ref": client_ref,
                            **({"code": code} if code else {}),
                        },
                        detail=detail,
                        outcome=outcome,
                        conn=conn,
                    )
        return self._must(client_ref)


def _action(row: Any) -> str:
    """The audit action of a send's answer: a campaign's test send is ``campaign_test``."""
    return "campaign_test" if row.test else "send"


def _amount(micros: int | None) -> Decimal | None:
    return from_micros(micros) if micros is not None else None
