"""The digest's vocabulary: rows the loader reads, and the frozen result the renderers print.

Input rows are ``NamedTuple`` because the loader builds hundreds of thousands of them and they
are never more than a typed database row; the result is frozen dataclasses so one computed
digest can be rendered for several audiences and languages without anyone changing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from hotline.digests.kinds import Kinds
from hotline.digests.period import Period

# ---------------------------------------------------------------------------------------------
# Inputs (what the loader reads)
# ---------------------------------------------------------------------------------------------


class EventRow(NamedTuple):
    """One ``ticket_events`` row, with only the columns a digest needs (``data`` only for the
    kinds the replay reads)."""

    ticket_id: int
    kind: str
    at: datetime
    to_state: str | None
    data: Mapping[str, Any] | None
    id: int = 0


class TicketInfo(NamedTuple):
    """What does not change over a ticket's life (or is display only): ref, title, reporter."""

    id: int
    ref: str
    title: str
    reporter_id: int
    organisation_id: int | None
    org_kind: str
    org_name: str


class GroupInfo(NamedTuple):
    id: int
    code: str
    name_vi: str
    name_en: str
    active: bool = True


class AlertRow(NamedTuple):
    """A red-alert period of an owner group (``group_alerts``)."""

    group_id: int
    raised_at: datetime
    cleared_at: datetime | None
    overdue_count: int


class TrendRow(NamedTuple):
    ticket_id: int
    kind: str
    at: datetime


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Names:
    vi: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


@dataclass(frozen=True, slots=True)
class TicketLine:
    """A ticket as it stood at the end of the period (open, or resolved awaiting confirmation)."""

    ticket_id: int
    ref: str
    title: str
    state: str
    group_id: int
    group_code: str
    category: str
    priority: str
    assignee_id: int | None
    assignee_name: str
    reporter_id: int
    org_name: str
    org_kind: str
    created_at: datetime
    deadline_at: datetime
    overdue: bool
    days_overdue: float
    rag: str
    #: Business days since the last progress (owner's update, the reporter's answer, or the
    #: start of the current cycle), as of the end of the period.
    stalled_days: float
    waiting_reporter: bool
    extensions_approved: int
    extensions_requested: int
    reopened: int


@dataclass(frozen=True, slots=True)
class Flow:
    """How many tickets entered or left each state during the period (distinct tickets)."""

    new: int = 0
    resolved: int = 0
    closed: int = 0
    rejected: int = 0
    reopened: int = 0


@dataclass(frozen=True, slots=True)
class Stock:
    """Open tickets at the end of the period."""

    open: int = 0
    overdue: int = 0
    green: int = 0
    amber: int = 0
    red: int = 0
    waiting_reporter: int = 0


@dataclass(frozen=True, slots=True)
class Extensions:
    requested: int = 0
    approved: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True)
class ResolveTime:
    """Business days from filing to resolution, for tickets resolved in the period."""

    count: int = 0
    median_days: float | None = None
    p90_days: float | None = None


@dataclass(frozen=True, slots=True)
class FirstResponse:
    """Tickets filed in the period whose first-response outcome is known at its end."""

    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def counted(self) -> int:
        return self.met + self.missed

    @property
    def percent(self) -> float | None:
        return None if self.counted == 0 else 100.0 * self.met / self.counted


@dataclass(frozen=True, slots=True)
class Satisfaction:
    count: int = 0
    total: int = 0

    @property
    def mean(self) -> float | None:
        return None if self.count == 0 else self.total / self.count


@dataclass(frozen=True, slots=True)
class GroupRow:
    group_id: int
    code: str
    name: Names
    flow: Flow
    stock: Stock
    extensions: Extensions
    red_alert: bool


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """One line of "by category" or "by reporter kind"."""

    key: str
    flow: Flow
    stock: Stock
    satisfaction: Satisfaction
    resolve_time: ResolveTime


@dataclass(frozen=True, slots=True)
class RedAlert:
    group_id: int
    code: str
    name: Names
    raised_at: datetime
    cleared_at: datetime | None  # None, or after the period's end: still red at the end
    overdue_count: int
    open_at_end: bool


@dataclass(frozen=True, slots=True)
class TrendWeek:
    label: str
    first_day: Any  # datetime.date
    opened: int
    resolved: int


@dataclass(frozen=True, slots=True)
class Digest:
    """Every number of one period, for the whole programme; audiences are views of it."""

    period: Period
    flow: Flow
    stock: Stock
    extensions: Extensions
    escalations: int
    resolve_time: ResolveTime
    first_response: FirstResponse
    satisfaction: Satisfaction
    groups: tuple[GroupRow, ...]
    by_category: tuple[BreakdownRow, ...]
    by_reporter_kind: tuple[BreakdownRow, ...]
    red_alerts: tuple[RedAlert, ...]
    stalled: tuple[TicketLine, ...]
    trend: tuple[TrendWeek, ...]
    #: Every ticket open or resolved-awaiting-confirmation at the end, by ref.
    tickets: tuple[TicketLine, ...] = field(repr=False, default=())
    red_alert_threshold: int = 0
    #: Kinds of blockers (original + duplicates + followers) -- the programme's own count.
    kinds: Kinds = field(default_factory=Kinds)

    def group(self, code: str) -> GroupRow | None:
        return next((g for g in self.groups if g.code == code), None)

    @property
    def open_tickets(self) -> tuple[TicketLine, ...]:
        return tuple(t for t in self.tickets if t.state != "resolved")


@dataclass(frozen=True, slots=True)
class GroupDigest:
    """A group lead's view: their queue, what falls due next week, what is overdue."""

    digest: Digest
    group: GroupRow
    queue: tuple[TicketLine, ...]
    due_soon: tuple[TicketLine, ...]
    overdue: tuple[TicketLine, ...]
    #: Exclusive end of the "due soon" window (the period's end plus a week).
    due_until: datetime

    @property
    def due_last_day(self) -> datetime:
        """An instant on the window's last day, for "due by <date>" (the end is exclusive)."""
        return self.due_until - timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ReporterDigest:
    """A reporter's view: their tickets still open (or waiting for their confirmation)."""

    digest: Digest
    person_id: int
    tickets: tuple[TicketLine, ...]
