"""Polling and webhook runners: real aiogram Dispatcher, real HTTP, a recording handler.

Contract checked here (the engine relies on it): one handler call per delivered update, in
order; every callback query answered even if the handler fails; duplicates passed through
(de-duplication by update id is the engine's job); webhook requests without the right secret
refused with 403 before anything is parsed; shutdown lets the in-flight handler finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiogram import Bot
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import ClientSession, web

from bot.telegram.client import bot_from_settings
from bot.telegram.commands import COMMANDS, set_bot_commands
from bot.telegram.runner import PollingRunner, WebhookRunner
from hotline.config import Settings
from hotline.errors import ConfigError
from hotline.messages import InboundEvent
from tests.fakes.telegram_api import WEBHOOK_SECRET_HEADER, FakeTelegramServer

pytest_plugins = ["tests.fakes.conftest_telegram"]
pytestmark = pytest.mark.timeout(30)

SECRET = "s3cret-Webhook_token"


class Recorder:
    """The engine stand-in: records events, can fail or hold on chosen ones."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self.finished: list[InboundEvent] = []
        self.fail_kinds: set[str] = set()
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self._changed = asyncio.Event()

    async def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)
        self.entered.set()
        self._changed.set()
        if self.hold is not None:
            await self.hold.wait()
        if event.kind in self.fail_kinds:
            raise RuntimeError("engine exploded")
        self.finished.append(event)
        self._changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[InboundEvent]:
        async with asyncio.timeout(within):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


@asynccontextmanager
async def polling(bot: Bot, handler: Recorder) -> AsyncIterator[tuple[PollingRunner, asyncio.Task[None]]]:
    runner = PollingRunner(bot, handler, polling_timeout=1, drain_timeout=5)
    task = asyncio.create_task(runner.run(handle_signals=False))
    async with asyncio.timeout(5):
        await runner.started.wait()
    try:
        yield runner, task
    finally:
        runner.stop()
        async with asyncio.timeout(10):
            await task


async def test_polling_delivers_every_kind_and_answers_callbacks(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    recorder = Recorder()
    group = fake.group_chat()
    updates = [
        fake.text_update("Xin chào"),
        fake.command_update("status", "HL-2026-000007"),
        fake.command_update("report", mention=True, chat=group),
        fake.callback_update("t:7:accept"),
        fake.photo_update(caption="ảnh"),
        fake.document_update("ho-so.pdf"),
        fake.sticker_update(),
        fake.new_members_update(group),  # service message: nothing to answer
        fake.edited_message_update("sửa"),  # not subscribed: Telegram never sends it
    ]
    async with polling(telegram_bot, recorder):
        for update in updates:
            fake.queue_update(update)
        events = await recorder.wait_for(7)
        await fake.wait_for_calls("answerCallbackQuery", 1)

    assert [(e.kind, e.text, e.payload) for e in events] == [
        ("message", "Xin chào", None),
        ("message", "/status HL-2026-000007", None),
        ("message", "/report", None),
        ("button", None, "t:7:accept"),
        ("message", "ảnh", None),
        ("message", None, None),
        ("unsupported", None, None),
    ]
    assert [e.update_id for e in events] == [str(u["update_id"]) for u in updates[:7]]
    assert events[2].is_group_chat and events[5].attachments[0].file_name == "ho-so.pdf"
    assert [a["callback_query_id"] for a in fake.answered_callbacks] == [updates[3]["callback_query"]["id"]]
    # Polling cleared any old webhook (keeping pending updates) and asked only for what it handles.
    first_calls = [c.method for c in fake.calls[:2]]
    assert first_calls[0] == "deleteWebhook" and not fake.calls[0].params.get("drop_pending_updates")
    get_updates = fake.calls_to("getUpdates")[0]
    assert sorted(get_updates.params["allowed_updates"]) == ["callback_query", "message"]


async def test_callback_answered_and_polling_goes_on_when_the_handler_fails(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    recorder = Recorder()
    recorder.fail_kinds = {"button", "message"}
    async with polling(telegram_bot, recorder):
        press = telegram_server.queue_update(telegram_server.callback_update("t:1:x"))
        telegram_server.queue_update(telegram_server.text_update("sau lỗi"))
        await recorder.wait_for(2)
        await telegram_server.wait_for_calls("answerCallbackQuery", 1)
    assert [a["callback_query_id"] for a in telegram_server.answered_callbacks] == [
        press["callback_query"]["id"]
    ]
    assert recorder.finished == []


async def test_callback_that_maps_to_nothing_is_still_answered(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    recorder = Recorder()
    async with polling(telegram_bot, recorder):
        telegram_server.queue_update(telegram_server.callback_update(None))  # game-style, no data
        await telegram_server.wait_for_calls("answerCallbackQuery", 1)
        await recorder.wait_for(1)
    assert recorder.events[0].kind == "unsupported"


async def test_duplicate_update_id_reaches_the_handler_twice(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """Telegram can redeliver (unconfirmed offset after a restart, webhook retry). The runner
    does not de-duplicate: the engine stores (channel, update_id) with the state change."""
    recorder = Recorder()
    update = telegram_server.text_update("một lần thôi")
    async with polling(telegram_bot, recorder):
        telegram_server.queue_update(dict(update))
        telegram_server.queue_update(dict(update))
        events = await recorder.wait_for(2)
    assert events[0] == events[1] and events[0].update_id == str(update["update_id"])


async def test_sigterm_lets_the_in_flight_handler_finish(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    first = telegram_server.queue_update(telegram_server.text_update("đang xử lý"))
    second = telegram_server.queue_update(telegram_server.text_update("chưa tới lượt"))
    runner = PollingRunner(telegram_bot, recorder, polling_timeout=1, drain_timeout=5)
    run = asyncio.create_task(runner.run(handle_signals=True))
    async with asyncio.timeout(5):
        await recorder.entered.wait()

    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert not run.done()  # still waiting for the handler
    recorder.hold.set()
    async with asyncio.timeout(5):
        await run
    assert [e.text for e in recorder.finished] == ["đang xử lý"]  # finished, nothing after it

    # Neither update was confirmed (no getUpdates with a higher offset), so a restart gets both:
    # the first one is a duplicate the engine must recognise.
    assert [u["update_id"] for u in telegram_server.pending_updates] == [
        first["update_id"],
        second["update_id"],
    ]
    again = Recorder()
    async with polling(telegram_bot, again):
        await again.wait_for(2)
    assert [e.text for e in again.events] == ["đang xử lý", "chưa tới lượt"]


@asynccontextmanager
async def webhook(bot: Bot, handler: Recorder, **kwargs: Any) -> AsyncIterator[WebhookRunner]:
    options: dict[str, Any] = {
        "secret_token": SECRET,
        "path": "/tg/hook",
        "host": "127.0.0.1",
        "port": 0,
        "public_base_url": "https://hotline.example.org/",
        "drain_timeout": 5,
    }
    options.update(kwargs)
    runner = WebhookRunner(bot, handler, **options)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def test_webhook_registers_and_accepts_the_right_secret(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    recorder = Recorder()
    async with webhook(telegram_bot, recorder) as runner:
        assert telegram_server.webhook["url"] == "https://hotline.example.org/tg/hook"
        assert telegram_server.webhook["secret_token"] == SECRET
        assert sorted(telegram_server.webhook["allowed_updates"]) == ["callback_query", "message"]

        status, _ = await telegram_server.post_to_webhook(
            telegram_server.text_update("qua webhook"), url=runner.local_url
        )
        assert status == 200
        press = telegram_server.callback_update("t:9:ok")
        status, _ = await telegram_server.post_to_webhook(press, url=runner.local_url)
        assert status == 200
        # Handled inline: by the time Telegram gets its 200 the engine has the event.
        assert [(e.kind, e.text, e.payload) for e in recorder.events] == [
            ("message", "qua webhook", None),
            ("button", None, "t:9:ok"),
        ]
        assert [a["callback_query_id"] for a in telegram_server.answered_callbacks] == [
            press["callback_query"]["id"]
        ]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET.lower()])
async def test_webhook_refuses_missing_or_wrong_secret(
    telegram_server: FakeTelegramServer, telegram_bot: Bot, secret: str | None
) -> None:
    recorder = Recorder()
    async with webhook(telegram_bot, recorder) as runner:
        calls_before = len(telegram_server.calls)
        status, body = await telegram_server.post_to_webhook(
            telegram_server.callback_update("t:1:steal"), url=runner.local_url, secret_token=secret
        )
        await asyncio.sleep(0.1)
        assert (status, body) == (403, "Forbidden")
        assert recorder.events == []
        assert len(telegram_server.calls) == calls_before  # not even answerCallbackQuery


async def test_webhook_malformed_body_is_400_and_other_paths_404(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    recorder = Recorder()
    async with webhook(telegram_bot, recorder) as runner, ClientSession() as http:
        headers = {WEBHOOK_SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        for body in ("{not json", "[1, 2]", '{"update_id": "x"}'):
            async with http.post(runner.local_url, data=body, headers=headers) as response:
                assert response.status == 400, body
        async with http.post(runner.local_url.replace("/tg/hook", "/other"), data="{}", headers=headers) as r:
            assert r.status == 404
    assert recorder.events == []


async def test_aiogram_alone_answers_401_which_is_why_we_guard(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """Documents aiogram's own behaviour: SimpleRequestHandler(secret_token=...) refuses a
    wrong secret with 401 "Unauthorized". Our middleware answers 403 first; if aiogram ever
    stops checking, our test above still holds."""
    recorder = Recorder()
    runner = WebhookRunner(telegram_bot, recorder, secret_token=SECRET)
    app = web.Application()
    SimpleRequestHandler(runner.dispatcher, telegram_bot, secret_token=SECRET).register(app, path="/hook")
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = app_runner.addresses[0][1]
        status, body = await telegram_server.post_to_webhook(
            telegram_server.text_update("x"), url=f"http://127.0.0.1:{port}/hook", secret_token="wrong"
        )
        assert (status, body) == (401, "Unauthorized")
        assert recorder.events == []
    finally:
        await app_runner.cleanup()


async def test_webhook_stop_waits_for_the_in_flight_handler(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    async with webhook(telegram_bot, recorder, public_base_url=None) as runner:
        assert telegram_server.calls_to("setWebhook") == []  # no public URL, no registration
        post = asyncio.create_task(
            telegram_server.post_to_webhook(
                telegram_server.text_update("chậm"), url=runner.local_url, secret_token=SECRET
            )
        )
        async with asyncio.timeout(5):
            await recorder.entered.wait()
        stopping = asyncio.create_task(runner.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done() and not post.done()
        recorder.hold.set()
        async with asyncio.timeout(5):
            status, _ = await post
            await stopping
    assert status == 200
    assert [e.text for e in recorder.finished] == ["chậm"]


async def test_webhook_serialises_one_chat_but_not_others(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """Telegram posts webhook updates concurrently; two quick messages from one person must
    not run through the engine at the same time, while other chats are not held up."""
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    fake = telegram_server
    other_user = fake.user(2002, "Bình", None)
    async with webhook(telegram_bot, recorder) as runner:
        posts = [
            asyncio.create_task(fake.post_to_webhook(update, url=runner.local_url))
            for update in (
                fake.text_update("một"),
                fake.text_update("hai"),
                fake.text_update("người khác", user=other_user),
            )
        ]
        await recorder.wait_for(2)
        await asyncio.sleep(0.1)
        # "một" and "người khác" are in the engine; "hai" waits for "một" to finish.
        assert sorted(e.text or "" for e in recorder.events) == ["một", "người khác"]
        recorder.hold.set()
        async with asyncio.timeout(5):
            statuses = [status for status, _ in await asyncio.gather(*posts)]
    assert statuses == [200, 200, 200]
    assert [e.text for e in recorder.events][-1] == "hai"


def test_webhook_needs_a_valid_secret(telegram_bot: Bot) -> None:
    async def handler(event: InboundEvent) -> None: ...

    for bad in ("", "has space", "x" * 257, "ngõ"):
        with pytest.raises(ConfigError, match="HOTLINE_WEBHOOK_SECRET"):
            WebhookRunner(telegram_bot, handler, secret_token=bad)
    no_secret = Settings(_env_file=None, webhook_secret=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="required in webhook mode"):
        WebhookRunner.from_settings(telegram_bot, handler, no_secret)


def test_bot_from_settings_refuses_missing_or_malformed_token() -> None:
    with pytest.raises(ConfigError, match="HOTLINE_TELEGRAM_TOKEN is not set"):
        bot_from_settings(Settings(_env_file=None, telegram_token=None))  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="not a bot token") as error:
        bot_from_settings(Settings(_env_file=None, telegram_token="oops no colon"))  # type: ignore[call-arg]
    assert "oops" not in str(error.value)


async def test_command_menus_in_vietnamese_and_english(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    await set_bot_commands(telegram_bot)
    vi = telegram_server.commands[("default", "")]
    en = telegram_server.commands[("default", "en")]
    assert [c["command"] for c in vi] == [c["command"] for c in en] == list(COMMANDS)
    assert vi[1]["description"] == "Báo cáo một vướng mắc mới"
    assert en[1]["description"] == "Report a new blocker"
    assert all(c["description"] != f"telegram.commands.{c['command']}" for c in vi + en)
    [default_call, en_call] = telegram_server.calls_to("setMyCommands")
    assert "language_code" not in default_call.params and en_call.params["language_code"] == "en"
