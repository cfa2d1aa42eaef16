"""Buttons for channels that have none (console, Zalo Bot): numbered choices in plain text.

When a message is delivered, its buttons are printed as ``[1] Label`` lines and the payloads
are remembered in the database per (channel, chat): any worker may receive the answer. At
intake, a reply that is just a number in range, or exactly a choice's label, becomes a button
press with the remembered payload (the engine still verifies it like any other press). A bare
number that names no line is marked with the menu's size, so the engine answers with the valid
range instead of taking "0" for a report; anything else stays text, so a tax code or a date
typed in the middle of a flow is never mistaken for a choice.

A used menu is forgotten (the equivalent of retiring a keyboard); a message without buttons
leaves the current menu in place, so a notification arriving between a question and its answer
does not break the answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import delete

from handlers import choices as choice_rules
from hotline.deps import App
from hotline.i18n import plain
from hotline.messages import InboundEvent, OutboundMessage
from storage.models import KeyValue
from storage.uow import UnitOfWork

MENU_PREFIX = "menu:"
MAX_CHOICES = 99


@dataclass(frozen=True)
class Rendered:
    text: str
    payloads: list[str]
    labels: list[str] = field(default_factory=list)


def menu_key(channel: str, chat_id: str) -> str:
    return f"{MENU_PREFIX}{channel}:{chat_id}"


def choices(message: OutboundMessage, *, start: int = 1) -> Rendered:
    """Only the numbered choice lines of ``message`` (empty text if it has no buttons)."""
    lines: list[str] = []
    payloads: list[str] = []
    labels: list[str] = []
    number = start
    for row in message.buttons:
        for button in row:
            if number > MAX_CHOICES:
                break
            lines.append(f"  [{number}] {button.label}")  # labels are plain text already
            payloads.append(button.payload)
            labels.append(button.label)
            number += 1
    return Rendered("\n".join(lines), payloads, labels)


def render(message: OutboundMessage, *, start: int = 1, html: bool = False) -> Rendered:
    """The message as text with its buttons numbered from ``start`` (to number several
    messages delivered together continuously). ``html=False`` strips the HTML subset."""
    body = message.text if html else plain(message.text)
    numbered = choices(message, start=start)
    text = f"{body}\n{numbered.text}" if numbered.payloads else body
    return Rendered(text, numbered.payloads, numbered.labels)


def choice_number(text: str | None) -> int | None:
    """``"2"``, ``" 2 "``, ``"2."`` and ``"2)"`` are choices; ``"0101234567"`` is not."""
    number = choice_rules.number_of(text)
    return number if number is not None and number <= MAX_CHOICES else None


async def remember(uow: UnitOfWork, channel: str, chat_id: str, payloads: Sequence[str],
                   now: datetime, labels: Sequence[str] = ()) -> None:
    """Store the menu just delivered (replacing the previous one); nothing if no buttons.
    With ``labels`` (one per payload) a typed label answers too."""
    if not payloads:
        return
    key = menu_key(channel, chat_id)
    stored: object = list(payloads)
    if len(labels) == len(payloads):
        stored = {"p": list(payloads), "l": list(labels)}
    value = json.dumps(stored, separators=(",", ":"), ensure_ascii=False)
    row = await uow.session.get(KeyValue, key)
    if row is None:
        uow.session.add(KeyValue(key=key, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now


async def forget(uow: UnitOfWork, channel: str, chat_id: str) -> None:
    await uow.session.execute(delete(KeyValue).where(KeyValue.key == menu_key(channel, chat_id)))


async def remembered(uow: UnitOfWork, channel: str, chat_id: str) -> list[str]:
    return [payload for _, payload in await remembered_menu(uow, channel, chat_id)]


async def remembered_menu(uow: UnitOfWork, channel: str, chat_id: str) -> list[tuple[str, str]]:
    """``(label, payload)`` per line of the menu on screen (labels empty if stored without)."""
    row = await uow.session.get(KeyValue, menu_key(channel, chat_id))
    if row is None:
        return []
    try:
        value = json.loads(row.value)
    except ValueError:
        return []
    if isinstance(value, list):
        return [("", str(p)) for p in value]
    if isinstance(value, dict) and isinstance(value.get("p"), list):
        labels = value.get("l") if isinstance(value.get("l"), list) else []
        payloads = [str(p) for p in value["p"]]
        if len(labels) != len(payloads):
            labels = [""] * len(payloads)
        return [(str(label), payload) for label, payload in zip(labels, payloads, strict=True)]
    return []


async def intake(uow: UnitOfWork, event: InboundEvent) -> InboundEvent:
    """Engine intake hook: a bare number (or exact label) answering the remembered menu becomes
    that press; a number naming no line carries the menu's size on to the engine."""
    if event.kind != "message" or event.attachments or not event.text:
        return event
    number = choice_number(event.text)
    key = choice_rules.label_key(event.text) if number is None else ""
    if number is None and (not key or len(event.text) > 80):
        return event
    menu = await remembered_menu(uow, event.channel, event.chat_id)
    if not menu:
        return event
    if number is not None:
        if not 1 <= number <= len(menu):
            return replace(event, menu_size=len(menu))
        payload = menu[number - 1][1]
    else:
        named = [p for label, p in menu if label and choice_rules.label_key(label) == key]
        if len(named) != 1:
            return event
        payload = named[0]
    await forget(uow, event.channel, event.chat_id)
    return replace(event, kind="button", payload=payload, text=None,
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
                           self.app.clock.now(), numbered.labels)
            await uow.commit()
        return f"{text}\n{numbered.text}"

    async def resolve(self, event: InboundEvent) -> InboundEvent:
        async with self.app.uow() as uow:
            resolved = await intake(uow, event)
            await uow.commit()
        return resolved
