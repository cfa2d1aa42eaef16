"""Kinds of blockers: an original ticket, its duplicates and the reporters who follow it.

Everyone affected by a kind besides the original's reporter is a ``TicketFollower`` of the
original, and joining is a ``followed`` event on it (with the party's organisation kind), so
the digests count affected enterprises, ministries and localities from events alone.
"""

from __future__ import annotations

from sqlalchemy import select

from hotline.deps import Deps
from hotline.domain.enums import EventKind, OrgKind, Role, TicketState
from hotline.errors import InvalidInput
from hotline.services import permissions as perm
from hotline.services.common import record
from hotline.services.telling import tell_person
from storage.models import Contact, Organisation, Person, Ticket, TicketFollower
from storage.uow import UnitOfWork

_FOLLOWABLE = {TicketState.NEW, TicketState.ASSIGNED, TicketState.IN_PROGRESS,
               TicketState.WAITING_REPORTER, TicketState.REOPENED, TicketState.RESOLVED,
               TicketState.CLOSED}


async def is_affected(uow: UnitOfWork, ticket: Ticket, person: Person) -> bool:
    """True if ``person`` follows ``ticket`` (joined at intake or through a linked duplicate)."""
    row = await uow.session.execute(select(TicketFollower.id).where(
        TicketFollower.ticket_id == ticket.id, TicketFollower.person_id == person.id))
    return row.first() is not None


async def org_kind_of(uow: UnitOfWork, organisation_id: int | None) -> str:
    if organisation_id is None:
        return OrgKind.OTHER.value
    org = await uow.session.get(Organisation, organisation_id)
    return org.kind if org is not None else OrgKind.OTHER.value


async def add_affected(
    uow: UnitOfWork, deps: Deps, original: Ticket, person: Person, contact_id: int | None,
    *, source: str, via: Ticket | None = None,
) -> bool:
    """Record ``person`` as affected by ``original``'s kind; False if they already were (or
    reported it, or belong to the reporting organisation, which is already counted)."""
    if person.id == original.reporter_id or await is_affected(uow, original, person):
        return False
    same_org = person.organisation_id is not None and person.organisation_id == original.organisation_id
    now = deps.clock.now()
    uow.session.add(TicketFollower(ticket_id=original.id, person_id=person.id, contact_id=contact_id,
                                   organisation_id=person.organisation_id, source=source,
                                   created_at=now))
    if same_org:
        return True  # told about it, but the organisation is already the kind's raiser
    record(uow, original, EventKind.FOLLOWED, at=now, actor=person, source=source,
           person_id=person.id, organisation_id=person.organisation_id,
           org_kind=await org_kind_of(uow, person.organisation_id),
           via=via.ref if via is not None else None)
    return True


async def follow(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, reporter: Person, contact: Contact | None
) -> Ticket:
    """"This is my problem": the reporter follows ``ticket``'s kind instead of filing a report.

    Returns the ticket followed (the original, if ``ticket`` was meanwhile linked as a
    duplicate). Following twice is harmless. The owner is told another party is affected.
    """
    perm.require(reporter.role == Role.REPORTER.value, "follow a ticket")
    if ticket.duplicate_of_id is not None:
        original = await uow.tickets.get(ticket.duplicate_of_id, for_update=True)
        ticket = original if original is not None else ticket
    if TicketState(ticket.state) not in _FOLLOWABLE:
        raise InvalidInput("ticket is closed", key="error.ticket_closed", ref=ticket.ref)
    added = await add_affected(uow, deps, ticket, reporter,
                               contact.id if contact is not None else None, source="intake")
    if added:
        await tell_person(uow, deps, ticket, ticket.assignee_id, "tickets.followed")
    return ticket
