"""One escalation pass "as of" an instant: fire every ladder step due by then, exactly once.

Exactly once is the database's job, not this process's memory: each step is an ``escalations``
row with a unique (ticket, level, cycle) key, inserted with ``ON CONFLICT DO NOTHING ...
RETURNING``; only the rows this transaction really inserted get their ESCALATED event and their
messages, in the same transaction. So

* two sweeps at once (two workers on PostgreSQL) never both fire a step: the batch's ticket rows
  are locked (``FOR UPDATE``, ticket id order, so no deadlock) and the decision is re-made under
  the lock, and the unique key catches anything else;
* a crash between deciding and committing loses nothing: the uncommitted batch is rolled back
  by the database and the next sweep, seeing no row, fires it again;
* after downtime the first sweep fires every step that fell due meanwhile, each once, because a
  step is "due by now and not in the table", not "due in the last minute".

The pass reads the open tickets' SLA columns in one query and decides in Python with the pure
ladder (``hotline.domain.ladder``), then writes only the tickets that have something to fire, a few
hundred per transaction, so a crash loses at most one uncommitted batch and a 100k-ticket
sweep where little is due costs about two SELECTs (``escalation.scan``).

Writing a decided step (row, event, messages) is ``write_steps``; services use it through
``fire_now`` for a trigger that is an act rather than elapsed time (a second extension request),
so a step fired at once and one fired by a sweep leave the same trace and fire once between them.

Messages go to people, in their language, with buttons to act; outside working hours they are
held (``OutboxMessage.next_attempt_at``) until the next working moment, except for critical
tickets. The pass also opens/closes red alerts and auto-closes resolved tickets left silent
(closed at once; the reporters' notices held like the non-critical escalation notices).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from escalation import scan
from hotline.clock import ManualClock, ensure_utc
from hotline.deps import App, Deps
from hotline.domain import ladder
from hotline.domain.enums import (
    TicketState,
)
from hotline.domain.ladder import NO_EXTRAS, Extras, Step, Thresholds
from hotline.errors import HotlineError
from hotline.services.alerts import AlertChanges, update_alerts
from hotline.services.escalations import FiredStep, hold_until, write_steps
from hotline.services.notices import Audience, Notices
from storage.models import (
    OwnerGroup,
    Ticket,
)

#: Tickets per write transaction: small enough that a crash loses little and row locks are
#: short, large enough that a catch-up over 100k tickets is a few hundred commits.
DEFAULT_BATCH_SIZE = 250


#: Called after a batch is written and before it is committed (crash tests, progress).
BeforeCommit = Callable[[int], Awaitable[None]]


@dataclass
class SweepReport:
    at: datetime
    dry_run: bool = False
    scanned: int = 0
    fired: list[FiredStep] = field(default_factory=list)
    #: Steps that another sweep fired between this one's decision and its insert.
    already_fired: int = 0
    auto_closed: list[str] = field(default_factory=list)
    #: Tickets whose reporter got the one reminder to rate them in this pass.
    rating_reminded: list[str] = field(default_factory=list)
    alerts_raised: list[str] = field(default_factory=list)
    alerts_cleared: list[str] = field(default_factory=list)
    red_groups: list[str] = field(default_factory=list)
    batches: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {level.value: 0 for level in ladder.LEVELS}
        for step in self.fired:
            out[step.level] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "counts": self.counts(),
            "already_fired": self.already_fired,
            "fired": [
                {
                    "ticket": s.ref,
                    "group": s.group,
                    "level": s.level,
                    "reason": s.reason,
                    "cycle": s.cycle,
                    "due_at": s.due_at.isoformat(),
                    "messages": s.messages,
                    "held_until": s.held_until.isoformat() if s.held_until else None,
                }
                for s in self.fired
            ],
            "auto_closed": self.auto_closed,
            "rating_reminded": self.rating_reminded,
            "alerts_raised": self.alerts_raised,
            "alerts_cleared": self.alerts_cleared,
            "red_groups": self.red_groups,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
        }


def parse_at(text: str, timezone: str = "Asia/Ho_Chi_Minh") -> datetime:
    """ISO 8601; without an offset it is a local time (what an operator in Hanoi types)."""
    from zoneinfo import ZoneInfo

    from hotline.errors import HotlineError

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HotlineError(
            f"--at {text!r} is not an ISO time such as 2027-02-15T09:00 (local) or "
            "2027-02-15T02:00+00:00"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value


#: A pass "as of now" read from the clock a moment before this check (the scheduler's) is not
#: refused for the clock having been stepped back by a few milliseconds meanwhile.
CLOCK_SLACK = timedelta(seconds=1)


class FutureSweep(HotlineError):
    """A sweep "as of" an instant still to come would write history that has not happened."""

    key = "escalation.error.future_sweep"


def written_at(app: Deps, at: datetime, *, dry_run: bool) -> datetime:
    """The instant a pass as of ``at`` records what it does: the clock's now, never later.

    A pass as of a later instant is refused unless it only looks (``dry_run``): it would
    date events and messages in the future and use up steps that must fire at their real time.
    """
    now = ensure_utc(app.clock.now())
    if at > now + CLOCK_SLACK and not dry_run:
        raise FutureSweep(
            f"--at {at.isoformat()} is later than now ({now.isoformat()}): a sweep cannot act "
            "in the future; add --dry-run to see what would fire then",
            at=at.isoformat(), now=now.isoformat(),
        )
    return now


def pinned_deps(app: App, now: datetime) -> Deps:
    """Services read ``deps.clock``; a sweep "as of" ``now`` must make them see ``now`` too."""
    return Deps(
        settings=app.settings, clock=ManualClock(now), calendar=app.calendar, taxonomy=app.taxonomy
    )


# ------------------------------------------------------------------------------------------
# Reading and deciding
# ------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    steps: dict[int, list[Step]]
    extras: dict[int, Extras]
    overdue: dict[int, int]
    scanned: int


async def _plan(app: App, now: datetime, thresholds: Thresholds) -> _Plan:
    """Decide, in memory, what is due: one short read transaction, then pure computation."""
    calendar = app.calendar
    async with app.sessions() as session:
        conn = await session.connection()
        overdue, scanned = await scan.overdue_counts(conn, calendar, now)
        candidates = await scan.live_candidates(conn, now, thresholds)
    steps_by_ticket: dict[int, list[Step]] = {}
    want_resumed: list[int] = []
    want_extension: list[int] = []
    pending: list[scan.Candidate] = []
    due_steps = ladder.due_steps
    needs_extras = ladder.needs_extras
    no_update = ladder.Reason.NO_UPDATE
    for ticket in candidates:
        fired = ticket.fired
        steps = due_steps(ticket, calendar, thresholds, now, fired=fired)
        # Facts outside the row matter for few tickets: a second extension request (adds an
        # L3 trigger) and a resumed pause (shortens the silence, so only when it decided L1).
        resumed, extension = needs_extras(ticket, fired)
        resumed = resumed and any(s.reason is no_update for s in steps)
        if extension or resumed:
            pending.append(ticket)
            if resumed:
                want_resumed.append(ticket.id)
            if extension:
                want_extension.append(ticket.id)
        elif steps:
            steps_by_ticket[ticket.id] = steps
    extras: dict[int, Extras] = {}
    if pending:
        async with app.sessions() as session:
            extras = await scan.load_extras(session, want_resumed, want_extension)
        for ticket in pending:
            steps = due_steps(ticket, calendar, thresholds, now, fired=ticket.fired,
                              extras=extras.get(ticket.id, NO_EXTRAS))
            if steps:
                steps_by_ticket[ticket.id] = steps
    ordered = dict(sorted(steps_by_ticket.items()))
    return _Plan(steps=ordered, extras=extras, overdue=overdue, scanned=scanned)


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


@dataclass
class _Context:
    app: App
    #: When the pass writes (events, escalation rows, messages): the clock's now.
    now: datetime
    #: The instant the pass decides as of (``--at``): what is due by then fires.
    at: datetime
    thresholds: Thresholds
    hold: datetime | None
    audience: Audience
    notices: Notices
    report: SweepReport
    before_commit: BeforeCommit | None


async def _fire_batch(
    ctx: _Context, index: int, ticket_ids: Sequence[int], extras: dict[int, Extras]
) -> None:
    app, now = ctx.app, ctx.now
    async with app.uow() as uow:
        session = uow.session
        # Lock the batch (id order) and decide again: the snapshot may be a minute old, and a
        # concurrent sweep that got here first has committed by the time the lock is ours.
        stmt = select(Ticket).where(Ticket.id.in_(list(ticket_ids))).order_by(Ticket.id)
        tickets = list((await session.execute(stmt.with_for_update())).scalars())
        fired = await scan.fired_levels(session, [t.id for t in tickets])
        # Facts the plan did not load because the ticket changed since: load them now.
        resumed_ids: list[int] = []
        extension_ids: list[int] = []
        for ticket in tickets:
            if ticket.id in extras:
                continue
            resumed, extension = ladder.needs_extras(ticket, fired.get(ticket.id, set()))
            if resumed:
                resumed_ids.append(ticket.id)
            if extension:
                extension_ids.append(ticket.id)
        if resumed_ids or extension_ids:
            extras = extras | await scan.load_extras(session, resumed_ids, extension_ids)
        decided: list[tuple[Ticket, Step]] = []
        for ticket in tickets:
            for step in ladder.due_steps(
                ticket, app.calendar, ctx.thresholds, ctx.at, fired=fired.get(ticket.id, set()),
                extras=extras.get(ticket.id, NO_EXTRAS),
            ):
                decided.append((ticket, step))
        if not decided:
            return
        fired_steps, already = await write_steps(
            session, decided, now=now, hold=ctx.hold, audience=ctx.audience, notices=ctx.notices
        )
        ctx.report.already_fired += already
        if fired_steps and ctx.before_commit is not None:
            await ctx.before_commit(index)
        await uow.commit()
        ctx.report.fired.extend(fired_steps)


async def _refs(app: App, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    out: dict[int, tuple[str, int]] = {}
    async with app.sessions() as session:
        for chunk in scan.chunks(ids, scan.IN_CHUNK):
            stmt = select(Ticket.id, Ticket.ref, Ticket.group_id).where(Ticket.id.in_(chunk))
            out.update({tid: (ref, gid) for tid, ref, gid in await session.execute(stmt)})
    return out


# ------------------------------------------------------------------------------------------
# Auto-close
# ------------------------------------------------------------------------------------------


async def _auto_close(
    app: App, deps: Deps, now: datetime, thresholds: Thresholds, *, dry_run: bool,
    batch_size: int, hold: datetime | None,
) -> list[str]:
    """Close resolved tickets left silent; their notices wait until ``hold`` like the
    non-critical escalation notices (the close itself is recorded at ``now``)."""
    from hotline.services.tickets import auto_close, auto_close_due

    days = app.settings.auto_close_business_days
    span = days * thresholds.working_day_seconds
    async with app.sessions() as session:
        rows = (
            await session.execute(
                select(Ticket.id, Ticket.ref, Ticket.resolved_at).where(
                    Ticket.state == TicketState.RESOLVED.value, Ticket.resolved_at.is_not(None)
                )
            )
        ).all()
    due = [
        (tid, ref)
        for tid, ref, resolved_at in rows
        if thresholds.not_before(resolved_at, span) <= now
        and app.calendar.add_business_days(resolved_at, days) <= now
    ]
    if dry_run:
        return [ref for _, ref in due]
    closed: list[str] = []
    for chunk in scan.chunks(sorted(due), batch_size):
        async with app.uow() as uow:
            stmt = (
                select(Ticket)
                .where(Ticket.id.in_([tid for tid, _ in chunk]))
                .order_by(Ticket.id)
                .with_for_update()
            )
            done: list[str] = []
            for ticket in (await uow.session.execute(stmt)).scalars():
                if auto_close_due(deps, ticket, now):  # re-checked under the lock
                    await auto_close(uow, deps, ticket, not_before=hold)
                    done.append(ticket.ref)
            await uow.commit()
            closed += done
    return closed


# ------------------------------------------------------------------------------------------
# The pass
# ------------------------------------------------------------------------------------------


async def sweep(
    app: App,
    now: datetime,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    before_commit: BeforeCommit | None = None,
) -> SweepReport:
    """Fire every step due by ``now`` (and auto-close, and update red alerts).

    ``dry_run`` decides the same way and writes nothing. ``before_commit(batch_index)`` runs
    after a batch is written and before its commit -- a seam for crash tests.
    """
    started = time.perf_counter()
    at = ensure_utc(now)
    # No future history: what is written is dated when it is written (the clock's now), and a
    # pass "as of" a later instant may only look (dry run). A pass as of an earlier instant
    # (catching up by hand) decides what was due by then on the tickets as they are now, and
    # records it now.
    now = written_at(app, at, dry_run=dry_run)
    thresholds = Thresholds.from_settings(app.settings)
    report = SweepReport(at=at, dry_run=dry_run)
    plan = await _plan(app, at, thresholds)
    report.scanned = plan.scanned
    hold = hold_until(app, now)

    async with app.uow() as uow:
        changes: AlertChanges = await update_alerts(
            uow, pinned_deps(app, now), plan.overdue, now, dry_run=dry_run, not_before=hold
        )
        if not dry_run:
            await uow.commit()
    report.alerts_raised = [g.code for g in changes.raised]
    report.alerts_cleared = [g.code for g in changes.cleared]
    report.red_groups = [g.code for g in changes.red]

    ids = list(plan.steps)
    if dry_run:
        refs = await _refs(app, ids)
        async with app.uow() as uow:
            groups = {g.id: g.code for g in await uow.people.groups()}
        for tid in ids:
            ref, gid = refs.get(tid, ("?", 0))
            for step in plan.steps[tid]:
                report.fired.append(
                    FiredStep(
                        ticket_id=tid, ref=ref, group=groups.get(gid, ""), level=step.level.value,
                        reason=step.reason.value, cycle=step.cycle, due_at=step.due_at,
                    )
                )
    else:
        audience = Audience()
        ctx = _Context(
            app=app, now=now, at=at, thresholds=thresholds, hold=hold, audience=audience,
            notices=Notices(app.settings, app.calendar, thresholds, now, changes.red, audience),
            report=report, before_commit=before_commit,
        )
        for index, chunk in enumerate(scan.chunks(ids, max(1, batch_size))):
            await _fire_batch(ctx, index, chunk, plan.extras)
            report.batches += 1

    report.auto_closed = await _auto_close(
        app, pinned_deps(app, now), at, thresholds, dry_run=dry_run, batch_size=batch_size,
        hold=hold,
    )
    report.rating_reminded = await _rating_reminders(app, now, dry_run=dry_run, hold=hold)
    report.seconds = time.perf_counter() - started
    return report


async def _rating_reminders(app: App, now: datetime, *, dry_run: bool,
                            hold: datetime | None) -> list[str]:
    """The one reminder to rate, held to working hours like the other notices."""
    from hotline.services.rating import remind_unrated

    async with app.uow() as uow:
        reminded = await remind_unrated(uow, pinned_deps(app, now), now, not_before=hold)
        if not dry_run:
            await uow.commit()
    return reminded


# ------------------------------------------------------------------------------------------
# ``python -m escalation.sweep``: one pass in a fresh process (operators' cron, crash tests)
# ------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m escalation.sweep", description=__doc__)
    parser.add_argument("--at", help="ISO time (local Asia/Ho_Chi_Minh if no offset)")
    parser.add_argument("--database-url", help="overrides HOTLINE_DATABASE_URL")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument(
        "--clock", default=None, metavar="TIME",
        help="testing: the wall clock's reading (default: the system clock); --at may not pass it",
    )
    parser.add_argument(
        "--hang-before-commit", type=int, default=None, metavar="BATCH",
        help="testing: print READY and wait before committing batch BATCH (to be killed)",
    )
    parser.add_argument(
        "--start-when-exists", default=None, metavar="PATH",
        help="testing: connect, then wait for PATH to exist before sweeping (starts several "
        "processes at the same instant)",
    )
    return parser.parse_args(list(argv))


async def _main(argv: Sequence[str]) -> int:
    import json

    from hotline.clock import Clock, SystemClock
    from hotline.config import load_settings
    from hotline.services.app import open_app

    args = _parse_args(argv)
    overrides: dict[str, object] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    settings = load_settings(**overrides)
    clock: Clock = SystemClock()
    if args.clock:
        clock = ManualClock(parse_at(args.clock, settings.timezone))
    now = parse_at(args.at, settings.timezone) if args.at else clock.now()
    app = await open_app(settings, clock, sync_groups=False)
    hang = args.hang_before_commit

    async def before_commit(index: int) -> None:
        if hang is not None and index == hang:
            print("READY", flush=True)
            await asyncio.sleep(3600)

    try:
        if args.start_when_exists:
            async with app.sessions() as session:  # warm the pool before the start line
                await session.execute(select(func.count()).select_from(OwnerGroup))
            print("WAITING", flush=True)
            await asyncio.to_thread(_wait_for_file, args.start_when_exists)
        report = await sweep(app, now, dry_run=args.dry_run, batch_size=args.batch_size,
                             before_commit=before_commit if hang is not None else None)
    finally:
        await app.close()
    summary = report.to_json()
    summary.pop("fired")
    summary["fired"] = len(report.fired)
    print(json.dumps(summary), flush=True)
    return 0


def _wait_for_file(path: str) -> None:
    from pathlib import Path

    while not Path(path).exists():
        time.sleep(0.005)


def main(argv: Sequence[str] | None = None) -> int:
    from hotline.errors import HotlineError

    try:
        return asyncio.run(_main(sys.argv[1:] if argv is None else argv))
    except HotlineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
