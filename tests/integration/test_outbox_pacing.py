"""Two dispatcher processes share Telegram's limits through the database (issue #23).

The fake Bot API here refuses exactly as Telegram does (``tests/fakes/telegram_limits.py``:
429 the moment a bot exceeds 30 messages in any 1-second window, or 1 message per second to
one chat). Two real worker processes -- the benchmark's, ``bench/bench_outbox.py --worker``,
each an ``OutboxDispatcher`` with the real aiogram client and default settings -- send a small
digest broadcast and a few messages to one busy chat from one database. Neither divides the
limit by hand: together they stay under it, without a single 429, and the busy chat hears
from the bot at most once a second however the workers share its rows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench.bench_outbox import worker
from bot.ratelimit import SharedPacer
from hotline.clock import SystemClock
from hotline.deps import App
from hotline.messages import OutboundMessage
from hotline.services.notify import enqueue
from storage.pacing import Reservation, pause_all, reserve_slots
from tests.fakes import fake_token
from tests.fakes.telegram_limits import LimitedTelegramServer, summarise

pytestmark = pytest.mark.timeout(90)

BUSY = "777000"


async def queue(app: App, broadcast: int, busy: int) -> None:
    """A digest to ``broadcast`` members (keyed as digests are) and ``busy`` replies to one chat,
    due now by the wall clock the worker processes run on."""
    now = SystemClock().now()
    async with app.uow() as uow:
        for i in range(broadcast):
            enqueue(uow, OutboundMessage(channel="telegram", chat_id=str(5000 + i), text=f"bản tin {i}"),
                    now=now, dedupe_key=f"digest:test:members:{i}:0")
        for i in range(busy):
            enqueue(uow, OutboundMessage(channel="telegram", chat_id=BUSY, text=f"trả lời {i}"), now=now)
        await uow.commit()


def fork_worker(url: str, api: str, token: str, index: int, folder: Path) -> int:
    """A worker process forked from this one, as ``hotline run --workers`` forks its workers
    (it inherits the imports, so it starts in milliseconds instead of seconds); it writes its
    counts to ``result-<index>.json``."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        found = asyncio.run(worker(url, api, token, index, 60.0, folder))
        (folder / f"result-{index}.json").write_text(json.dumps(found))
        code = 0
    finally:
        os._exit(code)


async def run_workers(url: str, api: str, token: str, count: int, folder: Path) -> list[dict[str, Any]]:
    """Start ``count`` worker processes together (each waits for the others to be ready)."""
    pids = [fork_worker(url, api, token, index, folder) for index in range(count)]
    async with asyncio.timeout(30):
        while len(list(folder.glob("ready-*"))) < count:  # noqa: ASYNC110, ASYNC240 -- files of other processes
            await asyncio.sleep(0.05)
        (folder / "go").write_text("")
        for pid in pids:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):  # noqa: ASYNC110, ASYNC222 -- WNOHANG: never blocks
                await asyncio.sleep(0.05)
    return [json.loads((folder / f"result-{index}.json").read_text()) for index in range(count)]


async def test_two_dispatcher_processes_stay_under_the_limits_together(app: App, tmp_path: Path) -> None:
    broadcast, busy = 120, 4
    await queue(app, broadcast, busy)
    token = fake_token()
    async with LimitedTelegramServer() as fake:
        workers = await run_workers(app.settings.database_url, fake.base_url, token, 2, tmp_path)
        [bot] = fake.stats().values()
    accepted, refused = bot["accepted"], bot["refused"]
    assert refused == []  # not a single 429
    texts = [text for _, _, text in accepted]
    assert sorted(texts) == sorted({*texts}) and len(texts) == broadcast + busy  # each once
    summary = summarise(accepted, refused)
    assert summary["densest_window"] <= 30 and summary["min_chat_gap"] >= 1.0
    busy_times = [t for t, chat, _ in accepted if chat == BUSY]
    assert [text for _, chat, text in accepted if chat == BUSY] == [f"trả lời {i}" for i in range(busy)]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(busy_times))
    # The busy chat is not starved by the broadcast: it is served while the broadcast runs.
    assert busy_times[1] < max(t for t, chat, _ in accepted if chat != BUSY)
    # Both workers really sent (the limit was shared, not won by one of them).
    sent = [int(w["counts"].get("sent", 0)) for w in workers]  # type: ignore[union-attr]
    assert sum(sent) == broadcast + busy and min(sent) > 0


async def test_workers_reserve_disjoint_evenly_spaced_slots_and_share_a_pause(app: App) -> None:
    """Two workers' pacers on one database: their slots interleave into one stream 1/rate
    apart, never the same instant twice; a 429 seen by one holds the other too."""
    clock = SystemClock()
    now = lambda: clock.now().timestamp()  # noqa: E731

    async def reserve(count: int) -> Reservation:
        async with app.uow() as uow:
            found = await reserve_slots(uow.session, "telegram", now=now(), count=count, interval=0.05)
            await uow.commit()
        return found

    async def publish(until: float) -> None:
        async with app.uow() as uow:
            await pause_all(uow.session, "telegram", until=until)
            await uow.commit()

    taken = [await reserve(3) for _ in range(4)]
    slots = sorted(s for r in taken for s in r.slots)
    assert len(set(slots)) == 12
    assert all(abs((b - a) - 0.05) < 1e-6 for a, b in itertools.pairwise(slots))

    one = SharedPacer(20, reserve, now=now, publish_pause=publish)
    other = SharedPacer(20, reserve, now=now, publish_pause=publish)
    one.pause(1.0)
    await asyncio.sleep(0.1)  # the pause reaches the database
    await other.acquire()
    assert now() >= one._paused_until - 0.01  # the other worker waited for the pause too

