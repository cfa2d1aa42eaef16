"""Reading the open tickets for a sweep, fast: it is most of a steady-state sweep's cost.

A sweep every minute reads every open ticket, so this module keeps the read lean:

* only the SLA columns the ladder needs, plus, from the same query, the levels already fired
  in the ticket's current cycle as a bit mask (outer join on the unique escalation key);
* the database drops paused tickets and tickets with nothing left to fire this cycle;
* overdue counts for red alerts come from one grouped scan, not from Python;
* rows become small slotted objects (attribute access on a SQLAlchemy ``Row`` costs ten times
  more), and timestamps skip the generic ``UTCDateTime`` processing: SQLite's text is parsed
  straight into an aware UTC datetime, asyncpg already returns aware UTC datetimes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, and_, case, func, not_, or_, select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeDecorator

from escalation import ladder
from escalation.ladder import Extras
from hotline.domain.enums import EscalationLevel, EventKind
from storage.models import Escalation, Extension, Ticket, TicketEvent

#: Ids per ``IN (...)`` list, below both SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 5000
OPEN = sorted(ladder.OPEN_STATE_VALUES)
T = TypeVar("T")

#: Each level as a bit of the "fired in the current cycle" mask.
LEVEL_BITS = {level.value: 1 << i for i, level in enumerate(ladder.LEVELS)}
MASK_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(level for level, bit in LEVEL_BITS.items() if mask & bit)
    for mask in range(1 << len(LEVEL_BITS))
)
ALL_FIRED = (1 << len(LEVEL_BITS)) - 1


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sqlite_utc(value: str | None) -> datetime | None:
    # SQLAlchemy stores naive UTC as "YYYY-MM-DD HH:MM:SS.ffffff" (storage/types.py).
    return None if value is None else datetime.fromisoformat(value + "+00:00")


class _FastUTC(TypeDecorator[datetime]):
    """Read-only twin of ``storage.types.UTCDateTime`` with one C call per value."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_utc
        return None  # asyncpg: timestamptz arrives as an aware UTC datetime


_FAST = _FastUTC()


def _t(column: Any) -> Any:
    return type_coerce(column, _FAST).label(column.key)


@dataclass(slots=True)
class Candidate:
    """One open ticket as the ladder sees it (``ladder.TicketLike``), plus what the sweep adds."""

    id: int
    group_id: int
    state: str
    priority: str
    cycle: int
    cycle_started_at: datetime
    budget_seconds: float
    paused_seconds: float
    paused_since: datetime | None
    deadline_at: datetime
    first_response_due_at: datetime
    acknowledged_at: datetime | None
    last_progress_at: datetime | None
    extension_requests: int
    fired_mask: int = 0

    @property
    def fired(self) -> frozenset[str]:
        return MASK_SETS[self.fired_mask]


SNAPSHOT_COLUMNS = (
    Ticket.id,
    Ticket.group_id,
    Ticket.state,
    Ticket.priority,
    Ticket.cycle,
    _t(Ticket.cycle_started_at),
    Ticket.budget_seconds,
    Ticket.paused_seconds,
    _t(Ticket.paused_since),
    _t(Ticket.deadline_at),
    _t(Ticket.first_response_due_at),
    _t(Ticket.acknowledged_at),
    _t(Ticket.last_progress_at),
    Ticket.extension_requests,
)


def _level_bit(level: Any) -> Any:
    return case(*((level == name, bit) for name, bit in LEVEL_BITS.items()), else_=0)


def live_candidates_query() -> Any:
    """Open, running tickets that may still have a step to fire in their current cycle.

    Paused tickets cannot escalate, and a ticket whose remaining levels are all fired (the
    reminder counts as done once there was progress this cycle: it can no longer fire) has
    nothing left until its next cycle -- in a steady state that is most old tickets.

    The fired mask is an outer join grouped by ticket, so it is computed once per ticket
    (as a correlated subquery referenced in both SELECT and HAVING, both databases evaluated
    it once per reference) and the planner may hash or merge the join.
    """
    mask = func.coalesce(func.sum(_level_bit(Escalation.level)), 0)
    reminder_bit = LEVEL_BITS[EscalationLevel.REMINDER.value]
    done = or_(
        mask == ALL_FIRED,
        and_(
            mask == ALL_FIRED & ~reminder_bit,
            Ticket.last_progress_at.is_not(None),
            Ticket.last_progress_at >= Ticket.cycle_started_at,
        ),
    )
    return (
        select(*SNAPSHOT_COLUMNS, mask.label("fired_mask"))
        .outerjoin(
            Escalation,
            and_(Escalation.ticket_id == Ticket.id, Escalation.cycle == Ticket.cycle),
        )
        .where(Ticket.state.in_(OPEN), Ticket.paused_since.is_(None))
        .group_by(Ticket.id)
        .having(not_(done))
    )


async def live_candidates(conn: AsyncConnection) -> list[Candidate]:
    result = await conn.execute(live_candidates_query())
    return [Candidate(*row) for row in result]


async def candidates_by_id(conn: AsyncConnection, ids: Sequence[int]) -> list[Candidate]:
    out: list[Candidate] = []
    for chunk in chunks(ids, IN_CHUNK):
        stmt = select(*SNAPSHOT_COLUMNS).where(Ticket.id.in_(chunk))
        out += [Candidate(*row) for row in await conn.execute(stmt)]
    return out


async def overdue_counts(
    conn: AsyncConnection, calendar: Any, now: datetime
) -> tuple[dict[int, int], int]:
    """Overdue open tickets per group (red alerts), and how many open tickets there are.

    One scan: running clocks are compared in SQL with the sweep's overdue cutoff and counted
    per group; a paused clock is frozen at its pause, and the few paused tickets whose pause
    began after their deadline come back one per row, to be judged exactly by
    ``sla.is_overdue`` (a pause on the Saturday after a Friday 17:00 deadline is not overdue).
    """
    cutoff = ladder.overdue_cutoff(calendar, now)
    running = Ticket.paused_since.is_(None)
    suspect = case(
        (and_(Ticket.paused_since.is_not(None), Ticket.paused_since > Ticket.deadline_at),
         Ticket.id),
        else_=None,
    ).label("suspect")
    stmt = (
        select(
            Ticket.group_id, suspect, func.count(),
            func.sum(case((and_(running, Ticket.deadline_at < cutoff), 1), else_=0)),
        )
        .where(Ticket.state.in_(OPEN))
        .group_by(Ticket.group_id, suspect)
    )
    overdue: dict[int, int] = defaultdict(int)
    scanned = 0
    suspects: list[int] = []
    for group_id, suspect_id, count, late in await conn.execute(stmt):
        scanned += int(count)
        if late:
            overdue[group_id] += int(late)
        if suspect_id is not None:
            suspects.append(suspect_id)
    for ticket in await candidates_by_id(conn, suspects):
        if ladder.is_overdue(ticket, calendar, now):
            overdue[ticket.group_id] += 1
    return dict(overdue), scanned


async def fired_levels(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, set[str]]:
    """Levels already fired in each ticket's *current* cycle (re-read under the batch lock)."""
    stmt = select(Escalation.ticket_id, Escalation.level).join(
        Ticket, and_(Ticket.id == Escalation.ticket_id, Ticket.cycle == Escalation.cycle)
    )
    fired: dict[int, set[str]] = defaultdict(set)
    for chunk in chunks(ticket_ids, IN_CHUNK):
        for ticket_id, level in await session.execute(stmt.where(Ticket.id.in_(chunk))):
            fired[ticket_id].add(level)
    return fired


async def load_extras(
    session: AsyncSession, resumed_ids: Sequence[int], extension_ids: Sequence[int]
) -> dict[int, Extras]:
    """The facts outside the ticket row (``ladder.Extras``), for the few tickets that need them."""
    resumed: dict[int, datetime] = {}
    for chunk in chunks(resumed_ids, IN_CHUNK):
        stmt = (
            select(TicketEvent.ticket_id, func.max(TicketEvent.at))
            .where(TicketEvent.kind == EventKind.RESUMED.value, TicketEvent.ticket_id.in_(chunk))
            .group_by(TicketEvent.ticket_id)
        )
        resumed.update({tid: at for tid, at in await session.execute(stmt)})
    requested: dict[int, datetime] = {}
    for chunk in chunks(extension_ids, IN_CHUNK):
        stmt = (
            select(Extension.ticket_id, func.max(Extension.requested_at))
            .where(Extension.ticket_id.in_(chunk))
            .group_by(Extension.ticket_id)
        )
        requested.update({tid: at for tid, at in await session.execute(stmt)})
    return {
        tid: Extras(
            last_resumed_at=_as_utc(resumed.get(tid)),
            last_extension_request_at=_as_utc(requested.get(tid)),
        )
        for tid in set(resumed) | set(requested)
    }


def _as_utc(value: datetime | str | None) -> datetime | None:
    """``max()`` over a UTCDateTime column comes back untyped on SQLite; normalise it."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
