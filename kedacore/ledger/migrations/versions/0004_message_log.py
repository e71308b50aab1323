"""Step 10: the message log — messages in (created_at, msgid) order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

- ``ix_messages_created`` on ``messages (created_at, msgid)``: the message log reads every
  message newest first and pages by the keyset ``(created_at, msgid)``
  (kedacore.ledger.log); without it the first page of an unfiltered log sorts the whole table
  (8 s on a 1,000,000-message SQLite ledger). The other filters ride the indexes already there
  (status, campaign, recipient) or this one.

Frozen: spelled out here, never taken from ``kedacore.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("messages")}
    if "ix_messages_created" not in have:  # a ledger made by create_all keeps its own
        op.create_index("ix_messages_created", "messages", ["created_at", "msgid"])


def downgrade() -> None:
    op.drop_index("ix_messages_created", table_name="messages")
