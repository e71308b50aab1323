"""Replay protection: each (account, IV) pair is accepted once, and recorded for good.

DESIGN.md: the IV is recorded on every successful decryption, whatever happens next, and
apart from that record a refused request changes nothing. ``enveloped`` gives a handler a
transaction that already holds the IV record and a savepoint after it: a refusal
(``ApiError``) — or any other exception, even an unexpected one that answers 5000 — rolls
back to the savepoint and commits the IV alone, then propagates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, delete
from sqlalchemy.dialects.sqlite import insert

from gateway.db import Database, used_ivs
from gateway.errors import ApiError
from gateway.sql import Prepared
from kedacore.envelope import Envelope

# Built once: statements are on the hot path of every send.
_RECORD_IV = Prepared(insert(used_ivs).on_conflict_do_nothing())


def record_iv(conn: Connection, account_id: int, envelope: Envelope) -> bool:
    """Record the IV; False when this account already used it."""
    params = {"account_id": account_id, "iv": envelope.iv, "timestamp": envelope.timestamp}
    return _RECORD_IV.run(conn, params).rowcount == 1


@contextmanager
def enveloped(db: Database, account_id: int, envelope: Envelope) -> Iterator[Connection]:
    """A write transaction for a decrypted request: IV recorded first (1003 on a replay)."""
    failure: BaseException | None = None
    with db.write() as conn:
        if not record_iv(conn, account_id, envelope):
            raise ApiError("1003", "replayed request: this IV was already used with this API key")
        # A plain SQL savepoint on the driver: a tenth of the cost of begin_nested().
        raw = conn.connection.driver_connection
        raw.execute("SAVEPOINT refusal")
        try:
            yield conn
        except BaseException as exc:  # a refusal, or a bug: the body is spent either way
            failure = exc
            raw.execute("ROLLBACK TO refusal")  # keeps only the IV record
        raw.execute("RELEASE refusal")
    if failure is not None:
        raise failure


def prune_ivs(db: Database, now: float, window: int) -> int:
    """Forget IVs whose timestamp the window check refuses anyway (so no replay can pass)."""
    horizon = int(now) - window - 5
    with db.write() as conn:
        return conn.execute(delete(used_ivs).where(used_ivs.c.timestamp < horizon)).rowcount
