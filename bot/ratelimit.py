"""Telegram's sending limits, as the outbox dispatcher applies them.

Telegram documents about one message per second per private chat, 20 messages per minute
per group chat and about 30 messages per second overall; going faster earns ``429 Too Many
Requests`` and, if repeated, longer bans. Two tools, because the limits have different homes:

- ``ChatLimits`` is pure arithmetic over a chat's recent sends *as recorded in the database*
  (``outbox.sent_at``). The database is the one memory shared by several workers and by a
  restarted process, so a chat's pace holds when its messages are sent by different workers
  or straddle a restart.
- ``Pacer`` spaces this process's calls evenly (``1/rate`` apart, no bursts). The overall
  limit is per bot and cannot be coordinated cheaply through the database; with several
  workers each gets its share (set ``HOTLINE_OUTBOX_GLOBAL_PER_SECOND`` to 30 / workers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

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
