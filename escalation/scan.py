"""Reading the open tickets for a sweep, fast: it is most of a steady-state sweep's cost.

A sweep every minute reads every open ticket, so this module keeps the read lean:

* only the SLA columns the ladder needs, plus, from the same query, the levels already fired
  in the ticket's current cycle as a bit mask;
* the database drops paused tickets, levels already fired, and levels whose cheap lower bound
  (``Thresholds.not_before``, computed in SQL) is after ``now``: what reaches Python is the
  few tickets near one of their steps;
* overdue counts for red alerts come from one grouped scan, not from Python;
* rows become small slotted objects (attribute access on a SQLAlchemy ``Row`` costs ten times
  more), and timestamps skip the generic ``UTCDateTime`` processing: SQLite's text is parsed
  straight into an aware UTC datetime, asyncpg already returns aware UTC datetimes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Float, Integer, and_, case, func, or_, select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from hotline.domain import ladder
from hotline.domain.enums import EscalationLevel, EventKind, Priority, TicketState
from hotline.domain.ladder import Extras, Thresholds
from storage.batching import IN_CHUNK, chunks
from storage.models import Escalation, Extension, Ticket, TicketEvent
from storage.types import UTCDateTime

OPEN = sorted(ladder.OPEN_STATE_VALUES)
T = TypeVar("T")

#: Each level as a bit of the "fired in the current cycle" mask.
LEVEL_BITS = {level.value: 1 << i for i, level in enumerate(ladder.LEVELS)}
MASK_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(level for level, bit in LEVEL_BITS.items() if mask & bit)
    for mask in range(1 << len(LEVEL_BITS))
)
ALL_FIRED = (1 << len(LEVEL_BITS)) - 1


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


@dataclass(frozen=True, slots=True)
class Candidate(ladder.TicketSnapshot):
    """One open ticket as the ladder sees it (``ladder.TicketSnapshot``), plus what the sweep adds.

    A subclass, so the columns the ladder reads are listed once: a rule that starts reading a
    new column adds it to the snapshot, and the sweep's query (``SNAPSHOT_COLUMNS``, derived
    from these fields) reads it too. The added fields have defaults only because they follow
    the snapshot's defaulted ones; rows always supply ``id`` and ``group_id``. Frozen because
    the snapshot is: building one costs about 2 µs instead of 0.3, paid only for the tickets
    the SQL prefilter lets through (a few hundred in a steady-state sweep of 100k).
    """

    id: int = 0
    group_id: int = 0
    fired_mask: int = 0

    @property
    def fired(self) -> frozenset[str]:
        return MASK_SETS[self.fired_mask]


#: The ticket columns a sweep reads, in ``Candidate`` field order (rows become
#: ``Candidate(*row)``); ``fired_mask`` is computed by the query, not a column.
COLUMN_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Candidate) if f.name != "fired_mask")
_TIMESTAMPS = frozenset(
    name for name in COLUMN_NAMES if isinstance(Ticket.__table__.c[name].type, UTCDateTime)
)


def _columns(source: Any) -> list[Any]:
    """``COLUMN_NAMES`` of ``source`` (the table, or a subquery of it), timestamps read fast."""
    return [_t(source[name]) if name in _TIMESTAMPS else source[name] for name in COLUMN_NAMES]


SNAPSHOT_COLUMNS = tuple(_columns(Ticket.__table__.c))


def _level_bit(level: Any) -> Any:
    return case(*((level == name, bit) for name, bit in LEVEL_BITS.items()), else_=0)


class _Epoch(FunctionElement[float]):
    """Seconds since 1970 of a UTC timestamp column, as a float (for lower bounds only:
    SQLite's julianday is a double, good to some tens of microseconds)."""

    type = Float()
    name = "epoch"
    inherit_cache = True


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(_Epoch, "postgresql")
def _epoch_pg(element: _Epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS FLOAT)"


class _Floor(FunctionElement[int]):
    """floor() of a non-negative number (SQLite may lack math functions; CAST truncates)."""

    type = Integer()
    name = "floor_nonneg"
    inherit_cache = True


@compiles(_Floor, "sqlite")
def _floor_sqlite(element: _Floor, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(_Floor, "postgresql")
def _floor_pg(element: _Floor, compiler: Any, **kw: Any) -> str:
    return f"floor({compiler.process(element.clauses, **kw)})"


def _not_before_sql(start: Any, seconds: Any, th: Thresholds) -> Any:
    """``Thresholds.not_before`` in SQL, in epoch seconds, one night looser (floor for ceil)."""
    nights = _Floor(seconds / th.working_day_seconds) - 1
    return _Epoch(start) + seconds + nights * th.night_seconds


def _bit_clear(mask: Any, level: EscalationLevel) -> Any:
    return mask.op("&")(LEVEL_BITS[level.value]) == 0


def _could_fire(mask: Any, t: Any, now: datetime, th: Thresholds) -> Any:
    """SQL twin of the ladder's lower bounds: false only for tickets with no step due by
    ``now``. A necessary condition, never a decision: Python decides exactly on what is left
    (``tests/integration/test_sweep_scan.py`` compares the two on random tickets)."""
    horizon = now.timestamp() + 2.0  # float slack for julianday's precision
    quiet_cut = now - (th.not_before(now, th.l1_no_update_business_days * th.working_day_seconds)
                       - now)
    l3_cut = now - (th.not_before(now, th.l3_business_days_overdue * th.working_day_seconds)
                    - now)
    no_progress = or_(t.last_progress_at.is_(None), t.last_progress_at < t.cycle_started_at)
    unacknowledged = or_(
        t.state == TicketState.REOPENED.value,
        and_(t.state.in_([TicketState.NEW.value, TicketState.ASSIGNED.value]),
             t.acknowledged_at.is_(None)),
    )
    reminder = and_(
        _bit_clear(mask, EscalationLevel.REMINDER),
        no_progress,
        _not_before_sql(t.cycle_started_at,
                        t.paused_seconds + th.reminder_fraction * t.budget_seconds, th) <= horizon,
    )
    l1 = and_(
        _bit_clear(mask, EscalationLevel.L1),
        or_(
            and_(unacknowledged, t.first_response_due_at <= now),
            _not_before_sql(t.cycle_started_at,
                            t.paused_seconds + th.l1_fraction * t.budget_seconds, th) <= horizon,
            and_(t.cycle_started_at <= quiet_cut,
                 or_(t.last_progress_at.is_(None), t.last_progress_at <= quiet_cut)),
        ),
    )
    l2 = and_(_bit_clear(mask, EscalationLevel.L2), t.deadline_at <= now)
    l3 = and_(
        _bit_clear(mask, EscalationLevel.L3),
        or_(
            t.extension_requests >= ladder.REPEAT_EXTENSION_FROM,
            and_(t.priority == Priority.CRITICAL.value, t.deadline_at <= now),
            t.deadline_at <= l3_cut,
        ),
    )
    return or_(reminder, l1, l2, l3)


def live_candidates_query(dialect: str, now: datetime, thresholds: Thresholds) -> Any:
    """Open, running tickets that may have a step due by ``now`` in their current cycle.

    Paused tickets cannot escalate; levels already fired in the current cycle (a bit mask from
    the escalation table) are out; so is a level whose cheap lower bound lies after ``now``.
    In a steady state that leaves the few tickets near one of their steps.

    The two databases get the shape each runs fastest (measured on 100k tickets, see
    bench/bench_sweep.py): PostgreSQL an outer join grouped by ticket, which it hashes or
    merges; SQLite a correlated subquery -- one probe of the unique escalation key per open
    ticket -- since grouping the join costs it a temporary B-tree.
    """
    open_running = and_(Ticket.state.in_(OPEN), Ticket.paused_since.is_(None))
    if dialect == "postgresql":
        mask = func.coalesce(func.sum(_level_bit(Escalation.level)), 0)
        return (
            select(*SNAPSHOT_COLUMNS, mask.label("fired_mask"))
            .outerjoin(
                Escalation,
                and_(Escalation.ticket_id == Ticket.id, Escalation.cycle == Ticket.cycle),
            )
            .where(open_running)
            .group_by(Ticket.id)
            .having(_could_fire(mask, Ticket, now, thresholds))
        )
    correlated = (
        select(func.coalesce(func.sum(_level_bit(Escalation.level)), 0))
        .where(Escalation.ticket_id == Ticket.id, Escalation.cycle == Ticket.cycle)
        .scalar_subquery()
        .label("fired_mask")
    )
    raw = [Ticket.__table__.c[name] for name in COLUMN_NAMES]
    # MATERIALIZED: the mask is referenced five times below; inlined, SQLite would run the
    # correlated subquery once per reference.
    inner = (
        select(*raw, correlated).where(open_running).cte("open_running")
        .prefix_with("MATERIALIZED")
    )
    return select(*_columns(inner.c), inner.c.fired_mask).where(
        _could_fire(inner.c.fired_mask, inner.c, now, thresholds)
    )


async def live_candidates(
    conn: AsyncConnection, now: datetime, thresholds: Thresholds
) -> list[Candidate]:
    result = await conn.execute(live_candidates_query(conn.dialect.name, now, thresholds))
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
