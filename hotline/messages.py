"""The engine's contract with every channel: normalised events in, messages out.

Nothing here imports a chat library. Channel adapters (``bot/``) build ``InboundEvent`` from
their updates and turn ``OutboundMessage`` into API calls; the engine never knows which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

AttachmentKind = Literal["photo", "document"]
EventKind = Literal["message", "button", "unsupported"]


@dataclass(frozen=True)
class Attachment:
    kind: AttachmentKind
    file_ref: str  # channel's file id or URL; fetched only if somebody needs the bytes
    file_name: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class InboundEvent:
    channel: str
    update_id: str  # de-duplication key together with channel
    user_id: str  # channel's id of the person
    chat_id: str  # where replies go
    kind: EventKind = "message"
    text: str | None = None
    payload: str | None = None  # button payload (callback data)
    attachments: tuple[Attachment, ...] = ()
    language: str | None = None  # client's language hint, used only for first contact
    display_name: str | None = None
    message_id: str | None = None  # message that carried the pressed button (to retire it)
    is_group_chat: bool = False
    #: Where the sender can write to the bot privately (Telegram: ``https://t.me/<bot>``), for
    #: the note a group gets instead of an answer; None when the channel has no such link.
    private_chat_url: str | None = None
    #: Channels without buttons (console, Zalo): how many numbered choices the menu on screen
    #: has, set at intake for a typed number that names none of them (None: no such number).
    menu_size: int | None = None


#: ``dedupe_key`` prefix of bulk outbox rows (a digest to every leader and member): the outbox
#: dispatcher claims other rows first, so a conversation never queues behind a broadcast.
BULK_DEDUPE_PREFIX = "digest:"

#: A UTF-16 surrogate code point: never a character on its own. JSON can smuggle one in
#: (``"\ud800"``), and no database, log file or chat API can encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(value: str) -> str:
    """Lone surrogates replaced by U+FFFD; everything else exactly as it was."""
    return _SURROGATE.sub("\ufffd", value)


def clean_text(value: str) -> str:
    """Text as every later step can store and send it: lone surrogates become U+FFFD and NUL
    characters go (PostgreSQL refuses them in text columns; one pasted NUL would make a report
    impossible to file)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return without_surrogates(value)


def sanitised(event: InboundEvent) -> InboundEvent:
    """``event`` with every text a user controls passed through ``clean_text``; channels call it
    where they build the event, and the engine once more on entry."""
    fields: dict[str, Any] = {}
    for name in ("user_id", "chat_id", "text", "payload", "language", "display_name", "message_id"):
        value = getattr(event, name)
        if isinstance(value, str) and (cleaned := clean_text(value)) != value:
            fields[name] = cleaned
    if any(a.file_name and clean_text(a.file_name) != a.file_name for a in event.attachments):
        fields["attachments"] = tuple(
            replace(a, file_name=clean_text(a.file_name) if a.file_name else a.file_name)
            for a in event.attachments)
    return replace(event, **fields) if fields else event


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one chat. ``text`` is Telegram's HTML subset with user text escaped."""

    channel: str
    chat_id: str
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()  # rows of buttons
    photo: str | None = None  # path to a file to send as a photo (text becomes the caption)
    document: str | None = None  # path to a file to send as a document
    retire_buttons_of: str | None = None  # message id whose keyboard should be removed
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"not_before": iso, "person_id": 1}

    def to_json(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` gives, written out: asdict deep-copies every field and
        cost ten times as much, and every reply and notice is serialised once."""
        return {
            "channel": self.channel,
            "chat_id": self.chat_id,
            "text": self.text,
            "buttons": tuple(
                tuple({"label": b.label, "payload": b.payload} for b in row) for row in self.buttons
            ),
            "photo": self.photo,
            "document": self.document,
            "retire_buttons_of": self.retire_buttons_of,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboundMessage:
        buttons = tuple(tuple(Button(**b) for b in row) for row in data.get("buttons", ()))
        return cls(
            channel=data["channel"],
            chat_id=data["chat_id"],
            text=data["text"],
            buttons=buttons,
            photo=data.get("photo"),
            document=data.get("document"),
            retire_buttons_of=data.get("retire_buttons_of"),
            meta=dict(data.get("meta") or {}),
        )
