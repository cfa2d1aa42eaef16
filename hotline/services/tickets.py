"""Ticket services: each is one business step inside the caller's unit of work.

A service checks permission, applies the state machine, moves the SLA clock, appends the
event, and queues notifications for the people concerned -- the caller commits once.
The actor gets their direct reply from whoever called (engine, CLI), not from here.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from hotline.clock import local_midnight
from hotline.deps import Deps
from hotline.domain import ids, routing, sla
from hotline.domain import payloads as P
from hotline.domain.enums import OPEN_STATES, EventKind, Priority, Role, TicketState
from hotline.domain.lifecycle import Action, can
from hotline.domain.rating import finished_at, rating_open
from hotline.errors import InvalidInput
from hotline.services import permissions as perm
from hotline.services.common import (
    apply_sla,
    record,
    sla_clock,
    sla_days_for,
    transition,
)
from hotline.services.similarity import index_ticket
from hotline.services.telling import check_text, tell_person, tell_reporter
from hotline.taxonomy import FALLBACK_CATEGORY
from storage.models import Attachment, Contact, OwnerGroup, Person, Ticket
from storage.uow import UnitOfWork

MAX_TITLE = 120


@dataclass(frozen=True)
class AttachmentIn:
    kind: str
    file_ref: str
    file_name: str | None = None
    mime_type: str | None = None


def _store_attachments(
    uow: UnitOfWork, ticket: Ticket, event_id: int, items: Sequence[AttachmentIn], now: datetime
) -> None:
    """Keep references to the files that came with a message (fetched only if someone asks)."""
    for item in items:
        uow.session.add(
            Attachment(
                ticket_id=ticket.id, event_id=event_id, channel=ticket.channel, kind=item.kind,
                file_ref=item.file_ref, file_name=item.file_name, mime_type=item.mime_type,
                created_at=now,
            )
        )


def make_title(description: str) -> str:
    first = next((line.strip() for line in description.splitlines() if line.strip()), "")
    return first if len(first) <= MAX_TITLE else first[: MAX_TITLE - 1].rstrip() + "…"


# --------------------------------------------------------------------------------------------
# Filing and routing
# --------------------------------------------------------------------------------------------


async def file_ticket(
    uow: UnitOfWork,
    deps: Deps,
    *,
    reporter: Person,
    contact: Contact | None,
    description: str,
    category: str | None,
    confidence: float | None = None,
    priority: Priority = Priority.NORMAL,
    attachments: Sequence[AttachmentIn] = (),
    channel: str = "console",
) -> Ticket:
    """Create a ticket; ``category=None`` sends it to the coordinators' triage queue."""
    perm.require(reporter.role == Role.REPORTER.value, "file a report")
    text = check_text(description, deps, "report")
    now = deps.clock.now()
    filed_today = await uow.tickets.count_filed_since(
        reporter.id, local_midnight(now, deps.settings.timezone))
    if filed_today >= deps.settings.daily_report_limit:
        raise InvalidInput(
            "daily report limit reached",
            key="error.daily_limit",
            limit=deps.settings.daily_report_limit,
        )
    triage = category is None
    code = FALLBACK_CATEGORY if triage else category
    cat = deps.taxonomy.category(code)  # raises for unknown codes
    group = await uow.people.group(cat.group)
    if group is None:
        raise InvalidInput(f"owner group {cat.group} missing", key="error.unknown_group")
    # Chosen before the ticket exists, so its row is written once, already assigned.
    assignee = None if triage else await choose_assignee(uow, deps, group)

    year = now.astimezone(ZoneInfo(deps.settings.timezone)).year
    seq = await uow.tickets.next_seq(year)
    days = sla_days_for(deps, code, priority.value)
    clock = sla.start_cycle(deps.calendar, now, days)
    ticket = Ticket(
        ref=ids.format_ref(year, seq),
        year=year,
        seq=seq,
        check_code=secrets.token_urlsafe(9)[:12],
        reporter_id=reporter.id,
        organisation_id=reporter.organisation_id,
        contact_id=contact.id if contact is not None else None,
        channel=channel,
        language=reporter.language,
        category=code,
        group_id=group.id,
        state=TicketState.NEW.value,
        priority=priority.value,
        needs_triage=triage,
        classifier_confidence=confidence,
        title=make_title(text),
        description=text,
        sla_days=days,
        accepted_at=now,
        first_response_due_at=sla.first_response_due(
            deps.calendar, now, deps.settings.first_response_business_days
        ),
        created_at=now,
        updated_at=now,
        cycle=1,
        cycle_started_at=now,
        budget_seconds=0.0,
        paused_seconds=0.0,
        deadline_at=now,
        extension_count=0,
        extension_requests=0,
        reopen_count=0,
    )
    apply_sla(ticket, clock)
    uow.tickets.add(ticket)
    created = record(
        uow, ticket, EventKind.CREATED, at=now, actor=reporter, to_state=ticket.state,
        category=code, group=group.code, priority=priority.value, confidence=confidence,
        triage=triage, channel=channel, sla_days=days,
        deadline=ticket.deadline_at.isoformat(),
        first_response_due=ticket.first_response_due_at.isoformat(),
    )
    if triage:
        for coordinator in await uow.people.with_role(Role.COORDINATOR):
            await tell_person(
                uow, deps, ticket, coordinator.id, "tickets.triage_needed",
                buttons=[[("buttons.triage", P.build(P.TRIAGE, ticket.ref))]],
            )
    else:
        await place(uow, deps, ticket, group, assignee)
    await uow.flush()  # the caller gets the ticket with its id (and the event's, for attachments)
    _store_attachments(uow, ticket, created.id, attachments, now)
    await index_ticket(uow, deps, ticket)
    return ticket


async def choose_assignee(uow: UnitOfWork, deps: Deps, group: OwnerGroup) -> Person | None:
    """``routing.least_loaded`` over the group's tiers (members, then leads); None when the
    group claims from its queue or has nobody."""
    if group.claim_from_queue:
        return None
    epoch = datetime.min.replace(tzinfo=deps.clock.now().tzinfo)
    for tier in routing.ASSIGNEE_TIERS:
        chosen = routing.least_loaded(
            await uow.tickets.with_open_load([r.value for r in tier], group.id), epoch
        )
        if chosen is not None:
            return chosen
    return None


async def route(uow: UnitOfWork, deps: Deps, ticket: Ticket, group: OwnerGroup) -> Person | None:
    """Assign to ``choose_assignee``'s pick, or announce the ticket to the group's queue."""
    chosen = await choose_assignee(uow, deps, group)
    await place(uow, deps, ticket, group, chosen)
    return chosen


async def place(uow: UnitOfWork, deps: Deps, ticket: Ticket, group: OwnerGroup,
                assignee: Person | None) -> None:
    """Give the ticket to ``assignee``, or with nobody chosen announce it to the group's queue.
    (Queries for the recipients flush a ticket not yet written: the ORM autoflushes.)"""
    if assignee is None:
        await _announce_to_group(uow, deps, ticket, group)
    else:
        await assign(uow, deps, ticket, assignee, actor=None)


async def _announce_to_group(uow: UnitOfWork, deps: Deps, ticket: Ticket, group: OwnerGroup) -> None:
    people = await uow.people.with_role(Role.MEMBER, Role.LEAD, group_id=group.id)
    if not people:
        people = await uow.people.with_role(Role.COORDINATOR)
    for person in people:
        await tell_person(
            uow, deps, ticket, person.id, "tickets.in_group_queue",
            buttons=[[("buttons.claim", P.build(P.CLAIM, ticket.ref))]],
        )


async def assign(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, assignee: Person, *, actor: Person | None
) -> None:
    now = deps.clock.now()
    previous = ticket.assignee_id
    transition(
        uow, ticket, Action.ASSIGN, EventKind.ASSIGNED, at=now, actor=actor,
        assignee_id=assignee.id, previous_assignee_id=previous, group_id=ticket.group_id,
    )
    ticket.assignee_id = assignee.id
    ticket.needs_triage = False
    assignee.last_assigned_at = now
    await tell_person(
        uow, deps, ticket, assignee.id, "tickets.assigned_to_you", skip=actor,
        buttons=[[("buttons.acknowledge", P.build(P.ACK, ticket.ref))]],
        description=ticket.description[:500],
    )
    if previous is not None and previous != assignee.id:
        await tell_person(uow, deps, ticket, previous, "tickets.reassigned_away", skip=actor)


async def claim(uow: UnitOfWork, deps: Deps, ticket: Ticket, member: Person) -> None:
    perm.require(perm.can_claim(member, ticket), "claim this ticket")
    await assign(uow, deps, ticket, member, actor=member)


async def reassign(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, target: Person
) -> None:
    perm.require(perm.can_reassign(actor, ticket, target), "reassign this ticket")
    if target.group_id is not None and target.group_id != ticket.group_id:
        ticket.group_id = target.group_id
    await assign(uow, deps, ticket, target, actor=actor)


# --------------------------------------------------------------------------------------------
# Working the ticket
# --------------------------------------------------------------------------------------------


async def acknowledge(uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person) -> None:
    perm.require(perm.can_work(actor, ticket), "acknowledge this ticket")
    now = deps.clock.now()
    transition(uow, ticket, Action.ACKNOWLEDGE, EventKind.ACKNOWLEDGED, at=now, actor=actor)
    if ticket.acknowledged_at is None:
        ticket.acknowledged_at = now
    ticket.last_progress_at = now
    await tell_reporter(uow, deps, ticket, "tickets.acknowledged")


async def post_update(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, text: str
) -> None:
    perm.require(perm.can_work(actor, ticket), "update this ticket")
    note = check_text(text, deps, "update")
    if ticket.state not in (TicketState.IN_PROGRESS.value, TicketState.WAITING_REPORTER.value):
        # An update implies work has started: acknowledge on the way if needed.
        if can(TicketState(ticket.state), Action.ACKNOWLEDGE):
            await acknowledge(uow, deps, ticket, actor)
        else:
            transition(uow, ticket, Action.ACKNOWLEDGE, EventKind.ACKNOWLEDGED,
                       at=deps.clock.now(), actor=actor)  # raises IllegalTransition
    now = deps.clock.now()
    record(uow, ticket, EventKind.MESSAGE, at=now, actor=actor, note=note)
    ticket.last_progress_at = now
    await tell_reporter(uow, deps, ticket, "tickets.update", note=note)


async def request_info(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, question: str
) -> None:
    """Ask the reporter; the SLA clock pauses until they answer."""
    perm.require(perm.can_work(actor, ticket), "ask the reporter for information")
    note = check_text(question, deps, "question")
    now = deps.clock.now()
    transition(uow, ticket, Action.REQUEST_INFO, EventKind.INFO_REQUESTED, at=now, actor=actor,
               note=note)
    apply_sla(ticket, sla.pause(deps.calendar, sla_clock(ticket), now))
    record(uow, ticket, EventKind.PAUSED, at=now, actor=actor)
    ticket.last_progress_at = now
    await tell_reporter(
        uow, deps, ticket, "tickets.info_requested", note=note,
        buttons=[[("buttons.answer", P.build(P.ANSWER, ticket.ref))]],
    )


async def add_info(
    uow: UnitOfWork,
    deps: Deps,
    ticket: Ticket,
    reporter: Person,
    text: str,
    attachments: Sequence[AttachmentIn] = (),
) -> None:
    """Reporter adds information; if the owner was waiting for it, the SLA clock resumes."""
    # The reporting side, or a reporter affected by the same problem (their own details).
    from hotline.services.kinds import is_affected  # kinds builds on this module

    affected = reporter.role == Role.REPORTER.value and await is_affected(uow, ticket, reporter)
    perm.require(perm.is_reporter_side(reporter, ticket) or affected,
                 "add information to this ticket")
    if ticket.state in (TicketState.CLOSED.value, TicketState.REJECTED.value):
        raise InvalidInput("ticket is closed", key="error.ticket_closed", ref=ticket.ref)
    note = check_text(text, deps, "information") if text.strip() or not attachments else ""
    now = deps.clock.now()
    if ticket.state == TicketState.WAITING_REPORTER.value:
        event = transition(uow, ticket, Action.PROVIDE_INFO, EventKind.INFO_PROVIDED, at=now,
                           actor=reporter, note=note or None)
        apply_sla(ticket, sla.resume(deps.calendar, sla_clock(ticket), now))
        record(uow, ticket, EventKind.RESUMED, at=now, actor=reporter,
               deadline=ticket.deadline_at.isoformat())
        key = "tickets.info_provided"
    else:
        event = record(uow, ticket, EventKind.INFO_ADDED, at=now, actor=reporter, note=note or None)
        key = "tickets.info_added"
    await uow.flush()
    _store_attachments(uow, ticket, event.id, attachments, now)
    for item in attachments:
        record(uow, ticket, EventKind.ATTACHMENT, at=now, actor=reporter, kind=item.kind,
               file_name=item.file_name)
    await tell_person(uow, deps, ticket, ticket.assignee_id, key, note=note or "📎",
                       buttons=[[("buttons.update", P.build(P.UPDATE, ticket.ref))]])


async def resolve(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, actor: Person, resolution: str
) -> None:
    perm.require(perm.can_work(actor, ticket), "resolve this ticket")
    note = check_text(resolution, deps, "resolution")
    now = deps.clock.now()
    was_paused = ticket.paused_since is not None
    transition(uow, ticket, Action.RESOLVE, EventKind.RESOLVED, at=now, actor=actor, note=note,
               on_time=not sla.is_overdue(deps.calendar, sla_clock(ticket), now))
    if was_paused:
        apply_sla(ticket, sla.resume(deps.calendar, sla_clock(ticket), now))
    ticket.resolved_at = now
    ticket.last_progress_at = now
    await tell_reporter(
        uow, deps, ticket, "tickets.resolved", note=note,
        buttons=[[("buttons.confirm", P.build(P.CONFIRM, ticket.ref)),
                  ("buttons.reopen", P.build(P.REOPEN, ticket.ref))]],
    )


async def confirm(uow: UnitOfWork, deps: Deps, ticket: Ticket, reporter: Person) -> None:
    perm.require(perm.is_reporter_side(reporter, ticket), "confirm this ticket")
    now = deps.clock.now()
    transition(uow, ticket, Action.CLOSE, EventKind.CONFIRMED, at=now, actor=reporter)
    ticket.closed_at = now
    await tell_person(uow, deps, ticket, ticket.assignee_id, "tickets.confirmed")


async def auto_close(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, *, not_before: datetime | None = None
) -> None:
    """Close a resolved ticket after the configured business days of reporter silence.

    The close is immediate; only the reporter's notice waits until ``not_before``. Nobody's
    act triggers it -- the sweep does, and the first sweep after downtime may close at night
    or on a holiday -- so the sweep passes the same working-hours hold as its escalation
    notices (SPEC §6: messages to people go out in working hours only). Unlike a critical
    escalation nothing in it is urgent, so the hold applies whatever the priority.
    """
    now = deps.clock.now()
    transition(uow, ticket, Action.CLOSE, EventKind.AUTO_CLOSED, at=now, actor=None,
               business_days=deps.settings.auto_close_business_days)
    ticket.closed_at = now
    await tell_reporter(uow, deps, ticket, "tickets.auto_closed", not_before=not_before,
                         days=deps.settings.auto_close_business_days)


def auto_close_due(deps: Deps, ticket: Ticket, now: datetime) -> bool:
    if ticket.state != TicketState.RESOLVED.value or ticket.resolved_at is None:
        return False
    due = deps.calendar.add_business_days(ticket.resolved_at, deps.settings.auto_close_business_days)
    return now >= due


async def rate(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, reporter: Person, stars: int,
    comment: str | None = None,
) -> None:
    perm.require(perm.is_reporter_side(reporter, ticket), "rate this ticket")
    if ticket.state not in (TicketState.RESOLVED.value, TicketState.CLOSED.value):
        raise InvalidInput("only resolved tickets can be rated", key="error.rate_not_resolved",
                           ref=ticket.ref)
    window = deps.settings.rating_window_days
    if not rating_open(ticket.state, finished_at(ticket.resolved_at, ticket.closed_at),
                       deps.clock.now(), window):
        raise InvalidInput("rating window has passed", key="error.rate_window", ref=ticket.ref,
                           days=window)
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidInput("rating must be 1 to 5", key="error.bad_rating")
    note = check_text(comment, deps, "comment") if comment and comment.strip() else None
    now = deps.clock.now()
    ticket.rating = stars
    ticket.rating_comment = note
    record(uow, ticket, EventKind.RATED, at=now, actor=reporter, note=note, stars=stars)
    await tell_person(uow, deps, ticket, ticket.assignee_id, "tickets.rated", stars=stars,
                       note=note or "")


async def reopen(
    uow: UnitOfWork, deps: Deps, ticket: Ticket, reporter: Person, reason: str
) -> None:
    """Back to work with a fresh SLA cycle: resolved any time, closed within the window."""
    perm.require(perm.is_reporter_side(reporter, ticket), "reopen this ticket")
    note = check_text(reason, deps, "reason")
    now = deps.clock.now()
    if ticket.state == TicketState.CLOSED.value:
        window = deps.settings.reopen_window_business_days
        closed_at = ticket.closed_at or now
        if deps.calendar.business_days_between(closed_at, now) > window:
            raise InvalidInput("reopen window has passed", key="error.reopen_window",
                               ref=ticket.ref, days=window)
    transition(uow, ticket, Action.REOPEN, EventKind.REOPENED, at=now, actor=reporter, note=note)
    apply_sla(ticket, sla.restart(deps.calendar, sla_clock(ticket), now, ticket.sla_days))
    ticket.reopen_count += 1
    ticket.resolved_at = None
    ticket.closed_at = None
    await index_ticket(uow, deps, ticket)  # suggestible again (its postings may be pruned)
    ticket.first_response_due_at = sla.first_response_due(
        deps.calendar, now, deps.settings.first_response_business_days
    )
    record(uow, ticket, EventKind.DEADLINE_CHANGED, at=now, actor=reporter,
           deadline=ticket.deadline_at.isoformat(), cycle=ticket.cycle, reason="reopen",
           sla_days=ticket.sla_days)
    assignee = await uow.people.get(ticket.assignee_id) if ticket.assignee_id else None
    if assignee is None or not assignee.active:
        group = await uow.people.group_by_id(ticket.group_id)
        if group is not None:
            await route(uow, deps, ticket, group)
        return
    await tell_person(uow, deps, ticket, assignee.id, "tickets.reopened", note=note,
                       buttons=[[("buttons.acknowledge", P.build(P.ACK, ticket.ref))]])


def overdue_business_days(deps: Deps, ticket: Ticket, now: datetime) -> float:
    return sla.business_days_overdue(deps.calendar, sla_clock(ticket), now)


def rag_of(deps: Deps, ticket: Ticket, now: datetime) -> str:
    """RAG of an open ticket; finished tickets are not at risk, so they read green."""
    if TicketState(ticket.state) not in OPEN_STATES:
        return "green"
    return sla.rag(deps.calendar, sla_clock(ticket), now).value

