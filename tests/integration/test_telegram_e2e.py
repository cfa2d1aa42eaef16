"""Whole conversations through Telegram: fake Bot API -> aiogram -> engine -> outbox ->
dispatcher -> fake Bot API, in long-polling and in webhook mode, with ``BotRuntime`` (what
``hotline run`` runs) wired exactly as in production.

A reporter registers with /start (language, organisation, kind, tax code, name), files a
report with one message and one tap; the assigned member acknowledges with the button of
the notification; the reporter hears about it. Along the way: every callback query is
answered, every pressed keyboard is retired, a redelivered update changes nothing, and a
webhook request without the secret is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.ratelimit import ChatLimits
from bot.runtime import BotRuntime
from hotline.deps import App
from hotline.domain.enums import Role, TicketState
from hotline.messages import InboundEvent, OutboundMessage
from hotline.web.app import setup_web
from storage.models import InboundUpdate, OutboxMessage, Ticket
from tests.factories import make_staff
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage, make_test_bot
from tests.integration.test_dispatcher import RunningClock, wait_until

pytestmark = pytest.mark.timeout(60)

SECRET = "e2e-Webhook_secret-42"
DATA_TEXT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp"
REPORTER_ID = 5001


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def bot_running(app: App, fake: FakeTelegramServer, *, webhook: bool,
                      **options: Any) -> AsyncIterator[BotRuntime]:
    options.setdefault("web", False)
    runtime = BotRuntime(
        app, make_test_bot(fake), webhook=webhook, worker_id="e2e", polling_timeout=1,
        drain_timeout=5, dispatcher_options={"limits": ChatLimits(per_chat_interval=0.02),
                                             "poll_interval": 0.2},
        **options,
    )
    task = asyncio.create_task(runtime.run(handle_signals=False))
    try:
        async with asyncio.timeout(10):
            await runtime.started.wait()
        if runtime.polling is not None:
            async with asyncio.timeout(5):
                await runtime.polling.started.wait()
        yield runtime
    finally:
        runtime.stop()
        async with asyncio.timeout(20):
            await task


class Chat:
    """One person talking to the bot through the fake Telegram, in polling or webhook mode."""

    def __init__(self, fake: FakeTelegramServer, user_id: int, name: str, *, webhook: bool) -> None:
        self.fake = fake
        self.user = fake.user(user_id, name, None, username=None, language_code="vi")
        self.chat_id = user_id
        self.webhook = webhook
        self.taps: list[SentMessage] = []

    @property
    def messages(self) -> list[SentMessage]:
        return self.fake.sent_messages(self.chat_id)

    async def deliver(self, update: dict[str, Any]) -> None:
        if self.webhook:
            status, _ = await self.fake.post_to_webhook(update)
            assert status == 200
        else:
            self.fake.queue_update(update)

    async def say(self, text: str) -> dict[str, Any]:
        update = (self.fake.command_update(text[1:], user=self.user) if text.startswith("/")
                  else self.fake.text_update(text, user=self.user))
        await self.deliver(update)
        return update

    def find(self, verb: str) -> tuple[SentMessage, str] | None:
        """The newest message with a button whose payload starts with ``verb:``."""
        for message in reversed(self.messages):
            for row in message.buttons:
                for _, payload in row:
                    if payload.split(":", 1)[0] == verb:
                        return message, payload
        return None

    async def button(self, verb: str) -> tuple[SentMessage, str]:
        """Wait for the bot to offer a ``verb`` button."""
        await wait_until(lambda: self.find(verb) is not None, within=10)
        found = self.find(verb)
        assert found is not None
        return found

    async def tap(self, verb: str) -> None:
        message, payload = await self.button(verb)
        self.taps.append(message)
        await self.deliver(self.fake.callback_update(payload, message=message, user=self.user))

    async def text_with(self, needle: str) -> SentMessage:
        """Wait for a message containing ``needle``."""
        await wait_until(lambda: any(needle in (m.text or "") for m in self.messages), within=10)
        return next(m for m in self.messages if needle in (m.text or ""))


async def count(app: App, model: Any, *where: Any) -> int:
    async with app.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def converse(app: App, fake: FakeTelegramServer, runtime: BotRuntime, *, webhook: bool) -> None:
    """The scenario; ``webhook`` only changes how updates reach the bot."""
    handled: list[str] = []
    engine_handle = runtime.engine.handle

    async def recording(event: InboundEvent) -> list[OutboundMessage]:
        handled.append(event.update_id)
        return await engine_handle(event)

    runtime.engine.handle = recording  # type: ignore[method-assign]
    member, contact = await make_staff(app, Role.MEMBER, "mps", channel="telegram", name="Trần Bình")
    staff = Chat(fake, int(contact.chat_id), "Bình", webhook=webhook)
    rep = Chat(fake, REPORTER_ID, "An", webhook=webhook)

    await rep.say("/start")
    await rep.tap("lang")
    await rep.button("cancel")  # "name of your organisation?" (with a cancel button)
    await rep.say("Công ty CP Số Việt")
    await rep.tap("kind")
    await rep.tap("skip")  # no tax code
    await wait_until(lambda: len(rep.taps) == 3 and len(rep.messages) >= 5)
    await rep.tap("skip")  # the name Telegram gave us
    await rep.text_with("Công ty CP Số Việt.")  # registered
    await asyncio.sleep(0.2)
    before = len(rep.messages)

    # The report: one message, one tap. A redelivered copy of the message changes nothing.
    report = await rep.say(DATA_TEXT)
    await rep.deliver(report)
    await rep.tap("rfile")
    filed = await rep.text_with("HL-2026-000001")
    assert rep.messages.index(filed) == before + 1  # the duplicate got no second answer
    await asyncio.sleep(0.3)
    assert len(rep.messages) == before + 2
    assert handled.count(str(report["update_id"])) == 2  # ... although it reached the engine

    notice = await staff.text_with("HL-2026-000001")
    assert (await staff.button("ack"))[1] == "ack:HL-2026-000001" and notice.buttons
    await staff.tap("ack")
    await wait_until(lambda: len(staff.messages) >= 2)
    await wait_until(lambda: len(rep.messages) >= before + 3)
    assert "HL-2026-000001" in (rep.messages[-1].text or "")

    await wait_until(lambda: len(fake.answered_callbacks) == len(rep.taps) + len(staff.taps), within=5)
    # Every pressed keyboard was retired (editMessageReplyMarkup), so no button works twice.
    await wait_until(lambda: all(m.reply_markup is None for m in rep.taps + staff.taps), within=5)
    for message in rep.taps + staff.taps:
        assert message.reply_markup is None

    async with asyncio.timeout(10):  # the last notification may still be on its way
        while await count(app, OutboxMessage, OutboxMessage.status == "pending"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    async with app.uow() as uow:
        ticket = (await uow.session.execute(select(Ticket))).scalar_one()
        assert ticket.state == TicketState.IN_PROGRESS and ticket.assignee_id == member.id
        rows = (await uow.session.execute(select(OutboxMessage))).scalars().all()
        assert {r.status for r in rows} == {"sent"} and all(r.channel == "telegram" for r in rows)
    # HTML went out as HTML and Telegram accepted it (the fake parses it strictly).
    assert all(m.parse_mode == "HTML" for m in fake.sent_messages(REPORTER_ID))


async def test_polling_conversation_end_to_end(app: App, clock_running: RunningClock,
                                               telegram_server: FakeTelegramServer) -> None:
    fake = telegram_server
    async with bot_running(app, fake, webhook=False) as runtime:
        await converse(app, fake, runtime, webhook=False)
        assert runtime.dispatcher is not None and runtime.dispatcher.counts["sent"] >= 11
    assert ("default", "") in fake.commands and ("default", "en") in fake.commands
    assert fake.calls[0].method == "getMe"


async def test_webhook_conversation_end_to_end(app: App, clock_running: RunningClock,
                                               telegram_server: FakeTelegramServer) -> None:
    fake = telegram_server
    port = free_port()
    app.settings = app.settings.model_copy(update={
        "webhook_secret": SecretStr(SECRET), "public_base_url": f"http://127.0.0.1:{port}",
    })
    async with bot_running(app, fake, webhook=True, port=port) as runtime:
        # setWebhook registered our URL and secret at start-up.
        assert fake.webhook["url"] == f"http://127.0.0.1:{port}/telegram/webhook"
        assert fake.webhook["secret_token"] == SECRET
        await converse(app, fake, runtime, webhook=True)
    assert fake.calls_to("getUpdates") == []


async def test_webhook_without_the_secret_is_refused_and_changes_nothing(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    fake = telegram_server
    app.settings = app.settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})
    async with bot_running(app, fake, webhook=True, port=0, scheduler=False) as runtime:
        url = runtime.telegram_webhook_url
        assert url is not None
        before = (await count(app, InboundUpdate), await count(app, OutboxMessage))
        for secret in (None, "wrong-secret", SECRET + "x"):
            status, _ = await fake.post_to_webhook(fake.text_update("/start"), url=url, secret_token=secret)
            assert status == 403
        assert (await count(app, InboundUpdate), await count(app, OutboxMessage)) == before
        # With the secret the same kind of update is taken.
        status, _ = await fake.post_to_webhook(fake.command_update("start"), url=url, secret_token=SECRET)
        assert status == 200
        await wait_until(lambda: len(fake.sent_messages(1001)) == 1, within=5)
    assert await count(app, InboundUpdate) == before[0] + 1


async def test_the_web_is_served_beside_the_webhook(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    """One port: the dashboard/board of ``hotline.web`` and the guarded Telegram webhook."""
    import aiohttp

    fake = telegram_server
    app.settings = app.settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})
    async with bot_running(app, fake, webhook=True, port=0, scheduler=False, web=setup_web) as runtime:
        base = runtime.local_url
        assert base is not None and runtime.telegram_webhook_url is not None
        async with aiohttp.ClientSession() as client:
            async with client.get(base + "/healthz") as response:
                assert response.status == 200
            async with client.get(base + "/board") as response:
                assert response.status == 200 and "Content-Security-Policy" in response.headers
        status, _ = await fake.post_to_webhook(fake.command_update("start"),
                                               url=runtime.telegram_webhook_url, secret_token=None)
        assert status == 403
        status, _ = await fake.post_to_webhook(fake.command_update("start"),
                                               url=runtime.telegram_webhook_url, secret_token=SECRET)
        assert status == 200
        await wait_until(lambda: len(fake.sent_messages(1001)) == 1, within=5)
