"""aiogram updates -> the engine's ``InboundEvent``: the only place that knows Telegram's shapes.

Three outcomes, chosen so the engine answers people and ignores machinery:

- ``kind="message"``: text (commands included, as text), photo or document from a person.
- ``kind="unsupported"``: something a person sent that we cannot take (sticker, voice,
  video, location, contact, poll...) or a button press without data. The engine replies with
  a clear "please send text, a photo or a document".
- ``None``: nothing to answer -- service messages (someone joined a group, a pinned message),
  edits, channel posts, posts by anonymous admins or other bots, membership changes, inline
  queries, commands addressed to another bot in a group.

Mapping never raises for odd input: every optional field Telegram may omit is treated as
absent, and the runner logs and skips an update if mapping fails anyway.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import CallbackQuery, Message, Update

from hotline.messages import Attachment, InboundEvent, sanitised

CHANNEL = "telegram"

#: Content a person sends that we cannot process; everything else unknown is a service event.
UNSUPPORTED_CONTENT = frozenset(
    {
        "animation",
        "audio",
        "checklist",
        "contact",
        "dice",
        "game",
        "live_photo",
        "location",
        "paid_media",
        "poll",
        "sticker",
        "story",
        "unknown",
        "venue",
        "video",
        "video_note",
        "voice",
        "users_shared",
        "chat_shared",
        "web_app_data",
    }
)
GROUP_TYPES = frozenset({"group", "supergroup"})


def event_from_update(update: Update, *, bot_username: str | None = None) -> InboundEvent | None:
    """The event for one update, or ``None`` when the update needs no answer."""
    if update.message is not None:
        return event_from_message(update.message, update.update_id, bot_username=bot_username)
    if update.callback_query is not None:
        return event_from_callback(update.callback_query, update.update_id, bot_username=bot_username)
    return None  # edited_message, channel_post, my_chat_member, inline_query, ...


def _command_text(text: str, bot_username: str | None) -> str | None:
    """``/status@our_bot HL-1`` -> ``/status HL-1``; ``None`` if meant for another bot.

    In groups Telegram clients append the bot's username to commands; the engine parses
    bare commands, and must not react to a command aimed at a different bot in the group.
    """
    head, sep, rest = text.partition(" ")
    command, at, target = head.partition("@")
    if not at:
        return text
    if bot_username and target.lower() != bot_username.lower():
        return None
    return command + sep + rest


def event_from_message(
    message: Message, update_id: int, *, bot_username: str | None = None
) -> InboundEvent | None:
    """The event for a message; its texts cleaned of what no later step can store
    (``hotline.messages.sanitised``: lone surrogates, NUL)."""
    event = _event_from_message(message, update_id, bot_username=bot_username)
    return sanitised(event) if event is not None else None


def _event_from_message(
    message: Message, update_id: int, *, bot_username: str | None = None
) -> InboundEvent | None:
    user = message.from_user
    chat = message.chat
    if user is None or user.is_bot or message.sender_chat is not None:
        return None  # channel post, anonymous group admin, another bot
    if chat.type not in GROUP_TYPES and chat.type != "private":
        return None
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "update_id": str(update_id),
        "user_id": str(user.id),
        "chat_id": str(chat.id),
        "language": user.language_code,
        "display_name": user.full_name or None,
        "is_group_chat": chat.type in GROUP_TYPES,
        "private_chat_url": private_chat_url(bot_username) if chat.type in GROUP_TYPES else None,
    }
    content = message.content_type
    if content == "text" and message.text is not None:
        text: str | None = message.text
        if text.startswith("/"):
            text = _command_text(text, bot_username)
            if text is None:
                return None
        return InboundEvent(kind="message", text=text, **common)
    if content == "photo" and message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        attachment = Attachment(kind="photo", file_ref=largest.file_id)
        return InboundEvent(kind="message", text=message.caption, attachments=(attachment,), **common)
    if content == "document" and message.document is not None:
        document = message.document
        attachment = Attachment(
            kind="document",
            file_ref=document.file_id,
            file_name=document.file_name,
            mime_type=document.mime_type,
        )
        return InboundEvent(kind="message", text=message.caption, attachments=(attachment,), **common)
    if content in UNSUPPORTED_CONTENT:
        return InboundEvent(kind="unsupported", **common)
    return None  # service message: members joined/left, pinned, title changed, ...


def private_chat_url(bot_username: str | None) -> str | None:
    """The bot's private chat (``t.me/<username>``), where a group's note sends people (set on
    group events only: a private event needs no way to the private chat)."""
    return f"https://t.me/{bot_username}" if bot_username else None


def event_from_callback(
    query: CallbackQuery, update_id: int, *, bot_username: str | None = None
) -> InboundEvent | None:
    """A button press. ``message_id`` is the message carrying the keyboard, so the engine can
    retire it; presses on messages we cannot see (inline mode) have no chat and are dropped."""
    message = query.message
    if message is None:  # inline_message_id only: not a chat we talk in
        return None
    chat = message.chat
    user = query.from_user
    return sanitised(InboundEvent(
        channel=CHANNEL,
        update_id=str(update_id),
        user_id=str(user.id),
        chat_id=str(chat.id),
        kind="button" if query.data else "unsupported",
        payload=query.data or None,
        language=user.language_code,
        display_name=user.full_name or None,
        message_id=str(message.message_id),
        is_group_chat=chat.type in GROUP_TYPES,
        private_chat_url=private_chat_url(bot_username) if chat.type in GROUP_TYPES else None,
    ))
