"""Helpers every ticket service uses: events, SLA snapshots, message parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from hotline.deps import Deps
from hotline.domain import ids, sla
from hotline.domain.enums import EventKind
from hotline.domain.ladder import sla_clock_of
from hotline.domain.lifecycle import Action, next_state
from hotline.domain.sla import SlaClock
from hotline.errors import NotFound
from hotline.i18n import format_local_date, t
from storage.models import OwnerGroup, Person, Ticket, TicketEvent
from storage.uow import UnitOfWork

LocalisedParam = Callable[[str], str]


def record(
    uow: UnitOfWork,
    ticket: Ticket,
    kind: EventKind,
    *,
    at: datetime,
    actor: Person | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    note: str | None = None,
    **data: Any,
) -> TicketEvent:
    event = TicketEvent(
        ticket=ticket,
        kind=kind.value,
        actor_id=actor.id if actor is not None else None,
        at=at,
        from_state=from_state,
        to_state=to_state,
        note=note,
        data=data,
    )
    uow.events.add(event)
    ticket.updated_at = at
    return event


def transition(
    uow: UnitOfWork,
    ticket: Ticket,
    action: Action,
    kind: EventKind,
    *,
    at: datetime,
    actor: Person | None,
    note: str | None = None,
    **data: Any,
) -> TicketEvent:
    """Apply the state machine and record the change as one event."""
    from hotline.domain.enums import TicketState

    before = ticket.state
    after = next_state(TicketState(before), action).value
    ticket.state = after
    return record(
        uow, ticket, kind, at=at, actor=actor, from_state=before, to_state=after, note=note, **data
    )


def sla_clock(ticket: Ticket) -> SlaClock:
    """The ticket's SLA snapshot; one definition, shared with the escalation ladder."""
    return sla_clock_of(ticket)


def apply_sla(ticket: Ticket, clock: SlaClock) -> None:
    ticket.cycle = clock.cycle
    ticket.cycle_started_at = clock.cycle_started_at
    ticket.budget_seconds = clock.budget_seconds
    ticket.paused_seconds = clock.paused_seconds
    ticket.paused_since = clock.paused_since
    ticket.deadline_at = clock.deadline_at


def sla_days_for(deps: Deps, category: str, priority: str) -> int:
    """``sla.sla_days`` with this installation's taxonomy and critical cap."""
    return sla.sla_days(
        deps.taxonomy.category(category).sla_days, priority, deps.settings.critical_sla_days
    )


async def get_ticket(uow: UnitOfWork, ref_text: str, *, for_update: bool = True) -> Ticket:
    ref = ids.parse_ref(ref_text)
    ticket = await uow.tickets.by_ref(ref, for_update=for_update)
    if ticket is None:
        raise NotFound(f"ticket {ref} not found", key="error.ticket_not_found", ref=ref)
    return ticket


def ticket_params(deps: Deps, ticket: Ticket, group: OwnerGroup | None = None) -> dict[str, Any]:
    """Parameters most ticket messages use; language-dependent ones are callables of lang."""
    tz = deps.settings.timezone
    category = deps.taxonomy.categories.get(ticket.category)
    return {
        "ref": ticket.ref,
        "title": ticket.title,
        "category": (lambda lang: category.name(lang)) if category else ticket.category,
        "group": (lambda lang: group.name(lang)) if group is not None else "",
        "deadline": lambda lang: format_local_date(ticket.deadline_at, lang, tz),
        "state": lambda lang: str(t(f"state.{ticket.state}", lang)),
        "priority": lambda lang: str(t(f"priority.{ticket.priority}", lang)),
    }
