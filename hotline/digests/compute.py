"""Events in, digest numbers out: a pure function, so every figure can be tested exhaustively.

The ticket table only knows the present; a digest for last week must show last week even after
tickets have moved on. So each ticket is *replayed* from its events up to the end of the period,
and everything "at the end of the period" (open, overdue, RAG, stalled, owner group) comes from
that replay; everything "during the period" counts events inside ``[start, end)``.

Definitions (the report's footnotes say the same):

* new / resolved / closed / rejected / reopened: distinct tickets with such an event in the
  period (a ticket resolved twice in a week counts once); closed = confirmed or auto-closed;
  rejected = rejected or linked as a duplicate.
* open, overdue, RAG: state at the end, judged by ``hotline.domain.sla`` on the replayed SLA clock
  (business time: a Friday 17:00 deadline is not overdue on Sunday; time waiting on the
  reporter does not count; amber from 75% of the budget used), exactly as for live tickets.
* every ticket is counted under its owner group, category and priority *as of the end*.
* time to resolve: business days from filing to the ticket's last resolution in the period;
  median, and the 90th percentile by nearest rank.
* first response: tickets filed in the period; met if acknowledged (or rejected) by the
  first-response due time; missed if not, once that time has passed; otherwise pending.
* stalled: business days since the latest of the cycle's start, the owner's last progress
  (acknowledgement, update, question, resolution, extension request) and the reporter's answer;
  escalation messages are not progress.
* satisfaction: the latest rating of each ticket rated in the period.
* extensions: requests, approvals and refusals made in the period (events, not tickets).
* escalation messages: reminders and escalations actually queued to a person in the period
  (a step that found nobody to tell is recorded, but sends and counts nothing).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hotline.digests.kinds import compute_kinds
from hotline.digests.model import (
    AlertRow,
    BreakdownRow,
    Digest,
    EventRow,
    Extensions,
    FirstResponse,
    Flow,
    GroupDigest,
    GroupInfo,
    GroupRow,
    Names,
    RedAlert,
    ReporterDigest,
    ResolveTime,
    Satisfaction,
    Stock,
    TicketInfo,
    TicketLine,
    TrendRow,
    TrendWeek,
)
from hotline.digests.period import Period, trend_weeks
from hotline.domain import sla
from hotline.domain.enums import OPEN_STATES, EventKind, OrgKind
from hotline.domain.sla import SlaClock

if TYPE_CHECKING:
    from hotline.domain.calendar import BusinessCalendar

OPEN = frozenset(s.value for s in OPEN_STATES)
STALLED_LIMIT = 10
REPORTER_KINDS: tuple[str, ...] = tuple(k.value for k in OrgKind)

_PROGRESS = frozenset(
    {
        EventKind.ACKNOWLEDGED.value,
        EventKind.MESSAGE.value,
        EventKind.INFO_REQUESTED.value,
        EventKind.RESOLVED.value,
        EventKind.EXTENSION_REQUESTED.value,
    }
)
_CLOSED = frozenset({EventKind.CONFIRMED.value, EventKind.AUTO_CLOSED.value})
_REJECTED = frozenset({EventKind.REJECTED.value, EventKind.DUPLICATE_LINKED.value})


@dataclass(frozen=True)
class Rules:
    """Everything configurable that changes a number, passed in so the function stays pure."""

    calendar: BusinessCalendar
    first_response_business_days: float = 1.0
    amber_fraction: float = 0.75
    red_alert_threshold: int = 3
    #: Length of a business day in seconds (working hours), to turn business seconds into days.
    day_seconds: float = 9 * 3600.0
    stalled_limit: int = STALLED_LIMIT
    trend_count: int = 12


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


def escalation_messages(data: Mapping[str, object] | None) -> int:
    """Messages an ``escalated`` event queued to people (``write_steps`` records how many).

    Events from before the count was recorded say nothing; they count as one message, which
    is what the sweep then always sent."""
    value = (data or {}).get("messages", 1)
    return value if isinstance(value, int) and value >= 0 else 1


def parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


class Replay:
    """One ticket's facts as of an instant, rebuilt event by event.

    The SLA clock is an ``SlaClock`` moved by the very functions the services use on live
    tickets (``sla.start_cycle``, ``pause``, ``resume``, ``restart``, ``extend``, ``rebudget``),
    so a digest's historical deadlines cannot drift from the live ones. Where an event records
    the deadline the services stored, the replay checks itself against it; a disagreement (history
    written before an input was recorded) takes the recorded deadline (``sla.matching_deadline``)
    and is counted in ``sla_corrections``.
    """

    __slots__ = (
        "_extension",
        "acknowledged_at",
        "assignee_id",
        "category",
        "closed_at",
        "created_at",
        "ext_approved",
        "ext_refused",
        "ext_requested",
        "first_response_due",
        "group_id",
        "last_progress",
        "last_resumed",
        "priority",
        "rating",
        "rejected_at",
        "reopened",
        "resolved_at",
        "sla",
        "sla_corrections",
        "sla_days",
        "state",
        "ticket_id",
        "work_start",
    )

    def __init__(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        self.state: str | None = None
        self.group_id: int | None = None
        self.category = ""
        self.priority = "normal"
        self.assignee_id: int | None = None
        self.created_at: datetime | None = None
        #: Filing or the latest reopen: where "stalled" starts counting when nothing happened.
        self.work_start: datetime | None = None
        #: The SLA clock as the services held it (None before the ``created`` event).
        self.sla: SlaClock | None = None
        #: Recorded deadlines the replay had to adopt because its own differed.
        self.sla_corrections = 0
        #: The clock before an approved extension and the approval's instant, until the
        #: ``deadline_changed`` event carrying the new deadline arrives.
        self._extension: tuple[SlaClock, datetime] | None = None
        self.first_response_due: datetime | None = None
        self.acknowledged_at: datetime | None = None
        self.rejected_at: datetime | None = None
        self.last_progress: datetime | None = None
        self.last_resumed: datetime | None = None
        self.resolved_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.sla_days = 0
        self.ext_requested = 0
        self.ext_approved = 0
        self.ext_refused = 0
        self.reopened = 0
        self.rating: int | None = None

    # -- derived facts ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    @property
    def deadline(self) -> datetime | None:
        return self.sla.deadline_at if self.sla is not None else None

    @property
    def paused_since(self) -> datetime | None:
        return self.sla.paused_since if self.sla is not None else None

    def clock(self, rules: Rules) -> SlaClock | None:
        """The SLA clock, judged by ``hotline.domain.sla`` as live tickets are."""
        del rules
        return self.sla

    def overdue(self, rules: Rules, at: datetime) -> bool:
        """``sla.is_overdue``: past the deadline in business time, a pause stopping the clock."""
        clock = self.clock(rules)
        return clock is not None and sla.is_overdue(rules.calendar, clock, at)

    def rag(self, rules: Rules, at: datetime) -> str:
        """``sla.rag`` of an open ticket; finished tickets read green (nothing at risk)."""
        clock = self.clock(rules)
        if not self.is_open or clock is None:
            return "green"
        return sla.rag(rules.calendar, clock, at, amber_at=rules.amber_fraction).value

    def days_overdue(self, rules: Rules, at: datetime) -> float:
        clock = self.clock(rules)
        return 0.0 if clock is None else sla.business_days_overdue(rules.calendar, clock, at)

    def stalled_days(self, rules: Rules, at: datetime) -> float:
        marks = [x for x in (self.work_start, self.last_progress, self.last_resumed) if x is not None]
        if not marks or max(marks) >= at:
            return 0.0
        return rules.calendar.business_seconds_between(max(marks), at) / rules.day_seconds


def _resume(r: Replay, at: datetime, rules: Rules) -> None:
    if r.sla is not None:
        r.sla = sla.resume(rules.calendar, r.sla, at)


def _recorded(r: Replay, data: Mapping[str, object], rules: Rules) -> None:
    """Check the replayed clock against the deadline the event recorded, if it recorded one."""
    recorded = parse_time(data.get("deadline"))
    if recorded is None or r.sla is None or recorded == r.sla.deadline_at:
        return
    r.sla = sla.matching_deadline(rules.calendar, r.sla, recorded)
    r.sla_corrections += 1


def _deadline_changed(r: Replay, data: Mapping[str, object], rules: Rules) -> None:
    """The deadline moved: an approved extension (a new cycle from the approval), a reopen
    (already restarted by the ``reopened`` event) or a new SLA length (recategorisation,
    priority) -- each with the function the services used."""
    cal = rules.calendar
    recorded = parse_time(data.get("deadline"))
    days = data.get("sla_days")
    if r._extension is not None and recorded is not None:
        before, approved_at = r._extension
        r._extension = None
        # ``requested``: the date the services passed to ``sla.extend`` (recorded since #20).
        requested = parse_time(data.get("requested")) or recorded
        try:
            r.sla = sla.extend(cal, before, requested, approved_at)
        except ValueError:  # not later than the deadline of the time: take the record
            pass
    elif isinstance(days, int) and r.sla is not None and data.get("reason") != "reopen":
        r.sla_days = days
        r.sla = sla.rebudget(cal, r.sla, days)
    _recorded(r, data, rules)


def apply(r: Replay, e: EventRow, rules: Rules, group_ids: Mapping[str, int]) -> None:
    """Move the replay over one event (events of one ticket in order of time, then id)."""
    kind, at = e.kind, e.at
    data = e.data or {}
    cal = rules.calendar
    if e.to_state:
        r.state = e.to_state
    if kind == "created":
        r.created_at = r.work_start = at
        r.state = e.to_state or "new"
        r.category = str(data.get("category") or "")
        r.priority = str(data.get("priority") or "normal")
        r.sla_days = int(data.get("sla_days") or 0)
        code = data.get("group")
        if code in group_ids:
            r.group_id = group_ids[code]  # type: ignore[index]
        r.sla = sla.start_cycle(cal, at, r.sla_days)
        _recorded(r, data, rules)
        r.first_response_due = parse_time(data.get("first_response_due")) or (
            sla.first_response_due(cal, at, rules.first_response_business_days)
        )
    elif r.sla is None:
        pass  # events before the ticket's creation (a clipped history): nothing to move
    elif kind == "assigned":
        assignee = data.get("assignee_id")
        r.assignee_id = int(assignee) if assignee is not None else r.assignee_id
        gid = data.get("group_id")
        if gid is not None:
            r.group_id = int(gid)
    elif kind == "acknowledged":
        if r.acknowledged_at is None:
            r.acknowledged_at = at
    elif kind == "paused":
        r.sla = sla.pause(cal, r.sla, max(at, r.sla.cycle_started_at))
    elif kind == "resumed":
        _resume(r, at, rules)
        _recorded(r, data, rules)
        r.last_resumed = at
    elif kind == "resolved":
        _resume(r, at, rules)
        r.resolved_at = at
    elif kind == "reopened":
        r.sla = sla.restart(cal, r.sla, at, r.sla_days)
        r.work_start = at
        r.reopened += 1
        r.resolved_at = r.closed_at = None
    elif kind in _REJECTED:
        _resume(r, at, rules)
        r.closed_at = at
        if r.rejected_at is None:
            r.rejected_at = at
    elif kind in _CLOSED:
        r.closed_at = at
    elif kind == "deadline_changed":
        _deadline_changed(r, data, rules)
    elif kind == "recategorised":
        r.category = str(data.get("new") or r.category)
        code = data.get("group")
        if code in group_ids:
            r.group_id = group_ids[code]  # type: ignore[index]
    elif kind == "priority_changed":
        r.priority = str(data.get("new") or r.priority)
    elif kind == "extension_requested":
        r.ext_requested += 1
    elif kind == "extension_approved":
        # ``sla.extend``: a new cycle from the approval (a waiting ticket keeps waiting, from
        # now), ending at the deadline the following ``deadline_changed`` event records.
        r.ext_approved += 1
        r._extension = (r.sla, at)
    elif kind == "extension_refused":
        r.ext_refused += 1
    elif kind == "rated":
        stars = data.get("stars")
        if isinstance(stars, int):
            r.rating = stars
    if kind in _PROGRESS:
        r.last_progress = at


# ---------------------------------------------------------------------------------------------
# Aggregation helpers
# ---------------------------------------------------------------------------------------------


class _Tally:
    """Mutable counters for one slice (whole programme, a group, a category, a reporter kind)."""

    __slots__ = (
        "amber",
        "approved",
        "closed",
        "green",
        "new",
        "open",
        "overdue",
        "ratings",
        "red",
        "refused",
        "rejected",
        "reopened",
        "requested",
        "resolve_days",
        "resolved",
        "waiting",
    )

    def __init__(self) -> None:
        self.new = self.resolved = self.closed = self.rejected = self.reopened = 0
        self.open = self.overdue = self.green = self.amber = self.red = self.waiting = 0
        self.requested = self.approved = self.refused = 0
        self.ratings: list[int] = []
        self.resolve_days: list[float] = []

    def flow(self) -> Flow:
        return Flow(self.new, self.resolved, self.closed, self.rejected, self.reopened)

    def stock(self) -> Stock:
        return Stock(self.open, self.overdue, self.green, self.amber, self.red, self.waiting)

    def extensions(self) -> Extensions:
        return Extensions(self.requested, self.approved, self.refused)

    def satisfaction(self) -> Satisfaction:
        return Satisfaction(len(self.ratings), sum(self.ratings))

    def resolve_time(self) -> ResolveTime:
        return resolve_time(self.resolve_days)


def percentile_nearest_rank(values: Sequence[float], p: float) -> float:
    """The smallest value with at least ``p`` percent of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def resolve_time(days: Sequence[float]) -> ResolveTime:
    if not days:
        return ResolveTime()
    return ResolveTime(len(days), float(statistics.median(days)), percentile_nearest_rank(days, 90))


@dataclass
class _TicketPeriod:
    """What one ticket did inside the period."""

    created: bool = False
    resolved_at: datetime | None = None
    closed: bool = False
    rejected: bool = False
    reopened: bool = False
    rating: int | None = None
    requested: int = 0
    approved: int = 0
    refused: int = 0
    escalations: int = 0


def events_by_ticket(events: Iterable[EventRow]) -> dict[int, list[EventRow]]:
    """Each ticket's events, in the order a replay takes them (time, then id).

    Public because the web's figures (``hotline.web.figures``) replay tickets alongside the
    digest; grouping and ordering them here, in one place, keeps the two replays identical.
    """
    grouped: dict[int, list[EventRow]] = defaultdict(list)
    for e in events:
        grouped[e.ticket_id].append(e)
    for rows in grouped.values():
        rows.sort(key=lambda e: (e.at, e.id))
    return grouped


# ---------------------------------------------------------------------------------------------
# The digest
# ---------------------------------------------------------------------------------------------


def replay_tickets(
    events: Iterable[EventRow],
    rules: Rules,
    group_ids: Mapping[str, int],
    end: datetime,
    start: datetime | None = None,
) -> tuple[dict[int, Replay], dict[int, _TicketPeriod]]:
    """Replay every ticket up to ``end``; also collect what each did in ``[start, end)``."""
    replays: dict[int, Replay] = {}
    activity: dict[int, _TicketPeriod] = {}
    for ticket_id, rows in events_by_ticket(events).items():
        r = Replay(ticket_id)
        act: _TicketPeriod | None = None
        for e in rows:
            if e.at >= end:
                break
            apply(r, e, rules, group_ids)
            if start is None or e.at < start:
                continue
            if act is None:
                act = activity.setdefault(ticket_id, _TicketPeriod())
            kind = e.kind
            if kind == "created":
                act.created = True
            elif kind == "resolved":
                act.resolved_at = e.at
            elif kind in _CLOSED:
                act.closed = True
            elif kind in _REJECTED:
                act.rejected = True
            elif kind == "reopened":
                act.reopened = True
            elif kind == "rated":
                stars = (e.data or {}).get("stars")
                if isinstance(stars, int):
                    act.rating = stars
            elif kind == "extension_requested":
                act.requested += 1
            elif kind == "extension_approved":
                act.approved += 1
            elif kind == "extension_refused":
                act.refused += 1
            elif kind == "escalated":
                act.escalations += escalation_messages(e.data)
        if r.created_at is not None:
            replays[ticket_id] = r
    return replays, activity


def _first_response(r: Replay, end: datetime) -> str:
    """'met', 'missed' or 'pending' for a ticket filed in the period."""
    due = r.first_response_due
    answered = min((x for x in (r.acknowledged_at, r.rejected_at) if x is not None), default=None)
    if due is None:
        return "pending"
    if answered is not None:
        return "met" if answered <= due else "missed"
    return "missed" if due < end else "pending"


def _line(
    r: Replay,
    info: TicketInfo,
    rules: Rules,
    end: datetime,
    group_codes: Mapping[int, str],
    names: Mapping[int, str],
) -> TicketLine:
    gid = r.group_id if r.group_id is not None else -1
    return TicketLine(
        ticket_id=r.ticket_id,
        ref=info.ref,
        title=info.title,
        state=r.state or "new",
        group_id=gid,
        group_code=group_codes.get(gid, ""),
        category=r.category,
        priority=r.priority,
        assignee_id=r.assignee_id,
        assignee_name=names.get(r.assignee_id, "") if r.assignee_id is not None else "",
        reporter_id=info.reporter_id,
        org_name=info.org_name,
        org_kind=info.org_kind,
        created_at=r.created_at or end,
        deadline_at=r.deadline or end,
        overdue=r.is_open and r.overdue(rules, end),
        days_overdue=round(r.days_overdue(rules, end), 2) if r.is_open else 0.0,
        rag=r.rag(rules, end),
        stalled_days=round(r.stalled_days(rules, end), 2),
        waiting_reporter=r.paused_since is not None,
        extensions_approved=r.ext_approved,
        extensions_requested=r.ext_requested,
        reopened=r.reopened,
    )


def _unknown_ticket(ticket_id: int) -> TicketInfo:
    return TicketInfo(ticket_id, f"#{ticket_id}", "", 0, None, "other", "")


def compute_digest(
    period: Period,
    events: Iterable[EventRow],
    tickets: Mapping[int, TicketInfo],
    groups: Sequence[GroupInfo],
    rules: Rules,
    *,
    alerts: Sequence[AlertRow] = (),
    trend: Sequence[TrendRow] = (),
    trend_counts: Sequence[TrendWeek] | None = None,
    names: Mapping[int, str] | None = None,
    categories: Sequence[str] = (),
) -> Digest:
    """The digest of ``period`` from the events of every ticket that matters to it.

    ``events`` must hold, for each ticket open at the end or active during the period, all its
    events before ``period.end`` (earlier ones are needed to rebuild its state); events of
    other tickets do no harm. ``trend`` holds the ``created``/``resolved`` events of the trend
    weeks, or ``trend_counts`` the weeks already counted (the loader has the database do it).
    ``categories`` fixes the order (and presence) of category rows.
    """
    start, end = period.start, period.end
    events = events if isinstance(events, list) else list(events)
    # Open, overdue, RAG, late first responses: judged at the period's moment -- its end, or
    # for a running period the instant it is computed as of (``period.as_of``), never later.
    at = period.moment
    names = names or {}
    group_ids = {g.code: g.id for g in groups}
    group_codes = {g.id: g.code for g in groups}
    replays, activity = replay_tickets(events, rules, group_ids, end, start)

    total = _Tally()
    by_group: dict[int, _Tally] = defaultdict(_Tally)
    by_category: dict[str, _Tally] = defaultdict(_Tally)
    by_kind: dict[str, _Tally] = defaultdict(_Tally)
    first = {"met": 0, "missed": 0, "pending": 0}
    escalations = 0
    lines: list[TicketLine] = []

    for ticket_id, r in replays.items():
        info = tickets.get(ticket_id) or _unknown_ticket(ticket_id)
        kind = info.org_kind if info.org_kind in REPORTER_KINDS else OrgKind.OTHER.value
        slices = (
            total,
            by_group[r.group_id if r.group_id is not None else -1],
            by_category[r.category],
            by_kind[kind],
        )
        act = activity.get(ticket_id)
        if act is not None:
            escalations += act.escalations
            days = None
            if act.resolved_at is not None and r.created_at is not None:
                days = (
                    rules.calendar.business_seconds_between(r.created_at, act.resolved_at) / rules.day_seconds
                )
            for s in slices:
                s.new += act.created
                s.resolved += act.resolved_at is not None
                s.closed += act.closed
                s.rejected += act.rejected
                s.reopened += act.reopened
                s.requested += act.requested
                s.approved += act.approved
                s.refused += act.refused
                if act.rating is not None:
                    s.ratings.append(act.rating)
                if days is not None:
                    s.resolve_days.append(days)
            if act.created:
                first[_first_response(r, at)] += 1
        if r.is_open:
            overdue = r.overdue(rules, at)
            rag = r.rag(rules, at)
            waiting = r.paused_since is not None
            for s in slices:
                s.open += 1
                s.overdue += overdue
                s.waiting += waiting
                if rag == "red":
                    s.red += 1
                elif rag == "amber":
                    s.amber += 1
                else:
                    s.green += 1
        if r.is_open or r.state == "resolved":
            lines.append(_line(r, info, rules, at, group_codes, names))

    # Red alerts: periods overlapping [start, end), as stored by the escalation sweep.
    group_by_id = {g.id: g for g in groups}
    red_alerts = []
    red_at_end: set[int] = set()
    for a in sorted(alerts, key=lambda a: (a.raised_at, a.group_id)):
        if a.raised_at >= end or (a.cleared_at is not None and a.cleared_at < start):
            continue
        g = group_by_id.get(a.group_id)
        if g is None:
            continue
        still = a.cleared_at is None or a.cleared_at >= end
        if still:
            red_at_end.add(g.id)
        # The stored count follows the live number until the alert clears, so for an alert
        # still open at the end the replayed count is the one that is reproducible.
        tally = by_group.get(g.id)
        count = (tally.overdue if tally is not None else 0) if still else a.overdue_count
        red_alerts.append(
            RedAlert(
                group_id=g.id,
                code=g.code,
                name=Names(g.name_vi, g.name_en),
                raised_at=a.raised_at,
                cleared_at=None if still else a.cleared_at,
                overdue_count=count,
                open_at_end=still,
            )
        )
    red_alerts.sort(key=lambda a: (not a.open_at_end, -a.overdue_count, a.code))

    group_rows = []
    for g in groups:
        tally = by_group.get(g.id)
        if tally is None and not g.active:
            continue
        tally = tally or _Tally()
        group_rows.append(
            GroupRow(
                group_id=g.id,
                code=g.code,
                name=Names(g.name_vi, g.name_en),
                flow=tally.flow(),
                stock=tally.stock(),
                extensions=tally.extensions(),
                red_alert=g.id in red_at_end,
            )
        )

    def breakdown(keys: Sequence[str], tallies: Mapping[str, _Tally]) -> tuple[BreakdownRow, ...]:
        ordered = list(keys) + sorted(k for k in tallies if k not in keys)
        return tuple(
            BreakdownRow(k, t.flow(), t.stock(), t.satisfaction(), t.resolve_time())
            for k in ordered
            for t in (tallies.get(k) or _Tally(),)
        )

    open_lines = [line for line in lines if line.state in OPEN]
    stalled = sorted(open_lines, key=lambda line: (-line.stalled_days, line.created_at, line.ref))
    lines.sort(key=lambda line: (line.deadline_at, line.ref))
    return Digest(
        period=period,
        flow=total.flow(),
        stock=total.stock(),
        extensions=total.extensions(),
        escalations=escalations,
        resolve_time=total.resolve_time(),
        first_response=FirstResponse(first["met"], first["missed"], first["pending"]),
        satisfaction=total.satisfaction(),
        groups=tuple(group_rows),
        by_category=breakdown(categories, by_category),
        by_reporter_kind=breakdown(REPORTER_KINDS, by_kind),
        red_alerts=tuple(red_alerts),
        stalled=tuple(stalled[: rules.stalled_limit]),
        trend=tuple(trend_counts)
        if trend_counts is not None
        else compute_trend(period, trend, rules.trend_count),
        tickets=tuple(lines),
        red_alert_threshold=rules.red_alert_threshold,
        kinds=compute_kinds(events, replays, tickets, rules, start, end),
    )


def compute_trend(period: Period, rows: Iterable[TrendRow], count: int = 12) -> tuple[TrendWeek, ...]:
    """Opened and resolved (distinct tickets) per ISO week, the last ``count`` weeks."""
    weeks = trend_weeks(period, count)
    opened: list[set[int]] = [set() for _ in weeks]
    resolved: list[set[int]] = [set() for _ in weeks]
    first, last = weeks[0].start, weeks[-1].end
    for row in rows:
        if not first <= row.at < last:
            continue
        index = min(int((row.at - first) / timedelta(days=7)), len(weeks) - 1)
        if row.kind == "created":
            opened[index].add(row.ticket_id)
        elif row.kind == "resolved":
            resolved[index].add(row.ticket_id)
    return tuple(
        TrendWeek(w.label, w.first_day, len(o), len(r))
        for w, o, r in zip(weeks, opened, resolved, strict=True)
    )


# ---------------------------------------------------------------------------------------------
# Audience views
# ---------------------------------------------------------------------------------------------


def group_view(digest: Digest, code: str, due_window: timedelta = timedelta(days=7)) -> GroupDigest:
    """A group lead's digest: queue, due in the week after the period, overdue."""
    row = digest.group(code)
    if row is None:
        raise KeyError(code)
    end = digest.period.end
    until = end + due_window
    queue = tuple(t for t in digest.open_tickets if t.group_id == row.group_id)
    overdue = tuple(sorted((t for t in queue if t.overdue), key=lambda t: (-t.days_overdue, t.ref)))
    due_soon = tuple(t for t in queue if not t.overdue and not t.waiting_reporter and t.deadline_at < until)
    return GroupDigest(digest, row, queue, due_soon, overdue, until)


def reporter_view(digest: Digest, person_id: int) -> ReporterDigest:
    return ReporterDigest(digest, person_id, tuple(t for t in digest.tickets if t.reporter_id == person_id))
