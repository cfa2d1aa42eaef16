"""Shared pieces of the reliability suite: ``hotline run`` in a killable process, people, reads.

``RuntimeChild`` is what ``hotline run`` runs (``hotline.cli.run._run``): settings from the
environment, ``open_app``, ``bot_from_settings``, ``BotRuntime`` with intake (webhook or long
polling), dispatcher and escalation scheduler -- in a forked process, so it starts in
milliseconds (it inherits this process's imports) and can be SIGKILLed at a chosen moment. The
two differences from the CLI are test seams: the clock is injected (a ``RunningClock``
starting where the test's clock is), and the classifier is the scripted one (so a report is
one message and one tap, deterministically).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from hotline.deps import App
from hotline.domain.enums import OrgKind
from hotline.services import people
from storage.models import Contact, InboxEntry, OutboxMessage, Person
from tests.fakes.telegram_api import FakeTelegramServer
from tests.procfs import children_of, running

WORKER = "reliability-worker"
SECRET = "reliability-Webhook_secret"
_fork = multiprocessing.get_context("fork")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(database_url: str, fake: FakeTelegramServer, **extra: str) -> dict[str, str]:
    """The environment ``hotline run`` would be started with (no stray channel settings)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOTLINE_ZALO", "HOTLINE_PUBLIC", "HOTLINE_WEBHOOK"))}
    env.update({
        "HOTLINE_DATABASE_URL": database_url,
        "HOTLINE_TELEGRAM_TOKEN": fake.token,
        "HOTLINE_TELEGRAM_API_URL": fake.base_url,
        "HOTLINE_WEBHOOK_SECRET": SECRET,
        "HOTLINE_WEBHOOK_HOST": "127.0.0.1",
        "HOTLINE_OUTBOX_PER_CHAT_INTERVAL": "0.02",
        "HOTLINE_OUTBOX_GLOBAL_PER_SECOND": "500",
        **extra,
    })
    return env


def _child_main(env: dict[str, str], start: str, options: dict[str, Any], ready: Any, hung: Any) -> None:
    os.environ.update(env)
    asyncio.run(_child_run(datetime.fromisoformat(start), options, ready, hung))


async def _child_run(start: datetime, options: dict[str, Any], ready: Any, hung: Any) -> None:
    from bot.runtime import BotRuntime
    from bot.telegram.client import bot_from_settings
    from handlers.harness import ScriptedClassifier
    from hotline.config import load_settings
    from hotline.services.app import open_app
    from tests.integration.test_dispatcher import RunningClock

    settings = load_settings()
    app = await open_app(settings, RunningClock(start), sync_groups=False)
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    hang_batch = options.get("hang_sweep_batch")
    if hang_batch is not None:
        _hang_sweep(int(hang_batch), hung)
    runtime = BotRuntime(app, bot_from_settings(settings), webhook=options["webhook"],
                         worker_id=WORKER, web=False, port=options.get("port"), polling_timeout=1)
    task = asyncio.create_task(runtime.run(handle_signals=False))
    async with asyncio.timeout(20):
        await runtime.started.wait()
        if runtime.polling is not None:
            await runtime.polling.started.wait()
    ready.set()
    if options.get("sweep_now") and runtime.scheduler is not None:
        for _ in range(100):  # PostgreSQL: the dead leader's advisory lock goes with its session
            if await runtime.scheduler.elect():
                break
            await asyncio.sleep(0.1)
        await runtime.scheduler.run_sweep()  # the scheduler's own job, without its 60 s wait
    await task


def _hang_sweep(batch: int, hung: Any) -> None:
    """Make the scheduler's sweep stop before committing ``batch`` (written, not committed)."""
    import escalation.scheduler as scheduler

    real = scheduler.sweep

    async def before_commit(index: int) -> None:
        if index == batch:
            hung.set()
            await asyncio.sleep(3600)

    async def hanging(app: App, now: datetime, **kwargs: Any) -> Any:
        return await real(app, now, batch_size=10, before_commit=before_commit)

    scheduler.sweep = hanging  # type: ignore[assignment]


class RuntimeChild:
    """``hotline run`` in a forked process; only ever SIGKILLed."""

    def __init__(self, env: dict[str, str], start: datetime, **options: Any) -> None:
        self.ready, self.hung = _fork.Event(), _fork.Event()
        #: Its child processes when it was killed (its inbox processor, on PostgreSQL).
        self.processors: list[int] = []
        self.process = _fork.Process(
            target=_child_main, args=(env, start.isoformat(), options, self.ready, self.hung),
            daemon=True,
        )

    async def start(self) -> RuntimeChild:
        self.process.start()
        if not await asyncio.to_thread(self.ready.wait, 30):
            await self.kill()
            raise AssertionError(f"hotline run child failed to start (exit {self.process.exitcode})")
        return self

    async def kill(self) -> None:
        """SIGKILL, as a crash would; its inbox processor process (PostgreSQL) dies with it."""
        self.processors = processors = (children_of(self.process.pid)
                                        if self.process.pid is not None else [])
        if self.process.pid is not None and self.process.exitcode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.to_thread(self.process.join, 10)
        assert self.process.exitcode == -signal.SIGKILL, self.process.exitcode
        for _ in range(100):
            if not any(map(running, processors)):
                break
            await asyncio.sleep(0.05)
        assert not any(map(running, processors)), "the inbox processor outlived its runtime"


async def register(app: App, chat_id: int, *, name: str = "Nguyễn Văn An",
                   org: str = "Công ty CP Số Việt", kind: OrgKind = OrgKind.ENTERPRISE,
                   language: str = "vi") -> tuple[Person, Contact]:
    """A reporter registered on Telegram (private chat id = user id = ``chat_id``)."""
    async with app.uow() as uow:
        contact = await people.touch_contact(uow, app, "telegram", str(chat_id), str(chat_id), name)
        person = await people.register_reporter(
            uow, app, contact, organisation_name=org, kind=kind, contact_name=name,
            language=language,
        )
        await uow.commit()
        return person, contact


async def count(app: App, model: Any, *where: Any) -> int:
    async with app.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def outbox_rows(app: App) -> list[OutboxMessage]:
    async with app.uow() as uow:
        return list((await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def in_flight(app: App) -> set[tuple[str, str]]:
    """(chat, text) of the rows the dead worker still held: the sends in flight when it died."""
    return {(row.chat_id, row.payload.get("text", "")) for row in await outbox_rows(app)
            if row.claimed_by == WORKER and row.status == "pending"}


async def wait_for(check: Callable[[], Any], within: float, what: str) -> None:
    """Poll an async ``check`` until it returns true."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 -- database state has no event
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {within} s waiting for {what}") from None


async def all_sent(app: App) -> bool:
    """Nothing left to do: every recorded update processed (the inbox is empty) and every
    outbox row sent."""
    if await count(app, InboxEntry):
        return False
    return {row.status for row in await outbox_rows(app)} <= {"sent"}


def deliveries(fake: FakeTelegramServer, rows: list[OutboxMessage]) -> tuple[int, set[tuple[str, str]]]:
    """(rows never delivered, (chat, text) delivered more often than queued), from the fake's
    log of what the bot sent (texts compared as sent, markup included)."""
    missing = 0
    extra: set[tuple[str, str]] = set()
    for chat in {row.chat_id for row in rows if row.channel == "telegram"}:
        queued = Counter(row.payload.get("text", "") for row in rows
                         if row.chat_id == chat and row.channel == "telegram")
        sent = Counter(m.html or "" for m in fake.sent_messages(int(chat)))
        missing += sum(max(0, n - sent[text]) for text, n in queued.items())
        extra |= {(chat, text) for text, n in sent.items() if n > queued[text]}
    return missing, extra
