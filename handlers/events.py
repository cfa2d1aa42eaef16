"""The engine's contract with every channel: normalised events in, messages out.

Nothing here imports a chat library. Channel adapters (``bot/``) build ``InboundEvent`` from
their updates and turn ``OutboundMessage`` into API calls; the engine never knows which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    #: Channels without buttons (console, Zalo): how many numbered choices the menu on screen
    #: has, set at intake for a typed number that names none of them (None: no such number).
    menu_size: int | None = None


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
