"""Building the aiogram ``Bot``: one place that knows the token and the Bot API base URL.

The base URL is configurable (``HOTLINE_TELEGRAM_API_URL``) for a local Bot API server or a
test server; tests point it at the loopback fake. No default parse mode is set on the bot:
the sender passes ``parse_mode`` on every call so the plain-text fallback can turn it off.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.token import TokenValidationError

from hotline.config import Settings
from hotline.errors import ConfigError

DEFAULT_API_URL = "https://api.telegram.org"
#: Upper bound for one HTTP request; long polls add their own wait on top (aiogram does this).
DEFAULT_REQUEST_TIMEOUT = 60.0


def create_bot(
    token: str, *, api_url: str = DEFAULT_API_URL, timeout: float = DEFAULT_REQUEST_TIMEOUT
) -> Bot:
    """A ``Bot`` talking to ``api_url``; the caller closes it with ``await bot.session.close()``."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url), timeout=timeout)
    return Bot(token=token, session=session)


def bot_from_settings(settings: Settings) -> Bot:
    if settings.telegram_token is None:
        raise ConfigError("HOTLINE_TELEGRAM_TOKEN is not set; the Telegram channel needs it")
    try:
        return create_bot(settings.telegram_token.get_secret_value(), api_url=settings.telegram_api_url)
    except TokenValidationError:
        # aiogram's message is fine, but never echo the token itself.
        raise ConfigError("HOTLINE_TELEGRAM_TOKEN is not a bot token (expected <digits>:<secret>)") from None
