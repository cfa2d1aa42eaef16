"""Response times of the public board and the dashboard over a large history, under load.

Setup (not timed): a temporary database gets N tickets (default 100,000) with about ten events
each (1,000,000), from ``bench_digest.populate`` (plausible lifecycles over two years, red
alerts). The web application (``hotline.web``) is served on loopback in this process; a
leader signs in through a one-time link like anyone would.

Timed:

* cold: the first request of each page (computes the figures from the events);
* steady: ``wrk`` (Debian package; ``--tool python`` uses a bounded aiohttp client loop
  instead) hammering each page for ``--seconds`` with ``--connections`` connections; p50, p95,
  p99 and requests/s. The figures come from the cache, which every request checks against
  the newest event id;
* after a new event: one event is appended and the (manual) clock moved one cache ttl on;
  the board is loaded again while its figures are recomputed in the web's figure process
  (stale-while-revalidate); the dashboard waits for fresh figures (signed-in users see
  fresh numbers); and how long the board's refresh took.

Baseline, measured in the same run through the same server and load tool: ``/healthz``
(routing, middleware and headers, no database), so the ratio shows what the figures cost on
top of serving any request.

The load average (``os.getloadavg``) before and after each database's run is printed and
kept: on a shared two-core machine other processes' work shows in the latencies.

Usage: python bench/bench_web.py [N] [--sqlite-only] [--postgres-only] [--seconds 10]
       [--connections 8] [--tool wrk|python] [--json FILE]

``--json FILE`` also writes the rows, one object per row with the table's columns as keys
(numbers as numbers), plus the machine, sizes and load averages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select

from bench.bench_digest import NOW, populate
from bench.common import machine, open_fresh_app, postgres_available, print_table, temp_database
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.services.signin import create_signin_link
from hotline.web.app import build_web_app
from hotline.web.sessions import COOKIE
from hotline.web.state import STATE
from storage.models import Person, TicketEvent

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"errors":%d,"p50":%.3f,"p95":%.3f,"p99":%.3f,"seconds":%.3f}\\n',
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.duration / 1e6))
end
"""


async def load_wrk(url: str, cookie: str | None, seconds: int, connections: int,
                   script: Path) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    if cookie:
        args += ["-H", f"Cookie: {COOKIE}={cookie}"]
    process = await asyncio.create_subprocess_exec(*args, url, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    line = next((x for x in out.decode().splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {err.decode()[:300]}")
    result = json.loads(line[5:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


async def load_python(url: str, cookie: str | None, seconds: int, connections: int,
                      _: Path) -> dict[str, float]:
    """A bounded closed-loop client: ``connections`` workers, each one request at a time."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "errors": errors, "p50": cuts[49], "p95": cuts[94],
            "p99": cuts[98], "seconds": elapsed, "rps": len(latencies) / elapsed}


async def sign_in_cookie(base: str, app: App) -> str:
    async with app.uow() as uow:
        found = await uow.session.execute(select(Person).where(Person.role == "leader"))
        leader = found.scalars().first()
        assert leader is not None
        link = await create_signin_link(uow, app, leader)
        await uow.commit()
    path = "/" + link.split("/", 3)[3]
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(path) as response:
            page = await response.text()
        token = path.rsplit("/", 1)[1]
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"token": token, "csrf": csrf}
        async with client.post("/signin", data=form, allow_redirects=False) as response:
            assert response.status == 303, response.status
        return next(c.value for c in client.cookie_jar if c.key == COOKIE)


async def timed_get(base: str, path: str, cookie: str | None) -> float:
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    start = time.perf_counter()
    async with aiohttp.ClientSession(base) as client, client.get(path, headers=headers) as response:
        await response.read()
        assert response.status == 200, (path, response.status)
    return time.perf_counter() - start


async def run(kind: str, n: int, seconds: int, connections: int, tool: str) -> list[list[object]]:
    load = load_wrk if tool == "wrk" else load_python
    async with temp_database(kind) as url:
        app = await open_fresh_app(url, ManualClock(NOW))
        start = time.perf_counter()
        tickets, events = await populate(app, n)
        took = time.perf_counter() - start
        print(f"{kind}: {tickets:,} tickets, {events:,} events inserted in {took:.0f} s", flush=True)
        web_app = build_web_app(app, warm=False)  # so the first request shows the cold cost
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        state = web_app[STATE]
        cookie = await sign_in_cookie(base, app)
        pages = [("public board", "/board", None), ("board JSON", "/api/v1/board", None),
                 ("dashboard (this month)", "/web/", cookie),
                 ("dashboard (year, group mof)", "/web/?period=year&group=mof", cookie),
                 ("ticket list (this month)", "/web/tickets", cookie)]
        cold = {name: await timed_get(base, path, c) for name, path, c in pages}
        await state.figures.idle()
        rows: list[list[object]] = []
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "report.lua"
            script.write_text(WRK_SCRIPT)
            baseline = await load(base + "/healthz", None, seconds, connections, script)
            rows.append(_row(kind, "baseline /healthz", None, baseline, baseline))
            for name, path, c in pages:
                result = await load(base + path, c, seconds, connections, script)
                rows.append(_row(kind, name, cold[name], result, baseline))
            # A new event invalidates every cached figure.
            async with app.engine.begin() as conn:
                # Explicit id: the bulk load wrote ids itself, so PostgreSQL's sequence is behind.
                last = (await conn.execute(select(func.max(TicketEvent.id)))).scalar_one()
                await conn.execute(insert(TicketEvent.__table__), [{
                    "id": last + 1, "ticket_id": 1, "kind": "message", "actor_id": None,
                    "at": NOW.replace(second=0), "from_state": None, "to_state": None, "note": "bench",
                    "data": {}}])
            # The board refreshes at most once per ttl after events: jump past it, so the
            # whole load window below runs while the year is recomputed in the background.
            app.clock.advance(timedelta(seconds=app.settings.web_cache_seconds))  # type: ignore[attr-defined]
            before = state.figures.computations
            started = time.perf_counter()
            result = await load(base + "/board", None, seconds, connections, script)
            rows.append(_row(kind, "public board while recomputing (stale served)", None, result,
                             baseline))
            dash = await timed_get(base, "/web/", cookie)
            rows.append([kind, "dashboard, first request after the event", f"{dash:.2f}", "", "", "",
                         "", "", "waits for this month's fresh figures"])
            await state.figures.idle()
            refreshed = time.perf_counter() - started
            assert state.figures.computations > before
            rows.append([kind, "board figures refreshed (month, year, trend)", f"{refreshed:.2f}", "", "",
                         "", "", "", "in the figure process, after the event"])
        await runner.cleanup()
        await app.close()
        return rows


def _row(kind: str, name: str, cold: float | None, r: dict[str, float], baseline: dict[str, float],
         note: str = "") -> list[object]:
    return [kind, name, "" if cold is None else f"{cold:.2f}", f"{r['p50']:.1f}", f"{r['p95']:.1f}",
            f"{r['p99']:.1f}", f"{r['rps']:.0f}", f"{r['p95'] / baseline['p95']:.1f}",
            note or (f"{int(r['errors'])} errors" if r["errors"] else "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--tool", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the rows as JSON to FILE")
    args = parser.parse_args()
    kinds = [] if args.postgres_only else ["sqlite"]
    if not args.sqlite_only:
        if postgres_available():
            kinds.append("postgres")
        else:
            print("PostgreSQL not reachable: skipped")
    rows: list[list[object]] = []
    loads: dict[str, dict[str, list[float]]] = {}
    for kind in kinds:
        before = list(os.getloadavg())
        rows += asyncio.run(run(kind, args.n, args.seconds, args.connections, args.tool))
        loads[kind] = {"before": before, "after": list(os.getloadavg())}
        print(f"{kind}: load average before {_loads(before)}, after {_loads(loads[kind]['after'])}",
              flush=True)
    print(machine())
    title = (f"web pages over {args.n:,} tickets: cold first request, then {args.seconds} s of "
             f"{args.tool} with {args.connections} connections on loopback (latencies in ms)")
    print_table(title, HEADER, rows)
    if args.json is not None:
        args.json.write_text(json.dumps({
            "bench": "web", "title": title, "machine": machine(), "tickets": args.n,
            "seconds": args.seconds, "connections": args.connections, "tool": args.tool,
            "load_average": loads, "rows": [_json_row(row) for row in rows],
        }, ensure_ascii=False, indent=1) + "\n", "utf-8")


HEADER = ["database", "page", "cold s", "p50 ms", "p95 ms", "p99 ms", "req/s", "p95 / baseline p95",
          "note"]


def _loads(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _json_row(row: list[object]) -> dict[str, object]:
    """Table cells as JSON: numbers where the cell holds one, null where it is empty."""
    out: dict[str, object] = {}
    for name, cell in zip(HEADER, row, strict=True):
        value: object = cell
        if cell == "":
            value = None
        elif name not in ("database", "page", "note"):
            try:
                value = float(str(cell))
            except ValueError:
                value = cell
        out[name] = value
    return out


if __name__ == "__main__":
    main()
