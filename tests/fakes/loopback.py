"""What every fake platform server shares: an aiohttp app on a free loopback port, a client
session for posting to the bot's webhook, and waiting for something the bot does.

The fakes differ in their routes and their state; the lifecycle (start on port 0, close the
client before the runner, ``async with``) and the wait-for-a-call loop are one piece of code so a
fix to either reaches Telegram, the Zalo Bot API and the Zalo OA fakes alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Self

from aiohttp import ClientSession, web


class LoopbackServer:
    """Base of the fake servers: subclasses add their routes in ``_add_routes``."""

    #: Largest request body the fake accepts (aiohttp's default is 1 MiB).
    client_max_size = 1024**2

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self._call_listeners: set[asyncio.Event] = set()

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _release_waiters(self) -> None:
        """Wake anything parked on the server (long polls) before it shuts down."""

    async def start(self) -> Self:
        app = web.Application(client_max_size=self.client_max_size)
        self._add_routes(app)
        # handler_cancellation: a client that gives up (timeout, stop) cancels our long poll
        # or hang instead of leaving it running; a short shutdown keeps test teardown quick.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._release_waiters()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    @property
    def client(self) -> ClientSession:
        """The session the fake posts webhooks with (opened on first use)."""
        if self._client is None or self._client.closed:
            self._client = ClientSession()
        return self._client

    def _notify_call(self) -> None:
        """Wake every ``_wait_until`` to look again (after each recorded call)."""
        for listener in list(self._call_listeners):
            listener.set()

    async def _wait_until(self, done: Callable[[], bool], within: float) -> None:
        """Wait until ``done()`` holds, looking again after each call the fake records;
        ``TimeoutError`` after ``within`` seconds."""
        async with asyncio.timeout(within):
            while not done():
                event = asyncio.Event()
                self._call_listeners.add(event)
                try:
                    await event.wait()
                finally:
                    self._call_listeners.discard(event)
