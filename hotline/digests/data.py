"""Loading what a digest needs from the database, then handing it to the pure computation.

A digest must not read every event ever written: only tickets that matter to the period are
replayed -- those with an event inside it, and those that may be open at its end (see
``relevant_ticket_ids``). Only the needed columns are selected (and only the JSON the replay
reads), ids are passed in chunks under the drivers' bind-parameter limits, and the trend is
counted by the database over the ``(kind, at)`` index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, case, distinct, func, not_, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.deps import Deps
from hotline.digests.compute import OPEN, Rules, compute_digest
from hotline.digests.model import (
    AlertRow,
    Digest,
    EventRow,
    GroupInfo,
    TicketInfo,
    TrendWeek,
)
from hotline.digests.period import Period, trend_weeks
from hotline.domain.enums import TERMINAL_STATES, Role
from storage import batching
from storage.models import GroupAlert, Organisation, OwnerGroup, Person, Ticket, TicketEvent

T = TypeVar("T")
#: Ids per ``IN (...)``: well under SQLite's 32,766 and asyncpg's 32,767 bind parameters.
CHUNK = 5000
_TERMINAL = sorted(s.value for s in TERMINAL_STATES)
_OPEN = sorted(OPEN)


def rules_for(deps: Deps) -> Rules:
    """The digest rules of this installation (calendar, thresholds)."""
    calendar = deps.calendar
    return Rules(
        calendar=calendar,
        first_response_business_days=deps.settings.first_response_business_days,
        red_alert_threshold=deps.settings.red_alert_overdue_threshold,
        day_seconds=calendar.business_day_seconds,
    )


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``CHUNK`` ids (shared with ``digests.export``)."""
    return batching.chunks(items, size)


@dataclass(frozen=True)
class DigestInputs:
    """Everything ``compute_digest`` reads, as plain rows (kept for tests and the bench)."""

    events: list[EventRow]
    tickets: dict[int, TicketInfo]
    groups: list[GroupInfo]
    alerts: list[AlertRow]
    trend: list[TrendWeek]
    names: dict[int, str]


async def relevant_ticket_ids(session: AsyncSession, period: Period) -> list[int]:
    """Tickets active in ``[start, end)`` or possibly open at ``end``: a superset, which the
    replay then judges from the events alone.

    A ticket is left out only if its row shows it closed or rejected before the period began.
    That is safe because every move into a terminal state stamps ``closed_at`` and a reopening
    clears it: a terminal ticket whose ``closed_at`` is before ``start`` has not moved since, so
    it was terminal throughout the period (its later events, such as a rating, are picked up by
    the first query). Reading the small ticket table for this is far cheaper than finding each
    ticket's last state change among all events.
    """
    active = select(TicketEvent.ticket_id).where(TicketEvent.at >= period.start, TicketEvent.at < period.end)
    finished_before = and_(
        Ticket.state.in_(_TERMINAL), Ticket.closed_at.is_not(None), Ticket.closed_at < period.start
    )
    carried = select(Ticket.id).where(Ticket.created_at < period.end, not_(finished_before))
    stmt = active.union(carried)
    return sorted(int(x) for x in (await session.execute(stmt)).scalars())


#: Event kinds whose ``data`` the replay reads; the JSON of the others is not even decoded.
DATA_KINDS = (
    "created",
    "assigned",
    "resumed",
    "deadline_changed",
    "recategorised",
    "priority_changed",
    "rated",
    "followed",
    "escalated",
)


async def load_events(session: AsyncSession, ticket_ids: Sequence[int], end: datetime) -> list[EventRow]:
    data = case((TicketEvent.kind.in_(DATA_KINDS), TicketEvent.data), else_=null()).label("data")
    cols = (
        TicketEvent.ticket_id,
        TicketEvent.kind,
        TicketEvent.at,
        TicketEvent.to_state,
        data,
        TicketEvent.id,
    )
    out: list[EventRow] = []
    for chunk in chunks(ticket_ids):
        stmt = select(*cols).where(TicketEvent.ticket_id.in_(chunk), TicketEvent.at < end)
        out.extend(EventRow._make(row) for row in await session.execute(stmt))
    return out


async def load_tickets(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, TicketInfo]:
    out: dict[int, TicketInfo] = {}
    for chunk in chunks(ticket_ids):
        stmt = (
            select(
                Ticket.id,
                Ticket.ref,
                Ticket.title,
                Ticket.reporter_id,
                Ticket.organisation_id,
                Organisation.kind,
                Organisation.name,
            )
            .outerjoin(Organisation, Organisation.id == Ticket.organisation_id)
            .where(Ticket.id.in_(chunk))
        )
        for tid, ref, title, reporter, org_id, kind, org_name in await session.execute(stmt):
            out[int(tid)] = TicketInfo(
                int(tid), ref, title, int(reporter), org_id, kind or "other", org_name or ""
            )
    return out


async def load_groups(session: AsyncSession) -> list[GroupInfo]:
    stmt = select(
        OwnerGroup.id, OwnerGroup.code, OwnerGroup.name_vi, OwnerGroup.name_en, OwnerGroup.active
    ).order_by(OwnerGroup.id)
    return [GroupInfo(*row) for row in await session.execute(stmt)]


async def load_alerts(session: AsyncSession, period: Period) -> list[AlertRow]:
    stmt = select(
        GroupAlert.group_id, GroupAlert.raised_at, GroupAlert.cleared_at, GroupAlert.overdue_count
    ).where(
        GroupAlert.raised_at < period.end,
        or_(GroupAlert.cleared_at.is_(None), GroupAlert.cleared_at >= period.start),
    )
    return [AlertRow(*row) for row in await session.execute(stmt)]


async def load_trend(session: AsyncSession, period: Period, weeks: int) -> list[TrendWeek]:
    """Distinct tickets opened and resolved per ISO week, counted by the database in one pass
    over the ``(kind, at)`` index (``compute.compute_trend`` is the same count from rows)."""
    span = trend_weeks(period, weeks)
    cols = []
    for w in span:
        in_week = and_(TicketEvent.at >= w.start, TicketEvent.at < w.end)
        for kind in ("created", "resolved"):
            hit = case((and_(TicketEvent.kind == kind, in_week), TicketEvent.ticket_id))
            cols.append(func.count(distinct(hit)))
    stmt = select(*cols).where(
        TicketEvent.kind.in_(("created", "resolved")),
        TicketEvent.at >= span[0].start,
        TicketEvent.at < span[-1].end,
    )
    row = (await session.execute(stmt)).one()
    return [TrendWeek(w.label, w.first_day, int(row[2 * i]), int(row[2 * i + 1])) for i, w in enumerate(span)]


async def load_staff_names(session: AsyncSession) -> dict[int, str]:
    """Names of everyone who can own a ticket (a few hundred people at most)."""
    stmt = select(Person.id, Person.display_name).where(Person.role != Role.REPORTER.value)
    return {int(pid): name for pid, name in await session.execute(stmt)}


async def consistent_reads(session: AsyncSession) -> None:
    """Make the session's reads one version of the data: call before its first query.

    A page or digest reads several tables in several queries; under PostgreSQL's default
    (read committed) each query sees the data as of its own start, so a ticket filed
    between two of them would be in one figure and not the next. Repeatable read gives the
    whole transaction the snapshot of its first query. SQLite's read transactions (WAL) are
    already one snapshot.
    """
    if session.bind.dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


async def load_inputs(
    session: AsyncSession, period: Period, trend_count: int | None = 12
) -> DigestInputs:
    """The rows of ``period`` (``trend_count=None``: no trend, for a caller that counts the
    trend of several periods over rows loaded once)."""
    ids = await relevant_ticket_ids(session, period)
    return DigestInputs(
        events=await load_events(session, ids, period.end),
        tickets=await load_tickets(session, ids),
        groups=await load_groups(session),
        alerts=await load_alerts(session, period),
        trend=[] if trend_count is None else await load_trend(session, period, trend_count),
        names=await load_staff_names(session),
    )


def digest_from_inputs(
    deps: Deps, period: Period, inputs: DigestInputs, rules: Rules | None = None
) -> Digest:
    return compute_digest(
        period,
        inputs.events,
        inputs.tickets,
        inputs.groups,
        rules or rules_for(deps),
        alerts=inputs.alerts,
        trend_counts=inputs.trend,
        names=inputs.names,
        categories=list(deps.taxonomy.categories),
    )


async def build_digest_with_inputs(app: Any, period: Period) -> tuple[Digest, DigestInputs]:
    """The digest and the rows it came from (the monthly workbook reuses them)."""
    async with app.sessions() as session:
        await consistent_reads(session)
        inputs = await load_inputs(session, period)
    return digest_from_inputs(app, period, inputs), inputs


async def build_digest(app: Any, period: Period) -> Digest:
    """Load and compute the programme-wide digest of ``period`` (every audience is a view of it).

    ``app`` is an ``App`` (anything with ``sessions`` plus the ``Deps`` fields). The reads share
    one session, and every query is bounded by ``period.end``, so events written meanwhile do
    not leak in.
    """
    return (await build_digest_with_inputs(app, period))[0]
