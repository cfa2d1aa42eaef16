"""Inbound events per second through the conversation engine, to committed tickets + outbox rows.

Workload: registered reporters each file a report the fast way -- one message (draft and
classification reply) and one tap on "send" (ticket filed, routed to the least-loaded member,
member notified, reply written) -- so every two events commit one ticket and at least three
outbox messages. Each event is one transaction with de-duplication, the caller's contact, person,
step and daily count in one query, the handler's work and the outbox writes, exactly as the chat
adapters call it.

Baseline, measured in the same run on the same engine: one committed transaction inserting one
row. The ratio says how many bare commits one engine event costs.

The scripted classifier is used by default so the figure is the engine's and the database's;
``--real-classifier`` adds the trained model's cost (measured separately, per call).

Usage: python bench/bench_engine.py [N_REPORTS] [--sqlite-only] [--real-classifier]
       [--inline-sqlite] [--profile [--tottime]]

``--inline-sqlite`` adds an EXPERIMENT row: the same run with aiosqlite's calls executed on the
event-loop thread (no worker-thread hand-off per call), to show how much of the cost is the
driver's thread hops rather than the engine.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select, text

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
from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain import payloads as P
from hotline.domain.enums import OrgKind, Role
from hotline.services import people
from storage.models import OutboxMessage, Ticket

REPORTERS = 50
MEMBERS_PER_GROUP = 3
TEXTS = [
    "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp, hồ sơ bị trả lại",
    "Mạng cáp quang tại khu công nghệ cao chưa được kết nối, nền tảng số không truy cập được",
    "Provincial land data is not shared with the national data platform",
]


async def _setup(url: str, n: int) -> tuple[App, list[str], ManualClock]:
    clock = ManualClock(datetime(2026, 12, 7, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
    app = await open_fresh_app(url, clock, daily_report_limit=10**9)
    users: list[str] = []
    async with app.uow() as uow:
        for group in app.taxonomy.groups:
            for i in range(MEMBERS_PER_GROUP):
                issued = await people.create_invite(uow, app, Role.MEMBER, group)
                contact = await people.touch_contact(uow, app, "console", f"{group}{i}",
                                                     f"{group}{i}", f"Member {group} {i}")
                await people.join(uow, app, contact, issued.code)
        for r in range(REPORTERS):
            contact = await people.touch_contact(uow, app, "console", f"rep{r}", f"rep{r}",
                                                 f"Reporter {r}")
            await people.register_reporter(
                uow, app, contact, organisation_name=f"Org {r}", kind=OrgKind.ENTERPRISE,
                contact_name=f"Reporter {r}")
            users.append(contact.external_id)
        await uow.commit()
    return app, users, clock


async def _baseline(app: App, n: int) -> float:
    """Wall seconds for ``n`` committed transactions inserting one row each."""
    async with app.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE bench_bare (id INTEGER PRIMARY KEY, body TEXT)"))
    start = time.perf_counter()
    for i in range(n):
        async with app.engine.begin() as conn:
            await conn.execute(text("INSERT INTO bench_bare (id, body) VALUES (:i, :b)"),
                               {"i": i, "b": "x" * 200})
    return time.perf_counter() - start


async def _workload(app: App, users: list[str], clock: ManualClock,
                    n: int) -> tuple[float, float, int, int]:
    """(wall s, CPU s of this process, SQL statements, events) for ``n`` reports: ``2 n``
    events, plus one "no, file mine" for each report the similarity check answered with
    similar tickets (the texts repeat, so many are)."""
    engine = Engine(app)
    scripted = [ScriptedUser(engine, u) for u in users]
    statements = 0
    events = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(app.engine.sync_engine, "before_cursor_execute", count)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        user = scripted[i % len(scripted)]
        await user.say(f"{TEXTS[i % len(TEXTS)]} #{i}")
        if any(b.payload.startswith(P.SIMILAR_FILE + ":") for b in user.buttons()):
            await user.press(user.payload(P.SIMILAR_FILE))
            events += 1
        await user.press(user.payload(P.DRAFT_FILE))
        events += 2
        clock.advance(seconds=1)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    event.remove(app.engine.sync_engine, "before_cursor_execute", count)
    return wall, cpu, statements, events


async def _statement_cost(app: App, n: int = 1000) -> float:
    """Wall seconds of one trivial ``SELECT 1`` through an ``AsyncSession`` on this engine."""
    async with app.sessions() as session:
        for _ in range(50):
            await session.execute(text("SELECT 1"))
        start = time.perf_counter()
        for _ in range(n):
            await session.execute(text("SELECT 1"))
        return (time.perf_counter() - start) / n


def inline_sqlite() -> None:
    """EXPERIMENT, not how the product runs: execute aiosqlite's calls on the event-loop
    thread instead of its worker thread, to measure what the thread hand-offs cost."""
    import aiosqlite
    import aiosqlite.core

    async def _inline(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    original = aiosqlite.connect

    def connect(database: Any, **kwargs: Any) -> Any:
        return original(database, **{**kwargs, "check_same_thread": False})

    aiosqlite.core.Connection._execute = _inline  # type: ignore[method-assign]
    aiosqlite.connect = connect  # type: ignore[assignment]


async def run(kind: str, n: int, *, real: bool, profile: bool, inline: bool) -> list[object]:
    async with temp_database(kind) as url:
        app, users, clock = await _setup(url, n)
        try:
            if not real:
                app._classifier = ScriptedClassifier()  # type: ignore[assignment]
            else:
                app.classifier().classify("khởi động")  # train/load before timing
            await _workload(app, users, clock, min(50, n))  # warm-up: caches, prepared plans
            bare = await _baseline(app, n)
            statement = await _statement_cost(app)
            profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU, not waits
            if profiler:
                profiler.enable()
            elapsed, cpu, statements, events = await _workload(app, users, clock, n)
            if profiler:
                profiler.disable()
                order = "tottime" if "--tottime" in sys.argv else "cumulative"
                pstats.Stats(profiler).sort_stats(order).print_stats(
                    "handlers|services|storage|hotline", 40)
            async with app.uow() as uow:
                tickets = (await uow.session.execute(select(func.count()).select_from(Ticket)))
                outbox = (await uow.session.execute(
                    select(func.count()).select_from(OutboxMessage)))
                filed, queued = tickets.scalar_one(), outbox.scalar_one()
        finally:
            await app.close()
    per_event = elapsed / events
    per_bare = bare / n
    label = kind + (" (inline experiment)" if inline else "")
    return [label, "real" if real else "scripted", events, f"{events / elapsed:,.0f}",
            f"{n / elapsed:,.0f}", f"{cpu / events * 1e3:.1f}", f"{statements / events:.1f}",
            f"{statement * 1e6:,.0f}", f"{n / bare:,.0f}", f"{per_event / per_bare:.1f}",
            f"{per_event / (statement * statements / events):.1f}", f"{filed} / {queued}"]


async def classifier_cost(n: int = 2000) -> list[object]:
    from hotline.classifier import load_classifier  # type: ignore[attr-defined]
    from hotline.taxonomy import load_taxonomy

    model = load_classifier(cache_dir=None, taxonomy=load_taxonomy())
    start = time.perf_counter()
    for i in range(n):
        model.classify(f"{TEXTS[i % len(TEXTS)]} #{i}")
    elapsed = time.perf_counter() - start
    return ["classifier", n, f"{n / elapsed:,.0f} calls/s", f"{elapsed / n * 1e6:,.0f} µs/call"]


def results(rows: list[list[object]]) -> list[Result]:
    """Headline rows for ``bench/run``: events/s against bare one-row commits/s."""
    out = []
    for row in rows:
        label, events_s, bare_s = str(row[0]), _number(row[3]), _number(row[8])
        out.append(Result(
            benchmark="engine", database=label.split()[0], figure="inbound events/s to commit",
            value=events_s, unit="events/s", baseline=bare_s, ratio=round(events_s / bare_s, 3),
            baseline_label="bare one-row commits/s",
            target=">= 1,000 events/s" if label == "sqlite" else "",
            met=events_s >= 1000 if label == "sqlite" else None,
            note=f"{row[6]} SQL statements/event, {row[5]} CPU ms/event"
                 + (" (inline-driver experiment)" if "inline" in label else "")))
    return out


def _number(text: object) -> float:
    return float(str(text).replace(",", ""))


def main() -> None:
    json_path = pop_json_arg()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 2000
    real = "--real-classifier" in sys.argv
    profile = "--profile" in sys.argv
    kinds = ["sqlite"]
    if "--sqlite-only" not in sys.argv and postgres_available():
        kinds.append("postgres")
    print(f"engine benchmark on {machine()}; {n} reports (two events each, three when similar "
          f"tickets are offered first) per backend\n")
    rows = [asyncio.run(run(kind, n, real=real, profile=profile, inline=False))
            for kind in kinds]
    if "--inline-sqlite" in sys.argv:
        inline_sqlite()
        rows.append(asyncio.run(run("sqlite", n, real=real, profile=profile, inline=True)))
    print_table("Engine: inbound events through to committed tickets and outbox messages",
                ["backend", "classifier", "events", "events/s", "tickets/s", "CPU ms/event",
                 "SQL statements/event", "SELECT 1 µs", "baseline commits/s",
                 "event / bare commit", "event / its statements as SELECT 1",
                 "tickets / outbox rows"],
                rows)
    write_results(json_path, results(rows))
    if real:
        print_table("Classifier alone", ["what", "calls", "rate", "per call"],
                    [asyncio.run(classifier_cost())])


if __name__ == "__main__":
    main()
