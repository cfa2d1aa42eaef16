"""The SLA clock of a ticket: pure functions over an immutable snapshot, all time in business time.

One *cycle* is one deadline: the first one from acceptance, then a new cycle for every approved
extension and every reopen (escalation steps fire once per cycle, SPEC §6). Within a cycle::

    used(now)   = business time from cycle_started_at to now
                  - paused_seconds (completed pauses) - the ongoing pause, if any
    deadline_at = cycle_started_at + (budget_seconds + paused_seconds) of business time

so a pause while waiting on the reporter freezes ``used`` and, on resume, moves ``deadline_at``
later by exactly the business time paused (SPEC §5). ``deadline_at`` is always expressed the way
``BusinessCalendar.add_business_seconds`` expresses instants: an end of working day, not the start
of the next one. Services store the six fields of ``SlaClock`` on the ticket row as they are.

Pausing an already paused clock, or resuming a running one, returns the clock unchanged: handlers
may run twice (retries, a reporter answering twice) and the first pause is the one that counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hotline.domain.enums import Rag

if TYPE_CHECKING:
    from hotline.domain.calendar import BusinessCalendar

__all__ = [
    "EPSILON_SECONDS",
    "SlaClock",
    "business_days_overdue",
    "extend",
    "first_response_due",
    "is_overdue",
    "matching_deadline",
    "pause",
    "rag",
    "rebudget",
    "remaining_seconds",
    "restart",
    "resume",
    "sla_days",
    "start_cycle",
    "used_fraction",
    "used_seconds",
]

#: Below the one-microsecond resolution of datetimes: float noise, not a real difference.
EPSILON_SECONDS = 5e-7


@dataclass(frozen=True, slots=True)
class SlaClock:
    """Snapshot of one ticket's SLA clock (the columns of the same names on ``tickets``)."""

    cycle: int
    cycle_started_at: datetime
    #: Business seconds allowed in this cycle.
    budget_seconds: float
    #: Business seconds spent in completed pauses of this cycle.
    paused_seconds: float
    #: Start of the ongoing pause (waiting on the reporter), if any.
    paused_since: datetime | None
    #: When used time reaches the budget if there is no further pause.
    deadline_at: datetime

    @property
    def paused(self) -> bool:
        return self.paused_since is not None


def sla_days(category_days: int, priority: str, critical_days: int) -> int:
    """Business days a ticket gets: its category's SLA, capped for critical tickets (SPEC §5)."""
    if priority == "critical":
        return min(category_days, critical_days)
    return category_days


def start_cycle(cal: BusinessCalendar, start: datetime, sla_days: float, cycle: int = 1) -> SlaClock:
    """A fresh clock: ``sla_days`` business days counted from ``start`` (or its next working moment)."""
    if sla_days < 0:
        raise ValueError(f"SLA must not be negative: {sla_days!r} days")
    budget = sla_days * cal.business_day_seconds
    return SlaClock(
        cycle=cycle,
        cycle_started_at=_utc(start),
        budget_seconds=budget,
        paused_seconds=0.0,
        paused_since=None,
        deadline_at=cal.add_business_seconds(start, budget),
    )


def pause(cal: BusinessCalendar, clock: SlaClock, at: datetime) -> SlaClock:
    """Stop the clock while the ticket waits on the reporter; a paused clock is returned unchanged."""
    del cal  # the pause is only measured on resume; kept for a uniform signature
    if clock.paused_since is not None:
        return clock
    at = _utc(at)
    if at < clock.cycle_started_at:
        raise ValueError(f"pause at {at.isoformat()} before the cycle started "
                         f"({clock.cycle_started_at.isoformat()})")
    return replace(clock, paused_since=at)


def resume(cal: BusinessCalendar, clock: SlaClock, at: datetime) -> SlaClock:
    """Restart the clock; the deadline moves later by the business time of the pause.

    A running clock is returned unchanged. Resuming "before" the pause began counts no pause.
    """
    if clock.paused_since is None:
        return clock
    paused = clock.paused_seconds + cal.business_seconds_between(clock.paused_since, at)
    return replace(
        clock,
        paused_seconds=paused,
        paused_since=None,
        deadline_at=cal.add_business_seconds(clock.cycle_started_at, clock.budget_seconds + paused),
    )


def extend(cal: BusinessCalendar, clock: SlaClock, new_deadline: datetime, at: datetime) -> SlaClock:
    """Apply an approved extension: a new cycle from ``at`` whose budget ends at ``new_deadline``.

    ``new_deadline`` must be a later instant than the current deadline (no quiet retreat), else
    ValueError. The stored deadline is ``new_deadline`` in business terms: a Saturday noon becomes
    the Friday 17:00 before it (so "Friday 17:00 -> Saturday" is accepted but gains nothing), and
    midnight is the end of the previous working day. A deadline before the next working moment
    leaves a zero budget. A paused clock stays paused, from ``at``: the ticket is still waiting on
    the reporter, and that wait must not count against the new cycle.
    """
    at, new_deadline = _utc(at), _utc(new_deadline)
    if new_deadline <= clock.deadline_at:
        raise ValueError(f"new deadline {new_deadline.isoformat()} is not after the current one "
                         f"({clock.deadline_at.isoformat()})")
    budget = cal.business_seconds_between(at, new_deadline)
    return SlaClock(
        cycle=clock.cycle + 1,
        cycle_started_at=at,
        budget_seconds=budget,
        paused_seconds=0.0,
        paused_since=at if clock.paused_since is not None else None,
        deadline_at=cal.add_business_seconds(at, budget),
    )


def rebudget(cal: BusinessCalendar, clock: SlaClock, sla_days: float) -> SlaClock:
    """Same cycle, same start and pauses, a new length (recategorisation, a priority change)."""
    budget = start_cycle(cal, clock.cycle_started_at, sla_days).budget_seconds
    return replace(
        clock,
        budget_seconds=budget,
        deadline_at=cal.add_business_seconds(clock.cycle_started_at, budget + clock.paused_seconds),
    )


def matching_deadline(cal: BusinessCalendar, clock: SlaClock, deadline: datetime) -> SlaClock:
    """The clock whose budget ends at a recorded ``deadline`` (same cycle, start and pauses).

    For history written before the inputs of a change were recorded: a digest replaying such an
    event takes the deadline the services stored then.
    """
    deadline = _utc(deadline)
    budget = cal.business_seconds_between(clock.cycle_started_at, deadline) - clock.paused_seconds
    return replace(clock, budget_seconds=max(budget, 0.0), deadline_at=deadline)


def restart(cal: BusinessCalendar, clock: SlaClock, at: datetime, sla_days: float) -> SlaClock:
    """A new cycle for a reopened ticket: the full SLA again from ``at``, no pause carried over."""
    return start_cycle(cal, at, sla_days, cycle=clock.cycle + 1)


def used_seconds(cal: BusinessCalendar, clock: SlaClock, now: datetime) -> float:
    """Business seconds of the budget used by ``now`` (paused time, including a current pause, excluded)."""
    end = now
    if clock.paused_since is not None and clock.paused_since < now:
        end = clock.paused_since
    used = cal.business_seconds_between(clock.cycle_started_at, end) - clock.paused_seconds
    return used if used > 0.0 else 0.0


def remaining_seconds(cal: BusinessCalendar, clock: SlaClock, now: datetime) -> float:
    """Business seconds left before the deadline; negative once overdue."""
    return clock.budget_seconds - used_seconds(cal, clock, now)


def used_fraction(cal: BusinessCalendar, clock: SlaClock, now: datetime) -> float:
    """Share of the budget used (1.0 = at the deadline; above 1 = overdue).

    A zero budget is fully used at once, and infinitely over once any business time has passed.
    """
    used = used_seconds(cal, clock, now)
    if clock.budget_seconds <= 0.0:
        return float("inf") if used > EPSILON_SECONDS else 1.0
    return used / clock.budget_seconds


def is_overdue(cal: BusinessCalendar, clock: SlaClock, now: datetime) -> bool:
    """Whether used time exceeds the budget: the deadline has passed in *business* time.

    Friday 17:00 deadline: still not overdue on Saturday or at Monday 08:00, overdue just after.
    """
    return used_seconds(cal, clock, now) > clock.budget_seconds + EPSILON_SECONDS


def rag(
    cal: BusinessCalendar,
    clock: SlaClock,
    now: datetime,
    amber_at: float = 0.75,
    red_above: float = 1.0,
) -> Rag:
    """Green below ``amber_at`` of the SLA used, amber from it, red above ``red_above`` (overdue)."""
    used = used_seconds(cal, clock, now)
    budget = clock.budget_seconds
    if used > red_above * budget + EPSILON_SECONDS:
        return Rag.RED
    if used >= amber_at * budget - EPSILON_SECONDS:
        return Rag.AMBER
    return Rag.GREEN


def business_days_overdue(cal: BusinessCalendar, clock: SlaClock, now: datetime) -> float:
    """How far past the deadline, in business days (0 when not overdue); drives L3 (SPEC §6)."""
    over = used_seconds(cal, clock, now) - clock.budget_seconds
    return over / cal.business_day_seconds if over > EPSILON_SECONDS else 0.0


def first_response_due(cal: BusinessCalendar, accepted_at: datetime, days: float) -> datetime:
    """When the owner must have acknowledged a ticket accepted at ``accepted_at``."""
    return cal.add_business_days(accepted_at, days)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime not allowed: {value!r}")
    return value.astimezone(UTC)
