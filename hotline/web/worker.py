"""Heavy work off the serving event loop.

A year of figures means loading about a million event rows and replaying them: tens of
seconds of Python. Run on the serving loop, even the *loading* (SQLAlchemy turns rows into
tuples on the loop's thread) would stall every request for seconds, including the public
board that should be answering from its cache meanwhile. Two places take it instead:

* whole-period figures (``figures``) are computed in a **child process** (one, started on
  first use, ``spawn`` so it inherits no threads, loops or connections): with two cores, the
  replay runs on one while the other keeps serving, and the two do not take turns on the
  interpreter lock as threads would (in a thread, the board's p95 rose tenfold during a
  refresh). The result crosses back pickled -- ticket rows are plain tuples for that;
* everything else heavy but smaller (filtered digests, charts, exports) runs in one worker
  **thread** with its own event loop and read-only connections (``readdb``).

Both queue their jobs one at a time, so computations never fight each other for the cores.
Without a child process (tests, an in-memory database) figures are computed in the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from hotline.clock import SystemClock
from hotline.config import Settings
from hotline.deps import App, Deps
from hotline.digests.period import Period
from hotline.domain.calendar import BusinessCalendar
from hotline.taxonomy import Taxonomy
from hotline.web.figures import TREND_WEEKS, Figures, Snapshot, compute_figures, compute_snapshot
from hotline.web.readdb import ReadApp, ReadDatabase, in_memory

T = TypeVar("T")
#: After this many deaths of the figure process, figures stay in the worker thread.
MAX_BROKEN = 3
log = logging.getLogger("hotline.web")


class Worker:
    def __init__(self, app: App, *, processes: bool = True) -> None:
        self._app = app
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotline-web-worker")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._db: ReadDatabase | None = None
        self._processes = processes and not in_memory(app.settings)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self._broken = 0

    # --- the worker thread -------------------------------------------------------------------

    def _reader(self) -> ReadApp:
        """Runs in the worker thread: its loop and connections, made on first use."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._db is None:
            self._db = ReadDatabase(self._app.settings, self._app.sessions, own_engine=True)
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

    # --- the child process -------------------------------------------------------------------

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=child_start, initargs=(self._app.settings, self._app.taxonomy))
        return self._pool

    async def figures(self, period: Period, trend_count: int = TREND_WEEKS) -> Figures:
        """The whole programme's figures for ``period`` (``figures.compute_figures``)."""
        return await self._heavy(child_figures, compute_figures, period, trend_count)

    async def snapshot(self, periods: tuple[Period, ...], trend_period: Period) -> Snapshot:
        """Several periods' figures from one read (``figures.compute_snapshot``)."""
        return await self._heavy(child_snapshot, compute_snapshot, periods, trend_period)

    async def _heavy(self, in_child: Callable[..., T], here: Callable[..., Awaitable[T]],
                     *args: Any) -> T:
        """``in_child(*args)`` in the figure process, or ``here(reader, *args)`` in the thread."""
        if self._processes and not self._closed:
            pool = self._start_pool()
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, in_child, *args)
            except BrokenProcessPool:  # the child died (killed, out of memory): start afresh
                self._broken += 1
                if self._broken >= MAX_BROKEN:  # it cannot even start: stop trying
                    self._processes = False
                log.warning("the web's figure process died (%d); computing in a thread this time",
                            self._broken)
                if self._pool is pool:  # not one a concurrent call has started since
                    self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
        return await self.call(lambda reader: here(reader, *args))

    def child_pids(self) -> list[int]:
        """The figure process's id, if one runs (tests, diagnostics)."""
        found = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in found.values() if p.pid is not None]

    async def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            # A child in the middle of a year's replay would hold shutdown for seconds; it only
            # reads, so it is stopped outright.
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)

        def stop() -> None:
            if self._loop is not None:
                if self._db is not None:
                    self._loop.run_until_complete(self._db.close())
                self._loop.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, stop)
        finally:
            self._thread.shutdown(wait=False, cancel_futures=True)


# --- in the child process -------------------------------------------------------------------

@dataclass
class _Child:
    loop: asyncio.AbstractEventLoop
    reader: ReadApp


#: The child's own loop and read connections, set once by ``child_start`` (per process, so a
#: module-level slot: a pool's worker function has nowhere else to find them).
_CHILD: list[_Child] = []


def child_start(settings: Settings, taxonomy: Taxonomy) -> None:
    """Runs once when the child starts. The parent's taxonomy comes along (pickled); the
    calendar is rebuilt from the settings, as ``build_deps`` makes the parent's.

    The child stops with its parent: ``SIGINT`` (Ctrl-C reaches the whole process group) is
    the parent's to handle, and a watcher thread ends the child if the parent dies without
    a clean shutdown (``SIGKILL``), which would otherwise leave it waiting for work forever.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        def watch() -> None:
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(0)

        threading.Thread(target=watch, name="hotline-web-parent-watch", daemon=True).start()
    # The clock is never read by ``compute_figures`` (the period carries its instants).
    deps = Deps(settings=settings, clock=SystemClock(),
                calendar=BusinessCalendar.from_settings(settings), taxonomy=taxonomy)
    db = ReadDatabase(settings, None, own_engine=True)
    _CHILD.append(_Child(asyncio.new_event_loop(), db.reader(deps)))


def child_figures(period: Period, trend_count: int) -> Figures:
    """Runs in the child process: the same ``compute_figures`` as the thread path."""
    child = _CHILD[0]
    return child.loop.run_until_complete(compute_figures(child.reader, period, trend_count))


def child_snapshot(periods: tuple[Period, ...], trend_period: Period) -> Snapshot:
    """Runs in the child process: the same ``compute_snapshot`` as the thread path."""
    child = _CHILD[0]
    return child.loop.run_until_complete(compute_snapshot(child.reader, periods, trend_period))
