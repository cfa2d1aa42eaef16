"""Which Zalo channels run is configuration: built from settings, refused when half-configured."""

from __future__ import annotations

import pytest
from aiohttp import web

from bot.zalo.bot_intake import ZaloBotPoller
from bot.zalo.bot_sender import ZaloBotSender
from bot.zalo.oa_sender import ZaloOASender
from bot.zalo.setup import build_zalo, check_settings
from hotline.config import Settings
from hotline.deps import App
from hotline.errors import ConfigError


async def nothing(_event: object) -> None:
    return None


def with_zalo(settings: Settings, **values: object) -> Settings:
    return settings.model_copy(update=values)


async def test_no_zalo_configuration_builds_nothing(app: App) -> None:
    channels = build_zalo(app, nothing)
    assert channels.senders == {} and channels.poller is None and channels.oa_webhook is None
    await channels.close()


async def test_both_channels_from_settings(app: App, settings: Settings) -> None:
    from pydantic import SecretStr

    app.settings = with_zalo(
        settings,
        zalo_bot_token=SecretStr("1:abc"),
        zalo_oa_app_id="2553928453557884079",
        zalo_oa_secret_key=SecretStr("oa-secret"),
        zalo_oa_app_secret=SecretStr("app-secret"),
        zalo_oa_refresh_token=SecretStr("refresh"),
    )
    channels = build_zalo(app, nothing)
    try:
        assert isinstance(channels.senders["zalo_bot"], ZaloBotSender)
        assert isinstance(channels.senders["zalo_oa"], ZaloOASender)
        assert isinstance(channels.poller, ZaloBotPoller) and channels.bot_webhook_worker is None
        web_app = web.Application()
        channels.mount(web_app)
        paths = {r.resource.canonical for r in web_app.router.routes() if r.resource is not None}
        assert paths == {"/zalo/oa/webhook"}
    finally:
        await channels.close()

    app.settings = with_zalo(app.settings, zalo_bot_mode="webhook",
                             zalo_bot_webhook_secret=SecretStr("long-enough-secret"))
    channels = build_zalo(app, nothing)
    try:
        assert channels.poller is None and channels.bot_webhook_worker is not None
        web_app = web.Application()
        channels.mount(web_app)
        paths = {r.resource.canonical for r in web_app.router.routes() if r.resource is not None}
        assert paths == {"/zalo/oa/webhook", "/zalo/bot/webhook"}
    finally:
        await channels.close()


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"zalo_bot_token": "1:abc", "zalo_bot_mode": "webhook"}, "HOTLINE_ZALO_BOT_WEBHOOK_SECRET"),
        ({"zalo_bot_token": "1:abc", "zalo_bot_mode": "webhook", "zalo_bot_webhook_secret": "short"},
         "HOTLINE_ZALO_BOT_WEBHOOK_SECRET"),
        ({"zalo_oa_app_id": "1"}, "HOTLINE_ZALO_OA_SECRET_KEY"),
        ({"zalo_oa_app_id": "1", "zalo_oa_secret_key": "s"}, "HOTLINE_ZALO_OA_APP_SECRET"),
    ],
)
def test_half_configured_channels_are_refused_by_name(values: dict[str, str], variable: str) -> None:
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg,arg-type]
    with pytest.raises(ConfigError, match=variable):
        check_settings(settings)
