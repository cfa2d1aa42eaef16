"""Buttons on channels that have none: numbered choices the user answers with a digit.

The Zalo Bot Platform cannot show buttons (and a Zalo OA message shows only a few), so the
engine's keyboard becomes ``[1] Label`` lines under the text, and the payloads are remembered
per (channel, chat) in the database by ``bot.numbered`` -- the code the console channel uses.
The way back is the engine's: ``Engine(app, intake=[bot.numbered.intake])`` turns a reply that
is just a number in range into that button press (and the engine re-verifies it), so any worker
may receive the answer and a restart between question and answer changes nothing.

The menu is remembered *before* the message goes out: if the send then fails, the retry
remembers the same menu again; the other order could show choices that answer nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from bot import numbered
from hotline.deps import App
from hotline.messages import OutboundMessage


class ChoiceMenus(Protocol):
    async def render(self, message: OutboundMessage, text: str) -> str:
        """``text`` (already plain) with the message's buttons appended as numbered choices."""
        ...


class NumberedMenus:
    """``ChoiceMenus`` over ``bot.numbered``, remembering each menu in its own transaction."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def render(self, message: OutboundMessage, text: str) -> str:
        # The body is already plain (links kept by ``common.to_plain``), so only the choice
        # lines are taken from ``numbered.render``.
        choices = numbered.render(replace(message, text=""))
        async with self.app.uow() as uow:
            await numbered.remember(uow, message.channel, message.chat_id, choices.payloads,
                                    self.app.clock.now(), choices.labels)
            await uow.commit()
        return (text + choices.text) if text else choices.text.lstrip("\n")
