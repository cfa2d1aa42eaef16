"""Several dispatchers, leases, restarts and shutdown: no row sent twice, none left behind.

Run against PostgreSQL (``HOTLINE_TEST_DATABASE_URL``) this is the ``FOR UPDATE SKIP LOCKED``
claim under real concurrency; on SQLite the same contract holds through SQLite's single
writer. Each dispatcher gets its own ``App`` (engine and pool), as separate processes would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram import Bot
from sqlalchemy import update

from bot.dispatcher import OutboxDispatcher
from bot.ratelimit import ChatLimits
from bot.telegram.sender import TelegramSender
from hotline.deps import App
from hotline.services.app import open_app
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot
from tests.integration.test_dispatcher import (
    RunningClock,
    add_rows,
    make_dispatcher,
    outbox_rows,
    running,
    running_clock,
    texts,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)
FAST = ChatLimits(per_chat_interval=0.0)


@pytest.fixture
def clock_running(app: App) -> RunningClock:
    return running_clock(app)


@pytest.fixture
async def second_app(app: App, clock_running: RunningClock) -> AsyncIterator[App]:
    """Another process's view of the same database."""
    other = await open_app(app.settings, clock_running, sync_groups=False)
    try:
        yield other
    finally:
        await other.close()


async def claim(app: App, row_id: int, worker: str, until: timedelta) -> None:
    async with app.uow() as uow:
        await uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id)
            .values(claimed_by=worker, claimed_until=app.clock.now() + until)
        )
        await uow.commit()


async def test_two_dispatchers_never_send_a_row_twice(
    app: App, second_app: App, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    chats = list(range(501, 513))
    for round_ in range(10):
        for chat in chats:
            await add_rows(app, chat, [f"{chat}:{round_}"])
    other_bot = make_test_bot(fake)
    first = make_dispatcher(app, telegram_bot, worker_id="w1", limits=FAST, global_per_second=1000,
                            max_in_flight=4)
    second = OutboxDispatcher(second_app, {"telegram": TelegramSender(other_bot, timeout=5)},
                              worker_id="w2", limits=FAST, global_per_second=1000, max_in_flight=4,
                              poll_interval=0.2)
    try:
        async with running(first), running(second):
            await wait_until(lambda: sum(len(fake.sent_messages(c)) for c in chats) >= 120)
            await asyncio.sleep(0.3)  # a double send would show up now
    finally:
        await other_bot.session.close()
    sent = Counter(m.text for c in chats for m in fake.sent_messages(c))
    assert len(sent) == 120 and set(sent.values()) == {1}
    for chat in chats:
        assert texts(fake, chat) == [f"{chat}:{r}" for r in range(10)]  # order held across workers
    assert first.counts["sent"] + second.counts["sent"] == 120
    assert first.counts["sent"] > 0 and second.counts["sent"] > 0
    rows = await outbox_rows(app)
    assert {(r.status, r.claimed_by) for r in rows.values()} == {("sent", None)}


async def test_concurrent_claims_are_exclusive(app: App, second_app: App, clock_running: RunningClock,
                                               telegram_bot: Bot) -> None:
    """Claiming alone, many times at once from two workers: every row leased to exactly one."""
    for chat in range(600, 640):
        await add_rows(app, chat, [f"{chat}"])
    one = make_dispatcher(app, telegram_bot, worker_id="a", limits=FAST)
    two = make_dispatcher(second_app, telegram_bot, worker_id="b", limits=FAST)
    ids: list[int] = []
    for _ in range(10):
        claims = await asyncio.gather(*(d._claim(3) for d in (one, two) for _ in range(4)))
        ids += [row.id for c in claims for row in c.rows]
        if len(ids) >= 40:
            break
    assert len(ids) == len(set(ids)) == 40
    rows = await outbox_rows(app)
    owners = Counter(r.claimed_by for r in rows.values())
    assert set(owners) <= {"a", "b"} and sum(owners.values()) == 40


async def test_expired_lease_is_taken_over_and_a_live_one_blocks_the_chat(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    [dead] = await add_rows(app, 81, ["của tiến trình đã chết"])
    [busy, _behind] = await add_rows(app, 82, ["đang gửi ở nơi khác", "sau nó"])
    await claim(app, dead, "crashed", timedelta(seconds=-1))
    await claim(app, busy, "alive", timedelta(seconds=30))
    dispatcher = make_dispatcher(app, telegram_bot, worker_id="me", limits=FAST)
    assert await dispatcher.run_once() == 1
    assert texts(fake, 81) == ["của tiến trình đã chết"] and texts(fake, 82) == []
    assert await dispatcher.run_once() == 0  # chat 82 waits for its head, claimed by "alive"
    clock_running.advance(seconds=31)  # "alive" died without finishing: its lease runs out
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 1
    assert texts(fake, 82) == ["đang gửi ở nơi khác", "sau nó"]


async def test_restart_with_the_same_worker_id_takes_its_claims_back_at_once(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    [row] = await add_rows(app, 83, ["đang gửi khi bị tắt"])
    await claim(app, row, "bot-1", timedelta(minutes=5))
    async with running(make_dispatcher(app, telegram_bot, worker_id="bot-1", limits=FAST)):
        await wait_until(lambda: texts(fake, 83) == ["đang gửi khi bị tắt"], within=5)


async def test_heartbeat_keeps_a_slow_send_leased(
    app: App, second_app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer,
    telegram_bot: Bot,
) -> None:
    """A send slower than the lease is not taken over: the heartbeat extends it."""
    fake = telegram_server
    await add_rows(app, 84, ["chậm"])
    fake.hang("sendMessage", 1.2)
    slow = make_dispatcher(app, telegram_bot, worker_id="slow", limits=FAST, lease_seconds=0.4)
    other = make_dispatcher(second_app, telegram_bot, worker_id="other", limits=FAST, lease_seconds=0.4)
    task = asyncio.create_task(slow.run_once())
    await fake.wait_for_calls("sendMessage", 1)
    for _ in range(6):
        await asyncio.sleep(0.2)
        assert await other.run_once() == 0
    assert await task == 1
    assert texts(fake, 84) == ["chậm"] and len(fake.calls_to("sendMessage")) == 1


async def test_shutdown_finishes_the_current_piece_and_leaves_the_rest(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """Stop while the first piece of a split text is in flight: that piece completes, progress
    is recorded, the row goes back unclaimed; a new dispatcher sends only what is left."""
    fake = telegram_server
    body = "\n".join(f"dòng {i:04d} của một bản tin dài cần chia thành nhiều phần" for i in range(170))
    await add_rows(app, 85, [body])
    await add_rows(app, 86, ["chưa tới lượt"])
    fake.hang("sendMessage", 0.5)
    dispatcher = make_dispatcher(app, telegram_bot, worker_id="w", limits=ChatLimits(per_chat_interval=0.2),
                                 max_in_flight=1)
    async with running(dispatcher) as stop:
        await fake.wait_for_calls("sendMessage", 1)
        stop.set()
    assert len(fake.sent_messages(85)) == 1 and texts(fake, 86) == []
    first, second = (await outbox_rows(app)).values()
    assert (first.status, first.parts_sent, first.claimed_by) == ("pending", 1, None)
    assert (second.status, second.claimed_by) == ("pending", None)
    async with running(make_dispatcher(app, telegram_bot, worker_id="w2", limits=FAST)):
        await wait_until(lambda: texts(fake, 86) == ["chưa tới lượt"] and len(texts(fake, 85)) >= 3,
                         within=10)
        await asyncio.sleep(0.2)
    assert len(fake.sent_messages(85)) == 3
    assert len({m.text for m in fake.sent_messages(85)}) == 3
