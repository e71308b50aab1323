"""Step 10: test sends — a campaign's first rendered rows sent to the member's own numbers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

- ``sends.test``: the send is a campaign's test (New campaign → *Send a test*), not a Send
  page message; its audit entries are ``campaign_test``.
- ``tasks.test``: the task that send made, so that Spend, the message log and Status can
  tell a test's messages (a test has no campaign: ``campaign_id`` stays NULL).

Both NOT NULL with the server default false, so the rows already there are not tests. A
ledger that has them already (made by ``create_all`` whose ``alembic_version`` was lost)
keeps them: each column is made only when missing, as 0003 does.

Frozen: spelled out here, never taken from ``kedacore.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _column(table: str, column: sa.Column) -> None:
    if column.name not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}:
        op.add_column(table, column)


def upgrade() -> None:
    for table in ("sends", "tasks"):
        _column(table, sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only: restore the backup taken before")
