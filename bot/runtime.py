"""One running bot process: intake -> engine -> outbox -> dispatcher, plus the scheduler.

``hotline run`` builds a ``BotRuntime`` and awaits ``run()``. What runs, and why in this order:

Start
    The Telegram token is checked first (``getMe``): a revoked or mistyped token is one clear
    error at start-up, not a polling loop that retries forever. Then the command menu, the
    escalation scheduler (``escalation.scheduler``), the web server (one aiohttp app on one
    port: Telegram webhook, Zalo webhooks, and the dashboard and public board of ``hotline.web``
    when the CLI passes its ``setup_web``), the outbox dispatcher, and finally the update
    intake (long polling by default, or the webhook server already listening).

Handling
    Each inbound event goes through ``Engine.handle`` (one transaction: dedupe, state change,
    replies in the outbox) and then wakes the dispatcher, so a reply leaves at once instead
    of at the next poll. The engine never sends anything itself. Webhooks (Telegram, Zalo)
    first record the raw update in the inbox and answer; the inbox processor (``bot.inbox``,
    on PostgreSQL in a thread of its own) takes it from there, per chat in arrival order, and
    at start processes whatever an earlier run recorded and did not finish. Long polling
    (Telegram, Zalo Bot) hands updates to the engine directly: the channel keeps an update
    until a later poll confirms it, which only happens after the engine committed.

Stop (SIGTERM/SIGINT or ``stop()``)
    1. stop taking updates: polling stops / the web server closes, in-flight handlers finish
       their transaction (bounded by ``drain_timeout``); the inbox processor goes on with what
       is recorded for up to ``drain_timeout`` and leaves the rest for the next start;
    2. the scheduler lets a running sweep finish and gives up leadership;
    3. the dispatcher finishes the sends in flight (a split text stops after its current
       piece) and leaves everything else in the outbox for the next start;
    4. HTTP sessions are closed. The database is closed by whoever opened the ``App``.

Zalo channels run alongside when configured (``bot.zalo.setup.build_zalo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiohttp import web

from bot import numbered
from bot.delivery import ChannelSender
from bot.dispatcher import OutboxDispatcher
from bot.inbox import Decoder, Inbox, InboxRunner, turn
from bot.telegram.commands import set_bot_commands
from bot.telegram.inbox import TelegramInboxIntake, telegram_decoder
from bot.telegram.runner import DEFAULT_DRAIN_TIMEOUT, PollingRunner, WebhookRunner
from bot.telegram.sender import TelegramSender
from bot.zalo import setup as zalo_setup
from bot.zalo.decoders import zalo_decoders
from escalation.scheduler import build_scheduler
from handlers.engine import Engine, committed
from hotline.config import Settings
from hotline.deps import App
from hotline.errors import ConfigError
from hotline.messages import InboundEvent, OutboundMessage

log = logging.getLogger(__name__)

#: Mounts the web dashboard, public board and API on the server (``hotline.web.app.setup_web``);
#: passed in by the CLI, which sits above both the bot and the web.
WebSetup = Callable[[web.Application, App], None]

#: How often the Zalo OA token pair is refreshed ahead of expiry on a quiet OA.
OA_REFRESH_SECONDS = 1800.0
#: Request body limit of the server when it carries no Telegram webhook (web pages, Zalo).
WEB_MAX_BODY = 1024 * 1024
#: How long an update waits for an unreachable database before it is given up (logged).
DB_RETRY_SECONDS = 300.0


def zalo_configured_settings(settings: Settings) -> bool:
    """Whether any Zalo channel is configured (without building anything)."""
    return bool(zalo_setup.bot_enabled(settings) or zalo_setup.oa_enabled(settings))


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None], enabled: bool = True) -> Iterator[None]:
    """SIGTERM/SIGINT call ``stop`` while inside; the handlers are removed on the way out."""
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


class BotRuntime:
    """Everything ``hotline run`` runs, wired from an ``App`` and an optional Telegram ``Bot``.

    ``bot=None`` runs without Telegram (Zalo only). ``web`` mounts the web dashboard and public
    board (``hotline.web.app.setup_web``, passed in by the CLI) on the same port as the webhooks,
    in polling mode too; without it (``None``/``False``) no pages are served. Options for tests
    and benchmarks: ``port=0`` listens on a free port (see ``local_url``), ``dispatch=False``
    leaves the outbox alone, ``scheduler=False`` skips the escalation scheduler,
    ``verify_token=False`` skips the ``getMe`` check. ``reuse_port=True`` shares the port with
    other workers (``hotline run --workers``, ``bot.workers``). Where the inbox processor runs on
    PostgreSQL is ``settings.inbox_processing`` (``bot.inbox.InboxRunner``).
    """

    def __init__(
        self,
        app: App,
        bot: Bot | None,
        *,
        webhook: bool = False,
        worker_id: str | None = None,
        engine: Engine | None = None,
        scheduler: bool = True,
        dispatch: bool = True,
        zalo: bool = True,
        web: WebSetup | bool | None = None,
        set_commands: bool = True,
        verify_token: bool = True,
        host: str | None = None,
        port: int | None = None,
        reuse_port: bool = False,
        polling_timeout: int = 10,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        dispatcher_options: dict[str, Any] | None = None,
        inbox: bool = True,
        inbox_options: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.bot = bot
        self.webhook = webhook
        self.web = web if callable(web) else None
        self.engine = engine or Engine(app, intake=[numbered.intake])
        self.set_commands = set_commands
        self.verify_token = verify_token
        self.host = host if host is not None else app.settings.webhook_host
        self.port = port if port is not None else app.settings.webhook_port
        self.reuse_port = reuse_port
        self.drain_timeout = drain_timeout

        self._sqlite_turns = asyncio.Lock() if app.engine.dialect.name == "sqlite" else None
        # Webhooks record each update in the inbox and answer; it is processed from there.
        self.inbox: Inbox | None = Inbox(app, turns=self._sqlite_turns) if inbox else None
        decoders: dict[str, Decoder] = {}
        self.polling: PollingRunner | None = None
        self.telegram_webhook: WebhookRunner | None = None
        senders: dict[str, ChannelSender] = {}
        if bot is not None:
            senders["telegram"] = TelegramSender(bot)
            if webhook:
                self.telegram_webhook = WebhookRunner.from_settings(bot, self.handle, app.settings)
                self.telegram_webhook.drain_timeout = drain_timeout
                if self.inbox is not None:
                    bridge = self.telegram_webhook.bridge
                    self.telegram_webhook.intake = TelegramInboxIntake(self.inbox, bridge)
                    decoders["telegram"] = telegram_decoder(lambda: bridge.known_username)
            else:
                self.polling = PollingRunner(bot, self.handle, polling_timeout=polling_timeout,
                                             drain_timeout=drain_timeout)

        self.zalo: Any = None
        if zalo and zalo_configured_settings(app.settings):
            if self.inbox is not None:
                self.zalo = zalo_setup.build_zalo(app, self.handle, inbox=self.inbox)
                if self.zalo.bot_webhook_worker is not None or self.zalo.oa_webhook is not None:
                    decoders.update(zalo_decoders())
            else:
                self.zalo = zalo_setup.build_zalo(app, self.handle)
            senders.update(self.zalo.senders)
        if not senders:
            raise ConfigError(
                "no chat channel is configured: set HOTLINE_TELEGRAM_TOKEN (from @BotFather), "
                "or try `hotline chat` to talk to the bot in a terminal"
            )

        self.dispatcher: OutboxDispatcher | None = (
            OutboxDispatcher(app, senders, worker_id=worker_id, **(dispatcher_options or {}))
            if dispatch else None
        )
        self.scheduler: Any = build_scheduler(app) if scheduler else None

        dispatcher = self.dispatcher
        self.inbox_runner: InboxRunner | None = None
        if self.inbox is not None and decoders:
            mode = "loop" if app.engine.dialect.name == "sqlite" else app.settings.inbox_processing
            self.inbox_runner = InboxRunner(
                app, self.engine, decoders, mode=mode,
                turns=self._sqlite_turns, drain_timeout=drain_timeout,
                after=dispatcher.wake if dispatcher is not None else lambda: None,
                **(inbox_options or {}),
            )
            self.inbox.on_record(self.inbox_runner.wake)
        else:
            self.inbox = None
        self._stop = asyncio.Event()
        self._dispatch_stop = asyncio.Event()
        self._zalo_stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._web: web.AppRunner | None = None
        self.started = asyncio.Event()

    # --- the handler every intake calls -----------------------------------------------------
    async def handle(self, event: InboundEvent) -> None:
        """Engine first (it commits the replies to the outbox), then nudge the dispatcher.

        On SQLite the engine's transactions take turns on an asyncio lock: SQLite has one
        writer anyway, and transactions left to collide on the file lock wait in SQLite's
        busy handler, which sleeps in growing steps and lets the lock sit idle meanwhile.

        When the database is unreachable the engine stores nothing, not even its apology
        (replies without an outbox id). Returning would acknowledge the update to Telegram
        (webhook 200, or the next polling offset) and lose it, so the same event is tried
        again, with growing pauses, until the database is back (the engine de-duplicates by
        update id); a shutdown meanwhile cancels the wait and leaves the update unacknowledged.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DB_RETRY_SECONDS
        pause = 0.2
        while not committed(await self._handle_once(event)):
            if loop.time() >= deadline:
                log.error("database unreachable for %.0f s: %s update %s dropped",
                          DB_RETRY_SECONDS, event.channel, event.update_id)
                break
            log.warning("database unreachable: %s update %s waits %.1f s and is tried again",
                        event.channel, event.update_id, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def _handle_once(self, event: InboundEvent) -> list[OutboundMessage]:
        async with turn(self._sqlite_turns):
            return await self.engine.handle(event)

    # --- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``run`` to shut down (safe from a signal handler or another task)."""
        self._stop.set()

    @property
    def local_url(self) -> str | None:
        """Base URL the web server really listens on (``port=0`` picks a free port)."""
        if self._web is None or not self._web.addresses:
            return None
        host, port = self._web.addresses[0][:2]
        return f"http://{host}:{port}"

    @property
    def telegram_webhook_url(self) -> str | None:
        if self.telegram_webhook is None or self.local_url is None:
            return None
        return self.local_url + self.telegram_webhook.path

    async def run(self, *, handle_signals: bool = True) -> None:
        """Start everything, run until ``stop()``/a signal (or a component fails), shut down."""
        with stop_on_signals(self.stop, handle_signals):
            failure: BaseException | None = None
            try:
                await self._start()
                self.started.set()
                waiter = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait({waiter, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                for task in done:
                    if task is not waiter and not task.cancelled() and task.exception() is not None:
                        failure = task.exception()
                        log.error("%s stopped with an error; shutting down", task.get_name())
            finally:
                await self._shutdown()
            if failure is not None:
                raise failure

    async def _start(self) -> None:
        bot = self.bot
        if bot is not None:
            await self._check_bot(bot)
        if self.scheduler is not None:
            await self.scheduler.start()
        if self.inbox_runner is not None:
            # What an earlier run recorded and did not process goes first, from here on.
            if bot is not None and self.telegram_webhook is not None:
                await self.telegram_webhook.bridge.username(bot)
            await self.inbox_runner.start()
            self._spawn(self.inbox_runner.finished(), "inbox processor")
        await self._start_web()
        if self.dispatcher is not None:
            self._spawn(self.dispatcher.run(self._dispatch_stop), "outbox dispatcher")
        if self.polling is not None:
            self._spawn(self.polling.run(handle_signals=False), "telegram polling")
        if self.zalo is not None:
            if self.zalo.poller is not None:
                self._spawn(self.zalo.poller.run(self._zalo_stop), "zalo bot polling")
            if self.zalo.oa_tokens is not None:
                self._spawn(self._refresh_oa_tokens(), "zalo oa tokens")
        log.info(
            "bot running: %s%s, dispatcher %s",
            "telegram " + ("webhook" if self.webhook else "polling") if bot is not None else "no telegram",
            ", zalo " + ", ".join(sorted(self.zalo.senders)) if self.zalo is not None else "",
            self.dispatcher.worker_id if self.dispatcher is not None else "off",
        )

    async def _check_bot(self, bot: Bot) -> None:
        if self.verify_token:
            try:
                me = await bot.get_me()
                log.info("telegram bot @%s", me.username)
            except TelegramUnauthorizedError:
                raise ConfigError(
                    "Telegram refused HOTLINE_TELEGRAM_TOKEN (401 Unauthorized): copy the token "
                    "again from @BotFather"
                ) from None
            except (TelegramAPIError, TimeoutError) as error:
                log.warning("cannot reach Telegram at start-up (%s); will keep trying", error)
        if self.set_commands:
            try:
                await set_bot_commands(bot)
            except (TelegramAPIError, TimeoutError) as error:
                log.warning("could not set the command menu: %s", error)

    async def _start_web(self) -> None:
        zalo_routes = self.zalo is not None and (
            self.zalo.bot_webhook_worker is not None or self.zalo.oa_webhook is not None
        )
        setup_web = self.web
        if self.telegram_webhook is None and not zalo_routes and setup_web is None:
            return
        # One aiohttp app on one port: Telegram's webhook (secret guard, aiogram handler, and
        # the startup hook that calls setWebhook), Zalo's webhook routes, and the web pages.
        tg = self.telegram_webhook
        web_app = tg.build_app() if tg is not None else web.Application(client_max_size=WEB_MAX_BODY)
        if zalo_routes:
            self.zalo.mount(web_app)
        if setup_web is not None:
            setup_web(web_app, self.app)
        runner = web.AppRunner(web_app, shutdown_timeout=self.drain_timeout, access_log=None)
        await runner.setup()
        self._web = runner
        try:
            await web.TCPSite(runner, self.host, self.port,
                              reuse_port=self.reuse_port or None).start()
        except OSError as error:  # port taken, address not available: say so in one sentence
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} ({error.strerror or error}); set "
                "HOTLINE_WEBHOOK_HOST / HOTLINE_WEBHOOK_PORT, or use --no-web with polling"
            ) from None
        log.info("web server listening on %s%s", self.local_url,
                 " (dashboard and public board included)" if setup_web is not None else "")

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def _refresh_oa_tokens(self) -> None:
        while True:
            try:
                await self.zalo.oa_tokens.refresh_if_due()
            except Exception as error:  # logged without the token: the manager never puts it in
                log.warning("zalo oa: token refresh failed: %s", type(error).__name__)
            await asyncio.sleep(OA_REFRESH_SECONDS)

    async def _shutdown(self) -> None:
        """Intake first, then the scheduler, then the dispatcher, then the HTTP sessions."""
        by_name = {task.get_name(): task for task in self._tasks}
        # 1. No new updates; handlers in flight finish their transaction.
        if self.polling is not None:
            self.polling.stop()
        self._zalo_stop.set()
        for name in ("telegram polling", "zalo bot polling"):
            await _settle(by_name.get(name))
        if self._web is not None:
            runner, self._web = self._web, None
            await runner.cleanup()  # stops listening, drains the Telegram bridge
        if self.zalo is not None:
            await self.zalo.drain()
        # Nothing is recorded any more: process what waits, for up to the drain timeout; the
        # rest stays recorded for the next start.
        if self.inbox_runner is not None:
            await self.inbox_runner.stop()
            await _settle(by_name.get("inbox processor"))
        await _settle(by_name.get("zalo oa tokens"), cancel=True)
        # 2. The scheduler's running sweep finishes.
        if self.scheduler is not None:
            try:
                await self.scheduler.shutdown()
            except Exception:
                log.exception("scheduler shutdown failed")
        # 3. The dispatcher finishes its current sends; the rest waits in the outbox.
        self._dispatch_stop.set()
        await _settle(by_name.get("outbox dispatcher"))
        # 4. HTTP sessions.
        if self.zalo is not None:
            await self.zalo.close()
        if self.bot is not None:
            await self.bot.session.close()
        log.info("bot stopped")


async def _settle(task: asyncio.Task[Any] | None, *, cancel: bool = False) -> None:
    """Wait for a background task to end (cancelling it if asked); its error is logged by
    ``run`` already, so here it is only swallowed."""
    if task is None:
        return
    if cancel:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
