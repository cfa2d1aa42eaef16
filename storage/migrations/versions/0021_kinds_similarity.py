"""kinds: affected parties on ticket_followers; similarity index tables

Revision ID: 0021
Revises: 0001
Create Date: 2026-12-03 10:30:00

Existing tickets are not in the similarity index after this upgrade; ``hotline similar
--reindex`` writes them (suggestions simply find nothing older until then).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0021"
down_revision: str | None = "0002_private_contacts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ticket_followers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=False,
                                      server_default="duplicate"))
        batch_op.create_foreign_key(batch_op.f("fk_ticket_followers_organisation_id_organisations"),
                                    "organisations", ["organisation_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_ticket_followers_person_id"), ["person_id"], unique=False)
    with op.batch_alter_table("ticket_followers", schema=None) as batch_op:
        batch_op.alter_column("source", server_default=None)
    op.create_table(
        "similarity_docs",
        sa.Column("ticket_id", _BIG, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("anchors", sa.String(length=400), nullable=False),
        sa.Column("indexed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_similarity_docs_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_similarity_docs")),
    )
    op.create_table(
        "similarity_terms",
        sa.Column("term", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ticket_id", _BIG, nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_similarity_terms_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("term", "ticket_id", name=op.f("pk_similarity_terms")),
    )
    with op.batch_alter_table("similarity_terms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_similarity_terms_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("similarity_terms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_similarity_terms_ticket_id"))
    op.drop_table("similarity_terms")
    op.drop_table("similarity_docs")
    with op.batch_alter_table("ticket_followers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_followers_person_id"))
        batch_op.drop_constraint(batch_op.f("fk_ticket_followers_organisation_id_organisations"),
                                 type_="foreignkey")
        batch_op.drop_column("source")
        batch_op.drop_column("organisation_id")
