"""Telegram's sending limits, as the outbox dispatcher applies them.

Telegram documents about one message per second per private chat, 20 messages per minute
per group chat and about 30 messages per second overall; going faster earns ``429 Too Many
Requests`` and, if repeated, longer bans. Two tools, because the limits have different homes:

- ``ChatLimits`` is pure arithmetic over a chat's recent sends *as recorded in the database*
  (``outbox.sent_at``). The database is the one memory shared by several workers and by a
  restarted process, so a chat's pace holds when its messages are sent by different workers
  or straddle a restart.
- ``SharedPacer`` spaces the sends of *every* worker of one bot evenly, through slots
  reserved from one database row per channel (``storage.pacing``): each worker takes the next
  few slots in one short transaction and sends at those instants, so however many workers
  run, together they stay under the limit without dividing it by hand
  (``HOTLINE_OUTBOX_GLOBAL_PER_SECOND`` is the bot's limit, not a worker's share).
  ``Pacer`` is the same even spacing for one process alone.

Why a margin under the limit (``GLOBAL_MARGIN``): the limit counts *arrivals* at the API.
Between a slot and the request's arrival lie the event loop's wake-up, aiogram and the
network, whose delays vary; evenly spaced slots ``1/rate`` apart keep any 1-second window at
30 or fewer arrivals only while those delays vary by less than ``30/rate - 1`` seconds
(87 ms at 27.6/s, 75 ms at 27.9/s, nothing at 30/s; on a loaded two-core machine 75 ms was once
exceeded in 3,200 sends, hence 92 %). A slot woken up more than ``tolerance`` late is
given up rather than used, which bounds the part of that spread this process adds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.pacing import Reservation

log = logging.getLogger(__name__)

#: Fraction of the overall limit actually used (see the module docstring).
GLOBAL_MARGIN = 0.92
#: Slots reserved per database round trip (at most; fewer when fewer sends wait).
RESERVE_BATCH = 8

#: The window Telegram's per-group limit is counted over.
GROUP_WINDOW = timedelta(minutes=1)


def is_group_chat(channel: str, chat_id: str) -> bool:
    """Telegram groups and supergroups have negative ids (``-100...`` for supergroups);
    ``@channelname`` targets are channels, which share the group limit."""
    if channel != "telegram":
        return False
    chat = chat_id.strip()
    return chat.startswith("-") or chat.startswith("@")


@dataclass(frozen=True)
class ChatLimits:
    """Per-chat limits: a minimum gap between two sends, plus a per-minute cap for groups."""

    per_chat_interval: float = 1.0
    group_per_minute: int = 20

    @property
    def window(self) -> timedelta:
        """How far back ``allowed_at`` needs to look."""
        return max(GROUP_WINDOW, timedelta(seconds=self.per_chat_interval))

    def piece_gap(self, group: bool) -> float:
        """Seconds between the pieces of one split message sent in a row (no database look-up
        in between): the per-chat gap, and for groups the per-minute cap spread evenly."""
        if group:
            return max(self.per_chat_interval, 60.0 / self.group_per_minute)
        return self.per_chat_interval

    def allowed_at(self, sends: Iterable[tuple[datetime, int]], group: bool) -> datetime | None:
        """Earliest instant the next message may go, given ``(sent_at, pieces)`` of this chat's
        recent sends; ``None`` when there were none (send at once)."""
        recent = sorted(sends, key=lambda item: item[0], reverse=True)
        if not recent:
            return None
        earliest = recent[0][0] + timedelta(seconds=self.per_chat_interval)
        if group:
            # A row sent in k pieces counts k times; the (cap)-th most recent piece must
            # leave the window before another one may go.
            counted = 0
            for sent_at, pieces in recent:
                counted += max(1, pieces)
                if counted >= self.group_per_minute:
                    earliest = max(earliest, sent_at + GROUP_WINDOW)
                    break
        return earliest


class Pacer:
    """At most ``rate`` calls per second from this process, evenly spaced.

    Even spacing instead of a token bucket: a bucket that starts full allows a burst of
    ``rate`` plus the steady ``rate`` within one second, which is what the overall limit
    forbids. ``pause`` holds every caller (a 429 answer says the bot is over *some* limit).
    """

    def __init__(
        self,
        rate: float,
        *,
        time: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._time = time
        self._sleep = sleep
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def now(self) -> float:
        return self._time() if self._time is not None else asyncio.get_running_loop().time()

    def pause(self, seconds: float) -> None:
        """Hold every call for ``seconds`` from now (longest pause wins)."""
        self._paused_until = max(self._paused_until, self.now() + max(0.0, seconds))

    @property
    def paused_for(self) -> float:
        """Seconds left of a pause (0 when not paused)."""
        return max(0.0, self._paused_until - self.now())

    async def acquire(self) -> None:
        """Wait for this caller's slot; callers are served in arrival order."""
        async with self._lock:
            while True:
                now = self.now()
                ready = max(self._next, self._paused_until)
                if ready <= now:
                    break
                await self._sleep(ready - now)
            self._next = max(now, self._next) + self.interval


class SharedPacer:
    """The overall pace of one channel's bot across all workers, from reserved slots.

    ``reserve(count)`` takes the next ``count`` slots from the shared row (one transaction);
    ``publish_pause(until)`` writes a pause there. Callers ``acquire`` in order of urgency,
    then arrival: rows that already waited for their chat's gap (``urgent``) take the next
    slot before a broadcast's queue, so one busy chat keeps its 1-second rhythm. One task
    hands the slots out; it reserves the next batch in the background while the current one
    runs low, so a round trip to the database never opens a gap in the stream.

    ``now`` is epoch seconds from the injected clock; slots are absolute instants shared with
    other processes. Without a database answer (down, disk full) the pacer falls back to
    half the rate on its own, for the sends already claimed.
    """

    def __init__(
        self,
        rate: float,
        reserve: Callable[[int], Awaitable[Reservation]],
        *,
        now: Callable[[], float],
        publish_pause: Callable[[float], Awaitable[None]] | None = None,
        batch: int = RESERVE_BATCH,
        tolerance: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.batch = max(1, batch)
        self.tolerance = tolerance if tolerance is not None else max(self.interval / 3, 0.004)
        self._reserve = reserve
        self._publish_pause = publish_pause
        self.now = now
        self._sleep = sleep
        self._slots: deque[float] = deque()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._paused_until = 0.0
        self._server: asyncio.Task[None] | None = None
        self._refill: asyncio.Task[None] | None = None
        self._last_local = 0.0
        self._publishing: set[asyncio.Task[None]] = set()
        #: Slots given up (woken too late, or inside a pause) and reservations that failed.
        self.wasted = 0
        self.reserve_failures = 0
        self.reservations = 0

    # --- pause ----------------------------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        """Hold every caller here for ``seconds`` and tell the other workers (best effort)."""
        until = self.now() + max(0.0, seconds)
        if until <= self._paused_until:
            return
        self._paused_until = until
        self._slots.clear()
        if self._publish_pause is not None:
            task = asyncio.get_running_loop().create_task(self._publish(until))
            self._publishing.add(task)  # a task nobody references may be collected mid-way
            task.add_done_callback(self._publishing.discard)

    async def _publish(self, until: float) -> None:
        try:
            await self._publish_pause(until)  # type: ignore[misc]
        except Exception as error:
            log.warning("outbox: could not share a pause with the other workers: %s", error)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self.now())

    # --- slots ----------------------------------------------------------------------------------
    async def acquire(self, urgent: bool = False) -> None:
        """Wait for this caller's slot."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if urgent else 1, next(self._order), future))
        if self._server is None or self._server.done():
            self._server = asyncio.create_task(self._serve(), name="outbox pacer")
        await future

    def _prune(self) -> None:
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)

    def _waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def _serve(self) -> None:
        while True:
            self._prune()
            if not self._waiters:
                return
            slot = await self._next_slot()
            wait = slot - self.now()
            if wait > 0:
                await self._sleep(wait)
            if slot < self._paused_until or self.now() - slot > self.tolerance:
                self.wasted += 1  # inside a pause learnt meanwhile, or woken too late
                continue
            self._prune()
            if not self._waiters:
                self.wasted += 1
                return
            _, _, future = heapq.heappop(self._waiters)
            future.set_result(None)

    async def _next_slot(self) -> float:
        while True:
            now = self.now()
            if self._paused_until > now:
                await self._sleep(self._paused_until - now)
                now = self.now()
            floor = max(now - self.tolerance, self._paused_until)
            while self._slots and self._slots[0] < floor:
                self._slots.popleft()
                self.wasted += 1
            if len(self._slots) <= 2 and self._refill is None:
                wanted = self._waiting() - len(self._slots)
                if wanted > 0 or not self._slots:
                    self._refill = asyncio.create_task(self._take(max(1, wanted)))
            if self._slots:
                return self._slots.popleft()
            refill = self._refill
            if refill is not None:
                await asyncio.shield(refill)
                if self._slots:
                    continue
            if self._refill is None and self.reserve_failures and not self._slots:
                # The database did not answer: pace alone, at half the rate, meanwhile.
                slot = max(now, self._last_local + 2 * self.interval, self._paused_until)
                self._last_local = slot
                return slot

    async def _take(self, count: int) -> None:
        count = min(self.batch, count)
        if self.interval < 0.001:
            # "No limit" settings (tests, benchmarks of other parts): a quarter second's worth
            # per round trip, so pacing costs no database work worth measuring.
            count = max(count, int(0.25 / self.interval))
        try:
            found = await self._reserve(count)
        except Exception as error:
            self.reserve_failures += 1
            log.warning("outbox: could not reserve send slots: %s", error)
            found = None
        finally:
            self._refill = None
        if found is None:
            return
        self.reserve_failures = 0
        self.reservations += 1
        self._paused_until = max(self._paused_until, found.paused_until)
        self._slots.extend(s for s in found.slots if s >= self._paused_until)
