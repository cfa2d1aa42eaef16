"""The inbox: recorded once, processed per chat in arrival order, shared by several processors.

A burst of updates from a few chats is recorded (redeliveries included) and processed by
``InboxProcessor``s whose engine notes what it saw, taking a varying time per update. Each
chat's updates must come out in the order they were recorded, each once; on PostgreSQL two
processors (as two workers would) share the table through per-chat advisory locks, and a
processor that dies hands its chats on.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from typing import Any

import pytest

from bot.inbox import Inbox, InboxProcessor
from hotline.deps import App
from hotline.messages import InboundEvent, OutboundMessage
from storage import inbox as store

CHATS = [f"c{i}" for i in range(6)]
PER_CHAT = 12


class Observer:
    """Stands where the engine is: notes (chat, n) in the order it is asked to handle them."""

    def __init__(self, name: str, seen: dict[str, list[int]], seed: int) -> None:
        self.name = name
        self.seen = seen
        self.by: dict[str, set[str]] = defaultdict(set)
        self.random = random.Random(seed)

    async def handle(self, event: InboundEvent) -> list[OutboundMessage]:
        await asyncio.sleep(self.random.random() * 0.01)
        self.seen[event.chat_id].append(int(event.text or 0))
        self.by[self.name].add(event.chat_id)
        return []


def decode(payload: Any) -> InboundEvent:
    return InboundEvent(channel="test", update_id=payload["id"], user_id=payload["chat"],
                        chat_id=payload["chat"], text=str(payload["n"]))


async def record_burst(app: App) -> None:
    inbox = Inbox(app)
    order = [(chat, n) for n in range(PER_CHAT) for chat in CHATS]
    for chat, n in order:
        payload = {"id": f"{chat}-{n}", "chat": chat, "n": n}
        event = decode(payload)
        await inbox.record(event, json.dumps(payload))
        if n % 5 == 0:  # a redelivery while the first copy waits: absorbed by the insert
            await inbox.record(event, json.dumps(payload))


async def run_until_empty(app: App, *processors: InboxProcessor, within: float = 20) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop, drain_timeout=5)) for p in processors]
    try:
        async with asyncio.timeout(within):
            while await store.waiting(app.engine):
                for p in processors:
                    p.wake()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def in_order(seen: dict[str, list[int]]) -> None:
    assert set(seen) == set(CHATS)
    for chat, numbers in seen.items():
        assert numbers == list(range(PER_CHAT)), (chat, numbers)


async def test_one_processor_keeps_each_chats_order_and_takes_each_update_once(app: App) -> None:
    await record_burst(app)
    assert await store.waiting(app.engine) == len(CHATS) * PER_CHAT
    seen: dict[str, list[int]] = defaultdict(list)
    observer = Observer("one", seen, 1)
    processor = InboxProcessor(app, observer, {"test": decode}, concurrency=4)  # type: ignore[arg-type]
    await run_until_empty(app, processor)
    in_order(seen)


async def test_two_processors_share_the_inbox_chat_by_chat(app: App) -> None:
    """Two workers on PostgreSQL (advisory locks); on SQLite two runtimes of one process on one
    file (the process's registry): never the same chat at once, so each chat stays in order."""
    await record_burst(app)
    seen: dict[str, list[int]] = defaultdict(list)
    observers = [Observer(name, seen, seed) for seed, name in enumerate(("a", "b"))]
    processors = [InboxProcessor(app, o, {"test": decode}, concurrency=2, batch=3)  # type: ignore[arg-type]
                  for o in observers]
    await run_until_empty(app, *processors)
    in_order(seen)
    assert all(o.by[o.name] for o in observers), "one processor did all the work"


async def test_a_dead_processors_chats_pass_on(app: App, is_pg: bool) -> None:
    """A processor killed mid-chat (its lock connection dropped, as when its process dies):
    what it did not finish is taken by the other, in order, and nothing it finished again."""
    if not is_pg:
        pytest.skip("several processors (workers) need PostgreSQL")
    await record_burst(app)
    seen: dict[str, list[int]] = defaultdict(list)
    dying = InboxProcessor(app, Observer("dying", seen, 7), {"test": decode},  # type: ignore[arg-type]
                           concurrency=6, batch=PER_CHAT)
    stop = asyncio.Event()
    task = asyncio.create_task(dying.run(stop, drain_timeout=0))
    async with asyncio.timeout(10):
        while sum(len(v) for v in seen.values()) < 10:  # noqa: ASYNC110 -- polled on purpose
            await asyncio.sleep(0.005)
    task.cancel()  # dies: rows handled are not deleted yet, and its locks go with its session
    await asyncio.gather(task, return_exceptions=True)
    handled = {chat: list(numbers) for chat, numbers in seen.items()}
    survivor = InboxProcessor(app, Observer("survivor", seen, 8), {"test": decode})  # type: ignore[arg-type]
    await run_until_empty(app, survivor)
    for chat in CHATS:
        again = seen[chat][len(handled.get(chat, [])):]
        # The survivor starts where the dead one's deletions stopped: the engine's own
        # de-duplication (inbound_updates) absorbs those, so here order is what counts.
        assert again == sorted(again) and (not again or again[-1] == PER_CHAT - 1), (chat, seen[chat])


async def test_a_stale_deletion_never_takes_an_update_that_arrived_since(app: App) -> None:
    """A slow processor deletes an update another one already processed and deleted, after a
    new update arrived. SQLite hands the new row the freed id; deleting by (channel, update id)
    leaves the new update waiting -- by row id it was lost (once in ~1,000 with two processors)."""
    inbox = Inbox(app)
    first = {"id": "u-1", "chat": "c0", "n": 1}
    await inbox.record(decode(first), json.dumps(first))
    [(channel, update_id, _)] = await store.rows_of(app.engine, "test:c0", 10)
    await store.forget(app.engine, [(channel, update_id)])  # the fast processor's deletion
    second = {"id": "u-2", "chat": "c0", "n": 2}
    await inbox.record(decode(second), json.dumps(second))
    await store.forget(app.engine, [(channel, update_id)])  # the slow one's, of the same update
    assert [row[1] for row in await store.rows_of(app.engine, "test:c0", 10)] == ["u-2"]


async def test_chat_locks_of_one_process_never_hand_out_a_chat_twice(app: App) -> None:
    first, second = store.ChatLocks(app.engine), store.ChatLocks(app.engine)
    try:
        assert await first.try_lock(["a", "b"]) == ["a", "b"]
        assert await second.try_lock(["b", "c"]) == ["c"]
        await first.unlock("b")
        assert await second.try_lock(["b"]) == ["b"]
        await second.close()  # lets go of all it held
        assert await first.try_lock(["b", "c"]) == ["b", "c"]
    finally:
        await first.close()
        await second.close()
