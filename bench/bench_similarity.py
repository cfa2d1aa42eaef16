"""Similarity search over 100,000 tickets, and what it adds to an intake event.

Tickets are bulk-inserted (with their index documents and postings, as filing writes them):
texts are the wordings of tests/data/similar_problems.toml mixed with sentences of the bundled
report corpus and a province, so many tickets share vocabulary (the hard case for the index).
Half are open, a tenth resolved in the last days, the rest closed long ago.

Figures:
* search latency (``hotline.services.similarity.search``) p50/p99 for 300 queries written in
  other words (English, no diacritics, short) -- baseline: p99 of a ticket lookup by reference
  (one indexed row) in the same run;
* an intake event (a reporter's first message: classification, the similarity check, the draft
  prompt, commit) through the engine, with and without the similarity check, same run.
Usage: python bench/bench_similarity.py [N] [--sqlite-only] [--json FILE]
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

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
from hotline.domain.enums import OrgKind
from hotline.services import people
from hotline.similarity.text import anchors, canonical_words, terms_of
from storage.models import SimilarityDoc, SimilarityTerm, Ticket
from storage.similarity import term_key

ROOT = Path(__file__).resolve().parent.parent
PROVINCES = ["Hà Nội", "Lào Cai", "Nghệ An", "Đà Nẵng", "Cần Thơ", "Bình Dương", "Quảng Ninh",
             "Thừa Thiên Huế", "Khánh Hòa", "Đồng Tháp", "TP. Hồ Chí Minh", "Hải Phòng"]
QUERIES = 300
INTAKES = 150
BATCH = 2000


def _texts() -> tuple[list[str], list[str]]:
    problems = tomllib.loads((ROOT / "tests/data/similar_problems.toml").read_text("utf-8"))["problem"]
    corpus = [json.loads(line)["text"] for line in
              (ROOT / "hotline/data/corpus/train.jsonl").read_text("utf-8").splitlines() if line.strip()]
    stored = [p["vi"] for p in problems] + [p["short"] for p in problems] + corpus
    queries = [p["en"] for p in problems] + [p["short"] for p in problems]
    return stored, queries


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def _populate(app, n: int, rng: random.Random, reporter_id: int, org_id: int) -> None:  # type: ignore[no-untyped-def]
    stored, _ = _texts()
    now = app.clock.now()
    async with app.uow() as uow:
        groups = [g.id for g in await uow.people.groups()]
    year = now.year
    for start in range(0, n, BATCH):
        tickets, docs, posts = [], [], []
        for i in range(start, min(n, start + BATCH)):
            text = f"{rng.choice(stored)} Tỉnh {rng.choice(PROVINCES)}. {rng.choice(stored)}"
            roll = rng.random()
            created = now - timedelta(days=rng.uniform(0, 400))
            state, resolved = ("in_progress", None)
            if roll >= 0.5:
                state, resolved = ("resolved", now - timedelta(days=rng.uniform(0, 5))) if roll < 0.6 \
                    else ("closed", created + timedelta(days=10))
            tickets.append(dict(
                id=i + 1, ref=f"HL-{year}-{i + 1:06d}", year=year, seq=i + 1, check_code="x",
                reporter_id=reporter_id, organisation_id=org_id, channel="console", language="vi",
                category="legal", group_id=rng.choice(groups), state=state, priority="normal",
                needs_triage=False, title=text[:120], description=text, sla_days=10, cycle=1,
                accepted_at=created, cycle_started_at=created, budget_seconds=1e6,
                paused_seconds=0.0, deadline_at=created + timedelta(days=14),
                first_response_due_at=created + timedelta(days=1), resolved_at=resolved,
                created_at=created, updated_at=created, extension_count=0, extension_requests=0,
                reopen_count=0))
            words, found = canonical_words(text), anchors(text)
            docs.append(dict(ticket_id=i + 1, text=" ".join(words), anchors=" ".join(sorted(found)),
                             indexed_at=now))
            posts += [dict(term=k, ticket_id=i + 1) for k in {term_key(t) for t in terms_of(words, found)}]
        async with app.uow() as uow:
            await uow.session.execute(insert(Ticket), tickets)
            await uow.session.execute(insert(SimilarityDoc), docs)
            await uow.session.execute(insert(SimilarityTerm), posts)
            await uow.commit()


async def run(kind: str, n: int) -> dict[str, object]:
    from handlers import reporter as reporter_flow
    from handlers.engine import Engine
    from handlers.harness import ScriptedUser
    from hotline.services.similarity import search

    rng = random.Random(21)
    async with temp_database(kind) as url:
        clock = ManualClock(datetime(2026, 12, 7, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
        app = await open_fresh_app(url, clock, daily_report_limit=10**9)
        async with app.uow() as uow:
            contact = await people.touch_contact(uow, app, "console", "seed", "seed", "Seed")
            seed = await people.register_reporter(uow, app, contact, organisation_name="Seed Co",
                                                  kind=OrgKind.ENTERPRISE, contact_name="Seed")
            await uow.commit()
        t0 = time.perf_counter()
        await _populate(app, n, rng, seed.id, seed.organisation_id)
        populate_s = time.perf_counter() - t0
        if kind == "postgres":
            async with app.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        _, queries = _texts()

        search_ms, lookup_ms, found = [], [], 0
        for i in range(QUERIES):
            query = queries[i % len(queries)]
            async with app.uow() as uow:
                t = time.perf_counter()
                hits = await search(uow, app, query)
                search_ms.append((time.perf_counter() - t) * 1000)
                found += bool(hits)
                t = time.perf_counter()
                await uow.tickets.by_ref(f"HL-{clock.now().year}-{rng.randrange(1, n):06d}")
                lookup_ms.append((time.perf_counter() - t) * 1000)

        engine = Engine(app)
        app.classifier()  # trained once, before timing
        timings: dict[str, list[float]] = {"with": [], "without": []}
        original = reporter_flow._offer_similar

        async def no_check(ctx, draft):  # type: ignore[no-untyped-def]
            return False

        for i in range(INTAKES * 2):
            variant = "with" if i % 2 == 0 else "without"
            reporter_flow._offer_similar = original if variant == "with" else no_check  # type: ignore[assignment]
            async with app.uow() as uow:
                c = await people.touch_contact(uow, app, "console", f"r{i}", f"r{i}", f"R{i}")
                await people.register_reporter(uow, app, c, organisation_name=f"Org {i}",
                                               kind=OrgKind.ENTERPRISE, contact_name=f"R{i}")
                await uow.commit()
            user = ScriptedUser(engine, f"r{i}")
            t = time.perf_counter()
            await user.say(queries[i % len(queries)])
            timings[variant].append((time.perf_counter() - t) * 1000)
        reporter_flow._offer_similar = original  # type: ignore[assignment]
        async with app.engine.connect() as conn:
            open_count = (await conn.execute(select(Ticket.id).where(Ticket.state == "in_progress")
                                             .with_only_columns(__import__("sqlalchemy").func.count()))).scalar_one()
        await app.close()
    return {
        "kind": kind, "n": n, "populate_s": populate_s, "open": open_count,
        "p50": statistics.median(search_ms), "p99": _percentile(search_ms, 99),
        "lookup_p99": _percentile(lookup_ms, 99), "found": found,
        "intake_with": statistics.median(timings["with"]),
        "intake_without": statistics.median(timings["without"]),
        "intake_with_p99": _percentile(timings["with"], 99),
        "intake_without_p99": _percentile(timings["without"], 99),
    }


def main() -> None:
    json_path = pop_json_arg()
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "100000"))
    kinds = ["sqlite"] + ([] if "--sqlite-only" in sys.argv or not postgres_available() else ["postgres"])
    rows = [asyncio.run(run(kind, n)) for kind in kinds]
    print(f"machine: {machine()}")
    print_table("Similarity search", ["database", "tickets", "open", "search p50 ms", "search p99 ms",
                                      "baseline: lookup by ref p99 ms", "queries with a suggestion"],
                [[r["kind"], f"{r['n']:,}", f"{r['open']:,}", f"{r['p50']:.1f}", f"{r['p99']:.1f}",
                  f"{r['lookup_p99']:.2f}", f"{r['found']}/{QUERIES}"] for r in rows])
    print_table("Intake event (first message to draft prompt, commit), median ms",
                ["database", "with similarity", "without", "ratio", "with p99", "without p99"],
                [[r["kind"], f"{r['intake_with']:.1f}", f"{r['intake_without']:.1f}",
                  f"{r['intake_with'] / r['intake_without']:.2f}", f"{r['intake_with_p99']:.1f}",
                  f"{r['intake_without_p99']:.1f}"] for r in rows])
    results = []
    for r in rows:
        note = f"{r['n']:,} tickets ({r['open']:,} open), {QUERIES} queries, p50 {r['p50']:.1f} ms"
        p99, lookup = float(r["p99"]), float(r["lookup_p99"])  # type: ignore[arg-type]
        with_, without = float(r["intake_with"]), float(r["intake_without"])  # type: ignore[arg-type]
        results.append(Result("similarity", str(r["kind"]), "search p99", round(p99, 2), "ms",
                              round(lookup, 3), round(p99 / lookup, 1),
                              "ticket lookup by ref p99, ms", "< 50 ms at 100,000", p99 < 50, note))
        results.append(Result("similarity", str(r["kind"]), "intake event median with the check",
                              round(with_, 2), "ms", round(without, 2), round(with_ / without, 2),
                              "same intake without the check, ms", "", None,
                              f"{INTAKES} events each, alternating; p99 {r['intake_with_p99']:.1f}"
                              f" vs {r['intake_without_p99']:.1f} ms"))
    write_results(json_path, results)


if __name__ == "__main__":
    main()
