"""Turns one engine ``OutboundMessage`` into Bot API calls and reports a ``DeliveryResult``.

The sender never raises for delivery problems: the outbox dispatcher needs a verdict it can
store (retry later, give up, mark the contact blocked), so every aiogram exception is mapped
by ``result_for_error``. It raises only for messages no retry could fix and that betray a bug
upstream -- a button payload over Telegram's 64-byte ``callback_data`` limit, a message meant
for another channel.

What one message becomes:

1. ``retire_buttons_of``: ``editMessageReplyMarkup`` without a keyboard, so a stale button
   cannot be pressed twice. Best effort: "not modified" / "not found" / "can't be edited"
   answers are ignored, while flood control, network errors and 403 abort the whole send
   before anything new went out (so a retry repeats nothing).
2. ``photo`` / ``document`` (local paths) uploaded with the text as caption when it fits
   1024 characters; otherwise uploaded bare and the text follows as its own message(s).
3. The text, split under 4096 characters on line boundaries (``hotline.text.split_message``);
   the inline keyboard goes on the last piece, whose id is returned as ``message_id``.

Known limit: a split text is not atomic. If piece 2 of 3 hits flood control, a retry of the
whole message resends piece 1; the dispatcher accepts that rare duplicate rather than lose
the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.delivery import DeliveryResult
from hotline.messages import Button, OutboundMessage
from hotline.text import (
    TELEGRAM_CAPTION_LIMIT,
    TELEGRAM_MESSAGE_LIMIT,
    split_message,
    strip_tags,
    utf16_length,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"
CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's InlineKeyboardButton.callback_data
DEFAULT_TIMEOUT = 30.0

T = TypeVar("T")


class OutboundMessageError(ValueError):
    """A message Telegram can never accept as written: a bug in whoever built it."""


class CallbackDataTooLong(OutboundMessageError):
    pass


class _Abort(Exception):
    """Carries a mapped failure out of the step sequence."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.error)
        self.result = result


class _RetireIgnored(Exception):
    """A refused edit of old buttons, which is harmless."""


def result_for_error(error: BaseException, *, token: str | None = None) -> DeliveryResult:
    """Map an aiogram/asyncio failure onto the dispatcher's vocabulary.

    ``token`` is redacted from the error text in case a transport error quotes the URL.
    """
    text = str(error) or type(error).__name__
    if token:
        text = text.replace(token, "<token>")
    if isinstance(error, TelegramRetryAfter):
        return DeliveryResult("retry_after", retry_after=float(error.retry_after), error=text)
    if isinstance(error, TelegramForbiddenError):
        return DeliveryResult("blocked", error=text)
    if isinstance(error, TelegramEntityTooLarge):  # 413 is a TelegramNetworkError subclass
        return DeliveryResult("permanent", error=text)
    if isinstance(error, TelegramServerError | TelegramNetworkError | TimeoutError):
        return DeliveryResult("transient", error=text)
    if isinstance(error, ClientDecodeError):  # a proxy's HTML error page, a truncated body
        return DeliveryResult("transient", error=text)
    if isinstance(error, TelegramUnauthorizedError):
        # A revoked or mistyped token is an operator problem; keep the message until fixed.
        return DeliveryResult("transient", error=text)
    if isinstance(error, TelegramBadRequest) and "can't parse entities" in error.message.lower():
        return DeliveryResult("bad_markup", error=text)
    if isinstance(error, TelegramMigrateToChat):
        return DeliveryResult("permanent", error=f"{text} (migrate_to_chat_id={error.migrate_to_chat_id})")
    if isinstance(error, TelegramAPIError):
        return DeliveryResult("permanent", error=text)
    raise TypeError(f"not a delivery error: {type(error).__name__}") from error


def check_buttons(buttons: tuple[tuple[Button, ...], ...]) -> None:
    """Raise ``CallbackDataTooLong`` (naming the payload) before Telegram says
    ``BUTTON_DATA_INVALID``; the engine should keep payloads short ids, not data."""
    for row in buttons:
        for button in row:
            size = len(button.payload.encode("utf-8"))
            if not 1 <= size <= CALLBACK_DATA_LIMIT:
                raise CallbackDataTooLong(
                    f"button {button.label!r}: callback payload {button.payload!r} is "
                    f"{size} bytes; Telegram accepts 1-{CALLBACK_DATA_LIMIT}"
                )
            if not button.label.strip():
                raise OutboundMessageError(f"button with payload {button.payload!r} has no label")


def keyboard(buttons: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    rows = [
        [InlineKeyboardButton(text=b.label, callback_data=b.payload) for b in row] for row in buttons if row
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def telegram_chat_id(chat_id: str) -> int | str:
    """Numeric ids go as integers; ``@channelusername`` stays a string."""
    return int(chat_id) if re.fullmatch(r"-?\d+", chat_id.strip()) else chat_id


class TelegramSender:
    """``ChannelSender`` for Telegram over an aiogram ``Bot`` (which the caller owns)."""

    channel = CHANNEL

    def __init__(
        self,
        bot: Bot,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        message_limit: int = TELEGRAM_MESSAGE_LIMIT,
        caption_limit: int = TELEGRAM_CAPTION_LIMIT,
    ) -> None:
        self.bot = bot
        self.timeout = timeout
        self.message_limit = message_limit
        self.caption_limit = caption_limit

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send with ``parse_mode=HTML``; see the module docstring for the steps."""
        return await self._deliver(message, html=True)

    async def send_plain(self, message: OutboundMessage) -> DeliveryResult:
        """The same message with tags stripped and no parse mode: the one fallback after
        ``bad_markup``, so a markup bug costs formatting, not the message."""
        return await self._deliver(message, html=False)

    async def retire_buttons(self, chat_id: str, message_id: str) -> DeliveryResult:
        """Remove the inline keyboard of one earlier message (best effort, see module doc)."""
        try:
            await self._retire(telegram_chat_id(chat_id), message_id)
        except _Abort as abort:
            return abort.result
        return DeliveryResult("sent", message_id=message_id)

    # --- steps --------------------------------------------------------------------------------
    async def _deliver(self, message: OutboundMessage, *, html: bool) -> DeliveryResult:
        if message.channel != CHANNEL:
            raise OutboundMessageError(f"message for channel {message.channel!r} sent to Telegram")
        check_buttons(message.buttons)
        media = [("photo", message.photo), ("document", message.document)]
        media = [(kind, path) for kind, path in media if path]
        for _, path in media:
            if not await asyncio.to_thread(os.path.isfile, path):
                return DeliveryResult("permanent", error=f"attachment not found: {path}")
        text = message.text if html else strip_tags(message.text)
        if not text.strip() and not media and not message.retire_buttons_of:
            return DeliveryResult("permanent", error="empty message")

        chat = telegram_chat_id(message.chat_id)
        parse_mode = "HTML" if html else None
        markup = keyboard(message.buttons)
        has_text = bool(text.strip())
        caption_fits = has_text and utf16_length(text) <= self.caption_limit
        last: Message | None = None
        try:
            if message.retire_buttons_of:
                await self._retire(chat, message.retire_buttons_of)
            for index, (kind, path) in enumerate(media):
                # The last attachment carries caption and keyboard unless the text is too
                # long for a caption, in which case the text's last piece carries them.
                carries = index == len(media) - 1 and (caption_fits or not has_text)
                caption = text if carries and caption_fits else None
                options: dict[str, Any] = {
                    "chat_id": chat,
                    "caption": caption,
                    "parse_mode": parse_mode if caption else None,
                    "reply_markup": markup if carries else None,
                }
                if kind == "photo":
                    last = await self._call(self.bot.send_photo(photo=FSInputFile(path), **options))
                else:
                    last = await self._call(self.bot.send_document(document=FSInputFile(path), **options))
            if has_text and not (media and caption_fits):
                pieces = split_message(text, self.message_limit, html=html)
                for index, piece in enumerate(pieces):
                    last = await self._call(
                        self.bot.send_message(
                            chat_id=chat,
                            text=piece,
                            parse_mode=parse_mode,
                            reply_markup=markup if index == len(pieces) - 1 else None,
                        )
                    )
        except _Abort as abort:
            return abort.result
        message_id = str(last.message_id) if last is not None else None
        return DeliveryResult("sent", message_id=message_id)

    async def _retire(self, chat: int | str, message_id: str) -> None:
        if not message_id.strip().isdigit():
            log.warning("cannot retire buttons of non-numeric message id %r", message_id)
            return
        try:
            await self._call(
                self.bot.edit_message_reply_markup(
                    chat_id=chat, message_id=int(message_id), reply_markup=None
                ),
                expect_bad_request=True,
            )
        except _RetireIgnored as ignored:
            # Already gone, already retired, or older than 48 h: nothing left to press.
            log.info("buttons of message %s not retired: %s", message_id, ignored)

    async def _call(self, call: Awaitable[T], *, expect_bad_request: bool = False) -> T:
        """Await one API call under the sender's own deadline, mapping its failure."""
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except (TelegramBadRequest, TelegramNotFound) as error:
            if expect_bad_request:
                raise _RetireIgnored(error.message) from error
            raise _Abort(result_for_error(error, token=self.bot.token)) from error
        except (TelegramAPIError, TimeoutError, ClientDecodeError) as error:
            raise _Abort(result_for_error(error, token=self.bot.token)) from error
