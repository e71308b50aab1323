"""Baseline: the ledger of Step 8 (the last release without migrations), frozen here.

Revision ID: 0001
Revises: -
Create Date: 2026-12-07

A new database gets every table. A ledger made before migrations (no ``alembic_version``)
is brought to the Step 8 schema: the tables it lacks are created (``sends``, the rollup, the
team's tables — as the old code's ``create_all`` did), then the columns and index added to old
tables since the first release (what ``schema.add_missing`` did: ``campaign_batches.
attempted_at``, ``members.removed_at``, ``ix_messages_latency``), then the audit log's
append-only triggers. Each step checks first: it runs on any ledger from the first release on.
A rollup created here over existing messages is filled by ``migrate.upgrade`` once at head.

Frozen: the tables are spelled out, never taken from ``kedacore.ledger.schema`` (which keeps
changing); times are ``sa.DateTime()``, what ``schema.UTCDateTime`` stores.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _approvals() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=254), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("estimate_micros", sa.BigInteger(), nullable=False),
        sa.Column("threshold_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=254), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_approvals_ref", "approvals", ["kind", "ref"], unique=False)
    op.create_index("ix_approvals_state", "approvals", ["state", "requested_at"], unique=False)


def _audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action", "at"], unique=False)
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "at"], unique=False)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)


def _balance_readings() -> None:
    op.create_table(
        "balance_readings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("frozen_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_balance_readings_read_at", "balance_readings", ["read_at"], unique=False)


def _campaigns() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("estimated_micros", sa.BigInteger(), nullable=False),
        sa.Column("debited_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _cap_changes() -> None:
    op.create_table(
        "cap_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("change_id", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=254), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cap_changes_changed_at", "cap_changes", ["changed_at"], unique=False)


def _events() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=160), nullable=False),
        sa.Column("msgid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_events_msgid", "events", ["msgid", "id"], unique=False)
    op.create_index("ix_events_outcome", "events", ["outcome"], unique=False)


def _members() -> None:
    op.create_table(
        "members",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("roles", sa.String(length=100), nullable=False),
        sa.Column("added_by", sa.String(length=254), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("signed_out_at", sa.DateTime(), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.Column("last_sign_in_iat", sa.BigInteger(), nullable=True),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("email"),
    )


def _message_rollup() -> None:
    op.create_table(
        "message_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("segments", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("pending_micros", sa.BigInteger(), nullable=False),
        sa.Column("priced", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("clicked", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.BigInteger(), nullable=False),
        sa.Column("lat_00", sa.BigInteger(), nullable=False),
        sa.Column("lat_01", sa.BigInteger(), nullable=False),
        sa.Column("lat_02", sa.BigInteger(), nullable=False),
        sa.Column("lat_03", sa.BigInteger(), nullable=False),
        sa.Column("lat_04", sa.BigInteger(), nullable=False),
        sa.Column("lat_05", sa.BigInteger(), nullable=False),
        sa.Column("lat_06", sa.BigInteger(), nullable=False),
        sa.Column("lat_07", sa.BigInteger(), nullable=False),
        sa.Column("lat_08", sa.BigInteger(), nullable=False),
        sa.Column("lat_09", sa.BigInteger(), nullable=False),
        sa.Column("lat_10", sa.BigInteger(), nullable=False),
        sa.Column("lat_11", sa.BigInteger(), nullable=False),
        sa.Column("lat_12", sa.BigInteger(), nullable=False),
        sa.Column("lat_13", sa.BigInteger(), nullable=False),
        sa.Column("lat_14", sa.BigInteger(), nullable=False),
        sa.Column("lat_15", sa.BigInteger(), nullable=False),
        sa.Column("lat_16", sa.BigInteger(), nullable=False),
        sa.Column("lat_17", sa.BigInteger(), nullable=False),
        sa.Column("lat_18", sa.BigInteger(), nullable=False),
        sa.Column("lat_19", sa.BigInteger(), nullable=False),
        sa.Column("lat_20", sa.BigInteger(), nullable=False),
        sa.Column("lat_21", sa.BigInteger(), nullable=False),
        sa.Column("lat_22", sa.BigInteger(), nullable=False),
        sa.Column("lat_23", sa.BigInteger(), nullable=False),
        sa.Column("lat_24", sa.BigInteger(), nullable=False),
        sa.Column("lat_25", sa.BigInteger(), nullable=False),
        sa.Column("lat_26", sa.BigInteger(), nullable=False),
        sa.Column("lat_27", sa.BigInteger(), nullable=False),
        sa.Column("lat_28", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "country", "sender", "campaign_id", "status", "currency", "demo"
        ),
    )


def _notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cause", sa.String(length=80), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("leased_until", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cause", "day", name="uq_notifications_cause_day"),
    )
    op.create_index("ix_notifications_created", "notifications", ["created_at"], unique=False)
    op.create_index(
        "ix_notifications_state", "notifications", ["state", "next_attempt_at"], unique=False
    )


def _sends() -> None:
    op.create_table(
        "sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_ref", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("session", sa.String(length=32), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("track_click", sa.Boolean(), nullable=False),
        sa.Column("estimated_micros", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.Column("debited_micros", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(length=8), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_ref"),
    )
    op.create_index("ix_sends_created", "sends", ["created_at"], unique=False)


def _status_lookups() -> None:
    op.create_table(
        "status_lookups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("msgid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("looked_up_at", sa.DateTime(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_status_lookups_msgid", "status_lookups", ["msgid", "looked_up_at"], unique=False
    )


def _team_settings() -> None:
    op.create_table(
        "team_settings",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def _topups() -> None:
    op.create_table(
        "topups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("account", sa.String(length=254), nullable=False),
        sa.Column("by", sa.String(length=254), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_topups_day", "topups", ["day"], unique=False)


def _campaign_batches() -> None:
    op.create_table(
        "campaign_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("client_ref", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.Column("estimated_micros", sa.BigInteger(), nullable=False),
        sa.Column("debited_micros", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "seq", name="uq_campaign_batches_seq"),
        sa.UniqueConstraint("client_ref"),
    )
    op.create_index(
        "ix_campaign_batches_state", "campaign_batches", ["campaign_id", "state"], unique=False
    )


def _tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("debited_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_tasks_campaign", "tasks", ["campaign_id"], unique=False)
    op.create_index("ix_tasks_client_ref", "tasks", ["client_ref"], unique=False)
    op.create_index("ix_tasks_day", "tasks", ["day"], unique=False)


def _messages() -> None:
    op.create_table(
        "messages",
        sa.Column("msgid", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("estimated_micros", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("final_at", sa.DateTime(), nullable=True),
        sa.Column("delivery_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("last_click_at", sa.DateTime(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.task_id"],
        ),
        sa.PrimaryKeyConstraint("msgid"),
    )
    op.create_index("ix_messages_campaign", "messages", ["campaign_id", "status"], unique=False)
    op.create_index("ix_messages_day_country", "messages", ["day", "country"], unique=False)
    op.create_index("ix_messages_day_sender", "messages", ["day", "sender"], unique=False)
    op.create_index("ix_messages_day_status", "messages", ["day", "status"], unique=False)
    op.create_index(
        "ix_messages_latency",
        "messages",
        ["delivery_ms", "day", "country", "sender", "campaign_id", "currency"],
        unique=False,
    )
    op.create_index("ix_messages_recipient", "messages", ["recipient", "created_at"], unique=False)
    op.create_index("ix_messages_status", "messages", ["status", "created_at"], unique=False)
    op.create_index("ix_messages_task", "messages", ["task_id"], unique=False)


# In the order of their foreign keys.
TABLES: dict[str, Callable[[], None]] = {
    "approvals": _approvals,
    "audit_log": _audit_log,
    "balance_readings": _balance_readings,
    "campaigns": _campaigns,
    "cap_changes": _cap_changes,
    "events": _events,
    "members": _members,
    "message_rollup": _message_rollup,
    "notifications": _notifications,
    "sends": _sends,
    "status_lookups": _status_lookups,
    "team_settings": _team_settings,
    "topups": _topups,
    "campaign_batches": _campaign_batches,
    "tasks": _tasks,
    "messages": _messages,
}

# Added to old tables after the first release (nullable, as schema.add_missing required).
ADDED_COLUMNS = (
    ("campaign_batches", sa.Column("attempted_at", sa.DateTime(), nullable=True)),
    ("members", sa.Column("removed_at", sa.DateTime(), nullable=True)),
)
LATENCY_INDEX = (
    "ix_messages_latency",
    "messages",
    ["delivery_ms", "day", "country", "sender", "campaign_id", "currency"],
)


def protect_audit_log(bind: sa.Connection) -> None:
    """The triggers that make the database refuse UPDATE and DELETE (and, on PostgreSQL,
    TRUNCATE) of ``audit_log`` — as Step 8 made them."""
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            bind.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} "
                f"BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif bind.dialect.name == "postgresql":
        have = bind.exec_driver_sql(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only' "
            "AND tgrelid = 'audit_log'::regclass"
        ).first()
        if have:
            return
        bind.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        bind.exec_driver_sql(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def upgrade() -> None:
    bind = op.get_bind()
    have = sa.inspect(bind)
    tables = set(have.get_table_names())
    for name, create in TABLES.items():
        if name not in tables:
            create()
    for table, column in ADDED_COLUMNS:
        if table in tables and column.name not in {c["name"] for c in have.get_columns(table)}:
            op.add_column(table, column)
    name, table, columns = LATENCY_INDEX
    if table in tables and name not in {i["name"] for i in have.get_indexes(table)}:
        op.create_index(name, table, columns)
    protect_audit_log(bind)
    if "message_rollup" not in tables and "messages" in tables:
        # A ledger from before the rollup: migrate.upgrade counts its messages once, at head.
        context.config.attributes["rebuild_rollup"] = True


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only: restore the backup taken before")
