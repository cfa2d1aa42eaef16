"""Zalo OA: a burst of signed messages while the database is stalled, then the process dies.

Zalo gives a webhook two seconds and never redelivers what it got a 200 for, so a 200 must
mean "stored". The runtime (``hotline run`` with only Zalo OA configured, in a forked process)
records each event in the inbox before answering and processes it from there. The database is
stalled during the burst:

* PostgreSQL: the test holds ``inbound_updates`` locked, so processing waits while recording
  (another table) goes on -- every message is answered 200 and none is processed yet;
* SQLite (one writer): the test holds the write lock for 1.8 s, so recording waits too; what
  cannot be recorded within Zalo's window (the first messages) is answered 503 and Zalo
  delivers it again.

Right after the answers the process is killed (SIGKILL), or stopped (SIGTERM) with a drain
timeout shorter than the stall. Every acknowledged message is recorded at that moment; a
restart processes each exactly once: one ``inbound_updates`` row and one reply per message.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from hotline.deps import App
from hotline.domain.enums import OrgKind
from hotline.services import people
from storage.models import InboundUpdate, InboxEntry, OutboxMessage
from tests.fakes.zalo_oa_api import APP_ID, APP_SECRET, OA_SECRET_KEY, FakeZaloOAServer
from tests.integration.test_dispatcher import RunningClock
from tests.reliability.support import count, free_port, wait_for
from tests.reliability.tally import TALLY

pytest_plugins = ["tests.fakes.zalo_fixtures"]
pytestmark = pytest.mark.timeout(90)

USERS = [f"61424948230000{i:05d}" for i in range(16)]
TEXT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ -- tin số {i}"
PATH = "/zalo/oa/webhook"
_fork = multiprocessing.get_context("fork")


def _child_main(env: dict[str, str], start: str, port: int, ready: Any) -> None:
    os.environ.update(env)
    asyncio.run(_child_run(datetime.fromisoformat(start), port, ready))


async def _child_run(start: datetime, port: int, ready: Any) -> None:
    """What ``hotline run`` runs with only Zalo OA configured (clock and classifier are the
    suite's test seams)."""
    from bot.runtime import BotRuntime
    from handlers.harness import ScriptedClassifier
    from hotline.config import load_settings
    from hotline.services.app import open_app

    settings = load_settings()
    app = await open_app(settings, RunningClock(start), sync_groups=False)
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    runtime = BotRuntime(app, None, worker_id="zalo-crash", web=False, scheduler=False, port=port,
                         drain_timeout=1.0)
    task = asyncio.create_task(runtime.run())  # SIGTERM: a graceful stop
    async with asyncio.timeout(20):
        await runtime.started.wait()
    ready.set()
    try:
        await task
    finally:
        await app.close()


class ZaloChild:
    def __init__(self, env: dict[str, str], start: datetime, port: int) -> None:
        self.ready = _fork.Event()
        self.process = _fork.Process(target=_child_main, daemon=True,
                                     args=(env, start.isoformat(), port, self.ready))

    async def start(self) -> ZaloChild:
        self.process.start()
        if not await asyncio.to_thread(self.ready.wait, 30):
            self.kill_now()
            raise AssertionError(f"the Zalo runtime failed to start (exit {self.process.exitcode})")
        return self

    def kill_now(self) -> None:
        if self.process.pid is not None and self.process.exitcode is None:
            os.kill(self.process.pid, signal.SIGKILL)

    async def end(self, how: signal.Signals) -> int | None:
        if self.process.pid is not None and self.process.exitcode is None:
            os.kill(self.process.pid, how)
        await asyncio.to_thread(self.process.join, 20)
        return self.process.exitcode


def zalo_env(database_url: str, server: FakeZaloOAServer) -> dict[str, str]:
    access, refresh = server.issue_tokens()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTLINE_ZALO", "HOTLINE_TELEGRAM", "HOTLINE_WEBHOOK"))}
    env.update({
        "HOTLINE_DATABASE_URL": database_url,
        "HOTLINE_WEBHOOK_HOST": "127.0.0.1",
        "HOTLINE_ZALO_OA_APP_ID": APP_ID,
        "HOTLINE_ZALO_OA_SECRET_KEY": OA_SECRET_KEY,
        "HOTLINE_ZALO_OA_APP_SECRET": APP_SECRET,
        "HOTLINE_ZALO_OA_ACCESS_TOKEN": access,
        "HOTLINE_ZALO_OA_REFRESH_TOKEN": refresh,
        "HOTLINE_ZALO_OA_API_URL": server.base_url,
        "HOTLINE_ZALO_OA_OAUTH_URL": server.base_url,
        "HOTLINE_OUTBOX_PER_CHAT_INTERVAL": "0",
        "HOTLINE_OUTBOX_GLOBAL_PER_SECOND": "500",
    })
    return env


async def reporters(app: App) -> None:
    async with app.uow() as uow:
        for i, user in enumerate(USERS):
            contact = await people.touch_contact(uow, app, "zalo_oa", user, user, f"Người báo {i}")
            await people.register_reporter(uow, app, contact, organisation_name=f"Công ty {i}",
                                           kind=OrgKind.ENTERPRISE, contact_name=f"Người báo {i}")
        await uow.commit()


@asynccontextmanager
async def stalled(app: App, database_url: str, *, hold: float) -> AsyncIterator[None]:
    """The database stalls: PostgreSQL -- processing waits on a table lock (until the block
    ends); SQLite -- all writes wait for ``hold`` seconds."""
    if app.engine.dialect.name == "postgresql":
        async with app.engine.connect() as conn:
            await conn.execute(text("LOCK TABLE inbound_updates IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await conn.rollback()
        return
    path = make_url(database_url).database
    assert path
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    release = asyncio.get_running_loop().call_later(hold, lock.rollback)
    try:
        yield
    finally:
        release.cancel()
        lock.rollback()
        lock.close()


async def burst(server: FakeZaloOAServer, url: str, events: dict[str, dict[str, Any]],
                spread: float = 0.0) -> dict[str, int | None]:
    """Every event posted once, the i-th after ``i * spread`` seconds."""
    async def one(i: int, user: str) -> tuple[str, int | None]:
        await asyncio.sleep(i * spread)
        try:
            status, _, _ = await server.push_event(url, events[user], within=5)
        except (OSError, TimeoutError):
            return user, None
        return user, status

    return dict(await asyncio.gather(*(one(i, user) for i, user in enumerate(events))))


async def processed(app: App) -> set[str]:
    async with app.uow() as uow:
        return set((await uow.session.execute(
            select(InboundUpdate.update_id).where(InboundUpdate.channel == "zalo_oa"))).scalars())


async def recorded(app: App) -> set[str]:
    async with app.uow() as uow:
        return set((await uow.session.execute(select(InboxEntry.update_id))).scalars())


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_every_acknowledged_message_is_processed_exactly_once(
    app: App, database_url: str, zalo_oa_server: FakeZaloOAServer, how: signal.Signals
) -> None:
    server = zalo_oa_server
    app.clock = RunningClock(app.clock.now())
    await reporters(app)
    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    env = zalo_env(database_url, server)
    events = {user: server.text_event(user, TEXT.format(i=i)) for i, user in enumerate(USERS)}
    ids = {user: str(event["message"]["msg_id"]) for user, event in events.items()}
    first = await ZaloChild(env, app.clock.now(), port).start()
    second: ZaloChild | None = None
    try:
        async with stalled(app, database_url, hold=1.8):
            statuses = await burst(server, url, events, spread=0.05)
            assert await count(app, InboxEntry) or app.engine.dialect.name == "sqlite"
            exit_code = await first.end(how)  # right after the answers, still stalled
        acked = {user for user, status in statuses.items() if status == 200}
        assert acked, statuses
        assert set(statuses.values()) <= {200, 503}, statuses
        if how == signal.SIGTERM:
            assert exit_code == 0
        durable = await processed(app) | await recorded(app)
        print(f"\n{how.name}: {len(acked)} of {len(USERS)} answered 200; at the stop "
              f"{len(await processed(app))} processed, {len(await recorded(app))} in the inbox")
        lost = [user for user in acked if ids[user] not in durable]
        TALLY["kill_intake"] += 1
        TALLY["lost_reports"] += len(lost)
        assert not lost, f"answered 200 but neither processed nor recorded: {lost}"

        second = await ZaloChild(env, app.clock.now(), port).start()
        # Zalo delivers again what got no 200, and the first two once more (a late retry).
        retry = {user: events[user] for user in USERS if user not in acked}
        retry.update({user: events[user] for user in USERS[:2]})
        again = await burst(server, url, retry)
        assert set(again.values()) == {200}, again

        async def done() -> bool:
            return (await processed(app) >= set(ids.values()) and not await count(app, InboxEntry)
                    and sum(len(server.sent(user)) for user in USERS) >= len(USERS))

        await wait_for(done, 30, "every message processed and answered")
        await asyncio.sleep(0.3)  # a second answer would show up now
    finally:
        for child in (first, second):
            if child is not None:
                child.kill_now()

    assert await processed(app) == set(ids.values())
    async with app.uow() as uow:
        replies = Counter((await uow.session.execute(
            select(OutboxMessage.chat_id).where(OutboxMessage.channel == "zalo_oa"))).scalars())
    twice = {user: n for user, n in replies.items() if n != 1}
    TALLY["duplicated"] += sum(n - 1 for n in twice.values() if n > 1)
    assert set(replies) == set(USERS) and not twice, twice  # one answer per message, once
    for i, user in enumerate(USERS):
        assert [m.text for m in server.sent(user)] and any(
            TEXT.format(i=i) in (m.text or "") for m in server.sent(user)), user
