"""The fake Bot API answers the real aiogram client the way Telegram does.

If these fail, every other Telegram test is testing against a wrong picture of Telegram.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import ClientSession

from tests.fakes import fake_token
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot

# Fixtures telegram_server / telegram_bot (see tests/fakes/conftest_telegram.py).
pytest_plugins = ["tests.fakes.conftest_telegram"]
pytestmark = pytest.mark.timeout(20)


async def test_get_me_and_send_message_with_keyboard(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    me = await telegram_bot.get_me()
    assert me.is_bot and me.username == "hotline_test_bot" and me.id == telegram_bot.id

    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Nhận xử lý", callback_data="t:1:accept")]]
    )
    first = await telegram_bot.send_message(
        1001, "<b>Phiếu</b> HL-2026-000001 &amp; co", parse_mode="HTML", reply_markup=markup
    )
    second = await telegram_bot.send_message(1001, "tiếp")
    assert first.text == "Phiếu HL-2026-000001 & co"
    assert first.chat.id == 1001 and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.id == telegram_bot.id
    assert second.message_id == first.message_id + 1

    [sent, _] = telegram_server.sent_messages(1001)
    assert sent.html == "<b>Phiếu</b> HL-2026-000001 &amp; co"
    assert sent.parse_mode == "HTML"
    assert sent.buttons == [[("Nhận xử lý", "t:1:accept")]]
    call = telegram_server.calls_to("sendMessage")[0]
    assert call.params["chat_id"] == 1001 and call.received_at > 0


async def test_get_updates_offset_limit_and_negative_offset(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    queued = [telegram_server.queue_update(telegram_server.text_update(f"m{i}")) for i in range(5)]
    ids = [u["update_id"] for u in queued]
    assert ids == sorted(ids)

    batch = await telegram_bot.get_updates(limit=2)
    assert [u.update_id for u in batch] == ids[:2]
    # Without a higher offset nothing is confirmed: the same updates come again.
    again = await telegram_bot.get_updates(limit=2)
    assert [u.update_id for u in again] == ids[:2]
    # offset = last + 1 confirms everything up to last.
    rest = await telegram_bot.get_updates(offset=ids[1] + 1)
    assert [u.update_id for u in rest] == ids[2:]
    assert [u["update_id"] for u in telegram_server.pending_updates] == ids[2:]
    # A negative offset keeps only the last -offset updates and forgets the others.
    last = await telegram_bot.get_updates(offset=-1)
    assert [u.update_id for u in last] == ids[-1:]
    assert [u["update_id"] for u in telegram_server.pending_updates] == ids[-1:]
    assert await telegram_bot.get_updates(offset=ids[-1] + 1) == []


async def test_long_poll_waits_for_an_update_or_the_timeout(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    started = time.monotonic()
    assert await telegram_bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 3

    async def later() -> None:
        await asyncio.sleep(0.2)
        telegram_server.queue_update(telegram_server.text_update("muộn"))

    task = asyncio.create_task(later())
    started = time.monotonic()
    updates = await telegram_bot.get_updates(timeout=5)
    await task
    assert [u.message.text for u in updates if u.message] == ["muộn"]
    assert time.monotonic() - started < 2


async def test_newer_get_updates_terminates_the_waiting_one(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    waiting = asyncio.create_task(telegram_bot.get_updates(timeout=5))
    await telegram_server.wait_for_calls("getUpdates", 1)
    await asyncio.sleep(0.05)
    assert await telegram_bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await waiting


async def test_webhook_set_info_delete_and_conflict_with_polling(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    await telegram_bot.set_webhook(
        "https://hotline.example.org/telegram/webhook",
        secret_token="s3cret_TOKEN-1",
        allowed_updates=["message", "callback_query"],
    )
    info = await telegram_bot.get_webhook_info()
    assert info.url == "https://hotline.example.org/telegram/webhook"
    assert info.allowed_updates == ["message", "callback_query"]
    assert telegram_server.webhook["secret_token"] == "s3cret_TOKEN-1"
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await telegram_bot.get_updates()
    with pytest.raises(TelegramBadRequest, match="unallowed characters"):
        await telegram_bot.set_webhook("https://x.example", secret_token="bad secret!")
    await telegram_bot.delete_webhook()
    assert (await telegram_bot.get_webhook_info()).url == ""
    assert await telegram_bot.get_updates() == []


async def test_uploads_are_recorded_with_name_and_size(
    telegram_server: FakeTelegramServer, telegram_bot: Bot, tmp_path: Path
) -> None:
    pdf = tmp_path / "bien-ban.pdf"
    pdf.write_bytes(b"%PDF-1.4 " + b"x" * 2000)
    jpg = tmp_path / "anh.jpg"
    jpg.write_bytes(b"\xff\xd8" + b"y" * 5000)

    doc = await telegram_bot.send_document(42, FSInputFile(pdf), caption="<i>Biên bản</i>", parse_mode="HTML")
    photo = await telegram_bot.send_photo(42, FSInputFile(jpg))
    assert doc.document is not None and doc.document.file_name == "bien-ban.pdf"
    assert doc.document.mime_type == "application/pdf" and doc.caption == "Biên bản"
    assert photo.photo and photo.photo[-1].file_size == 5002

    [sent_doc, sent_photo] = telegram_server.sent_messages(42)
    [upload] = sent_doc.files.values()
    assert (upload.filename, upload.size) == ("bien-ban.pdf", 2009)
    assert [(f.filename, f.size) for f in sent_photo.files.values()] == [("anh.jpg", 5002)]


async def test_errors_use_telegram_envelopes(telegram_server: FakeTelegramServer, telegram_bot: Bot) -> None:
    telegram_server.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as flood:
        await telegram_bot.send_message(7, "x")
    assert flood.value.retry_after == 3

    telegram_server.fail_chat(7, 403)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await telegram_bot.send_message(7, "x")
    with pytest.raises(TelegramForbiddenError):
        await telegram_bot.send_chat_action(7, "typing")
    telegram_server.unfail_chat(7)
    assert await telegram_bot.send_chat_action(7, "typing") is True

    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await telegram_bot.send_message(7, "<b>open", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Unsupported start tag"):
        await telegram_bot.send_message(7, "<div>x</div>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await telegram_bot.send_message(7, "a" * 4097)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await telegram_bot.send_message(
            7,
            "x",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="b", callback_data="x" * 65)]]
            ),
        )

    # The raw envelope, for whoever reads logs or writes another client.
    async with ClientSession() as http:
        url = f"{telegram_server.base_url}/bot{telegram_server.token}/sendMessage"
        telegram_server.fail_next("sendMessage", 429, retry_after=3)
        async with http.post(url, json={"chat_id": 7, "text": "x"}) as response:
            assert response.status == 429
            assert await response.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            }
        async with http.post(f"{telegram_server.base_url}/bot{telegram_server.token}/noSuchMethod") as r:
            assert r.status == 404 and (await r.json())["description"] == "Not Found"


async def test_wrong_token_is_unauthorized(telegram_server: FakeTelegramServer) -> None:
    other = FakeTelegramServer(token=fake_token())
    other.port = telegram_server.port  # same server, different token
    bot = make_test_bot(other)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()
    finally:
        await bot.session.close()


async def test_edit_reply_markup_and_callback_answers(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="OK", callback_data="ok")]])
    message = await telegram_bot.send_message(5, "chọn", reply_markup=markup)
    await telegram_bot.edit_message_reply_markup(chat_id=5, message_id=message.message_id)
    assert telegram_server.sent_messages(5)[0].reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await telegram_bot.edit_message_reply_markup(chat_id=5, message_id=message.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await telegram_bot.edit_message_reply_markup(chat_id=5, message_id=999)
    edited = await telegram_bot.edit_message_text("đã chọn", chat_id=5, message_id=message.message_id)
    assert not isinstance(edited, bool) and edited.text == "đã chọn"

    update = telegram_server.callback_update("ok")
    query_id = update["callback_query"]["id"]
    assert await telegram_bot.answer_callback_query(query_id) is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await telegram_bot.answer_callback_query(query_id)
    assert [a["callback_query_id"] for a in telegram_server.answered_callbacks] == [query_id]


async def test_hang_delays_the_answer(telegram_server: FakeTelegramServer, telegram_bot: Bot) -> None:
    telegram_server.hang("getMe", 0.3)
    started = time.monotonic()
    await telegram_bot.get_me()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await telegram_bot.get_me()
    assert time.monotonic() - started < 0.3


async def test_wait_for_sent_wakes_on_that_chats_messages_only(
    telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    waiting = asyncio.create_task(telegram_server.wait_for_sent(1001, 2, within=5.0))
    await telegram_bot.send_message(1001, "một")
    await telegram_bot.send_message(2002, "khác")
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await telegram_bot.send_message(1001, "hai")
    sent = await waiting
    assert [m.text for m in sent] == ["một", "hai"]
    # Already there: no wait; not there in time: TimeoutError.
    assert len(await telegram_server.wait_for_sent(2002, within=0.1)) == 1
    with pytest.raises(TimeoutError):
        await telegram_server.wait_for_sent(2002, 2, within=0.1)
