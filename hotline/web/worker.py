"""Heavy work off the serving event loop: a thread with its own event loop and connections.

A year of figures means loading about a million event rows and replaying them: tens of
seconds of Python. Run on the serving loop, even the *loading* (SQLAlchemy turns rows into
tuples on the loop's thread) would stall every request for seconds, including the public
board that should be answering from its cache meanwhile. So loading, computing, chart
drawing and export writing all happen in one worker thread, which runs its own event loop
with its own read-only database connections (see ``readdb``). One thread: computations queue
instead of fighting over the two cores with the requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hotline.app import App
from hotline.web.readdb import ReadApp, ReadDatabase

T = TypeVar("T")


class Worker:
    def __init__(self, app: App) -> None:
        self._app = app
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotline-web-worker")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._db: ReadDatabase | None = None

    def _reader(self) -> ReadApp:
        """Runs in the worker thread: its loop and connections, made on first use."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._db is None:
            self._db = ReadDatabase(self._app, own_engine=True)
        return self._db.reader(self._app)

    async def call(self, fn: Callable[[ReadApp], Awaitable[T]]) -> T:
        """``await fn(reader)`` on the worker's loop, with the worker's database sessions."""
        def work() -> T:
            reader = self._reader()
            assert self._loop is not None
            return self._loop.run_until_complete(fn(reader))

        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """A plain function in the worker thread (drawing a chart, writing a workbook)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def close(self) -> None:
        def stop() -> None:
            if self._loop is not None:
                if self._db is not None:
                    self._loop.run_until_complete(self._db.close())
                self._loop.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, stop)
        finally:
            self._thread.shutdown(wait=False, cancel_futures=True)
