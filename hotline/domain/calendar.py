"""The Vietnamese business calendar: which days are worked and how much working time lies between instants.

Deadlines in this programme are counted in business days (SPEC §5), so every SLA figure, RAG colour
and escalation step goes through this class; a sweep over 100,000 open tickets asks it several
questions per ticket, hence the design:

* Each calendar day of a loaded range of years gets a *position*: the number of working days before
  it (a cumulative count). An instant's position is ``working days before its local date x day
  length + working time already elapsed that day``, kept as an integer of microseconds so that
  arithmetic is exact. ``between`` is a difference of two positions and ``add`` inverts a position
  with an index into the list of working days: O(1) per call, no loops over days.
* Years are loaded on demand (and cached), so any date from 1901 to 2100 works without paying for a
  century up front. A loaded range is an immutable snapshot replaced atomically, so readers never
  see a half-built one.

Working days are Monday-Friday, minus the official public holidays the ``holidays`` package knows
for Vietnam (Tết, the observed days when a holiday falls on a weekend, the days moved by government
decision), plus the Saturdays it knows were worked in exchange; then minus ``extra_days_off`` and
plus ``makeup_working_days`` from the configuration, which lets an operator follow a government
decision the installed package does not know yet (a make-up working day wins over a holiday).

Working hours are ``work_start``-``work_end`` local wall time with no lunch break. Vietnam has no
daylight saving time; for zones that have it, a transition inside working hours is not corrected.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from hotline.config import Settings

__all__ = ["MAX_YEAR", "MIN_YEAR", "BusinessCalendar"]

#: The ``holidays`` package computes the Vietnamese (lunar) holidays for these years only.
MIN_YEAR = 1901
MAX_YEAR = 2100
COUNTRY = "VN"

_US = 1_000_000  # microseconds per second
_DAY_US = 86_400 * _US
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()


@cache
def _official_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(official days off, weekend days worked instead) of one year, as the ``holidays`` package says.

    A swap decided for year Y can put the worked Saturday in Y-1 (27/12/2014 for 2/1/2015), so the
    following year is consulted too. Cached because the answer never changes within a process.
    """
    import holidays

    years = [year, year + 1] if year < MAX_YEAR else [year]
    known = holidays.country_holidays(COUNTRY, years=years)
    days_off = frozenset(d for d in known if d.year == year)
    worked = frozenset(d for d in getattr(known, "weekend_workdays", ()) if d.year == year)
    return days_off, worked


@dataclass(frozen=True, slots=True)
class _Range:
    """Precomputed positions of the loaded years ``first``..``last``; never mutated once published."""

    first: int
    last: int
    base: int  #: ordinal of 1 January ``first``
    size: int  #: number of calendar days
    #: UTC offset of the zone in microseconds if it is the same all over the range (Vietnam since
    #: 1975), which allows the fast path in ``_position``; None for zones with DST.
    offset_us: int | None
    work: bytes  #: 1 for a working day, indexed by ordinal - base
    before: list[int]  #: working days in [base, base + i); one longer than ``work``
    days: list[int]  #: ordinals of the working days, in order
    starts: list[datetime]  #: UTC instant of ``work_start`` on each of ``days``


def _to_time_of_day_us(value: time) -> int:
    if value.tzinfo is not None:
        raise ValueError("working hours are local wall-clock times, without a time zone")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond


class BusinessCalendar:
    """Working days and working hours of one organisation; thread-safe, pure apart from its cache."""

    __slots__ = (
        "_day_s",
        "_day_us",
        "_end_us",
        "_extra_off",
        "_lock",
        "_makeup",
        "_range",
        "_start_us",
        "_work_end",
        "_work_start",
        "_zone",
    )

    def __init__(
        self,
        tz: str = "Asia/Ho_Chi_Minh",
        work_start: time = time(8),
        work_end: time = time(17),
        extra_days_off: Iterable[date] = (),
        makeup_working_days: Iterable[date] = (),
        first_year: int | None = None,
        last_year: int | None = None,
    ) -> None:
        """``work_end == time(0)`` means midnight at the end of the day (24:00).

        ``first_year``/``last_year`` only choose what is loaded eagerly; other years still load on
        demand.
        """
        self._zone = ZoneInfo(tz)
        self._work_start = work_start
        self._work_end = work_end
        self._start_us = _to_time_of_day_us(work_start)
        end_us = _to_time_of_day_us(work_end)
        self._end_us = _DAY_US if end_us == 0 else end_us
        if self._end_us <= self._start_us:
            raise ValueError(f"working hours must end after they start: {work_start}-{work_end}")
        self._day_us = self._end_us - self._start_us
        self._day_s = self._day_us / _US
        self._extra_off = frozenset(_as_date(d) for d in extra_days_off)
        self._makeup = frozenset(_as_date(d) for d in makeup_working_days)
        both = self._extra_off & self._makeup
        if both:
            listed = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"dates both extra days off and make-up working days: {listed}")
        self._lock = threading.Lock()
        self._range = _Range(0, -1, 0, 0, None, b"", [0], [], [])
        if first_year is not None or last_year is not None:
            lo = first_year if first_year is not None else last_year
            hi = last_year if last_year is not None else first_year
            assert lo is not None and hi is not None
            if lo > hi:
                raise ValueError(f"first_year {lo} is after last_year {hi}")
            self._load(lo, hi)

    @classmethod
    def from_settings(cls, settings: Settings) -> BusinessCalendar:
        """The calendar the running programme uses (``HOTLINE_TIMEZONE``, ``HOTLINE_WORK_*``, ...)."""
        return cls(
            tz=settings.timezone,
            work_start=time(settings.work_start_hour),
            work_end=time(settings.work_end_hour % 24),
            extra_days_off=settings.extra_days_off,
            makeup_working_days=settings.makeup_working_days,
        )

    # --- properties ------------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def work_start(self) -> time:
        return self._work_start

    @property
    def work_end(self) -> time:
        return self._work_end

    @property
    def business_day_seconds(self) -> float:
        """Length of one business day (9 h = 32,400 s by default): the unit of SLA budgets."""
        return self._day_s

    def __repr__(self) -> str:
        return (f"BusinessCalendar({self._zone.key!r}, {self._work_start:%H:%M}-{self._work_end:%H:%M}, "
                f"{len(self._extra_off)} extra days off, {len(self._makeup)} make-up days)")

    # --- days ------------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` is worked; an aware datetime is read as its local date."""
        day = self._local_date(d)
        rng = self._covering(day.toordinal(), day.toordinal())
        return rng.work[day.toordinal() - rng.base] == 1

    def working_days_in(self, start: date, end: date) -> int:
        """Working days from ``start`` to ``end``, both included (0 if ``end`` is before ``start``)."""
        lo, hi = self._local_date(start).toordinal(), self._local_date(end).toordinal()
        if hi < lo:
            return 0
        rng = self._covering(lo, hi)
        return rng.before[hi + 1 - rng.base] - rng.before[lo - rng.base]

    def next_working_day(self, d: date) -> date:
        """The first working day on or after ``d``."""
        o = self._local_date(d).toordinal()
        while True:
            rng = self._covering(o, o)
            k = rng.before[o - rng.base]
            if k < len(rng.days):
                return date.fromordinal(rng.days[k])
            self._grow_by_working_days(rng, k)

    # --- instants --------------------------------------------------------------------------------

    def next_working_moment(self, at: datetime) -> datetime:
        """``at`` itself if it is inside working hours, else the start of the next working day."""
        while True:
            rng = self._range
            p = self._position(at, rng)
            if p >= 0:
                k, rem = divmod(p, self._day_us)
                if rem:
                    return at.astimezone(UTC)
                if k < len(rng.starts):
                    return rng.starts[k]
                self._grow_by_working_days(rng, k)
            else:
                self._cover_instant(at)

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant ``seconds`` of working time after ``start`` (microsecond precision).

        Counting starts at the next working moment when ``start`` is outside working hours. A result
        at the very start of a working day is given as the end of the previous one, so a deadline
        reads "Friday 17:00", not "Monday 08:00" (same business instant). Zero seconds gives the
        next working moment; negative seconds count backwards.
        """
        if not math.isfinite(seconds):
            raise ValueError(f"business seconds must be finite, got {seconds!r}")
        delta = round(seconds * _US)
        if delta == 0:
            return self.next_working_moment(start)
        day_us = self._day_us
        while True:
            rng = self._range
            p = self._position(start, rng)
            if p < 0:
                self._cover_instant(start)
                continue
            k, rem = divmod(p + delta, day_us)
            if rem == 0:
                k -= 1
                rem = day_us
            if 0 <= k < len(rng.starts):
                return rng.starts[k] + _ONE_US * rem
            self._grow_by_working_days(rng, k)

    def add_business_days(self, start: datetime, days: float) -> datetime:
        """``days`` business days after ``start``; 1 day from Monday 08:00 is Monday 17:00."""
        return self.add_business_seconds(start, days * self._day_s)

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds in [a, b]; 0 when ``b`` is not after ``a``."""
        while True:
            rng = self._range
            pa = self._position(a, rng)
            pb = self._position(b, rng)
            if pa >= 0 and pb >= 0:
                return (pb - pa) / _US if pb > pa else 0.0
            self._cover_instant(a if pa < 0 else b)

    def business_days_between(self, a: datetime, b: datetime) -> float:
        """Working time in [a, b] in business days (fractional)."""
        return self.business_seconds_between(a, b) / self._day_s

    # --- internals -------------------------------------------------------------------------------

    def _position(self, at: datetime, rng: _Range) -> int:
        """Microseconds of working time from the start of ``rng`` to ``at``; -1 when not loaded.

        The hot path of every call: with a fixed UTC offset it is integer arithmetic on the
        instant (no time-zone conversion, no datetime attributes).
        """
        offset = rng.offset_us
        if offset is not None:
            try:
                wall = (at - _EPOCH) // _ONE_US + offset
            except TypeError:
                raise ValueError(f"naive datetime not allowed: {at!r}") from None
            day, x = divmod(wall, _DAY_US)
            i = day + _EPOCH_ORDINAL - rng.base
        else:
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError(f"naive datetime not allowed: {at!r}")
            local = at.astimezone(self._zone)
            i = local.toordinal() - rng.base
            x = ((local.hour * 60 + local.minute) * 60 + local.second) * _US + local.microsecond
        if i < 0 or i >= rng.size:
            return -1
        k = rng.before[i] * self._day_us
        if not rng.work[i]:
            return k
        x -= self._start_us
        if x <= 0:
            return k
        return k + (x if x < self._day_us else self._day_us)

    def _local_date(self, d: date) -> date:
        if isinstance(d, datetime):
            if d.tzinfo is None:
                raise ValueError(f"naive datetime not allowed: {d!r}")
            return d.astimezone(self._zone).date()
        return d

    def _covering(self, lo: int, hi: int) -> _Range:
        """A loaded range containing ordinals ``lo``..``hi``, loading (with a year's margin) if needed."""
        rng = self._range
        if rng.base <= lo and hi < rng.base + rng.size:
            return rng
        y_lo, y_hi = date.fromordinal(lo).year, date.fromordinal(hi).year
        _check_year(y_lo)
        _check_year(y_hi)
        return self._load(y_lo - 1, y_hi + 1)

    def _cover_instant(self, at: datetime) -> None:
        o = at.astimezone(self._zone).toordinal()
        self._covering(o, o)

    def _grow_by_working_days(self, rng: _Range, k: int) -> None:
        """Load enough years to reach the ``k``-th working day (negative: before the range)."""
        if k >= len(rng.days):
            years = (k - len(rng.days)) // 240 + 1  # never fewer than 240 working days a year
            if rng.last >= MAX_YEAR:
                raise ValueError(f"business time runs past the supported calendar ({MAX_YEAR})")
            self._load(rng.first, rng.last + years)
        else:
            years = -k // 240 + 1
            if rng.first <= MIN_YEAR:
                raise ValueError(f"business time runs before the supported calendar ({MIN_YEAR})")
            self._load(rng.first - years, rng.last)

    def _load(self, first: int, last: int) -> _Range:
        """Publish a range covering at least ``first``..``last`` (clipped to the supported years)."""
        with self._lock:
            old = self._range
            if old.size:
                first, last = min(first, old.first), max(last, old.last)
            first, last = max(first, MIN_YEAR), min(last, MAX_YEAR)
            if old.size and first == old.first and last == old.last:
                return old
            new = self._build(first, last)
            self._range = new
            return new

    def _build(self, first: int, last: int) -> _Range:
        base = date(first, 1, 1).toordinal()
        size = date(last, 12, 31).toordinal() - base + 1
        off: set[date] = set()
        worked: set[date] = set()
        for year in range(first, last + 1):
            year_off, year_worked = _official_year(year)
            off |= year_off
            worked |= year_worked
        work = bytearray(size)
        before = [0] * (size + 1)
        days: list[int] = []
        starts: list[datetime] = []
        start_of_day = timedelta(microseconds=self._start_us)
        zone = self._zone
        offsets: set[timedelta | None] = set()
        count = 0
        for i in range(size + 1):
            o = base + i
            d = date.fromordinal(o)
            offsets.add(zone.utcoffset(datetime(d.year, d.month, d.day)))
            if i == size:
                break
            if d in self._makeup:
                is_work = True
            elif d in self._extra_off or d in off:
                is_work = False
            else:
                is_work = d.weekday() < 5 or d in worked
            if is_work:
                work[i] = 1
                count += 1
                days.append(o)
                wall = datetime(d.year, d.month, d.day) + start_of_day
                starts.append(wall.replace(tzinfo=zone).astimezone(UTC))
            before[i + 1] = count
        fixed = offsets.pop() if len(offsets) == 1 else None
        offset_us = fixed // _ONE_US if fixed is not None else None
        return _Range(first, last, base, size, offset_us, bytes(work), before, days, starts)


def _as_date(value: date) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"expected a date, got a datetime: {value!r}")
    return value


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year {year} is outside the supported calendar ({MIN_YEAR}-{MAX_YEAR})")
