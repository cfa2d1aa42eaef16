"""Build and render the leaders' weekly digest over a large synthetic history.

Setup (not timed): a temporary database gets N tickets (default 100,000) spread over two years
with about ten events each (1,000,000 by default), bulk-inserted directly: plausible lifecycles
(acknowledgement, updates, questions and answers with the SLA pause, extensions, resolution,
confirmation or auto-close, ratings, reopenings, rejections, escalations), recent tickets still
open, a few red alerts.

Timed, as ``hotline digest`` does it: load the period's rows and replay the tickets
(``build_digest``), then render the Telegram messages, the HTML report and the chart PNG.
Baseline, measured in the same run on the same database: a bare
``SELECT kind, count(*) FROM ticket_events GROUP BY kind`` (a full pass over the events).

Usage: python bench/bench_digest.py [N] [--sqlite-only] [--postgres-only] [--render DIR] [--json FILE]
``--render DIR`` also writes the leaders' files (vi and en) and a group lead's report there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from bench.common import (
    Result,
    machine,
    open_fresh_app,
    pop_json_arg,
    postgres_available,
    print_table,
    temp_database,
    write_results,
)
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.digests import build_digest
from hotline.digests import period as P
from hotline.digests.chart import chart_png
from hotline.digests.compute import group_view
from hotline.digests.render import html_report, telegram_messages
from hotline.domain import sla
from storage.models import (
    GroupAlert,
    Organisation,
    Person,
    Ticket,
    TicketEvent,
)

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # Monday 7 Dec 2026, 08:00 in Hanoi
WEEKS = 104
KINDS = ["enterprise"] * 5 + ["ministry"] * 3 + ["locality"] * 3 + ["other"]
WORDS = (
    "dữ liệu",
    "thủ tục",
    "hồ sơ",
    "nghị định",
    "kết nối",
    "giải ngân",
    "đấu thầu",
    "cơ sở dữ liệu",
    "dịch vụ công",
    "phân cấp",
    "chữ ký số",
    "thông tư",
    "ngân sách",
    "hạ tầng",
    "an toàn thông tin",
)


class Builder:
    """Synthetic rows: ticket lifecycles cut at ``NOW``."""

    def __init__(
        self,
        app: App,
        groups: dict[str, int],
        staff: dict[int, list[int]],
        reporters: list[tuple[int, int]],
        seed: int = 7,
    ) -> None:
        self.app = app
        self.cal = app.calendar
        self.rng = random.Random(seed)
        self.groups = groups
        self.staff = staff
        self.reporters = reporters
        self.tickets: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.event_id = 0

    def _event(
        self,
        tid: int,
        kind: str,
        at: datetime,
        to: str | None = None,
        frm: str | None = None,
        actor: int | None = None,
        note: str | None = None,
        **data: Any,
    ) -> bool:
        if at >= NOW:
            return False
        self.event_id += 1
        self.events.append(
            {
                "id": self.event_id,
                "ticket_id": tid,
                "kind": kind,
                "actor_id": actor,
                "at": at,
                "from_state": frm,
                "to_state": to,
                "note": note,
                "data": data,
            }
        )
        return True

    def ticket(self, tid: int) -> None:
        rng, cal, tax = self.rng, self.cal, self.app.taxonomy
        first_event = len(self.events)
        created = NOW - timedelta(seconds=rng.random() * WEEKS * 7 * 86400)
        code = rng.choice(list(tax.categories))
        cat = tax.categories[code]
        gid = self.groups[cat.group]
        critical = rng.random() < 0.04
        days = min(cat.sla_days, 3) if critical else cat.sla_days
        clock = sla.start_cycle(cal, created, days)
        fr_due = cal.add_business_days(created, 1)
        reporter, org = rng.choice(self.reporters)
        assignee = rng.choice(self.staff[gid])
        state = "new"
        ev = self._event
        ev(
            tid,
            "created",
            created,
            "new",
            actor=reporter,
            category=code,
            group=cat.group,
            priority="critical" if critical else "normal",
            sla_days=days,
            deadline=clock.deadline_at.isoformat(),
            first_response_due=fr_due.isoformat(),
        )
        t = created
        ev(tid, "assigned", t, "assigned", "new", assignee_id=assignee, group_id=gid)
        state = "assigned"
        acked = resolved = closed = None
        ext_req = ext_ok = reopen = 0
        rating = None
        paused_since = None
        if rng.random() < 0.03:  # out of scope
            t = cal.add_business_days(t, rng.random() * 2)
            if ev(tid, "rejected", t, "rejected", state, note="ngoài phạm vi"):
                state, closed = "rejected", t
        else:
            # Times only move forward, so every history is one the services could have written.
            t = cal.add_business_days(created, rng.random() ** 2 * 2)
            if ev(tid, "acknowledged", t, "in_progress", state, actor=assignee):
                state, acked = "in_progress", t
            stuck = rng.random() < 0.015
            work = max(0.2, rng.lognormvariate(0, 0.6) * days * (3 if stuck else 0.55))
            done = cal.add_business_days(created, work)
            cursor = t
            if state == "in_progress" and rng.random() < 0.15:
                ask = cal.add_business_days(cursor, rng.random() * work / 3)
                if ev(
                    tid,
                    "info_requested",
                    ask,
                    "waiting_reporter",
                    state,
                    actor=assignee,
                    note="bổ sung hồ sơ",
                ):
                    ev(tid, "paused", ask)
                    state, paused_since = "waiting_reporter", ask
                    clock = sla.pause(cal, clock, ask)
                    answer = cal.add_business_days(ask, rng.random() * 4)
                    cursor = answer
                    if ev(
                        tid, "info_provided", answer, "in_progress", state, actor=reporter, note="đã bổ sung"
                    ):
                        clock = sla.resume(cal, clock, answer)
                        ev(tid, "resumed", answer, deadline=clock.deadline_at.isoformat())
                        state, paused_since = "in_progress", None
            if state == "in_progress" and rng.random() < 0.08:
                req = cal.add_business_days(cursor, rng.random() * work / 3)
                if ev(tid, "extension_requested", req, actor=assignee, note="cần phối hợp", extension_id=tid):
                    ext_req = 1
                    decided = req + timedelta(hours=1 + rng.random() * 30)
                    cursor = decided
                    if rng.random() < 0.7:
                        new = max(clock.deadline_at, decided) + timedelta(days=7)
                        if ev(tid, "extension_approved", decided, extension_id=tid):
                            clock = sla.extend(cal, clock, new, decided)
                            ev(
                                tid,
                                "deadline_changed",
                                decided,
                                deadline=clock.deadline_at.isoformat(),
                                reason="extension",
                            )
                            ext_ok = 1
                    else:
                        ev(tid, "extension_refused", decided, extension_id=tid)
            done = max(done, cursor + timedelta(hours=1))
            for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5))):
                when = t + (done - t) * rng.random()
                ev(tid, "message", when, actor=assignee, note="đang xử lý")
            if rng.random() < 0.3:
                ev(tid, "info_added", t + (done - t) * rng.random(), actor=reporter, note="thêm tài liệu")
            if rng.random() < 0.4:
                ev(tid, "escalated", cal.add_business_days(created, days / 2), level="reminder", cycle=1)
            if clock.deadline_at < min(done, NOW) and rng.random() < 0.7:
                ev(tid, "escalated", clock.deadline_at, level="l2", cycle=clock.cycle)
            if state == "in_progress" and ev(
                tid, "resolved", done, "resolved", state, actor=assignee, note="xong"
            ):
                state, resolved = "resolved", done
                if rng.random() < 0.6:
                    at, kind = done + timedelta(hours=rng.random() * 60), "confirmed"
                else:
                    at, kind = cal.add_business_days(done, 5), "auto_closed"
                if ev(tid, kind, at, "closed", state, actor=reporter if kind == "confirmed" else None):
                    state, closed = "closed", at
                    if rng.random() < 0.5 and ev(
                        tid, "rated", at, actor=reporter, stars=rng.choice((3, 4, 4, 5, 5))
                    ):
                        rating = 4
                    if rng.random() < 0.04:
                        again = at + timedelta(hours=rng.random() * 48)
                        if ev(tid, "reopened", again, "reopened", state, actor=reporter, note="chưa xong"):
                            clock = sla.restart(cal, clock, again, days)
                            ev(
                                tid,
                                "deadline_changed",
                                again,
                                deadline=clock.deadline_at.isoformat(),
                                reason="reopen",
                            )
                            state, closed, resolved, reopen = "reopened", None, None, 1
                            back = again + timedelta(hours=1 + rng.random() * 20)
                            if ev(tid, "acknowledged", back, "in_progress", state, actor=assignee):
                                state = "in_progress"
                                fixed = cal.add_business_days(back, rng.random() * days * 0.5)
                                if ev(tid, "resolved", fixed, "resolved", state, actor=assignee, note="xong"):
                                    state, resolved = "resolved", fixed
                                    end = fixed + timedelta(hours=rng.random() * 48)
                                    if ev(tid, "confirmed", end, "closed", state, actor=reporter):
                                        state, closed = "closed", end
        mine = sorted((e for e in self.events[first_event:] if e["to_state"]), key=lambda e: e["at"])
        assert mine[-1]["to_state"] == state, f"synthetic history of ticket {tid} is out of order"
        words = " ".join(rng.sample(WORDS, 4))
        title = f"Vướng mắc về {words} số {tid}"
        year = created.year
        self.tickets.append(
            {
                "id": tid,
                "ref": f"HL-{year}-{tid:06d}",
                "year": year,
                "seq": tid,
                "check_code": "x" * 12,
                "reporter_id": reporter,
                "organisation_id": org,
                "contact_id": None,
                "channel": "telegram",
                "language": "vi",
                "category": code,
                "group_id": gid,
                "assignee_id": assignee,
                "state": state,
                "priority": "critical" if critical else "normal",
                "needs_triage": False,
                "classifier_confidence": 0.9,
                "title": title,
                "description": title,
                "sla_days": days,
                "cycle": clock.cycle,
                "accepted_at": created,
                "cycle_started_at": clock.cycle_started_at,
                "budget_seconds": clock.budget_seconds,
                "paused_seconds": clock.paused_seconds,
                "paused_since": paused_since,
                "deadline_at": clock.deadline_at,
                "first_response_due_at": fr_due,
                "acknowledged_at": acked,
                "last_progress_at": acked,
                "resolved_at": resolved,
                "closed_at": closed,
                "extension_count": ext_ok,
                "extension_requests": ext_req,
                "reopen_count": reopen,
                "duplicate_of_id": None,
                "rating": rating,
                "rating_comment": None,
                "created_at": created,
                "updated_at": created,
            }
        )


async def _bulk(app: App, table: Any, rows: list[dict[str, Any]], chunk: int = 20000) -> None:
    for i in range(0, len(rows), chunk):
        async with app.engine.begin() as conn:
            await conn.execute(insert(table), rows[i : i + chunk])


async def populate(app: App, n: int) -> tuple[int, int]:
    async with app.uow() as uow:
        groups = {g.code: g.id for g in await uow.people.groups()}
    now = NOW
    people: list[dict[str, Any]] = []
    staff: dict[int, list[int]] = {}
    pid = 0
    for gid in groups.values():
        for role in ("lead", "member", "member", "member"):
            pid += 1
            people.append(
                {
                    "id": pid,
                    "display_name": f"Cán bộ {pid}",
                    "role": role,
                    "organisation_id": None,
                    "group_id": gid,
                    "language": "vi",
                    "digest_opt_in": False,
                    "active": True,
                    "last_assigned_at": None,
                    "created_at": now,
                }
            )
            if role == "member":
                staff.setdefault(gid, []).append(pid)
    for _ in range(2):
        pid += 1
        people.append(
            {
                "id": pid,
                "display_name": f"Lãnh đạo {pid}",
                "role": "leader",
                "organisation_id": None,
                "group_id": None,
                "language": "vi",
                "digest_opt_in": False,
                "active": True,
                "last_assigned_at": None,
                "created_at": now,
            }
        )
    orgs, reporters = [], []
    for oid in range(1, 2001):
        kind = KINDS[oid % len(KINDS)]
        orgs.append({"id": oid, "name": f"Đơn vị {oid}", "kind": kind, "tax_code": None, "created_at": now})
        pid += 1
        people.append(
            {
                "id": pid,
                "display_name": f"Người phản ánh {pid}",
                "role": "reporter",
                "organisation_id": oid,
                "group_id": None,
                "language": "vi",
                "digest_opt_in": oid % 10 == 0,
                "active": True,
                "last_assigned_at": None,
                "created_at": now,
            }
        )
        reporters.append((pid, oid))
    await _bulk(app, Organisation.__table__, orgs)
    await _bulk(app, Person.__table__, people)
    builder = Builder(app, groups, staff, reporters)
    for tid in range(1, n + 1):
        builder.ticket(tid)
    await _bulk(app, Ticket.__table__, builder.tickets)
    await _bulk(app, TicketEvent.__table__, builder.events)
    red = [gid for code, gid in groups.items() if code in ("mof", "mps")]
    await _bulk(
        app,
        GroupAlert.__table__,
        [
            {
                "group_id": gid,
                "raised_at": NOW - timedelta(days=20 + i),
                "cleared_at": None,
                "overdue_count": 10,
            }
            for i, gid in enumerate(red)
        ],
    )
    if app.engine.dialect.name == "postgresql":
        async with app.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    else:
        async with app.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    return len(builder.tickets), len(builder.events)


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(), time.perf_counter() - start


def write_samples(app: App, digest: Any, render_to: Path, messages: int, html_chars: int) -> None:
    """The leaders' files in both languages and a group lead's, to look at."""
    render_to.mkdir(parents=True, exist_ok=True)
    for lang in ("vi", "en"):
        png = chart_png(digest, lang)
        (render_to / f"leaders-{lang}.png").write_bytes(png)
        (render_to / f"leaders-{lang}.html").write_text(
            html_report(digest, lang, app.taxonomy, chart_png=png, generated_at=NOW), "utf-8"
        )
        (render_to / f"leaders-{lang}.txt").write_text(
            "\n\n-----\n\n".join(telegram_messages(digest, lang, app.taxonomy)), "utf-8"
        )
    view = group_view(digest, "mof")
    (render_to / "group-mof-vi.html").write_text(
        html_report(view, "vi", app.taxonomy, generated_at=NOW), "utf-8"
    )
    (render_to / "group-mof-vi.txt").write_text(
        "\n\n-----\n\n".join(telegram_messages(view, "vi", app.taxonomy)), "utf-8"
    )
    summary = {
        "flow": str(digest.flow),
        "stock": str(digest.stock),
        "messages": messages,
        "html_chars": html_chars,
    }
    (render_to / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")


async def measure(app: App, render_to: Path | None) -> dict[str, float]:
    period = P.last_complete_week(NOW)
    # Baseline: one full pass over the events, the least any event-sourced count must cost.
    start = time.perf_counter()
    async with app.engine.connect() as conn:
        (await conn.execute(text("SELECT kind, count(*) FROM ticket_events GROUP BY kind"))).all()
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    digest = await build_digest(app, period)
    build = time.perf_counter() - start
    start = time.perf_counter()
    messages = telegram_messages(digest, "vi", app.taxonomy, generated_at=NOW)
    png = chart_png(digest, "vi")
    page = html_report(digest, "vi", app.taxonomy, chart_png=png, generated_at=NOW)
    render = time.perf_counter() - start
    if render_to is not None:
        await asyncio.to_thread(write_samples, app, digest, render_to, len(messages), len(page))
    return {
        "baseline": baseline,
        "build": build,
        "render": render,
        "open": digest.stock.open,
        "messages": len(messages),
    }


async def run(kind: str, n: int, render_to: Path | None) -> list[object]:
    async with temp_database(kind) as url:
        app = await open_fresh_app(url, ManualClock(NOW))
        start = time.perf_counter()
        tickets, events = await populate(app, n)
        setup = time.perf_counter() - start
        print(f"{kind}: {tickets:,} tickets, {events:,} events inserted in {setup:.0f} s", flush=True)
        await measure(app, None)  # warm caches, imports, the calendar's years
        best: dict[str, float] | None = None
        for _ in range(3):
            result = await measure(app, render_to if best is None else None)
            if best is None or result["build"] + result["render"] < best["build"] + best["render"]:
                best = result
        await app.close()
        assert best is not None
        total = best["build"] + best["render"]
        return [
            kind,
            f"{tickets:,}",
            f"{events:,}",
            f"{int(best['open']):,}",
            f"{best['build']:.2f}",
            f"{best['render']:.2f}",
            f"{total:.2f}",
            f"{best['baseline']:.2f}",
            f"{total / best['baseline']:.1f}",
        ]


def main() -> None:
    json_path = pop_json_arg()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--render", type=Path, default=None)
    args = parser.parse_args()
    kinds = [] if args.postgres_only else ["sqlite"]
    if not args.sqlite_only:
        if postgres_available():
            kinds.append("postgres")
        else:
            print("PostgreSQL not reachable: skipped")
    rows = [asyncio.run(run(kind, args.n, args.render and args.render / kind)) for kind in kinds]
    print(machine())
    print_table(
        "leaders' weekly digest: build (load + replay) and render (Telegram, HTML, chart), best of 3",
        [
            "database",
            "tickets",
            "events",
            "open at end",
            "build s",
            "render s",
            "total s",
            "baseline s (GROUP BY kind)",
            "total / baseline",
        ],
        rows,
    )
    results = []
    for kind, tickets, events, _open, _build, _render, total, baseline, _ratio in rows:
        full = int(str(tickets).replace(",", "")) >= 100_000
        results.append(Result(
            "digest", str(kind), "weekly digest build + render", float(str(total)), "s",
            float(str(baseline)), baseline_label="SELECT kind, count(*) GROUP BY kind, s",
            target="< 3 at 100,000 tickets" if full else "(< 3 s at 100,000 tickets)",
            met=float(str(total)) < 3 if full else None,
            note=f"{tickets} tickets, {events} events, best of 3"))
    write_results(json_path, results)


if __name__ == "__main__":
    main()
