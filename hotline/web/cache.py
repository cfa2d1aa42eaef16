"""A small in-process cache for computed figures, invalidated by new events.

Figures over a year of history take seconds to compute, and every page view asking for them
again would melt the server. Each entry remembers the *watermark* it was computed at (the
newest event id and the red-alert state, one cheap indexed query) and when; a request with
the same watermark within ``ttl`` gets the entry as is. A new event changes the watermark and
invalidates the entry. Time alone also moves overdue counts, hence the ttl for figures that
run "to date".

Concurrent requests for the same missing entry share one computation (single flight). Public
pages are served the previous entry while a fresh one is computed in the background
(stale-while-revalidate), so a busy board never queues behind a recomputation, and they
refresh at most once per ttl after new events; signed-in pages wait for fresh numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from hotline.clock import Clock

V = TypeVar("V")
#: Without new events, board figures are recomputed after this many ttls.
STALE_FACTOR = 10
log = logging.getLogger("hotline.web")


@dataclass(frozen=True)
class Entry(Generic[V]):
    value: V
    watermark: Hashable
    computed_at: datetime


class FigureCache:
    def __init__(self, clock: Clock, ttl_seconds: float, max_entries: int = 64) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max = max_entries
        self._entries: OrderedDict[Hashable, Entry[Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[Entry[Any]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.computations = 0

    def _fresh(self, entry: Entry[Any], watermark: Hashable, expires: bool) -> bool:
        if entry.watermark != watermark:
            return False
        if not expires:
            return True
        return self._clock.now() - entry.computed_at < self._ttl

    async def get(
        self,
        key: Hashable,
        watermark: Hashable,
        compute: Callable[[], Awaitable[V]],
        *,
        expires: bool = True,
        allow_stale: bool = False,
    ) -> Entry[V]:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if allow_stale:
                if self._refresh_due(entry, watermark, expires):
                    self._start(key, watermark, compute)
                return entry
            if self._fresh(entry, watermark, expires):
                return entry
        task = self._start(key, watermark, compute)
        return await asyncio.shield(task)

    def _refresh_due(self, entry: Entry[Any], watermark: Hashable, expires: bool) -> bool:
        """For entries served stale (the public board): after new events, refresh at most once
        per ttl, so a busy hotline does not keep a core recomputing the year; without events,
        running figures still refresh every ``STALE_FACTOR`` ttls (overdue moves with time)."""
        age = self._clock.now() - entry.computed_at
        if entry.watermark != watermark and age >= self._ttl:
            return True
        return expires and age >= self._ttl * STALE_FACTOR

    def _start(self, key: Hashable, watermark: Hashable,
               compute: Callable[[], Awaitable[V]]) -> asyncio.Task[Entry[Any]]:
        task = self._inflight.get(key)
        if task is not None:
            return task

        async def run() -> Entry[Any]:
            at = self._clock.now()
            try:
                value = await compute()
                self.computations += 1
                entry = Entry(value, watermark, at)
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
                return entry
            finally:
                self._inflight.pop(key, None)

        task = asyncio.get_running_loop().create_task(run())
        self._inflight[key] = task
        self._background.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("figure computation failed: %s", type(task.exception()).__name__)

    async def idle(self) -> None:
        """Wait for background refreshes (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(BaseException):
                await task
        self._entries.clear()

    def clear(self) -> None:
        self._entries.clear()
