"""Buttons for channels that have none (console, Zalo Bot): numbered choices in plain text.

When a message is delivered, its buttons are printed as ``[1] Label`` lines and the payloads
are remembered in the database per (channel, chat): any worker may receive the answer. At
intake, a reply that is just a number in range becomes a button press with the remembered
payload (the engine still verifies it like any other press); anything else stays text, so a
tax code or a date typed in the middle of a flow is never mistaken for a choice.

A used menu is forgotten (the equivalent of retiring a keyboard); a message without buttons
leaves the current menu in place, so a notification arriving between a question and its answer
does not break the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete

from handlers.events import InboundEvent, OutboundMessage
from hotline.app import App
from hotline.i18n import plain
from storage.models import KeyValue
from storage.uow import UnitOfWork

MENU_PREFIX = "menu:"
MAX_CHOICES = 99
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


@dataclass(frozen=True)
class Rendered:
    text: str
    payloads: list[str]


def menu_key(channel: str, chat_id: str) -> str:
    return f"{MENU_PREFIX}{channel}:{chat_id}"


def choices(message: OutboundMessage, *, start: int = 1) -> Rendered:
    """Only the numbered choice lines of ``message`` (empty text if it has no buttons)."""
    lines: list[str] = []
    payloads: list[str] = []
    number = start
    for row in message.buttons:
        for button in row:
            if number > MAX_CHOICES:
                break
            lines.append(f"  [{number}] {button.label}")  # labels are plain text already
            payloads.append(button.payload)
            number += 1
    return Rendered("\n".join(lines), payloads)


def render(message: OutboundMessage, *, start: int = 1, html: bool = False) -> Rendered:
    """The message as text with its buttons numbered from ``start`` (to number several
    messages delivered together continuously). ``html=False`` strips the HTML subset."""
    body = message.text if html else plain(message.text)
    numbered = choices(message, start=start)
    text = f"{body}\n{numbered.text}" if numbered.payloads else body
    return Rendered(text, numbered.payloads)


def choice_number(text: str | None) -> int | None:
    """``"2"``, ``" 2 "``, ``"2."`` and ``"2)"`` are choices; ``"0101234567"`` is not."""
    if not text:
        return None
    match = _NUMBER.match(text)
    return int(match.group(1)) if match else None


async def remember(uow: UnitOfWork, channel: str, chat_id: str, payloads: Sequence[str],
                   now: datetime) -> None:
    """Store the menu just delivered (replacing the previous one); nothing if no buttons."""
    if not payloads:
        return
    key = menu_key(channel, chat_id)
    value = json.dumps(list(payloads), separators=(",", ":"))
    row = await uow.session.get(KeyValue, key)
    if row is None:
        uow.session.add(KeyValue(key=key, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now


async def forget(uow: UnitOfWork, channel: str, chat_id: str) -> None:
    await uow.session.execute(delete(KeyValue).where(KeyValue.key == menu_key(channel, chat_id)))


async def remembered(uow: UnitOfWork, channel: str, chat_id: str) -> list[str]:
    row = await uow.session.get(KeyValue, menu_key(channel, chat_id))
    if row is None:
        return []
    try:
        value = json.loads(row.value)
    except ValueError:
        return []
    return [str(p) for p in value] if isinstance(value, list) else []


async def intake(uow: UnitOfWork, event: InboundEvent) -> InboundEvent:
    """Engine intake hook: a bare number answering the remembered menu becomes that press."""
    if event.kind != "message" or event.attachments:
        return event
    number = choice_number(event.text)
    if number is None:
        return event
    payloads = await remembered(uow, event.channel, event.chat_id)
    if not 1 <= number <= len(payloads):
        return event
    await forget(uow, event.channel, event.chat_id)
    return replace(event, kind="button", payload=payloads[number - 1], text=None,
                   message_id=menu_key(event.channel, event.chat_id))


class NumberedMenus:
    """The two hooks of ``bot.zalo.choices.ChoiceMenus`` for adapters that deliver and take in
    messages outside the engine's transaction; each call is its own short transaction."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def render(self, message: OutboundMessage, text: str) -> str:
        """``text`` plus the numbered choices; the menu is remembered as it is delivered."""
        numbered = choices(message)
        if not numbered.payloads:
            return text
        async with self.app.uow() as uow:
            await remember(uow, message.channel, message.chat_id, numbered.payloads,
                           self.app.clock.now())
            await uow.commit()
        return f"{text}\n{numbered.text}"

    async def resolve(self, event: InboundEvent) -> InboundEvent:
        async with self.app.uow() as uow:
            resolved = await intake(uow, event)
            await uow.commit()
        return resolved
