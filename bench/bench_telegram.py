"""Telegram webhook updates per second, through the engine to committed state.

What is measured: ``hotline run --webhook`` as wired by ``bot.runtime.BotRuntime`` (secret
guard, aiogram's ``SimpleRequestHandler``, mapping, per-chat lock, ``Engine.handle`` with its
one transaction per update) receiving real HTTP POSTs on loopback. Each update is a text
message from one of many registered reporters (a new report draft: de-duplication, contact
touch, step load, classification, draft stored, reply written to the outbox). The webhook
answers 200 once the raw update is recorded in the inbox (``bot.inbox``); the engine processes
it from there, so a round is timed from its first POST until every one of its updates is
committed (its ``inbound_updates`` row written in the transaction of its effect). The outbox
dispatcher and the web pages are off: this is the inbound path.

Baseline, measured in the same run: aiogram's bare dispatch behind the same webhook server
(``bot.telegram.runner.WebhookRunner``: same guard, same parsing, same mapping and lock) with
a handler that does nothing. The ratio (engine / bare) is the share of aiogram's own
throughput left once the engine does real work. It had a target (>= 0.25), retired by issue 23:
it compares against a handler that does nothing, and no engine keeping one transaction per
update can approach it; it is still reported. Issue 23's targets for the webhook are in
``load_webhook.py`` (time to recorded, and throughput with 1 and 2 workers).

Also measured, in the same rounds, to show what bounds the ratio: the same runtime around a
handler that runs only the transaction every update needs in this design (claim, caller, step,
reply, commit through the engine's repositories, no logic). Its ratio to bare dispatch is the
"ceiling": what an engine doing nothing else could reach on this machine.

The load comes from a separate process (so the server has the event loop to itself), posting
with ``--concurrency`` connections like Telegram's ``max_connections`` (default 40; 16 here).
The scripted classifier is used so the figure is the chat path's, not the model's
(``bench_classifier.py`` measures the model).

Usage: python bench/bench_telegram.py [N_UPDATES] [--sqlite-only] [--concurrency C] [--users U]
       [--repeats R]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr
from sqlalchemy import func, select, text

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
from bot.runtime import BotRuntime
from bot.telegram.runner import WebhookRunner
from handlers.harness import ScriptedClassifier
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain.enums import OrgKind
from hotline.messages import InboundEvent, OutboundMessage
from hotline.services import people
from hotline.services.notify import enqueue
from storage.models import InboundUpdate
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot

SECRET = "bench-Webhook_secret"
TEXTS = [
    "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp, hồ sơ bị trả lại",
    "Mạng cáp quang tại khu công nghệ cao chưa được kết nối",
    "Provincial land data is not shared with the national data platform",
    "Thủ tục cấp phép vẫn yêu cầu bản giấy dù đã nộp trực tuyến",
]
WARMUP = 60

#: The load generator, run as its own process: POSTs every body, ``concurrency`` at a time.
CLIENT = r"""
import asyncio, json, sys, time
from collections import Counter
import aiohttp

async def main(url, secret, path, concurrency):
    bodies = [line.encode() for line in open(path, encoding="utf-8").read().splitlines()]
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    statuses = Counter()
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            for body in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "statuses": dict(statuses)}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


def arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


async def post(url: str, bodies: list[str], concurrency: int) -> float:
    """Seconds the client process took to get all answers; every answer must be 200."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as handle:
        handle.write("\n".join(bodies))
        path = handle.name
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, url, SECRET, path, str(concurrency),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    result = json.loads(out)
    if result["statuses"] != {"200": len(bodies)}:
        raise RuntimeError(f"unexpected answers: {result['statuses']}")
    return float(result["seconds"])


def updates(fake: FakeTelegramServer, users: list[int], n: int) -> list[str]:
    """``n`` text-message updates, round robin over ``users`` (fresh update ids)."""
    bodies = []
    for i in range(n):
        uid = users[i % len(users)]
        user = fake.user(uid, f"User{uid}", None, username=None, language_code="vi")
        bodies.append(json.dumps(fake.text_update(f"{TEXTS[i % len(TEXTS)]} (#{i})", user=user)))
    return bodies


async def setup(url: str, users: list[int]) -> App:
    clock = ManualClock(datetime(2026, 12, 7, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
    app = await open_fresh_app(url, clock, webhook_secret=SecretStr(SECRET), daily_report_limit=10**9)
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    async with app.uow() as uow:
        for uid in users:
            contact = await people.touch_contact(uow, app, "telegram", str(uid), str(uid), f"User{uid}")
            await people.register_reporter(uow, app, contact, organisation_name=f"Công ty {uid}",
                                           kind=OrgKind.ENTERPRISE, contact_name=f"User{uid}")
        await uow.commit()
    return app


async def committed(app: App) -> int:
    async with app.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(InboundUpdate)) or 0)


async def settled(app: App, expected: int, within: float = 300.0) -> None:
    """Wait until ``expected`` updates are committed (the inbox processes after the 200)."""
    deadline = time.perf_counter() + within
    while (done := await committed(app)) < expected:
        if time.perf_counter() > deadline:
            async with app.uow() as uow:
                left = (await uow.session.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
            raise RuntimeError(f"{done} of {expected} updates committed after {within:.0f} s "
                               f"({left} still in the inbox)")
        await asyncio.sleep(0.005)


class MinimalTransaction:
    """Stands in for the engine behind the same runtime: only the transaction every update needs
    in this design -- claim the update id, load the caller, store a changed step, queue one
    reply, commit -- through the engine's own repositories, and no logic at all. Its rate is
    the most any handler could reach here (the "ceiling"), measured, not estimated."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def handle(self, event: InboundEvent) -> list[OutboundMessage]:
        now = self.app.clock.now()
        async with self.app.uow() as uow:
            if not await uow.conversations.claim_update(event.channel, event.update_id, now):
                return []
            contact, person, conv, _ = await uow.conversations.caller(
                event.channel, event.user_id, filed_since=now)
            if contact is None or person is None:
                raise RuntimeError("bench users are registered reporters")
            conv.step, conv.data = "bench", {"update": event.update_id}
            await uow.conversations.save(conv, now)
            reply = OutboundMessage(channel=event.channel, chat_id=event.chat_id, text="ok")
            queued = enqueue(uow, reply, now=now, contact_id=contact.id, person_id=person.id)
            await uow.commit()
        return [OutboundMessage(channel=event.channel, chat_id=event.chat_id, text="ok",
                                meta={"outbox_id": queued.id})]


async def run(kind: str, n: int, n_users: int, concurrency: int, repeats: int) -> list[object]:
    """Engine, minimal transaction and bare dispatch, ``repeats`` rounds each, alternating,
    medians reported: on a small VM any of them moves by a third between runs a minute apart,
    so measuring them side by side, several times, is what keeps their ratios meaningful."""
    users = list(range(700_001, 700_001 + n_users))
    async with temp_database(kind) as url, FakeTelegramServer() as fake:
        app = await setup(url, users)
        bot = make_test_bot(fake, timeout=30)
        options: dict[str, Any] = dict(webhook=True, port=0, scheduler=False, dispatch=False,
                                       verify_token=False, set_commands=False, zalo=False, web=False)
        # --- the engine behind the webhook, as `hotline run --webhook` runs it -------------------
        runtime = BotRuntime(app, bot, **options)
        # --- the same runtime around the minimal transaction -------------------------------------
        minimal = BotRuntime(app, make_test_bot(fake, timeout=30), engine=MinimalTransaction(app),
                             **options)

        # --- aiogram's bare dispatch behind the same server, a handler doing nothing ------------
        async def nothing(event: InboundEvent) -> None:
            return None

        bare = WebhookRunner(make_test_bot(fake, timeout=30), nothing, secret_token=SECRET, port=0)
        tasks = [asyncio.create_task(r.run(handle_signals=False)) for r in (runtime, minimal)]
        rates: dict[str, list[float]] = {"engine": [], "minimal": [], "bare": []}
        try:
            for r in (runtime, minimal):
                await asyncio.wait_for(r.started.wait(), 30)
            await bare.start()
            targets = {"engine": runtime.telegram_webhook_url, "minimal": minimal.telegram_webhook_url,
                       "bare": bare.local_url}
            for target in targets.values():
                assert target is not None
                await post(target, updates(fake, users, WARMUP), concurrency)
            await settled(app, 2 * WARMUP)  # engine and minimal commit theirs; bare commits none
            for _ in range(repeats):
                for name, target in targets.items():
                    start_count = await committed(app)
                    started = time.perf_counter()
                    await post(target, updates(fake, users, n), concurrency)
                    if name != "bare":
                        await settled(app, start_count + n)
                    seconds = time.perf_counter() - started
                    done = await committed(app) - start_count
                    if done != (0 if name == "bare" else n):
                        raise RuntimeError(f"{name}: {done} of {n} updates committed")
                    rates[name].append(n / seconds)
        finally:
            await bare.stop()
            for r in (runtime, minimal):
                r.stop()
            await asyncio.gather(*tasks)
            await bot.session.close()
            await app.close()
    engine_rate, minimal_rate, bare_rate = (statistics.median(rates[k])
                                            for k in ("engine", "minimal", "bare"))
    ratio, ceiling = engine_rate / bare_rate, minimal_rate / bare_rate
    spread = ", ".join(f"{k} {min(v):,.0f}-{max(v):,.0f}" for k, v in rates.items())
    return [kind, n, n_users, concurrency, repeats, f"{engine_rate:,.0f}", f"{bare_rate:,.0f}",
            f"{ratio:.2f}", f"{minimal_rate:,.0f}",
            f"{ceiling:.2f}", spread]


def main() -> None:
    json_path = pop_json_arg()
    n = int(next((a for a in sys.argv[1:] if a.isdigit() and sys.argv[sys.argv.index(a) - 1][:2] != "--"),
                 "2000"))
    concurrency = arg("--concurrency", 16)
    n_users = arg("--users", 200)
    repeats = arg("--repeats", 3)
    kinds = ["sqlite"] + ([] if "--sqlite-only" in sys.argv or not postgres_available() else ["postgres"])
    rows = []
    for kind in kinds:
        started = time.perf_counter()
        rows.append(asyncio.run(run(kind, n, n_users, concurrency, repeats)))
        print(f"{kind}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(f"machine: {machine()}")
    print_table(
        "Telegram webhook -> engine -> committed, vs aiogram's bare dispatch (same server, no-op handler)",
        ["database", "updates", "users", "concurrency", "rounds", "engine updates/s (median)",
         "bare dispatch updates/s (median)", "ratio", "minimal transaction updates/s (median)",
         "ceiling ratio (minimal / bare)", "range over rounds"],
        rows,
    )
    write_results(json_path, [
        Result(benchmark="telegram webhook", database=str(row[0]),
               figure="updates/s through the engine to commit", value=_number(row[5]),
               unit="updates/s", baseline=_number(row[6]), ratio=_number(row[7]),
               baseline_label="aiogram bare dispatch, no-op handler",
               target="", met=None,
               note=f"{row[1]} updates x {row[4]} rounds (medians; {row[10]}), {row[2]} users, "
                    f"concurrency {row[3]}; the minimal transaction alone: {row[8]} updates/s, "
                    f"ceiling ratio {row[9]}")
        for row in rows
    ])


def _number(text: object) -> float:
    return float(str(text).replace(",", ""))


if __name__ == "__main__":
    main()
