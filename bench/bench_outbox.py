"""Outbound at Telegram's limits: a digest broadcast plus one busy chat, sent by the real
dispatcher in separate worker processes against a fake Bot API that refuses with 429.

What runs (issue #23, SPEC §8/§9):

- the enforcing fake (``tests/fakes/telegram_limits.py``) in its own process, at a raised
  scheduling priority when allowed (Telegram's servers do not share our CPU): it answers
  ``429 retry_after`` the moment a bot exceeds 30 messages in any 1-second window, or sends
  two messages to one chat less than 1 s apart (it counts arrivals, on its own clock);
- the workload, queued in the outbox before the workers start: ``MESSAGES`` messages to as
  many chats (a digest broadcast) and ``--one-chat`` messages to one chat;
- ``OutboxDispatcher`` with the real aiogram client and default settings, in 1 or 2 worker
  processes (``python bench/bench_outbox.py --worker ...``) sharing one database: 1 worker
  on SQLite, 1 and 2 workers on PostgreSQL;
- the baseline, measured in the same run: the fake's raw rate with no pacing at all (aiogram,
  16 concurrent sends to distinct chats): how fast the workers *could* go, and how many 429s
  unpaced sending earns.

Figures: sustained rate over the broadcast (every message the fake accepted from the first
send to the last broadcast message, over that time; the broadcast's own share beside it),
429s, the densest 1-second window and the tightest per-chat gap the fake saw, and the busy
chat's mean interval. Targets (issue #23): rate >= 27 msg/s, zero 429s, the busy chat at
~1 msg/s.

With ``--hotline-run`` also 2 workers as the product runs them: ``hotline run --webhook
--workers 2`` (webhook server, engine and dispatcher in each forked worker).

Usage: bench_outbox.py [MESSAGES] [--one-chat N] [--sqlite-only] [--hotline-run] [--json FILE]
Worker mode (used by the bench itself): bench_outbox.py --worker --database URL --api URL
--token TOKEN --index I
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    Result,
    open_fresh_app,
    pop_json_arg,
    postgres_available,
    print_table,
    temp_database,
    write_results,
)
from tests.fakes.telegram_limits import LimitedTelegramProcess  # noqa: E402

TARGET_RATE = 27.0
LIMIT = 30.0
BUSY_CHAT = "900000001"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


# --- the worker process ---------------------------------------------------------------------------
async def worker(url: str, api: str, token: str, index: int, deadline: float,
                 ready_dir: Path | None = None) -> dict[str, Any]:
    """One dispatcher process: send until the outbox has nothing pending, then stop. With
    ``ready_dir``: once set up, write ``ready-<index>`` there and start on a ``go`` file, so
    several workers start together."""
    from sqlalchemy import func, select

    from bot.dispatcher import OutboxDispatcher
    from bot.telegram.client import create_bot
    from bot.telegram.sender import TelegramSender
    from hotline.clock import SystemClock
    from hotline.config import Settings
    from hotline.services.app import open_app
    from storage.models import OutboxMessage

    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    app = await open_app(settings, SystemClock(), sync_groups=False)
    bot = create_bot(token, api_url=api)
    dispatcher = OutboxDispatcher(app, {"telegram": TelegramSender(bot)},
                                  worker_id=f"bench-worker-{index}")
    if ready_dir is not None:
        (ready_dir / f"ready-{index}").write_text("")
        while not (ready_dir / "go").exists():  # noqa: ASYNC110 -- another process's file
            await asyncio.sleep(0.02)
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        while time.perf_counter() - started < deadline:
            await asyncio.sleep(0.5)
            if task.done():
                break
            async with app.uow() as uow:
                pending = (await uow.session.execute(
                    select(func.count()).select_from(OutboxMessage)
                    .where(OutboxMessage.status == "pending"))).scalar_one()
            if pending == 0:
                break
    finally:
        stop.set()
        await task
        await bot.session.close()
        await app.close()
    pacer = dispatcher.pacers["telegram"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"index": index, "counts": dict(dispatcher.counts), "seconds": time.perf_counter() - started,
            # While sending (start-up, mostly aiogram's imports, not counted).
            "cpu_seconds": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
            "reservations": pacer.reservations, "wasted_slots": pacer.wasted,
            "rss_mb": usage.ru_maxrss / 1024}


# --- one configuration -----------------------------------------------------------------------------
async def queue_workload(url: str, messages: int, one_chat: int) -> None:
    from hotline.clock import SystemClock
    from hotline.messages import OutboundMessage
    from hotline.services.notify import enqueue

    clock = SystemClock()
    app = await open_fresh_app(url, clock)
    try:
        async with app.uow() as uow:
            now = clock.now()
            for i in range(messages):
                # Keyed as hotline.digests.send keys a digest (one per audience and period).
                enqueue(uow, OutboundMessage(channel="telegram", chat_id=str(100001 + i),
                                             text=f"Bản tin tuần / weekly digest #{i}"), now=now,
                        dedupe_key=f"digest:bench-week:members:{i}:0")
            for i in range(one_chat):
                enqueue(uow, OutboundMessage(channel="telegram", chat_id=BUSY_CHAT,
                                             text=f"tin {i:03d} / message {i:03d}"), now=now)
            await uow.commit()
    finally:
        await app.close()


def spawn_workers(url: str, api: str, token: str, workers: int, deadline: float) -> list[dict[str, Any]]:
    """Separate processes (``--worker``), started together once all are set up."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    folder = tempfile.TemporaryDirectory()
    ready = Path(folder.name)
    processes = [
        subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", "--database", url,
                          "--api", api, "--token", token, "--index", str(index),
                          "--deadline", str(deadline), "--ready-dir", str(ready)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for index in range(workers)
    ]
    for _ in range(1200):
        if len(list(ready.glob("ready-*"))) == workers or any(p.poll() is not None for p in processes):
            break
        time.sleep(0.05)
    (ready / "go").write_text("")
    found = []
    for process in processes:
        out, _ = process.communicate(timeout=deadline + 120)
        if process.returncode != 0:
            raise SystemExit(f"worker failed (exit {process.returncode})")
        found.append(json.loads(out.strip().splitlines()[-1]))
    folder.cleanup()
    return found


def run_hotline(url: str, api: str, token: str, workers: int, deadline: float) -> list[dict[str, Any]]:
    """``hotline run --webhook --workers N`` (the product's own multi-worker mode, webhook
    server, engine and dispatcher in each worker), stopped with SIGTERM once nothing is
    pending. Per-worker counts are not available this way; the fake's figures are."""
    import signal
    import socket

    from storage import migrate

    migrate.adopt_unversioned(url)  # made by create_schema: stamp it, as `hotline run` wants
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_TELEGRAM_TOKEN": token,
           "HOTLINE_TELEGRAM_API_URL": api, "HOTLINE_WEBHOOK_SECRET": "bench-outbox-secret",
           "HOTLINE_WEBHOOK_HOST": "127.0.0.1", "HOTLINE_WEBHOOK_PORT": str(port)}
    process = subprocess.Popen([str(Path(sys.executable).with_name("hotline")), "run", "--webhook",
                                "--workers", str(workers), "--no-scheduler", "--no-web",
                                "--log-level", "WARNING"], cwd=ROOT, env=env)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < deadline and process.poll() is None:
            time.sleep(0.5)
            if asyncio.run(pending_count(url)) == 0:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    return [{"index": i, "counts": {}, "cpu_seconds": 0.0, "reservations": 0, "wasted_slots": 0,
             "rss_mb": 0.0} for i in range(workers)]


async def pending_count(url: str) -> int:
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(
                text("SELECT count(*) FROM outbox WHERE status = 'pending'"))).scalar_one())
    finally:
        await engine.dispose()


def figures(stats: dict[str, Any], messages: int) -> dict[str, Any]:
    from tests.fakes.telegram_limits import summarise

    [bot] = stats.values() if stats else [{"accepted": [], "refused": []}]
    accepted, refused = bot["accepted"], bot["refused"]
    summary = summarise(accepted, refused)
    broadcast = [float(t) for t, chat, _ in accepted if chat != BUSY_CHAT]
    busy = sorted(float(t) for t, chat, _ in accepted if chat == BUSY_CHAT)
    first = min(float(t) for t, _, _ in accepted) if accepted else 0.0
    span = (max(broadcast) - first) if broadcast else 0.0
    gaps = [b - a for a, b in itertools.pairwise(busy)]
    during = [g for a, g in zip(busy, gaps, strict=False) if broadcast and a < max(broadcast)]
    end = first + span
    within = sum(1 for t, _, _ in accepted if float(t) <= end)
    return {
        **summary,
        "broadcast": len(broadcast), "complete": len(broadcast) == messages,
        # Every message the bot got out while the broadcast ran (the busy chat's included).
        "rate": (within - 1) / span if span > 0 else 0.0,
        "broadcast_rate": (len(broadcast) - 1) / span if span > 0 else 0.0,
        "busy_sent": len(busy),
        "busy_mean": statistics.fmean(gaps) if gaps else 0.0,
        "busy_mean_during": statistics.fmean(during) if during else 0.0,
        "busy_max": max(gaps) if gaps else 0.0,
    }


async def run_config(fake: LimitedTelegramProcess, kind: str, workers: int, messages: int, one_chat: int,
                     token: str, via_hotline: bool = False) -> dict[str, Any]:
    async with temp_database(kind) as url:
        await queue_workload(url, messages, one_chat)
        await fake.reset()
        before = load()
        started = time.perf_counter()
        deadline = max(60.0, messages / 10 + one_chat * 3)
        spawn = run_hotline if via_hotline else spawn_workers
        found = await asyncio.to_thread(spawn, url, fake.base_url, token, workers, deadline)
        wall = time.perf_counter() - started
        stats = await fake.stats()
    result = figures(stats, messages)
    result.update(kind=kind, workers=workers, wall=wall, load_before=before, load_after=load(),
                  per_worker=found)
    return result


async def baseline(fake: LimitedTelegramProcess, token: str, seconds: float = 2.0) -> dict[str, Any]:
    """The fake's raw rate with no pacing: aiogram, 16 sends at a time, distinct chats."""
    from aiogram.exceptions import TelegramRetryAfter

    from bot.telegram.client import create_bot

    await fake.reset()
    bot = create_bot(token, api_url=fake.base_url)
    counter = iter(range(10**9))
    refused = 0

    async def blast() -> None:
        nonlocal refused
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            try:
                await bot.send_message(chat_id=200001 + next(counter), text="raw")
            except TelegramRetryAfter:
                refused += 1

    started = time.perf_counter()
    await asyncio.gather(*(blast() for _ in range(16)))
    elapsed = time.perf_counter() - started
    await bot.session.close()
    stats = await fake.stats()
    [data] = stats.values()
    return {"attempts_per_s": (len(data["accepted"]) + len(data["refused"])) / elapsed,
            "accepted": len(data["accepted"]), "refused": len(data["refused"]), "seconds": elapsed}


async def main_async(args: argparse.Namespace, json_path: Path | None) -> int:
    from tests.fakes import fake_token

    token = fake_token()
    kinds: list[tuple[str, int, bool]] = [("sqlite", 1, False)]
    if not args.sqlite_only:
        if await asyncio.to_thread(postgres_available):
            kinds += [("postgres", 1, False), ("postgres", 2, False)]
            if args.hotline_run:
                kinds += [("postgres", 2, True)]
        else:
            print("PostgreSQL not reachable: SQLite only\n")
    fake = LimitedTelegramProcess()
    if not fake.prioritised:
        print("note: the fake Bot API runs at normal priority (raising it was refused)\n")
    results: list[Result] = []
    rows: list[list[object]] = []
    all_met = True
    try:
        base = await baseline(fake, token)
        print(f"baseline (no pacing, 16 concurrent aiogram sends): "
              f"{base['attempts_per_s']:.0f} requests/s reach the fake; {base['accepted']} accepted, "
              f"{base['refused']} refused with 429 in {base['seconds']:.1f} s; load {load()}\n")
        for kind, workers, via_hotline in kinds:
            how = " (hotline run --webhook)" if via_hotline else ""
            print(f"running {kind}, {workers} worker(s){how}: {args.messages} broadcast + "
                  f"{args.one_chat} to one chat ...", flush=True)
            r = await run_config(fake, kind, workers, args.messages, args.one_chat, token, via_hotline)
            met = (r["rate"] >= TARGET_RATE and r["refused"] == 0 and r["complete"]
                   and r["busy_sent"] == args.one_chat and r["busy_mean"] <= 1.15)
            all_met &= met
            wasted = sum(w["wasted_slots"] for w in r["per_worker"])
            reservations = sum(w["reservations"] for w in r["per_worker"])
            rss = max(w["rss_mb"] for w in r["per_worker"])
            cpu = sum(w.get("cpu_seconds", 0.0) for w in r["per_worker"])
            sent = sum(w["counts"].get("sent", 0) for w in r["per_worker"])
            label = f"{workers} (hotline run)" if via_hotline else str(workers)
            rows.append([kind, label, f"{r['rate']:.2f}", f"{r['broadcast_rate']:.2f}",
                         f"{r['rate'] / LIMIT:.3f}",
                         f"{r['rate'] / base['attempts_per_s']:.3f}", r["refused"],
                         r["densest_window"], f"{r['min_chat_gap']:.3f}",
                         f"{r['busy_sent']}/{args.one_chat}", f"{r['busy_mean']:.3f}",
                         f"{r['busy_mean_during']:.3f}", f"{r['busy_max']:.3f}",
                         f"{r['wall']:.1f}", f"{1000 * cpu / max(sent, 1):.1f}", reservations, wasted,
                         f"{rss:.0f}",
                         f"{r['load_before']} -> {r['load_after']}", "yes" if met else "NO"])
            database = "sqlite" if kind == "sqlite" else "postgres"
            note = (f"{workers} worker(s), {args.messages}+{args.one_chat} msgs; 429s {r['refused']}; "
                    f"broadcast alone {r['broadcast_rate']:.2f} msg/s; "
                    f"densest 1 s window {r['densest_window']}; busy chat mean "
                    f"{r['busy_mean']:.3f} s; load {r['load_before']} -> {r['load_after']}")
            results.append(Result("outbox", database, f"rate during broadcast, {workers} worker(s){how}",
                                  round(r["rate"], 2), "msg/s", round(base["attempts_per_s"], 1),
                                  round(r["rate"] / LIMIT, 3),
                                  baseline_label="fake's raw rate, no pacing (ratio: / 30 limit)",
                                  target=">= 27 msg/s, 0 x 429", met=met, note=note))
    finally:
        fake.close()
    print()
    print_table(
        f"Outbox at Telegram's limits ({args.messages} to {args.messages} chats + {args.one_chat} "
        "to one chat)",
        ["database", "workers", "msg/s (all)", "msg/s (broadcast only)", "/ limit 30",
         "/ raw rate", "429s", "densest 1 s",
         "min chat gap s", "busy chat sent", "busy mean s", "busy mean s (during broadcast)",
         "busy max s", "wall s", "worker CPU ms/msg", "reservations", "slots given up",
         "peak RSS MB", "load 1/5 min",
         "targets met"], rows)
    print(f"Targets: sustained broadcast rate >= {TARGET_RATE:.0f} msg/s (0.9 x the limit), zero "
          "429s, every message delivered, the busy chat at ~1 msg/s (mean interval <= 1.15 s).")
    print(f"Baseline: {base['attempts_per_s']:.0f} requests/s unpaced ({base['refused']} x 429 in "
          f"{base['seconds']:.1f} s). All targets met: {'yes' if all_met else 'NO'}")
    write_results(json_path, results)
    return 0


def main() -> int:
    json_path = pop_json_arg()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("messages", nargs="?", type=int, default=3000)
    parser.add_argument("--one-chat", type=int, default=200)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--hotline-run", action="store_true",
                        help="also run 2 workers as `hotline run --webhook --workers 2` (PostgreSQL)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=600.0, help=argparse.SUPPRESS)
    parser.add_argument("--ready-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        profile = os.environ.get("HOTLINE_BENCH_PROFILE")  # a file for cProfile's stats
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            found = profiler.runcall(asyncio.run, worker(args.database, args.api, args.token,
                                                         args.index, args.deadline, args.ready_dir))
            profiler.dump_stats(f"{profile}.{args.index}")
        else:
            found = asyncio.run(worker(args.database, args.api, args.token, args.index, args.deadline,
                                       args.ready_dir))
        print(json.dumps(found), flush=True)
        return 0
    return asyncio.run(main_async(args, json_path))


if __name__ == "__main__":
    raise SystemExit(main())
