"""Zalo OA webhook event -> engine ``InboundEvent`` (or a follow/unfollow notice).

Events look like ``{"app_id", "event_name", "sender": {"id"}, "recipient": {"id"},
"message": {"msg_id", "text", "attachments": [...]}, "timestamp": "<ms>"}``; follow and
unfollow carry ``follower.id`` instead of a message. The OA-scoped user id is both the person
and the chat (OA conversations are one-to-one). ``msg_id`` is the de-duplication key.

A button of ours (``oa.query.show``/``oa.query.hide``) comes back as an ordinary
``user_send_text`` whose text is the button's payload. Text that parses as a payload
(``hotline.domain.payloads.parse``) is therefore passed on as ``kind="button"`` -- which a user
could also type by hand, so it is only a claim: the engine re-checks role and ticket state on
every press, exactly as for Telegram's callback data.

Events the OA itself caused (``oa_send_*``), delivery and read receipts, and anything unknown
map to ``None``: acknowledged and ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from bot.zalo.common import as_id
from hotline.domain import payloads
from hotline.errors import InvalidInput
from hotline.messages import Attachment, InboundEvent, sanitised

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"

@dataclass(frozen=True)
class FollowChange:
    """Someone followed (``active=True``) or unfollowed the OA."""

    user_id: str
    active: bool


def _attachments(message: dict[str, Any], kind: Literal["photo", "document"]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for item in message.get("attachments") or ():
        if not isinstance(item, dict):
            continue
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        url = payload.get("url") or payload.get("href")
        if not isinstance(url, str) or not url:
            continue
        name = payload.get("name")
        kind_text = payload.get("type")
        mime = kind_text if isinstance(kind_text, str) and "/" in kind_text else None
        found.append(Attachment(kind=kind, file_ref=url, file_name=name if isinstance(name, str) else None,
                                mime_type=mime))
    return tuple(found)


def looks_like_button(text: str) -> bool:
    try:
        payloads.parse(text)
    except InvalidInput:
        return False
    return True


def event_to_inbound(event: Any) -> InboundEvent | FollowChange | None:
    """The engine event (texts cleaned by ``hotline.messages.sanitised``) or follow change."""
    mapped = _event_to_inbound(event)
    return sanitised(mapped) if isinstance(mapped, InboundEvent) else mapped


def _event_to_inbound(event: Any) -> InboundEvent | FollowChange | None:
    if not isinstance(event, dict):
        return None
    name = event.get("event_name")
    if name in ("follow", "unfollow"):
        follower = event.get("follower") if isinstance(event.get("follower"), dict) else {}
        user_id = as_id(follower.get("id")) or as_id((event.get("sender") or {}).get("id"))
        return FollowChange(user_id, name == "follow") if user_id else None
    if not isinstance(name, str) or not name.startswith("user_send_"):
        return None
    sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    user_id = as_id(sender.get("id"))
    msg_id = as_id(message.get("msg_id"))
    if not user_id or not msg_id:
        log.info("zalo oa %s without sender or msg_id dropped", name)
        return None
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "update_id": msg_id,
        "user_id": user_id,
        "chat_id": user_id,
        "message_id": msg_id,
    }
    text = message.get("text") if isinstance(message.get("text"), str) else None
    if name == "user_send_text":
        if text is None:
            return InboundEvent(kind="unsupported", **common)
        stripped = text.strip()
        if looks_like_button(stripped):
            return InboundEvent(kind="button", payload=stripped, **common)
        return InboundEvent(kind="message", text=text, **common)
    if name == "user_send_image":
        found = _attachments(message, "photo")
        if not found:
            return InboundEvent(kind="unsupported", **common)
        return InboundEvent(kind="message", text=text or None, attachments=found, **common)
    if name == "user_send_file":
        found = _attachments(message, "document")
        if not found:
            return InboundEvent(kind="unsupported", **common)
        return InboundEvent(kind="message", text=text or None, attachments=found, **common)
    # Stickers, voice, location... and user_send_* events Zalo adds later.
    return InboundEvent(kind="unsupported", **common)
