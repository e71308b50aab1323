"""Step 10: audiences — contact lists, opt-outs, templates, sender profiles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

- ``contact_lists``, ``contacts`` (unique per list and E.164 number), ``suppressions`` (opt-outs:
  a removal is recorded on the row, never a delete), ``templates``, ``sender_profiles``.
- ``campaigns.list_id`` (the contact list it was sent to, NULL for a file) and
  ``campaigns.resend_of`` (the campaign whose FAILED and UNDELIVERED recipients it sends again;
  a unique index, so each campaign is resent at most once).

A ledger that has some of these already (one made by ``create_all`` whose ``alembic_version``
was lost, then brought back by the baseline) keeps them: each table, column and index is made
only when missing, as 0002 does.

Frozen: spelled out here, never taken from ``kedacore.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _table(name: str, *columns: sa.SchemaItem) -> None:
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *columns)


def _column(table: str, column: sa.Column) -> None:
    if column.name not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}:
        op.add_column(table, column)


def _index(name: str, table: str, columns: list[str], *, unique: bool = False) -> None:
    if name not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, unique=unique)


def upgrade() -> None:
    _table(
        "contact_lists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    _table(
        "contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["contact_lists.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "phone", name="uq_contacts_list_phone"),
    )
    _index("ix_contacts_phone", "contacts", ["phone"])
    _table(
        "suppressions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_by", sa.String(length=254), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.Column("removed_by", sa.String(length=254), nullable=True),
        sa.Column("removed_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_suppressions_phone", "suppressions", ["phone", "removed_at"])
    _table(
        "templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    _table(
        "sender_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("default_country", sa.String(length=2), nullable=True),
        sa.Column("owner", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    _column("campaigns", sa.Column("list_id", sa.Integer(), nullable=True))
    _column("campaigns", sa.Column("resend_of", sa.Integer(), nullable=True))
    _index("ux_campaigns_resend_of", "campaigns", ["resend_of"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only: restore the backup taken before")
