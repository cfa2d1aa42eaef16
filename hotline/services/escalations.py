"""Writing escalation steps: one row, one event and the messages per step, exactly once.

The sweep (``escalation.sweep``) decides which ladder steps are due and calls ``write_steps``;
services call ``fire_now`` for a trigger that is an act rather than elapsed time (a second
extension request), so a step fired at once and one fired by a sweep leave the same trace and
fire once between them. Each step is an ``escalations`` row with a unique (ticket, level, cycle)
key, inserted with ``ON CONFLICT DO NOTHING ... RETURNING``; only the rows this transaction
really inserted get their ESCALATED event and their messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert as insert_core
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.clock import ensure_utc
from hotline.deps import Deps
from hotline.domain.enums import EscalationLevel, EventKind, Priority
from hotline.domain.ladder import Step, Thresholds
from hotline.services.alerts import red_groups
from hotline.services.notices import Audience, Notices, pending_extensions
from storage.db import upsert_insert
from storage.models import Escalation, OutboxMessage, Ticket, TicketEvent
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class FiredStep:
    ticket_id: int
    ref: str
    group: str
    level: str
    reason: str
    cycle: int
    due_at: datetime
    #: Outbox rows written (0 in a dry run, or when nobody with a contact holds the role).
    messages: int = 0
    held_until: datetime | None = None


def hold_until(deps: Deps, now: datetime) -> datetime | None:
    """When messages created at ``now`` may go out (None: at once, we are in working hours)."""
    moment = deps.calendar.next_working_moment(now)
    return moment if moment > now else None


async def write_steps(
    session: AsyncSession, decided: Sequence[tuple[Ticket, Step]], *, now: datetime,
    hold: datetime | None, audience: Audience, notices: Notices,
) -> tuple[list[FiredStep], int]:
    """Record decided steps exactly once each, in the caller's transaction (not committed).

    Each step is an ``escalations`` row inserted with ``ON CONFLICT DO NOTHING ... RETURNING``;
    only the rows really inserted get their ESCALATED event and their messages, held until
    ``hold`` unless the ticket is critical. Returns the fired steps and how many were already
    in the table. Shared by the sweep and by services that fire a step as it happens
    (``fire_now``), so both leave the same trace for digests, dashboards and later sweeps.
    """
    await audience.load_roles(session)
    values = [
        {
            "ticket_id": ticket.id,
            "level": step.level.value,
            "cycle": step.cycle,
            "reason": step.reason.value,
            "due_at": step.due_at,
            "fired_at": now,
        }
        for ticket, step in decided
    ]
    # executemany: one cached statement, sent as multi-row batches by the driver layer.
    insert = (
        upsert_insert(session, Escalation.__table__)
        .on_conflict_do_nothing(index_elements=["ticket_id", "level", "cycle"])
        .returning(Escalation.ticket_id, Escalation.level, Escalation.cycle)
    )
    inserted = {tuple(row) for row in await session.execute(insert, values)}
    already = len(values) - len(inserted)
    mine = [(tk, s) for tk, s in decided if (tk.id, s.level.value, s.cycle) in inserted]
    if not mine:
        return [], already
    await audience.ensure(session, {tk.assignee_id for tk, _ in mine if tk.assignee_id})
    pending = await pending_extensions(
        session, [tk.id for tk, s in mine if s.level is EscalationLevel.L2]
    )
    events: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    fired_steps: list[FiredStep] = []
    for ticket, step in mine:
        held = None if ticket.priority == Priority.CRITICAL.value else hold
        messages = notices.outbox_rows(
            ticket, step, pending_extension=pending.get(ticket.id), held_until=held
        )
        outbox += messages
        sent = len(messages)
        group = audience.groups.get(ticket.group_id)
        events.append(
            {
                "ticket_id": ticket.id,
                "kind": EventKind.ESCALATED.value,
                "actor_id": None,
                "at": now,
                "from_state": None,
                "to_state": None,
                "note": None,
                "data": {
                    "level": step.level.value,
                    "reason": step.reason.value,
                    "cycle": step.cycle,
                    "due_at": step.due_at.isoformat(),
                    # Messages queued to people; 0 means nobody could be told (no
                    # recipient): the step is recorded so it is not retried, never counted
                    # as sent (digests count ``messages``).
                    "messages": sent,
                    "no_recipient": sent == 0,
                    "held_until": held.isoformat() if held else None,
                },
            }
        )
        fired_steps.append(
            FiredStep(
                ticket_id=ticket.id, ref=ticket.ref, group=group.code if group else "",
                level=step.level.value, reason=step.reason.value, cycle=step.cycle,
                due_at=step.due_at, messages=sent, held_until=held,
            )
        )
    # The ticket's updated_at is left alone on purpose: an escalation is not activity on
    # the ticket, and "longest stalled" in digests must not be reset by our own nagging.
    await session.execute(insert_core(TicketEvent.__table__), events)
    if outbox:
        await session.execute(insert_core(OutboxMessage.__table__), outbox)
    return fired_steps, already


async def fire_now(uow: UnitOfWork, deps: Deps, ticket: Ticket, step: Step) -> FiredStep | None:
    """Fire one step as the act that triggers it is recorded, in that act's transaction.

    For triggers that are acts rather than elapsed time (``ladder.extension_request_step``):
    waiting for the next sweep would race with whatever the act leads to next. The step is
    written by ``write_steps`` with the sweep's audience, texts (the red line comes from the
    open red alerts, as of the last sweep) and working-hours hold, so a later sweep finds the
    level fired and stays silent, and the unique key keeps a step the sweep fired first from
    firing twice. Returns the fired step, or None if its level had already fired in its cycle.
    """
    session = uow.session
    now = ensure_utc(deps.clock.now())
    await uow.flush()  # the triggering act's rows first, so events read in order
    thresholds = Thresholds.from_settings(deps.settings)
    audience = Audience()
    notices = Notices(deps.settings, deps.calendar, thresholds, now, await red_groups(uow),
                      audience)
    fired, _ = await write_steps(session, [(ticket, step)], now=now, hold=hold_until(deps, now),
                                 audience=audience, notices=notices)
    return fired[0] if fired else None
