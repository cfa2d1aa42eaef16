"""Helpers for Zalo adapter tests: serve our webhooks, record events, drain the outbox.

``serve(app)`` runs a webhook app on 127.0.0.1 with a random port, so the fakes can deliver to
it over real HTTP. ``Recorder`` is an event handler that remembers what it was given
(optionally slowly, or failing a few times).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

from bot.delivery import ChannelSender, DeliveryResult
from hotline.deps import App
from hotline.messages import InboundEvent, OutboundMessage
from storage.models import OutboxMessage


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on loopback; yields its base URL."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Recorder:
    """An ``EventHandler`` that records events; ``delay`` slows it, ``fail`` makes it raise."""

    def __init__(self, *, delay: float = 0.0, fail: int = 0) -> None:
        self.events: list[InboundEvent] = []
        self.delay = delay
        self.fail = fail
        self.calls = 0
        self._changed = asyncio.Event()

    async def __call__(self, event: InboundEvent) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("handler failed (test)")
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, count: int, *, within: float = 5.0) -> list[InboundEvent]:
        async with asyncio.timeout(within):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


class EngineProbe:
    """Wraps the engine's ``handle`` so a test can wait until N events were processed."""

    def __init__(self, handle: Callable[[InboundEvent], Awaitable[object]]) -> None:
        self.handle = handle
        self.handled = 0
        self._changed = asyncio.Event()

    async def __call__(self, event: InboundEvent) -> object:
        try:
            return await self.handle(event)
        finally:
            self.handled += 1
            self._changed.set()

    async def wait_for(self, count: int, *, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while self.handled < count:
                self._changed.clear()
                await self._changed.wait()


async def drain_outbox(app: App, senders: Mapping[str, ChannelSender]) -> list[DeliveryResult]:
    """A minimal stand-in for the outbox dispatcher: send every due row of the given channels
    in id order, mark the delivered ones sent (others stay pending), return the results.

    Like the real dispatcher must, it holds no transaction while a sender works: the Zalo
    senders open their own (numbered menus, token refresh), and on SQLite a transaction held
    across the call would wait on itself.
    """
    async with app.uow() as uow:
        rows = [(r.id, r.channel, r.payload) for r in await uow.outbox.pending(due_by=app.clock.now())
                if r.channel in senders]
    results: list[DeliveryResult] = []
    outcome: dict[int, DeliveryResult] = {}
    for row_id, channel, payload in rows:
        result = await senders[channel].send(OutboundMessage.from_json(payload))
        results.append(result)
        outcome[row_id] = result
    async with app.uow() as uow:
        now = app.clock.now()
        await uow.outbox.mark_sent([i for i, r in outcome.items() if r.ok], now)
        for row_id, result in outcome.items():
            if not result.ok:
                row = await uow.session.get(OutboxMessage, row_id)
                assert row is not None
                row.last_error = result.error
                if result.status == "blocked":
                    row.status = "undeliverable"
        await uow.commit()
    return results
