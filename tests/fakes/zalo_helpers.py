"""Helpers for Zalo adapter tests: serve one of our aiohttp apps, record handled events.

``serve(app)`` runs a webhook app on 127.0.0.1 with a random port, so the fakes can deliver to
it over real HTTP. ``Recorder`` is an event handler that remembers what it was given
(optionally slowly, or failing a few times).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from handlers.events import InboundEvent


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
