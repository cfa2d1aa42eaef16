"""Business-calendar arithmetic on the sweep's hot path, against a naive day-by-day loop.

The sweep looks at every open ticket each minute (SPEC §6: 100,000 tickets in < 2 s), asking the
calendar for used time and for the instants at which escalation steps fall due. Baseline, measured
in the same run: the obvious implementation that walks the days one by one with the same working-day
predicate, which is what "no loops over days" buys us. The last table is a whole sweep's worth of
SLA questions (used fraction, RAG, days overdue, the 50 % / 75 % instants) per ticket.
Usage: python bench/bench_calendar.py [N] [--json FILE]
"""

from __future__ import annotations

import random
import sys
import time as clock
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Result, machine, pop_json_arg, print_table, write_results
from hotline.domain import sla
from hotline.domain.calendar import BusinessCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WORK_START, WORK_END = time(8), time(17)
DAY = 9 * 3600.0


class NaiveCalendar:
    """Day-by-day loops over the same working days (``is_working_day`` of the fast calendar)."""

    def __init__(self, fast: BusinessCalendar) -> None:
        self._is_working = fast.is_working_day

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        if b <= a:
            return 0.0
        total = 0.0
        la, lb = a.astimezone(VN), b.astimezone(VN)
        day = la.date()
        while day <= lb.date():
            if self._is_working(day):
                lo = max(la, datetime.combine(day, WORK_START, VN))
                hi = min(lb, datetime.combine(day, WORK_END, VN))
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def add_business_days(self, start: datetime, days: float) -> datetime:
        left = timedelta(seconds=days * DAY)
        day = start.astimezone(VN).date()
        while True:
            if self._is_working(day):
                begin = max(start, datetime.combine(day, WORK_START, VN))
                end = datetime.combine(day, WORK_END, VN)
                if end > begin:
                    if begin + left <= end:
                        return (begin + left).astimezone(UTC)
                    left -= end - begin
            day += timedelta(days=1)


def rate(n: int, fn: Callable[[], None]) -> float:
    """Calls per second of ``fn`` (which makes ``n`` calls); best of three to dodge noise."""
    best = float("inf")
    for _ in range(3):
        began = clock.perf_counter()
        fn()
        best = min(best, clock.perf_counter() - began)
    return n / best


def main() -> None:
    json_path = pop_json_arg()
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "100000"))
    rnd = random.Random(2026)
    cal = BusinessCalendar(first_year=2025, last_year=2028)
    naive = NaiveCalendar(cal)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    # Ticket-like spans: filed in 2026-2027, looked at up to ~40 calendar days later.
    starts = [base + timedelta(seconds=rnd.uniform(0, 2 * 365 * 86400)) for _ in range(n)]
    nows = [s + timedelta(seconds=rnd.uniform(0, 40 * 86400)) for s in starts]
    sla_days = [rnd.choice((3, 5, 10, 15, 20)) for _ in range(n)]
    pairs = list(zip(starts, nows, strict=True))
    adds = list(zip(starts, sla_days, strict=True))
    m = max(1, n // 20)  # the baseline is slow: measure it on a slice

    for (a, b), (s, d) in zip(pairs[:200], adds[:200], strict=True):  # same answers, or no figures
        assert abs(cal.business_seconds_between(a, b) - naive.business_seconds_between(a, b)) < 1e-6
        assert abs(cal.add_business_days(s, d) - naive.add_business_days(s, d)) <= timedelta(microseconds=1)

    def fast_between() -> None:
        f = cal.business_seconds_between
        for a, b in pairs:
            f(a, b)

    def naive_between() -> None:
        f = naive.business_seconds_between
        for a, b in pairs[:m]:
            f(a, b)

    def fast_add() -> None:
        f = cal.add_business_days
        for s, d in adds:
            f(s, d)

    def naive_add() -> None:
        f = naive.add_business_days
        for s, d in adds[:m]:
            f(s, d)

    rows = []
    results = []
    for name, fast, slow in (("business_seconds_between", fast_between, naive_between),
                             ("add_business_days", fast_add, naive_add)):
        r_fast, r_slow = rate(n, fast), rate(m, slow)
        results.append(Result("calendar", "-", name, r_fast, "calls/s", r_slow,
                              baseline_label="naive day-by-day loop", note=f"{n:,} calls"))
        rows.append([name, f"{r_fast:,.0f}", f"{r_slow:,.0f}", f"{r_fast / r_slow:.0f}x"])

    clocks = [sla.start_cycle(cal, s, d) for s, d in adds]
    tickets = list(zip(clocks, nows, strict=True))

    def sweep() -> None:
        for c, now in tickets:
            sla.used_fraction(cal, c, now)
            sla.rag(cal, c, now)
            sla.business_days_overdue(cal, c, now)
            cal.add_business_seconds(c.cycle_started_at, c.paused_seconds + 0.5 * c.budget_seconds)
            cal.add_business_seconds(c.cycle_started_at, c.paused_seconds + 0.75 * c.budget_seconds)

    began = clock.perf_counter()
    sweep()
    took = clock.perf_counter() - began

    print(f"machine: {machine()}")
    print_table("Business calendar: calls per second (fast vs naive day-by-day loop)",
                ["operation", "calls/s", "baseline naive calls/s", "ratio"], rows)
    print_table("SLA questions of one sweep (5 calendar calls per ticket)",
                ["tickets", "seconds", "tickets/s", "target"],
                [[f"{n:,}", f"{took:.2f}", f"{n / took:,.0f}", "100,000 in < 2 s"]])
    results.append(Result("calendar", "-", "SLA questions of a sweep (5 calls/ticket)", n / took,
                          "tickets/s", target=">= 50,000 (100,000 in < 2 s)",
                          met=n / took >= 50_000, note=f"{n:,} tickets in {took:.2f} s"))
    write_results(json_path, results)


if __name__ == "__main__":
    main()
