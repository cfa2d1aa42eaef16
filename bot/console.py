"""The console channel: the real engine and database, driven from a terminal or a pipe.

It is both the way to try the bot without a token and a channel like any other: inbound lines
become ``InboundEvent``s, and what the console prints is exactly what sits in the outbox for
its chat (the engine's replies plus notifications other people's actions queued for this
user), which it then marks sent -- the console is this chat's outbox dispatcher.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot import numbered
from handlers.engine import Engine
from hotline.deps import App
from hotline.i18n import t
from hotline.messages import InboundEvent, OutboundMessage, clean_text, sanitised

CHANNEL = "console"
QUIT_WORDS = frozenset({"/quit", "/exit"})

ReadLine = Callable[[], Awaitable[str | None]]


class ConsoleChat:
    """One user's conversation in this terminal; ``user`` is their id on the console channel."""

    def __init__(self, app: App, user: str, out: TextIO, *, lang: str | None = None,
                 engine: Engine | None = None) -> None:
        self.app = app
        self.user = clean_text(user)  # a name from argv may carry undecodable bytes
        self.lang = lang
        self.out = out
        self.engine = engine or Engine(app, intake=[numbered.intake])

    def banner(self) -> None:
        self._print(str(t("console.banner", self.lang or self.app.settings.default_language,
                          user=self.user)))

    async def send(self, line: str) -> list[OutboundMessage]:
        """One typed line through the engine, then everything now due for this chat."""
        event = sanitised(InboundEvent(
            channel=CHANNEL, update_id=uuid.uuid4().hex, user_id=self.user, chat_id=self.user,
            text=line, language=self.lang, display_name=self.user,
        ))
        replies = await self.engine.handle(event)
        await self.deliver()
        return replies

    async def deliver(self) -> int:
        """Print due outbox messages of this chat in order, number their buttons continuously,
        remember the menu, and mark them sent -- all in one transaction."""
        async with self.app.uow() as uow:
            now = self.app.clock.now()
            rows = await uow.outbox.pending(channel=CHANNEL, chat_id=self.user, due_by=now)
            if not rows:
                return 0
            payloads: list[str] = []
            labels: list[str] = []
            for row in rows:
                message = OutboundMessage.from_json(row.payload)
                rendered = numbered.render(message, start=len(payloads) + 1)
                payloads += rendered.payloads
                labels += rendered.labels
                self._print(rendered.text)
            await numbered.remember(uow, CHANNEL, self.user, payloads, now, labels)
            await uow.outbox.mark_sent([row.id for row in rows], now)
            await uow.commit()
            return len(rows)

    async def run(self, read_line: ReadLine) -> None:
        """Until end of input or /quit. A blank line only checks for new messages."""
        self.banner()
        await self.deliver()
        while True:
            line = await read_line()
            if line is None:
                return
            line = line.rstrip("\r\n")
            if line.strip().lower() in QUIT_WORDS:
                return
            if not line.strip():
                await self.deliver()
                continue
            await self.send(line)

    def _print(self, text: str) -> None:
        self.out.write(text + "\n\n")
        self.out.flush()
