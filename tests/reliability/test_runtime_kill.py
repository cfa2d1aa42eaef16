"""SIGKILL ``hotline run`` during intake, during a sweep and during dispatch; restart; count.

Each test runs the real runtime (``support.RuntimeChild``: webhook or long polling against the
fake Bot API, outbox dispatcher, escalation scheduler) in a forked process, kills it with
SIGKILL at the chosen moment, reads the database exactly as the dead process left it, then
starts it again under the same worker name and lets it finish. The contract:

* intake -- every update Telegram considers delivered (HTTP 200 from the webhook, or confirmed
  by a later ``getUpdates`` offset) is durable at the moment of death: its effect committed,
  or (webhook) its raw update recorded in the inbox, processed by the next start; the others
  are redelivered (Telegram's retry); each takes effect exactly once;
* sweep -- the uncommitted batch is lost as a whole and the restarted scheduler fires it:
  every escalation step exactly once, its event and its messages too;
* dispatch -- every outbox row is eventually delivered, and a text reaches a chat twice only
  if its row was in flight (leased by the dead worker) at the kill.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update

from escalation.sweep import sweep
from hotline.deps import App
from hotline.domain.enums import Role
from storage.models import Contact, InboundUpdate, InboxEntry, Ticket
from tests.factories import make_staff
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage
from tests.integration.test_dispatcher import RunningClock
from tests.integration.test_sweep_processes import WHEN, seed, state
from tests.reliability.support import (
    SECRET,
    RuntimeChild,
    all_sent,
    child_env,
    count,
    deliveries,
    free_port,
    in_flight,
    outbox_rows,
    register,
    wait_for,
)
from tests.reliability.tally import TALLY

pytestmark = pytest.mark.timeout(90)

REPORTERS = 20
FIRST_CHAT = 7001
TEXT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ -- hồ sơ số {i}"


async def staff_and_reporters(app: App) -> list[int]:
    for role in (Role.MEMBER, Role.LEAD):
        await make_staff(app, role, "mps", channel="telegram")
    await make_staff(app, Role.COORDINATOR, channel="telegram")
    chats = [FIRST_CHAT + i for i in range(REPORTERS)]
    for i, chat in enumerate(chats):
        await register(app, chat, name=f"Người báo {i}", org=f"Công ty số {i % 5}")
    return chats


def draft_button(fake: FakeTelegramServer, chat: int) -> tuple[SentMessage, str] | None:
    for message in reversed(fake.sent_messages(chat)):
        for row in message.buttons:
            for _, payload in row:
                if payload.startswith("rfile:"):
                    return message, payload
    return None


async def post(fake: FakeTelegramServer, url: str, update: dict[str, Any]) -> int | None:
    """POST like Telegram does; None when the connection died (Telegram would retry)."""
    try:
        status, _ = await fake.post_to_webhook(update, url=url, secret_token=SECRET, within=10)
    except (aiohttp.ClientError, TimeoutError):
        return None
    return status


async def tickets_by_chat(app: App) -> Counter[str]:
    async with app.uow() as uow:
        rows = await uow.session.execute(
            select(Contact.chat_id).join(Ticket, Ticket.contact_id == Contact.id))
        return Counter(chat for (chat,) in rows)


@pytest.mark.parametrize("processing", ["thread", "process"])
async def test_kill_during_intake_loses_no_acknowledged_report(
    app: App, telegram_server: FakeTelegramServer, database_url: str, is_pg: bool, processing: str
) -> None:
    """Also with the inbox processor in a process of its own (PostgreSQL), which must die with
    the runtime: nothing of the dead worker may go on working beside its successor."""
    if processing == "process" and not is_pg:
        pytest.skip("SQLite processes in the worker whatever the setting")
    fake = telegram_server
    app.clock = RunningClock(app.clock.now())
    chats = await staff_and_reporters(app)
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    env = child_env(database_url, fake, HOTLINE_INBOX_PROCESSING=processing)
    users = {chat: fake.user(chat, f"Người báo {chat}", None, username=None) for chat in chats}
    first = await RuntimeChild(env, app.clock.now(), webhook=True, port=port).start()
    second: RuntimeChild | None = None
    try:
        # Every reporter writes a report; the bot answers with the classification and "send".
        for i, chat in enumerate(chats):
            assert await post(fake, url, fake.text_update(TEXT.format(i=i), user=users[chat])) == 200
        await wait_for(lambda: _true(all(draft_button(fake, c) for c in chats)), 20, "the drafts")
        taps = {}
        for chat in chats:
            found = draft_button(fake, chat)
            assert found is not None
            taps[chat] = fake.callback_update(found[1], message=found[0], user=users[chat])

        # Everybody taps "send" at about the same time; the bot dies after a handful of 200s.
        statuses: dict[int, int | None] = {}
        enough = asyncio.Event()

        async def tap(i: int, chat: int) -> None:
            await asyncio.sleep(0.015 * i)
            statuses[chat] = await post(fake, url, taps[chat])
            if sum(1 for s in statuses.values() if s == 200) >= 6:
                enough.set()

        tapping = asyncio.gather(*(tap(i, chat) for i, chat in enumerate(chats)))
        await asyncio.wait_for(enough.wait(), 20)
        await first.kill()  # and its inbox processor process with it, if it has one
        assert len(first.processors) == (processing == "process"), first.processors
        await tapping
        acked = {chat for chat, status in statuses.items() if status == 200}
        filed = await tickets_by_chat(app)
        waiting = await recorded_chats(app)
        # A 200 means recorded: filed already, or waiting in the inbox for the next start.
        lost = [chat for chat in acked if filed[str(chat)] != 1 and str(chat) not in waiting]
        TALLY["kill_intake"] += 1
        TALLY["lost_reports"] += len(lost)
        assert not lost, f"acknowledged with 200 but neither filed nor recorded: {lost}"
        assert len(acked) < len(chats), "the kill came too late to test anything"
        flying = await in_flight(app)

        # Restarted; Telegram redelivers what it got no 200 for (same update ids).
        second = await RuntimeChild(env, app.clock.now(), webhook=True, port=port).start()
        for chat in chats:
            if chat not in acked:
                assert await post(fake, url, taps[chat]) == 200
        await wait_for(lambda: all_sent(app), 30, "the outbox to drain")
    finally:
        for child in (first, second):
            if child is not None and child.process.exitcode is None:
                await child.kill()

    filed = await tickets_by_chat(app)
    duplicated = sum(n - 1 for n in filed.values() if n > 1)
    missing, extra = deliveries(fake, await outbox_rows(app))
    TALLY["lost_reports"] += sum(1 for chat in chats if filed[str(chat)] == 0)
    TALLY["duplicated"] += duplicated + len(extra - flying)
    TALLY["lost_messages"] += missing
    assert all(filed[str(chat)] == 1 for chat in chats), filed
    assert missing == 0 and extra <= flying, (missing, extra - flying)
    refs = await _refs_by_chat(app)
    for chat in chats:  # each reporter heard their own reference
        assert any(refs[str(chat)] in (m.text or "") for m in fake.sent_messages(chat))


async def recorded_chats(app: App) -> set[str]:
    """Chats with updates recorded in the inbox and not processed yet."""
    async with app.uow() as uow:
        keys = (await uow.session.execute(select(InboxEntry.chat_key))).scalars()
        return {key.split(":", 1)[1] for key in keys}


async def _refs_by_chat(app: App) -> dict[str, str]:
    async with app.uow() as uow:
        rows = await uow.session.execute(
            select(Contact.chat_id, Ticket.ref).join(Ticket, Ticket.contact_id == Contact.id))
        return {chat: ref for chat, ref in rows}


async def _true(value: bool) -> bool:
    return value


async def test_kill_during_dispatch_loses_no_confirmed_update_and_no_message(
    app: App, telegram_server: FakeTelegramServer, database_url: str
) -> None:
    """Long polling this time: an update is acknowledged once a later getUpdates confirms its
    offset; the kill lands while two sends hang inside Telegram and others are flowing."""
    fake = telegram_server
    app.clock = RunningClock(app.clock.now())
    chats = await staff_and_reporters(app)
    env = child_env(database_url, fake)
    first = await RuntimeChild(env, app.clock.now(), webhook=False).start()
    second: RuntimeChild | None = None
    try:
        queued = [fake.queue_update(fake.text_update(TEXT.format(i=i), user=fake.user(chat)))
                  for i, chat in enumerate(chats)]
        ids = {str(u["update_id"]) for u in queued}
        await fake.wait_for_calls("sendMessage", 6, within=20)
        fake.hang("sendMessage", 30, times=2)
        calls = len(fake.calls_to("sendMessage"))
        await fake.wait_for_calls("sendMessage", calls + 2, within=20)
        await first.kill()
        pending = {str(u["update_id"]) for u in fake.pending_updates}
        confirmed = ids - pending
        async with app.uow() as uow:
            seen = set((await uow.session.execute(
                select(InboundUpdate.update_id).where(InboundUpdate.channel == "telegram"))).scalars())
        lost = confirmed - seen
        TALLY["kill_dispatch"] += 1
        TALLY["lost_reports"] += len(lost)
        assert not lost, f"confirmed to Telegram but not stored: {sorted(lost)}"
        flying = await in_flight(app)
        assert flying, "nothing was in flight at the kill"
        assert not await all_sent(app)

        second = await RuntimeChild(env, app.clock.now(), webhook=False).start()

        async def done() -> bool:
            stored = await count(app, InboundUpdate, InboundUpdate.update_id.in_(ids))
            return stored == len(ids) and not fake.pending_updates and await all_sent(app)

        await wait_for(done, 40, "every update handled and every message sent")
    finally:
        for child in (first, second):
            if child is not None and child.process.exitcode is None:
                await child.kill()

    missing, extra = deliveries(fake, await outbox_rows(app))
    TALLY["lost_messages"] += missing
    TALLY["duplicated"] += len(extra - flying)
    assert missing == 0 and extra <= flying, (missing, extra - flying)
    for chat in chats:  # one draft answer each (twice only if it was the one in flight)
        assert draft_button(fake, chat) is not None


async def test_kill_during_a_sweep_fires_every_step_exactly_once(
    app: App, telegram_server: FakeTelegramServer, database_url: str
) -> None:
    fake = telegram_server
    app.clock = RunningClock(WHEN)
    await seed(app, 40)
    async with app.uow() as uow:  # the seeded staff and reporter chat on Telegram
        await uow.session.execute(update(Contact).values(channel="telegram"))
        await uow.commit()
    expected = {(s.ticket_id, s.level)
                for s in (await sweep(app, WHEN + timedelta(minutes=1), dry_run=True)).fired}
    assert len(expected) > 40
    env = child_env(database_url, fake)
    first = await RuntimeChild(env, app.clock.now(), webhook=False, sweep_now=True,
                               hang_sweep_batch=1).start()
    second: RuntimeChild | None = None
    try:
        assert await asyncio.to_thread(first.hung.wait, 30), "the sweep never reached batch 1"
        await first.kill()
        keys, *_ = await state(app)
        assert keys and keys < expected  # batch 0 committed, batch 1 died uncommitted
        flying = await in_flight(app)

        second = await RuntimeChild(env, app.clock.now(), webhook=False, sweep_now=True).start()

        async def done() -> bool:
            return (await state(app))[0] == expected and await all_sent(app)

        await wait_for(done, 40, "the restarted sweep and its messages")
    finally:
        for child in (first, second):
            if child is not None and child.process.exitcode is None:
                await child.kill()

    keys, events, steps, red = await state(app)
    missing, extra = deliveries(fake, await outbox_rows(app))
    TALLY["kill_sweep"] += 1
    TALLY["lost_escalations"] += len(expected - keys)
    TALLY["duplicated"] += sum(n - 1 for n in events.values()) + sum(n - 1 for n in steps.values())
    TALLY["duplicated"] += len(extra - flying)
    TALLY["lost_messages"] += missing
    assert keys == expected
    assert set(events.values()) == {1} and set(steps.values()) == {1} and red == 2
    assert missing == 0 and extra <= flying, (missing, extra - flying)
