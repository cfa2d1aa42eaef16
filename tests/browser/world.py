"""A small, realistic history built through the real services, for the web tests.

Two reporting organisations, staff in two owner groups, a coordinator, a leader; about nine
weeks of reports with acknowledgements, updates, questions and answers, resolutions,
confirmations and ratings, extension requests (approved and refused), escalation sweeps (so
one group turns red) -- driven by a seeded random generator and a manual clock, so every run
builds the same history. The reporters' names, organisations and report texts are kept so the
tests can search pages for them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.deps import App
from hotline.domain.enums import OPEN_STATES, OrgKind, Role
from hotline.errors import HotlineError
from hotline.services import coordination, tickets
from hotline.services.app import open_app
from storage.models import Contact, Person, Ticket
from tests.factories import file, make_reporter, make_staff

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REPORTER_NAME = "Phạm Thị Hồng Nhung"
REPORTER_ORG = "Công ty TNHH Phần mềm Sông Lam"
OTHER_NAME = "Lê Văn Quyết"
OTHER_ORG = "UBND xã Tân Hưng Đông"
#: Distinctive report texts: no page but the signed-in ticket pages may ever show them.
TEXTS = [
    "Cơ sở dữ liệu dân cư chưa kết nối với phần mềm một cửa của xã {n}, người dân phải nộp bản sao",
    "Kho bạc từ chối thanh toán hợp đồng thuê dịch vụ công nghệ thông tin số {n} vì thiếu định mức",
    "Thông tư hướng dẫn thí điểm sandbox fintech chưa ban hành, doanh nghiệp không triển khai được dự án {n}",
    "Dữ liệu đất đai không được chia sẻ cho ngân hàng, hồ sơ vay vốn số {n} bị trả lại",
    "Sự cố rò rỉ dữ liệu cá nhân khách hàng tại cổng thông tin số {n} chưa được hướng dẫn xử lý",
]
CATEGORIES = ["data", "funding", "legal", "data", "security"]


@dataclass
class World:
    app: App
    clock: ManualClock
    reporter: tuple[Person, Contact]
    other: tuple[Person, Contact]
    members: dict[str, list[Person]]
    lead: Person
    coordinator: Person
    leader: Person
    #: Each person's chat contact (to talk to the engine as them).
    contacts: dict[int, Contact] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    own_refs: list[str] = field(default_factory=list)
    other_refs: list[str] = field(default_factory=list)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)  # type: ignore[misc]


async def people(app: App, *, members: int = 2) -> World:
    assert isinstance(app.clock, ManualClock)
    reporter = await make_reporter(app, name=REPORTER_NAME, org=REPORTER_ORG, kind=OrgKind.ENTERPRISE)
    other = await make_reporter(app, name=OTHER_NAME, org=OTHER_ORG, kind=OrgKind.LOCALITY)
    contacts: dict[int, Contact] = {reporter[0].id: reporter[1], other[0].id: other[1]}

    async def hire(role: Role, group: str | None, name: str) -> Person:
        person, contact = await make_staff(app, role, group, name=name)
        contacts[person.id] = contact
        return person

    staff = {g: [await hire(Role.MEMBER, g, f"Cán bộ {g} {i}") for i in range(members)]
             for g in ("mps", "mof", "moj")}
    lead = await hire(Role.LEAD, "mps", "Trưởng nhóm mps")
    coordinator = await hire(Role.COORDINATOR, None, "Điều phối viên")
    leader = await hire(Role.LEADER, None, "Lãnh đạo Tổ công tác")
    return World(app, app.clock, reporter, other, staff, lead, coordinator, leader, contacts=contacts)


async def build(app: App, *, start: datetime, end: datetime, seed: int = 7, per_day: int = 2,
                work: int = 3) -> World:
    """People, then a history from ``start`` to ``end`` (clock left at ``end``)."""
    clock = app.clock
    assert isinstance(clock, ManualClock)
    clock.set(start)
    world = await people(app)
    await grow(world, random.Random(seed), end, per_day=per_day, work=work)
    return world


async def grow(world: World, rng: random.Random, end: datetime, *, per_day: int = 2,
               work: int = 3) -> None:
    """Carry the history on from the clock's time to ``end`` (clock left at ``end``), the
    way ``build`` makes it: reports on working days, work, Thursday sweeps, a final sweep."""
    app, clock = world.app, world.clock
    n = len(world.refs)
    while clock.now() < end:
        local_now = clock.now().astimezone(VN)
        if local_now.weekday() < 5:
            for _ in range(rng.randint(0, per_day)):
                who = world.reporter if rng.random() < 0.6 else world.other
                k = n % len(TEXTS)
                text = TEXTS[k].format(n=n)
                category = CATEGORIES[k]
                ticket = await file(app, who[0], who[1], text, category=category)
                if category != "data" and rng.random() < 0.7:  # most groups answer the same day
                    await _acknowledge(app, ticket.ref)
                world.refs.append(ticket.ref)
                world.texts.append(text)
                (world.own_refs if who is world.reporter else world.other_refs).append(ticket.ref)
                n += 1
            await _work(world, rng, work)
        if local_now.weekday() == 3 and local_now.hour >= 12:
            from escalation.sweep import sweep

            await sweep(app, clock.now())
        clock.set(min(end, clock.now() + timedelta(hours=rng.choice([9, 19, 24, 24]))))
    from escalation.sweep import sweep

    await sweep(app, clock.now())


async def _acknowledge(app: App, ref: str) -> None:
    async with app.uow() as uow:
        ticket = await uow.tickets.by_ref(ref, for_update=True)
        assert ticket is not None and ticket.assignee_id is not None
        member = await uow.people.get(ticket.assignee_id)
        await tickets.acknowledge(uow, app, ticket, member)  # type: ignore[arg-type]
        await uow.commit()


async def _work(world: World, rng: random.Random, count: int) -> None:
    """Move a few tickets along, as the working group would on a working day."""
    app = world.app
    for ref in rng.sample(world.refs, min(len(world.refs), count)):
        async with app.uow() as uow:
            ticket = await uow.tickets.by_ref(ref, for_update=True)
            assert ticket is not None
            try:
                await _step(world, uow, ticket, rng)
                await uow.commit()
            except HotlineError:
                await uow.rollback()


async def _step(world: World, uow: object, ticket: Ticket, rng: random.Random) -> None:
    app = world.app
    u = uow  # type: ignore[assignment]
    actor = await u.people.get(ticket.assignee_id) if ticket.assignee_id else None  # type: ignore[attr-defined]
    coordinator = await u.people.get(world.coordinator.id)  # type: ignore[attr-defined]
    reporter = await u.people.get(ticket.reporter_id)  # type: ignore[attr-defined]
    state = ticket.state
    roll = rng.random()
    # Two in three "data" tickets (group mps) are never worked, so the group goes overdue and red.
    slow = ticket.category == "data" and ticket.seq % 3 != 0
    if state in ("assigned", "reopened") and actor is not None and not slow:
        await tickets.acknowledge(u, app, ticket, actor)  # type: ignore[arg-type]
    elif state == "in_progress" and actor is not None:
        if roll < 0.15:
            await tickets.request_info(u, app, ticket, actor, "Đề nghị bổ sung văn bản liên quan")  # type: ignore[arg-type]
        elif roll < 0.3:
            new = ticket.deadline_at + timedelta(days=14)
            await coordination.request_extension(u, app, ticket, actor, new, "Cần ý kiến liên ngành")  # type: ignore[arg-type]
        elif not slow:
            await tickets.resolve(u, app, ticket, actor, "Đã có văn bản hướng dẫn")  # type: ignore[arg-type]
    elif state == "waiting_reporter":
        await tickets.add_info(u, app, ticket, reporter, "Đã gửi bổ sung")  # type: ignore[arg-type]
    elif state == "resolved":
        await tickets.confirm(u, app, ticket, reporter)  # type: ignore[arg-type]
        await tickets.rate(u, app, ticket, reporter, rng.randint(2, 5))  # type: ignore[arg-type]
    if state in {s.value for s in OPEN_STATES}:
        from sqlalchemy import select

        from storage.models import Extension

        pending = (await u.session.execute(select(Extension).where(  # type: ignore[attr-defined]
            Extension.ticket_id == ticket.id, Extension.status == "pending"))).scalars().first()
        if pending is not None and rng.random() < 0.7:
            await coordination.decide_extension(u, app, pending.id, coordinator, rng.random() < 0.6)  # type: ignore[arg-type]


@asynccontextmanager
async def world_app(pg_url: str | None, folder: Path, *, start: datetime, end: datetime,
                    history: bool = True, **options: object) -> AsyncIterator[World]:
    """An ``App`` on a fresh database (SQLite in ``folder``, or the run's PostgreSQL database,
    emptied first) holding a built world; for module-scoped fixtures, which cannot use the
    per-test ``app`` fixture."""
    from tests.conftest import _truncate

    url = pg_url or f"sqlite+aiosqlite:///{folder / 'web.db'}"
    if pg_url is not None:
        await _truncate(pg_url)
    settings = Settings(database_url=url, output_dir=folder / "out", _env_file=None)  # type: ignore[call-arg]
    app = await open_app(settings, ManualClock(start), create_tables=pg_url is None)
    try:
        if history:
            yield await build(app, start=start, end=end, **options)  # type: ignore[arg-type]
        else:
            world = await people(app)
            app.clock.set(end)  # type: ignore[attr-defined]
            yield world
    finally:
        await app.close()
