"""Telling the people concerned with a ticket, and checking the text they typed.

Shared by every ticket service (``tickets``, ``coordination``, ``kinds``): each queues its
notices through here, so the reporter's followers and the actor's own reply are handled alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from hotline.deps import Deps
from hotline.errors import InvalidInput
from hotline.services.common import ticket_params
from hotline.services.notify import ButtonSpec, notify
from storage.models import Person, Ticket, TicketFollower
from storage.uow import UnitOfWork


def check_text(text: str, deps: Deps, what: str) -> str:
    """A typed reason or note, stripped; empty or over the message limit is refused."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(f"{what} is empty", key="error.empty_text")
    if len(cleaned) > deps.settings.max_message_chars:
        raise InvalidInput(
            f"{what} is longer than {deps.settings.max_message_chars} characters",
            key="error.text_too_long",
            limit=deps.settings.max_message_chars,
        )
    return cleaned


async def followers(uow: UnitOfWork, ticket: Ticket) -> list[Person]:
    """Reporters of duplicates linked to the ticket."""
    rows = await uow.session.execute(
        select(Person).join(TicketFollower, TicketFollower.person_id == Person.id).where(
            TicketFollower.ticket_id == ticket.id
        )
    )
    return list(rows.scalars())


async def tell_reporter(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, key: str, *,
    not_before: datetime | None = None, **params: object,
) -> None:
    """The reporter and anyone following the ticket (reporters of linked duplicates).

    ``not_before`` holds the messages in the outbox until then (see ``auto_close``).
    """
    now = deps.clock.now()
    group = await uow.people.group_by_id(ticket.group_id)
    base = ticket_params(deps, ticket, group) | params
    reporter = await uow.people.get(ticket.reporter_id)
    recipients = [reporter] if reporter is not None else []
    recipients += [p for p in await followers(uow, ticket) if p.id != ticket.reporter_id]
    buttons = base.pop("buttons", ())
    for person in recipients:
        await notify(uow, person, key, now=now, ticket=ticket, buttons=buttons,
                     not_before=not_before, **base)  # type: ignore[arg-type]


async def tell_person(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, person_id: int | None, key: str,
    *, skip: Person | None = None, buttons: ButtonSpec = (), **params: object,
) -> None:
    """One person concerned with the ticket (not ``skip``, the actor, who gets a direct reply)."""
    if person_id is None or (skip is not None and skip.id == person_id):
        return
    person = await uow.people.get(person_id)
    if person is None:
        return
    group = await uow.people.group_by_id(ticket.group_id)
    await notify(
        uow, person, key, now=deps.clock.now(), ticket=ticket, buttons=buttons,
        **(ticket_params(deps, ticket, group) | params),
    )
