"""The escalation ladder of SPEC §6 as pure functions: ticket facts in, due steps out.

Nothing here touches the database or the clock, so the rules can be tested exhaustively and the
sweep can evaluate 100k tickets in one pass. The sweep owns "has this already fired" (it passes
the levels fired in the ticket's current cycle) and the database owns "exactly once" (a unique
key on ticket, level and cycle).

Rules (thresholds from ``Settings``; all time is business time of the Vietnamese calendar):

* reminder -> assignee: ``reminder_fraction`` of the SLA used, and no progress update since the
  cycle started;
* L1 -> group lead: not acknowledged by the first-response due time, or ``l1_fraction`` used, or
  no update for ``l1_no_update_business_days``;
* L2 -> coordinators: deadline passed;
* L3 -> leaders: ``l3_business_days_overdue`` past the deadline, or a second (or later) extension
  request in this cycle, or a critical ticket overdue.

The second-extension trigger is an act, not elapsed time, so it is decided when the request is
recorded (``extension_request_step``), not only by the sweep: see that function for why.

A ticket waiting on the reporter (``paused_since`` set) does not escalate with time (only the
extension-request act above still counts): the SLA clock is stopped, and on resumption its
deadline has moved by the paused business time, so every instant derived from
``paused_seconds`` moves with it. Only open tickets escalate.

Speed matters (the sweep runs every minute over every open ticket), so each rule first checks a
cheap wall-clock lower bound (``Thresholds.not_before``: working time accrues at most one
working day per calendar day) and only asks the calendar when the step could be due.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from hotline.domain import sla
from hotline.domain.enums import OPEN_STATES, EscalationLevel, Priority, TicketState
from hotline.domain.sla import SlaClock

if TYPE_CHECKING:
    from hotline.config import Settings
    from hotline.domain.calendar import BusinessCalendar

OPEN_STATE_VALUES: frozenset[str] = frozenset(s.value for s in OPEN_STATES)
LEVELS: tuple[EscalationLevel, ...] = (
    EscalationLevel.REMINDER,
    EscalationLevel.L1,
    EscalationLevel.L2,
    EscalationLevel.L3,
)
#: States in which the owner has not yet taken the ticket up (first-response SLA running).
_UNACKNOWLEDGED = frozenset({TicketState.NEW.value, TicketState.ASSIGNED.value})
_CRITICAL = Priority.CRITICAL.value
_REMINDER, _L1, _L2, _L3 = (level.value for level in LEVELS)


class Reason(StrEnum):
    """Why a step fired; stored in ``escalations.reason`` and shown in the message."""

    SLA_FRACTION = "sla_fraction"
    FIRST_RESPONSE = "first_response"
    NO_UPDATE = "no_update"
    DEADLINE = "deadline"
    OVERDUE_DAYS = "overdue_days"
    SECOND_EXTENSION = "second_extension"
    CRITICAL_OVERDUE = "critical_overdue"


class TicketLike(Protocol):
    """The ticket columns the ladder reads; an ORM ``Ticket``, a result row or a snapshot."""

    @property
    def state(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def cycle(self) -> int: ...
    @property
    def cycle_started_at(self) -> datetime: ...
    @property
    def budget_seconds(self) -> float: ...
    @property
    def paused_seconds(self) -> float: ...
    @property
    def paused_since(self) -> datetime | None: ...
    @property
    def deadline_at(self) -> datetime: ...
    @property
    def first_response_due_at(self) -> datetime: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def last_progress_at(self) -> datetime | None: ...
    @property
    def extension_requests(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TicketSnapshot(SlaClock):
    """A plain copy of the columns in ``TicketLike`` (tests, and callers without a row).

    The ticket's SLA clock columns (``sla.SlaClock``, inherited so they are listed once) plus
    the facts the ladder reads beside them. Build it with keywords: the clock's fields come
    first.
    """

    state: str
    priority: str
    first_response_due_at: datetime
    acknowledged_at: datetime | None = None
    last_progress_at: datetime | None = None
    extension_requests: int = 0


@dataclass(frozen=True, slots=True)
class Extras:
    """Facts that live outside the ticket row; the sweep loads them only for the few tickets
    whose decision depends on them.

    ``last_resumed_at``: when the reporter last answered (end of the last pause). The time spent
    waiting on the reporter is not "no update" time: a pause always starts with the owner's
    question (which is a progress update), so the silence counts from the later of the last
    update and the answer.
    ``last_extension_request_at``: when the latest extension request was made; a second or later
    request made in the current cycle goes to the leaders. Requests are escalated when they are
    recorded (``extension_request_step``), which also writes the L3 row, so for them this rule
    finds the level already fired; it remains as the sweep's catch-up for a request recorded
    without that (made before request-time escalation existed) while its cycle is still current.
    """

    last_resumed_at: datetime | None = None
    last_extension_request_at: datetime | None = None


NO_EXTRAS = Extras()


@dataclass(frozen=True, slots=True)
class Thresholds:
    reminder_fraction: float = 0.5
    l1_fraction: float = 0.75
    l1_no_update_business_days: float = 3.0
    l3_business_days_overdue: float = 5.0
    #: Length of a working day, and the shortest gap between two working days' hours (a
    #: night). Only used for the cheap lower bounds (``not_before``), never for due times.
    working_day_seconds: float = 9 * 3600.0
    night_seconds: float = 15 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        day = float(max(1, settings.work_end_hour - settings.work_start_hour) * 3600)
        return cls(
            reminder_fraction=settings.reminder_fraction,
            l1_fraction=settings.l1_fraction,
            l1_no_update_business_days=settings.l1_no_update_business_days,
            l3_business_days_overdue=settings.l3_business_days_overdue,
            working_day_seconds=day,
            night_seconds=86400.0 - day,
        )

    def not_before(self, start: datetime, seconds: float) -> datetime:
        """A wall-clock instant that ``add_business_seconds(start, seconds)`` cannot precede.

        Accumulating ``seconds`` of working time takes working windows of at least
        ``ceil(seconds / day)`` different days, hence at least one fewer nights in between;
        weekends and holidays only add. Tight enough that the calendar is asked about a step
        only in the last day or so before it falls due, and never wrong: a bound that is too
        late would hide a due step (the property tests compare against the full computation).
        """
        nights = math.ceil(seconds / self.working_day_seconds) - 1
        if nights > 0:
            seconds += nights * self.night_seconds
        return start + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Step:
    level: EscalationLevel
    due_at: datetime
    reason: Reason
    cycle: int


def is_open(ticket: TicketLike) -> bool:
    return ticket.state in OPEN_STATE_VALUES


def overdue_cutoff(calendar: BusinessCalendar, now: datetime) -> datetime:
    """The working instant ``now`` stands at, in the calendar's end-of-day form.

    Outside working hours that is the end of the last working day: a deadline of Friday 17:00 is
    not "used up" on Saturday or at Monday 08:00 (``sla.is_overdue``), only just after. A running
    ticket is overdue exactly when its deadline is before this instant, so a sweep computes it
    once instead of asking the calendar per ticket.
    """
    return calendar.add_business_seconds(now, -1e-6) + timedelta(microseconds=1)


def is_overdue(
    ticket: TicketLike, calendar: BusinessCalendar, now: datetime, *,
    cutoff: datetime | None = None,
) -> bool:
    """``sla.is_overdue`` for a ticket row, fast for running clocks (pass ``cutoff`` in loops).

    A paused clock is frozen: the ticket is overdue only if it already was when the pause began.
    """
    if ticket.paused_since is not None:
        return sla.is_overdue(calendar, sla_clock_of(ticket), now)
    if cutoff is None:
        cutoff = overdue_cutoff(calendar, now)
    return ticket.deadline_at < cutoff


def sla_clock_of(ticket: TicketLike) -> SlaClock:
    return SlaClock(
        cycle=ticket.cycle,
        cycle_started_at=ticket.cycle_started_at,
        budget_seconds=ticket.budget_seconds,
        paused_seconds=ticket.paused_seconds,
        paused_since=ticket.paused_since,
        deadline_at=ticket.deadline_at,
    )


def fraction_instant(ticket: TicketLike, calendar: BusinessCalendar, fraction: float) -> datetime:
    """When ``fraction`` of the SLA budget is used (the deadline is fraction 1)."""
    return calendar.add_business_seconds(
        ticket.cycle_started_at, ticket.paused_seconds + fraction * ticket.budget_seconds
    )


#: The first extension request of a ticket that the leaders hear of (SPEC §6: "a second
#: extension request"), and every later one. A constant, not only ``is_repeat_extension``,
#: because the sweep's SQL prefilter (``escalation.scan``) must apply the same threshold.
REPEAT_EXTENSION_FROM = 2


def is_repeat_extension(requests: int) -> bool:
    """Whether the ``requests``-th extension request of a ticket is one the leaders hear of."""
    return requests >= REPEAT_EXTENSION_FROM


def extension_request_step(ticket: TicketLike, requested_at: datetime) -> Step | None:
    """The L3 step an extension request triggers, decided as the request is recorded.

    ``ticket`` has the request already counted in ``extension_requests``.

    Why at request time and not only in the sweep: the trigger is an act whose instant is
    known, and the usual next act -- approval -- starts a new cycle just after it, where a later
    sweep (which looks at the current cycle only) can no longer see it. Teaching the sweep to
    look back at earlier cycles instead would need "was that request escalated?" from the
    database for an old cycle, and would still send the notice a sweep interval late. Fired in
    the request's own transaction, the escalation is atomic with the request: whatever order of
    sweep, approval and refusal follows, there is one notice.

    Later requests: the step belongs to the cycle the request is made in and is that cycle's
    L3, so the database's unique (ticket, level, cycle) key decides whether it fires, as for
    every step (SPEC §6: each step once per ticket per deadline cycle); hence no "already fired"
    argument here. Each request beyond the first notifies the leaders once unless they already
    had an L3 for that cycle. After an approval the next request is in a fresh cycle, so each
    one notifies; a request repeated after a refusal (same cycle), or made after the cycle's L3
    went out for being overdue, adds no second L3 to the cycle -- the leaders already hold the
    ticket at L3 for this deadline, and every request stays an event counted in digests.

    Unlike the time-based steps, a ticket waiting on the reporter is not exempt: the pause stops
    the SLA clock, which an owner asking for more time again has nothing to do with; and an
    approval during the pause would again leave nothing for a later sweep to find.
    """
    if ticket.state not in OPEN_STATE_VALUES or not is_repeat_extension(
        ticket.extension_requests
    ):
        return None
    return Step(EscalationLevel.L3, requested_at, Reason.SECOND_EXTENSION, ticket.cycle)


def _unacknowledged(ticket: TicketLike) -> bool:
    """Not yet taken up: new/assigned and never acknowledged, or reopened and not yet re-taken.

    A reassigned ticket goes back to "assigned" but the reporter did get a first response, so
    ``acknowledged_at`` (kept across reassignments) decides; a reopen asks for a fresh one.
    """
    if ticket.state == TicketState.REOPENED.value:
        return True
    return ticket.state in _UNACKNOWLEDGED and ticket.acknowledged_at is None


def steps_until(
    ticket: TicketLike,
    calendar: BusinessCalendar,
    thresholds: Thresholds,
    horizon: datetime | None,
    *,
    fired: Collection[str] = (),
    extras: Extras = NO_EXTRAS,
) -> list[Step]:
    """Every not-yet-fired step of the ticket's current cycle that is due by ``horizon``.

    ``horizon=None`` computes every step whose condition holds now, however far ahead (the
    "what comes next" view). Steps are in ladder order; a level appears at most once, with the
    earliest of its triggers as due time and reason.

    Written for speed (it runs once per open ticket per sweep): a trigger's calendar
    arithmetic only happens when its wall-clock lower bound is within the horizon.
    """
    if ticket.state not in OPEN_STATE_VALUES or ticket.paused_since is not None:
        return []
    far = horizon is None
    steps: list[Step] = []
    cycle = ticket.cycle
    start = ticket.cycle_started_at
    budget = ticket.budget_seconds
    paused = ticket.paused_seconds
    deadline = ticket.deadline_at
    progress = ticket.last_progress_at

    # --- reminder --------------------------------------------------------------------------
    if _REMINDER not in fired and (progress is None or progress < start):
        offset = paused + thresholds.reminder_fraction * budget
        if far or thresholds.not_before(start, offset) <= horizon:  # type: ignore[operator]
            due = calendar.add_business_seconds(start, offset)
            steps.append(Step(EscalationLevel.REMINDER, due, Reason.SLA_FRACTION, cycle))

    # --- L1 --------------------------------------------------------------------------------
    if _L1 not in fired:
        best: tuple[datetime, Reason] | None = None
        first = ticket.first_response_due_at
        if (far or first <= horizon) and _unacknowledged(ticket):  # type: ignore[operator]
            best = (first, Reason.FIRST_RESPONSE)
        offset = paused + thresholds.l1_fraction * budget
        if far or thresholds.not_before(start, offset) <= horizon:  # type: ignore[operator]
            due = calendar.add_business_seconds(start, offset)
            if best is None or due < best[0]:
                best = (due, Reason.SLA_FRACTION)
        quiet = start if progress is None or progress < start else progress
        resumed = extras.last_resumed_at
        if resumed is not None and resumed > quiet:
            quiet = resumed
        days = thresholds.l1_no_update_business_days
        span = days * thresholds.working_day_seconds
        if far or thresholds.not_before(quiet, span) <= horizon:  # type: ignore[operator]
            due = calendar.add_business_days(quiet, days)
            if best is None or due < best[0]:
                best = (due, Reason.NO_UPDATE)
        if best is not None:
            steps.append(Step(EscalationLevel.L1, best[0], best[1], cycle))

    # --- L2 --------------------------------------------------------------------------------
    if _L2 not in fired and (far or deadline <= horizon):  # type: ignore[operator]
        steps.append(Step(EscalationLevel.L2, deadline, Reason.DEADLINE, cycle))

    # --- L3 --------------------------------------------------------------------------------
    if _L3 not in fired:
        best = None
        if ticket.priority == _CRITICAL and (far or deadline <= horizon):  # type: ignore[operator]
            best = (deadline, Reason.CRITICAL_OVERDUE)
        requested = extras.last_extension_request_at
        if (
            requested is not None
            and is_repeat_extension(ticket.extension_requests)
            and requested >= start
            and (far or requested <= horizon)  # type: ignore[operator]
            and (best is None or requested < best[0])
        ):
            best = (requested, Reason.SECOND_EXTENSION)
        days = thresholds.l3_business_days_overdue
        span = days * thresholds.working_day_seconds
        if far or thresholds.not_before(deadline, span) <= horizon:  # type: ignore[operator]
            due = calendar.add_business_days(deadline, days)
            if best is None or due < best[0]:
                best = (due, Reason.OVERDUE_DAYS)
        if best is not None:
            steps.append(Step(EscalationLevel.L3, best[0], best[1], cycle))

    if not far and steps:
        steps = [s for s in steps if s.due_at <= horizon]  # type: ignore[operator]
    return steps


def due_steps(
    ticket: TicketLike,
    calendar: BusinessCalendar,
    thresholds: Thresholds,
    now: datetime,
    *,
    fired: Collection[str] = (),
    extras: Extras = NO_EXTRAS,
) -> list[Step]:
    """The steps a sweep at ``now`` must fire: due by ``now`` and not fired in this cycle."""
    return steps_until(ticket, calendar, thresholds, now, fired=fired, extras=extras)


def next_step(
    ticket: TicketLike,
    calendar: BusinessCalendar,
    thresholds: Thresholds,
    *,
    fired: Collection[str] = (),
    extras: Extras = NO_EXTRAS,
) -> Step | None:
    """The earliest step still to come if nothing changes (dashboards, "escalates on ...")."""
    steps = steps_until(ticket, calendar, thresholds, None, fired=fired, extras=extras)
    return min(steps, key=lambda s: s.due_at) if steps else None


def needs_extras(ticket: TicketLike, fired: Collection[str]) -> tuple[bool, bool]:
    """Which ``Extras`` could change the decision: (last_resumed_at, last_extension_request_at).

    Lets the sweep skip the extra queries for the overwhelming majority of tickets.
    """
    if ticket.state not in OPEN_STATE_VALUES or ticket.paused_since is not None:
        return False, False
    resumed = ticket.paused_seconds > 0 and EscalationLevel.L1.value not in fired
    extension = (is_repeat_extension(ticket.extension_requests)
                 and EscalationLevel.L3.value not in fired)
    return resumed, extension
