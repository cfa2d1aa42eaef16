"""Telegram's webhook into the inbox (``bot.inbox``): record, answer, process later.

The webhook's guard (secret, size, depth) has run; here the update is mapped once to find
its chat and whether it needs processing at all (edits, membership changes... do not), its raw
JSON is recorded, and Telegram gets its 200. A button press is answered
(``answerCallbackQuery``) right after recording, so the client's spinner stops while the
press waits for its turn. If the update cannot be recorded within ``RECORD_WITHIN`` seconds
(database unreachable) the answer is 503 and Telegram delivers it again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web

from bot.inbox import Decoder, Inbox
from bot.telegram.mapping import event_from_update
from bot.telegram.runner import TelegramBridge
from hotline.messages import InboundEvent

log = logging.getLogger(__name__)

#: Telegram waits for a webhook answer far longer; a short database restart fits in this.
RECORD_WITHIN = 10.0


def telegram_decoder(username: Callable[[], str | None]) -> Decoder:
    """Recorded update -> event, with the bot's name as known when processing (commands
    addressed to another bot in a group are ignored, as in the intake)."""

    def decode(payload: Any) -> InboundEvent | None:
        return event_from_update(Update.model_validate(payload), bot_username=username())

    return decode


class TelegramInboxIntake:
    """The webhook's handler when the runtime has an inbox (``WebhookRunner.intake``)."""

    def __init__(self, inbox: Inbox, bridge: TelegramBridge, *, within: float = RECORD_WITHIN) -> None:
        self.inbox = inbox
        self.bridge = bridge
        self.within = within

    async def __call__(self, payload: Any, raw: bytes, bot: Bot) -> web.StreamResponse:
        update = Update.model_validate(payload, context={"bot": bot})  # ValidationError: 400
        try:
            event = event_from_update(update, bot_username=await self.bridge.username(bot))
        except Exception:
            log.exception("could not map Telegram update %s; skipped", update.update_id)
            event = None
        if event is not None and not await self.inbox.record_within(event, raw, self.within):
            return web.Response(status=503, text="Service Unavailable")
        if update.callback_query is not None:
            self.bridge.track(self.bridge.answer_callback(bot, update.callback_query.id,
                                                          update.update_id))
        return web.json_response({})
