"""Query parameters: parsed strictly, bounded, and turned into one clear 400 when wrong.

Every filter the pages and the API accept is here, so the HTML form, the JSON API and the
export read them the same way. Unknown parameters are ignored (tracking tags appended by chat
apps must not break a link), but a known one that is repeated, too long or not one of the
allowed values is refused: nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from hotline.digests import period as P
from hotline.digests.compute import REPORTER_KINDS
from hotline.domain.enums import Rag, TicketState
from hotline.domain.ids import parse_ref
from hotline.errors import HotlineError, InvalidInput, NotFound
from hotline.taxonomy import Taxonomy

MAX_QUERY_CHARS = 2048
MAX_VALUE_CHARS = 64
MAX_RANGE_DAYS = 366
FIRST_YEAR, LAST_YEAR = 2000, 2100

_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
_STATES = tuple(s.value for s in TicketState)
_RAGS = tuple(r.value for r in Rag)


class BadParameter(InvalidInput):
    """A query parameter the page cannot use; says which and why."""

    key = "web.error.bad_parameter"


def _bad(name: str, why: str) -> BadParameter:
    return BadParameter(f"bad parameter {name!r}: {why}", name=name, why=why)


class _Row(Protocol):
    group_code: str
    category: str
    state: str
    rag: str
    org_kind: str


@dataclass(frozen=True)
class Filters:
    """What the dashboard, ticket list, chart and export are narrowed to."""

    period: str = "month"
    group: str | None = None
    category: str | None = None
    state: str | None = None
    rag: str | None = None
    kind: str | None = None

    @property
    def narrows_tickets(self) -> bool:
        return any((self.group, self.category, self.state, self.rag, self.kind))

    @property
    def by_end_state(self) -> bool:
        """State and RAG are facts at the period's end, not attributes a history keeps."""
        return bool(self.state or self.rag)

    def matches(self, row: _Row) -> bool:
        return ((self.group is None or row.group_code == self.group)
                and (self.category is None or row.category == self.category)
                and (self.state is None or row.state == self.state)
                and (self.rag is None or (row.rag == self.rag and row.state in _OPEN))
                and (self.kind is None or row.org_kind == self.kind))

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def query(self, **changes: Any) -> str:
        """The query string of these filters (defaults left out), for links and forms."""
        chosen = replace(self, **changes) if changes else self
        pairs = [(k, v) for k, v in chosen.as_dict().items()
                 if v is not None and not (k == "period" and v == "month")]
        return urlencode(pairs)


_OPEN = frozenset({"new", "assigned", "in_progress", "waiting_reporter", "reopened"})


def check_query_size(query_string: str) -> None:
    if len(query_string) > MAX_QUERY_CHARS:
        raise _bad("query", f"longer than {MAX_QUERY_CHARS} characters")


def ticket_ref(text: str) -> str:
    """The canonical ref of a ticket ID in a path; a malformed one is answered exactly like a
    missing ticket (404), as the chat answers it."""
    try:
        return parse_ref(text)
    except HotlineError:
        raise NotFound("bad ref", key="error.not_found") from None


def single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise _bad(name, "given more than once")
    value = values[0].strip()
    if len(value) > MAX_VALUE_CHARS:
        raise _bad(name, f"longer than {MAX_VALUE_CHARS} characters")
    if "\x00" in value:
        raise _bad(name, "contains a NUL character")
    return value or None


def choice(query: MultiMapping[str], name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    value = single(query, name)
    if value is not None and value not in allowed:
        raise _bad(name, "not one of " + ", ".join(allowed))
    return value


def integer(query: MultiMapping[str], name: str, default: int, lo: int, hi: int) -> int:
    value = single(query, name)
    if value is None:
        return default
    if not re.fullmatch(r"\d{1,9}", value):
        raise _bad(name, "not a whole number")
    number = int(value)
    if not lo <= number <= hi:
        raise _bad(name, f"not between {lo} and {hi}")
    return number


def parse_filters(query: MultiMapping[str], taxonomy: Taxonomy) -> Filters:
    period = single(query, "period") or "month"
    validate_period_spec(period)
    return Filters(
        period=period,
        group=choice(query, "group", sorted(taxonomy.groups)),
        category=choice(query, "category", list(taxonomy.categories)),
        state=choice(query, "state", _STATES),
        rag=choice(query, "rag", _RAGS),
        kind=choice(query, "kind", REPORTER_KINDS),
    )


def validate_period_spec(spec: str) -> None:
    """Syntax and bounds, independent of the current time (so a bad link fails fast)."""
    if spec in ("week", "month", "year"):
        return
    m = _YEAR.match(spec)
    if m:
        if not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR:
            raise _bad("period", f"year outside {FIRST_YEAR}-{LAST_YEAR}")
        return
    m = _RANGE.match(spec)
    try:
        if m:
            first, last = P.parse_date(m.group(1)), P.parse_date(m.group(2))
            if last < first:
                raise _bad("period", "the range ends before it starts")
            if (last - first).days + 1 > MAX_RANGE_DAYS:
                raise _bad("period", f"longer than {MAX_RANGE_DAYS} days")
            _year_bounds(first.year, last.year)
            return
        if "W" in spec.upper():
            found = P.parse_week(spec)
        else:
            found = P.parse_month(spec)
        _year_bounds(found.first_day.year, found.last_day.year)
    except BadParameter:
        raise
    except InvalidInput:
        raise _bad("period", "use week, month, year, 2026, 2026-11, 2026-W48 or "
                             "2026-11-01..2026-11-30") from None


def _year_bounds(*years: int) -> None:
    if any(not FIRST_YEAR <= y <= LAST_YEAR for y in years):
        raise _bad("period", f"year outside {FIRST_YEAR}-{LAST_YEAR}")


def resolve_period(spec: str, now: datetime, tz: str) -> P.Period:
    """The period a spec names, cut by the digests' one "as of" rule (``period.as_of``): one
    still running ends at ``now`` ("to date"), so its stock (open, overdue, RAG) is the live
    one, nothing after ``now`` is ever counted, and it is labelled as unfinished."""
    validate_period_spec(spec)
    today = now.astimezone(ZoneInfo(tz)).date()
    if spec == "week":
        period = P.week_of(now, tz)
    elif spec == "month":
        period = P.month(today.year, today.month, tz)
    elif spec == "year":
        period = _year(today.year, tz)
    elif _YEAR.match(spec):
        period = _year(int(spec), tz)
    elif m := _RANGE.match(spec):
        period = P.date_range(P.parse_date(m.group(1)), P.parse_date(m.group(2)), tz)
    elif "W" in spec.upper():
        period = P.parse_week(spec, tz)
    else:
        period = P.parse_month(spec, tz)
    if period.start >= now:
        raise _bad("period", "starts in the future")
    return P.as_of(period, now)


def _year(year: int, tz: str) -> P.Period:
    period = P.date_range(date(year, 1, 1), date(year, 12, 31), tz)
    return P.Period("range", str(year), period.first_day, period.last_day, period.start,
                    period.end, tz)


def period_choices(now: datetime, tz: str) -> list[str]:
    """The period menu of the filter form: running periods, then recent months and weeks."""
    today = now.astimezone(ZoneInfo(tz)).date()
    out = ["week", "month", "year"]
    year, month = today.year, today.month
    for _ in range(6):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append(f"{year}-{month:02d}")
    week = P.week_of(now, tz)
    for _ in range(4):
        week = P.week_of(week.start - timedelta(seconds=1), tz)
        out.append(week.label)
    out.append(str(today.year - 1))
    return out
