"""Which Zalo channels run, built from configuration: senders for the dispatcher, intake for the bot.

- Zalo Bot Platform runs when ``HOTLINE_ZALO_BOT_TOKEN`` is set; ``HOTLINE_ZALO_BOT_MODE`` picks
  long polling (default) or the webhook (which then needs ``HOTLINE_ZALO_BOT_WEBHOOK_SECRET``).
- Zalo OA runs when ``HOTLINE_ZALO_OA_APP_ID`` is set; it then needs the OA secret key (webhook
  signatures), the app secret (token refresh) and, until the database holds a pair, the first
  refresh token from the OA authorisation.

Both feed the same handler (the engine, with ``bot.numbered.intake`` so digits answer menus)
and both senders go to the same outbox dispatcher, keyed by channel name.

A half-configured channel is a ``ConfigError`` naming the missing variable, raised at start-up
rather than at the first message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from aiohttp import web

from bot.delivery import ChannelSender
from bot.zalo.bot_api import ZaloBotClient
from bot.zalo.bot_intake import ZaloBotPoller, add_bot_webhook_route
from bot.zalo.bot_sender import ZaloBotSender
from bot.zalo.choices import NumberedMenus
from bot.zalo.common import EventHandler
from bot.zalo.contacts import set_contact_active
from bot.zalo.inbound import InboundWorker
from bot.zalo.oa_api import ZaloOAClient, ZaloOAuthClient
from bot.zalo.oa_intake import OAWebhook, add_oa_webhook_route
from bot.zalo.oa_mapping import CHANNEL as OA_CHANNEL
from bot.zalo.oa_mapping import FollowChange
from bot.zalo.oa_sender import ZaloOASender
from bot.zalo.oa_tokens import OATokenManager
from hotline.config import Settings
from hotline.deps import App
from hotline.errors import ConfigError


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    text = getter() if getter else value
    return str(text) if text else None


def bot_enabled(settings: Settings) -> bool:
    return _secret(settings.zalo_bot_token) is not None


def oa_enabled(settings: Settings) -> bool:
    return bool(settings.zalo_oa_app_id)


def check_settings(settings: Settings) -> None:
    """One clear sentence for the first missing piece of a Zalo channel's configuration."""
    if bot_enabled(settings) and settings.zalo_bot_mode == "webhook":
        secret = _secret(settings.zalo_bot_webhook_secret)
        if not secret or not 8 <= len(secret) <= 256:
            raise ConfigError(
                "HOTLINE_ZALO_BOT_WEBHOOK_SECRET (8-256 characters) is required in webhook mode"
            )
    if oa_enabled(settings):
        if not _secret(settings.zalo_oa_secret_key):
            raise ConfigError("HOTLINE_ZALO_OA_SECRET_KEY (the OA secret key) is required for Zalo OA")
        if not _secret(settings.zalo_oa_app_secret):
            raise ConfigError("HOTLINE_ZALO_OA_APP_SECRET (the app's secret key) is required for Zalo OA")


class _Closable(Protocol):
    async def close(self) -> None: ...


@dataclass
class ZaloChannels:
    """What the process runs for Zalo; ``close`` releases the HTTP sessions."""

    senders: dict[str, ChannelSender] = field(default_factory=dict)
    poller: ZaloBotPoller | None = None
    bot_webhook_worker: InboundWorker | None = None
    oa_webhook: OAWebhook | None = None
    oa_tokens: OATokenManager | None = None
    _settings: Settings | None = None
    _closers: list[_Closable] = field(default_factory=list)

    def mount(self, web_app: web.Application) -> None:
        """Add the webhook routes (Bot Platform in webhook mode, OA) to the bot's web server."""
        settings = self._settings
        assert settings is not None
        if self.bot_webhook_worker is not None:
            add_bot_webhook_route(web_app, path=settings.zalo_bot_webhook_path,
                                  secret=_secret(settings.zalo_bot_webhook_secret) or "",
                                  worker=self.bot_webhook_worker)
        if self.oa_webhook is not None:
            add_oa_webhook_route(web_app, path=settings.zalo_oa_webhook_path, webhook=self.oa_webhook)

    async def drain(self) -> None:
        for worker in (self.bot_webhook_worker, self.oa_webhook.worker if self.oa_webhook else None):
            if worker is not None:
                await worker.drain()

    async def close(self) -> None:
        await self.drain()
        for client in self._closers:
            await client.close()


def build_zalo(app: App, handler: EventHandler) -> ZaloChannels:
    """Clients, senders and intake for every configured Zalo channel (none if unconfigured)."""
    settings = app.settings
    check_settings(settings)
    channels = ZaloChannels(_settings=settings)
    menus = NumberedMenus(app)
    if bot_enabled(settings):
        client = ZaloBotClient(_secret(settings.zalo_bot_token) or "", settings.zalo_bot_api_url)
        channels._closers.append(client)
        channels.senders["zalo_bot"] = ZaloBotSender(client, menus=menus,
                                                     default_language=settings.default_language)
        if settings.zalo_bot_mode == "polling":
            channels.poller = ZaloBotPoller(client, handler)
        else:
            channels.bot_webhook_worker = InboundWorker(handler)
    if oa_enabled(settings):
        api = ZaloOAClient(settings.zalo_oa_api_url)
        oauth = ZaloOAuthClient(settings.zalo_oa_oauth_url)
        channels._closers += [api, oauth]
        tokens = OATokenManager(
            app,
            oauth,
            app_id=settings.zalo_oa_app_id or "",
            app_secret=_secret(settings.zalo_oa_app_secret) or "",
            seed_refresh_token=_secret(settings.zalo_oa_refresh_token),
            seed_access_token=_secret(settings.zalo_oa_access_token),
            refresh_margin=timedelta(seconds=settings.zalo_oa_refresh_margin_seconds),
        )
        channels.oa_tokens = tokens
        channels.senders[OA_CHANNEL] = ZaloOASender(
            api, tokens, menus=menus, button_type=settings.zalo_oa_button_type,
            rate_limit_backoff=settings.zalo_oa_rate_limit_backoff,
            default_language=settings.default_language,
        )

        async def on_follow(change: FollowChange) -> None:
            await set_contact_active(app, OA_CHANNEL, change.user_id, change.active)

        channels.oa_webhook = OAWebhook(
            app_id=settings.zalo_oa_app_id or "",
            secret=_secret(settings.zalo_oa_secret_key) or "",
            worker=InboundWorker(handler),
            on_follow=on_follow,
            clock=app.clock,
        )
    return channels
