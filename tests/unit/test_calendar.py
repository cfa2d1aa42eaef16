"""The Vietnamese business calendar (SPEC §5): which days are worked and business-time arithmetic.

What the installed ``holidays`` package (0.109) says for Vietnam, pinned here so an upgrade that
changes it fails loudly (tests ``test_official_*``):

* Tết 2026 (Bính Ngọ, mùng 1 = Tue 17/2): Mon 16/2 - Fri 20/2 off, no make-up Saturday; with the
  weekends that is the 9-day break 14-22/2 the government announced.
* Tết 2027 (Đinh Mùi, mùng 1 = Sat 6/2): Thu 4/2 - Wed 10/2 off. No government decision is in the
  package yet; these are its Labour Code rules (5 Tết days, weekend ones compensated). An official
  schedule that differs goes into ``HOTLINE_EXTRA_DAYS_OFF`` / ``HOTLINE_MAKEUP_WORKING_DAYS``.
* Giỗ Tổ Hùng Vương: Sun 26/4/2026 -> observed Mon 27/4; Fri 16/4/2027.
* 30/4-1/5: Thu-Fri in 2026 (no swap needed); 2027: Fri 30/4, Sat 1/5 -> observed Mon 3/5.
  2025: Fri 2/5 off, worked Sat 26/4. 2024: Mon 29/4 off, worked Sat 4/5.
* Quốc khánh (two days since 2021): 2026 Tue 1/9 + Wed 2/9, and the bridge day Mon 31/8 off in
  exchange for Sat 22/8 worked (government swap, in the package); 2027 Thu 2/9 + Fri 3/9.
* New in 2026: Ngày Văn hóa Việt Nam, 24/11 (Tue 2026, Wed 2027), per Resolution 80-NQ/TW.
* 1/1: Thu 2026, Fri 2027.

Times in this file are Vietnam local (``local``), the way people read deadlines.
"""

from __future__ import annotations

import threading
import time as wall
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hotline.config import Settings
from hotline.domain.calendar import BusinessCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600.0
DAY = 9 * H
CAL = BusinessCalendar()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)  # type: ignore[misc]


def days_between(first: date, last: date) -> Iterable[date]:
    for o in range(first.toordinal(), last.toordinal() + 1):
        yield date.fromordinal(o)


# --- what the holidays package knows, as working days ------------------------------------------

OFFICIAL = [
    # (day, worked?, why)
    (date(2026, 1, 1), False, "New Year 2026, Thursday"),
    (date(2026, 1, 2), True, "Friday after New Year: no bridge day in 2026"),
    (date(2026, 2, 13), True, "Friday before Tết 2026 is worked"),
    (date(2026, 2, 14), False, "Saturday"),
    (date(2026, 2, 16), False, "Tết 2026: 29 tháng Chạp (Lunar New Year's Eve)"),
    (date(2026, 2, 17), False, "Tết 2026: mùng 1"),
    (date(2026, 2, 18), False, "Tết 2026: mùng 2"),
    (date(2026, 2, 19), False, "Tết 2026: mùng 3"),
    (date(2026, 2, 20), False, "Tết 2026: mùng 4"),
    (date(2026, 2, 21), False, "Saturday after Tết 2026: not a make-up day"),
    (date(2026, 2, 23), True, "first working day after Tết 2026"),
    (date(2026, 4, 26), False, "Giỗ Tổ Hùng Vương 2026 on a Sunday"),
    (date(2026, 4, 27), False, "Giỗ Tổ Hùng Vương 2026 observed on Monday"),
    (date(2026, 4, 29), True, "Wednesday before 30/4/2026"),
    (date(2026, 4, 30), False, "30/4/2026, Thursday"),
    (date(2026, 5, 1), False, "1/5/2026, Friday"),
    (date(2026, 5, 4), True, "Monday after 30/4-1/5/2026"),
    (date(2026, 8, 22), True, "Saturday 22/8/2026 worked in exchange for Monday 31/8 (swap)"),
    (date(2026, 8, 31), False, "Monday 31/8/2026: National Day bridge day (swapped)"),
    (date(2026, 9, 1), False, "National Day 2026, first day (Tuesday)"),
    (date(2026, 9, 2), False, "National Day 2026 (Wednesday)"),
    (date(2026, 9, 3), True, "Thursday after National Day 2026"),
    (date(2026, 11, 24), False, "Vietnam Cultural Day 2026 (new holiday)"),
    (date(2026, 12, 31), True, "New Year's Eve 2026 is worked"),
    (date(2027, 1, 1), False, "New Year 2027, Friday"),
    (date(2027, 2, 3), True, "Wednesday before Tết 2027"),
    (date(2027, 2, 4), False, "Tết 2027: compensates mùng 1 falling on Saturday"),
    (date(2027, 2, 5), False, "Tết 2027: Lunar New Year's Eve"),
    (date(2027, 2, 6), False, "Tết 2027: mùng 1, Saturday"),
    (date(2027, 2, 8), False, "Tết 2027: mùng 3"),
    (date(2027, 2, 9), False, "Tết 2027: mùng 4"),
    (date(2027, 2, 10), False, "Tết 2027: compensates mùng 2 falling on Sunday"),
    (date(2027, 2, 11), True, "first working day after Tết 2027"),
    (date(2027, 4, 16), False, "Giỗ Tổ Hùng Vương 2027, Friday"),
    (date(2027, 4, 30), False, "30/4/2027, Friday"),
    (date(2027, 5, 3), False, "1/5/2027 falls on Saturday: observed Monday 3/5"),
    (date(2027, 5, 4), True, "Tuesday after"),
    (date(2027, 9, 2), False, "National Day 2027, Thursday"),
    (date(2027, 9, 3), False, "National Day 2027 second day: Friday 3/9"),
    (date(2027, 9, 6), True, "Monday after National Day 2027"),
    (date(2025, 4, 26), True, "Saturday 26/4/2025 worked in exchange for Friday 2/5"),
    (date(2025, 5, 2), False, "Friday 2/5/2025 swapped off"),
    (date(2025, 9, 1), False, "National Day 2025 bridge (Monday)"),
    (date(2024, 5, 4), True, "Saturday 4/5/2024 worked in exchange for Monday 29/4"),
    (date(2024, 4, 29), False, "Monday 29/4/2024 swapped off"),
    (date(2014, 12, 27), True, "Saturday worked in 2014 for a 2015 bridge day (cross-year swap)"),
    (date(2015, 1, 2), False, "Friday 2/1/2015 swapped off"),
]


@pytest.mark.parametrize(("day", "worked", "why"), OFFICIAL, ids=[w for _, _, w in OFFICIAL])
def test_official_working_days(day: date, worked: bool, why: str) -> None:
    assert CAL.is_working_day(day) is worked, why


def test_official_agrees_with_the_holidays_package_day_by_day_2024_2028() -> None:
    """Without configuration the calendar is exactly ``holidays``' own ``is_working_day``."""
    known = holidays.country_holidays("VN", years=range(2024, 2030))
    for day in days_between(date(2024, 1, 1), date(2028, 12, 31)):
        assert CAL.is_working_day(day) is known.is_working_day(day), day


def test_official_working_days_per_year() -> None:
    # 2026: 261 weekdays - 13 weekday holidays + Saturday 22/8.
    assert CAL.working_days_in(date(2026, 1, 1), date(2026, 12, 31)) == 249
    # 2027: 261 weekdays - 12 weekday holidays (1/1; Tết 4,5,8,9,10/2; 16/4, 30/4, 3/5, 2-3/9, 24/11).
    assert CAL.working_days_in(date(2027, 1, 1), date(2027, 12, 31)) == 261 - 12
    assert CAL.working_days_in(date(2026, 2, 1), date(2026, 2, 28)) == 20 - 5
    assert CAL.working_days_in(date(2027, 2, 1), date(2027, 2, 28)) == 20 - 5


def test_working_days_in_is_inclusive_and_empty_when_reversed() -> None:
    assert CAL.working_days_in(date(2026, 3, 2), date(2026, 3, 2)) == 1
    assert CAL.working_days_in(date(2026, 3, 7), date(2026, 3, 8)) == 0
    assert CAL.working_days_in(date(2026, 3, 6), date(2026, 3, 2)) == 0
    assert CAL.working_days_in(date(2026, 3, 2), date(2026, 3, 8)) == 5


def test_is_working_day_reads_an_aware_datetime_as_its_local_date() -> None:
    # 2026-02-15 20:00 UTC is Monday 16/2 03:00 in Hanoi: a Tết day, though Sunday 15/2 in UTC.
    assert CAL.is_working_day(datetime(2026, 2, 22, 20, tzinfo=UTC)) is True  # Mon 23/2 local
    assert CAL.is_working_day(datetime(2026, 2, 15, 20, tzinfo=UTC)) is False
    with pytest.raises(ValueError, match="naive"):
        CAL.is_working_day(datetime(2026, 2, 23, 9))


def test_next_working_day() -> None:
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 13)
    assert CAL.next_working_day(date(2026, 2, 14)) == date(2026, 2, 23)
    assert CAL.next_working_day(date(2026, 12, 31)) == date(2026, 12, 31)
    assert CAL.next_working_day(date(2027, 1, 1)) == date(2027, 1, 4)
    assert CAL.next_working_day(date(2026, 8, 22)) == date(2026, 8, 22)


# --- next working moment ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("at", "expected", "why"),
    [
        (local(2026, 3, 4, 10, 15), local(2026, 3, 4, 10, 15), "inside working hours: itself"),
        (local(2026, 3, 4, 8), local(2026, 3, 4, 8), "exactly work start: itself"),
        (local(2026, 3, 4, 7, 59, 59), local(2026, 3, 4, 8), "early morning"),
        (local(2026, 3, 4, 17), local(2026, 3, 5, 8), "17:00 is already after hours"),
        (local(2026, 3, 4, 23, 30), local(2026, 3, 5, 8), "at night"),
        (local(2026, 3, 6, 16, 59), local(2026, 3, 6, 16, 59), "Friday afternoon"),
        (local(2026, 3, 6, 17, 30), local(2026, 3, 9, 8), "Friday evening -> Monday"),
        (local(2026, 3, 7, 12), local(2026, 3, 9, 8), "Saturday"),
        (local(2026, 2, 13, 17, 1), local(2026, 2, 23, 8), "Friday before Tết 2026 -> after Tết"),
        (local(2026, 2, 18, 10), local(2026, 2, 23, 8), "during Tết 2026"),
        (local(2027, 2, 3, 18), local(2027, 2, 11, 8), "eve of Tết 2027 -> Thursday 11/2"),
        (local(2026, 8, 21, 18), local(2026, 8, 22, 8), "Friday -> make-up Saturday 22/8/2026"),
        (local(2026, 8, 28, 18), local(2026, 9, 3, 8), "National Day 2026 break 29/8-2/9"),
        (local(2026, 12, 31, 17, 0, 0, 1), local(2027, 1, 4, 8), "New Year 2027"),
    ],
)
def test_next_working_moment(at: datetime, expected: datetime, why: str) -> None:
    got = CAL.next_working_moment(at)
    assert got == expected, why
    assert got.tzinfo is UTC


# --- adding business time -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "days", "expected", "why"),
    [
        (local(2026, 3, 2, 8), 1, local(2026, 3, 2, 17), "1 day from Monday 08:00 = Monday 17:00"),
        (local(2026, 3, 2, 8), 5, local(2026, 3, 6, 17), "a week = Friday 17:00, not Monday 08:00"),
        (local(2026, 3, 2, 8), 6, local(2026, 3, 9, 17), "6 days spans the weekend"),
        (local(2026, 3, 2, 12), 0.5, local(2026, 3, 2, 16, 30), "half a day inside one day"),
        (local(2026, 3, 2, 12, 30), 0.5, local(2026, 3, 2, 17), "exactly to end of day"),
        (local(2026, 3, 2, 13), 0.5, local(2026, 3, 3, 8, 30), "rolls into the next morning"),
        (local(2026, 3, 6, 16, 30), 1, local(2026, 3, 9, 16, 30), "filed Friday 16:30"),
        (local(2026, 3, 6, 16, 30), 3, local(2026, 3, 11, 16, 30), "Friday 16:30 + 3 days"),
        (local(2026, 3, 3, 22), 1, local(2026, 3, 4, 17), "filed at night: counts from 08:00"),
        (local(2026, 3, 4, 2), 1, local(2026, 3, 4, 17), "filed before dawn"),
        (local(2026, 3, 7, 10), 1, local(2026, 3, 9, 17), "filed on Saturday"),
        (local(2026, 4, 30, 10), 1, local(2026, 5, 4, 17), "filed on 30/4/2026 (holiday)"),
        (local(2026, 4, 29, 12), 1, local(2026, 5, 4, 12), "across 30/4-1/5/2026"),
        (local(2026, 4, 24, 17), 1, local(2026, 4, 28, 17), "across Giỗ Tổ observed Monday 27/4"),
        (local(2026, 2, 13, 16, 30), 1, local(2026, 2, 23, 16, 30), "Friday 16:30 before Tết 2026"),
        (local(2026, 2, 13, 9), 3, local(2026, 2, 25, 9), "8 h + 9 h + 9 h + 1 h across Tết 2026"),
        (local(2026, 2, 17, 10), 1, local(2026, 2, 23, 17), "filed on mùng 1 Tết 2026"),
        (local(2026, 2, 9, 8), 10, local(2026, 2, 27, 17), "two weeks of SLA around Tết 2026"),
        (local(2027, 2, 3, 10), 2, local(2027, 2, 12, 10), "7 h + 9 h + 2 h across Tết 2027"),
        (local(2027, 2, 1, 8), 5, local(2027, 2, 12, 17), "week of Tết 2027: 3 days before, 2 after"),
        (local(2026, 8, 21, 17), 1, local(2026, 8, 22, 17), "make-up Saturday 22/8/2026 counts"),
        (local(2026, 8, 28, 10), 1, local(2026, 9, 3, 10), "across National Day 2026 + bridge"),
        (local(2027, 9, 1, 17), 1, local(2027, 9, 6, 17), "across National Day 2027 (2-3/9)"),
        (local(2026, 11, 23, 17), 1, local(2026, 11, 25, 17), "across Vietnam Cultural Day 2026"),
        (local(2026, 12, 31, 15), 1, local(2027, 1, 4, 15), "New Year 2027 falls on Friday"),
        (local(2025, 12, 31, 12), 1, local(2026, 1, 2, 12), "New Year 2026 on Thursday"),
        (local(2026, 12, 25, 8), 10, local(2027, 1, 8, 17), "ten days over the year end"),
    ],
)
def test_add_business_days(start: datetime, days: float, expected: datetime, why: str) -> None:
    got = CAL.add_business_days(start, days)
    assert got == expected, f"{why}: got {got.astimezone(VN)}"
    assert got.tzinfo is UTC
    assert CAL.add_business_seconds(start, days * DAY) == got


def test_add_zero_is_the_next_working_moment() -> None:
    assert CAL.add_business_seconds(local(2026, 3, 2, 8), 0) == local(2026, 3, 2, 8)
    assert CAL.add_business_seconds(local(2026, 3, 6, 17), 0) == local(2026, 3, 9, 8)
    assert CAL.add_business_seconds(local(2026, 3, 4, 11, 11), 0.0) == local(2026, 3, 4, 11, 11)


def test_add_negative_counts_backwards() -> None:
    assert CAL.add_business_seconds(local(2026, 3, 9, 10), -3 * H) == local(2026, 3, 6, 16)
    assert CAL.add_business_days(local(2026, 2, 23, 17), -1) == local(2026, 2, 13, 17)
    assert CAL.add_business_days(local(2026, 3, 9, 17), -1) == local(2026, 3, 6, 17)


def test_add_keeps_microseconds() -> None:
    start = local(2026, 3, 4, 9, 0, 0, 123456)
    assert CAL.add_business_seconds(start, 1.5) == local(2026, 3, 4, 9, 0, 1, 623456)


def test_add_refuses_non_finite_amounts() -> None:
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="finite"):
            CAL.add_business_seconds(local(2026, 3, 4, 9), bad)


def test_inputs_in_any_zone_give_the_same_instant() -> None:
    hanoi = local(2026, 2, 13, 16, 30)
    for zone in (UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")):
        other = hanoi.astimezone(zone)
        assert CAL.add_business_days(other, 1) == CAL.add_business_days(hanoi, 1)
        assert CAL.business_seconds_between(other, local(2026, 2, 23, 9)) == 1.5 * H


# --- measuring business time --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("a", "b", "hours", "why"),
    [
        (local(2026, 3, 6, 16, 30), local(2026, 3, 9, 8, 30), 1.0, "Friday 16:30 -> Monday 08:30"),
        (local(2026, 3, 4, 18), local(2026, 3, 5, 7), 0.0, "a night"),
        (local(2026, 3, 4, 18), local(2026, 3, 5, 9), 1.0, "night then an hour"),
        (local(2026, 3, 2, 8), local(2026, 3, 6, 17), 45.0, "a full week"),
        (local(2026, 3, 2, 0), local(2026, 3, 9, 0), 45.0, "midnight to midnight"),
        (local(2026, 2, 13, 17), local(2026, 2, 23, 8), 0.0, "the whole Tết 2026 break"),
        (local(2026, 2, 13, 12), local(2026, 2, 23, 12), 9.0, "5 h before Tết + 4 h after"),
        (local(2026, 2, 2, 8), local(2026, 3, 2, 8), 15 * 9.0, "February 2026: 15 working days"),
        (local(2027, 2, 1, 8), local(2027, 3, 1, 8), 15 * 9.0, "February 2027: 15 working days"),
        (local(2026, 4, 29, 17), local(2026, 5, 4, 8), 0.0, "30/4-1/5/2026 break"),
        (local(2026, 8, 21, 17), local(2026, 8, 24, 8), 9.0, "a weekend with a make-up Saturday"),
        (local(2026, 8, 28, 17), local(2026, 9, 3, 8), 0.0, "National Day 2026 break"),
        (local(2026, 12, 31, 8), local(2027, 1, 4, 17), 18.0, "over New Year 2027"),
        (local(2026, 3, 9, 12), local(2026, 3, 2, 12), 0.0, "reversed: zero"),
        (local(2026, 3, 4, 12), local(2026, 3, 4, 12), 0.0, "empty"),
        (local(2026, 3, 7, 1), local(2026, 3, 8, 23), 0.0, "a weekend"),
    ],
)
def test_business_seconds_between(a: datetime, b: datetime, hours: float, why: str) -> None:
    assert CAL.business_seconds_between(a, b) == hours * H, why
    assert CAL.business_days_between(a, b) == hours / 9, why


# --- configuration ------------------------------------------------------------------------------

def test_extra_days_off_and_make_up_saturdays_from_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        extra_days_off="2026-03-09, 2026-03-10",  # type: ignore[arg-type]
        makeup_working_days="2026-03-14",  # type: ignore[arg-type]
    )
    cal = BusinessCalendar.from_settings(settings)
    assert not cal.is_working_day(date(2026, 3, 9))
    assert not cal.is_working_day(date(2026, 3, 10))
    assert cal.is_working_day(date(2026, 3, 14))  # Saturday made up
    assert cal.is_working_day(date(2026, 3, 11))
    # Friday 16:30 + 1 day: 0.5 h on Friday 13/3, 8.5 h on the make-up Saturday 14/3.
    assert cal.add_business_days(local(2026, 3, 13, 16, 30), 1) == local(2026, 3, 14, 16, 30)
    # Monday 9/3 and Tuesday 10/3 off: Friday 16:30 + 1 day is Wednesday 16:30.
    assert cal.add_business_days(local(2026, 3, 6, 16, 30), 1) == local(2026, 3, 11, 16, 30)
    assert cal.add_business_days(local(2026, 3, 6, 17), 1) == local(2026, 3, 11, 17)
    assert cal.next_working_moment(local(2026, 3, 13, 18)) == local(2026, 3, 14, 8)
    assert cal.working_days_in(date(2026, 3, 1), date(2026, 3, 31)) == 22 - 2 + 1
    assert cal.business_seconds_between(local(2026, 3, 6, 17), local(2026, 3, 16, 8)) == 4 * DAY


def test_an_official_decision_the_package_lacks_can_be_configured() -> None:
    """E.g. if the 2027 Tết schedule ends up 3/2-9/2 with 10/2 worked and Saturday 30/1 made up."""
    cal = BusinessCalendar(extra_days_off=[date(2027, 2, 3)],
                           makeup_working_days=[date(2027, 2, 10), date(2027, 1, 30)])
    assert [cal.is_working_day(date(2027, 2, d)) for d in range(2, 12)] == [
        True, False, False, False, False, False, False, False, True, True
    ]
    assert cal.is_working_day(date(2027, 1, 30))
    # A make-up working day wins over a holiday the package lists.
    cal = BusinessCalendar(makeup_working_days=[date(2026, 11, 24)])
    assert cal.is_working_day(date(2026, 11, 24))


def test_a_date_cannot_be_both_off_and_made_up() -> None:
    with pytest.raises(ValueError, match="2026-03-09"):
        BusinessCalendar(extra_days_off=[date(2026, 3, 9)], makeup_working_days=[date(2026, 3, 9)])


def test_configured_days_must_be_dates() -> None:
    with pytest.raises(ValueError, match="date"):
        BusinessCalendar(extra_days_off=[datetime(2026, 3, 9, tzinfo=VN)])


def test_custom_working_hours() -> None:
    cal = BusinessCalendar(work_start=time(7, 30), work_end=time(16, 30))
    assert cal.business_day_seconds == DAY
    assert cal.add_business_days(local(2026, 3, 2, 7, 30), 1) == local(2026, 3, 2, 16, 30)
    assert cal.next_working_moment(local(2026, 3, 2, 16, 45)) == local(2026, 3, 3, 7, 30)
    short = BusinessCalendar(work_start=time(9), work_end=time(12))
    assert short.business_day_seconds == 3 * H
    assert short.add_business_days(local(2026, 3, 2, 9), 2) == local(2026, 3, 3, 12)


def test_working_until_midnight() -> None:
    settings = Settings(_env_file=None, work_start_hour=0, work_end_hour=24)  # type: ignore[call-arg]
    cal = BusinessCalendar.from_settings(settings)
    assert cal.business_day_seconds == 24 * H
    assert cal.add_business_days(local(2026, 3, 6, 12), 1) == local(2026, 3, 9, 12)
    assert cal.business_seconds_between(local(2026, 3, 6, 23), local(2026, 3, 9, 1)) == 2 * H


def test_from_default_settings_is_the_spec_calendar() -> None:
    cal = BusinessCalendar.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (cal.zone.key, cal.work_start, cal.work_end) == ("Asia/Ho_Chi_Minh", time(8), time(17))
    assert cal.business_day_seconds == 32_400
    assert "Asia/Ho_Chi_Minh" in repr(cal)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"work_start": time(17), "work_end": time(8)}, "end after"),
        ({"work_start": time(9), "work_end": time(9)}, "end after"),
        ({"work_start": time(8, tzinfo=UTC)}, "wall-clock"),
        ({"first_year": 2027, "last_year": 2026}, "after last_year"),
    ],
)
def test_bad_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_unknown_time_zone() -> None:
    with pytest.raises(Exception, match="Nowhere"):
        BusinessCalendar(tz="Nowhere/Special")


def test_another_zone_uses_its_own_wall_clock() -> None:
    """Working hours are local wall time, also across a DST change (Paris, 29/3/2026)."""
    paris = ZoneInfo("Europe/Paris")
    cal = BusinessCalendar(tz="Europe/Paris")
    friday = datetime(2026, 3, 27, 8, tzinfo=paris)
    assert cal.add_business_days(friday, 2) == datetime(2026, 3, 30, 17, tzinfo=paris)
    assert cal.business_seconds_between(friday, datetime(2026, 3, 30, 17, tzinfo=paris)) == 2 * DAY


# --- inputs and ranges --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.next_working_moment(datetime(2026, 3, 4, 9)),
        lambda: CAL.add_business_seconds(datetime(2026, 3, 4, 9), 60),
        lambda: CAL.add_business_days(datetime(2026, 3, 4, 9), 1),
        lambda: CAL.business_seconds_between(datetime(2026, 3, 4, 9), local(2026, 3, 5, 9)),
        lambda: CAL.business_seconds_between(local(2026, 3, 4, 9), datetime(2026, 3, 5, 9)),
        lambda: CAL.business_days_between(datetime(2026, 3, 4, 9), datetime(2026, 3, 5, 9)),
    ],
    ids=["next_working_moment", "add_seconds", "add_days", "between_a", "between_b", "days_between"],
)
def test_naive_datetimes_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()  # type: ignore[operator]


def test_years_load_on_demand_from_2000_to_2100() -> None:
    cal = BusinessCalendar()
    assert not cal.is_working_day(date(2000, 1, 3))  # 1/1/2000 was a Saturday: observed Monday
    assert cal.is_working_day(date(2000, 1, 4))
    assert not cal.is_working_day(date(2100, 1, 1))
    assert cal.business_seconds_between(local(2000, 1, 3, 8), local(2000, 1, 4, 17)) == DAY
    # One jump across the whole century, in both directions.
    far = cal.add_business_days(local(2001, 3, 1, 8), 24_000)
    assert far.year >= 2090
    assert cal.business_days_between(local(2001, 3, 1, 8), far) == 24_000
    assert cal.add_business_days(far, -24_000) == local(2001, 2, 28, 17)


def test_the_same_answers_whatever_was_loaded_first() -> None:
    eager = BusinessCalendar(first_year=2020, last_year=2030)
    lazy = BusinessCalendar()
    probes = [local(2029, 6, 1, 9), local(2021, 2, 10, 16), local(2026, 2, 13, 16, 30)]
    for start in probes:
        for days in (0.25, 1, 7, 30, 400):
            assert lazy.add_business_days(start, days) == eager.add_business_days(start, days)
            assert lazy.add_business_days(start, -days) == eager.add_business_days(start, -days)
    assert lazy.business_seconds_between(probes[1], probes[0]) == eager.business_seconds_between(
        probes[1], probes[0])


def test_outside_the_supported_years() -> None:
    with pytest.raises(ValueError, match="outside the supported"):
        BusinessCalendar().is_working_day(date(2101, 1, 3))
    with pytest.raises(ValueError, match="outside the supported"):
        BusinessCalendar().business_seconds_between(local(1899, 1, 3, 9), local(2000, 1, 3, 9))
    with pytest.raises(ValueError, match="past the supported"):
        BusinessCalendar().add_business_days(local(2100, 12, 1, 9), 100)
    with pytest.raises(ValueError, match="before the supported"):
        BusinessCalendar().add_business_days(local(1901, 2, 1, 9), -100)


def test_concurrent_first_use_from_threads() -> None:
    """Lazy loading publishes whole snapshots: threads racing to load years agree."""
    cal = BusinessCalendar()
    starts = [local(2000 + (i * 7) % 100, 1 + i % 12, 10, 9) for i in range(64)]
    barrier = threading.Barrier(8)

    def work(start: datetime) -> tuple[datetime, float]:
        if starts.index(start) < 8:
            barrier.wait(timeout=30)
        end = cal.add_business_days(start, 20)
        return end, cal.business_days_between(start, end)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, starts))
    assert [days for _, days in results] == [20.0] * len(starts)
    assert [end for end, _ in results] == [CAL.add_business_days(s, 20) for s in starts]


def test_fast_enough_for_a_sweep() -> None:
    """Loose guard (the bench measures properly): 100,000 open tickets must sweep in < 2 s."""
    start = local(2026, 2, 13, 16, 30)
    nows = [start + timedelta(minutes=37 * i) for i in range(20_000)]
    CAL.business_seconds_between(start, nows[-1])
    began = wall.perf_counter()
    for now in nows:
        CAL.business_seconds_between(start, now)
        CAL.add_business_seconds(start, 3 * DAY)
    assert wall.perf_counter() - began < 1.0  # 40,000 calls; measured ~0.1 s


# --- properties against a naive day-by-day oracle -----------------------------------------------

LO, HI = datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 12, 31, tzinfo=UTC)
OFF = frozenset([date(2026, 3, 9), date(2027, 2, 3)])
MAKEUP = frozenset([date(2026, 3, 14), date(2027, 2, 10), date(2026, 11, 24)])
CONFIGURED = BusinessCalendar(extra_days_off=OFF, makeup_working_days=MAKEUP)
_KNOWN = holidays.country_holidays("VN", years=range(2024, 2031))


def oracle_is_working(day: date) -> bool:
    if day in MAKEUP:
        return True
    return day not in OFF and _KNOWN.is_working_day(day)


def oracle_between(a: datetime, b: datetime) -> float:
    """Business seconds in [a, b], walking the days; the obviously-correct, slow version."""
    total = 0.0
    la, lb = a.astimezone(VN), b.astimezone(VN)
    for day in days_between(la.date(), lb.date()):
        if not oracle_is_working(day):
            continue
        lo = max(la, datetime.combine(day, time(8), VN))
        hi = min(lb, datetime.combine(day, time(17), VN))
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def oracle_add(start: datetime, seconds: float) -> datetime:
    left = timedelta(seconds=seconds)
    day = start.astimezone(VN).date()
    while True:
        if oracle_is_working(day):
            begin = max(start, datetime.combine(day, time(8), VN))
            end = datetime.combine(day, time(17), VN)
            if end > begin:
                if begin + left <= end:
                    return (begin + left).astimezone(UTC)
                left -= end - begin
        day += timedelta(days=1)


instants = st.datetimes(min_value=LO.replace(tzinfo=None), max_value=HI.replace(tzinfo=None),
                        timezones=st.just(UTC))
amounts = st.floats(min_value=1e-3, max_value=250 * DAY, allow_nan=False)


@st.composite
def working_instants(draw: st.DrawFn) -> datetime:
    """An instant inside working hours (uniform over working time, not stuck at 08:00)."""
    day = draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 6, 30)))
    assume(CONFIGURED.is_working_day(day))
    us = draw(st.integers(min_value=0, max_value=int(DAY * 1e6) - 1))
    return (datetime.combine(day, time(8), VN) + timedelta(microseconds=us)).astimezone(UTC)


def test_a_zone_whose_offset_changed_takes_the_general_path() -> None:
    """Saigon time was UTC+8 until 13/6/1975; such a range cannot use the fixed-offset fast path."""
    cal = BusinessCalendar(first_year=1974, last_year=1976)
    assert cal._range.offset_us is None
    assert CAL._range.offset_us == 7 * 3600 * 10**6
    for a, b in [(local(1975, 6, 10, 9), local(1975, 6, 20, 16)),
                 (local(1975, 6, 13, 7), local(1975, 6, 13, 23))]:
        assert cal.business_seconds_between(a, b) == oracle_between(a, b)
        assert cal.add_business_seconds(a, 3 * DAY) == oracle_add(a, 3 * DAY)
    with pytest.raises(ValueError, match="naive"):
        cal.business_seconds_between(datetime(1975, 6, 10, 9), local(1975, 6, 10, 10))


@settings(max_examples=150, deadline=None)
@given(instants, instants)
def test_property_between_equals_the_day_by_day_oracle(a: datetime, b: datetime) -> None:
    assert CONFIGURED.business_seconds_between(a, b) == pytest.approx(oracle_between(a, b), abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(instants, amounts)
def test_property_add_equals_the_day_by_day_oracle(start: datetime, seconds: float) -> None:
    got = CONFIGURED.add_business_seconds(start, seconds)
    assert abs(got - oracle_add(start, seconds)) <= timedelta(microseconds=1)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)))
def test_property_is_working_day_equals_the_oracle(day: date) -> None:
    assert CONFIGURED.is_working_day(day) is oracle_is_working(day)


@settings(max_examples=200, deadline=None)
@given(working_instants(), amounts)
def test_property_between_inverts_add_inside_working_hours(start: datetime, seconds: float) -> None:
    end = CONFIGURED.add_business_seconds(start, seconds)
    assert CONFIGURED.business_seconds_between(start, end) == pytest.approx(seconds, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(instants, amounts)
def test_property_between_inverts_add_from_any_start(start: datetime, seconds: float) -> None:
    """Outside working hours counting starts at the next working moment, so this holds too."""
    end = CONFIGURED.add_business_seconds(start, seconds)
    assert CONFIGURED.business_seconds_between(start, end) == pytest.approx(seconds, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(instants, amounts, amounts)
def test_property_add_is_monotonic(start: datetime, x: float, y: float) -> None:
    lo, hi = sorted((x, y))
    assert CONFIGURED.add_business_seconds(start, lo) <= CONFIGURED.add_business_seconds(start, hi)
    assert start <= CONFIGURED.add_business_seconds(start, 0) <= CONFIGURED.add_business_seconds(start, lo)


@settings(max_examples=200, deadline=None)
@given(instants, amounts)
def test_property_add_lands_in_working_hours_at_most_at_the_end(start: datetime, seconds: float) -> None:
    """Results are in (08:00, 17:00] of a working day: a deadline never reads as 08:00."""
    got = CONFIGURED.add_business_seconds(start, seconds).astimezone(VN)
    assert CONFIGURED.is_working_day(got.date())
    assert time(8) < got.time() <= time(17)
    assert got > start


@settings(max_examples=200, deadline=None)
@given(instants, instants, instants)
def test_property_between_is_additive(x: datetime, y: datetime, z: datetime) -> None:
    a, b, c = sorted((x, y, z))
    whole = CONFIGURED.business_seconds_between(a, c)
    parts = CONFIGURED.business_seconds_between(a, b) + CONFIGURED.business_seconds_between(b, c)
    assert whole == pytest.approx(parts, abs=1e-6)
    assert 0 <= whole <= (c - a).total_seconds()
    assert CONFIGURED.business_seconds_between(c, a) == 0.0


@settings(max_examples=200, deadline=None)
@given(instants, amounts)
def test_property_subtracting_undoes_adding(start: datetime, seconds: float) -> None:
    """Going back the same business time lands on the same business instant as ``start``."""
    there = CONFIGURED.add_business_seconds(start, seconds)
    back = CONFIGURED.add_business_seconds(there, -seconds)
    assert CONFIGURED.business_seconds_between(back, start) == pytest.approx(0, abs=1e-6)
    assert CONFIGURED.business_seconds_between(start, back) == pytest.approx(0, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(instants)
def test_property_next_working_moment(at: datetime) -> None:
    moment = CONFIGURED.next_working_moment(at)
    assert moment >= at
    assert CONFIGURED.business_seconds_between(at, moment) == 0.0
    local_moment = moment.astimezone(VN)
    assert CONFIGURED.is_working_day(local_moment.date())
    assert time(8) <= local_moment.time() < time(17)
    assert CONFIGURED.next_working_moment(moment) == moment


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)),
       st.integers(min_value=0, max_value=120))
def test_property_working_days_in_counts_days(first: date, span: int) -> None:
    last = first + timedelta(days=span)
    expected = sum(oracle_is_working(d) for d in days_between(first, last))
    assert CONFIGURED.working_days_in(first, last) == expected
    whole = CONFIGURED.business_seconds_between(datetime.combine(first, time(0), VN),
                                                datetime.combine(last + timedelta(days=1), time(0), VN))
    assert whole == expected * DAY
