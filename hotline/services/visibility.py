"""Who may see which ticket: the one rule, used by the chat, the web pages and the JSON API.

Staff see by role and group (``permissions.can_view``); a reporter sees their own tickets, their
organisation's, and the originals they follow because their own report was linked to them as a
duplicate. Whoever may not see a ticket gets exactly the answer for a missing one, so nobody
learns that someone else's ticket exists.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select

from hotline.domain.enums import Role
from hotline.errors import NotFound
from hotline.services import permissions as perm
from hotline.services.common import get_ticket
from storage.models import Person, Ticket, TicketFollower
from storage.uow import UnitOfWork


async def is_follower(uow: UnitOfWork, person: Person, ticket: Ticket) -> bool:
    row = await uow.session.execute(
        select(TicketFollower.id).where(
            TicketFollower.ticket_id == ticket.id, TicketFollower.person_id == person.id
        )
    )
    return row.first() is not None


def can_see_row(person: Person, row: Any, *, is_follower: bool = False) -> bool:
    """The rule on anything carrying a ticket's ownership fields (a ticket, a dashboard row,
    a pending extension), with the follower fact known to the caller."""
    return perm.can_view(person, row, is_follower=is_follower)


async def can_see(uow: UnitOfWork, person: Person, ticket: Ticket) -> bool:
    """The rule, reading the follower fact only when it can matter (a reporter, not their own)."""
    follower = (
        person.role == Role.REPORTER.value
        and ticket.reporter_id != person.id
        and await is_follower(uow, person, ticket)
    )
    return can_see_row(person, ticket, is_follower=follower)


async def visible_ticket(
    uow: UnitOfWork, person: Person, ref_text: str, *, for_update: bool = True
) -> Ticket:
    """The ticket if ``person`` may see it, else ``NotFound`` exactly as for a missing one."""
    ticket = await get_ticket(uow, ref_text, for_update=for_update)
    if not await can_see(uow, person, ticket):
        raise NotFound("ticket not visible", key="error.ticket_not_found", ref=ticket.ref)
    return ticket


def reporter_scope(person: Person) -> ColumnElement[bool]:
    """A reporter's tickets as a SQL condition: their own, followed, and their organisation's
    (the same set ``can_see`` allows a reporter, for listing many at once)."""
    followed = select(TicketFollower.ticket_id).where(TicketFollower.person_id == person.id)
    visible: list[ColumnElement[bool]] = [Ticket.reporter_id == person.id, Ticket.id.in_(followed)]
    if person.organisation_id is not None:
        visible.append(Ticket.organisation_id == person.organisation_id)
    return or_(*visible)
