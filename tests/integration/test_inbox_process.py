"""PostgreSQL: the inbox processor in a process of its own lives and dies with the runtime.

With ``HOTLINE_INBOX_PROCESSING=process`` ``hotline run`` on PostgreSQL forks one processor
process per worker (``bot.inbox_process``); the default runs it in a thread. Scenarios: reports
posted to the webhook are answered through the processor process; a stop drains it and it
exits; a processor that dies stops the runtime with one clear error (a supervisor restarts
the whole worker) and what it left recorded is processed by the next start.
"""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest
from pydantic import SecretStr

from bot.runtime import BotRuntime
from hotline.deps import App
from storage import inbox as store
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot
from tests.integration.test_dispatcher import RunningClock, running_clock
from tests.procfs import running
from tests.reliability.support import register

pytestmark = pytest.mark.timeout(60)

SECRET = "process-Webhook_secret"
CHATS = [7301, 7302, 7303]


@pytest.fixture
def clock_running(app: App) -> RunningClock:
    return running_clock(app)


@pytest.fixture
async def pg_app(app: App, is_pg: bool, clock_running: RunningClock) -> App:
    if not is_pg:
        pytest.skip("the processor runs in a process of its own on PostgreSQL")
    app.settings = app.settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})
    for chat in CHATS:
        await register(app, chat)
    return app


async def post(runtime: BotRuntime, fake: FakeTelegramServer, chat: int, text: str) -> int:
    update = fake.text_update(text, user=fake.user(chat, f"User{chat}", None, language_code="vi"))
    async with aiohttp.ClientSession() as session, session.post(
        runtime.telegram_webhook_url or "", json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    ) as response:
        return response.status


async def started(app: App, fake: FakeTelegramServer) -> tuple[BotRuntime, asyncio.Task[None]]:
    runtime = BotRuntime(app, make_test_bot(fake), webhook=True, port=0, web=False, scheduler=False,
                         worker_id="process-test")
    task = asyncio.create_task(runtime.run(handle_signals=False))
    await asyncio.wait_for(runtime.started.wait(), 30)
    return runtime, task


async def every_chat_answered_then_stop(runtime: BotRuntime, task: asyncio.Task[None],
                                        app: App, fake: FakeTelegramServer) -> None:
    """Each chat sends /help through the webhook and gets its answer; then a graceful stop
    leaves nothing waiting."""
    for chat in CHATS:
        assert await post(runtime, fake, chat, "/help") == 200
    for chat in CHATS:
        await fake.wait_for_sent(chat, 1, within=20)
    runtime.stop()
    await asyncio.wait_for(task, 40)
    assert await store.waiting(app.engine) == 0


async def start(app: App, fake: FakeTelegramServer) -> tuple[BotRuntime, asyncio.Task[None], int]:
    """The runtime as ``hotline run`` starts it with the setting, and its processor's pid."""
    app.settings = app.settings.model_copy(update={"inbox_processing": "process"})
    runtime, task = await started(app, fake)
    assert runtime.inbox_runner is not None and runtime.inbox_runner.forked is not None
    pid = runtime.inbox_runner.forked.pid
    assert pid is not None and pid != os.getpid() and running(pid)
    return runtime, task, pid


async def test_reports_are_answered_through_the_processor_process_which_exits_on_stop(
    pg_app: App, telegram_server: FakeTelegramServer
) -> None:
    runtime, task, pid = await start(pg_app, telegram_server)
    # It yields the CPU to the webhook: lower priority by the setting (capped at 19).
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + pg_app.settings.inbox_processor_nice)
    await every_chat_answered_then_stop(runtime, task, pg_app, telegram_server)
    assert not running(pid), "the processor outlived its runtime"


async def test_a_dead_processor_stops_the_runtime_and_the_next_start_processes_its_rows(
    pg_app: App, telegram_server: FakeTelegramServer
) -> None:
    runtime, task, pid = await start(pg_app, telegram_server)
    os.kill(pid, signal.SIGSTOP)  # recorded, acknowledged, not processed
    try:
        assert await post(runtime, telegram_server, CHATS[0], "/help") == 200
        assert await store.waiting(pg_app.engine) == 1
    finally:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="inbox processor process exited with signal 9"):
        await asyncio.wait_for(task, 30)
    assert await store.waiting(pg_app.engine) == 1  # nothing acknowledged is lost

    runtime, task, _ = await start(pg_app, telegram_server)
    await telegram_server.wait_for_sent(CHATS[0], 1, within=20)
    runtime.stop()
    await asyncio.wait_for(task, 40)
    assert await store.waiting(pg_app.engine) == 0


async def test_the_default_processes_in_a_thread_of_the_worker(
    pg_app: App, telegram_server: FakeTelegramServer
) -> None:
    """``HOTLINE_INBOX_PROCESSING=thread`` (the default): no second process, the same answers."""
    runtime, task = await started(pg_app, telegram_server)
    assert runtime.inbox_runner is not None and runtime.inbox_runner.mode == "thread"
    assert runtime.inbox_runner.forked is None
    await every_chat_answered_then_stop(runtime, task, pg_app, telegram_server)
