"""inbox: raw inbound updates recorded before the webhook answers (issues 17, 23)

Revision ID: 0023_inbox
Revises: 0022_send_pacing
Create Date: 2026-12-03 13:20:00

A new, empty table: nothing to move. On downgrade, rows still waiting in it (updates answered
but not yet processed) are lost, so stop the bot and let it drain before downgrading.

Also from this version, PostgreSQL ticket numbers come from a sequence per year
(``ticket_ref_<year>``), made by the year's first filing and set to continue after the year's
``ticket_counters`` row and tickets (``TicketRepository.next_seq``); nothing to migrate.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0023_inbox"
down_revision: str | None = "0022_send_pacing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("update_id", sa.String(length=64), nullable=False),
        sa.Column("chat_key", sa.String(length=90), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("channel", "update_id", name=op.f("uq_inbox_channel_update_id")),
    )
    op.create_index("ix_inbox_chat_key_id", "inbox", ["chat_key", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbox_chat_key_id", table_name="inbox")
    op.drop_table("inbox")
