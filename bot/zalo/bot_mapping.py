"""Zalo Bot Platform update -> engine ``InboundEvent``.

An update is ``{"event_name": ..., "message": {...}}``. ``getUpdates`` returns it inside the
usual envelope (``{"ok": true, "result": update}``) and webhooks have been seen both bare and
wrapped, so ``unwrap`` accepts both. Field names differ between the published docs and the
SDKs (the sender's name is ``display_name`` in webhooks, ``first_name`` or ``name`` elsewhere;
the image is ``photo_url`` or ``photo``), so every known spelling is read.

Updates carry no update id of their own and ``getUpdates`` has no offset; the message id is
unique per message, so it is the de-duplication key (``update_id``) the engine stores.
Anything malformed maps to ``None`` and is dropped by the caller: a bad update changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.zalo.common import as_id
from hotline.messages import Attachment, InboundEvent, sanitised

log = logging.getLogger(__name__)

CHANNEL = "zalo_bot"

TEXT = "message.text.received"
IMAGE = "message.image.received"
STICKER = "message.sticker.received"
UNSUPPORTED = "message.unsupported.received"


def unwrap(payload: Any) -> dict[str, Any] | None:
    """The update inside ``{"ok": true, "result": update}``, or the update itself."""
    if not isinstance(payload, dict):
        return None
    if "event_name" not in payload and "result" in payload:
        if payload.get("ok") is False:
            return None
        inner = payload.get("result")
        return inner if isinstance(inner, dict) else None
    return payload


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def update_to_event(payload: Any) -> InboundEvent | None:
    """Map one update (bare or wrapped); ``None`` for anything we cannot attribute to a chat.
    Texts are cleaned of what no later step can store (``hotline.messages.sanitised``)."""
    event = _update_to_event(payload)
    return sanitised(event) if event is not None else None


def _update_to_event(payload: Any) -> InboundEvent | None:
    update = unwrap(payload)
    if update is None:
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    message_id = as_id(message.get("message_id"))
    chat_id = as_id(chat.get("id"))
    user_id = as_id(sender.get("id")) or chat_id
    if not message_id or not chat_id or not user_id:
        log.info("zalo bot update without message/chat/sender id dropped")
        return None
    if sender.get("is_bot") is True:
        return None
    name = _first(sender, "display_name", "name", "first_name")
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "update_id": message_id,
        "user_id": user_id,
        "chat_id": chat_id,
        "message_id": message_id,
        "display_name": str(name)[:200] if name else None,
        "is_group_chat": str(chat.get("chat_type") or "").upper() == "GROUP",
    }
    event_name = update.get("event_name")
    text = message.get("text")
    if event_name == TEXT or (event_name is None and isinstance(text, str)):
        if not isinstance(text, str):
            return InboundEvent(kind="unsupported", **common)
        return InboundEvent(kind="message", text=text, **common)
    if event_name == IMAGE:
        url = _first(message, "photo_url", "photo", "url")
        caption = message.get("caption") or (text if isinstance(text, str) else None)
        if not isinstance(url, str):
            return InboundEvent(kind="unsupported", **common)
        return InboundEvent(
            kind="message",
            text=caption if isinstance(caption, str) and caption else None,
            attachments=(Attachment(kind="photo", file_ref=url),),
            **common,
        )
    # Stickers, and whatever the platform adds later, get the engine's "not supported" answer.
    return InboundEvent(kind="unsupported", **common)
