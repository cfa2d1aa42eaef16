"""SIGKILL the dispatcher mid-burst, restart it, and count what Telegram received.

The dispatcher runs in a real subprocess against the test database (a SQLite file, or the
PostgreSQL test database) and sends to the fake Bot API living in this test process, so the
fake sees exactly what left the dead process. After each kill the database is read as it
was left: rows still leased by the dead worker are the sends that were in flight. The
contract checked: every row is eventually delivered; a text reaches its chat twice only if
its row was in flight at a kill; each chat still receives its texts in order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.app import App
from hotline.clock import SystemClock
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeTelegramServer
from tests.integration.test_dispatcher import add_rows, texts, wait_until

pytestmark = pytest.mark.timeout(240)  # bounded; ~10 s on an idle 2-core machine

REPO = Path(__file__).resolve().parents[2]
CHATS = [9101, 9102, 9103, 9104, 9105]
PER_CHAT = 30

#: The child: the real dispatcher and sender, configured from the environment like ``hotline run``.
CHILD = """
import asyncio, sys
from bot.dispatcher import OutboxDispatcher
from bot.telegram.client import bot_from_settings
from bot.telegram.sender import TelegramSender
from hotline.app import open_app
from hotline.config import load_settings

async def main() -> None:
    settings = load_settings()
    app = await open_app(settings, sync_groups=False)
    bot = bot_from_settings(settings)
    dispatcher = OutboxDispatcher(app, {"telegram": TelegramSender(bot, timeout=10)},
                                  worker_id=sys.argv[1], lease_seconds=float(sys.argv[2]),
                                  poll_interval=0.1)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go": lets the test start it ahead of time
    await dispatcher.run(asyncio.Event())

asyncio.run(main())
"""


async def start_child(env: dict[str, str], worker: str, lease: float) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, worker, str(lease), env=env, cwd=str(REPO),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(120):  # importing aiogram takes seconds, minutes when busy
            line = await proc.stdout.readline()
    except TimeoutError:
        proc.kill()
        raise
    if line.strip() != b"ready":
        _, err = await proc.communicate()
        raise AssertionError(f"dispatcher child failed to start: {err.decode()[-2000:]}")
    return proc


async def go(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def leased_texts(app: App, worker: str) -> set[str]:
    """Texts of rows the dead worker still held: the sends in flight when it died."""
    async with app.uow() as uow:
        rows = (await uow.session.execute(
            select(OutboxMessage).where(OutboxMessage.claimed_by == worker,
                                        OutboxMessage.status == "pending")
        )).scalars()
        return {row.payload["text"] for row in rows}


def delivered(fake: FakeTelegramServer) -> int:
    return sum(len(fake.sent_messages(chat)) for chat in CHATS)


async def test_killed_mid_burst_and_restarted_delivers_everything_once(
    app: App, telegram_server: FakeTelegramServer, database_url: str
) -> None:
    fake = telegram_server
    app.clock = SystemClock()  # the child uses the real time too
    wanted = {chat: [f"{chat}/{i:02d}" for i in range(PER_CHAT)] for chat in CHATS}
    for chat, messages in wanted.items():
        await add_rows(app, chat, messages)
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": database_url,
        "HOTLINE_TELEGRAM_TOKEN": fake.token,
        "HOTLINE_TELEGRAM_API_URL": fake.base_url,
        "HOTLINE_OUTBOX_PER_CHAT_INTERVAL": "0.02",
        "HOTLINE_OUTBOX_GLOBAL_PER_SECOND": "500",
    }
    # Both processes start together (importing aiogram takes seconds); the second waits.
    first, second = await asyncio.gather(start_child(env, "worker-a", 30), start_child(env, "worker-a", 30))
    try:
        # 1. Killed mid-burst, with two sends hanging inside Telegram and others flowing.
        await go(first)
        await wait_until(lambda: delivered(fake) >= 40, within=60)
        fake.hang("sendMessage", 30, times=2)
        calls = len(fake.calls_to("sendMessage"))
        await fake.wait_for_calls("sendMessage", calls + 2, within=10)
        await kill(first)
        in_flight = await leased_texts(app, "worker-a")
        assert len(in_flight) >= 2  # leased for another 30 s by a dead process
        assert delivered(fake) < len(CHATS) * PER_CHAT

        # 2. Restarted under the same name: it takes its leases back at once and finishes.
        await go(second)
        await wait_until(lambda: all(set(texts(fake, c)) == set(wanted[c]) for c in CHATS), within=60)
        await asyncio.sleep(0.3)
    finally:
        for proc in (first, second):
            if proc.returncode is None:
                await kill(proc)

    for chat in CHATS:
        got = texts(fake, chat)
        twice = {text for text, n in Counter(got).items() if n > 1}
        assert twice <= in_flight, f"sent twice without being in flight: {twice - in_flight}"
        assert list(dict.fromkeys(got)) == wanted[chat]  # first deliveries in order
    async with app.uow() as uow:
        statuses = Counter((await uow.session.execute(select(OutboxMessage.status))).scalars())
    assert statuses == {"sent": len(CHATS) * PER_CHAT}
