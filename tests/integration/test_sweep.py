"""Escalation sweeps against a real database, jumping through weeks with the manual clock.

Expected instants come from the business calendar (so they follow its holiday data), and the
Tết 2027 scenario also pins the dates a person would check by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from escalation.sweep import SweepReport, sweep
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain.enums import EventKind, Priority, Role, TicketState
from hotline.services import coordination, tickets
from hotline.services.alerts import overdue_by_group, red_groups
from hotline.services.app import open_app
from hotline.services.common import get_ticket
from storage.models import (
    Escalation,
    Extension,
    GroupAlert,
    OutboxMessage,
    Person,
    Ticket,
    TicketEvent,
)
from tests.conftest import VN, local
from tests.factories import file, make_reporter, make_staff

pytestmark = pytest.mark.timeout(60)


@dataclass
class Cast:
    reporter: Person
    reporter_contact: Any
    member: Person
    lead: Person
    coordinator: Person
    leader: Person


async def cast(app: App) -> Cast:
    reporter, contact = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps", name="Member Minh")
    lead, _ = await make_staff(app, Role.LEAD, "mps", name="Lead Lan")
    coordinator, _ = await make_staff(app, Role.COORDINATOR, name="Coordinator Cúc")
    leader, _ = await make_staff(app, Role.LEADER, name="Leader Long", language="en")
    return Cast(reporter, contact, member, lead, coordinator, leader)


async def act(app: App, ref: str, step: Callable[..., Awaitable[Any]], actor: Person,
              *args: Any) -> Any:
    """One service call in its own transaction, as the engine would make it."""
    async with app.uow() as uow:
        ticket = await get_ticket(uow, ref)
        person = await uow.people.get(actor.id)
        result = await step(uow, app, ticket, person, *args)
        await uow.commit()
        return result


async def reload(app: App, ref: str) -> Ticket:
    async with app.uow() as uow:
        return await get_ticket(uow, ref, for_update=False)


async def escalations(app: App) -> list[tuple[int, str, int, str]]:
    async with app.uow() as uow:
        rows = await uow.session.execute(
            select(Escalation.ticket_id, Escalation.level, Escalation.cycle, Escalation.reason)
            .order_by(Escalation.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def messages(app: App, key_prefix: str = "escalation.") -> list[OutboxMessage]:
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [m for m in rows if str(m.payload["meta"].get("key", "")).startswith(key_prefix)]


async def escalated_events(app: App) -> list[TicketEvent]:
    async with app.uow() as uow:
        stmt = select(TicketEvent).where(TicketEvent.kind == EventKind.ESCALATED.value)
        return list((await uow.session.execute(stmt.order_by(TicketEvent.id))).scalars())


async def run(app: App, clock: ManualClock, when: datetime, **kwargs: Any) -> SweepReport:
    clock.set(when)
    return await sweep(app, when, **kwargs)


def fired(report: SweepReport) -> list[tuple[str, str]]:
    return [(s.level, s.reason) for s in report.fired]


# --------------------------------------------------------------------------------------------


async def test_untouched_ticket_climbs_the_ladder_through_tet_2027(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    clock.set(local(2027, 1, 27, 9, 0))  # Wednesday, a week and a half before Tết
    ticket = await file(app, people.reporter, people.reporter_contact, "Dữ liệu không đồng bộ")
    cal = app.calendar
    expected = {
        "l1": ticket.first_response_due_at,
        "reminder": cal.add_business_seconds(ticket.cycle_started_at, 0.5 * ticket.budget_seconds),
        "l2": ticket.deadline_at,
        "l3": cal.add_business_days(ticket.deadline_at, 5),
    }
    # By hand: Thu 28, Fri 29, Mon 1, Tue 2, Wed 3, (Tết 4-10 Feb), Thu 11, Fri 12, Mon 15,
    # Tue 16, Wed 17 -> deadline Wed 17 Feb 09:00; five more -> Wed 24 Feb 09:00.
    assert expected == {
        "l1": local(2027, 1, 28, 9, 0),
        "reminder": local(2027, 2, 3, 9, 0),
        "l2": local(2027, 2, 17, 9, 0),
        "l3": local(2027, 2, 24, 9, 0),
    }
    for instant in expected.values():
        assert cal.is_working_day(instant.astimezone(VN).date())

    start = local(2027, 1, 27, 12, 0)
    times = {start + timedelta(days=d) for d in range(0, 32)}  # every day at noon, Tết included
    times |= {e - timedelta(minutes=1) for e in expected.values()} | set(expected.values())
    seen: dict[str, datetime] = {}
    for when in sorted(times):
        report = await run(app, clock, when)
        for step in report.fired:
            assert step.level not in seen, f"{step.level} fired twice"
            seen[step.level] = when
            assert step.due_at == expected[step.level]
    assert seen == expected  # each rung at its own instant, not a minute earlier

    rows = await escalations(app)
    assert [(lvl, cyc, why) for _, lvl, cyc, why in rows] == [
        ("l1", 1, "first_response"), ("reminder", 1, "sla_fraction"), ("l2", 1, "deadline"),
        ("l3", 1, "overdue_days"),
    ]
    sent = await messages(app)
    by_level = {m.payload["meta"]["level"]: m for m in sent}
    assert len(sent) == 4
    assert by_level["reminder"].person_id == people.member.id
    assert by_level["l1"].person_id == people.lead.id
    assert by_level["l2"].person_id == people.coordinator.id
    assert by_level["l3"].person_id == people.leader.id
    assert "Escalation level 3" in by_level["l3"].payload["text"]  # the leader reads English
    assert "Cảnh báo cấp 1" in by_level["l1"].payload["text"]
    payloads = [b["payload"] for row in by_level["reminder"].payload["buttons"] for b in row]
    assert payloads == [f"upd:{ticket.ref}", f"ext:{ticket.ref}"]
    l1_buttons = [b["payload"] for row in by_level["l1"].payload["buttons"] for b in row]
    assert l1_buttons == [f"rea:{ticket.ref}", f"open:{ticket.ref}"]
    assert len(await escalated_events(app)) == 4


async def test_tet_2027_dates_by_hand(app: App, clock: ManualClock) -> None:
    """Filed Friday 29 Jan 2027 09:00 with the 5-day security SLA. Tết 2027 is Thursday 4 to
    Wednesday 10 February: working days after filing are Mon 1, Tue 2, Wed 3, then Thu 11,
    Fri 12, Mon 15 ..."""
    people = await cast(app)
    clock.set(local(2027, 1, 29, 9, 0))
    ticket = await file(app, people.reporter, people.reporter_contact, "Lộ lọt dữ liệu",
                        category="security")
    assert ticket.first_response_due_at == local(2027, 2, 1, 9, 0)
    assert ticket.deadline_at == local(2027, 2, 12, 9, 0)
    plan = {
        local(2027, 2, 1, 9, 0): [("l1", "first_response")],
        local(2027, 2, 2, 13, 30): [("reminder", "sla_fraction")],  # 22.5 of 45 working hours
        local(2027, 2, 12, 9, 0): [("l2", "deadline")],
        local(2027, 2, 19, 9, 0): [("l3", "overdue_days")],  # Mon 15 .. Fri 19
    }
    for when in sorted(set(plan) | {local(2027, 2, d, 12, 0) for d in range(4, 11)}):
        before = await run(app, clock, when - timedelta(minutes=1))
        assert before.fired == [], when
        assert fired(await run(app, clock, when)) == plan.get(when, []), when


async def test_paused_ticket_does_not_escalate_while_waiting_and_resumes_later(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Cần kết nối CSDL")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    clock.advance(hours=2)
    await act(app, ticket.ref, tickets.request_info, people.member, "Xin số văn bản?")
    # A month of waiting on the reporter: nothing, not even "no update".
    for day in range(1, 31):
        report = await run(app, clock, local(2026, 12, 7, 12, 0) + timedelta(days=day))
        assert report.fired == [], day
    clock.set(local(2027, 1, 6, 10, 0))
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        reporter = await uow.people.get(people.reporter.id)
        await tickets.add_info(uow, app, t, reporter, "Số 123/QĐ")
        await uow.commit()
    resumed = await reload(app, ticket.ref)
    assert resumed.deadline_at > ticket.deadline_at + timedelta(days=25)  # moved by the pause
    quiet_until = app.calendar.add_business_days(local(2027, 1, 6, 10, 0), 3)
    assert (await run(app, clock, quiet_until - timedelta(minutes=1))).fired == []
    assert fired(await run(app, clock, quiet_until)) == [("l1", "no_update")]
    assert (await run(app, clock, resumed.deadline_at - timedelta(minutes=1))).fired == []
    assert fired(await run(app, clock, resumed.deadline_at)) == [("l2", "deadline")]


async def test_approved_extension_starts_a_new_cycle(app: App, clock: ManualClock) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Chưa chia sẻ dữ liệu")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    first = await run(app, clock, ticket.deadline_at)
    assert ("l2", "deadline") in fired(first)

    clock.advance(hours=1)
    new_deadline = app.calendar.add_business_days(clock.now(), 5)
    ext = await act(app, ticket.ref, coordination.request_extension, people.member, new_deadline,
                    "Chờ Bộ Công an phản hồi")
    clock.advance(hours=1)
    async with app.uow() as uow:
        coordinator = await uow.people.get(people.coordinator.id)
        await coordination.decide_extension(uow, app, ext.id, coordinator, approve=True)
        await uow.commit()
    extended = await reload(app, ticket.ref)
    assert extended.cycle == 2
    assert (await run(app, clock, clock.now())).fired == []
    report = await run(app, clock, extended.deadline_at)
    assert ("l2", "deadline") in fired(report)
    l2 = [(lvl, cyc) for _, lvl, cyc, _ in await escalations(app) if lvl == "l2"]
    assert l2 == [("l2", 1), ("l2", 2)]


async def ask_for_time(app: App, people: Cast, ref: str, reason: str) -> Extension:
    """The member asks for a week past the ticket's current deadline (or past now if later)."""
    current = await reload(app, ref)
    target = max(current.deadline_at, app.clock.now()) + timedelta(days=7)
    return await act(app, ref, coordination.request_extension, people.member,  # type: ignore[no-any-return]
                     target, reason)


async def decide(app: App, people: Cast, ext: Extension, approve: bool) -> None:
    async with app.uow() as uow:
        coordinator = await uow.people.get(people.coordinator.id)
        await coordination.decide_extension(uow, app, ext.id, coordinator, approve=approve)
        await uow.commit()


async def told_leaders(app: App) -> list[OutboxMessage]:
    return await messages(app, "escalation.l3")


async def test_second_extension_request_goes_to_the_leaders_as_it_is_made(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Vướng quy trình")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    clock.advance(hours=1)
    await decide(app, people, await ask_for_time(app, people, ticket.ref, "Lần một"), True)
    assert (await run(app, clock, clock.now())).fired == []
    assert await told_leaders(app) == []
    clock.advance(hours=1)
    requested_at = clock.now()
    await ask_for_time(app, people, ticket.ref, "Lần hai")
    # No sweep yet: the leaders' notice was written with the request, the sweep's way.
    sent = await told_leaders(app)
    assert [m.person_id for m in sent] == [people.leader.id]
    assert "extension request number 2" in sent[0].payload["text"]
    assert sent[0].next_attempt_at == requested_at  # working hours: at once
    assert await escalations(app) == [(ticket.id, "l3", 2, "second_extension")]
    [event] = await escalated_events(app)
    assert (event.data["level"], event.data["reason"], event.data["cycle"]) == (
        "l3", "second_extension", 2
    )
    assert event.data["messages"] == 1 and event.at == requested_at
    # A sweep afterwards finds the level fired: nothing more, not even a lost insert race.
    report = await run(app, clock, clock.now() + timedelta(minutes=1))
    assert report.fired == [] and report.already_fired == 0
    assert len(await told_leaders(app)) == 1 and len(await escalated_events(app)) == 1


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "refused"])
@pytest.mark.parametrize("sweep_first", [False, True], ids=["decided_first", "swept_first"])
async def test_second_extension_request_reaches_the_leaders_once_whatever_happens_next(
    app: App, clock: ManualClock, approve: bool, sweep_first: bool
) -> None:
    """The gap this guards: an approval before any sweep opened a new cycle starting after the
    request, and the sweep (which looks at the current cycle only) never sent the L3."""
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Chờ phê duyệt")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    clock.advance(hours=1)
    await decide(app, people, await ask_for_time(app, people, ticket.ref, "Lần một"), True)
    clock.advance(hours=1)
    second = await ask_for_time(app, people, ticket.ref, "Lần hai")
    if sweep_first:
        assert (await run(app, clock, clock.now())).fired == []
    clock.advance(minutes=5)
    await decide(app, people, second, approve)
    after = await reload(app, ticket.ref)
    assert after.cycle == (3 if approve else 2)
    for later in (clock.now(), clock.now() + timedelta(hours=2)):
        assert (await run(app, clock, later)).fired == []
    sent = await told_leaders(app)
    assert [m.person_id for m in sent] == [people.leader.id]
    assert await escalations(app) == [(ticket.id, "l3", 2, "second_extension")]
    assert [e.data["reason"] for e in await escalated_events(app)] == ["second_extension"]


async def test_each_later_request_reaches_the_leaders_once_per_cycle(
    app: App, clock: ManualClock
) -> None:
    """Each request after the first notifies the leaders once, as the L3 of the cycle it is
    made in. After an approval every new request is in a new cycle, so each one notifies; a
    request repeated after a refusal is in a cycle whose L3 the leaders already had, and the
    unique (ticket, level, cycle) key of SPEC §6 keeps it at that one notice."""
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Chưa có hướng dẫn")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    for n in (1, 2, 3):
        clock.advance(hours=1)
        await decide(app, people, await ask_for_time(app, people, ticket.ref, f"Lần {n}"), True)
    texts = [m.payload["text"] for m in await told_leaders(app)]
    assert len(texts) == 2
    assert "extension request number 2" in texts[0] and "extension request number 3" in texts[1]
    assert await escalations(app) == [
        (ticket.id, "l3", 2, "second_extension"), (ticket.id, "l3", 3, "second_extension")
    ]
    # Fourth request refused, fifth in the same cycle (4): one notice for the cycle.
    clock.advance(hours=1)
    await decide(app, people, await ask_for_time(app, people, ticket.ref, "Lần 4"), False)
    clock.advance(hours=1)
    await ask_for_time(app, people, ticket.ref, "Lần 5")
    assert (await run(app, clock, clock.now())).fired == []
    assert len(await told_leaders(app)) == 3
    assert [(lvl, cyc) for _, lvl, cyc, _ in await escalations(app)] == [
        ("l3", 2), ("l3", 3), ("l3", 4)
    ]
    assert len(await escalated_events(app)) == 3
    current = await reload(app, ticket.ref)
    assert current.extension_requests == 5 and current.cycle == 4


async def test_second_extension_request_in_a_cycle_whose_l3_already_fired_adds_nothing(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Quá hạn lâu")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    clock.advance(hours=1)
    await decide(app, people, await ask_for_time(app, people, ticket.ref, "Lần một"), False)
    overdue = await run(app, clock, app.calendar.add_business_days(ticket.deadline_at, 5))
    assert ("l3", "overdue_days") in fired(overdue)
    clock.advance(hours=1)
    await ask_for_time(app, people, ticket.ref, "Lần hai")
    assert [r[3] for r in await escalations(app) if r[1] == "l3"] == ["overdue_days"]
    assert len(await told_leaders(app)) == 1


async def test_second_extension_request_out_of_hours_waits_like_the_sweeps_notices(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    normal = await file(app, people.reporter, people.reporter_contact, "Chậm cấp phép")
    critical = await file(app, people.reporter, people.reporter_contact, "Tấn công mạng",
                          category="security", priority=Priority.CRITICAL)
    for ticket in (normal, critical):
        await act(app, ticket.ref, tickets.acknowledge, people.member)
        await decide(app, people, await ask_for_time(app, people, ticket.ref, "Lần một"), True)
    tuesday_night = local(2026, 12, 8, 20, 0)
    clock.set(tuesday_night)
    for ticket in (normal, critical):
        await ask_for_time(app, people, ticket.ref, "Lần hai")
    held = {m.payload["meta"]["ticket"]: m.next_attempt_at for m in await told_leaders(app)}
    assert held == {normal.ref: local(2026, 12, 9, 8, 0), critical.ref: tuesday_night}
    events = {e.ticket_id: e.data["held_until"] for e in await escalated_events(app)}
    morning = local(2026, 12, 9, 8, 0)
    assert events == {normal.id: morning.astimezone(UTC).isoformat(), critical.id: None}


async def test_second_extension_request_while_waiting_on_the_reporter_goes_at_once(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Thiếu hồ sơ")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    clock.advance(hours=1)
    await decide(app, people, await ask_for_time(app, people, ticket.ref, "Lần một"), True)
    clock.advance(hours=1)
    await act(app, ticket.ref, tickets.request_info, people.member, "Xin bản gốc?")
    clock.advance(hours=1)
    second = await ask_for_time(app, people, ticket.ref, "Lần hai")
    await decide(app, people, second, True)  # approved while still paused
    assert [m.person_id for m in await told_leaders(app)] == [people.leader.id]
    assert await escalations(app) == [(ticket.id, "l3", 2, "second_extension")]


async def test_critical_overdue_goes_to_leaders_at_once_even_at_night(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Tấn công mạng",
                        category="security", priority=Priority.CRITICAL)
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    night = ticket.deadline_at.astimezone(VN).replace(hour=21)
    report = await run(app, clock, night)
    assert ("l2", "deadline") in fired(report) and ("l3", "critical_overdue") in fired(report)
    for message in await messages(app):
        assert message.next_attempt_at == night  # critical: not held for working hours


async def test_messages_outside_working_hours_wait_for_the_next_working_morning(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Chậm giải ngân")
    friday_night = local(2026, 12, 25, 20, 0)
    assert friday_night > ticket.deadline_at
    report = await run(app, clock, friday_night)
    assert {s.level for s in report.fired} == {"reminder", "l1", "l2"}
    held = {m.next_attempt_at for m in await messages(app)}
    assert held == {local(2026, 12, 28, 8, 0)}  # Monday 08:00
    assert all(s.held_until == local(2026, 12, 28, 8, 0) for s in report.fired)
    # In working hours they go at once.
    report = await run(app, clock, app.calendar.add_business_days(ticket.deadline_at, 5))
    assert fired(report) == [("l3", "overdue_days")]
    last = (await messages(app))[-1]
    assert last.next_attempt_at == report.at


async def test_catch_up_after_downtime_fires_each_step_once(app: App, clock: ManualClock) -> None:
    people = await cast(app)
    first = await file(app, people.reporter, people.reporter_contact, "Một")
    second = await file(app, people.reporter, people.reporter_contact, "Hai")
    report = await run(app, clock, local(2027, 3, 1, 9, 30))
    assert sorted(fired(report)) == sorted(
        [("reminder", "sla_fraction"), ("l1", "first_response"), ("l2", "deadline"),
         ("l3", "overdue_days")] * 2
    )
    again = await run(app, clock, local(2027, 3, 2, 9, 30))
    assert again.fired == [] and again.already_fired == 0
    rows = await escalations(app)
    assert len(rows) == len(set(rows)) == 8
    assert {r[0] for r in rows} == {first.id, second.id}
    assert len(await escalated_events(app)) == 8
    assert len(await messages(app)) == 8


async def test_red_alert_is_raised_and_cleared_once(app: App, clock: ManualClock) -> None:
    people = await cast(app)
    refs = []
    for i in range(4):  # default threshold: more than 3 overdue tickets
        refs.append((await file(app, people.reporter, people.reporter_contact, f"Phiếu {i}")).ref)
    last = await reload(app, refs[-1])
    report = await run(app, clock, last.deadline_at + timedelta(hours=1))
    assert report.alerts_raised == ["mps"] and report.red_groups == ["mps"]
    raised = await messages(app, "escalation.red.raised")
    assert sorted(m.person_id for m in raised) == sorted([people.lead.id, people.leader.id])
    async with app.uow() as uow:
        assert [g.code for g in await red_groups(uow)] == ["mps"]
        assert (await overdue_by_group(uow, app.calendar, report.at))[last.group_id] == 4
    report = await run(app, clock, last.deadline_at + timedelta(hours=2))
    assert report.alerts_raised == [] and len(await messages(app, "escalation.red.")) == 2

    # The leaders' L3 messages name the red group.
    report = await run(app, clock, app.calendar.add_business_days(last.deadline_at, 6))
    l3 = [m for m in await messages(app) if m.payload["meta"].get("level") == "l3"]
    assert len(l3) == 4 and all("Groups on red alert" in m.payload["text"] for m in l3)

    for ref in refs[:2]:
        await act(app, ref, tickets.acknowledge, people.member)
        await act(app, ref, tickets.resolve, people.member, "Đã kết nối")
    report = await run(app, clock, clock.now() + timedelta(minutes=1))
    assert report.alerts_cleared == ["mps"] and report.red_groups == []
    cleared = await messages(app, "escalation.red.cleared")
    assert sorted(m.person_id for m in cleared) == sorted([people.lead.id, people.leader.id])
    report = await run(app, clock, clock.now() + timedelta(minutes=2))
    assert report.alerts_cleared == [] and len(await messages(app, "escalation.red.")) == 4
    async with app.uow() as uow:
        alerts = list((await uow.session.execute(select(GroupAlert))).scalars())
        assert len(alerts) == 1 and alerts[0].cleared_at is not None
        assert await red_groups(uow) == []


async def test_resolved_ticket_is_auto_closed_after_silence(app: App, clock: ManualClock) -> None:
    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Xong rồi")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    await act(app, ticket.ref, tickets.resolve, people.member, "Đã xử lý")
    due = app.calendar.add_business_days(clock.now(), app.settings.auto_close_business_days)
    assert (await run(app, clock, due - timedelta(minutes=1))).auto_closed == []
    report = await run(app, clock, due)
    assert report.auto_closed == [ticket.ref]
    closed = await reload(app, ticket.ref)
    assert closed.state == TicketState.CLOSED.value and closed.closed_at == due
    assert (await run(app, clock, due + timedelta(days=1))).auto_closed == []


async def resolved(app: App, people: Cast, text: str, **kwargs: Any) -> Ticket:
    """A ticket filed, acknowledged and resolved at the clock's time."""
    ticket = await file(app, people.reporter, people.reporter_contact, text, **kwargs)
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    await act(app, ticket.ref, tickets.resolve, people.member, "Đã xử lý")
    return ticket


async def auto_close_notices(app: App) -> dict[str, datetime]:
    """Ticket ref -> when its auto-close notice may go out."""
    return {m.payload["meta"]["ticket"]: m.next_attempt_at
            for m in await messages(app, "tickets.auto_closed")}


async def test_auto_close_in_working_hours_tells_the_reporter_at_once(
    app: App, clock: ManualClock
) -> None:
    people = await cast(app)
    ticket = await resolved(app, people, "Xong rồi")
    due = app.calendar.add_business_days(clock.now(), app.settings.auto_close_business_days)
    report = await run(app, clock, due + timedelta(hours=2))
    assert report.auto_closed == [ticket.ref]
    assert await auto_close_notices(app) == {ticket.ref: due + timedelta(hours=2)}


@pytest.mark.parametrize(
    ("first_sweep", "morning"),
    [
        (local(2026, 12, 15, 2, 0), local(2026, 12, 15, 8, 0)),  # Tuesday night
        (local(2026, 12, 20, 10, 0), local(2026, 12, 21, 8, 0)),  # Sunday -> Monday
    ],
    ids=["night", "weekend"],
)
async def test_auto_close_after_downtime_out_of_hours_holds_the_notice(
    app: App, clock: ManualClock, first_sweep: datetime, morning: datetime
) -> None:
    """Resolved Monday 7 Dec 09:00, due Monday 14 Dec 09:00; the bot was down until the first
    sweep. The ticket closes then (as escalations fire then), but its notices wait for the
    next working moment like the non-critical escalation notices -- critical tickets too:
    nothing in an auto-close notice is urgent."""
    people = await cast(app)
    normal = await resolved(app, people, "Xong rồi")
    critical = await resolved(app, people, "Tấn công mạng", category="security",
                              priority=Priority.CRITICAL)
    assert app.calendar.add_business_days(clock.now(), 5) == local(2026, 12, 14, 9, 0)
    report = await run(app, clock, first_sweep)
    assert sorted(report.auto_closed) == sorted([normal.ref, critical.ref])
    for ticket in (normal, critical):
        closed = await reload(app, ticket.ref)
        assert closed.state == TicketState.CLOSED.value and closed.closed_at == first_sweep
    assert await auto_close_notices(app) == {normal.ref: morning, critical.ref: morning}


async def test_auto_close_during_tet_holds_the_notice_until_after_the_holiday(
    app: App, clock: ManualClock
) -> None:
    """Resolved Wed 27 Jan 2027 10:00: Thu 28, Fri 29, Mon 1, Tue 2, Wed 3 -> due Wed 3 Feb
    10:00. The first sweep after downtime is Monday 8 Feb 10:00, office hours but Tết (Thu 4 to
    Wed 10 Feb): closed then, the notice held until Thursday 11 Feb 08:00."""
    people = await cast(app)
    clock.set(local(2027, 1, 27, 10, 0))
    ticket = await resolved(app, people, "Xong rồi")
    due = app.calendar.add_business_days(clock.now(), app.settings.auto_close_business_days)
    assert due == local(2027, 2, 3, 10, 0)
    report = await run(app, clock, local(2027, 2, 8, 10, 0))
    assert report.auto_closed == [ticket.ref]
    closed = await reload(app, ticket.ref)
    assert closed.state == TicketState.CLOSED.value
    assert closed.closed_at == local(2027, 2, 8, 10, 0)
    assert await auto_close_notices(app) == {ticket.ref: local(2027, 2, 11, 8, 0)}


async def test_dry_run_reports_and_changes_nothing(app: App, clock: ManualClock) -> None:
    people = await cast(app)
    for i in range(4):
        await file(app, people.reporter, people.reporter_contact, f"Khô {i}")
    when = local(2027, 3, 1, 9, 30)
    report = await run(app, clock, when, dry_run=True)
    assert len(report.fired) == 16 and report.alerts_raised == ["mps"]
    assert await escalations(app) == []
    async with app.uow() as uow:
        assert (await uow.session.execute(select(func.count()).select_from(GroupAlert))).scalar() == 0
    real = await run(app, clock, when)
    assert sorted(fired(real)) == sorted(fired(report))


async def test_two_sweeps_at_once_fire_each_step_once(
    app: App, clock: ManualClock, settings: Any
) -> None:
    people = await cast(app)
    for i in range(10):  # the daily filing limit
        clock.advance(minutes=1)
        await file(app, people.reporter, people.reporter_contact, f"Song song {i}")
    other = await open_app(settings, clock, sync_groups=False)
    try:
        when = local(2027, 3, 1, 9, 30)
        clock.set(when)
        a, b = await asyncio.gather(sweep(app, when, batch_size=5), sweep(other, when, batch_size=5))
    finally:
        await other.close()
    assert len(a.fired) + len(b.fired) == 40
    rows = await escalations(app)
    assert len(rows) == 40 == len({(t, lvl, c) for t, lvl, c, _ in rows})
    assert len(await escalated_events(app)) == 40
    steps = [m for m in await messages(app) if m.payload["meta"].get("level")]
    assert len(steps) == 40
    assert len(await messages(app, "escalation.red.raised")) == 2  # lead and leader, once


async def test_approving_an_extension_the_deadline_already_passed_is_a_clear_refusal(
    app: App, clock: ManualClock
) -> None:
    """A pause moved the deadline past the requested date: approving would shorten it.

    (Regression: ``decide_extension`` let ``sla.extend``'s ValueError escape.)
    """
    from hotline.errors import InvalidInput

    people = await cast(app)
    ticket = await file(app, people.reporter, people.reporter_contact, "Chờ văn bản")
    await act(app, ticket.ref, tickets.acknowledge, people.member)
    ext = await act(app, ticket.ref, coordination.request_extension, people.member,
                    ticket.deadline_at + timedelta(days=1), "Cần thêm một ngày")
    await act(app, ticket.ref, tickets.request_info, people.member, "Số văn bản?")
    clock.advance(days=10)
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        reporter = await uow.people.get(people.reporter.id)
        await tickets.add_info(uow, app, t, reporter, "Số 12")
        await uow.commit()
    async with app.uow() as uow:
        coordinator = await uow.people.get(people.coordinator.id)
        with pytest.raises(InvalidInput) as refused:
            await coordination.decide_extension(uow, app, ext.id, coordinator, approve=True)
        assert refused.value.key == "error.extension_not_later"
        await coordination.decide_extension(uow, app, ext.id, coordinator, approve=False)
        await uow.commit()
    assert (await reload(app, ticket.ref)).cycle == 1


async def test_no_future_history_and_a_past_instant_judges_the_ticket_as_it_is(
    app: App, clock: ManualClock
) -> None:
    """On 3 December nobody may sweep "as of" Christmas Eve (the steps would be dated then and
    never fire at their real time); a catch-up "as of" an earlier instant looks at the
    tickets as they are now -- one resolved since gets nothing -- and records at the real time."""
    from escalation.sweep import FutureSweep

    people = await cast(app)
    clock.set(local(2026, 11, 16, 9, 0))
    late = await file(app, people.reporter, people.reporter_contact, "Sẽ được xử lý muộn")
    silent = await file(app, people.reporter, people.reporter_contact, "Không ai động đến")
    now = local(2026, 12, 3, 14, 35)
    assert late.deadline_at < now
    clock.set(now)
    await act(app, late.ref, tickets.acknowledge, people.member)
    await act(app, late.ref, tickets.resolve, people.member, "đã xử lý (muộn)")

    with pytest.raises(FutureSweep, match="later than now"):
        await sweep(app, local(2026, 12, 24, 10, 0))
    preview = await sweep(app, local(2026, 12, 24, 10, 0), dry_run=True)
    assert {s.ref for s in preview.fired} == {silent.ref}  # the resolved one has nothing due
    assert await escalations(app) == [] and await escalated_events(app) == []

    catch_up = await sweep(app, late.deadline_at + timedelta(hours=1))
    assert {s.ref for s in catch_up.fired} == {silent.ref}  # judged on the tickets as they are
    events = await escalated_events(app)
    assert events and {e.at for e in events} == {now}  # recorded when it ran, not back then
    assert all(e.at <= clock.now() for e in events)
