"""File N tickets through the service layer (one transaction each, as a chat intake would).

Baseline, measured in the same run: one committed transaction that inserts a bare ticket-sized
row through the same engine, so the ratio shows what routing, SLA arithmetic, events and
notifications cost on top of the database's own commit cost.
Usage: python bench/bench_filing.py [N] [--sqlite-only] [--json FILE]
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

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
from hotline.domain.enums import OrgKind, Role
from hotline.services import people, tickets

CATEGORIES = ["legal", "procedure", "data", "funding", "procurement", "infrastructure",
              "security", "authority", "workforce", "innovation", "other"]


async def run(kind: str, n: int) -> list[object]:
    async with temp_database(kind) as url:
        clock = ManualClock(datetime(2026, 12, 7, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
        app = await open_fresh_app(url, clock, daily_report_limit=10**9)
        async with app.uow() as uow:
            for group in app.taxonomy.groups:
                for i in range(3):
                    issued = await people.create_invite(uow, app, Role.MEMBER, group)
                    contact = await people.touch_contact(uow, app, "console", f"{group}{i}", f"{group}{i}")
                    await people.join(uow, app, contact, issued.code)
            contact = await people.touch_contact(uow, app, "console", "rep", "rep", "Reporter")
            reporter = await people.register_reporter(
                uow, app, contact, organisation_name="Bench Co", kind=OrgKind.ENTERPRISE,
                contact_name="Reporter")
            await uow.commit()

        # Baseline: a bare committed insert per transaction.
        async with app.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE bench_bare (id INTEGER PRIMARY KEY, body TEXT)"))
        start = time.perf_counter()
        for i in range(n):
            async with app.engine.begin() as conn:
                await conn.execute(text("INSERT INTO bench_bare (id, body) VALUES (:i, :b)"),
                                   {"i": i, "b": "x" * 200})
        bare = time.perf_counter() - start

        start = time.perf_counter()
        for i in range(n):
            async with app.uow() as uow:
                person = await uow.people.get(reporter.id)
                await tickets.file_ticket(
                    uow, app, reporter=person, contact=contact,
                    description=f"Report {i}: dữ liệu chưa được chia sẻ giữa các cơ quan",
                    category=CATEGORIES[i % len(CATEGORIES)], channel="console")
                await uow.commit()
            clock.advance(seconds=1)
        filing = time.perf_counter() - start
        await app.close()
        return [kind, n, f"{n / filing:,.0f}", f"{n / bare:,.0f}", f"{(n / filing) / (n / bare):.2f}"]


def main() -> None:
    json_path = pop_json_arg()
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "10000"))
    kinds = ["sqlite"] + ([] if "--sqlite-only" in sys.argv or not postgres_available() else ["postgres"])
    rows = [asyncio.run(run(kind, n)) for kind in kinds]
    print(f"machine: {machine()}")
    print_table("Filing tickets through the service layer",
                ["database", "tickets", "tickets/s", "baseline bare commits/s", "ratio"], rows)
    write_results(json_path, [
        Result("filing", str(kind), "tickets filed/s", _num(rate), "tickets/s", _num(bare),
               baseline_label="bare one-row commits/s", note=f"{count:,} tickets")
        for kind, count, rate, bare, _ in rows])


def _num(cell: object) -> float:
    return float(str(cell).replace(",", ""))


if __name__ == "__main__":
    main()
