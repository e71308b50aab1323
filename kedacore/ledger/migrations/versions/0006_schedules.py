"""Step 10: schedules and quiet hours.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

- ``campaigns.scheduled_at`` (UTC): when its first part goes (NULL: at once);
- ``campaigns.schedule`` (JSON text: mode "at"/"local", date, time, zone, quiet hours —
  kedacore.campaign.schedule.Schedule);
- ``campaign_batches.not_before`` (UTC, NULL: at once): a run sends a batch only from then;
- ``ix_campaign_batches_not_before`` on ``(campaign_id, state, not_before)``: the due batches
  of a campaign, and the next time a scheduled one wakes.

Each column and index is made only when missing (a ledger made by ``create_all`` has them).

Frozen: spelled out here, never taken from ``kedacore.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _column(table: str, column: sa.Column) -> None:
    if column.name not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}:
        op.add_column(table, column)


def upgrade() -> None:
    _column("campaigns", sa.Column("scheduled_at", sa.DateTime(), nullable=True))
    _column("campaigns", sa.Column("schedule", sa.Text(), nullable=True))
    _column("campaign_batches", sa.Column("not_before", sa.DateTime(), nullable=True))
    have = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("campaign_batches")}
    if "ix_campaign_batches_not_before" not in have:
        op.create_index(
            "ix_campaign_batches_not_before",
            "campaign_batches",
            ["campaign_id", "state", "not_before"],
        )


def downgrade() -> None:
    raise NotImplementedError("the ledger is upgraded only: restore the backup taken before")
