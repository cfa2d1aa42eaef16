"""Receiving Telegram updates -- long polling or webhook -- and handing them to the engine.

Both runners share one ``TelegramBridge``: an aiogram ``Router`` whose handlers map each
update to an ``InboundEvent`` (``bot.telegram.mapping``) and await the engine's handler.
Guarantees the engine can rely on, in both modes:

- The handler is awaited once per delivered update, one update at a time per chat (a
  per-chat lock: the webhook server takes requests concurrently, and two quick messages
  from one person must not race through the conversation state).
- Handler exceptions are logged and swallowed: one bad update must not stop polling, and
  Telegram would redeliver a webhook update that failed with 5xx over and over.
- Every callback query is answered (``answerCallbackQuery``), also when the handler raised
  or the press mapped to nothing, so the client's spinner stops.
- Duplicates are possible (a restart before the offset was confirmed, a webhook retry): the
  same ``update_id`` reaches the handler again. De-duplication by (channel, update id) is the
  engine's job, in the same transaction as the state change.
- Shutdown (``stop()`` or SIGTERM/SIGINT) stops taking updates and lets in-flight handlers
  finish (up to ``drain_timeout``) before returning; the handler is shielded from the
  cancellation aiogram uses to stop polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, Update
from aiogram.utils.backoff import BackoffConfig
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError

from bot import jsonbody
from bot.telegram.mapping import event_from_callback, event_from_message
from hotline.config import Settings
from hotline.errors import ConfigError
from hotline.messages import InboundEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[InboundEvent], Awaitable[None]]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
DEFAULT_DRAIN_TIMEOUT = 30.0
#: Seconds allowed for answerCallbackQuery; Telegram drops answers after ~15 s anyway.
ANSWER_TIMEOUT = 10.0


class TelegramBridge:
    """aiogram handlers -> ``InboundEvent`` -> engine handler, with in-flight tracking."""

    def __init__(self, handler: EventHandler, *, answer_timeout: float = ANSWER_TIMEOUT) -> None:
        self._handler = handler
        self._answer_timeout = answer_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._bot_username: str | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def build_router(self) -> Router:
        router = Router(name="hotline-telegram")

        @router.message()
        async def on_message(message: Message, event_update: Update, bot: Bot) -> None:
            await self._shielded(self._handle_message(message, event_update.update_id, bot))

        @router.callback_query()
        async def on_callback(query: CallbackQuery, event_update: Update, bot: Bot) -> None:
            await self._shielded(self._handle_callback(query, event_update.update_id, bot))

        return router

    def build_dispatcher(self) -> Dispatcher:
        dispatcher = Dispatcher()
        dispatcher.include_router(self.build_router())
        return dispatcher

    async def drain(self, grace: float | None = DEFAULT_DRAIN_TIMEOUT) -> bool:
        """Wait for in-flight handlers; cancel what is left after ``grace`` s. True if clean."""
        pending = set(self._tasks)
        if not pending:
            return True
        log.info("waiting for %d in-flight update handler(s)", len(pending))
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            log.warning("cancelled %d update handler(s) still running at shutdown", len(still))
            await asyncio.gather(*still, return_exceptions=True)
        return not still

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        # aiogram stops polling by cancelling the task that awaits us; the engine's work
        # runs in its own task so that cancellation cannot cut it in half.
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    @contextlib.asynccontextmanager
    async def _chat_lock(self, chat_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(chat_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(chat_id, None)

    async def _username(self, bot: Bot) -> str | None:
        if self._bot_username is None:
            try:
                self._bot_username = (await bot.me()).username
            except (TelegramAPIError, TimeoutError) as error:
                log.warning("getMe failed, commands with @mention not filtered: %s", error)
        return self._bot_username

    async def _dispatch(self, event: InboundEvent) -> None:
        async with self._chat_lock(event.chat_id):
            try:
                await self._handler(event)
            except Exception:
                log.exception(
                    "handler failed for %s update %s (kind=%s)",
                    event.channel,
                    event.update_id,
                    event.kind,
                )

    async def _handle_message(self, message: Message, update_id: int, bot: Bot) -> None:
        try:
            event = event_from_message(message, update_id, bot_username=await self._username(bot))
        except Exception:
            log.exception("could not map Telegram update %s; skipped", update_id)
            return
        if event is not None:
            await self._dispatch(event)

    async def _handle_callback(self, query: CallbackQuery, update_id: int, bot: Bot) -> None:
        try:
            try:
                event = event_from_callback(query, update_id, bot_username=await self._username(bot))
            except Exception:
                log.exception("could not map Telegram update %s; skipped", update_id)
                event = None
            if event is not None:
                await self._dispatch(event)
        finally:
            try:
                async with asyncio.timeout(self._answer_timeout):
                    await bot.answer_callback_query(query.id)
            except (TelegramAPIError, TimeoutError) as error:
                # Too old (>15 s) or network trouble: the spinner stops by itself.
                log.info("answerCallbackQuery failed for update %s: %s", update_id, error)


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None], enabled: bool) -> Iterator[None]:
    """SIGTERM/SIGINT call ``stop`` while inside; handlers are removed on the way out."""
    installed: list[signal.Signals] = []
    loop = asyncio.get_running_loop()
    if enabled:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                log.debug("cannot install a %s handler here", sig.name)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class PollingRunner:
    """Long polling via ``Dispatcher.start_polling`` (the default mode: no public URL needed).

    Updates are processed one after another (``handle_as_tasks=False``), so the engine sees
    them in Telegram's order. The webhook set by a previous webhook deployment is deleted
    first (keeping pending updates), since Telegram refuses getUpdates while one is set.
    """

    def __init__(
        self,
        bot: Bot,
        handler: EventHandler,
        *,
        polling_timeout: int = 10,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        backoff: BackoffConfig | None = None,
    ) -> None:
        self.bot = bot
        self.bridge = TelegramBridge(handler)
        self.dispatcher = self.bridge.build_dispatcher()
        self.polling_timeout = polling_timeout
        self.drain_timeout = drain_timeout
        self.backoff = backoff or BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.5, jitter=0.1)
        self.started = asyncio.Event()
        self._stop = asyncio.Event()

        async def _mark_started() -> None:
            self.started.set()

        self.dispatcher.startup.register(_mark_started)

    def stop(self) -> None:
        """Ask ``run`` to finish (safe to call from a signal handler or another task)."""
        self._stop.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Poll until ``stop()`` or SIGTERM/SIGINT, then drain in-flight handlers."""
        with _stop_on_signals(self.stop, handle_signals):
            try:
                await self.bot.delete_webhook(drop_pending_updates=False)
            except (TelegramAPIError, TimeoutError) as error:
                # Telegram unreachable at boot: polling retries with backoff anyway.
                log.warning("deleteWebhook failed, polling regardless: %s", error)
            polling = asyncio.create_task(
                self.dispatcher.start_polling(
                    self.bot,
                    polling_timeout=self.polling_timeout,
                    handle_as_tasks=False,
                    handle_signals=False,  # ours, so they are removed again afterwards
                    close_bot_session=False,  # the sender shares this bot
                    backoff_config=self.backoff,
                )
            )
            stopper = asyncio.create_task(self._stop.wait())
            try:
                await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not polling.done():
                    await self._stop_polling(polling)
                polling.result()  # surface a crash of the polling loop
            finally:
                stopper.cancel()
                if not polling.done():
                    polling.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await polling
                await self.bridge.drain(self.drain_timeout)

    async def _stop_polling(self, polling: asyncio.Task[None]) -> None:
        try:
            await self.dispatcher.stop_polling()
        except RuntimeError:  # not started yet: nothing in flight, just cancel
            polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling


class WebhookRunner:
    """An aiohttp server receiving Telegram's webhook POSTs (``SimpleRequestHandler``).

    The secret token is mandatory. A request without the right
    ``X-Telegram-Bot-Api-Secret-Token`` gets 403 and is not parsed; aiogram's own check
    (which answers 401) stays behind ours as a second line. Malformed bodies, and bodies nested
    deeper than ``bot.jsonbody.MAX_DEPTH``, get 400 without a traceback.
    Requests are handled inline (``handle_in_background=False``): Telegram gets its 200 only
    after the engine stored the event, and a shutdown waits for it.
    """

    def __init__(
        self,
        bot: Bot,
        handler: EventHandler,
        *,
        secret_token: str,
        path: str = "/telegram/webhook",
        host: str = "127.0.0.1",
        port: int = 8080,
        public_base_url: str | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> None:
        if not secret_token or not _SECRET_RE.match(secret_token):
            raise ConfigError("HOTLINE_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if not path.startswith("/"):
            raise ConfigError("HOTLINE_WEBHOOK_PATH must start with '/'")
        self.bot = bot
        self.bridge = TelegramBridge(handler)
        self.dispatcher = self.bridge.build_dispatcher()
        self.secret_token = secret_token
        self.path = path
        self.host = host
        self.port = port
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.drain_timeout = drain_timeout
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.dispatcher.startup.register(self._register_webhook)

    @classmethod
    def from_settings(cls, bot: Bot, handler: EventHandler, settings: Settings) -> WebhookRunner:
        if settings.webhook_secret is None:
            raise ConfigError("HOTLINE_WEBHOOK_SECRET is required in webhook mode")
        return cls(
            bot,
            handler,
            secret_token=settings.webhook_secret.get_secret_value(),
            path=settings.webhook_path,
            host=settings.webhook_host,
            port=settings.webhook_port,
            public_base_url=settings.public_base_url,
        )

    @property
    def webhook_url(self) -> str | None:
        """The public URL given to Telegram, if a public base URL is configured."""
        return f"{self.public_base_url}{self.path}" if self.public_base_url else None

    @property
    def local_url(self) -> str:
        """Where this server actually listens (the real port when ``port=0``)."""
        port = self.port
        if self._runner is not None and self._runner.addresses:
            port = self._runner.addresses[0][1]
        return f"http://{self.host}:{port}{self.path}"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        # Registered before aiogram's own shutdown hook, which closes the bot session.
        app.on_shutdown.append(self._drain_on_shutdown)
        SimpleRequestHandler(
            dispatcher=self.dispatcher,
            bot=self.bot,
            secret_token=self.secret_token,
            handle_in_background=False,
        ).register(app, path=self.path)
        setup_application(app, self.dispatcher, bot=self.bot)
        return app

    async def start(self) -> None:
        """Listen; on startup, ``setWebhook`` (with the secret) when a public URL is set."""
        self._runner = web.AppRunner(self.build_app(), shutdown_timeout=self.drain_timeout, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("webhook listening on %s", self.local_url)

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish, run aiogram's shutdown."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        with _stop_on_signals(self.request_stop, handle_signals):
            await self.start()
            try:
                await self._stop.wait()
            finally:
                await self.stop()

    async def _register_webhook(self, bot: Bot) -> None:
        if self.webhook_url is None:
            log.info("no public URL configured; not calling setWebhook")
            return
        await bot.set_webhook(
            self.webhook_url,
            secret_token=self.secret_token,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
            drop_pending_updates=False,
        )

    async def _drain_on_shutdown(self, app: web.Application) -> None:
        await self.bridge.drain(self.drain_timeout)

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != self.path:
            return await handler(request)
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not secrets.compare_digest(given, self.secret_token.encode("ascii")):
            log.warning("webhook request without the right secret token from %s", request.remote)
            return web.Response(status=403, text="Forbidden")
        try:
            # Size and depth first (aiogram's own parse would recurse once per level: 100,000
            # "[" are a RecursionError and a 500); aiohttp keeps the bytes for aiogram's read.
            jsonbody.parse(await request.read(), max_bytes=request.client_max_size)
        except web.HTTPRequestEntityTooLarge:
            log.warning("webhook update refused: larger than %d bytes", request.client_max_size)
            return web.Response(status=413, text="Payload Too Large")
        except jsonbody.BadBody as bad:
            log.warning("malformed webhook update refused: %s", bad.reason)
            return web.Response(status=400, text="Bad Request")
        try:
            return await handler(request)
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as error:
            log.warning("malformed webhook update refused: %s", type(error).__name__)
            return web.Response(status=400, text="Bad Request")
