"""The SLA clock (SPEC §5): deadlines, pauses while waiting on the reporter, extensions, RAG.

All examples run on the real Vietnamese calendar (see tests/unit/test_calendar.py for what it
knows); times are Vietnam local. A business day is 9 h (08:00-17:00).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.domain import sla
from hotline.domain.calendar import BusinessCalendar
from hotline.domain.enums import Rag
from hotline.domain.sla import SlaClock

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600.0
DAY = 9 * H
CAL = BusinessCalendar()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)  # type: ignore[misc]


def check_invariant(clock: SlaClock) -> None:
    """What services and the escalation ladder rely on (hotline/services, hotline/domain/ladder.py)."""
    assert clock.deadline_at == CAL.add_business_seconds(
        clock.cycle_started_at, clock.budget_seconds + clock.paused_seconds)
    for value in (clock.cycle_started_at, clock.deadline_at, clock.paused_since):
        assert value is None or value.tzinfo is UTC


# --- starting a cycle ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "days", "deadline", "why"),
    [
        (local(2026, 3, 2, 8), 5, local(2026, 3, 6, 17), "Monday 08:00, a week: Friday 17:00"),
        (local(2026, 3, 6, 16, 30), 3, local(2026, 3, 11, 16, 30), "filed Friday 16:30"),
        (local(2026, 3, 3, 22), 2, local(2026, 3, 5, 17), "filed at night"),
        (local(2026, 3, 7, 11), 1, local(2026, 3, 9, 17), "filed on Saturday"),
        (local(2026, 4, 30, 10), 3, local(2026, 5, 6, 17), "filed on 30/4 (holiday)"),
        (local(2026, 2, 13, 16, 30), 5, local(2026, 2, 27, 16, 30), "filed before Tết 2026"),
        (local(2026, 2, 18, 9), 5, local(2026, 2, 27, 17), "filed during Tết 2026"),
        (local(2027, 1, 29, 8), 10, local(2027, 2, 18, 17), "10 days across Tết 2027"),
        (local(2026, 8, 20, 8), 9, local(2026, 9, 3, 17), "make-up 22/8, then 29/8-2/9 off"),
        (local(2026, 12, 28, 8), 5, local(2027, 1, 4, 17), "across New Year 2027"),
    ],
)
def test_start_cycle(start: datetime, days: int, deadline: datetime, why: str) -> None:
    clock = sla.start_cycle(CAL, start, days)
    assert clock.deadline_at == deadline, f"{why}: {clock.deadline_at.astimezone(VN)}"
    assert (clock.cycle, clock.budget_seconds, clock.paused_seconds, clock.paused_since) == (
        1, days * DAY, 0.0, None)
    assert clock.cycle_started_at == start
    check_invariant(clock)


def test_start_cycle_numbers_cycles_and_allows_fractional_days() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 0.5, cycle=4)
    assert clock.cycle == 4
    assert clock.deadline_at == local(2026, 3, 2, 12, 30)


def test_clock_is_immutable() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        clock.cycle = 2  # type: ignore[misc]
    assert not clock.paused


def test_first_response_due() -> None:
    assert sla.first_response_due(CAL, local(2026, 3, 6, 16, 30), 1) == local(2026, 3, 9, 16, 30)
    assert sla.first_response_due(CAL, local(2026, 3, 7, 10), 1) == local(2026, 3, 9, 17)
    assert sla.first_response_due(CAL, local(2026, 2, 13, 20), 1) == local(2026, 2, 23, 17)
    assert sla.first_response_due(CAL, local(2026, 3, 2, 9), 0.5) == local(2026, 3, 2, 13, 30)


# --- pausing while waiting on the reporter ------------------------------------------------------

def test_pause_and_resume_move_the_deadline_by_the_business_time_paused() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)  # deadline Friday 6/3 17:00
    paused = sla.pause(CAL, clock, local(2026, 3, 3, 10))
    assert paused.paused and paused.paused_since == local(2026, 3, 3, 10)
    assert paused.deadline_at == clock.deadline_at  # unknown until the reporter answers
    # Frozen while waiting: Monday 9 h + Tuesday 2 h.
    for now in (local(2026, 3, 3, 10), local(2026, 3, 4, 12), local(2026, 3, 20, 12)):
        assert sla.used_seconds(CAL, paused, now) == 11 * H
    resumed = sla.resume(CAL, paused, local(2026, 3, 5, 10))  # 7 h + 9 h + 2 h = 2 days paused
    assert resumed.paused_seconds == 2 * DAY
    assert resumed.paused_since is None
    assert resumed.deadline_at == local(2026, 3, 10, 17)
    assert sla.used_seconds(CAL, resumed, local(2026, 3, 5, 12)) == 13 * H
    check_invariant(resumed)


def test_a_pause_across_tet_2026() -> None:
    clock = sla.start_cycle(CAL, local(2026, 2, 9, 8), 5)
    assert clock.deadline_at == local(2026, 2, 13, 17)
    clock = sla.pause(CAL, clock, local(2026, 2, 12, 15))
    clock = sla.resume(CAL, clock, local(2026, 2, 24, 9))  # 2 h + 9 h + (Tết) + 9 h + 1 h
    assert clock.paused_seconds == 21 * H
    assert clock.deadline_at == local(2026, 2, 25, 11)


def test_a_pause_over_a_weekend_or_a_holiday_changes_nothing() -> None:
    clock = sla.start_cycle(CAL, local(2026, 4, 27, 9), 3)
    after = sla.resume(CAL, sla.pause(CAL, clock, local(2026, 4, 29, 17, 5)), local(2026, 5, 4, 7))
    assert after.paused_seconds == 0.0
    assert after.deadline_at == clock.deadline_at


def test_pauses_accumulate_within_a_cycle() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)
    clock = sla.resume(CAL, sla.pause(CAL, clock, local(2026, 3, 2, 9)), local(2026, 3, 2, 11))
    clock = sla.resume(CAL, sla.pause(CAL, clock, local(2026, 3, 3, 16)), local(2026, 3, 4, 9))
    assert clock.paused_seconds == 2 * H + 2 * H
    assert clock.deadline_at == local(2026, 3, 9, 12)
    assert sla.used_seconds(CAL, clock, local(2026, 3, 4, 9)) == 9 * H + 9 * H + 1 * H - 4 * H


def test_pausing_twice_keeps_the_first_pause_and_resuming_a_running_clock_is_a_no_op() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)
    first = sla.pause(CAL, clock, local(2026, 3, 3, 10))
    assert sla.pause(CAL, first, local(2026, 3, 4, 10)) is first
    assert sla.resume(CAL, clock, local(2026, 3, 4, 10)) is clock
    resumed = sla.resume(CAL, first, local(2026, 3, 4, 10))
    assert sla.resume(CAL, resumed, local(2026, 3, 5, 10)) is resumed


def test_resuming_before_the_pause_counts_nothing() -> None:
    clock = sla.pause(CAL, sla.start_cycle(CAL, local(2026, 3, 2, 8), 5), local(2026, 3, 3, 10))
    resumed = sla.resume(CAL, clock, local(2026, 3, 3, 9))
    assert resumed.paused_seconds == 0.0
    assert resumed.deadline_at == local(2026, 3, 6, 17)


def test_pause_before_the_cycle_started_is_a_bug() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)
    with pytest.raises(ValueError, match="before the cycle started"):
        sla.pause(CAL, clock, local(2026, 3, 1, 8))


def test_a_pause_after_the_deadline_freezes_how_late_the_ticket_is() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 1)  # due Monday 17:00
    clock = sla.pause(CAL, clock, local(2026, 3, 3, 10))  # 2 h late
    for now in (local(2026, 3, 3, 10), local(2026, 3, 10, 10)):
        assert sla.business_days_overdue(CAL, clock, now) == pytest.approx(2 / 9)
        assert sla.is_overdue(CAL, clock, now)
    clock = sla.resume(CAL, clock, local(2026, 3, 10, 10))
    assert sla.business_days_overdue(CAL, clock, local(2026, 3, 10, 11)) == pytest.approx(3 / 9)


# --- used time, overdue and RAG -----------------------------------------------------------------

# Four-day SLA from Monday 2/3/2026 08:00: 75 % used at Wednesday 17:00, due Thursday 17:00.
FOUR = sla.start_cycle(CAL, local(2026, 3, 2, 8), 4)


@pytest.mark.parametrize(
    ("now", "used_hours", "colour", "why"),
    [
        (local(2026, 3, 1, 12), 0, Rag.GREEN, "before the cycle started"),
        (local(2026, 3, 2, 8), 0, Rag.GREEN, "at the start"),
        (local(2026, 3, 3, 12), 13, Rag.GREEN, "a day and a half in"),
        (local(2026, 3, 4, 16, 59, 59), 27 - 1 / 3600, Rag.GREEN, "just under 75 %"),
        (local(2026, 3, 4, 17), 27, Rag.AMBER, "exactly 75 %"),
        (local(2026, 3, 5, 8), 27, Rag.AMBER, "overnight nothing is used"),
        (local(2026, 3, 5, 17), 36, Rag.AMBER, "at the deadline: used == budget, not overdue"),
        (local(2026, 3, 5, 23), 36, Rag.AMBER, "deadline evening: no business time has passed"),
        (local(2026, 3, 6, 8), 36, Rag.AMBER, "next morning 08:00 sharp"),
        (local(2026, 3, 6, 8, 0, 1), 36 + 1 / 3600, Rag.RED, "one business second late"),
        (local(2026, 3, 9, 17), 54, Rag.RED, "two business days late"),
    ],
)
def test_used_time_and_rag(now: datetime, used_hours: float, colour: Rag, why: str) -> None:
    assert sla.used_seconds(CAL, FOUR, now) == pytest.approx(used_hours * H), why
    assert sla.used_fraction(CAL, FOUR, now) == pytest.approx(used_hours / 36), why
    assert sla.rag(CAL, FOUR, now) is colour, why
    assert sla.is_overdue(CAL, FOUR, now) is (colour is Rag.RED), why
    assert sla.remaining_seconds(CAL, FOUR, now) == pytest.approx((36 - used_hours) * H), why


def test_friday_deadline_is_not_overdue_over_the_weekend() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)  # Friday 6/3 17:00
    assert not sla.is_overdue(CAL, clock, local(2026, 3, 7, 12))
    assert not sla.is_overdue(CAL, clock, local(2026, 3, 9, 8))
    assert sla.is_overdue(CAL, clock, local(2026, 3, 9, 8, 1))


def test_rag_thresholds_are_parameters() -> None:
    now = local(2026, 3, 3, 12)  # 13 of 36 h used, 36 %
    assert sla.rag(CAL, FOUR, now, amber_at=0.3) is Rag.AMBER
    assert sla.rag(CAL, FOUR, now, amber_at=0.3, red_above=0.35) is Rag.RED
    assert sla.rag(CAL, FOUR, now, amber_at=0.5) is Rag.GREEN


def test_business_days_overdue_skips_tet() -> None:
    clock = sla.start_cycle(CAL, local(2026, 2, 9, 8), 5)  # due Friday 13/2 17:00
    assert sla.business_days_overdue(CAL, clock, local(2026, 2, 13, 17)) == 0.0
    assert sla.business_days_overdue(CAL, clock, local(2026, 2, 20, 17)) == 0.0  # all Tết
    assert sla.business_days_overdue(CAL, clock, local(2026, 2, 24, 12)) == pytest.approx(1 + 4 / 9)
    assert sla.business_days_overdue(CAL, clock, local(2026, 2, 27, 17)) == 5.0
    assert sla.rag(CAL, clock, local(2026, 2, 20, 17)) is Rag.AMBER


def test_a_zero_budget_is_used_at_once() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 7, 10), 0)  # Saturday
    assert clock.deadline_at == local(2026, 3, 9, 8)
    assert sla.used_fraction(CAL, clock, local(2026, 3, 9, 8)) == 1.0
    assert sla.rag(CAL, clock, local(2026, 3, 9, 8)) is Rag.AMBER
    assert sla.used_fraction(CAL, clock, local(2026, 3, 9, 9)) == float("inf")
    assert sla.rag(CAL, clock, local(2026, 3, 9, 9)) is Rag.RED
    with pytest.raises(ValueError, match="negative"):
        sla.start_cycle(CAL, local(2026, 3, 7, 10), -1)


# --- extensions and reopening -------------------------------------------------------------------

def test_extension_starts_a_new_cycle_ending_at_the_new_deadline() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)  # due Friday 6/3 17:00
    clock = sla.resume(CAL, sla.pause(CAL, clock, local(2026, 3, 2, 9)), local(2026, 3, 2, 10))
    at = local(2026, 3, 5, 10)
    extended = sla.extend(CAL, clock, local(2026, 3, 11, 17), at)
    assert extended.cycle == 2
    assert extended.cycle_started_at == at
    assert extended.budget_seconds == 7 * H + 9 * H + 3 * DAY
    assert (extended.paused_seconds, extended.paused_since) == (0.0, None)
    assert extended.deadline_at == local(2026, 3, 11, 17)
    assert sla.used_seconds(CAL, extended, at) == 0.0
    assert sla.rag(CAL, extended, at) is Rag.GREEN
    check_invariant(extended)


def test_extension_must_move_the_deadline_later() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)
    for bad in (local(2026, 3, 6, 17), local(2026, 3, 5, 17)):
        with pytest.raises(ValueError, match="not after"):
            sla.extend(CAL, clock, bad, local(2026, 3, 4, 10))


def test_extension_to_a_weekend_reads_as_the_friday_before() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 3)  # due Wednesday 4/3
    extended = sla.extend(CAL, clock, local(2026, 3, 14, 12), local(2026, 3, 3, 8))
    assert extended.deadline_at == local(2026, 3, 13, 17)
    assert extended.budget_seconds == 9 * DAY


def test_extension_of_an_overdue_ticket() -> None:
    clock = sla.start_cycle(CAL, local(2026, 3, 2, 8), 5)
    at = local(2026, 3, 9, 10)
    assert sla.is_overdue(CAL, clock, at)
    extended = sla.extend(CAL, clock, local(2026, 3, 12, 17), at)
    assert extended.budget_seconds == 7 * H + 3 * DAY
    assert not sla.is_overdue(CAL, extended, at)


def test_extension_while_waiting_on_the_reporter_keeps_the_clock_paused() -> None:
    clock = sla.pause(CAL, sla.start_cycle(CAL, local(2026, 3, 2, 8), 5), local(2026, 3, 4, 9))
    at = local(2026, 3, 5, 9)
    extended = sla.extend(CAL, clock, local(2026, 3, 13, 17), at)
    assert extended.paused_since == at
    assert sla.used_seconds(CAL, extended, local(2026, 3, 9, 9)) == 0.0
    resumed = sla.resume(CAL, extended, local(2026, 3, 6, 9))  # waited 9 h into the new cycle
    assert resumed.deadline_at == local(2026, 3, 16, 17)


def test_restart_for_a_reopened_ticket() -> None:
    clock = sla.pause(CAL, sla.start_cycle(CAL, local(2026, 3, 2, 8), 5, cycle=2),
                      local(2026, 3, 4, 9))
    again = sla.restart(CAL, clock, local(2026, 3, 16, 9), 5)
    assert again.cycle == 3
    assert again.cycle_started_at == local(2026, 3, 16, 9)
    assert (again.budget_seconds, again.paused_seconds, again.paused_since) == (5 * DAY, 0.0, None)
    assert again.deadline_at == local(2026, 3, 23, 9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: sla.start_cycle(CAL, datetime(2026, 3, 2, 8), 5),
        lambda: sla.pause(CAL, FOUR, datetime(2026, 3, 3, 8)),
        lambda: sla.resume(CAL, sla.pause(CAL, FOUR, local(2026, 3, 3, 8)), datetime(2026, 3, 4, 8)),
        lambda: sla.extend(CAL, FOUR, datetime(2026, 3, 20, 8), local(2026, 3, 3, 8)),
        lambda: sla.extend(CAL, FOUR, local(2026, 3, 20, 8), datetime(2026, 3, 3, 8)),
        lambda: sla.restart(CAL, FOUR, datetime(2026, 3, 20, 8), 5),
        lambda: sla.used_seconds(CAL, FOUR, datetime(2026, 3, 3, 8)),
        lambda: sla.rag(CAL, FOUR, datetime(2026, 3, 3, 8)),
        lambda: sla.first_response_due(CAL, datetime(2026, 3, 3, 8), 1),
    ],
    ids=["start", "pause", "resume", "extend_deadline", "extend_at", "restart", "used", "rag",
         "first_response"],
)
def test_naive_datetimes_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()  # type: ignore[operator]


# --- properties ---------------------------------------------------------------------------------

LO = datetime(2025, 12, 1)
HI = datetime(2027, 12, 31)
instants = st.datetimes(min_value=LO, max_value=HI, timezones=st.just(UTC))
gaps = st.integers(min_value=0, max_value=40 * 24 * 3600).map(lambda s: timedelta(seconds=s))
sla_days = st.integers(min_value=1, max_value=30)


@st.composite
def clocks(draw: st.DrawFn) -> tuple[SlaClock, datetime]:
    """A running clock after a random history of pauses; and the time the history ended."""
    at = draw(instants)
    clock = sla.start_cycle(CAL, at, draw(sla_days))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at += draw(gaps)
        clock = sla.pause(CAL, clock, at)
        at += draw(gaps)
        clock = sla.resume(CAL, clock, at)
    return clock, at


@settings(max_examples=100, deadline=None)
@given(clocks(), gaps, gaps)
def test_property_a_pause_moves_the_deadline_by_exactly_its_business_time(
    drawn: tuple[SlaClock, datetime], before: timedelta, length: timedelta
) -> None:
    clock, at = drawn
    start, end = at + before, at + before + length
    resumed = sla.resume(CAL, sla.pause(CAL, clock, start), end)
    p = CAL.business_seconds_between(start, end)
    assert resumed.deadline_at >= clock.deadline_at  # pausing never shortens a deadline
    assert CAL.business_seconds_between(clock.deadline_at, resumed.deadline_at) == pytest.approx(p, abs=1e-5)
    assert resumed.paused_seconds == pytest.approx(clock.paused_seconds + p, abs=1e-6)
    check_invariant(resumed)


@settings(max_examples=100, deadline=None)
@given(clocks(), gaps, gaps)
def test_property_used_time_is_frozen_during_a_pause(
    drawn: tuple[SlaClock, datetime], before: timedelta, later: timedelta
) -> None:
    clock, at = drawn
    paused_at = at + before
    paused = sla.pause(CAL, clock, paused_at)
    assert sla.used_seconds(CAL, paused, paused_at + later) == sla.used_seconds(CAL, clock, paused_at)
    assert sla.rag(CAL, paused, paused_at + later) is sla.rag(CAL, clock, paused_at)


_ORDER = {Rag.GREEN: 0, Rag.AMBER: 1, Rag.RED: 2}


@settings(max_examples=100, deadline=None)
@given(clocks(), gaps, gaps)
def test_property_used_fraction_and_rag_never_go_back_while_running(
    drawn: tuple[SlaClock, datetime], a: timedelta, b: timedelta
) -> None:
    clock, at = drawn
    early, late = at + min(a, b), at + max(a, b)
    assert sla.used_fraction(CAL, clock, early) <= sla.used_fraction(CAL, clock, late)
    assert _ORDER[sla.rag(CAL, clock, early)] <= _ORDER[sla.rag(CAL, clock, late)]
    assert sla.business_days_overdue(CAL, clock, early) <= sla.business_days_overdue(CAL, clock, late)


@settings(max_examples=100, deadline=None)
@given(clocks(), instants)
def test_property_overdue_means_business_time_after_the_deadline(
    drawn: tuple[SlaClock, datetime], now: datetime
) -> None:
    clock, at = drawn
    now = max(now, at)  # the history of pauses is over
    late = CAL.business_seconds_between(clock.deadline_at, now)
    assert sla.is_overdue(CAL, clock, now) is (late > sla.EPSILON_SECONDS)
    assert sla.business_days_overdue(CAL, clock, now) == pytest.approx(late / DAY, abs=1e-9)
    assert (sla.rag(CAL, clock, now) is Rag.RED) is sla.is_overdue(CAL, clock, now)
    if not sla.is_overdue(CAL, clock, now):
        remaining = CAL.business_seconds_between(now, clock.deadline_at)
        assert sla.remaining_seconds(CAL, clock, now) == pytest.approx(remaining, abs=1e-5)


@settings(max_examples=100, deadline=None)
@given(clocks(), gaps, st.integers(min_value=1, max_value=60 * 24 * 3600))
def test_property_an_extension_never_shortens_and_budgets_exactly(
    drawn: tuple[SlaClock, datetime], wait: timedelta, more: int
) -> None:
    clock, at = drawn
    at += wait
    new_deadline = max(clock.deadline_at, at) + timedelta(seconds=more)
    extended = sla.extend(CAL, clock, new_deadline, at)
    assert extended.cycle == clock.cycle + 1
    assert extended.deadline_at >= clock.deadline_at
    assert extended.budget_seconds == CAL.business_seconds_between(at, new_deadline)
    assert CAL.business_seconds_between(extended.deadline_at, new_deadline) == 0.0
    assert sla.used_seconds(CAL, extended, at) == 0.0
    check_invariant(extended)


operations = st.lists(
    st.tuples(st.sampled_from(["pause", "resume", "extend", "restart"]), gaps, sla_days),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(instants, sla_days, operations, gaps)
def test_property_any_history_keeps_the_stored_fields_consistent(
    start: datetime, days: int, ops: list[tuple[str, timedelta, int]], tail: timedelta
) -> None:
    clock = sla.start_cycle(CAL, start, days)
    at = start
    for name, gap, n in ops:
        at += gap
        before = clock
        if name == "pause":
            clock = sla.pause(CAL, clock, at)
        elif name == "resume":
            clock = sla.resume(CAL, clock, at)
            assert clock.deadline_at >= before.deadline_at
        elif name == "extend":
            clock = sla.extend(CAL, clock, max(clock.deadline_at, at) + timedelta(days=n), at)
        else:
            clock = sla.restart(CAL, clock, at, n)
        check_invariant(clock)
        assert clock.paused_seconds >= 0.0
        assert clock.cycle == before.cycle + (name in ("extend", "restart"))
    used = sla.used_seconds(CAL, clock, at + tail)
    assert 0.0 <= used <= CAL.business_seconds_between(clock.cycle_started_at, at + tail)
