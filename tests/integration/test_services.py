"""The service layer against a real database (SQLite per test, or PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain.enums import EventKind, OrgKind, Priority, Role, TicketState
from hotline.domain.lifecycle import IllegalTransition
from hotline.errors import ConfigError, Forbidden, InvalidInput, NotFound
from hotline.services import coordination, people, tickets
from hotline.services.common import get_ticket
from storage.models import LabelledExample, OutboxMessage, Ticket, TicketEvent, TicketFollower
from tests.conftest import local
from tests.factories import file, make_reporter, make_staff


async def _events(app: App, ticket_id: int) -> list[str]:
    async with app.uow() as uow:
        return [e.kind for e in await uow.events.for_ticket(ticket_id)]


async def _reload(app: App, ref: str) -> Ticket:
    async with app.uow() as uow:
        return await get_ticket(uow, ref, for_update=False)


async def _outbox(app: App) -> list[OutboxMessage]:
    async with app.uow() as uow:
        return list((await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def test_file_assigns_to_least_loaded_member_round_robin(app: App, clock: ManualClock) -> None:
    reporter, contact = await make_reporter(app)
    m1, _ = await make_staff(app, Role.MEMBER, "mps")
    m2, _ = await make_staff(app, Role.MEMBER, "mps")
    await make_staff(app, Role.MEMBER, "moj")  # another group: never chosen for data
    assignees = []
    for i in range(4):
        ticket = await file(app, reporter, contact, f"Dữ liệu dân cư chưa kết nối {i}")
        assignees.append(ticket.assignee_id)
        clock.advance(minutes=1)
    assert assignees == [m1.id, m2.id, m1.id, m2.id]
    t1 = await _reload(app, "HL-2026-000001")
    assert t1.state == TicketState.ASSIGNED and t1.category == "data"
    assert t1.ref == "HL-2026-000001"
    # Data SLA is 10 business days: Monday 7 Dec 09:00 -> Monday 21 Dec 09:00.
    assert t1.deadline_at == local(2026, 12, 21, 9, 0)
    assert await _events(app, t1.id) == ["created", "assigned"]
    keys = [m.payload["meta"]["key"] for m in await _outbox(app)]
    assert keys.count("tickets.assigned_to_you") == 4


async def test_refs_are_sequential_per_year(app: App, clock: ManualClock) -> None:
    reporter, contact = await make_reporter(app)
    await make_staff(app, Role.MEMBER, "mps")
    first = await file(app, reporter, contact, "a")
    clock.set(local(2027, 1, 4, 9, 0))
    second = await file(app, reporter, contact, "b")
    third = await file(app, reporter, contact, "c")
    assert (first.ref, second.ref, third.ref) == ("HL-2026-000001", "HL-2027-000001", "HL-2027-000002")


async def test_full_lifecycle_with_pause_and_rating(app: App, clock: ManualClock) -> None:
    reporter, contact = await make_reporter(app, language="en")
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    ticket = await file(app, reporter, contact, "Province data not shared with the platform")
    original_deadline = ticket.deadline_at

    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        actor = await uow.people.get(member.id)
        await tickets.acknowledge(uow, app, t, actor)
        await uow.commit()
    clock.advance(hours=2)
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        actor = await uow.people.get(member.id)
        await tickets.request_info(uow, app, t, actor, "Which province database?")
        await uow.commit()
    paused = await _reload(app, ticket.ref)
    assert paused.state == TicketState.WAITING_REPORTER and paused.paused_since is not None
    # Three business days pass while waiting: Wed -> the deadline moves by exactly that.
    clock.set(local(2026, 12, 10, 11, 0))
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        rep = await uow.people.get(reporter.id)
        await tickets.add_info(uow, app, t, rep, "The Hà Nội land database")
        await uow.commit()
    resumed = await _reload(app, ticket.ref)
    assert resumed.state == TicketState.IN_PROGRESS and resumed.paused_since is None
    assert resumed.deadline_at == original_deadline + timedelta(days=3)
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        actor = await uow.people.get(member.id)
        await tickets.resolve(uow, app, t, actor, "Connected through the national data platform")
        await uow.commit()
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        rep = await uow.people.get(reporter.id)
        await tickets.confirm(uow, app, t, rep)
        await tickets.rate(uow, app, t, rep, 5, "Nhanh, cảm ơn")
        await uow.commit()
    done = await _reload(app, ticket.ref)
    assert done.state == TicketState.CLOSED and done.rating == 5 and done.closed_at is not None
    assert await _events(app, ticket.id) == [
        "created", "assigned", "acknowledged", "info_requested", "paused", "info_provided",
        "resumed", "resolved", "confirmed", "rated",
    ]
    reporter_msgs = [m for m in await _outbox(app) if m.person_id == reporter.id]
    assert [m.payload["meta"]["key"] for m in reporter_msgs] == [
        "tickets.acknowledged", "tickets.info_requested", "tickets.resolved",
    ]
    assert "Province data" not in reporter_msgs[0].payload["text"]  # English, escaped template
    assert reporter_msgs[0].payload["text"].startswith("✅ Ticket")


async def test_illegal_transition_changes_nothing(app: App) -> None:
    reporter, contact = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    ticket = await file(app, reporter, contact, "x")
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        actor = await uow.people.get(member.id)
        with pytest.raises(IllegalTransition):
            await tickets.resolve(uow, app, t, actor, "done")  # not acknowledged yet
    assert (await _reload(app, ticket.ref)).state == TicketState.ASSIGNED
    assert await _events(app, ticket.id) == ["created", "assigned"]


async def test_permissions(app: App) -> None:
    reporter, contact = await make_reporter(app)
    other_reporter, _ = await make_reporter(app, org="Sở Y tế", kind=OrgKind.LOCALITY)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    outsider, _ = await make_staff(app, Role.MEMBER, "moj")
    ticket = await file(app, reporter, contact, "x")
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        with pytest.raises(Forbidden):
            await tickets.acknowledge(uow, app, t, await uow.people.get(outsider.id))
        with pytest.raises(Forbidden):
            await tickets.acknowledge(uow, app, t, await uow.people.get(reporter.id))
        with pytest.raises(Forbidden):
            await tickets.add_info(uow, app, t, await uow.people.get(other_reporter.id), "hi")
        with pytest.raises(Forbidden):
            await coordination.recategorise(uow, app, t, await uow.people.get(member.id), "legal")
        with pytest.raises(Forbidden):
            await tickets.file_ticket(uow, app, reporter=await uow.people.get(member.id),
                                      contact=None, description="x", category="data")


async def test_bad_input_is_refused(app: App) -> None:
    reporter, contact = await make_reporter(app)
    await make_staff(app, Role.MEMBER, "mps")
    for text, key in (("   ", "error.empty_text"), ("x" * 5000, "error.text_too_long")):
        with pytest.raises(InvalidInput) as info:
            await file(app, reporter, contact, text)
        assert info.value.key == key
    with pytest.raises(ConfigError):
        await file(app, reporter, contact, "x", category="nonsense")
    async with app.uow() as uow:
        with pytest.raises(NotFound):
            await get_ticket(uow, "HL-2026-999999")
        with pytest.raises(InvalidInput):
            await get_ticket(uow, "'; DROP TABLE tickets; --")
        assert (await uow.session.execute(select(func.count()).select_from(Ticket))).scalar() == 0


async def test_daily_limit(app: App, clock: ManualClock) -> None:
    app.settings.daily_report_limit = 2
    reporter, contact = await make_reporter(app)
    await make_staff(app, Role.MEMBER, "mps")
    await file(app, reporter, contact, "1")
    await file(app, reporter, contact, "2")
    with pytest.raises(InvalidInput) as info:
        await file(app, reporter, contact, "3")
    assert info.value.key == "error.daily_limit"
    clock.advance(days=1)
    await file(app, reporter, contact, "next day is fine")


async def test_triage_then_recategorise_keeps_a_correction(app: App) -> None:
    reporter, contact = await make_reporter(app)
    coordinator, _ = await make_staff(app, Role.COORDINATOR)
    member, _ = await make_staff(app, Role.MEMBER, "moj")
    ticket = await file(app, reporter, contact, "Không rõ thuộc lĩnh vực nào", category=None)
    assert ticket.needs_triage and ticket.state == TicketState.NEW and ticket.assignee_id is None
    keys = [m.payload["meta"]["key"] for m in await _outbox(app) if m.person_id == coordinator.id]
    assert keys == ["tickets.triage_needed"]
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        await coordination.recategorise(uow, app, t, await uow.people.get(coordinator.id), "legal")
        await uow.commit()
    moved = await _reload(app, ticket.ref)
    assert (moved.category, moved.assignee_id, moved.needs_triage) == ("legal", member.id, False)
    assert moved.sla_days == 15
    async with app.uow() as uow:
        examples = (await uow.session.execute(select(LabelledExample))).scalars().all()
        assert [(e.label, e.ticket_id) for e in examples] == [("legal", ticket.id)]


async def test_claim_from_queue_group(app: App) -> None:
    reporter, contact = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    async with app.uow() as uow:
        group = await uow.people.group("mps")
        group.claim_from_queue = True
        await uow.commit()
    ticket = await file(app, reporter, contact, "x")
    assert ticket.assignee_id is None and ticket.state == TicketState.NEW
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        await tickets.claim(uow, app, t, await uow.people.get(member.id))
        await uow.commit()
    assert (await _reload(app, ticket.ref)).assignee_id == member.id
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        with pytest.raises(Forbidden):  # already claimed
            await tickets.claim(uow, app, t, await uow.people.get(member.id))


async def test_extension_cycle_and_counts(app: App, clock: ManualClock) -> None:
    reporter, contact = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    coordinator, _ = await make_staff(app, Role.COORDINATOR)
    ticket = await file(app, reporter, contact, "x")
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        actor = await uow.people.get(member.id)
        with pytest.raises(InvalidInput):  # not later than the current deadline
            await coordination.request_extension(uow, app, t, actor, t.deadline_at, "need time")
        ext = await coordination.request_extension(
            uow, app, t, actor, local(2027, 1, 15, 17, 0), "waiting for the decree")
        with pytest.raises(InvalidInput):  # one pending at a time
            await coordination.request_extension(uow, app, t, actor, local(2027, 1, 20, 17), "more")
        await uow.commit()
    async with app.uow() as uow:
        with pytest.raises(Forbidden):
            await coordination.decide_extension(uow, app, ext.id, await uow.people.get(member.id), True)
    async with app.uow() as uow:
        await coordination.decide_extension(uow, app, ext.id, await uow.people.get(coordinator.id), True)
        await uow.commit()
    extended = await _reload(app, ticket.ref)
    assert extended.cycle == 2 and extended.extension_count == 1 and extended.extension_requests == 1
    assert extended.deadline_at == local(2027, 1, 15, 17, 0)
    async with app.uow() as uow:
        with pytest.raises(InvalidInput):  # decided already
            await coordination.decide_extension(uow, app, ext.id, await uow.people.get(coordinator.id), False)
    kinds = await _events(app, ticket.id)
    assert kinds[-3:] == ["extension_requested", "extension_approved", "deadline_changed"]


async def test_duplicate_reporter_follows_original(app: App) -> None:
    r1, c1 = await make_reporter(app)
    r2, c2 = await make_reporter(app, org="Tỉnh Bắc Ninh", kind=OrgKind.LOCALITY)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    coordinator, _ = await make_staff(app, Role.COORDINATOR)
    original = await file(app, r1, c1, "CSDL đất đai chưa chia sẻ")
    dup = await file(app, r2, c2, "Chưa được chia sẻ dữ liệu đất đai")
    async with app.uow() as uow:
        d = await get_ticket(uow, dup.ref)
        o = await get_ticket(uow, original.ref)
        await coordination.link_duplicate(uow, app, d, o, await uow.people.get(coordinator.id))
        await uow.commit()
    linked = await _reload(app, dup.ref)
    assert linked.state == TicketState.REJECTED and linked.duplicate_of_id == original.id
    async with app.uow() as uow:
        followers = (await uow.session.execute(select(TicketFollower))).scalars().all()
        assert [(f.ticket_id, f.person_id) for f in followers] == [(original.id, r2.id)]
        o = await get_ticket(uow, original.ref)
        await tickets.acknowledge(uow, app, o, await uow.people.get(member.id))
        await uow.commit()
    to_r2 = [m.payload["meta"] for m in await _outbox(app) if m.person_id == r2.id]
    assert {"key": "tickets.duplicate", "ticket": dup.ref} in to_r2
    assert {"key": "tickets.acknowledged", "ticket": original.ref} in to_r2


async def test_reopen_window(app: App, clock: ManualClock) -> None:
    reporter, contact = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    ticket = await file(app, reporter, contact, "x")

    async def work(fn, *args):  # type: ignore[no-untyped-def]
        async with app.uow() as uow:
            t = await get_ticket(uow, ticket.ref)
            await fn(uow, app, t, *args)
            await uow.commit()

    async def person(pid: int):  # type: ignore[no-untyped-def]
        async with app.uow() as uow:
            return await uow.people.get(pid)

    m, r = await person(member.id), await person(reporter.id)
    await work(tickets.acknowledge, m)
    await work(tickets.resolve, m, "fixed")
    await work(tickets.reopen, r, "still broken")
    reopened = await _reload(app, ticket.ref)
    assert reopened.state == TicketState.REOPENED and reopened.cycle == 2
    await work(tickets.acknowledge, m)
    await work(tickets.resolve, m, "fixed again")
    await work(tickets.confirm, r)
    clock.advance(days=30)  # far beyond 10 business days
    with pytest.raises(InvalidInput) as info:
        await work(tickets.reopen, r, "again")
    assert info.value.key == "error.reopen_window"
    assert (await _reload(app, ticket.ref)).state == TicketState.CLOSED


async def test_critical_priority_shortens_sla(app: App) -> None:
    reporter, contact = await make_reporter(app)
    await make_staff(app, Role.MEMBER, "moj")
    coordinator, _ = await make_staff(app, Role.COORDINATOR)
    ticket = await file(app, reporter, contact, "x", category="legal")
    assert ticket.sla_days == 15
    async with app.uow() as uow:
        t = await get_ticket(uow, ticket.ref)
        await coordination.set_priority(uow, app, t, await uow.people.get(coordinator.id),
                                        Priority.CRITICAL)
        await uow.commit()
    crit = await _reload(app, ticket.ref)
    assert crit.sla_days == app.settings.critical_sla_days
    assert crit.deadline_at == local(2026, 12, 10, 9, 0)


async def test_invites(app: App, clock: ManualClock) -> None:
    async with app.uow() as uow:
        issued = await people.create_invite(uow, app, Role.LEAD, "mof")
        with pytest.raises(InvalidInput):
            await people.create_invite(uow, app, Role.MEMBER, None)
        with pytest.raises(InvalidInput):
            await people.create_invite(uow, app, Role.MEMBER, "nope")
        with pytest.raises(InvalidInput):
            await people.create_invite(uow, app, Role.REPORTER)
        expiring = await people.create_invite(uow, app, Role.LEADER, ttl_hours=1)
        await uow.commit()
    async with app.uow() as uow:
        contact = await people.touch_contact(uow, app, "console", "u1", "u1", "Trần Bình")
        lead = await people.join(uow, app, contact, issued.code.lower().replace("-", " "))
        await uow.commit()
        assert lead.role == Role.LEAD and lead.group_id is not None
    async with app.uow() as uow:
        contact = await people.touch_contact(uow, app, "console", "u2", "u2", "Lê Cường")
        with pytest.raises(InvalidInput) as info:
            await people.join(uow, app, contact, issued.code)
        assert info.value.key == "error.invite_used"
        with pytest.raises(InvalidInput) as info:
            await people.join(uow, app, contact, "WRONG-CODE1")
        assert info.value.key == "error.invite_invalid"
    clock.advance(hours=2)
    async with app.uow() as uow:
        contact = await people.touch_contact(uow, app, "console", "u3", "u3", "Phạm Dũng")
        with pytest.raises(InvalidInput) as info:
            await people.join(uow, app, contact, expiring.code)
        assert info.value.key == "error.invite_expired"


async def test_registration_validation(app: App) -> None:
    async with app.uow() as uow:
        contact = await people.touch_contact(uow, app, "telegram", "42", "42", None)
        with pytest.raises(InvalidInput):
            await people.register_reporter(uow, app, contact, organisation_name="  ",
                                           kind=OrgKind.ENTERPRISE, contact_name="A")
        with pytest.raises(InvalidInput):
            await people.register_reporter(uow, app, contact, organisation_name="Cty A",
                                           kind=OrgKind.ENTERPRISE, contact_name="A",
                                           tax_code="12ab")
        person = await people.register_reporter(uow, app, contact, organisation_name=" Cty  A ",
                                                kind=OrgKind.ENTERPRISE, contact_name="A",
                                                tax_code="0101234567-001")
        assert person.role == Role.REPORTER
        with pytest.raises(InvalidInput):
            await people.register_reporter(uow, app, contact, organisation_name="Cty B",
                                           kind=OrgKind.ENTERPRISE, contact_name="B")


async def test_concurrent_filing_never_shares_a_ref(app: App, is_pg: bool) -> None:
    """Real concurrent sessions: on PostgreSQL they race for the counter row."""
    reporters = [await make_reporter(app, org=f"Org {i}") for i in range(8)]
    await make_staff(app, Role.MEMBER, "mps")

    async def one(i: int) -> str:
        reporter, contact = reporters[i % len(reporters)]
        return (await file(app, reporter, contact, f"report {i}")).ref

    refs = await asyncio.gather(*(one(i) for i in range(40)))
    assert len(set(refs)) == 40
    seqs = sorted(int(r.rsplit("-", 1)[1]) for r in refs)
    assert seqs == list(range(1, 41))  # unique and gap-free
    async with app.uow() as uow:
        count = (await uow.session.execute(
            select(func.count()).select_from(TicketEvent).where(TicketEvent.kind == EventKind.CREATED.value)
        )).scalar()
        assert count == 40
