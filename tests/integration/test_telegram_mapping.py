"""Update -> InboundEvent for realistic update payloads (built by the fake, parsed by aiogram).

The runner tests show these arrive over HTTP; here every odd shape is checked directly,
including the ones the runner never subscribes to, because a malformed update must map to
``None`` or ``unsupported`` and never raise.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Update

from bot.telegram.mapping import event_from_update
from hotline.messages import Attachment, InboundEvent
from tests.fakes.telegram_api import FakeTelegramServer

BOT = "hotline_test_bot"


@pytest.fixture
def fake() -> FakeTelegramServer:
    return FakeTelegramServer()  # builders only, not started


def mapped(update: dict[str, Any]) -> InboundEvent | None:
    return event_from_update(Update.model_validate(update), bot_username=BOT)


def test_text_message_in_private_chat(fake: FakeTelegramServer) -> None:
    update = fake.text_update("Xin chào")
    event = mapped(update)
    assert event == InboundEvent(
        channel="telegram",
        update_id=str(update["update_id"]),
        user_id="1001",
        chat_id="1001",
        kind="message",
        text="Xin chào",
        language="vi",
        display_name="An Nguyễn",
    )


def test_commands_with_and_without_mention(fake: FakeTelegramServer) -> None:
    group = fake.group_chat()
    assert (
        e := mapped(fake.command_update("status", "HL-2026-000001"))
    ) and e.text == "/status HL-2026-000001"
    ours = mapped(fake.command_update("report", mention=True, chat=group))
    assert ours is not None and ours.text == "/report" and ours.is_group_chat
    other = fake.text_update("/report@some_other_bot", chat=group)
    assert mapped(other) is None


def test_photo_takes_the_largest_size_and_caption(fake: FakeTelegramServer) -> None:
    update = fake.photo_update(caption="Ảnh công trường")
    event = mapped(update)
    largest = update["message"]["photo"][-1]["file_id"]
    assert event is not None and event.kind == "message" and event.text == "Ảnh công trường"
    assert event.attachments == (Attachment(kind="photo", file_ref=largest),)


def test_document_keeps_name_and_type(fake: FakeTelegramServer) -> None:
    update = fake.document_update("quyet-dinh.pdf", "application/pdf")
    event = mapped(update)
    doc = update["message"]["document"]
    assert event is not None and event.text is None
    assert event.attachments == (
        Attachment(
            kind="document", file_ref=doc["file_id"], file_name="quyet-dinh.pdf", mime_type="application/pdf"
        ),
    )


@pytest.mark.parametrize("build", ["sticker_update", "voice_update", "location_update"])
def test_content_we_cannot_take_is_unsupported(fake: FakeTelegramServer, build: str) -> None:
    event = mapped(getattr(fake, build)())
    assert event is not None and event.kind == "unsupported" and event.text is None
    assert event.user_id == "1001" and event.chat_id == "1001"


def test_button_press(fake: FakeTelegramServer) -> None:
    update = fake.callback_update("t:17:accept", user=fake.user(3003, "Cường", None, language_code="en"))
    event = mapped(update)
    carrier = update["callback_query"]["message"]
    assert event is not None
    assert (event.kind, event.payload, event.text) == ("button", "t:17:accept", None)
    assert event.message_id == str(carrier["message_id"]) and event.chat_id == str(carrier["chat"]["id"])
    assert (event.user_id, event.language, event.display_name) == ("3003", "en", "Cường")


def test_button_on_inaccessible_message_and_without_data(fake: FakeTelegramServer) -> None:
    old = mapped(fake.callback_update("t:1:view", inaccessible=True))
    assert old is not None and old.kind == "button" and old.message_id is not None
    game = mapped(fake.callback_update(None))
    assert game is not None and game.kind == "unsupported" and game.payload is None


@pytest.mark.parametrize(
    "build",
    [
        lambda f: f.edited_message_update("sửa"),
        lambda f: f.channel_post_update(),
        lambda f: f.my_chat_member_update("kicked"),
        lambda f: f.new_members_update(),
        lambda f: f.text_update("bot nói", user=f.user(5005, "Other", None, is_bot=True)),
        lambda f: {"update_id": 1, "inline_query": {"id": "1", "from": f.user(), "query": "x", "offset": ""}},
        lambda f: {"update_id": 2, "some_future_update": {"x": 1}},
    ],
)
def test_machinery_maps_to_nothing(fake: FakeTelegramServer, build: Any) -> None:
    assert mapped(build(fake)) is None


def test_message_without_from_or_from_anonymous_admin(fake: FakeTelegramServer) -> None:
    update = fake.text_update("ẩn danh", chat=fake.group_chat())
    del update["message"]["from"]
    assert mapped(update) is None
    anon = fake.text_update("admin", chat=fake.group_chat())
    anon["message"]["sender_chat"] = anon["message"]["chat"]
    assert mapped(anon) is None


def test_group_chat_flag(fake: FakeTelegramServer) -> None:
    small = fake.group_chat(-4001, "Nhóm nhỏ")
    event = mapped(fake.text_update("hi", chat=small))
    assert event is not None and event.is_group_chat and event.chat_id == "-4001" and event.user_id == "1001"
    private = mapped(fake.text_update("hi"))
    assert private is not None and not private.is_group_chat
