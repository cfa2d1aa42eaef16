"""Per-client token buckets for the lookups a stranger can repeat (status pages, sign-in).

In memory and per process: the limit exists to make guessing check codes pointless, and a
guesser spread over several workers still gets only a few times the rate, against a code space
of 72 bits. The table is bounded so a flood of distinct addresses cannot exhaust memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: float, burst: int | None = None, *, max_clients: int = 20000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> tuple[bool, float]:
        """Take one token; (allowed, seconds until the next token when refused)."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        wait = 0.0 if allowed else (1.0 - tokens) / self.rate
        return allowed, wait
