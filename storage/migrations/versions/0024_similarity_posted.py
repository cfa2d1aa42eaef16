"""similarity index: postings only for tickets that may be suggested (similarity_docs.posted);
document norms for ranking candidates (similarity_docs.norm)

Revision ID: 0024_similarity_posted
Revises: 0023_inbox
Create Date: 2026-12-03 13:20:00

Every existing document has its postings, so ``posted`` starts true; the next housekeeping run
(or ``hotline similar --prune``) removes the postings of long-closed tickets and clears it.
``norm`` starts NULL (candidates are then ranked as if as long as the query); ``hotline similar
--reindex`` fills it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_similarity_posted"
down_revision: str | None = "0023_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("similarity_docs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("posted", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column("norm", sa.Float(), nullable=True))
    with op.batch_alter_table("similarity_docs", schema=None) as batch_op:
        batch_op.alter_column("posted", server_default=None)
        batch_op.create_index(batch_op.f("ix_similarity_docs_posted"), ["posted", "ticket_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("similarity_docs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_similarity_docs_posted"))
        batch_op.drop_column("norm")
        batch_op.drop_column("posted")
