"""A scripted chat user for the engine: what tests, benchmarks and demos talk through.

It builds ``InboundEvent``s exactly as a channel adapter would (fresh update ids, the pressed
message's id for button presses) and keeps the last replies, so a script reads like the
conversation: ``await alice.say("...")``, ``await alice.tap("Send")``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from handlers.engine import Engine
from hotline.i18n import plain
from hotline.messages import Attachment, Button, EventKind, InboundEvent, OutboundMessage

_update_ids = itertools.count(1)


class ScriptedUser:
    def __init__(self, engine: Engine, user_id: str, *, channel: str = "console",
                 language: str | None = None, display_name: str | None = None) -> None:
        self.engine = engine
        self.user_id = user_id
        self.channel = channel
        self.language = language
        self.display_name = display_name
        self.last: list[OutboundMessage] = []

    def event(self, *, kind: EventKind = "message", text: str | None = None,
              payload: str | None = None, attachments: Sequence[Attachment] = (),
              message_id: str | None = None, update_id: str | None = None) -> InboundEvent:
        return InboundEvent(
            channel=self.channel, update_id=update_id or f"u{next(_update_ids)}",
            user_id=self.user_id, chat_id=self.user_id, kind=kind, text=text, payload=payload,
            attachments=tuple(attachments), language=self.language,
            display_name=self.display_name, message_id=message_id,
        )

    async def send(self, event: InboundEvent) -> list[OutboundMessage]:
        self.last = await self.engine.handle(event)
        return self.last

    async def say(self, text: str, attachments: Sequence[Attachment] = ()) -> list[OutboundMessage]:
        return await self.send(self.event(text=text, attachments=attachments))

    async def press(self, payload: str, message_id: str | None = "m1") -> list[OutboundMessage]:
        return await self.send(self.event(kind="button", payload=payload, message_id=message_id))

    async def tap(self, label: str) -> list[OutboundMessage]:
        """Press the button of the last replies whose label contains ``label``."""
        return await self.press(self.button(label).payload)

    def payload(self, verb: str) -> str:
        """The payload of the one button with ``verb`` in the last replies (language-free)."""
        found = [b.payload for b in self.buttons() if b.payload.startswith(verb + ":")]
        if len(found) != 1:
            raise LookupError(f"{len(found)} buttons with verb {verb!r}: "
                              f"{[b.payload for b in self.buttons()]}")
        return found[0]

    def buttons(self) -> list[Button]:
        return [b for message in self.last for row in message.buttons for b in row]

    def button(self, label: str) -> Button:
        found = [b for b in self.buttons() if label.lower() in b.label.lower()]
        if len(found) != 1:
            raise LookupError(f"{len(found)} buttons match {label!r}: "
                              f"{[b.label for b in self.buttons()]}")
        return found[0]

    @property
    def text(self) -> str:
        """The last replies as plain text, one message per paragraph."""
        return "\n\n".join(plain(m.text) for m in self.last)


@dataclass(frozen=True)
class ScriptedClassification:
    """Same shape as ``hotline.classifier.Classification`` (category, confidence, candidates)."""

    category: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]


class ScriptedClassifier:
    """Answers by keyword, so conversation scripts know which branch (confident or pick from
    the top three) they will get; install with ``app._classifier = ScriptedClassifier()``."""

    def __init__(self, rules: Sequence[tuple[str, str, float]] = (),
                 default: tuple[str, float] = ("procedure", 0.3)) -> None:
        self.rules = list(rules) or [("dữ liệu", "data", 0.92), ("data", "data", 0.92),
                                     ("mạng", "infrastructure", 0.81),
                                     ("network", "infrastructure", 0.81)]
        self.default = default
        self.calls = 0

    def classify(self, text: str) -> ScriptedClassification:
        self.calls += 1
        lowered = text.lower()
        for keyword, category, confidence in self.rules:
            if keyword in lowered:
                return ScriptedClassification(
                    category, confidence,
                    ((category, confidence), ("infrastructure", 0.05), ("legal", 0.03)),
                )
        category, confidence = self.default
        return ScriptedClassification(
            category, confidence,
            ((category, confidence), ("legal", confidence * 0.9), ("funding", 0.1)),
        )
