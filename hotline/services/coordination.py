"""Coordinator and lead powers: triage, recategorise, duplicates, priority, rejection, extensions.

Extensions are never quiet: each request and decision is an event, counted in digests, and a
second request on the same ticket is itself an escalation trigger (SPEC §6 L3), fired in the
request's own transaction (``request_extension``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from hotline.deps import Deps
from hotline.domain import ladder, sla
from hotline.domain import payloads as P
from hotline.domain.enums import (
    OPEN_STATES,
    EventKind,
    ExtensionStatus,
    Priority,
    Role,
    TicketState,
)
from hotline.domain.lifecycle import Action
from hotline.errors import InvalidInput, NotFound
from hotline.i18n import format_local_date
from hotline.services import permissions as perm
from hotline.services.common import apply_sla, record, sla_clock, sla_days_for, transition
from hotline.services.escalations import fire_now
from hotline.services.kinds import add_affected
from hotline.services.telling import check_text, tell_person, tell_reporter
from hotline.services.tickets import route
from storage.models import Extension, LabelledExample, Person, Ticket
from storage.uow import UnitOfWork

MAX_EXTENSION = timedelta(days=366)


def _require_open(ticket: Ticket) -> None:
    if TicketState(ticket.state) not in OPEN_STATES:
        raise InvalidInput("ticket is not open", key="error.ticket_not_open", ref=ticket.ref)


def _rebudget(deps: Deps, ticket: Ticket, days: int) -> None:
    """Same cycle start, new SLA length (recategorisation or a priority change)."""
    ticket.sla_days = days
    apply_sla(ticket, sla.rebudget(deps.calendar, sla_clock(ticket), days))


async def recategorise(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, category: str
) -> None:
    """Move a ticket to another category (and owner group); the correction trains the classifier."""
    perm.require(perm.is_coordinator(actor), "recategorise tickets")
    _require_open(ticket)
    cat = deps.taxonomy.category(category)
    now = deps.clock.now()
    old_category, old_group_id = ticket.category, ticket.group_id
    group = await uow.people.group(cat.group)
    if group is None:
        raise NotFound(f"owner group {cat.group} missing", key="error.unknown_group")
    ticket.category = category
    ticket.group_id = group.id
    was_triage = ticket.needs_triage
    ticket.needs_triage = False
    _rebudget(deps, ticket, sla_days_for(deps, category, ticket.priority))
    record(uow, ticket, EventKind.RECATEGORISED, at=now, actor=actor, note=None,
           old=old_category, new=category, old_group_id=old_group_id, group=group.code)
    record(uow, ticket, EventKind.DEADLINE_CHANGED, at=now, actor=actor,
           deadline=ticket.deadline_at.isoformat(), cycle=ticket.cycle, reason="recategorised",
           sla_days=ticket.sla_days)
    uow.session.add(LabelledExample(text=ticket.description, label=category, source="correction",
                                    ticket_id=ticket.id, created_by_id=actor.id, created_at=now))
    moved = was_triage or old_group_id != group.id or ticket.assignee_id is None
    # A ticket waiting on the reporter keeps its assignee (the SLA is paused); the new group's
    # lead can reassign it. Anything else goes to the new group's least-loaded member.
    if moved and ticket.state != TicketState.WAITING_REPORTER.value:
        await route(uow, deps, ticket, group)
    await tell_reporter(uow, deps, ticket, "tickets.recategorised")


async def set_priority(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, priority: Priority
) -> None:
    perm.require(perm.is_coordinator(actor), "set priority")
    _require_open(ticket)
    if ticket.priority == priority.value:
        return
    now = deps.clock.now()
    old = ticket.priority
    ticket.priority = priority.value
    _rebudget(deps, ticket, sla_days_for(deps, ticket.category, priority.value))
    record(uow, ticket, EventKind.PRIORITY_CHANGED, at=now, actor=actor, old=old, new=priority.value)
    record(uow, ticket, EventKind.DEADLINE_CHANGED, at=now, actor=actor,
           deadline=ticket.deadline_at.isoformat(), cycle=ticket.cycle, reason="priority",
           sla_days=ticket.sla_days)
    await tell_person(uow, deps, ticket, ticket.assignee_id, "tickets.priority_changed", skip=actor)


async def reject(uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, reason: str) -> None:
    perm.require(perm.is_coordinator(actor), "reject tickets")
    note = check_text(reason, deps, "reason")
    now = deps.clock.now()
    transition(uow, ticket, Action.REJECT, EventKind.REJECTED, at=now, actor=actor, note=note)
    ticket.closed_at = now
    await tell_reporter(uow, deps, ticket, "tickets.rejected", note=note)


async def link_duplicate(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, original: Ticket, actor: Person
) -> None:
    """Reject ``ticket`` as a duplicate; its reporter follows ``original`` from now on."""
    perm.require(perm.is_coordinator(actor), "link duplicates")
    if ticket.id == original.id:
        raise InvalidInput("a ticket cannot duplicate itself", key="error.duplicate_self")
    if original.duplicate_of_id is not None:
        raise InvalidInput("the original is itself a duplicate", key="error.duplicate_chain",
                           ref=original.ref)
    now = deps.clock.now()
    transition(uow, ticket, Action.REJECT, EventKind.DUPLICATE_LINKED, at=now, actor=actor,
               original=original.ref)
    ticket.duplicate_of_id = original.id
    ticket.closed_at = now
    reporter = await uow.people.get(ticket.reporter_id)
    if reporter is not None:
        await add_affected(uow, deps, original, reporter, ticket.contact_id, source="duplicate",
                           via=ticket)
    await tell_reporter(uow, deps, ticket, "tickets.duplicate", original=original.ref)


# --------------------------------------------------------------------------------------------
# Extensions
# --------------------------------------------------------------------------------------------


async def request_extension(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, new_deadline: datetime, reason: str
) -> Extension:
    """Record an extension request for the coordinators to decide.

    A second or later request goes to the leaders here, in this transaction, rather than
    waiting for the sweep: a coordinator approving it before the next sweep would open a new
    cycle starting after the request, where the sweep no longer looks
    (``ladder.extension_request_step`` has the rule). The escalation is written the sweep's way
    (``hotline.services.escalations.fire_now``), so a later sweep sees the level fired and adds nothing.
    """
    perm.require(perm.can_work(actor, ticket), "request an extension")
    _require_open(ticket)
    note = check_text(reason, deps, "reason")
    now = deps.clock.now()
    if new_deadline <= ticket.deadline_at or new_deadline <= now:
        raise InvalidInput("new deadline must be after the current one",
                           key="error.extension_not_later",
                           deadline=format_local_date(ticket.deadline_at, actor.language))
    if new_deadline - now > MAX_EXTENSION:
        raise InvalidInput("extension too long", key="error.extension_too_long")
    pending = await uow.session.execute(
        select(Extension.id).where(Extension.ticket_id == ticket.id,
                                   Extension.status == ExtensionStatus.PENDING.value)
    )
    if pending.first() is not None:
        raise InvalidInput("an extension request is already pending",
                           key="error.extension_pending", ref=ticket.ref)
    ext = Extension(ticket_id=ticket.id, requested_by_id=actor.id, requested_at=now,
                    old_deadline=ticket.deadline_at, new_deadline=new_deadline, reason=note,
                    status=ExtensionStatus.PENDING.value)
    uow.session.add(ext)
    await uow.flush()
    ticket.extension_requests += 1
    ticket.last_progress_at = now
    record(uow, ticket, EventKind.EXTENSION_REQUESTED, at=now, actor=actor, note=note,
           extension_id=ext.id, new_deadline=new_deadline.isoformat(),
           old_deadline=ticket.deadline_at.isoformat(), request_number=ticket.extension_requests)
    step = ladder.extension_request_step(ticket, now)
    if step is not None:
        # Before the coordinators' message: where no leader is registered the L3 falls back to
        # the coordinators, and the request they must act on should stay their latest message.
        await fire_now(uow, deps, ticket, step)
    for coordinator in await uow.people.with_role(Role.COORDINATOR):
        await tell_person(
            uow, deps, ticket, coordinator.id, "tickets.extension_requested", skip=actor,
            note=note, actor=actor.display_name,
            new_deadline=lambda lang: format_local_date(new_deadline, lang, deps.settings.timezone),
            count=ticket.extension_requests,
            buttons=[[("buttons.approve", P.build(P.EXT_APPROVE, ext.id)),
                      ("buttons.refuse", P.build(P.EXT_REFUSE, ext.id))]],
        )
    return ext


async def get_extension(uow: UnitOfWork, extension_id: int) -> tuple[Extension, Ticket]:
    ext = await uow.session.get(Extension, extension_id, with_for_update=True)
    if ext is None:
        raise NotFound(f"extension {extension_id} not found", key="error.extension_not_found")
    ticket = await uow.tickets.get(ext.ticket_id, for_update=True)
    assert ticket is not None
    return ext, ticket


async def decide_extension(
    uow: UnitOfWork, deps: Deps, extension_id: int, actor: Person, approve: bool,
    note: str | None = None,
) -> Extension:
    perm.require(perm.is_coordinator(actor), "decide extensions")
    ext, ticket = await get_extension(uow, extension_id)
    if ext.status != ExtensionStatus.PENDING.value:
        raise InvalidInput("extension already decided", key="error.extension_decided",
                           ref=ticket.ref)
    now = deps.clock.now()
    ext.decided_by_id, ext.decided_at, ext.decision_note = actor.id, now, note
    requester = ext.requested_by_id
    if approve and TicketState(ticket.state) not in OPEN_STATES:
        raise InvalidInput("ticket is not open", key="error.ticket_not_open", ref=ticket.ref)
    if approve:
        new_deadline = max(ext.new_deadline, now + timedelta(minutes=1))
        if new_deadline <= ticket.deadline_at:
            # The deadline moved past the requested date meanwhile (a pause on the reporter, a
            # recategorisation): approving would shorten it, which sla.extend refuses with a
            # ValueError. Say so; the coordinator refuses the stale request instead.
            raise InvalidInput("requested date is no longer after the current deadline",
                               key="error.extension_not_later",
                               deadline=format_local_date(ticket.deadline_at, actor.language))
        ext.status = ExtensionStatus.APPROVED.value
        apply_sla(ticket, sla.extend(deps.calendar, sla_clock(ticket), new_deadline, now))
        ticket.extension_count += 1
        record(uow, ticket, EventKind.EXTENSION_APPROVED, at=now, actor=actor, note=note,
               extension_id=ext.id)
        record(uow, ticket, EventKind.DEADLINE_CHANGED, at=now, actor=actor,
               deadline=ticket.deadline_at.isoformat(), cycle=ticket.cycle, reason="extension",
               requested=new_deadline.isoformat())
        await tell_person(uow, deps, ticket, requester, "tickets.extension_approved", skip=actor)
        await tell_reporter(uow, deps, ticket, "tickets.deadline_extended")
    else:
        ext.status = ExtensionStatus.REFUSED.value
        record(uow, ticket, EventKind.EXTENSION_REFUSED, at=now, actor=actor, note=note,
               extension_id=ext.id)
        await tell_person(uow, deps, ticket, requester, "tickets.extension_refused", skip=actor,
                           note=note or "")
    return ext
