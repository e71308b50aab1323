"""The ledger's tables (SQLAlchemy Core): money in integer micro-units, every time in UTC.

Derived columns exist for the analytics of the Finance pages: ``day`` (the UTC date of
``created_at``) lets spend and delivery be grouped by day with portable SQL and an index, and
``delivery_ms`` (``delivered_at`` − ``sent_at``, both from the service's clock) lets latency be
aggregated without dialect-specific date arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored naive in UTC (portable across SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware → naive UTC; a naive value is taken to be UTC already."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Naive UTC from the database → aware UTC."""
        if value is None:
            return None
        if isinstance(value, str):  # a value written by hand into SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

MSGID = String(64)
TASK_ID = String(40)
PHONE = String(20)
SENDER = String(32)
STATUS = String(12)
MONEY = BigInteger  # micro-units

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("template", Text, nullable=False, default=""),
    Column("sender", SENDER),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", String(254)),
    # draft → planned → sending → done; paused (cap, balance, stop) and cancelled on the way
    Column("status", String(16), nullable=False, default="draft"),
    Column("recipients", Integer, nullable=False, default=0),
    Column("batches", Integer, nullable=False, default=0),
    Column("estimated_micros", MONEY, nullable=False, default=0),
    Column("debited_micros", MONEY, nullable=False, default=0),
    Column("currency", String(3), nullable=False, default="USD"),
    Column("error", Text),
    Column("demo", Boolean, nullable=False, default=False),
    # The send options every run uses, whichever process or machine runs it (JSON:
    # {"track_click": bool, "callback": bool}); NULL for a campaign planned before they were kept.
    Column("options", Text),
    # Step 10 (migration 0003): the contact list it was sent to (None: a file), and the campaign
    # whose FAILED and UNDELIVERED recipients it sends again (at most one resend each: unique).
    Column("list_id", Integer),
    Column("resend_of", Integer),
    # Migration 0006: when its first part goes (None: at once) and the schedule it was planned
    # with (JSON: kedacore.campaign.schedule.Schedule).
    Column("scheduled_at", UTCDateTime),
    Column("schedule", Text),
    Index("ux_campaigns_resend_of", "resend_of", unique=True),
)

campaign_batches = Table(
    "campaign_batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("country", String(2), nullable=False),
    Column("sender", SENDER),
    Column("content", Text, nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list of E.164 numbers
    Column("recipient_count", Integer, nullable=False),
    Column("client_ref", String(64), nullable=False, unique=True),
    Column("state", String(10), nullable=False, default="planned"),  # BATCH_STATES (campaigns.py)
    Column("task_id", TASK_ID),
    Column("estimated_micros", MONEY, nullable=False, default=0),
    Column("debited_micros", MONEY),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Set before the request goes out, cleared when an answer shows nothing was sent: a
    # planned batch with an old attempted_at may be known to the service (kedacore.ledger.batches).
    Column("attempted_at", UTCDateTime),
    # Migration 0006: a run sends the batch only from then (None: at once).
    Column("not_before", UTCDateTime),
    UniqueConstraint("campaign_id", "seq", name="uq_campaign_batches_seq"),
    Index("ix_campaign_batches_state", "campaign_id", "state"),
    Index("ix_campaign_batches_not_before", "campaign_id", "state", "not_before"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", TASK_ID, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id")),
    Column("country", String(2), nullable=False),
    Column("sender", SENDER),
    Column("content", Text, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("segments", Integer, nullable=False),  # total billed for the task
    Column("debited_micros", MONEY, nullable=False),  # frozen at send time
    Column("currency", String(3), nullable=False),
    Column("client_ref", String(64)),
    # A campaign's test send (New campaign → Send a test; migration 0005): its campaign_id is
    # NULL. Only a server default: the bulk inserts (kedacore.ledger.bulk) leave it out.
    Column("test", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("day", Date, nullable=False),
    Column("demo", Boolean, nullable=False, default=False),
    Index("ix_tasks_day", "day"),
    Index("ix_tasks_campaign", "campaign_id"),
    Index("ix_tasks_client_ref", "client_ref"),
)

messages = Table(
    "messages",
    metadata,
    Column("msgid", MSGID, primary_key=True),
    Column("task_id", TASK_ID, ForeignKey("tasks.task_id"), nullable=False),
    Column("campaign_id", Integer, ForeignKey("campaigns.id")),
    Column("recipient", PHONE, nullable=False),
    Column("country", String(2), nullable=False),
    Column("sender", SENDER),
    Column("status", STATUS, nullable=False),
    Column("segments", Integer),
    Column("cost_micros", MONEY),  # charged; null until the service reports it
    Column("estimated_micros", MONEY),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("day", Date, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("final_at", UTCDateTime),
    Column("delivery_ms", BigInteger),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("clicks", Integer, nullable=False, default=0),
    Column("last_click_at", UTCDateTime),
    Column("source", String(16), nullable=False),  # send / callback / lookup / reconcile / click
    Column("demo", Boolean, nullable=False, default=False),
    Index("ix_messages_task", "task_id"),
    Index("ix_messages_recipient", "recipient", "created_at"),
    Index("ix_messages_campaign", "campaign_id", "status"),
    Index("ix_messages_status", "status", "created_at"),
    Index("ix_messages_day_country", "day", "country"),
    Index("ix_messages_day_sender", "day", "sender"),
    Index("ix_messages_day_status", "day", "status"),
    Index("ix_messages_created", "created_at", "msgid"),  # the message log (kedacore.ledger.log)
    # Exact latency percentiles (kedacore.analytics): walk delivery_ms in order, filtering on
    # the index's own columns, without touching the table.
    Index(
        "ix_messages_latency", "delivery_ms", "day", "country", "sender", "campaign_id", "currency"
    ),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # X-Keda-Event-Id, or "msgid:status:time" when the event came without one
    Column("event_id", String(160), nullable=False, unique=True),
    Column("msgid", MSGID, nullable=False),  # no foreign key: events for unknown msgids are kept
    Column("status", STATUS, nullable=False),
    Column("payload", Text, nullable=False),  # the body as received (JSON text)
    Column("occurred_at", UTCDateTime),
    Column("received_at", UTCDateTime, nullable=False),
    Column("outcome", String(10), nullable=False),  # applied / stale / unknown
    Index("ix_events_msgid", "msgid", "id"),
    Index("ix_events_outcome", "outcome"),
)

status_lookups = Table(
    "status_lookups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("msgid", MSGID, nullable=False),
    Column("status", STATUS, nullable=False),
    Column("looked_up_at", UTCDateTime, nullable=False),
    Column("result", Text, nullable=False),  # JSON of what the status API answered
    Index("ix_status_lookups_msgid", "msgid", "looked_up_at"),
)

cap_changes = Table(
    "cap_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", String(32), nullable=False),  # groups the fields changed together
    Column("changed_at", UTCDateTime, nullable=False),
    Column("changed_by", String(254), nullable=False),
    Column("field", String(32), nullable=False),
    Column("before", Text),  # JSON: an integer, a decimal string, a boolean or null
    Column("after", Text),
    Index("ix_cap_changes_changed_at", "changed_at"),
)

# The console's own sends (the Send page), one row per clientRef, written *before* the
# request goes out: pending → sent (with its task, in the same transaction as the task and
# messages) or refused (why). A pending row whose answer was lost holds what it takes to
# send it again with the same clientRef (kedacore.ledger.sends). Campaign requests are
# campaign_batches, not here.
sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_ref", String(64), nullable=False, unique=True),
    Column("state", String(10), nullable=False, default="pending"),  # SEND_STATES (sends.py)
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", String(254)),  # who, when known (signed in); never a secret
    Column("session", String(32)),  # the browser session that sent it
    Column("country", String(2), nullable=False),
    Column("sender", SENDER),
    Column("content", Text, nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list of E.164 numbers
    Column("recipient_count", Integer, nullable=False),
    Column("track_click", Boolean, nullable=False, default=False),
    Column("estimated_micros", MONEY),
    Column("currency", String(3), nullable=False),
    Column("task_id", TASK_ID),  # once sent
    Column("debited_micros", MONEY),
    Column("error_code", String(8)),  # the service's code of a refusal ("3002")
    Column("error", Text),  # why it was refused, or what became of the answer (redacted)
    Column("attempts", Integer, nullable=False, default=1),
    Column("test", Boolean, nullable=False, default=False, server_default=false()),  # 0005
    Index("ix_sends_created", "created_at"),
)

# -- the team (Step 8): members, the audit log, approvals, settings, balances, notifications --

# A member of the team (or one removed: ``removed_at``): keyed by e-mail (lower case).
# ``roles`` is comma-separated
# (kedacore.team.ROLES). ``signed_out_at``: sessions signed in before it are over ("sign out
# everywhere"); ``last_sign_in_iat``: the ID token of the last sign-in, so that a sign-in is
# audited once, not at every page view.
members = Table(
    "members",
    metadata,
    Column("email", String(254), primary_key=True),
    Column("roles", String(100), nullable=False, default=""),
    Column("added_by", String(254), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("signed_out_at", UTCDateTime),
    Column("last_sign_in_at", UTCDateTime),
    Column("last_sign_in_iat", BigInteger),
    Column("removed_at", UTCDateTime),  # removed: no access, old sessions over; kept for history
)

# Append-only: rows are inserted, never updated or deleted (no code path does; triggers refuse
# it on SQLite and PostgreSQL — kedacore.ledger.audit.protect_audit_log).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(254), nullable=False),  # an e-mail, or "local operator"
    Column("action", String(40), nullable=False),  # kedacore.ledger.team.ACTIONS
    Column("outcome", String(10), nullable=False),  # done / refused
    Column("target", String(200), nullable=False, default=""),  # "campaign 12", an e-mail…
    Column("before", Text),  # JSON object, or null
    Column("after", Text),
    Column("detail", Text, nullable=False, default=""),  # the reason, in words
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor", "actor", "at"),
    Index("ix_audit_log_action", "action", "at"),
)

# The team's own settings (key → JSON value): the approval threshold, the balance floor,
# where notifications go. Every change is in the audit log.
team_settings = Table(
    "team_settings",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(254), nullable=False),
)

# What waits for a second person (maker–checker): a campaign or a send whose estimate is over
# the approval threshold. waiting → approved / rejected / withdrawn.
approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),  # campaign / send
    Column("ref", String(64), nullable=False),  # the campaign's id, or the send's clientRef
    Column("summary", Text, nullable=False, default=""),
    Column("requested_by", String(254), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("estimate_micros", MONEY, nullable=False),
    Column("threshold_micros", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(10), nullable=False, default="waiting"),
    Column("decided_by", String(254)),
    Column("decided_at", UTCDateTime),
    Column("reason", Text),
    Index("ix_approvals_state", "state", "requested_at"),
    Index("ix_approvals_ref", "kind", "ref"),
)

# The account's balance as the console read it (at most one row a minute unless it changed):
# the statement's opening and closing balances.
balance_readings = Table(
    "balance_readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("read_at", UTCDateTime, nullable=False),
    Column("balance_micros", MONEY, nullable=False),  # available
    Column("frozen_micros", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Index("ix_balance_readings_read_at", "read_at"),
)

# Money added to the account through the console (the sandbox's top-up), for the statement.
topups = Table(
    "topups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("day", Date, nullable=False),
    Column("amount_micros", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("account", String(254), nullable=False),
    Column("by", String(254), nullable=False),
    Index("ix_topups_day", "day"),
)

# A notification: at most one per cause per day (the unique key), with where it went and its
# delivery (kedacore.ledger.notices): pending → delivered, or failed once given up. A delivery
# is claimed by a conditional UPDATE (attempts + 1, leased_until) so that exactly one thread,
# process or replica makes each attempt; a failed one is tried again at next_attempt_at.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cause", String(80), nullable=False),  # "usage_alert", "campaign_paused:12:…"…
    Column("day", Date, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("link", Text, nullable=False, default=""),
    Column("facts", Text, nullable=False, default="{}"),  # JSON: the webhook's figures (retries)
    # JSON: channel, to (masked), ok, error (an HTTP status, never an answer's body), ref
    Column("deliveries", Text, nullable=False, default="[]"),
    Column("state", String(10), nullable=False, default="pending"),  # pending/delivered/failed
    Column("attempts", Integer, nullable=False, default=0),  # attempts claimed so far
    Column("next_attempt_at", UTCDateTime),  # pending: not tried again before
    Column("leased_until", UTCDateTime),  # an attempt under way (its claimant's, until then)
    Column("last_attempt_at", UTCDateTime),
    Column("note", String(200), nullable=False, default=""),  # why it failed (given up)
    UniqueConstraint("cause", "day", name="uq_notifications_cause_day"),
    Index("ix_notifications_created", "created_at"),
    Index("ix_notifications_state", "state", "next_attempt_at"),
)

# Upper bounds (ms, exclusive) of the delivery-latency histogram's buckets; the last bucket
# (one hour or more) is open. Changing them needs kedacore.ledger.rollup.rebuild().
LATENCY_BUCKETS_MS = (
    250, 500, 750, 1_000, 1_250, 1_500, 1_750, 2_000, 2_500, 3_000, 3_500, 4_000, 5_000, 6_000,
    7_000, 8_000, 10_000, 12_500, 15_000, 20_000, 30_000, 45_000, 60_000, 120_000, 300_000,
    600_000, 1_800_000, 3_600_000,
)  # fmt: skip
LATENCY_COLUMNS = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BUCKETS_MS) + 1))

# The daily rollup of messages for the Finance analytics, kept exact by every write of
# messages (kedacore.ledger.rollup): the Spend page reads thousands of rows instead of
# millions. Key columns are never NULL (no sender = "", no campaign = 0) so that an upsert
# finds its row.
message_rollup = Table(
    "message_rollup",
    metadata,
    Column("day", Date, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("sender", SENDER, primary_key=True),
    Column("campaign_id", Integer, primary_key=True, autoincrement=False),
    Column("status", STATUS, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("demo", Boolean, primary_key=True),
    Column("messages", BigInteger, nullable=False, default=0),
    Column("segments", BigInteger, nullable=False, default=0),  # where known
    Column("cost_micros", MONEY, nullable=False, default=0),  # charged
    Column("pending_micros", MONEY, nullable=False, default=0),  # estimate, not charged yet
    Column("priced", BigInteger, nullable=False, default=0),  # messages with a known cost
    Column("clicks", BigInteger, nullable=False, default=0),
    Column("clicked", BigInteger, nullable=False, default=0),  # messages clicked at least once
    Column("latency_ms", BigInteger, nullable=False, default=0),  # sum of delivery_ms
    *(Column(name, BigInteger, nullable=False, default=0) for name in LATENCY_COLUMNS),
    Column("revision", BigInteger, nullable=False, default=0),  # + 1 at every change
    Column("updated_at", UTCDateTime, nullable=False),
)


# Alembic's own table (kedacore.ledger.migrate): the revision the ledger is at. No revision
# makes it (Alembic does, or create_all for a new ledger, stamped at head); it is here so that
# metadata.drop_all empties a ledger completely and a ledger made again starts afresh. Alembic's
# compare and autogenerate leave it out (migrations/env.py).
# Step 10 — audiences (migration 0003). A named list of contacts, deduplicated by E.164 within
# the list; the other columns of the file they came from are kept as attributes (JSON object of
# text values) and can be used in templates.
contact_lists = Table(
    "contact_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(254), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", Integer, ForeignKey("contact_lists.id"), nullable=False),
    Column("phone", PHONE, nullable=False),  # E.164
    Column("country", String(2), nullable=False),
    Column("attributes", Text, nullable=False, default="{}"),  # JSON object
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("list_id", "phone", name="uq_contacts_list_phone"),
    Index("ix_contacts_phone", "phone"),
)

# Opt-outs: numbers that must not receive marketing. A row is never deleted: removal (finance or
# admin, with a reason) sets removed_*; the number is suppressed while a row without removed_at
# exists (at most one: kedacore.ledger keeps it so under its write lock).
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", PHONE, nullable=False),  # E.164
    Column("reason", Text, nullable=False, default=""),
    Column("source", String(20), nullable=False, default="hand"),  # hand / import / …
    Column("added_by", String(254), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    Column("removed_by", String(254)),
    Column("removed_reason", Text),
    Index("ix_suppressions_phone", "phone", "removed_at"),
)

# Saved message templates ({variables} as in campaigns) and sender profiles.
templates = Table(
    "templates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("owner", String(254), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
)

sender_profiles = Table(
    "sender_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("sender", SENDER),  # None: the account's default sender
    Column("default_country", String(2)),
    Column("owner", String(254), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

alembic_version = Table(
    "alembic_version",
    metadata,
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
