"""Finding the ticket a caller may see, and the actions their role allows on it.

Both the buttons a message offers and the check when a button comes back use the same
``staff_actions`` / ``reporter_actions`` functions, so a button is valid exactly when it would
still be offered: a stale or forged press is refused without touching anything.
"""

from __future__ import annotations

from handlers.context import Context, stale
from hotline.domain import payloads as P
from hotline.domain.enums import OPEN_STATES, Role, TicketState
from hotline.domain.rating import finished_at, rating_open
from hotline.errors import HotlineError
from hotline.services import permissions as perm
from hotline.services import queries, visibility
from storage.models import Person, Ticket

_WORKING = {TicketState.ASSIGNED, TicketState.REOPENED, TicketState.IN_PROGRESS,
            TicketState.WAITING_REPORTER}


async def visible_ticket(ctx: Context, ref_text: str, *, for_update: bool = True) -> Ticket:
    """The ticket if the caller may see it (``hotline.services.visibility``, the rule the web
    and the API use too); otherwise exactly the answer for a missing one."""
    return await visibility.visible_ticket(
        ctx.uow, ctx.require_person(), ref_text, for_update=for_update
    )


def staff_actions(person: Person, ticket: Ticket, *, extension_pending: bool) -> list[str]:
    """Button verbs for a working-group person, in display order."""
    state = TicketState(ticket.state)
    if state not in OPEN_STATES:
        return []
    verbs: list[str] = []
    if perm.can_claim(person, ticket):
        verbs.append(P.CLAIM)
    if perm.can_work(person, ticket):
        if state in (TicketState.ASSIGNED, TicketState.REOPENED):
            verbs.append(P.ACK)
        if state in _WORKING:
            verbs.append(P.UPDATE)
        if state == TicketState.IN_PROGRESS:
            verbs.append(P.ASK_INFO)
        if state in (TicketState.IN_PROGRESS, TicketState.WAITING_REPORTER):
            verbs.append(P.RESOLVE)
        if not extension_pending:
            verbs.append(P.EXTEND)
    lead_here = person.role == Role.LEAD.value and person.group_id == ticket.group_id
    if lead_here or perm.is_coordinator(person):
        verbs.append(P.REASSIGN)
    if perm.is_coordinator(person):
        verbs += [P.RECATEGORISE, P.PRIORITY, P.REJECT]
    return verbs


def reporter_actions(person: Person, ticket: Ticket, *, can_rate: bool = False) -> list[str]:
    """``can_rate``: the rating window is open (``hotline.domain.rating``)."""
    if not perm.is_reporter_side(person, ticket):
        return []
    state = TicketState(ticket.state)
    verbs: list[str] = []
    if state not in (TicketState.CLOSED, TicketState.REJECTED):
        verbs.append(P.ANSWER)
    if state == TicketState.RESOLVED:
        verbs.append(P.CONFIRM)
    if state in (TicketState.RESOLVED, TicketState.CLOSED):
        verbs.append(P.REOPEN)
    if can_rate:
        verbs.append(P.RATE_OPEN)
    return verbs


async def actions_for(ctx: Context, ticket: Ticket) -> list[str]:
    person = ctx.require_person()
    if person.role == Role.REPORTER.value:
        window = ctx.app.settings.rating_window_days
        finished = finished_at(ticket.resolved_at, ticket.closed_at)
        return reporter_actions(person, ticket,
                                can_rate=rating_open(ticket.state, finished, ctx.now, window))
    if not perm.is_staff(person):
        return []
    pending = await queries.pending_extension(ctx.uow, ticket.id) is not None
    return staff_actions(person, ticket, extension_pending=pending)


async def ticket_for_action(ctx: Context, ref_text: str, verb: str) -> Ticket:
    """Re-check a pressed ticket button against what would be offered now."""
    try:
        ticket = await visible_ticket(ctx, ref_text)
    except HotlineError:  # malformed ref, missing or invisible ticket, unregistered caller
        raise stale() from None
    if verb not in await actions_for(ctx, ticket):
        raise stale()
    return ticket
