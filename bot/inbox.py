"""Durable inbound: record the raw update, answer the channel, process it from the record.

Every webhook (Telegram, Zalo Bot Platform, Zalo OA) does the same three things:

1. **Record.** The update's raw JSON goes into the ``inbox`` table with one insert, keyed on
   (channel, update id) so a redelivery is absorbed, and is committed before the HTTP answer.
   If it cannot be recorded in time (a stalled database) the webhook answers non-2xx and the
   channel delivers it again later -- Zalo after its two-second window, Telegram with backoff.
2. **Answer** 200 at once: the channel's wait no longer depends on the engine's work.
3. **Process** from the record (``InboxProcessor``), woken by the insert (a slow poll is only a
   safety net): per chat in arrival order, different chats side by side. Each update goes
   through ``Engine.handle``, which writes ``inbound_updates`` in the transaction of the
   update's effect, so the effect happens once even when a row is processed twice (a crash
   between the effect's commit and the row's deletion). Rows are deleted once processed.

A restart processes whatever was recorded and not yet processed; a graceful stop stops
recording first, then keeps processing for up to the drain timeout and leaves the rest for the
next start (a row is never half-processed: its transaction commits or rolls back).

On PostgreSQL the processor runs in a thread of its own, or in a process forked by the runtime
(``settings.inbox_processing``), with its own event loop and database pool (``InboxRunner``,
``bot.inbox_process``): the engine's work is mostly Python, and on the webhook's event loop it
would make acknowledgements wait behind it. Several workers share the inbox through per-chat
advisory locks (``storage.inbox.ChatLocks``). On SQLite (one writer, one process) it runs on
the bot's loop, taking turns with the webhook's inserts on the runtime's write lock; two
processors of one process on one file take chats from one registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from bot.inbox_process import ForkedProcessor, lower_priority
from handlers.engine import Engine, committed
from hotline.deps import App
from hotline.messages import InboundEvent
from storage import inbox as store
from storage.db import create_engine, database_unreachable, make_sessionmaker

log = logging.getLogger(__name__)

#: Raw update (parsed JSON) -> the engine's event, or None when it needs no processing.
Decoder = Callable[[Any], InboundEvent | None]

#: Seconds between looks at the table when nothing woke the processor (other workers' rows,
#: rows left by a crash).
POLL_INTERVAL = 1.0
#: Seconds a thread may hold the GIL while another waits for it (see ``InboxRunner.start``).
SWITCH_INTERVAL = 0.001


def turn(turns: asyncio.Lock | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """SQLite's turn at writing (the runtime's lock shared by webhook and processor), or no
    wait at all where the database takes writers side by side."""
    return turns if turns is not None else contextlib.nullcontext()


class Inbox:
    """The recording side, used by the webhooks on the bot's event loop."""

    def __init__(self, app: App, *, turns: asyncio.Lock | None = None) -> None:
        self.app = app
        self.turns = turns
        self._wake: Callable[[], None] = lambda: None
        self.recorded = 0

    def on_record(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def record(self, event: InboundEvent, raw: str | bytes | Any) -> None:
        """Commit the raw update (raises if the database refuses), then wake the processor."""
        payload = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (
            raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False))
        kwargs = {"channel": event.channel, "update_id": str(event.update_id),
                  "chat_id": str(event.chat_id), "payload": payload, "now": self.app.clock.now()}
        async with turn(self.turns):
            await store.record(self.app.engine, **kwargs)
        self.recorded += 1
        self._wake()

    async def record_within(self, event: InboundEvent, raw: str | bytes | Any, within: float) -> bool:
        """``record``, tried again on a passing database failure, for at most ``within``
        seconds; False if it did not happen (the caller answers non-2xx: redelivered later).
        A late commit after the deadline is harmless: the redelivery meets its row."""
        pause = 0.1
        try:
            async with asyncio.timeout(within):
                while True:
                    try:
                        await self.record(event, raw)
                        return True
                    except Exception as error:
                        if not database_unreachable(error):
                            log.error("%s update %s could not be recorded: %s", event.channel,
                                      event.update_id, type(error).__name__)
                            return False
                        log.warning("database unreachable: %s update %s not recorded yet",
                                    event.channel, event.update_id)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 2.0)
        except TimeoutError:
            log.warning("%s update %s not recorded within %.1f s: answered non-2xx, the channel "
                        "delivers it again", event.channel, event.update_id, within)
            return False


class InboxProcessor:
    """Takes chats with waiting rows and runs their updates through the engine, in order."""

    def __init__(
        self,
        app: App,
        engine: Engine,
        decoders: Mapping[str, Decoder],
        *,
        turns: asyncio.Lock | None = None,
        after: Callable[[], None] = lambda: None,
        concurrency: int = 8,
        batch: int = 20,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.app = app
        self.engine = engine
        self.decoders = dict(decoders)
        self.turns = turns
        self.after = after
        self.concurrency = max(1, concurrency)
        self.batch = batch
        self.poll_interval = poll_interval
        self.locks = store.ChatLocks(app.engine)
        self._wake = asyncio.Event()
        self._active: dict[str, asyncio.Task[None]] = {}
        self.processed = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event, drain_timeout: float = 30.0) -> None:
        """Process until ``stop``; then go on for up to ``drain_timeout`` s while rows this
        processor can take remain, and leave the rest in the table for the next start."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                await self._fill()
                await self._sleep(stop)
            deadline = loop.time() + drain_timeout
            while loop.time() < deadline:
                await self._fill()
                if not self._active:
                    break
                await asyncio.wait(set(self._active.values()), timeout=deadline - loop.time(),
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            still = list(self._active.values())
            for task in still:  # their transactions roll back; the rows stay for the next start
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
            if still:
                log.warning("inbox: %d chat(s) left unfinished at shutdown; processed at the "
                            "next start", len(still))
            await self.locks.close()

    async def _sleep(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waits = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _fill(self) -> None:
        """Start a task for each chat with waiting rows that this processor can take."""
        free = self.concurrency - len(self._active)
        if free <= 0:
            return
        try:
            keys = await store.heads(self.app.engine, limit=4 * self.concurrency + len(self._active))
            keys = [k for k in keys if k not in self._active]
            mine = await self.locks.try_lock(keys[:free * 2])
        except Exception as error:
            log.warning("inbox: cannot look for waiting updates (%s); trying again in %.0f s",
                        type(error).__name__, self.poll_interval)
            return
        for key in mine[free:]:  # more than we can run now: let another worker have them
            await self.locks.unlock(key)
        for key in mine[:free]:
            self._active[key] = asyncio.create_task(self._chat(key), name=f"inbox {key}")

    async def _chat(self, key: str) -> None:
        pause = 0.2
        try:
            while True:
                try:
                    rows = await store.rows_of(self.app.engine, key, self.batch)
                except Exception as error:
                    log.warning("inbox: cannot read waiting updates (%s)", type(error).__name__)
                    return
                if not rows:
                    return
                done: list[tuple[str, str]] = []
                try:
                    for channel, update_id, payload in rows:
                        while not await self._process(channel, payload):
                            # Database unreachable: nothing of it was stored; same row again.
                            await asyncio.sleep(pause)
                            pause = min(pause * 2, 5.0)
                        pause = 0.2
                        done.append((channel, update_id))
                        self.processed += 1
                        self.after()
                finally:
                    await self._forget(done)
        finally:
            self._active.pop(key, None)
            await self.locks.unlock(key)
            self._wake.set()  # rows that arrived meanwhile (here or at another worker)

    async def _forget(self, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        try:
            async with turn(self.turns):
                await store.forget(self.app.engine, keys)
        except Exception as error:  # processed again later, which changes nothing
            log.warning("inbox: processed rows not deleted (%s)", type(error).__name__)

    async def _process(self, channel: str, payload: str) -> bool:
        """Run one recorded update; False only when the database could not be reached."""
        decoder = self.decoders.get(channel)
        try:
            event = decoder(json.loads(payload)) if decoder is not None else None
        except Exception:
            log.exception("inbox: a recorded %s update could not be read; skipped", channel)
            return True
        if event is None:
            if decoder is None:
                log.error("inbox: no reader for channel %r; update skipped", channel)
            return True
        async with turn(self.turns):
            replies = await self.engine.handle(event)
        return committed(replies)


class InboxRunner:
    """Runs an ``InboxProcessor`` where the database calls for it (``mode``):

    * ``"loop"`` -- on the bot's loop (SQLite: one writer, taking turns on ``turns``);
    * ``"thread"`` -- in a thread with its own loop, at a lower priority (PostgreSQL's default:
      the worker's one core is shared, the webhook first);
    * ``"process"`` -- in a forked process of its own (PostgreSQL, ``HOTLINE_INBOX_PROCESSING``;
      see ``bot.inbox_process`` for when that is better).

    The last two use a database pool of their own. ``wake`` and ``stop`` are called from the
    bot's loop.
    """

    MODES = ("loop", "thread", "process")

    def __init__(
        self,
        app: App,
        engine: Engine,
        decoders: Mapping[str, Decoder],
        *,
        mode: str,
        turns: asyncio.Lock | None = None,
        after: Callable[[], None] = lambda: None,
        drain_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown inbox processing mode {mode!r}: one of {', '.join(self.MODES)}")
        self.app, self.engine, self.decoders = app, engine, decoders
        self.mode = mode
        self.turns = turns
        self.after = after
        self.drain_timeout = drain_timeout
        self.options = options
        self.processor: InboxProcessor | None = None
        self.forked: ForkedProcessor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._finished: asyncio.Future[None] | None = None

    async def start(self) -> None:
        main = asyncio.get_running_loop()
        self._finished = main.create_future()
        if self.mode == "loop":
            self._loop, self._stop = main, asyncio.Event()
            self.processor = InboxProcessor(self.app, self.engine, self.decoders, turns=self.turns,
                                            after=self.after, **self.options)
            self._task = asyncio.create_task(self._run_here(), name="inbox processor")
            return
        if self.mode == "process":
            self.forked = ForkedProcessor(self._forked_body, after=self.after,
                                          nice=self.app.settings.inbox_processor_nice,
                                          drain_timeout=self.drain_timeout)
            await self.forked.start()
            return

        def after() -> None:
            if not main.is_closed():
                main.call_soon_threadsafe(self.after)

        def finish(error: BaseException | None) -> None:
            def settle() -> None:
                if self._finished is not None and not self._finished.done():
                    if error is None:
                        self._finished.set_result(None)
                    else:
                        self._finished.set_exception(error)
            if not main.is_closed():
                main.call_soon_threadsafe(settle)

        # The processor's Python work holds the GIL; a waiting webhook request gets it back
        # after at most this long (default 5 ms), so an acknowledgement waits less behind it.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._thread_main, args=(after, finish),
                                        name="inbox processor", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)

    async def _run_here(self) -> None:
        assert self.processor is not None and self._stop is not None and self._finished is not None
        try:
            await self.processor.run(self._stop, self.drain_timeout)
        except BaseException as error:
            if not self._finished.done():
                self._finished.set_exception(error)
            raise
        if not self._finished.done():
            self._finished.set_result(None)

    def _thread_main(self, after: Callable[[], None],
                     finish: Callable[[BaseException | None], None]) -> None:
        error: BaseException | None = None
        # When the CPU is short the operating system runs the webhook's acknowledgements (and the
        # outbox) first; the processor still gets every cycle they leave, which under a burst is
        # nearly all of them (settings.inbox_processor_nice; measured in bench/load_webhook.py).
        lower_priority(self.app.settings.inbox_processor_nice)
        try:
            asyncio.run(self._thread_run(after))
        except BaseException as failure:  # reported to the bot's loop, which stops the runtime
            error = failure
            log.exception("inbox processor thread failed")
        finally:
            self._ready.set()
            finish(error)

    async def _thread_run(self, after: Callable[[], None]) -> None:
        async with self._own_pool() as (replica, handler):
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self.processor = InboxProcessor(replica, handler, self.decoders, after=after,
                                            **self.options)
            self._ready.set()
            await self.processor.run(self._stop, self.drain_timeout)

    async def _forked_body(self, stop: asyncio.Event, ready: Callable[[Callable[[], None]], None],
                           processed: Callable[[], None]) -> None:
        """Runs in the forked process (``bot.inbox_process``)."""
        async with self._own_pool() as (replica, handler):
            self.processor = InboxProcessor(replica, handler, self.decoders, after=processed,
                                            **self.options)
            ready(self.processor.wake)
            await self.processor.run(stop, self.drain_timeout)

    @contextlib.asynccontextmanager
    async def _own_pool(self) -> AsyncIterator[tuple[App, Engine]]:
        """The app and engine with a database pool of this loop's own (a pool belongs to one
        event loop, and after a fork the parent's connections must never be used)."""
        app = self.app
        engine = create_engine(app.engine.url.render_as_string(hide_password=False),
                               pool_size=self.options.get("concurrency", 8) + 2)
        replica = dataclasses.replace(app, engine=engine, sessions=make_sessionmaker(engine))
        handler = copy.copy(self.engine)
        handler.app = replica
        try:
            yield replica, handler
        finally:
            await engine.dispose()

    def wake(self) -> None:
        if self.forked is not None:
            self.forked.wake()
            return
        loop, processor = self._loop, self.processor
        if loop is None or processor is None or loop.is_closed():
            return
        if self.mode == "thread":
            with contextlib.suppress(RuntimeError):  # the thread's loop just closed
                loop.call_soon_threadsafe(processor.wake)
        else:
            processor.wake()

    async def finished(self) -> None:
        """Returns when the processor ended (raises what made it fail)."""
        if self.forked is not None:
            await self.forked.finished()
            return
        assert self._finished is not None
        await asyncio.shield(self._finished)

    async def stop(self) -> None:
        """Stop taking new chats, drain (bounded), and wait for the processor to end."""
        if self.forked is not None:
            await self.forked.stop()
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            if self.mode == "thread":
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            else:
                stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class InboxWorker:
    """What a Zalo webhook hands its events to when the runtime has an inbox: ``record``
    within Zalo's window (``budget``), or False so the webhook answers non-2xx."""

    durable = True

    def __init__(self, inbox: Inbox, *, budget: float = 1.5) -> None:
        self.inbox = inbox
        self.budget = budget

    async def record(self, event: InboundEvent, raw: bytes | str | Any) -> bool:
        return await self.inbox.record_within(event, raw, self.budget)

    async def drain(self, within: float = 10.0) -> None:
        """Nothing runs here: recorded events wait in the inbox."""


async def submit_or_record(worker: Any, event: InboundEvent, raw: bytes | str | Any) -> bool:
    """For the Zalo webhooks: record in the inbox (False: not recorded, answer non-2xx), or,
    without one (stand-alone webhook apps), hand the event to an ``InboundWorker``."""
    if getattr(worker, "durable", False):
        return bool(await worker.record(event, raw))
    await worker.submit(event)
    return True
