"""Step 9: campaigns keep their send options; who-columns widened to 254 characters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

- ``campaigns.options`` (Text, nullable): the send options every run of the campaign uses
  (JSON), NULL for a campaign planned before. A ledger opened by the Step 9 code before
  migrations existed may have it already (``add_missing`` added it): checked first.
- ``campaigns.created_by``, ``sends.created_by``, ``cap_changes.changed_by``: 120 characters
  in ledgers made before Step 8 (which widened them to an e-mail's 254 for new ledgers only).
  PostgreSQL: ``ALTER COLUMN … TYPE varchar(254)`` (a longer varchar rewrites nothing), on
  every ledger (254 → 254 is a no-op). SQLite does not enforce a VARCHAR's length, and
  changing a declared type there means rebuilding the table: left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WIDENED = (
    ("campaigns", "created_by", True),
    ("sends", "created_by", True),
    ("cap_changes", "changed_by", False),
)


def upgrade() -> None:
    bind = op.get_bind()
    have = sa.inspect(bind)
    if "options" not in {c["name"] for c in have.get_columns("campaigns")}:
        op.add_column("campaigns", sa.Column("options", sa.Text(), nullable=True))
    if bind.dialect.name == "sqlite":
        return
    for table, column, nullable in WIDENED:
        op.alter_column(
            table,
            column,
            type_=sa.String(254),
            existing_type=sa.String(120),
            existing_nullable=nullable,
        )


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only: restore the backup taken before")
