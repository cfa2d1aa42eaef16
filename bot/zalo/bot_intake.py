"""Getting Zalo Bot Platform updates into the engine: long polling or a webhook.

Polling (``ZaloBotPoller``) needs no public URL, which suits a ministry's internal server.
``getUpdates`` returns at most one update per call and has no offset: an update handed out is
gone, so the poller retries the handler itself (a few times, with backoff) before it gives up
on an update. ``error_code`` 408 is the platform's "nothing new"; any other failure (network,
5xx, a bad token) backs off exponentially up to a cap, so a Zalo outage costs one request per
minute, not a busy loop. The platform refuses ``getUpdates`` while a webhook is set, so the
poller removes one it finds (the operator chose polling in the configuration).

The webhook (``bot_webhook_app`` / ``add_bot_webhook_route``) checks the
``X-Bot-Api-Secret-Token`` header against the secret given to ``setWebhook`` with a
constant-time comparison before reading anything else; a missing or wrong secret is a 403 and
nothing is processed. Accepted updates go through ``InboundWorker``: answered fast, processed
in chat order, redeliveries dropped.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import jsonbody
from bot.zalo.bot_api import NO_UPDATE, ZaloBotClient, ZaloBotError
from bot.zalo.bot_mapping import update_to_event
from bot.zalo.common import EventHandler, ZaloTransportError
from bot.zalo.inbound import InboundWorker
from hotline.messages import InboundEvent

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Bot-Api-Secret-Token"
#: Largest webhook body accepted; a Zalo update is a few hundred bytes.
MAX_BODY = 256 * 1024


class ZaloBotPoller:
    """The ``getUpdates`` loop; ``run`` until ``stop`` is set (or ``max_updates`` were handled)."""

    def __init__(
        self,
        client: ZaloBotClient,
        handler: EventHandler,
        *,
        poll_seconds: int = 30,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        handler_attempts: int = 3,
        remove_webhook: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.handler = handler
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.handler_attempts = max(1, handler_attempts)
        self.remove_webhook = remove_webhook
        self._sleep = sleep
        self.failures = 0  # consecutive failed polls (drives the backoff)
        self.handled = 0
        self.dropped = 0

    def backoff(self) -> float:
        """Delay before the next poll after ``failures`` consecutive failures."""
        if self.failures <= 0:
            return 0.0
        return min(self.backoff_cap, self.backoff_base * 2 ** (self.failures - 1))

    async def prepare(self) -> None:
        """Remove a webhook left from webhook mode, which would make ``getUpdates`` fail."""
        if not self.remove_webhook:
            return
        try:
            info = await self.client.get_webhook_info()
        except (ZaloBotError, ZaloTransportError, TimeoutError) as error:
            log.warning("zalo bot: getWebhookInfo failed (%s); polling anyway", error)
            return
        if isinstance(info, dict) and info.get("url"):
            log.warning("zalo bot: removing the webhook so that polling works")
            await self.client.delete_webhook()

    async def poll_once(self) -> InboundEvent | None:
        """One ``getUpdates``; ``None`` when nothing new came. Raises on failure."""
        try:
            result = await self.client.get_updates(self.poll_seconds)
        except ZaloBotError as error:
            if error.error_code == NO_UPDATE:
                return None
            raise
        if not result:
            return None
        event = update_to_event(result)
        if event is None:
            log.info("zalo bot: unusable update dropped")
        return event

    async def _handle(self, event: InboundEvent, stop: asyncio.Event) -> None:
        for attempt in range(1, self.handler_attempts + 1):
            try:
                await self.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                if attempt == self.handler_attempts or stop.is_set():
                    self.dropped += 1
                    log.exception("zalo bot: update %s failed %d times: dropped", event.update_id, attempt)
                    return
                await self._sleep(min(self.backoff_cap, self.backoff_base * attempt))
            else:
                self.handled += 1
                return

    async def run(self, stop: asyncio.Event | None = None, *, max_updates: int | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.prepare()
        while not stop.is_set():
            if max_updates is not None and self.handled + self.dropped >= max_updates:
                return
            try:
                event = await self._until_stopped(self.poll_once(), stop)
            except _Stopped:
                return
            except (ZaloBotError, ZaloTransportError, TimeoutError) as error:
                self.failures += 1
                delay = self.backoff()
                log.warning("zalo bot: getUpdates failed (%s); retrying in %.1fs", error, delay)
                try:
                    await self._until_stopped(self._sleep(delay), stop)
                except _Stopped:
                    return
                continue
            self.failures = 0
            if event is not None:
                await self._handle(event, stop)

    @staticmethod
    async def _until_stopped(awaitable: Awaitable[object], stop: asyncio.Event) -> object:
        """Await ``awaitable`` unless ``stop`` is set first (a long poll must not delay shutdown)."""
        work = asyncio.ensure_future(awaitable)
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise _Stopped
        return work.result()


class _Stopped(Exception):
    pass


def secret_matches(presented: str | None, secret: str) -> bool:
    """Constant-time comparison; a missing header never matches."""
    if not presented or not secret:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), secret.encode("utf-8"))


def add_bot_webhook_route(
    app: web.Application, *, path: str, secret: str, worker: InboundWorker
) -> None:
    """Mount the Bot Platform webhook on an existing aiohttp application."""
    if not secret or len(secret) < 8:
        raise ValueError("the Zalo bot webhook secret must be 8 to 256 characters")

    async def webhook(request: web.Request) -> web.Response:
        if not secret_matches(request.headers.get(SECRET_HEADER), secret):
            log.warning("zalo bot webhook: missing or wrong secret from %s", request.remote)
            return web.json_response({"ok": False, "description": "forbidden"}, status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"ok": False, "description": "too large"}, status=413)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return web.json_response({"ok": False, "description": "too large"}, status=413)
        try:
            payload = jsonbody.parse(raw, max_bytes=MAX_BODY)
        except jsonbody.BadBody as bad:
            log.warning("zalo bot webhook: body refused (%s)", bad.reason)
            return web.json_response({"ok": False, "description": "invalid JSON"}, status=400)
        event = update_to_event(payload)
        if event is None:
            # Authentic but unusable: acknowledge so the platform does not retry it forever.
            return web.json_response({"ok": True})
        await worker.submit(event)
        return web.json_response({"ok": True})

    app.router.add_post(path, webhook)


def bot_webhook_app(
    *, path: str, secret: str, handler: EventHandler, worker: InboundWorker | None = None
) -> tuple[web.Application, InboundWorker]:
    """A stand-alone aiohttp app serving the webhook, and the worker to drain on shutdown."""
    worker = worker or InboundWorker(handler)
    app = web.Application(client_max_size=MAX_BODY)
    add_bot_webhook_route(app, path=path, secret=secret, worker=worker)

    async def _drain(_app: web.Application) -> None:
        await worker.drain()

    app.on_shutdown.append(_drain)
    return app, worker
