"""The gateway's SQLite database: tables (SQLAlchemy Core), the engine, and its transactions.

Money is integer micro-units and times integer milliseconds (UTC) everywhere. Writers open
their transaction with ``BEGIN IMMEDIATE``: SQLite then grants the write lock up front, so a
top-up from the command line in another process waits for (or is waited for by) the server
instead of failing half-way through a read-then-write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    event,
)

from kedacore.private import private_dir, sqlite_file

SCHEMA_VERSION = 2  # 2: the callback outbox
BUSY_TIMEOUT_MS = 10_000

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text),  # None for accounts made on the command line
    Column("verified", Boolean, nullable=False, default=False),
    # Only a SHA-256 of the API key is kept: the key itself is shown once.
    Column("api_key_hash", String(64), unique=True),
    Column("encryption_key", Text),  # base64 of 32 bytes; needed to decrypt and to sign
    Column("currency", String(3), nullable=False),
    Column("balance_micros", BigInteger, nullable=False, default=0),
    Column("frozen_micros", BigInteger, nullable=False, default=0),
    Column("charged_micros", BigInteger, nullable=False, default=0),
    Column("topped_up_micros", BigInteger, nullable=False, default=0),
    Column("daily_sms_cap", BigInteger),  # None = no cap
    Column("daily_spend_cap_micros", BigInteger),  # None = no cap
    Column("alert_threshold_micros", Integer, nullable=False, default=800_000),  # 0.8 exactly
    Column("block_on_limit", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    # The last line of defence of "balance never below zero".
    CheckConstraint("balance_micros >= 0", name="balance_not_negative"),
    CheckConstraint("frozen_micros >= 0", name="frozen_not_negative"),
)

topups = Table(
    "topups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

verification_tokens = Table(
    "verification_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

daily_usage = Table(
    "daily_usage",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("day", String(10), nullable=False),  # UTC date YYYY-MM-DD
    Column("sms_sent", BigInteger, nullable=False, default=0),
    Column("spend_micros", BigInteger, nullable=False, default=0),  # charged + frozen
    Column("frozen_micros", BigInteger, nullable=False, default=0),
    Column("alert_at", BigInteger),
    PrimaryKeyConstraint("account_id", "day"),
)

used_ivs = Table(
    "used_ivs",
    metadata,
    Column("account_id", Integer, nullable=False),
    Column("iv", LargeBinary(12), nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # the envelope's, for pruning
    PrimaryKeyConstraint("account_id", "iv"),
    Index("ix_used_ivs_timestamp", "timestamp"),
)

client_refs = Table(
    "client_refs",
    metadata,
    Column("account_id", Integer, nullable=False),
    Column("client_ref", String(64), nullable=False),
    Column("response", Text, nullable=False),  # the first send's data, as JSON
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "client_ref"),
    Index("ix_client_refs_created_at", "created_at"),
)

task_seq = Table(
    "task_seq",
    metadata,
    Column("day", String(8), primary_key=True),  # YYYYMMDD
    Column("last", Integer, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("day", String(10), nullable=False),
    Column("country", String(2), nullable=False),
    Column("sender", String(15), nullable=False),
    Column("callback_url", Text),
    Column("track_click", Boolean, nullable=False, default=False),
    Column("client_ref", String(64)),
    Column("message_count", Integer, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("price_micros", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_tasks_account", "account_id", "created_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("msgid", String(40), primary_key=True),
    Column("task_id", String(32), ForeignKey("tasks.task_id"), nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("day", String(10), nullable=False),  # the usage day its price counts on
    Column("recipient", String(20), nullable=False),  # E.164
    Column("country", String(2), nullable=False),
    Column("sender", String(15), nullable=False),
    Column("position", Integer, nullable=False),  # its place in the request's phoneNumbers
    Column("content", Text, nullable=False),  # the text as sent
    Column("segments", Integer, nullable=False),
    Column("price_micros", BigInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger),
    Column("delivered_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    Column("next_event_at", BigInteger),  # when the carrier acts next; None once final
    Index("ix_messages_task", "task_id", "position"),
)
# Only messages still waiting for the carrier are indexed: final ones never come back.
Index(
    "ix_messages_due",
    messages.c.next_event_at,
    sqlite_where=messages.c.next_event_at.isnot(None),
)

shortlinks = Table(
    "shortlinks",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("title", Text),
    Column("msgid", String(40)),  # set for trackClick links (Step 2)
    Column("recipient", String(20)),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_shortlinks_account", "account_id", "created_at"),
)

clicks = Table(
    "clicks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(16), ForeignKey("shortlinks.code"), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("user_agent", Text, nullable=False),
    Column("clicked_at", BigInteger, nullable=False),
    Index("ix_clicks_code", "code"),
)

mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient", String(254), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("path", Text),  # the text file written for the operator
    Column("created_at", BigInteger, nullable=False),
)

# Callbacks waiting to be delivered, delivered, or dead-lettered: written in the same
# transaction as the change they report, so none is lost and none is made up.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),  # X-Keda-Event-Id
    Column("account_id", Integer, nullable=False),  # whose encryption key signs it
    Column("msgid", String(40), nullable=False),
    Column("status", String(12), nullable=False),  # SENT, DELIVERED, ... or CLICKED
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON every attempt sends
    Column("state", String(10), nullable=False),  # pending, delivered, dead
    # Claimed by the running sender; a restart releases these (their outcome is unknown).
    Column("leased", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger),  # None once delivered or dead
    Column("last_attempt_at", BigInteger),
    Column("done_at", BigInteger),  # delivered or dead-lettered
    Column("last_code", Integer),  # HTTP status of the last attempt, if it got one
    Column("last_error", Text),  # why the last attempt failed (never the URL or a key)
    Index("ix_outbox_msgid", "msgid"),
    Index("ix_outbox_state", "state", "done_at"),
)
# Only pending events are indexed by due time: the sender's one question.
Index(
    "ix_outbox_due",
    outbox.c.next_attempt_at,
    sqlite_where=outbox.c.state == "pending",
)


def make_engine(path: Path) -> Engine:
    """An engine on a SQLite file in WAL mode, with transactions we open ourselves."""
    # 0600 before SQLite creates it (its -wal and -shm take its mode): it holds every
    # account's encryption key
    private_dir(Path(path).parent)
    path = sqlite_file(path)
    engine = create_engine(
        f"sqlite:///{path}",
        # The pysqlite driver's own transaction handling is switched off (isolation_level
        # None) so that the "begin" hook below decides between BEGIN and BEGIN IMMEDIATE.
        connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 10},
        hide_parameters=True,  # error messages must never carry keys or bodies
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of the process (SIGKILL); only a power
        # loss may forget the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints copy the WAL back into the database; fewer, larger ones copy a page
        # written by many commits once (about 40 MiB of WAL between them).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        # Straight on the driver: this runs for every transaction.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine plus the two kinds of transaction every store method uses."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.engine = make_engine(self.path)
        with self.write() as conn:
            metadata.create_all(conn)
            conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE): committed on success, rolled back on error."""
        with self.engine.connect() as conn:
            conn.execution_options(immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, never blocking writers (WAL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        self.engine.dispose()
