"""TelegramSender through real aiogram HTTP against the fake: what gets sent, and how every
failure Telegram can answer with becomes the DeliveryResult the outbox dispatcher acts on."""

from __future__ import annotations

import asyncio
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiogram import Bot

from bot.delivery import ChannelSender, DeliveryResult
from bot.telegram.sender import CallbackDataTooLong, OutboundMessageError, TelegramSender
from hotline.messages import Button, OutboundMessage
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot

pytest_plugins = ["tests.fakes.conftest_telegram"]
pytestmark = pytest.mark.timeout(20)

CHAT = 1001


def msg(text: str = "Xin chào", **kwargs: object) -> OutboundMessage:
    return OutboundMessage(channel="telegram", chat_id=str(CHAT), text=text, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sender(telegram_bot: Bot) -> TelegramSender:
    return TelegramSender(telegram_bot, timeout=2.0)


def test_sender_satisfies_the_channel_protocol(sender: TelegramSender) -> None:
    assert isinstance(sender, ChannelSender)


async def test_send_html_with_keyboard(telegram_server: FakeTelegramServer, sender: TelegramSender) -> None:
    buttons = (
        (Button("Nhận xử lý", "t:17:accept"), Button("Từ chối", "t:17:reject")),
        (Button("Chi tiết", "t:17:view"),),
    )
    result = await sender.send(msg("<b>HL-2026-000017</b>\nGiấy phép &amp; đất đai", buttons=buttons))
    [sent] = telegram_server.sent_messages(CHAT)
    assert result == DeliveryResult("sent", message_id=str(sent.message_id))
    assert sent.parse_mode == "HTML"
    assert sent.text == "HL-2026-000017\nGiấy phép & đất đai"
    assert sent.buttons == [
        [("Nhận xử lý", "t:17:accept"), ("Từ chối", "t:17:reject")],
        [("Chi tiết", "t:17:view")],
    ]


async def test_callback_data_over_64_bytes_is_a_clear_error(
    telegram_server: FakeTelegramServer, sender: TelegramSender
) -> None:
    payload = "t:" + "đ" * 32  # 66 bytes in UTF-8 though only 34 characters
    with pytest.raises(CallbackDataTooLong, match=r"66 bytes; Telegram accepts 1-64"):
        await sender.send(msg(buttons=((Button("X", payload),),)))
    with pytest.raises(OutboundMessageError, match="channel 'zalo'"):
        await sender.send(OutboundMessage(channel="zalo", chat_id="1", text="x"))
    assert telegram_server.calls == []  # refused before any HTTP


@pytest.mark.parametrize(
    ("status", "kwargs", "expected"),
    [
        (429, {"retry_after": 3}, DeliveryResult("retry_after", retry_after=3.0)),
        (500, {}, DeliveryResult("transient")),
        (502, {}, DeliveryResult("transient")),
        (403, {}, DeliveryResult("blocked")),
        (400, {}, DeliveryResult("bad_markup")),
        (400, {"description": "Bad Request: chat not found"}, DeliveryResult("permanent")),
        (401, {}, DeliveryResult("transient")),  # bad token: keep the message, fix config
    ],
)
async def test_errors_map_to_delivery_results(
    telegram_server: FakeTelegramServer,
    sender: TelegramSender,
    status: int,
    kwargs: dict[str, object],
    expected: DeliveryResult,
) -> None:
    telegram_server.fail_next("sendMessage", status, **kwargs)  # type: ignore[arg-type]
    result = await sender.send(msg())
    assert (result.status, result.retry_after) == (expected.status, expected.retry_after)
    assert result.error and telegram_server.token not in result.error
    assert telegram_server.sent_messages(CHAT) == []
    # The failure was one-off: the retry the dispatcher will make goes through.
    assert (await sender.send(msg())).status == "sent"


async def test_real_markup_error_from_the_fake_parser_and_plain_fallback(
    telegram_server: FakeTelegramServer, sender: TelegramSender
) -> None:
    broken = msg("<b>Danh sách\n- HL-1 &amp; HL-2\n- <i>HL-3</b>", buttons=((Button("OK", "ok"),),))
    result = await sender.send(broken)
    assert result.status == "bad_markup" and "can't parse entities" in (result.error or "")

    plain = await sender.send_plain(broken)
    assert plain.status == "sent"
    [sent] = telegram_server.sent_messages(CHAT)
    assert sent.parse_mode is None
    assert sent.text == "Danh sách\n- HL-1 & HL-2\n- HL-3"  # line breaks kept, entity decoded
    assert sent.buttons == [[("OK", "ok")]]


async def test_blocked_user_on_every_call(
    telegram_server: FakeTelegramServer, sender: TelegramSender
) -> None:
    telegram_server.fail_chat(CHAT, 403)
    assert (await sender.send(msg())).status == "blocked"
    assert (await sender.send(msg(retire_buttons_of="3"))).status == "blocked"


async def test_hang_times_out_as_transient(telegram_server: FakeTelegramServer, telegram_bot: Bot) -> None:
    sender = TelegramSender(telegram_bot, timeout=0.3)
    telegram_server.hang("sendMessage", 3.0)
    started = time.monotonic()
    result = await sender.send(msg())
    assert result.status == "transient"
    assert time.monotonic() - started < 1.5


async def test_session_timeout_is_transient_too(telegram_server: FakeTelegramServer) -> None:
    bot = make_test_bot(telegram_server, timeout=0.3)  # aiogram's own request timeout fires
    try:
        telegram_server.hang("sendMessage", 3.0)
        result = await TelegramSender(bot, timeout=10).send(msg())
        assert result.status == "transient" and "timeout" in (result.error or "").lower()
    finally:
        await bot.session.close()


async def test_server_down_is_transient(telegram_server: FakeTelegramServer) -> None:
    bot = make_test_bot(telegram_server)
    await telegram_server.close()
    try:
        result = await TelegramSender(bot, timeout=2).send(msg())
        assert result.status == "transient"
    finally:
        await bot.session.close()


def _balanced(html: str) -> bool:
    class Checker(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.ok = True

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.stack.append(tag)

        def handle_endtag(self, tag: str) -> None:
            self.ok = self.ok and bool(self.stack) and self.stack.pop() == tag

    checker = Checker()
    checker.feed(html)
    checker.close()
    return checker.ok and not checker.stack


async def test_10000_character_message_is_split_on_lines(
    telegram_server: FakeTelegramServer, sender: TelegramSender
) -> None:
    lines = [
        f'{i:03d}. <a href="https://hotline.example/t/{i}">HL-2026-{i:06d}</a> Giấy phép xây dựng'
        for i in range(122)
    ]
    text = "<b>Hàng đợi của đơn vị</b>\n<blockquote>" + "\n".join(lines) + "</blockquote>\nHết."
    assert 10_000 <= len(text) <= 11_000
    result = await sender.send(msg(text, buttons=((Button("Làm mới", "q:refresh"),),)))
    assert result.status == "sent"

    sent = telegram_server.sent_messages(CHAT)
    assert len(sent) == 3  # 10 000+ characters of markup need three 4096-character pieces
    assert [s.message_id for s in sent][-1] == int(result.message_id or 0)
    for piece in sent:
        html = piece.html or ""
        assert len(html) <= 4096
        assert _balanced(html), html[-200:]
        # Every visible line is whole: it starts with a number and ends with the text.
        body = [line for line in (piece.text or "").split("\n") if line[:1].isdigit()]
        assert all(line.endswith("Giấy phép xây dựng") for line in body)
    assert [s.buttons for s in sent] == [[], [], [[("Làm mới", "q:refresh")]]]
    joined = "\n".join(s.text or "" for s in sent)
    assert joined.count("Giấy phép xây dựng") == 122


async def test_photo_with_caption_and_buttons(
    telegram_server: FakeTelegramServer, sender: TelegramSender, tmp_path: Path
) -> None:
    photo = tmp_path / "hien-truong.jpg"
    photo.write_bytes(b"\xff\xd8" + b"p" * 3000)
    result = await sender.send(
        msg("<b>Ảnh hiện trường</b>", photo=str(photo), buttons=((Button("OK", "ok"),),))
    )
    [sent] = telegram_server.sent_messages(CHAT)
    assert result.message_id == str(sent.message_id)
    assert sent.method == "sendPhoto" and sent.text == "Ảnh hiện trường"
    assert sent.buttons == [[("OK", "ok")]]
    assert [(f.filename, f.size) for f in sent.files.values()] == [("hien-truong.jpg", 3002)]


async def test_long_caption_goes_as_separate_text(
    telegram_server: FakeTelegramServer, sender: TelegramSender, tmp_path: Path
) -> None:
    report = tmp_path / "bao-cao-thang.pdf"
    report.write_bytes(b"%PDF" + b"d" * 10_000)
    text = "Báo cáo tháng\n" + "dòng nội dung dài\n" * 80  # > 1024 characters
    result = await sender.send(msg(text, document=str(report), buttons=((Button("OK", "ok"),),)))
    [doc, body] = telegram_server.sent_messages(CHAT)
    assert doc.method == "sendDocument" and doc.text is None and doc.buttons == []
    assert [(f.filename, f.size) for f in doc.files.values()] == [("bao-cao-thang.pdf", 10_004)]
    assert body.method == "sendMessage" and body.buttons == [[("OK", "ok")]]
    assert result.message_id == str(body.message_id)


async def test_missing_attachment_and_empty_message_are_permanent(
    telegram_server: FakeTelegramServer, sender: TelegramSender, tmp_path: Path
) -> None:
    missing = await sender.send(msg(photo=str(tmp_path / "gone.jpg")))
    assert missing.status == "permanent" and "not found" in (missing.error or "")
    assert (await sender.send(msg("  "))).status == "permanent"
    assert telegram_server.calls == []


async def test_retire_buttons_then_send(telegram_server: FakeTelegramServer, sender: TelegramSender) -> None:
    first = await sender.send(msg("Chọn", buttons=((Button("A", "a"),),)))
    second = await sender.send(msg("Đã chọn A", retire_buttons_of=first.message_id))
    assert second.status == "sent"
    [old, new] = telegram_server.sent_messages(CHAT)
    assert old.reply_markup is None and new.text == "Đã chọn A"
    # Retiring again (a retry) or retiring something gone is harmless.
    again = await sender.send(msg("Lặp lại", retire_buttons_of=first.message_id))
    gone = await sender.send(msg("Mất", retire_buttons_of="999"))
    assert again.status == gone.status == "sent"
    assert len(telegram_server.calls_to("editMessageReplyMarkup")) == 3
    # A retire-only message is allowed (text empty).
    assert (await sender.retire_buttons(str(CHAT), "999")).status == "sent"


async def test_flood_control_on_retire_sends_nothing(
    telegram_server: FakeTelegramServer, sender: TelegramSender
) -> None:
    telegram_server.fail_next("editMessageReplyMarkup", 429, retry_after=5)
    result = await sender.send(msg("x", retire_buttons_of="1"))
    assert result.status == "retry_after" and result.retry_after == 5.0
    assert telegram_server.calls_to("sendMessage") == []


async def test_concurrent_sends_keep_per_chat_order(
    telegram_server: FakeTelegramServer, sender: TelegramSender
) -> None:
    results = await asyncio.gather(*(sender.send(msg(f"tin {i}")) for i in range(5)))
    assert all(r.status == "sent" for r in results)
    ids = sorted(int(r.message_id or 0) for r in results)
    assert ids == list(range(ids[0], ids[0] + 5))
