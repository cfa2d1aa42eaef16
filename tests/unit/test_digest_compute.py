"""The pure digest computation on hand-written event histories, and reporting periods.

Each history is small enough to count by hand; the expected numbers in the assertions are
those hand counts. Times are Hanoi local; the calendar is the real Vietnamese one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hotline.digests import period as P
from hotline.digests.compute import (
    Rules,
    compute_digest,
    group_view,
    percentile_nearest_rank,
    replay_tickets,
    reporter_view,
)
from hotline.digests.model import AlertRow, EventRow, GroupInfo, TicketInfo, TrendRow
from hotline.domain import sla
from hotline.domain.calendar import BusinessCalendar
from hotline.errors import InvalidInput
from tests.conftest import local

CAL = BusinessCalendar()
RULES = Rules(
    calendar=CAL,
    day_seconds=CAL.business_day_seconds,
    red_alert_threshold=1,
)
GROUPS = [
    GroupInfo(1, "mps", "Bộ Công an", "Ministry of Public Security"),
    GroupInfo(2, "moj", "Bộ Tư pháp", "Ministry of Justice"),
]
CODES = {g.code: g.id for g in GROUPS}
WEEK = P.parse_week("2026-W49")  # Monday 30 Nov - Sunday 6 Dec 2026
_ids = iter(range(1, 10**6))


def ev(tid: int, kind: str, at: datetime, to: str | None = None, **data: Any) -> EventRow:
    return EventRow(tid, kind, at, to, data, next(_ids))


def created(
    tid: int, at: datetime, days: int = 10, group: str = "mps", category: str = "data", **extra: Any
) -> EventRow:
    deadline = sla.start_cycle(CAL, at, days).deadline_at
    return ev(
        tid,
        "created",
        at,
        "new",
        category=category,
        group=group,
        priority="normal",
        sla_days=days,
        deadline=deadline.isoformat(),
        first_response_due=CAL.add_business_days(at, 1).isoformat(),
        **extra,
    )


def assigned(tid: int, at: datetime, person: int = 7, group_id: int | None = None) -> EventRow:
    data: dict[str, Any] = {"assignee_id": person}
    if group_id is not None:
        data["group_id"] = group_id
    return ev(tid, "assigned", at, "assigned", **data)


def info(tid: int, kind: str = "enterprise", reporter: int = 100) -> TicketInfo:
    return TicketInfo(tid, f"HL-2026-{tid:06d}", f"ticket {tid}", reporter, 1, kind, "Org")


def digest(
    events: list[EventRow], kinds: dict[int, str] | None = None, period: P.Period = WEEK, **kwargs: Any
):  # type: ignore[no-untyped-def]
    ids = {e.ticket_id for e in events}
    tickets = {i: info(i, (kinds or {}).get(i, "enterprise")) for i in ids}
    return compute_digest(period, events, tickets, GROUPS, RULES, categories=["data", "legal"], **kwargs)


# ---------------------------------------------------------------------------------------------
# Flow across period boundaries
# ---------------------------------------------------------------------------------------------


def test_ticket_filed_before_and_resolved_inside_counts_as_resolved_not_new() -> None:
    t0 = local(2026, 11, 25, 9)
    events = [
        created(1, t0),
        assigned(1, t0),
        ev(1, "acknowledged", t0 + timedelta(hours=1), "in_progress"),
        ev(1, "resolved", local(2026, 12, 1, 10), "resolved"),
    ]
    d = digest(events)
    assert (d.flow.new, d.flow.resolved, d.flow.closed) == (0, 1, 0)
    assert d.stock.open == 0
    # Filed Wed 25 Nov 09:00, resolved Tue 1 Dec 10:00: Wed 8 h, Thu 9, Fri 9, Mon 9, Tue 2.
    assert d.resolve_time.median_days == pytest.approx((8 + 9 + 9 + 9 + 2) / 9)


def test_events_after_the_period_are_ignored() -> None:
    t0 = local(2026, 12, 2, 9)
    events = [
        created(1, t0),
        assigned(1, t0),
        ev(1, "acknowledged", t0, "in_progress"),
        ev(1, "resolved", local(2026, 12, 8, 9), "resolved"),
        created(2, local(2026, 12, 7, 9)),
    ]
    d = digest(events)
    assert (d.flow.new, d.flow.resolved, d.stock.open) == (1, 0, 1)
    assert [t.ref for t in d.open_tickets] == ["HL-2026-000001"]


def test_a_ticket_closed_before_the_period_does_not_count() -> None:
    t0 = local(2026, 11, 2, 9)
    events = [
        created(1, t0),
        assigned(1, t0),
        ev(1, "acknowledged", t0, "in_progress"),
        ev(1, "resolved", t0 + timedelta(days=1), "resolved"),
        ev(1, "confirmed", t0 + timedelta(days=2), "closed"),
    ]
    d = digest(events)
    assert (d.flow.new, d.flow.resolved, d.flow.closed, d.stock.open) == (0, 0, 0, 0)


def test_reopen_in_the_period_restarts_the_cycle_and_counts_once() -> None:
    t0 = local(2026, 11, 16, 9)
    reopen_at = local(2026, 12, 1, 9)
    new_deadline = sla.start_cycle(CAL, reopen_at, 10).deadline_at
    events = [
        created(1, t0),
        assigned(1, t0),
        ev(1, "acknowledged", t0, "in_progress"),
        ev(1, "resolved", local(2026, 11, 20, 9), "resolved"),
        ev(1, "confirmed", local(2026, 11, 23, 9), "closed"),
        ev(1, "reopened", reopen_at, "reopened"),
        ev(1, "deadline_changed", reopen_at, deadline=new_deadline.isoformat(), reason="reopen"),
        ev(1, "acknowledged", reopen_at + timedelta(hours=1), "in_progress"),
        ev(1, "resolved", reopen_at + timedelta(hours=2), "resolved"),
        ev(1, "reopened", reopen_at + timedelta(hours=3), "reopened"),
        ev(
            1,
            "deadline_changed",
            reopen_at + timedelta(hours=3),
            deadline=sla.start_cycle(CAL, reopen_at + timedelta(hours=3), 10).deadline_at.isoformat(),
        ),
    ]
    d = digest(events)
    assert (d.flow.reopened, d.flow.resolved, d.stock.open) == (1, 1, 1)
    line = d.open_tickets[0]
    assert line.reopened == 2 and line.state == "reopened"
    assert line.deadline_at == sla.start_cycle(CAL, reopen_at + timedelta(hours=3), 10).deadline_at
    assert not line.overdue and line.rag == "green"
    # Stalled counts from the reopening (a new cycle), not from the filing.
    assert line.stalled_days == pytest.approx(
        CAL.business_days_between(reopen_at + timedelta(hours=3), WEEK.end), abs=0.01
    )


# ---------------------------------------------------------------------------------------------
# Overdue, RAG, pauses, extensions
# ---------------------------------------------------------------------------------------------


def test_friday_evening_deadline_is_not_overdue_at_the_weekend_but_is_on_monday() -> None:
    # 5 business days from Monday 30 Nov 08:00 ends Friday 4 Dec 17:00.
    events = [created(1, local(2026, 11, 30, 8), days=5), assigned(1, local(2026, 11, 30, 8))]
    sunday = digest(events)
    assert sunday.open_tickets[0].deadline_at == local(2026, 12, 4, 17)
    assert (sunday.stock.overdue, sunday.stock.red, sunday.stock.amber) == (0, 0, 1)
    monday = digest(events, period=P.date_range(date(2026, 11, 30), date(2026, 12, 7)))
    assert (monday.stock.overdue, monday.stock.red) == (1, 1)
    assert monday.open_tickets[0].days_overdue == pytest.approx(1.0)


def test_amber_from_three_quarters_of_the_budget() -> None:
    # 4 business days from Monday 08:00: 75% used at Wednesday 17:00 (end of period is Sunday).
    events = [
        created(1, local(2026, 11, 30, 8), days=4),
        assigned(1, local(2026, 11, 30, 8)),
        created(2, local(2026, 12, 4, 8), days=4),
        assigned(2, local(2026, 12, 4, 8)),
    ]
    d = digest(events)
    by_ref = {t.ticket_id: t for t in d.open_tickets}
    assert by_ref[1].rag == "red"  # due Thursday 17:00, overdue by Friday 08:00+
    assert by_ref[2].rag == "green"  # 1 of 4 days used
    assert (d.stock.green, d.stock.amber, d.stock.red) == (1, 0, 1)


def test_a_pause_stops_the_clock_and_moves_the_deadline() -> None:
    t0 = local(2026, 11, 30, 8)
    ask, answer = local(2026, 12, 1, 8), local(2026, 12, 3, 8)  # two business days waiting
    clock = sla.start_cycle(CAL, t0, 3)
    resumed = sla.resume(CAL, sla.pause(CAL, clock, ask), answer)
    base = [
        created(1, t0, days=3),
        assigned(1, t0),
        ev(1, "acknowledged", t0, "in_progress"),
        ev(1, "info_requested", ask, "waiting_reporter"),
        ev(1, "paused", ask),
    ]
    waiting = digest(base)
    line = waiting.open_tickets[0]
    assert line.waiting_reporter and not line.overdue and waiting.stock.waiting_reporter == 1
    assert line.rag == "green"  # 1 of 3 days used when the pause began
    events = [
        *base,
        ev(1, "info_provided", answer, "in_progress"),
        ev(1, "resumed", answer, deadline=resumed.deadline_at.isoformat()),
    ]
    d = digest(events)
    line = d.open_tickets[0]
    assert line.deadline_at == resumed.deadline_at == local(2026, 12, 4, 17)
    assert not line.waiting_reporter and not line.overdue and line.rag == "amber"


def test_paused_after_the_deadline_stays_overdue() -> None:
    t0 = local(2026, 11, 23, 8)
    events = [
        created(1, t0, days=2),
        assigned(1, t0),
        ev(1, "acknowledged", t0, "in_progress"),
        ev(1, "info_requested", local(2026, 11, 30, 9), "waiting_reporter"),
        ev(1, "paused", local(2026, 11, 30, 9)),
    ]
    d = digest(events)
    assert d.stock.overdue == 1 and d.open_tickets[0].waiting_reporter
    # Due Wednesday 25 Nov 17:00 (Tuesday 24 Nov is Culture Day, a holiday from 2026); the
    # pause froze the clock on Monday 30 Nov 09:00: Thu, Fri and one hour.
    assert d.open_tickets[0].deadline_at == local(2026, 11, 25, 17)
    assert d.open_tickets[0].days_overdue == pytest.approx(2 + 1 / 9, abs=0.01)


def test_approved_extension_starts_a_new_cycle_and_is_counted() -> None:
    t0 = local(2026, 11, 23, 8)
    approve = local(2026, 12, 2, 9)
    new_deadline = local(2026, 12, 18, 17)
    events = [
        created(1, t0, days=5),
        assigned(1, t0),
        ev(1, "acknowledged", t0, "in_progress"),
        ev(1, "extension_requested", local(2026, 12, 1, 9), extension_id=1),
        ev(1, "extension_approved", approve, extension_id=1),
        ev(1, "deadline_changed", approve, deadline=new_deadline.isoformat(), reason="extension"),
        ev(1, "extension_requested", local(2026, 12, 3, 9), extension_id=2),
        ev(1, "extension_refused", local(2026, 12, 3, 10), extension_id=2),
    ]
    d = digest(events)
    assert (d.extensions.requested, d.extensions.approved, d.extensions.refused) == (2, 1, 1)
    line = d.open_tickets[0]
    assert line.deadline_at == new_deadline and not line.overdue and line.rag == "green"
    assert (line.extensions_requested, line.extensions_approved) == (2, 1)
    assert d.groups[0].extensions.requested == 2


# ---------------------------------------------------------------------------------------------
# Attribution, first response, satisfaction, percentiles, stalled, trend, alerts
# ---------------------------------------------------------------------------------------------


def test_group_and_category_as_of_the_end() -> None:
    t0 = local(2026, 12, 1, 9)
    events = [
        created(1, t0),
        assigned(1, t0),
        ev(1, "recategorised", t0 + timedelta(hours=1), new="legal", old="data", group="moj"),
        created(2, t0),
        assigned(2, t0),
        assigned(2, t0 + timedelta(hours=2), person=8, group_id=2),
        created(3, t0),
        assigned(3, t0),
        ev(3, "recategorised", local(2026, 12, 8, 9), new="legal", group="moj"),
    ]  # after the end
    d = digest(events)
    mps, moj = d.groups
    assert (mps.flow.new, mps.stock.open, moj.flow.new, moj.stock.open) == (1, 1, 2, 2)
    cats = {c.key: c for c in d.by_category}
    assert (cats["data"].flow.new, cats["legal"].flow.new) == (2, 1)
    assert {t.ticket_id: t.assignee_id for t in d.open_tickets} == {1: 7, 2: 8, 3: 7}


def test_first_response_met_missed_pending_and_rejection_counts_as_response() -> None:
    mon = local(2026, 11, 30, 9)
    late_sunday = local(2026, 12, 6, 20)  # due Monday 7 Dec 17:00: still pending at the end
    events = [
        created(1, mon),
        assigned(1, mon),
        ev(1, "acknowledged", mon + timedelta(hours=3), "in_progress"),
        created(2, mon),
        assigned(2, mon),
        ev(2, "acknowledged", local(2026, 12, 2, 9), "in_progress"),
        created(3, mon),
        assigned(3, mon),  # never acknowledged, due passed: missed
        created(4, mon),
        ev(4, "rejected", mon + timedelta(hours=1), "rejected"),
        created(5, late_sunday),
        created(6, local(2026, 11, 27, 9)),
        assigned(6, local(2026, 11, 27, 9)),
    ]  # filed before
    d = digest(events)
    fr = d.first_response
    assert (fr.met, fr.missed, fr.pending) == (2, 2, 1)
    assert fr.percent == pytest.approx(50.0)


def test_satisfaction_takes_each_tickets_latest_rating_in_the_period() -> None:
    t0 = local(2026, 11, 20, 9)
    events = [
        created(1, t0),
        ev(1, "rated", local(2026, 11, 27, 9), stars=1),
        ev(1, "rated", local(2026, 12, 1, 9), stars=2),
        ev(1, "rated", local(2026, 12, 2, 9), stars=4),
        created(2, t0),
        ev(2, "rated", local(2026, 12, 3, 9), stars=5),
        created(3, t0),
        ev(3, "rated", local(2026, 12, 9, 9), stars=1),
    ]
    d = digest(events, kinds={2: "ministry"})
    assert (d.satisfaction.count, d.satisfaction.total, d.satisfaction.mean) == (2, 9, 4.5)
    kinds = {k.key: k for k in d.by_reporter_kind}
    assert (kinds["enterprise"].satisfaction.mean, kinds["ministry"].satisfaction.mean) == (4, 5)
    assert [k.key for k in d.by_reporter_kind] == ["enterprise", "ministry", "locality", "other"]


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile_nearest_rank(values, 90) == 9.0
    assert percentile_nearest_rank(values, 50) == 5.0
    assert percentile_nearest_rank([3.0], 90) == 3.0
    assert percentile_nearest_rank([5.0, 1.0, 3.0], 90) == 5.0


def test_stalled_lists_the_ten_longest_silent_open_tickets() -> None:
    events = []
    for i in range(1, 16):
        at = local(2026, 11, 2, 9) + timedelta(days=i)
        events += [created(i, at, days=60), assigned(i, at)]
    # Progress on ticket 1 late in the period: it drops out of the ten.
    events.append(ev(1, "message", local(2026, 12, 4, 9)))
    # An escalation is not progress.
    events.append(ev(2, "escalated", local(2026, 12, 4, 9), level="l1"))
    d = digest(events)
    assert len(d.stalled) == 10
    assert [s.ticket_id for s in d.stalled] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert d.escalations == 1
    days = [s.stalled_days for s in d.stalled]
    assert days == sorted(days, reverse=True)


def test_trend_counts_distinct_tickets_per_week_up_to_the_period_end() -> None:
    month = P.parse_month("2026-11")
    rows = [
        TrendRow(1, "created", local(2026, 11, 30, 9)),
        TrendRow(2, "created", local(2026, 11, 30, 10)),
        TrendRow(1, "resolved", local(2026, 11, 30, 11)),
        TrendRow(1, "resolved", local(2026, 11, 30, 12)),
        TrendRow(3, "created", local(2026, 12, 1, 9)),  # after the month: not counted
        TrendRow(4, "created", local(2026, 9, 7, 9)),
    ]  # week 37: the first of the twelve
    d = compute_digest(month, [], {}, GROUPS, RULES, trend=rows)
    assert len(d.trend) == 12
    assert d.trend[-1].label == "2026-W49" and (d.trend[-1].opened, d.trend[-1].resolved) == (2, 1)
    assert d.trend[0].label == "2026-W38" and d.trend[0].opened == 0
    assert sum(w.opened for w in d.trend) == 2


def test_red_alerts_overlapping_the_period() -> None:
    t0 = local(2026, 11, 2, 8)
    events = [created(1, t0, days=2), assigned(1, t0), created(2, t0, days=2), assigned(2, t0)]
    alerts = [
        AlertRow(1, local(2026, 11, 10, 9), None, 5),  # still red: count is replayed (2)
        AlertRow(2, local(2026, 11, 10, 9), local(2026, 12, 2, 9), 4),  # cleared inside
        AlertRow(2, local(2026, 11, 1, 9), local(2026, 11, 5, 9), 3),  # cleared before
        AlertRow(1, local(2026, 12, 9, 9), None, 9),
    ]  # raised after
    d = digest(events, alerts=alerts)
    assert [(a.code, a.open_at_end, a.overdue_count) for a in d.red_alerts] == [
        ("mps", True, 2),
        ("moj", False, 4),
    ]
    assert [g.red_alert for g in d.groups] == [True, False]


def test_views_for_a_group_lead_and_a_reporter() -> None:
    t0 = local(2026, 11, 30, 9)
    events = [
        created(1, t0, days=2),
        assigned(1, t0),  # due Wed 2 Dec: overdue at the end
        created(2, t0, days=6),
        assigned(2, t0),  # due Tue 8 Dec: due next week
        created(3, t0, days=20),
        assigned(3, t0),  # later
        created(4, t0, group="moj"),
        assigned(4, t0, group_id=2),
    ]
    d = digest(events)
    view = group_view(d, "mps")
    assert [t.ticket_id for t in view.queue] == [1, 2, 3]
    assert [t.ticket_id for t in view.overdue] == [1]
    assert [t.ticket_id for t in view.due_soon] == [2]
    assert view.due_until == WEEK.end + timedelta(days=7)
    with pytest.raises(KeyError):
        group_view(d, "nope")
    assert [t.ticket_id for t in reporter_view(d, 100).tickets] == [1, 2, 4, 3]  # by deadline
    assert reporter_view(d, 999).tickets == ()


def test_created_event_without_a_recorded_deadline_falls_back_to_the_calendar() -> None:
    t0 = local(2026, 11, 30, 8)
    legacy = ev(1, "created", t0, "new", category="data", group="mps", sla_days=5)
    replays, _ = replay_tickets([legacy], RULES, CODES, WEEK.end)
    assert replays[1].deadline == local(2026, 12, 4, 17)
    assert replays[1].first_response_due == local(2026, 11, 30, 17)


def test_digest_is_deterministic_whatever_the_event_order() -> None:
    t0 = local(2026, 12, 1, 9)
    events = [
        created(1, t0),
        assigned(1, t0),
        ev(1, "acknowledged", t0 + timedelta(hours=1), "in_progress"),
        ev(1, "resolved", t0 + timedelta(hours=2), "resolved"),
        created(2, t0),
        assigned(2, t0),
    ]
    assert digest(events) == digest(list(reversed(events)))


# ---------------------------------------------------------------------------------------------
# Periods
# ---------------------------------------------------------------------------------------------


def test_periods_are_local_midnights() -> None:
    week = P.parse_week("2026-W48")
    assert (week.first_day, week.last_day, week.label) == (date(2026, 11, 23), date(2026, 11, 29), "2026-W48")
    assert week.start == local(2026, 11, 23, 0) and week.end == local(2026, 11, 30, 0)
    assert P.parse_week("2026w8").label == "2026-W08"
    assert P.parse_week("2026-W53").last_day == date(2027, 1, 3)  # 2026 has 53 ISO weeks
    month = P.parse_month("2026-02")
    assert (month.first_day, month.last_day, month.days) == (date(2026, 2, 1), date(2026, 2, 28), 28)
    assert P.parse_month("2026-12").end == local(2027, 1, 1, 0)
    rng = P.date_range(date(2026, 11, 3), date(2026, 11, 3))
    assert rng.days == 1 and rng.label == "20261103-20261103"
    assert P.parse_label("2026-W48") == week and P.parse_label("2026-02") == month


@pytest.mark.parametrize("text", ["2026-W54", "2027-W53", "2026-48", "W48", "", "2026-W"])
def test_bad_weeks(text: str) -> None:
    with pytest.raises(InvalidInput):
        P.parse_week(text)


@pytest.mark.parametrize("text", ["2026-13", "2026-0", "2026/11", "11-2026", "x"])
def test_bad_months(text: str) -> None:
    with pytest.raises(InvalidInput):
        P.parse_month(text)


def test_bad_dates_and_ranges() -> None:
    for text in ("2026-02-30", "30/11/2026", "2026-1-1", ""):
        with pytest.raises(InvalidInput):
            P.parse_date(text)
    with pytest.raises(InvalidInput, match="before the start"):
        P.date_range(date(2026, 11, 2), date(2026, 11, 1))


def test_last_complete_periods() -> None:
    monday_8am = local(2026, 11, 30, 8)
    assert P.last_complete_week(monday_8am).label == "2026-W48"
    assert P.last_complete_week(local(2026, 11, 29, 23, 59)).label == "2026-W47"
    assert P.last_complete_week(local(2026, 1, 5, 8)).label == "2026-W01"
    assert P.last_complete_week(local(2026, 1, 4, 8)).label == "2025-W52"
    assert P.last_complete_month(local(2026, 12, 10, 8)).label == "2026-11"
    assert P.last_complete_month(local(2026, 1, 10, 8)).label == "2025-12"
    weeks = P.trend_weeks(P.parse_week("2026-W02"))
    assert [w.label for w in weeks][:2] == ["2025-W43", "2025-W44"] and weeks[-1].label == "2026-W02"
