"""SIGKILL the dispatcher mid-burst, restart it, and count what Telegram received.

The dispatcher runs in a real (forked) subprocess against the test database (a SQLite file, or the
PostgreSQL test database) and sends to the fake Bot API living in this test process, so the
fake sees exactly what left the dead process. After each kill the database is read as it
was left: rows still leased by the dead worker are the sends that were in flight. The
contract checked: every row is eventually delivered; a text reaches its chat twice only if
its row was in flight at a kill; each chat still receives its texts in order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from bot.dispatcher import OutboxDispatcher
from bot.telegram.client import bot_from_settings
from bot.telegram.sender import TelegramSender
from hotline.clock import SystemClock
from hotline.config import load_settings
from hotline.deps import App
from hotline.services.app import open_app
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeTelegramServer
from tests.integration.test_dispatcher import add_rows, texts, wait_until

pytestmark = pytest.mark.timeout(90)

CHATS = [9101, 9102, 9103, 9104, 9105]
PER_CHAT = 30

Process = multiprocessing.process.BaseProcess
_fork = multiprocessing.get_context("fork")


def _child(env: dict[str, str], worker: str, lease: float, ready: Any, go: Any) -> None:
    """The child process: the real dispatcher and sender, configured from the environment like
    ``hotline run``, with its own event loop, engine and connections."""
    os.environ.update(env)

    async def main() -> None:
        settings = load_settings()
        app = await open_app(settings, sync_groups=False)
        bot = bot_from_settings(settings)
        dispatcher = OutboxDispatcher(app, {"telegram": TelegramSender(bot, timeout=10)},
                                      worker_id=worker, lease_seconds=lease, poll_interval=0.1)
        ready.set()
        await asyncio.to_thread(go.wait)  # lets the test start it ahead of time
        await dispatcher.run(asyncio.Event())

    asyncio.run(main())


class Child:
    """A dispatcher in a forked process (it inherits this process's imports, so it starts in
    milliseconds instead of the seconds importing aiogram takes); only ever SIGKILLed."""

    def __init__(self, env: dict[str, str], worker: str, lease: float) -> None:
        self.ready, self.go = _fork.Event(), _fork.Event()
        self.process: Process = _fork.Process(
            target=_child, args=(env, worker, lease, self.ready, self.go), daemon=True
        )

    async def start(self) -> Child:
        self.process.start()
        if not await asyncio.to_thread(self.ready.wait, 30):
            await self.kill()
            raise AssertionError(f"dispatcher child failed to start (exit code {self.process.exitcode})")
        return self

    async def kill(self) -> None:
        if self.process.pid is not None and self.process.exitcode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.to_thread(self.process.join, 10)
        assert self.process.exitcode == -signal.SIGKILL


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
    first = await Child(env, "worker-a", 30).start()
    second = await Child(env, "worker-a", 30).start()  # the restart, waiting for its turn
    try:
        # 1. Killed mid-burst, with two sends hanging inside Telegram and others flowing.
        first.go.set()
        await wait_until(lambda: delivered(fake) >= 40, within=60)
        fake.hang("sendMessage", 30, times=2)
        calls = len(fake.calls_to("sendMessage"))
        await fake.wait_for_calls("sendMessage", calls + 2, within=10)
        await first.kill()
        in_flight = await leased_texts(app, "worker-a")
        assert len(in_flight) >= 2  # leased for another 30 s by a dead process
        assert delivered(fake) < len(CHATS) * PER_CHAT

        # 2. Restarted under the same name: it takes its leases back at once and finishes.
        second.go.set()
        await wait_until(lambda: all(set(texts(fake, c)) == set(wanted[c]) for c in CHATS), within=60)
        await asyncio.sleep(0.3)
    finally:
        for child in (first, second):
            if child.process.exitcode is None:
                await child.kill()

    for chat in CHATS:
        got = texts(fake, chat)
        twice = {text for text, n in Counter(got).items() if n > 1}
        assert twice <= in_flight, f"sent twice without being in flight: {twice - in_flight}"
        assert list(dict.fromkeys(got)) == wanted[chat]  # first deliveries in order
    async with app.uow() as uow:
        statuses = Counter((await uow.session.execute(select(OutboxMessage.status))).scalars())
    assert statuses == {"sent": len(CHATS) * PER_CHAT}
