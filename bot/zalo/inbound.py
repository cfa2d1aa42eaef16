"""Running the engine for webhook events without making Zalo wait.

Zalo gives a webhook about two seconds to answer 200 and retries otherwise, so a webhook
handler cannot simply await the engine (the classifier, a busy database). ``InboundWorker``
starts the handler as a task and waits for it only up to a budget; whatever is still running
then finishes in the background while the webhook answers. The engine commits its own
transaction, so "answered" never means "lost halfway": either the event's transaction
committed or it did not happen and the next delivery (or a retry here) does it.

Two more jobs live here because every webhook needs them:

- per-chat order: events of one chat run one after another (a reply to "which category?" must
  not overtake the question's answer), events of different chats run side by side;
- in-flight de-duplication: Zalo re-delivers an event whose answer was slow; a copy that
  arrives while the first is still queued or running is dropped at once. The durable
  de-duplication is the engine's (``inbound_updates``, same transaction as the processing);
  this one only avoids queueing the same work twice.

Handler failures are retried a few times with a short backoff, then logged and dropped; the
webhook has already said 200, and the update's transaction never committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from bot.zalo.common import EventHandler
from hotline.messages import InboundEvent

log = logging.getLogger(__name__)


class InboundWorker:
    def __init__(
        self,
        handler: EventHandler,
        *,
        budget: float = 1.5,
        attempts: int = 3,
        retry_delay: float = 0.5,
        remember: int = 2048,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.handler = handler
        self.budget = budget
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self._sleep = sleep
        self._remember = remember
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tails: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.handled = 0
        self.failed = 0
        self.duplicates = 0

    def _mark_seen(self, key: tuple[str, str]) -> bool:
        """False if ``key`` was seen recently (a redelivery)."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return True

    async def submit(self, event: InboundEvent) -> bool:
        """Queue ``event`` behind its chat; True if it finished within the budget."""
        if not self._mark_seen((event.channel, event.update_id)):
            self.duplicates += 1
            log.info("%s update %s redelivered while in flight: dropped", event.channel, event.update_id)
            return True
        chat = (event.channel, event.chat_id)
        previous = self._tails.get(chat)
        task = asyncio.create_task(self._run_after(previous, event))
        self._tails[chat] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(chat, done))
        try:
            await asyncio.wait_for(asyncio.shield(task), self.budget)
        except TimeoutError:
            log.info("%s update %s still running after %.1fs: answered, finishing in background",
                     event.channel, event.update_id, self.budget)
            return False
        return True

    def _forget(self, chat: tuple[str, str], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(chat) is task:
            del self._tails[chat]

    async def _run_after(self, previous: asyncio.Task[None] | None, event: InboundEvent) -> None:
        if previous is not None:
            # Order only: the previous event's own failure is already logged.
            await asyncio.gather(previous, return_exceptions=True)
        for attempt in range(1, self.attempts + 1):
            try:
                await self.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                if attempt == self.attempts:
                    self.failed += 1
                    # Let Zalo's redelivery try again: nothing of this event was committed.
                    self._seen.pop((event.channel, event.update_id), None)
                    log.exception("%s update %s failed %d times: dropped",
                                  event.channel, event.update_id, attempt)
                    return
                await self._sleep(self.retry_delay * attempt)
            else:
                self.handled += 1
                return

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float = 10.0) -> None:
        """Wait for background work (shutdown, tests); cancel what is left after ``within`` seconds."""
        if not self._tasks:
            return
        tasks = list(self._tasks)
        _done, still = await asyncio.wait(tasks, timeout=within)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
