"""The sweep's fast read path decides exactly what the plain ladder decides.

``escalation.scan`` drops tickets in SQL (paused, nothing left to fire), reads timestamps with
its own type, and counts overdue tickets in SQL; none of that may change a decision. Here a
few hundred random tickets, with random levels already fired, are judged both ways at many
instants around Tết 2027.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from escalation import scan
from escalation.sweep import _plan
from hotline.deps import App
from hotline.domain import ladder, sla
from hotline.domain.enums import Role
from hotline.domain.ladder import Thresholds
from storage.models import Escalation, Ticket
from tests.conftest import local
from tests.factories import make_reporter, make_staff

pytestmark = pytest.mark.timeout(60)

STATES = ["new", "assigned", "in_progress", "in_progress", "waiting_reporter", "reopened",
          "resolved", "closed"]


async def _seed(app: App, n: int, rng: random.Random) -> None:
    reporter, _ = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    cal = app.calendar
    base = local(2027, 1, 4, 9, 0)
    async with app.uow() as uow:
        groups = [g.id for g in await uow.people.groups()]
        rows: list[dict[str, Any]] = []
        for i in range(n):
            start = base + timedelta(minutes=rng.randrange(0, 50 * 24 * 60))
            days = rng.choice([3, 5, 10, 15])
            clock = sla.start_cycle(cal, start, days)
            paused_seconds = rng.choice([0.0, 0.0, 3 * 3600.0, cal.business_day_seconds])
            state = rng.choice(STATES)
            paused_since = None
            if state == "waiting_reporter":
                paused_since = start + timedelta(hours=rng.randrange(1, 30 * 24))
            progress = rng.choice([None, start - timedelta(hours=1),
                                   start + timedelta(hours=rng.randrange(1, 20 * 24))])
            rows.append({
                "ref": f"HL-2027-{i + 1:06d}", "year": 2027, "seq": i + 1,
                "check_code": secrets.token_hex(4), "reporter_id": reporter.id,
                "channel": "console", "category": "data", "group_id": rng.choice(groups),
                "assignee_id": member.id, "state": state,
                "priority": rng.choice(["normal", "normal", "high", "critical"]),
                "title": f"t{i}", "description": f"d{i}", "sla_days": days,
                "cycle": rng.choice([1, 1, 2]), "accepted_at": start, "cycle_started_at": start,
                "budget_seconds": clock.budget_seconds, "paused_seconds": paused_seconds,
                "paused_since": paused_since,
                "deadline_at": cal.add_business_seconds(start, clock.budget_seconds + paused_seconds),
                "first_response_due_at": cal.add_business_days(start, 1),
                "acknowledged_at": rng.choice([None, start + timedelta(hours=2)]),
                "last_progress_at": progress, "extension_requests": rng.choice([0, 0, 1, 2]),
                "created_at": start, "updated_at": start,
            })
        await uow.session.execute(insert(Ticket), rows)
        ids = {ref: tid for tid, ref in await uow.session.execute(select(Ticket.id, Ticket.ref))}
        fired: list[dict[str, Any]] = []
        for row in rows:
            for level in ("reminder", "l1", "l2", "l3"):
                if rng.random() < 0.35:  # some in this cycle, some in an older one
                    cycle = row["cycle"] if rng.random() < 0.8 else row["cycle"] + 5
                    fired.append({"ticket_id": ids[row["ref"]], "level": level, "cycle": cycle,
                                  "reason": "seed", "due_at": base, "fired_at": base})
        await uow.session.execute(insert(Escalation), fired)
        await uow.commit()


async def _reference(app: App, now: Any, th: Thresholds) -> tuple[dict[int, list[Any]], Counter[int]]:
    """The plain way: every open ticket as an ORM row, fired levels by a simple query."""
    async with app.uow() as uow:
        tickets = list((await uow.session.execute(
            select(Ticket).where(Ticket.state.in_(scan.OPEN)))).scalars())
        cycles = {t.id: t.cycle for t in tickets}
        fired: dict[int, set[str]] = {}
        for tid, level, cycle in await uow.session.execute(
                select(Escalation.ticket_id, Escalation.level, Escalation.cycle)):
            if cycles.get(tid) == cycle:
                fired.setdefault(tid, set()).add(level)
        extras = await scan.load_extras(uow.session, [t.id for t in tickets],
                                        [t.id for t in tickets])
    steps = {}
    overdue: Counter[int] = Counter()
    for t in tickets:
        due = ladder.due_steps(t, app.calendar, th, now, fired=fired.get(t.id, set()),
                               extras=extras.get(t.id, ladder.NO_EXTRAS))
        if due:
            steps[t.id] = due
        if sla.is_overdue(app.calendar, ladder.sla_clock_of(t), now):
            overdue[t.group_id] += 1
    return steps, overdue


async def test_fast_scan_decides_like_the_plain_ladder(app: App) -> None:
    rng = random.Random(7)
    await _seed(app, 150, rng)
    th = Thresholds.from_settings(app.settings)
    instants = [local(2027, 2, 1, 9, 0) + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
                for _ in range(6)]
    instants += [local(2027, 2, 5, 17, 0), local(2027, 2, 8, 3, 0), local(2027, 2, 11, 8, 0)]
    # Exactly on due instants too: the SQL lower bounds must not lose a step at the boundary.
    async with app.uow() as uow:
        sample = rng.sample(list((await uow.session.execute(select(Ticket))).scalars()), 4)
    for t in sample:
        instants += [t.deadline_at, t.first_response_due_at,
                     ladder.fraction_instant(t, app.calendar, th.reminder_fraction),
                     ladder.fraction_instant(t, app.calendar, th.l1_fraction),
                     app.calendar.add_business_days(t.deadline_at, th.l3_business_days_overdue)]
    # The same instants in a zone behind UTC: the SQL bounds must compare instants, not wall
    # clocks (a local time bound as if it were UTC would be hours early and lose steps).
    instants += [i.astimezone(ZoneInfo("America/New_York")) for i in instants[-5:]]
    decided = overdue_seen = 0
    for now in instants:
        plan = await _plan(app, now, th)
        expected, overdue = await _reference(app, now, th)
        assert plan.steps == expected, now
        assert plan.overdue == dict(overdue), now
        decided += sum(len(steps) for steps in plan.steps.values())
        overdue_seen += sum(overdue.values())
    assert decided > 50 and overdue_seen > 50  # the comparison was not vacuous
