"""The dashboard's and the board's numbers: the digest's own computation, for any period and
filter, so the web and the weekly digest can never disagree.

``hotline.digests`` loads the rows a period needs and replays every ticket from its events
(``compute_digest``). This module calls exactly that, and adds only what the digest does not
report, computed with the digest's replay (``Replay``/``apply``) over the same rows:

* per ticket, its facts at the period's end (group, category, state, RAG, reporter kind), so
  lists and filters use the digest's view of each ticket, not today's ticket table;
* per owner group, tickets resolved *on time* (not overdue at their last resolution in the
  period, judged by ``hotline.domain.sla`` as the digest judges overdue) and the satisfaction of
  the tickets rated in the period (the digest reports satisfaction by category and reporter
  kind, not by group).

A filtered view is the digest recomputed over the matching tickets' events (group, category,
reporter kind, and state/RAG at the end), so "the digest's numbers for that filter" holds by
construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.deps import Deps
from hotline.digests.compute import (
    REPORTER_KINDS,
    Replay,
    Rules,
    apply,
    compute_trend,
    events_by_ticket,
)
from hotline.digests.data import (
    DigestInputs,
    consistent_reads,
    digest_from_inputs,
    load_alerts,
    load_events,
    load_groups,
    load_inputs,
    load_staff_names,
    load_tickets,
    load_trend,
    rules_for,
)
from hotline.digests.model import Digest, TicketInfo, TrendRow, TrendWeek
from hotline.digests.period import Period, trend_weeks, week_of
from hotline.domain.enums import OrgKind
from hotline.web.params import Filters
from storage.models import GroupAlert, Organisation, OwnerGroup, Ticket, TicketEvent

TREND_WEEKS = 12
Watermark = tuple[Any, ...]


class TicketRow(NamedTuple):
    """One ticket as it stood at the period's end (the digest's replay). A tuple, because a
    year holds tens of thousands and they cross a process boundary (``worker``)."""

    ticket_id: int
    ref: str
    title: str
    state: str
    group_id: int
    group_code: str
    category: str
    priority: str
    rag: str
    overdue: bool
    org_kind: str
    organisation_id: int | None
    reporter_id: int
    assignee_id: int | None
    created_at: datetime
    deadline_at: datetime | None
    resolved_at: datetime | None
    extensions: int


@dataclass
class GroupExtra:
    resolved_on_time: int = 0
    ratings: int = 0
    rating_total: int = 0

    @property
    def satisfaction(self) -> float | None:
        return None if self.ratings == 0 else self.rating_total / self.ratings


@dataclass(frozen=True)
class Figures:
    period: Period
    digest: Digest
    rows: dict[int, TicketRow] = field(repr=False)
    extras: dict[int, GroupExtra] = field(repr=False)


# ---------------------------------------------------------------------------------------------
# Pure part (runs in the figure process, or the worker thread)
# ---------------------------------------------------------------------------------------------


def replay_rows(period: Period, inputs: DigestInputs, rules: Rules
                ) -> tuple[dict[int, TicketRow], dict[int, GroupExtra]]:
    """Each ticket at the period's end, and the per-group figures the digest leaves out."""
    start, end = period.start, period.end
    at = period.moment  # RAG and overdue are judged at the period's moment, as in the digest
    group_ids = {g.code: g.id for g in inputs.groups}
    group_codes = {g.id: g.code for g in inputs.groups}
    rows: dict[int, TicketRow] = {}
    extras: dict[int, GroupExtra] = defaultdict(GroupExtra)
    for tid, events in events_by_ticket(inputs.events).items():
        r = Replay(tid)
        on_time: bool | None = None
        rating: int | None = None
        for e in events:
            if e.at >= end:
                break
            inside = e.at >= start
            if inside and e.kind == "resolved":
                on_time = not r.overdue(rules, e.at)
            apply(r, e, rules, group_ids)
            if inside and e.kind == "rated":
                stars = (e.data or {}).get("stars")
                if isinstance(stars, int):
                    rating = stars
        if r.created_at is None:
            continue
        info = inputs.tickets.get(tid) or TicketInfo(tid, f"#{tid}", "", 0, None, "other", "")
        gid = r.group_id if r.group_id is not None else -1
        rows[tid] = TicketRow(
            ticket_id=tid, ref=info.ref, title=info.title, state=r.state or "new", group_id=gid,
            group_code=group_codes.get(gid, ""), category=r.category, priority=r.priority,
            rag=r.rag(rules, at), overdue=r.is_open and r.overdue(rules, at),
            org_kind=info.org_kind if info.org_kind in REPORTER_KINDS else OrgKind.OTHER.value,
            organisation_id=info.organisation_id, reporter_id=info.reporter_id,
            assignee_id=r.assignee_id, created_at=r.created_at, deadline_at=r.deadline,
            resolved_at=r.resolved_at, extensions=r.ext_approved,
        )
        if on_time:
            extras[gid].resolved_on_time += 1
        if rating is not None:
            extras[gid].ratings += 1
            extras[gid].rating_total += rating
    return rows, dict(extras)


def figures_from_inputs(deps: Deps, period: Period, inputs: DigestInputs,
                        trend_count: int = TREND_WEEKS) -> Figures:
    rules = replace(rules_for(deps), trend_count=trend_count)
    digest = digest_from_inputs(deps, period, inputs, rules)
    rows, extras = replay_rows(period, inputs, rules)
    return Figures(period, digest, rows, extras)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


async def watermark(session: AsyncSession) -> Watermark:
    """Changes whenever an event is appended or a red alert is raised or cleared."""
    stmt = select(
        select(func.max(TicketEvent.id)).scalar_subquery(),
        select(func.count(GroupAlert.id)).scalar_subquery(),
        select(func.max(GroupAlert.cleared_at)).scalar_subquery(),
        select(func.count(OwnerGroup.id)).scalar_subquery(),
    )
    row = (await session.execute(stmt)).one()
    return tuple(row)


async def compute_figures(reader: Any, period: Period, trend_count: int = TREND_WEEKS) -> Figures:
    """The whole programme's figures for ``period`` (the digest, plus the rows above).

    ``reader`` is a ``ReadApp`` (deps and sessions); runs on the web worker's loop.
    """
    async with reader.sessions() as session:
        await consistent_reads(session)
        inputs = await load_inputs(session, period, trend_count)
    return figures_from_inputs(reader, period, inputs, trend_count)


@dataclass(frozen=True)
class Snapshot:
    """Several periods' figures and a year's weekly trend from one read of the data at one
    instant: what a page showing them side by side (the public board) is made of, so no two
    of its parts can come from different moments."""

    figures: tuple[Figures, ...]
    trend: tuple[TrendWeek, ...]


def _cover(periods: Sequence[Period]) -> Period:
    """One period spanning them all (their rows are loaded once, for all of them)."""
    first = min(periods, key=lambda p: p.start)
    last = max(periods, key=lambda p: p.end)
    return Period("range", "cover", first.first_day, last.last_day, first.start, last.end,
                  first.tz, last.as_of)


async def compute_snapshot(reader: Any, periods: Sequence[Period], trend_period: Period,
                           trend_count: int = TREND_WEEKS) -> Snapshot:
    """``periods``' figures and ``trend_period``'s week-by-week trend, from one session.

    The rows of the period covering them all are read once (a superset for each: the
    digest ignores tickets and events a period does not concern), each period's trend is
    counted by the database, and the session reads one version of the data
    (``consistent_reads``); ``periods`` are cut at the same instant by the caller.
    """
    async with reader.sessions() as session:
        await consistent_reads(session)
        shared = await load_inputs(session, _cover(periods), None)
        trends = [await load_trend(session, p, trend_count) for p in periods]
        year = await load_trend(session, trend_period, weeks_spanned(trend_period))
    figures = tuple(
        figures_from_inputs(reader, p, replace(shared, trend=trend), trend_count)
        for p, trend in zip(periods, trends, strict=True)
    )
    return Snapshot(figures, tuple(year))


async def filtered_digest(reader: Any, base: Figures, filters: Filters) -> Digest:
    """The digest of ``base.period`` over the tickets matching ``filters`` only."""
    if not filters.narrows_tickets:
        return base.digest
    period = base.period
    ids = sorted(tid for tid, row in base.rows.items() if filters.matches(row))
    async with reader.sessions() as session:
        events = await load_events(session, ids, period.end)
        tickets = await load_tickets(session, ids)
        groups = await load_groups(session)
        alerts = await load_alerts(session, period)
        rows = await load_trend_filtered(session, period, TREND_WEEKS, filters, base.rows)
        names = await load_staff_names(session)
    trend = list(compute_trend(period, rows, TREND_WEEKS))
    inputs = DigestInputs(events, tickets, groups, alerts, trend, names)
    return digest_from_inputs(reader, period, inputs)


async def load_trend_filtered(session: AsyncSession, period: Period, weeks: int, filters: Filters,
                              rows: Mapping[int, TicketRow]) -> list[TrendRow]:
    """Opened/resolved events of the trend weeks, for tickets matching the filter.

    Tickets of the period are judged by their row (their facts at the end); older tickets
    that left before the period by their current group, category and reporter kind, and not
    at all when the filter is about the state at the end (they had none in the period).
    """
    span = trend_weeks(period, weeks)
    stmt = (
        select(TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.at, OwnerGroup.code,
               Ticket.category, Organisation.kind)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .join(OwnerGroup, OwnerGroup.id == Ticket.group_id)
        .outerjoin(Organisation, Organisation.id == Ticket.organisation_id)
        .where(TicketEvent.kind.in_(("created", "resolved")), TicketEvent.at >= span[0].start,
               TicketEvent.at < span[-1].end)
    )
    out: list[TrendRow] = []
    for tid, kind, at, group, category, org_kind in await session.execute(stmt):
        row = rows.get(tid)
        if row is not None:
            keep = filters.matches(row)
        else:
            org_kind = org_kind if org_kind in REPORTER_KINDS else OrgKind.OTHER.value
            keep = (not filters.by_end_state
                    and (filters.group is None or group == filters.group)
                    and (filters.category is None or category == filters.category)
                    and (filters.kind is None or org_kind == filters.kind))
        if keep:
            out.append(TrendRow(int(tid), kind, at))
    return out


def weeks_spanned(period: Period) -> int:
    """ISO weeks from the one holding the period's first day to the one holding its end."""
    first = week_of(period.start, period.tz)
    last = week_of(period.end - timedelta(seconds=1), period.tz)
    return (last.first_day - first.first_day).days // 7 + 1


def visible_rows(rows: Sequence[TicketRow], allowed: Any) -> list[TicketRow]:
    return [row for row in rows if allowed(row)]
