"""Messages to people, written to the outbox in the caller's transaction.

The text is rendered here, in the recipient's language, so the outbox holds exactly what will
be sent; the dispatcher only transports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hotline.domain.enums import OutboxStatus
from hotline.i18n import t
from hotline.messages import Button, OutboundMessage
from storage.models import Contact, Person, Ticket
from storage.repositories import QueuedMessage
from storage.uow import UnitOfWork

#: Rows of (catalogue key of the label, payload) -- labels are translated per recipient.
ButtonSpec = Sequence[Sequence[tuple[str, str]]]


def localise_buttons(buttons: ButtonSpec, lang: str) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(Button(label=str(t(key, lang)), payload=p) for key, p in row) for row in buttons)


def outbox_values(
    message: OutboundMessage,
    *,
    now: datetime,
    contact_id: int | None,
    person_id: int | None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """The outbox row for ``message``: one shape for the engine's replies, the services'
    notices and the sweep's bulk inserts, so the dispatcher reads one format."""
    return {
        "channel": message.channel,
        "chat_id": message.chat_id,
        "contact_id": contact_id,
        "person_id": person_id,
        "payload": message.to_json(),
        "status": OutboxStatus.PENDING.value,
        "next_attempt_at": not_before or now,
        "attempts": 0,
        "created_at": now,
        "dedupe_key": dedupe_key,
    }


def enqueue(
    uow: UnitOfWork,
    message: OutboundMessage,
    *,
    now: datetime,
    contact_id: int | None = None,
    person_id: int | None = None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
) -> QueuedMessage:
    """Queue ``message`` in the caller's transaction; its id is known once the unit of work
    flushes or commits."""
    return uow.outbox.queue(outbox_values(message, now=now, contact_id=contact_id, person_id=person_id,
                                          not_before=not_before, dedupe_key=dedupe_key))


async def contact_for(uow: UnitOfWork, person: Person, ticket: Ticket | None = None) -> Contact | None:
    """Reporters hear back on the channel the ticket came from; others on their latest channel."""
    if ticket is not None and ticket.reporter_id == person.id and ticket.contact_id is not None:
        contact = await uow.session.get(Contact, ticket.contact_id)
        if contact is not None and contact.active:
            return contact
    contacts = await uow.people.contacts_of(person.id)
    return contacts[0] if contacts else None


async def notify(
    uow: UnitOfWork,
    person: Person,
    key: str,
    *,
    now: datetime,
    ticket: Ticket | None = None,
    buttons: ButtonSpec = (),
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    **params: object,
) -> QueuedMessage | None:
    """Queue ``key`` for ``person``; None when the person has no reachable contact."""
    if not person.active:
        return None
    contact = await contact_for(uow, person, ticket)
    if contact is None:
        return None
    lang = person.language
    params = {k: (v(lang) if callable(v) else v) for k, v in params.items()}
    message = OutboundMessage(
        channel=contact.channel,
        chat_id=contact.chat_id,
        text=str(t(key, lang, **params)),
        buttons=localise_buttons(buttons, lang),
        meta={"key": key, "ticket": ticket.ref if ticket is not None else None},
    )
    return enqueue(
        uow,
        message,
        now=now,
        contact_id=contact.id,
        person_id=person.id,
        not_before=not_before,
        dedupe_key=dedupe_key,
    )
