"""contacts are private chats: repair contacts that point at a group

Before this revision any message a person wrote in a group moved their contact to the group
(``people.refresh_contact`` stored the group's chat id), so their notices, digests and sign-in
links went to the whole group. On Telegram, Zalo Bot Platform (and the other channels) a
person's private chat has the person's own id, so a contact whose chat is not its
``external_id`` points at a group (negative Telegram ids, Zalo group ids) and is repaired to the
private chat. Messages still waiting in the outbox for such a contact are re-addressed to the
private chat too (they were meant for the person), and sign-in links and web sessions issued
before the repair are revoked: a link posted in a group may have been opened by anyone there.

Revision ID: 0002_private_contacts
Revises: 0001
Create Date: 2026-12-03 10:30:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_private_contacts"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Channels where a chat can be a group; a private chat's id is the person's id on them.
GROUP_CHANNELS = ("telegram", "zalo_bot")


def upgrade() -> None:
    bind = op.get_bind()
    contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("channel", sa.String),
                        sa.column("external_id", sa.String), sa.column("chat_id", sa.String))
    outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("contact_id", sa.Integer),
                      sa.column("chat_id", sa.String), sa.column("status", sa.String),
                      sa.column("payload", sa.JSON))
    key_values = sa.table("key_values", sa.column("key", sa.String))

    wrong = bind.execute(
        sa.select(contacts.c.id, contacts.c.external_id).where(
            contacts.c.channel.in_(GROUP_CHANNELS), contacts.c.chat_id != contacts.c.external_id)
    ).all()
    for contact_id, private_chat in wrong:
        bind.execute(sa.update(contacts).where(contacts.c.id == contact_id)
                     .values(chat_id=private_chat))
        pending = bind.execute(
            sa.select(outbox.c.id, outbox.c.payload).where(
                outbox.c.contact_id == contact_id, outbox.c.status == "pending",
                outbox.c.chat_id != private_chat)
        ).all()
        for row_id, payload in pending:
            data = json.loads(payload) if isinstance(payload, str) else dict(payload or {})
            data["chat_id"] = private_chat
            data["retire_buttons_of"] = None  # a message id in the group, not in this chat
            bind.execute(sa.update(outbox).where(outbox.c.id == row_id)
                         .values(chat_id=private_chat, payload=data))
    bind.execute(sa.delete(key_values).where(
        sa.or_(key_values.c.key.like("web.signin.%"), key_values.c.key.like("web.session.%"))))


def downgrade() -> None:
    """Nothing to undo: the group ids were never meant to be stored."""
