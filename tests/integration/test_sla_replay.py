"""One SLA implementation: a digest's replay of a ticket's events holds the same SLA clock as
the live ticket row, at every instant of random histories.

Histories run through the real services (file, ask, answer, resolve, reopen, extension request
and approval, recategorisation, priority change) with a manual clock jumping over nights and
weekends. After every step the live clock of each ticket (``services.common.sla_clock``, the
six SLA columns) is kept; then the events, read the way the digest reads them
(``digests.data.load_events``), are replayed (``digests.compute.replay_tickets``) up to each of
those instants, and the replayed ``SlaClock`` must equal the live one field by field, without
ever having had to adopt a deadline recorded in an event (``Replay.sla_corrections == 0``).
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.deps import App
from hotline.digests.compute import replay_tickets
from hotline.digests.data import load_events, rules_for
from hotline.domain.enums import OrgKind, Priority, Role
from hotline.domain.sla import SlaClock
from hotline.errors import HotlineError
from hotline.services import coordination, tickets
from hotline.services.app import open_app
from hotline.services.common import sla_clock
from storage.models import Extension, Ticket
from tests.conftest import _truncate, local
from tests.dbutil import scratch_dir
from tests.factories import file, make_reporter, make_staff

OPS = ["file", "file_critical", "advance", "advance", "ask", "answer", "resolve", "reopen",
       "ext_request", "ext_approve", "recategorise", "priority"]
#: Hours the clock jumps: within a working day, overnight, over a weekend.
HOURS = [1, 3, 7, 16, 26, 63]


async def _live(app: App) -> dict[int, SlaClock]:
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(Ticket))).scalars().all()
        return {t.id: sla_clock(t) for t in rows}


async def _step(app: App, clock: ManualClock, who: dict[str, Any], refs: list[str],
                op: str, index: int, param: int) -> None:
    if op == "advance":
        clock.advance(timedelta(hours=HOURS[param % len(HOURS)], minutes=param % 50))
        return
    if op in ("file", "file_critical"):
        person, contact = who["reporter"]
        priority = Priority.CRITICAL if op == "file_critical" else Priority.NORMAL
        category = ("data", "legal", "security")[param % 3]
        ticket = await file(app, person, contact, f"Vướng mắc số {len(refs)}", category=category,
                            priority=priority)
        refs.append(ticket.ref)
        return
    if not refs:
        return
    async with app.uow() as uow:
        ticket = await uow.tickets.by_ref(refs[index % len(refs)], for_update=True)
        assert ticket is not None
        coord = await uow.people.get(who["coordinator"].id)
        worker = (await uow.people.get(ticket.assignee_id)) if ticket.assignee_id else coord
        reporter = await uow.people.get(ticket.reporter_id)
        assert coord is not None and worker is not None and reporter is not None
        now = clock.now()
        if op == "ask":
            if ticket.state in ("assigned", "reopened"):
                await tickets.acknowledge(uow, app, ticket, worker)
            await tickets.request_info(uow, app, ticket, worker, "cần thêm hồ sơ")
        elif op == "answer":
            await tickets.add_info(uow, app, ticket, reporter, "đã bổ sung")
        elif op == "resolve":
            await tickets.resolve(uow, app, ticket, worker, "đã xử lý")
        elif op == "reopen":
            await tickets.reopen(uow, app, ticket, reporter, "chưa xong")
        elif op == "ext_request":
            new = max(ticket.deadline_at, now) + timedelta(days=1 + param % 6, hours=param % 11)
            await coordination.request_extension(uow, app, ticket, worker, new, "cần phối hợp")
        elif op == "ext_approve":
            pending = (await uow.session.execute(select(Extension.id).where(
                Extension.ticket_id == ticket.id, Extension.status == "pending"))).scalar()
            if pending is None:
                return
            await coordination.decide_extension(uow, app, pending, coord, approve=True)
        elif op == "recategorise":
            await coordination.recategorise(uow, app, ticket, coord,
                                            ("data", "legal", "security")[param % 3])
        elif op == "priority":
            await coordination.set_priority(uow, app, ticket, coord,
                                            (Priority.NORMAL, Priority.HIGH, Priority.CRITICAL)[param % 3])
        await uow.commit()


def _same(replayed: SlaClock, live: SlaClock) -> bool:
    return (
        replayed.cycle == live.cycle
        and replayed.cycle_started_at == live.cycle_started_at
        and replayed.paused_since == live.paused_since
        and replayed.deadline_at == live.deadline_at
        and replayed.budget_seconds == pytest.approx(live.budget_seconds, abs=1e-6)
        and replayed.paused_seconds == pytest.approx(live.paused_seconds, abs=1e-6)
    )


async def _run(ops: list[tuple[str, int, int]], url: str, pg: bool, folder: Path) -> int:
    clock = ManualClock(local(2027, 3, 5, 15, 30))  # a Friday afternoon in Hanoi
    cfg = Settings(database_url=url, output_dir=folder, daily_report_limit=1000,
                   critical_sla_days=1, _env_file=None)  # type: ignore[call-arg]
    if pg:
        await _truncate(url)
    app = await open_app(cfg, clock, create_tables=not pg)
    try:
        who = {
            "reporter": await make_reporter(app, org="Công ty CP Số Việt", kind=OrgKind.ENTERPRISE),
            "coordinator": (await make_staff(app, Role.COORDINATOR))[0],
        }
        for group in ("mps", "moj"):
            await make_staff(app, Role.MEMBER, group)
        refs: list[str] = []
        # The live clocks as they stand once everything at an instant has happened (several
        # steps may share an instant; the replay up to it takes them all).
        snapshots: dict[datetime, dict[int, SlaClock]] = {}
        for op, index, param in ops:
            try:
                await _step(app, clock, who, refs, op, index, param)
            except HotlineError:
                pass  # not allowed in the ticket's current state: nothing changed
            snapshots[clock.now()] = await _live(app)
        async with app.sessions() as session:
            ids = sorted(snapshots[clock.now()])
            events = await load_events(session, ids, clock.now() + timedelta(days=1))
        rules = rules_for(app)
        compared = 0
        for at, live in snapshots.items():
            replays, _ = replay_tickets(events, rules, {}, at + timedelta(microseconds=1))
            assert set(replays) == set(live), at
            for ticket_id, clock_now in live.items():
                replay = replays[ticket_id]
                assert replay.sla is not None
                assert replay.sla_corrections == 0, (at, ticket_id)
                assert _same(replay.sla, clock_now), (at, ticket_id, replay.sla, clock_now)
                compared += 1
        return compared
    finally:
        await app.close()


op_lists = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, 30), st.integers(0, 200)), min_size=5, max_size=45
)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=op_lists)
def test_replayed_sla_clock_equals_the_live_one(
    ops: list[tuple[str, int, int]], pg_url: str | None, tmp_path: Path
) -> None:
    folder = scratch_dir(tmp_path)
    try:
        url = pg_url or f"sqlite+aiosqlite:///{folder / 'h.db'}"
        asyncio.run(_run([("file", 0, 0), *ops], url, pg_url is not None, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_every_sla_move_replays_the_same(pg_url: str | None, tmp_path: Path) -> None:
    """A scripted history through each clock move (pause, resume, resolve while paused,
    reopen, extension while paused, recategorisation, priority) over a weekend."""
    ops = [
        ("file", 0, 0), ("file_critical", 0, 1), ("advance", 0, 1), ("ask", 0, 0),
        ("advance", 0, 2), ("ext_request", 0, 5), ("ext_approve", 0, 0), ("advance", 0, 5),
        ("answer", 0, 0), ("recategorise", 1, 1), ("priority", 0, 2), ("ask", 1, 0),
        ("advance", 0, 3), ("resolve", 1, 0), ("reopen", 1, 0), ("advance", 0, 4),
        ("resolve", 0, 0), ("reopen", 0, 0), ("ask", 0, 0), ("advance", 0, 0), ("answer", 0, 0),
        ("ask", 0, 0), ("advance", 0, 1), ("resolve", 0, 0), ("advance", 0, 2),
    ]
    url = pg_url or f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    compared = asyncio.run(_run(ops, url, pg_url is not None, tmp_path))
    assert compared >= 2 * 6  # both tickets, at each instant the clock stood at
