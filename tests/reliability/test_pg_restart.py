"""PostgreSQL restarted under the running bot: it reconnects and carries on, nothing is lost.

The shared test server (127.0.0.1:5432) is never touched: the test starts a throw-away
cluster of its own (``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``, as the
``postgres`` user when running as root, since the server refuses to run as root) on a free
port, runs ``BotRuntime`` (webhook intake, dispatcher, scheduler) against it in this process,
and kills the server with ``pg_ctl stop -m immediate`` (no shutdown checkpoint, every
connection cut: what a crash or a failover looks like to the bot) while updates arrive, then
starts it again.

Checked: every update Telegram got a 200 for has its effect committed (an update that
arrives while the database is down must not be acknowledged and dropped); updates keep
flowing after the restart; every outbox row is delivered; the runtime never stopped.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.runtime import BotRuntime
from handlers.harness import ScriptedClassifier
from hotline.config import Settings
from hotline.deps import App
from hotline.services.app import open_app
from storage.db import create_engine, create_schema
from storage.models import InboundUpdate, Ticket
from tests.conftest import local
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot
from tests.integration.test_dispatcher import RunningClock
from tests.reliability.support import SECRET, all_sent, deliveries, free_port, outbox_rows, wait_for
from tests.reliability.tally import TALLY
from tests.reliability.test_runtime_kill import TEXT, draft_button, post, staff_and_reporters

pytestmark = pytest.mark.timeout(90)


class Cluster:
    """A private PostgreSQL cluster in a temporary directory."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[-1]).parent
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            if shutil.which("runuser") is None:
                pytest.skip("running as root and runuser is missing: cannot start a private server")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{args[0]} failed: {done.stderr or done.stdout}")

    def init(self) -> None:
        try:
            self.run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                     "-E", "UTF8", "--no-sync")
        except (AssertionError, OSError) as error:
            self.remove()
            pytest.skip(f"cannot create a private PostgreSQL cluster here: {error}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off")
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                 "-l", str(self.root / "server.log"), "-w", "-t", "30", "start")

    def crash(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    server = Cluster()
    await asyncio.to_thread(server.init)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        try:
            await asyncio.to_thread(server.crash)
        except AssertionError:
            pass  # already down
        server.remove()


@pytest.fixture
async def private_app(cluster: Cluster, tmp_path: Path, classifier_cache: Path) -> AsyncIterator[App]:
    engine = create_engine(cluster.url)
    await create_schema(engine)
    await engine.dispose()
    settings = Settings(database_url=cluster.url, output_dir=tmp_path / "out",
                        classifier_cache_dir=classifier_cache, webhook_secret=SecretStr(SECRET),
                        outbox_per_chat_interval=0.02, outbox_global_per_second=500,
                        _env_file=None)  # type: ignore[call-arg]
    app = await open_app(settings, RunningClock(local(2026, 12, 7, 9, 0)))
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    try:
        yield app
    finally:
        await app.close()


async def test_postgres_restarted_under_the_running_bot(
    private_app: App, cluster: Cluster, telegram_server: FakeTelegramServer
) -> None:
    app, fake = private_app, telegram_server
    chats = await staff_and_reporters(app)
    users = {chat: fake.user(chat, f"Người báo {chat}", None, username=None) for chat in chats}
    updates = {chat: fake.text_update(TEXT.format(i=i), user=users[chat]) for i, chat in enumerate(chats)}
    before, during, after = chats[:6], chats[6:12], chats[12:]
    runtime = BotRuntime(app, make_test_bot(fake), webhook=True, port=0, web=False,
                         worker_id="pg-restart", drain_timeout=5)
    task = asyncio.create_task(runtime.run(handle_signals=False))
    statuses: dict[int, int | None] = {}
    try:
        async with asyncio.timeout(10):
            await runtime.started.wait()
        url = runtime.telegram_webhook_url
        assert url is not None
        for chat in before:
            statuses[chat] = await post(fake, url, updates[chat])
        await wait_for(lambda: _all_drafts(fake, before), 15, "answers before the restart")

        # The server dies; updates keep arriving while it is down and while it comes back.
        await asyncio.to_thread(cluster.crash)
        arriving = [asyncio.create_task(_post_later(fake, url, updates[chat], 0.1 * i, statuses, chat))
                    for i, chat in enumerate(during)]
        await asyncio.sleep(0.4)
        await asyncio.to_thread(cluster.start)
        await asyncio.gather(*arriving)
        for chat in after:
            statuses[chat] = await post(fake, url, updates[chat])
        # Telegram redelivers whatever got no 200.
        for chat in chats:
            if statuses[chat] != 200:
                statuses[chat] = await post(fake, url, updates[chat])
        await wait_for(lambda: _all_drafts(fake, chats), 30, "answers after the restart")
        await wait_for(lambda: all_sent(app), 30, "the outbox to drain")
        # ... and it carries on: everybody files their report now.
        for chat in chats:
            found = draft_button(fake, chat)
            assert found is not None
            assert await post(fake, url, fake.callback_update(found[1], message=found[0],
                                                              user=users[chat])) == 200
        await wait_for(lambda: all_sent(app), 30, "the confirmations")
        assert not task.done(), "the runtime stopped"
    finally:
        runtime.stop()
        async with asyncio.timeout(20):
            await task

    async with app.uow() as uow:
        stored = set((await uow.session.execute(select(InboundUpdate.update_id))).scalars())
        tickets = len((await uow.session.execute(select(Ticket.id))).all())
    acked = {str(updates[chat]["update_id"]) for chat in chats if statuses[chat] == 200}
    missing, extra = deliveries(fake, await outbox_rows(app))
    TALLY["pg_restart"] += 1
    TALLY["lost_reports"] += len(acked - stored) + (len(chats) - tickets)
    TALLY["lost_messages"] += missing
    TALLY["duplicated"] += len(extra)
    assert acked - stored == set(), "acknowledged while the database was down, never stored"
    assert tickets == len(chats)
    assert missing == 0 and not extra


async def _all_drafts(fake: FakeTelegramServer, chats: list[int]) -> bool:
    return all(draft_button(fake, chat) is not None for chat in chats)


async def _post_later(fake: FakeTelegramServer, url: str, update: dict[str, object], delay: float,
                      statuses: dict[int, int | None], chat: int) -> None:
    await asyncio.sleep(delay)
    statuses[chat] = await post(fake, url, update)  # type: ignore[arg-type]
