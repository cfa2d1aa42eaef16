"""send_pacing: the overall send pace shared by every dispatcher process

Revision ID: 0022_send_pacing
Revises: 0021
Create Date: 2026-12-03 13:20:00

The table starts empty; the first reservation of each channel inserts its row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_send_pacing"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_pacing",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_send_pacing")),
    )


def downgrade() -> None:
    op.drop_table("send_pacing")
