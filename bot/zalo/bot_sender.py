"""Turns one engine ``OutboundMessage`` into Zalo Bot Platform calls; reports a ``DeliveryResult``.

What one message becomes:

1. The text, with tags removed (``common.to_plain``) and the buttons appended as numbered
   choices (``choices.ChoiceMenus``) -- the platform has no buttons.
2. A photo whose reference is a public ``http(s)`` URL goes out with ``sendPhoto`` (the text as
   caption when it fits). The platform takes no uploads, so a local file (what the engine
   normally attaches: charts, exports) cannot be sent; the recipient gets a short note naming
   the file instead, and the text as usual.
3. The text cut into pieces of at most 2000 characters on line boundaries, sent in order; the
   last piece's id is returned.

Errors map onto the dispatcher's vocabulary (``result_for_error``); the sender never raises
for delivery problems. A split text is not atomic: if piece 2 fails, a retry resends piece 1
(the same trade-off as the Telegram sender).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from pathlib import PurePath
from typing import TypeVar

from bot.delivery import DeliveryResult
from bot.zalo.bot_api import ZaloBotClient, ZaloBotError
from bot.zalo.choices import ChoiceMenus
from bot.zalo.common import ZALO_TEXT_LIMIT, ZaloTransportError, redact, split_plain, to_plain
from hotline.i18n import t
from hotline.messages import OutboundMessage

log = logging.getLogger(__name__)

CHANNEL = "zalo_bot"
DEFAULT_RETRY_AFTER = 5.0

T = TypeVar("T")


class OutboundMessageError(ValueError):
    """A message this channel can never accept as written (a bug upstream)."""


def result_for_error(error: BaseException, *, token: str | None = None) -> DeliveryResult:
    """Map a Bot Platform failure onto ``DeliveryResult``; the token never reaches the text."""
    text = redact(str(error) or type(error).__name__, token)
    if isinstance(error, ZaloBotError):
        code = error.error_code
        if code == 429:
            wait = error.retry_after or DEFAULT_RETRY_AFTER
            return DeliveryResult("retry_after", retry_after=wait, error=text)
        if code == 403:
            return DeliveryResult("blocked", error=text)
        if code >= 500 or code in (401, 408):
            # 401: a revoked or mistyped token is the operator's to fix; keep the message.
            return DeliveryResult("transient", error=text)
        return DeliveryResult("permanent", error=text)
    if isinstance(error, ZaloTransportError | TimeoutError):
        return DeliveryResult("transient", error=text)
    raise TypeError(f"not a delivery error: {type(error).__name__}") from error


def is_public_url(ref: str | None) -> bool:
    return bool(ref) and ref.strip().lower().startswith(("https://", "http://"))  # type: ignore[union-attr]


def attachment_note(path: str, lang: str | None) -> str:
    """The catalogue text is HTML with the name escaped; Zalo shows plain text."""
    return to_plain(str(t("zalo.attachment_not_sent", lang, name=PurePath(path).name)))


class ZaloBotSender:
    """``ChannelSender`` for the Zalo Bot Platform over a ``ZaloBotClient`` (owned by the caller)."""

    channel = CHANNEL

    def __init__(
        self,
        client: ZaloBotClient,
        *,
        menus: ChoiceMenus | None = None,
        message_limit: int = ZALO_TEXT_LIMIT,
        timeout: float = 30.0,
        default_language: str = "vi",
    ) -> None:
        self.client = client
        self.menus = menus
        self.message_limit = message_limit
        self.timeout = timeout
        self.default_language = default_language

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if message.channel != CHANNEL:
            raise OutboundMessageError(f"message for channel {message.channel!r} sent to the Zalo bot")
        lang = message.meta.get("lang") or self.default_language
        text = to_plain(message.text)
        if message.buttons:
            if self.menus is None:
                raise OutboundMessageError("buttons on Zalo need numbered choices: pass menus=")
            text = await self.menus.render(message, text)
        notes: list[str] = []
        photo_url = message.photo if is_public_url(message.photo) else None
        for ref in (message.photo, message.document):
            if ref and ref != photo_url:
                notes.append(attachment_note(ref, lang))
        if notes:
            text = "\n".join([*notes, text]) if text else "\n".join(notes)
        if not text.strip() and not photo_url:
            if message.retire_buttons_of:
                return DeliveryResult("sent")  # only old buttons to retire: Zalo has none
            return DeliveryResult("permanent", error="empty message")
        last: str | None = None
        try:
            if photo_url:
                caption = text if text and len(text) <= self.message_limit else None
                result = await self._call(self.client.send_photo(message.chat_id, photo_url, caption))
                last = _message_id(result)
                if caption is not None:
                    text = ""
            for piece in split_plain(text, self.message_limit):
                result = await self._call(self.client.send_message(message.chat_id, piece))
                last = _message_id(result) or last
        except (ZaloBotError, ZaloTransportError, TimeoutError) as error:
            return result_for_error(error, token=self.client.token)
        return DeliveryResult("sent", message_id=last)

    async def _call(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self.timeout):
            return await call


def _message_id(result: object) -> str | None:
    if isinstance(result, dict) and result.get("message_id") is not None:
        return str(result["message_id"])
    return None
