"""Reporting periods: ISO weeks, calendar months and custom ranges in programme local time.

The programme reports "weekly" and "monthly" in Hanoi time, so a period is a half-open range
``[start, end)`` of local midnights, stored as UTC instants like every other time in the
project. The label (``2026-W48``, ``2026-11``) is what people type on the command line and what
``DigestRun`` remembers, so it must round-trip and stay short (20 characters in the table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hotline.errors import InvalidInput

PeriodKind = Literal["week", "month", "range"]
DEFAULT_TZ = "Asia/Ho_Chi_Minh"

_WEEK = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)
_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")
_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC, with the local dates it covers (``last_day`` included)."""

    kind: PeriodKind
    label: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime
    tz: str = DEFAULT_TZ
    #: Set on a period that has not ended: the instant its figures are computed as of (``end``
    #: is then just after it, ``last_day`` that instant's local day). See ``as_of``.
    as_of: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.as_of is None

    @property
    def moment(self) -> datetime:
        """The instant every "at the end" figure (open, overdue, RAG) is judged at."""
        return self.as_of if self.as_of is not None else self.end

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def _midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _make(kind: PeriodKind, label: str, first: date, last: date, tz: str) -> Period:
    return Period(kind, label, first, last, _midnight(first, tz), _midnight(last + timedelta(days=1), tz), tz)


def as_of(period: Period, now: datetime) -> Period:
    """The one "as of" rule: a period's figures are computed as of ``min(period end, now)``.

    A finished period is returned unchanged (so the scheduled digests, which run after the
    period, are what they always were). A running one is cut at ``now``: its end becomes the
    microsecond after ``now`` (half-open, so an event written at ``now`` is in), its last day
    today, and ``as_of`` says so -- every surface titles it "2026-W49, to Thursday 03/12 14:35"
    (``display_label``) and judges overdue, late and RAG at ``now``, never at a future end.
    A period that has not started has no figures yet.
    """
    now = now.astimezone(UTC)
    if period.as_of is not None or period.end <= now:
        return period
    if period.start > now:
        raise InvalidInput(
            f"{period.label} has not started yet", key="digest.error.future_period", label=period.label
        )
    today = now.astimezone(ZoneInfo(period.tz)).date()
    return replace(period, last_day=today, end=now + timedelta(microseconds=1), as_of=now)


def display_label(period: Period, lang: str) -> str:
    """``2026-W49`` for a finished period; ``2026-W49, to Thursday 03/12 14:35`` (in ``lang``)
    for one still running: the words every title, sheet and page puts on its figures."""
    if period.as_of is None:
        return period.label
    from hotline.i18n import t

    local = period.as_of.astimezone(ZoneInfo(period.tz))
    return str(
        t(
            "digest.to_date",
            lang,
            label=period.label,
            weekday=t(f"digest.weekday.{local.weekday()}", lang),
            date=local.strftime("%d/%m"),
            time=local.strftime("%H:%M"),
        )
    )


def week(year: int, number: int, tz: str = DEFAULT_TZ) -> Period:
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise InvalidInput(f"{year} has no ISO week {number}", key="digest.error.bad_week") from None
    return _make("week", f"{year}-W{number:02d}", monday, monday + timedelta(days=6), tz)


def month(year: int, number: int, tz: str = DEFAULT_TZ) -> Period:
    if not 1 <= number <= 12 or not 1 <= year <= 9998:
        raise InvalidInput(f"there is no month {year}-{number:02d}", key="digest.error.bad_month")
    first = date(year, number, 1)
    following = date(year + (number == 12), number % 12 + 1, 1)
    return _make("month", f"{year}-{number:02d}", first, following - timedelta(days=1), tz)


def date_range(first: date, last: date, tz: str = DEFAULT_TZ) -> Period:
    """Both days included, as people say "from the 3rd to the 17th"."""
    if last < first:
        raise InvalidInput(
            f"the end date {last.isoformat()} is before the start date {first.isoformat()}",
            key="digest.error.bad_range",
        )
    return _make("range", f"{first:%Y%m%d}-{last:%Y%m%d}", first, last, tz)


def parse_week(text: str, tz: str = DEFAULT_TZ) -> Period:
    """``2026-W48`` (also ``2026W48``, ``2026-w8``)."""
    m = _WEEK.match(text or "")
    if not m:
        raise InvalidInput(f"bad week {text!r}: write it like 2026-W48", key="digest.error.bad_week")
    return week(int(m.group(1)), int(m.group(2)), tz)


def parse_month(text: str, tz: str = DEFAULT_TZ) -> Period:
    """``2026-11``."""
    m = _MONTH.match(text or "")
    if not m:
        raise InvalidInput(f"bad month {text!r}: write it like 2026-11", key="digest.error.bad_month")
    return month(int(m.group(1)), int(m.group(2)), tz)


def parse_date(text: str) -> date:
    m = _DATE.match(text or "")
    try:
        if not m:
            raise ValueError
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise InvalidInput(
            f"bad date {text!r}: write it like 2026-11-30", key="digest.error.bad_date"
        ) from None


def parse_label(label: str, tz: str = DEFAULT_TZ) -> Period:
    """The inverse of ``Period.label`` for weeks and months (what DigestRun rows hold)."""
    if _WEEK.match(label):
        return parse_week(label, tz)
    return parse_month(label, tz)


def week_of(at: datetime, tz: str = DEFAULT_TZ) -> Period:
    """The ISO week containing the instant ``at``."""
    year, number, _ = at.astimezone(ZoneInfo(tz)).date().isocalendar()
    return week(year, number, tz)


def last_complete_week(now: datetime, tz: str = DEFAULT_TZ) -> Period:
    """The latest ISO week that has ended by ``now`` (on a Monday morning: last week)."""
    current = week_of(now, tz)
    return week_of(current.start - timedelta(seconds=1), tz)


def last_complete_month(now: datetime, tz: str = DEFAULT_TZ) -> Period:
    local = now.astimezone(ZoneInfo(tz)).date()
    year, number = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return month(year, number, tz)


def trend_weeks(period: Period, count: int = 12) -> list[Period]:
    """The ``count`` ISO weeks up to the one holding the period's last day, oldest first.

    For a weekly digest the last bar is the digest's own week; for a month it is the week the
    month ends in (cut at the month's end, so no day after the period is counted).
    """
    last = week_of(period.end - timedelta(seconds=1), period.tz)
    weeks = [last]
    for _ in range(count - 1):
        weeks.append(week_of(weeks[-1].start - timedelta(seconds=1), period.tz))
    weeks.reverse()
    if weeks[-1].end > period.end:
        tail = weeks[-1]
        weeks[-1] = Period(
            tail.kind, tail.label, tail.first_day, period.last_day, tail.start, period.end, tail.tz
        )
    return weeks
