"""A ladder step with nobody to tell is not sent and not counted.

A reminder is for the assignee; a ticket nobody is assigned to (its group claims from a queue,
or had nobody when it was filed) reminds the group lead instead, with words asking for an
owner. When nobody at all can be told, the step is recorded as "no recipient" -- so it is not
retried every minute -- but the digest counts only messages actually queued to a person.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from escalation.sweep import SweepReport, sweep
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.digests import build_digest
from hotline.digests import period as P
from hotline.domain.enums import EventKind, Role
from storage.models import OutboxMessage, Ticket, TicketEvent
from tests.conftest import local
from tests.factories import file, make_reporter, make_staff

pytestmark = pytest.mark.timeout(60)


async def _escalation_messages(app: App) -> list[OutboxMessage]:
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [m for m in rows if str(m.payload["meta"].get("key", "")).startswith("escalation.")]


async def _escalated(app: App) -> list[TicketEvent]:
    async with app.uow() as uow:
        stmt = select(TicketEvent).where(TicketEvent.kind == EventKind.ESCALATED.value)
        return list((await uow.session.execute(stmt.order_by(TicketEvent.id))).scalars())


async def _unassigned_ticket(app: App, clock: ManualClock, text: str) -> Ticket:
    """A ticket filed on Monday 7 December into a group with nobody in it yet."""
    reporter, contact = await make_reporter(app)
    clock.set(local(2026, 12, 7, 9, 0))
    ticket = await file(app, reporter, contact, text)
    assert ticket.assignee_id is None
    return ticket


async def _sweep_at_reminder(app: App, clock: ManualClock, ticket: Ticket) -> SweepReport:
    """The sweep at the instant half the ticket's time is used (its reminder is due)."""
    due = app.calendar.add_business_seconds(ticket.cycle_started_at, 0.5 * ticket.budget_seconds)
    clock.set(due)
    return await sweep(app, due)


async def test_reminder_for_an_unassigned_ticket_goes_to_the_group_lead(
    app: App, clock: ManualClock
) -> None:
    ticket = await _unassigned_ticket(app, clock, "Chưa có ai trong nhóm khi phiếu được gửi")
    lead, _ = await make_staff(app, Role.LEAD, "mps", name="Lead Lan")
    await make_staff(app, Role.COORDINATOR, name="Coordinator Cúc")
    report = await _sweep_at_reminder(app, clock, ticket)
    reminder = next(s for s in report.fired if s.level == "reminder")
    assert reminder.messages == 1

    sent = [m for m in await _escalation_messages(app) if m.payload["meta"]["level"] == "reminder"]
    assert [m.person_id for m in sent] == [lead.id]
    text = sent[0].payload["text"]
    assert "chưa được phân công người xử lý" in text and ticket.ref in text
    buttons = [b["payload"] for row in sent[0].payload["buttons"] for b in row]
    assert buttons == [f"rea:{ticket.ref}", f"open:{ticket.ref}"]  # assign, not "post an update"


async def test_a_step_nobody_can_hear_is_recorded_as_no_recipient_and_not_counted(
    app: App, clock: ManualClock
) -> None:
    ticket = await _unassigned_ticket(app, clock, "Không ai nhận được nhắc việc")
    report = await _sweep_at_reminder(app, clock, ticket)
    due = clock.now()
    assert {s.level for s in report.fired} >= {"reminder", "l1"}
    assert all(s.messages == 0 for s in report.fired)
    assert await _escalation_messages(app) == []

    events = await _escalated(app)
    assert events and all(e.data["messages"] == 0 and e.data["no_recipient"] for e in events)
    again = await sweep(app, due)
    assert again.fired == []  # recorded: not retried every minute

    # Now someone can be told: the next step reaches them, and only that is counted.
    await make_staff(app, Role.COORDINATOR, name="Coordinator Cúc")
    clock.set(ticket.deadline_at)
    later = await sweep(app, ticket.deadline_at)
    assert [(s.level, s.messages) for s in later.fired] == [("l2", 1)]

    week = P.as_of(P.week_of(ticket.deadline_at), clock.now())
    month = P.as_of(P.month(2026, 12), clock.now())
    queued = await _escalation_messages(app)
    for period in (week, month):
        digest = await build_digest(app, period)
        in_period = [m for m in queued if period.start <= m.created_at < period.end]
        assert digest.escalations == len(in_period)
    assert (await build_digest(app, month)).escalations == 1
    assert Counter(e.data["no_recipient"] for e in await _escalated(app)) == {True: 2, False: 1}
