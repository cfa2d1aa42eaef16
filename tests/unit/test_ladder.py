"""The escalation ladder as pure decisions (no database).

Most tests use ``WallCalendar`` -- every second is a business second and a business day is nine
hours -- so the arithmetic in the assertions is obvious; the Vietnamese calendar is exercised by
the property tests at the end and by the sweep scenarios (tests/integration/test_sweep*.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.config import Settings
from hotline.domain import ladder
from hotline.domain.enums import EscalationLevel as L
from hotline.domain.ladder import Extras, Reason, Thresholds, TicketSnapshot

DAY = 9 * 3600  # one business day of the fake calendar, in seconds
T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 09:00 in Hanoi


class WallCalendar:
    """Every instant is working time; ``add_business_days`` counts nine-hour days."""

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    def add_business_days(self, start: datetime, days: float) -> datetime:
        return start + timedelta(seconds=days * DAY)

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        return (end - start).total_seconds()


CAL = WallCalendar()
TH = Thresholds(night_seconds=0.0)  # the fake calendar has no nights


def at(days: float) -> datetime:
    return T0 + timedelta(seconds=days * DAY)


def snapshot(sla_days: int = 10, **changes: object) -> TicketSnapshot:
    base = TicketSnapshot(
        state="assigned",
        priority="normal",
        cycle=1,
        cycle_started_at=T0,
        budget_seconds=sla_days * DAY,
        paused_seconds=0.0,
        paused_since=None,
        deadline_at=at(sla_days),
        first_response_due_at=at(1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def levels(steps: list[ladder.Step]) -> list[str]:
    return [s.level.value for s in steps]


def fire_through(ticket: TicketSnapshot, times: list[datetime]) -> list[tuple[datetime, str, str]]:
    """Run the ladder at each instant, remembering what fired, like successive sweeps."""
    fired: set[str] = set()
    log = []
    for now in times:
        for step in ladder.due_steps(ticket, CAL, TH, now, fired=fired):
            fired.add(step.level.value)
            log.append((step.due_at, step.level.value, step.reason.value))
    return log


def test_untouched_ticket_climbs_every_rung_once_at_the_right_instant() -> None:
    ticket = snapshot()
    hourly = [T0 + timedelta(hours=h) for h in range(200)]
    assert fire_through(ticket, hourly) == [
        (at(1), "l1", "first_response"),  # not acknowledged within one business day
        (at(5), "reminder", "sla_fraction"),  # 50% of 10 days
        (at(10), "l2", "deadline"),
        (at(15), "l3", "overdue_days"),  # five business days past the deadline
    ]


def test_acknowledged_ticket_gets_l1_at_the_earlier_of_75_percent_and_silence() -> None:
    acknowledged = snapshot(state="in_progress", acknowledged_at=at(0.1), last_progress_at=at(0.1))
    steps = ladder.due_steps(acknowledged, CAL, TH, at(20))
    l1 = next(s for s in steps if s.level is L.L1)
    assert (l1.due_at, l1.reason) == (at(3.1), Reason.NO_UPDATE)
    # With updates every two days the silence never reaches three days: 75% decides.
    busy = replace(acknowledged, last_progress_at=at(6))
    l1 = next(s for s in ladder.due_steps(busy, CAL, TH, at(20)) if s.level is L.L1)
    assert (l1.due_at, l1.reason) == (at(7.5), Reason.SLA_FRACTION)


def test_progress_this_cycle_suppresses_the_reminder_but_not_the_deadline() -> None:
    ticket = snapshot(state="in_progress", acknowledged_at=at(0.5), last_progress_at=at(4.9))
    assert "reminder" not in levels(ladder.due_steps(ticket, CAL, TH, at(30)))
    assert "l2" in levels(ladder.due_steps(ticket, CAL, TH, at(30)))
    # Progress from an earlier cycle does not count for this one.
    old = replace(ticket, cycle=2, cycle_started_at=at(5), last_progress_at=at(4.9),
                  deadline_at=at(15), budget_seconds=10 * DAY)
    steps = ladder.due_steps(old, CAL, TH, at(10))
    assert [(s.level, s.due_at, s.cycle) for s in steps if s.level is L.REMINDER] == [
        (L.REMINDER, at(10), 2)
    ]


def test_nothing_is_due_just_before_and_everything_due_exactly_at_the_instant() -> None:
    ticket = snapshot(state="in_progress", acknowledged_at=at(0), last_progress_at=None)
    eps = timedelta(microseconds=1)
    assert ladder.due_steps(ticket, CAL, TH, at(5) - eps, fired={"l1"}) == []
    assert levels(ladder.due_steps(ticket, CAL, TH, at(5), fired={"l1"})) == ["reminder"]


def test_a_paused_ticket_does_not_escalate_and_paused_time_is_not_counted() -> None:
    paused = snapshot(state="waiting_reporter", acknowledged_at=at(0), last_progress_at=at(2),
                      paused_since=at(2))
    assert ladder.due_steps(paused, CAL, TH, at(100)) == []
    # Resumed after four days of waiting: every instant moves by the paused time.
    resumed = replace(paused, state="in_progress", paused_since=None, paused_seconds=4 * DAY,
                      deadline_at=at(14))
    steps = ladder.due_steps(resumed, CAL, TH, at(100), fired={"l1"})
    assert [(s.level.value, s.due_at) for s in steps] == [("l2", at(14)), ("l3", at(19))]
    l1 = ladder.next_step(resumed, CAL, TH, extras=Extras(last_resumed_at=at(6)))
    assert l1 is not None and (l1.level, l1.reason, l1.due_at) == (L.L1, Reason.NO_UPDATE, at(9))


def test_only_open_tickets_escalate() -> None:
    for state in ("resolved", "closed", "rejected"):
        assert ladder.due_steps(snapshot(state=state), CAL, TH, at(100)) == []
    for state in ("new", "assigned", "in_progress", "reopened"):
        assert ladder.due_steps(snapshot(state=state), CAL, TH, at(100))


def test_fired_levels_are_not_repeated_and_a_new_cycle_starts_afresh() -> None:
    ticket = snapshot()
    everything = {"reminder", "l1", "l2", "l3"}
    assert ladder.due_steps(ticket, CAL, TH, at(100), fired=everything) == []
    # Extension approved at day 12: cycle 2 runs 6 days to a deadline at day 18.
    extended = replace(ticket, state="in_progress", acknowledged_at=at(0.5), cycle=2,
                       cycle_started_at=at(12), budget_seconds=6 * DAY, deadline_at=at(18),
                       last_progress_at=at(11), extension_requests=1)
    assert ladder.due_steps(extended, CAL, TH, at(12)) == []
    steps = ladder.due_steps(extended, CAL, TH, at(30))
    assert [(s.level.value, s.due_at, s.cycle) for s in steps] == [
        ("reminder", at(15), 2), ("l1", at(15), 2), ("l2", at(18), 2), ("l3", at(23), 2)
    ]


def test_second_extension_request_in_this_cycle_goes_to_leaders() -> None:
    ticket = snapshot(state="in_progress", acknowledged_at=at(0), last_progress_at=at(3),
                      extension_requests=2)
    extras = Extras(last_extension_request_at=at(3))
    steps = ladder.due_steps(ticket, CAL, TH, at(3), extras=extras)
    assert [(s.level, s.reason, s.due_at) for s in steps] == [
        (L.L3, Reason.SECOND_EXTENSION, at(3))
    ]
    # The request that opened this cycle (approved) does not fire again in the new one.
    next_cycle = replace(ticket, cycle=2, cycle_started_at=at(4))
    assert ladder.due_steps(next_cycle, CAL, TH, at(4), extras=extras) == []
    # One request is not enough.
    once = replace(ticket, extension_requests=1)
    assert ladder.due_steps(once, CAL, TH, at(3), extras=extras) == []


def test_a_repeated_extension_request_is_an_l3_step_of_the_cycle_it_is_made_in() -> None:
    # The ticket as the request service sees it: the new request already counted.
    ticket = snapshot(state="in_progress", acknowledged_at=at(0), cycle=2,
                      cycle_started_at=at(2), extension_requests=2)
    step = ladder.extension_request_step(ticket, at(3))
    assert step == ladder.Step(L.L3, at(3), Reason.SECOND_EXTENSION, 2)
    # Every request after the first triggers it (whether it fires is the cycle's L3 slot,
    # which the database's unique key decides, not this function).
    third = replace(ticket, extension_requests=3, cycle=3)
    assert ladder.extension_request_step(third, at(5)) == ladder.Step(
        L.L3, at(5), Reason.SECOND_EXTENSION, 3
    )
    # The first request does not.
    assert ladder.extension_request_step(replace(ticket, extension_requests=1), at(3)) is None
    # Nor a request on a ticket no longer open (the service refuses those anyway).
    assert ladder.extension_request_step(replace(ticket, state="closed"), at(3)) is None


def test_a_repeated_extension_request_escalates_even_while_waiting_on_the_reporter() -> None:
    # The pause stops the SLA clock's steps, not the act of asking for more time again.
    paused = snapshot(state="waiting_reporter", acknowledged_at=at(0), paused_since=at(2),
                      extension_requests=2)
    assert ladder.due_steps(paused, CAL, TH, at(3),
                            extras=Extras(last_extension_request_at=at(2.5))) == []
    step = ladder.extension_request_step(paused, at(2.5))
    assert step is not None and (step.level, step.reason, step.cycle) == (
        L.L3, Reason.SECOND_EXTENSION, 1
    )


def test_the_request_time_and_sweep_rules_agree_on_which_requests_count() -> None:
    for requests in range(0, 5):
        ticket = snapshot(state="in_progress", acknowledged_at=at(0), last_progress_at=at(3),
                          extension_requests=requests)
        swept = ladder.due_steps(ticket, CAL, TH, at(3),
                                 extras=Extras(last_extension_request_at=at(3)))
        now = ladder.extension_request_step(ticket, at(3))
        assert (now is not None) == ladder.is_repeat_extension(requests) == (requests >= 2)
        assert ([(s.level, s.reason, s.due_at, s.cycle) for s in swept]
                == ([(now.level, now.reason, now.due_at, now.cycle)] if now else []))


def test_critical_overdue_goes_to_leaders_at_the_deadline() -> None:
    ticket = snapshot(sla_days=3, priority="critical", state="in_progress",
                      acknowledged_at=at(0), last_progress_at=at(2.9))
    steps = ladder.due_steps(ticket, CAL, TH, at(3), fired={"l1"})
    assert [(s.level, s.reason) for s in steps] == [
        (L.L2, Reason.DEADLINE), (L.L3, Reason.CRITICAL_OVERDUE)
    ]


def test_reopened_ticket_needs_a_fresh_first_response() -> None:
    ticket = snapshot(state="reopened", acknowledged_at=at(0), cycle=2, cycle_started_at=at(20),
                      deadline_at=at(30), first_response_due_at=at(21), last_progress_at=at(19))
    l1 = ladder.next_step(ticket, CAL, TH)
    assert l1 is not None and (l1.level, l1.reason, l1.due_at) == (L.L1, Reason.FIRST_RESPONSE,
                                                                   at(21))
    # A reassigned ticket ("assigned" again) already had its first response.
    reassigned = snapshot(state="assigned", acknowledged_at=at(0.2), last_progress_at=at(0.2))
    steps = ladder.due_steps(reassigned, CAL, TH, at(2))
    assert steps == []


def test_overdue_counts_a_pause_as_stopping_the_clock() -> None:
    ticket = snapshot()
    assert not ladder.is_overdue(ticket, CAL, at(10))  # used == budget: not yet over
    assert ladder.is_overdue(ticket, CAL, at(10) + timedelta(seconds=1))
    assert not ladder.is_overdue(replace(ticket, paused_since=at(8)), CAL, at(50))
    assert ladder.is_overdue(replace(ticket, paused_since=at(12)), CAL, at(50))


def test_thresholds_follow_settings() -> None:
    custom = Settings(reminder_fraction=0.4, l1_fraction=0.6, l1_no_update_business_days=2,
                      l3_business_days_overdue=3, work_start_hour=8, work_end_hour=17,
                      _env_file=None)  # type: ignore[call-arg]
    th = Thresholds.from_settings(custom)
    assert (th.reminder_fraction, th.l1_fraction, th.l1_no_update_business_days,
            th.l3_business_days_overdue, th.working_day_seconds, th.night_seconds) == (
        0.4, 0.6, 2, 3, 9 * 3600, 15 * 3600)
    th = replace(th, night_seconds=0.0)
    ticket = snapshot(state="in_progress", acknowledged_at=at(0), last_progress_at=None)
    steps = ladder.steps_until(ticket, CAL, th, None)
    assert [(s.level.value, s.due_at) for s in steps] == [
        ("reminder", at(4)), ("l1", at(2)), ("l2", at(10)), ("l3", at(13))
    ]


# --- properties, on the fake and on the Vietnamese calendar -------------------------------

_instants = st.integers(min_value=0, max_value=40 * 24 * 3600).map(
    lambda s: datetime(2027, 1, 25, 1, 0, tzinfo=UTC) + timedelta(seconds=s)
)
_tickets = st.builds(
    lambda start, days, state, priority, paused, ack, prog, ext, cycle: (
        start, days, state, priority, paused, ack, prog, ext, cycle
    ),
    _instants,
    st.integers(min_value=1, max_value=15),
    st.sampled_from(["new", "assigned", "in_progress", "reopened", "waiting_reporter"]),
    st.sampled_from(["normal", "high", "critical"]),
    st.integers(min_value=0, max_value=3 * DAY),
    st.booleans(),
    st.one_of(st.none(), st.integers(min_value=0, max_value=20 * 24 * 3600)),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=1, max_value=3),
)


def _build(calendar: object, raw: tuple) -> TicketSnapshot:  # type: ignore[type-arg]
    start, days, state, priority, paused, ack, prog, ext, cycle = raw
    budget = days * DAY
    deadline = calendar.add_business_seconds(start, budget + paused)  # type: ignore[attr-defined]
    return TicketSnapshot(
        state=state, priority=priority, cycle=cycle, cycle_started_at=start,
        budget_seconds=float(budget), paused_seconds=float(paused),
        paused_since=deadline - timedelta(hours=1) if state == "waiting_reporter" else None,
        deadline_at=deadline,
        first_response_due_at=calendar.add_business_days(start, 1),  # type: ignore[attr-defined]
        acknowledged_at=start + timedelta(minutes=5) if ack else None,
        last_progress_at=start + timedelta(seconds=prog) if prog is not None else None,
        extension_requests=ext,
    )


def _check_horizon_is_exact(calendar: object, raw: tuple, now: datetime,  # type: ignore[type-arg]
                            fired: frozenset[str]) -> None:
    ticket = _build(calendar, raw)
    th = TH if calendar is CAL else Thresholds.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    extras = Extras(last_extension_request_at=ticket.cycle_started_at + timedelta(hours=30))
    full = ladder.steps_until(ticket, calendar, th, None, fired=fired, extras=extras)  # type: ignore[arg-type]
    due = ladder.due_steps(ticket, calendar, th, now, fired=fired, extras=extras)  # type: ignore[arg-type]
    # The cheap lower bounds never hide a due step and never invent one.
    assert due == [s for s in full if s.due_at <= now]
    assert not {s.level.value for s in due} & fired
    # Later sweeps see a superset: nothing un-fires as time passes.
    later = ladder.due_steps(ticket, calendar, th, now + timedelta(days=3), fired=fired,  # type: ignore[arg-type]
                             extras=extras)
    assert {s.level for s in due} <= {s.level for s in later}


_fired = st.frozensets(st.sampled_from(["reminder", "l1", "l2", "l3"]))


@settings(max_examples=200, deadline=None)
@given(_tickets, _instants, _fired)
def test_property_horizon_pruning_is_exact_on_the_fake_calendar(raw: tuple, now: datetime,  # type: ignore[type-arg]
                                                                fired: frozenset[str]) -> None:
    _check_horizon_is_exact(CAL, raw, now, fired)


@pytest.fixture(scope="module")
def vn_calendar() -> object:
    from hotline.domain.calendar import BusinessCalendar

    return BusinessCalendar.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]


@settings(max_examples=100, deadline=None)
@given(raw=_tickets, now=_instants, fired=_fired)
def test_property_horizon_pruning_is_exact_on_the_vietnamese_calendar(
    vn_calendar: object, raw: tuple, now: datetime, fired: frozenset[str]  # type: ignore[type-arg]
) -> None:
    _check_horizon_is_exact(vn_calendar, raw, now, fired)


def test_fraction_one_is_the_deadline_on_the_vietnamese_calendar(vn_calendar: object) -> None:
    """The ladder's instants use the same arithmetic as the SLA clock's deadline."""
    from hotline.domain import sla

    start = datetime(2027, 2, 3, 3, 30, tzinfo=UTC)  # Wednesday before Tết 2027, 10:30 local
    clock = sla.start_cycle(vn_calendar, start, 10)  # type: ignore[arg-type]
    ticket = snapshot(cycle_started_at=start, budget_seconds=clock.budget_seconds,
                      deadline_at=clock.deadline_at)
    assert ladder.fraction_instant(ticket, vn_calendar, 1.0) == clock.deadline_at  # type: ignore[arg-type]
    half = ladder.fraction_instant(ticket, vn_calendar, 0.5)  # type: ignore[arg-type]
    assert sla.used_fraction(vn_calendar, clock, half) == pytest.approx(0.5)  # type: ignore[arg-type]


@settings(max_examples=120, deadline=None)
@given(start=_instants, seconds=st.floats(min_value=0, max_value=30 * DAY),
       hours=st.sampled_from([(8, 17), (7, 16), (0, 24), (9, 12)]))
def test_property_not_before_never_passes_the_calendar(
    start: datetime, seconds: float, hours: tuple[int, int]
) -> None:
    """The cheap bound is a true lower bound for any working hours, across weekends and Tết."""
    from hotline.domain.calendar import BusinessCalendar

    cfg = Settings(work_start_hour=hours[0], work_end_hour=hours[1],
                   _env_file=None)  # type: ignore[call-arg]
    calendar = _calendars.setdefault(hours, BusinessCalendar.from_settings(cfg))
    th = Thresholds.from_settings(cfg)
    assert th.not_before(start, seconds) <= calendar.add_business_seconds(start, seconds)


_calendars: dict[tuple[int, int], object] = {}
