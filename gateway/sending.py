"""``POST /sms/send``: the accept transaction (clientRef, caps, balance, freeze, task, messages).

Runs entirely inside ``EnvelopeGuard.run``: the IV is recorded first, and any refusal rolls
back to the savepoint after it, so a refused send changes nothing else. Sends that arrive
together share one transaction (``gateway.group_commit``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects.sqlite import insert as upsert

from gateway.accounts import AccountKey
from gateway.addresses import AddressRules
from gateway.carrier import QUEUED, Policy
from gateway.clock import to_ms, utc_day
from gateway.db import Database, accounts, client_refs, messages, task_seq, tasks
from gateway.errors import ApiError
from gateway.limits import CAP_COLUMNS, alert_due, caps_of, check_caps, read_usage, write_usage
from gateway.pricing import PriceTable
from gateway.replay import EnvelopeGuard
from gateway.sql import Prepared
from gateway.tracking import plan_tracking, store_links, track
from gateway.validation import SendRequest, payload_object, validate_send
from kedacore.envelope import Envelope
from kedacore.money import dumps, json_number
from kedacore.segments import price_micros

TASK_MESSAGE = "SMS task created"

# Built once: these run on every send, and building a statement costs more than running it.
_ACCOUNT = Prepared(
    select(accounts.c.balance_micros, accounts.c.currency, *CAP_COLUMNS).where(
        accounts.c.id == bindparam("account_id")
    )
)
_FREEZE = Prepared(
    update(accounts)
    .where(accounts.c.id == bindparam("b_id"), accounts.c.balance_micros >= bindparam("b_total"))
    .values(
        balance_micros=accounts.c.balance_micros - bindparam("b_total"),
        frozen_micros=accounts.c.frozen_micros + bindparam("b_total"),
    )
)
_NEXT_SEQ = Prepared(
    upsert(task_seq)
    .values(day=bindparam("day"), last=1)
    .on_conflict_do_update(index_elements=["day"], set_={"last": task_seq.c.last + 1})
    .returning(task_seq.c.last)
)
_FIRST_RESPONSE = Prepared(
    select(client_refs.c.response).where(
        client_refs.c.account_id == bindparam("account_id"),
        client_refs.c.client_ref == bindparam("client_ref"),
        client_refs.c.created_at > bindparam("since"),
    )
)
_INSERT_TASK = Prepared(insert(tasks))
_INSERT_MESSAGE = Prepared(insert(messages))
# An expired record of the same ref may still be there: the new send replaces it.
_REF = upsert(client_refs)
_STORE_REF = Prepared(
    _REF.on_conflict_do_update(
        index_elements=["account_id", "client_ref"],
        set_={"response": _REF.excluded.response, "created_at": _REF.excluded.created_at},
    )
)


def new_msgid() -> str:
    return "msg_" + secrets.token_hex(8)  # 16 lower-case hex digits


def next_task_id(conn: Connection, day: str) -> str:
    """``YYYYMMDD-NNNN``: a per-UTC-day sequence, at least four digits."""
    compact = day.replace("-", "")
    seq = _NEXT_SEQ.first(conn, {"day": compact}).last
    return f"{compact}-{seq:04d}"


class Sending:
    """Accepts sends: every check, then the freeze, in one transaction."""

    def __init__(
        self,
        db: Database,
        prices: PriceTable,
        policy: Policy,
        clock: Callable[[], float],
        *,
        client_ref_ttl: int,
        address_rules: AddressRules,
        guard: EnvelopeGuard,
        max_tracked_urls: int = 10,
    ) -> None:
        self.db = db
        self.guard = guard
        self.prices = prices
        self.policy = policy
        self.clock = clock
        self.client_ref_ttl_ms = client_ref_ttl * 1000
        self.address_rules = address_rules
        self.max_tracked_urls = max_tracked_urls

    async def send(
        self, account: AccountKey, envelope: Envelope, plaintext: bytes, base: str = ""
    ) -> bytes:
        """The send response's ``data`` as JSON, once committed; raises ``ApiError`` for every
        refusal.

        The JSON is rendered once: it is stored for the clientRef and answered as is, and a
        repeat of the clientRef answers the stored text byte for byte.
        ``base`` is the public base of short links (for ``trackClick``).
        """
        now = to_ms(self.clock())

        def work(conn: Connection) -> bytes:
            payload = payload_object(plaintext)
            # A tracked text's own faults first: they are found without parsing a number
            # or making a code (a refusal must be cheap, or it is a free denial of service).
            content, track_click = payload.get("content"), payload.get("trackClick")
            plan_tracking(content, track_click, base, self.max_tracked_urls)
            request = validate_send(payload, self.prices, self.address_rules)
            if request.client_ref is not None:
                first = self._first_response(conn, account.id, request.client_ref, now)
                if first is not None:
                    return first
            return self._accept(conn, account, request, now, base)

        return await self.guard.run(account.id, envelope, work)

    def _first_response(
        self, conn: Connection, account_id: int, client_ref: str, now: int
    ) -> bytes | None:
        params = {
            "account_id": account_id,
            "client_ref": client_ref,
            "since": now - self.client_ref_ttl_ms,
        }
        stored = _FIRST_RESPONSE.first(conn, params)
        return None if stored is None else stored.response.encode("utf-8")

    def _accept(
        self, conn: Connection, account: AccountKey, req: SendRequest, now: int, base: str
    ) -> bytes:
        day = utc_day(now)
        per_segment = self.prices.per_segment(req.country)
        count = len(req.recipients)
        # Each recipient's text (with its own short links) is counted and priced as sent;
        # with trackClick all of them are as long as the plan counts, before any code is
        # made (made again here: well under a millisecond, and the text was checked).
        plan = plan_tracking(req.content, req.track_click, base, self.max_tracked_urls)
        segments = plan.segments if plan is not None else req.segments
        price = price_micros(per_segment, segments)
        total = price * count
        row = _ACCOUNT.first(conn, {"account_id": account.id})
        caps = caps_of(row)
        usage = read_usage(conn, account.id, day)
        check_caps(caps, usage, count, total)
        if total > row.balance_micros:
            raise ApiError(
                "3001",
                "insufficient balance: this send costs more than the balance can cover",
                {
                    "required": json_number(total),
                    "balance": json_number(row.balance_micros),
                    "currency": row.currency,
                },
            )

        # Every check passed: freeze the price, count the usage, create the task.
        frozen = _FREEZE.run(conn, {"b_id": account.id, "b_total": total})
        if frozen.rowcount != 1:  # cannot happen under the write lock; never overdraw anyway
            raise ApiError("3001", "insufficient balance")
        after = replace(
            usage,
            sms_sent=usage.sms_sent + count,
            spend=usage.spend + total,
            frozen=usage.frozen + total,
        )
        if after.alert_at is None and alert_due(caps, after.sms_sent, after.spend):
            after = replace(after, alert_at=now)
        write_usage(conn, account.id, day, after)

        tracked = track(conn, req.content, plan, count, base) if plan is not None else None
        texts = [t.text for t in tracked] if tracked else [req.content] * count

        task_id = next_task_id(conn, day)
        _INSERT_TASK.run(
            conn,
            {
                "task_id": task_id,
                "account_id": account.id,
                "day": day,
                "country": req.country,
                "sender": req.sender,
                "callback_url": req.callback_url,
                "track_click": req.track_click,
                "client_ref": req.client_ref,
                "message_count": count,
                "segments": segments * count,
                "price_micros": total,
                "created_at": now,
            },
        )
        rows = [
            {
                "msgid": new_msgid(),
                "task_id": task_id,
                "account_id": account.id,
                "day": day,
                "recipient": recipient,
                "position": position,
                "country": req.country,
                "sender": req.sender,
                "content": texts[position],
                "segments": segments,
                "price_micros": price,
                "status": QUEUED,
                "created_at": now,
                "sent_at": None,
                "delivered_at": None,
                "updated_at": now,
                "next_event_at": now + to_ms(self.policy.first_delay(recipient, req.country)),
            }
            for position, recipient in enumerate(req.recipients)
        ]
        _INSERT_MESSAGE.run_many(conn, rows)
        if tracked:
            links = [(r["msgid"], r["recipient"], t) for r, t in zip(rows, tracked, strict=True)]
            store_links(conn, account.id, links, now)
        data = {
            "taskId": task_id,
            "message": TASK_MESSAGE,
            "debitedAmount": json_number(total),
            "currency": row.currency,
            "segments": segments * count,
            "messages": [{"msgid": r["msgid"], "recipient": r["recipient"]} for r in rows],
        }
        rendered = dumps(data)
        if req.client_ref is not None:
            _STORE_REF.run(
                conn,
                {
                    "account_id": account.id,
                    "client_ref": req.client_ref,
                    "response": rendered.decode("utf-8"),
                    "created_at": now,
                },
            )
        return rendered

    def prune_client_refs(self) -> None:
        """Forget client refs older than their time to live."""
        horizon = to_ms(self.clock()) - self.client_ref_ttl_ms
        with self.db.write() as conn:
            conn.execute(delete(client_refs).where(client_refs.c.created_at <= horizon))
