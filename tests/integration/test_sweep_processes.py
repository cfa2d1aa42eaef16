"""Sweeps as real processes (``python -m escalation.sweep``) against a real database.

* Two sweeps started together on PostgreSQL (two workers) fire each step exactly once.
* A sweep SIGKILLed in the middle of a batch (written, not committed) loses that batch only;
  the next sweep fires it, and nothing is duplicated -- escalation rows, ESCALATED events and
  outbox messages alike (the last two have no unique key of their own: only the sweep's
  "insert ... on conflict do nothing returning" protects them).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from escalation.sweep import sweep
from hotline.deps import App
from hotline.domain import sla
from hotline.domain.enums import EventKind, Role
from storage.models import Escalation, OutboxMessage, Ticket, TicketEvent
from tests.conftest import REPO_ROOT, local
from tests.factories import make_reporter, make_staff

pytestmark = pytest.mark.timeout(90)

WHEN = local(2027, 3, 1, 10, 0)


async def seed(app: App, n: int) -> None:
    """``n`` untouched tickets filed over the previous six weeks (bulk insert: fast)."""
    reporter, contact = await make_reporter(app)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    await make_staff(app, Role.LEAD, "mps")
    await make_staff(app, Role.COORDINATOR)
    await make_staff(app, Role.LEADER)
    async with app.uow() as uow:
        group = await uow.people.group("mps")
        assert group is not None
        rows: list[dict[str, Any]] = []
        for i in range(n):
            start = WHEN - timedelta(days=42) + timedelta(hours=7 * i)
            clock = sla.start_cycle(app.calendar, start, 10)
            rows.append({
                "ref": f"HL-2027-{i + 1:06d}", "year": 2027, "seq": i + 1,
                "check_code": secrets.token_hex(4), "reporter_id": reporter.id,
                "organisation_id": reporter.organisation_id, "contact_id": contact.id,
                "channel": "console", "language": "vi", "category": "data",
                "group_id": group.id, "assignee_id": member.id, "state": "assigned",
                "priority": "normal", "needs_triage": False, "title": f"Vướng mắc {i}",
                "description": f"Vướng mắc số {i}", "sla_days": 10, "cycle": 1,
                "accepted_at": start, "cycle_started_at": start,
                "budget_seconds": clock.budget_seconds, "paused_seconds": 0.0,
                "paused_since": None, "deadline_at": clock.deadline_at,
                "first_response_due_at": sla.first_response_due(app.calendar, start, 1),
                "created_at": start, "updated_at": start,
            })
        await uow.session.execute(insert(Ticket), rows)
        await uow.commit()


async def spawn(url: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "escalation.sweep", "--database-url", url,
        "--at", WHEN.isoformat(), "--clock", WHEN.isoformat(), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(REPO_ROOT),
    )


async def finish(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def state(app: App) -> tuple[set[tuple[int, str]], Counter[tuple[int, str]],
                                   Counter[tuple[int, str]], int]:
    """(escalation keys, ESCALATED events per key, step messages per key, red-alert messages)."""
    async with app.uow() as uow:
        keys = {(t, lvl) for t, lvl in await uow.session.execute(
            select(Escalation.ticket_id, Escalation.level))}
        events = Counter(
            (e.ticket_id, e.data["level"]) for e in (await uow.session.execute(
                select(TicketEvent).where(TicketEvent.kind == EventKind.ESCALATED.value)
            )).scalars()
        )
        refs = {ref: tid for tid, ref in await uow.session.execute(select(Ticket.id, Ticket.ref))}
        outbox = list((await uow.session.execute(select(OutboxMessage))).scalars())
    steps = Counter(
        (refs[m.payload["meta"]["ticket"]], m.payload["meta"]["level"])
        for m in outbox if m.payload["meta"].get("level")
    )
    red = sum(1 for m in outbox if str(m.payload["meta"].get("key")).startswith("escalation.red"))
    return keys, events, steps, red


def assert_exactly_once(expected: set[tuple[int, str]], found: tuple[Any, ...]) -> None:
    keys, events, steps, red = found
    assert keys == expected
    assert set(events) == expected and set(events.values()) == {1}
    assert set(steps) == expected and set(steps.values()) == {1}  # one recipient per level
    assert red == 2  # the group turned red once: its lead and the leader, once each


@pytest.mark.postgres
async def test_two_sweep_processes_fire_each_step_exactly_once(
    app: App, is_pg: bool, database_url: str, tmp_path: Path
) -> None:
    if not is_pg:
        pytest.skip("concurrent sweep processes need PostgreSQL (SQLite has one writer)")
    await seed(app, 80)
    expected = {(s.ticket_id, s.level) for s in (await sweep(app, WHEN, dry_run=True)).fired}
    assert len(expected) > 150
    go = tmp_path / "go"
    first, second = await asyncio.gather(
        spawn(database_url, "--batch-size", "7", "--start-when-exists", str(go)),
        spawn(database_url, "--batch-size", "11", "--start-when-exists", str(go)),
    )
    for proc in (first, second):  # both have imported and connected: start them together
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line.strip() == b"WAITING"
    go.touch()
    a, b = await asyncio.gather(finish(first), finish(second))
    assert a["fired"] + b["fired"] == len(expected)
    assert_exactly_once(expected, await state(app))
    app.clock.set(WHEN + timedelta(minutes=1))  # type: ignore[attr-defined]
    again = await sweep(app, WHEN + timedelta(minutes=1))
    assert again.fired == []


async def test_sweep_killed_mid_batch_loses_only_that_batch_and_the_rerun_completes(
    app: App, database_url: str
) -> None:
    await seed(app, 60)
    planned = (await sweep(app, WHEN, dry_run=True)).fired
    expected = {(s.ticket_id, s.level) for s in planned}
    proc = await spawn(database_url, "--batch-size", "10", "--hang-before-commit", "1")
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    assert line.strip() == b"READY", (line, (await proc.stderr.read()).decode()[-2000:])  # type: ignore[union-attr]
    proc.kill()  # SIGKILL: no cleanup, the open transaction dies with the process
    await asyncio.wait_for(proc.wait(), timeout=30)

    first_batch = sorted({s.ticket_id for s in planned})[:10]
    keys, *_ = await state(app)
    assert keys == {k for k in expected if k[0] in first_batch}  # batch 0 committed, 1 lost

    app.clock.set(WHEN + timedelta(minutes=1))  # type: ignore[attr-defined]
    report = await sweep(app, WHEN + timedelta(minutes=1))
    assert {(s.ticket_id, s.level) for s in report.fired} == expected - keys
    assert_exactly_once(expected, await state(app))


def test_sweep_entry_point_refuses_a_bad_time_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from escalation.sweep import main

    code = main(["--at", "yesterday-ish", "--database-url",
                 f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: --at 'yesterday-ish' is not an ISO time") and "Traceback" not in err
