"""Group chats are public places: the bot in a Telegram group and in a Zalo Bot group.

A coordinator, a member, a reporter and a stranger share one group with the bot. They try
``/web``, ``/join CODE``, a report, ``/status`` and a button press in the group; then a ticket is
assigned to the member while the member's last message was in the group. Nothing personal
ever reaches the group (only the one public note per command), the people's private chats
still receive everything, and the stranger, who holds nothing, can sign in as nobody.
Real HTTP throughout: fake Bot API / fake Zalo Bot Platform, the real aiogram client, the
real runtime with its outbox dispatcher.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from bot import numbered
from handlers.engine import Engine
from hotline.deps import App
from hotline.domain.enums import Role
from hotline.messages import InboundEvent
from hotline.services import people
from storage.models import Contact, Invite, KeyValue, OutboxMessage, Person
from tests.factories import file, make_reporter, make_staff
from tests.fakes.telegram_api import FakeTelegramServer
from tests.fakes.zalo_bot_api import FakeZaloBotServer
from tests.fakes.zalo_helpers import drain_outbox
from tests.integration.test_dispatcher import RunningClock
from tests.integration.test_telegram_e2e import bot_running

pytestmark = pytest.mark.timeout(90)
pytest_plugins = ["tests.fakes.zalo_fixtures"]

GROUP_ID = -1001234567890
SIGNIN = re.compile(r"/signin/[A-Za-z0-9_-]{20,}")
REPORT_TEXT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp"


@dataclass(frozen=True)
class Cast:
    """Who shares the group with the bot: a coordinator, a member of "mps", a reporter (each
    with a private chat on ``channel``), and an invite code for the stranger to blurt out."""

    coordinator: tuple[Person, Contact]
    member: tuple[Person, Contact]
    reporter: tuple[Person, Contact]
    invite: people.IssuedInvite

    @classmethod
    async def make(cls, app: App, channel: str) -> Cast:
        coordinator = await make_staff(app, Role.COORDINATOR, channel=channel)
        member = await make_staff(app, Role.MEMBER, "mps", channel=channel)
        reporter = await make_reporter(app, channel=channel)
        async with app.uow() as uow:
            invite = await people.create_invite(uow, app, Role.MEMBER, "mps")
            await uow.commit()
        return cls(coordinator, member, reporter, invite)


async def _all_settled(app: App) -> None:
    async with asyncio.timeout(10):
        while True:
            async with app.uow() as uow:
                pending = (await uow.session.execute(
                    select(OutboxMessage.id).where(OutboxMessage.status == "pending"))).first()
            if pending is None:
                return
            await asyncio.sleep(0.05)


async def test_nothing_personal_reaches_a_telegram_group(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    fake = telegram_server
    cast = await Cast.make(app, "telegram")
    coordinator, coord_contact = cast.coordinator
    member, member_contact = cast.member
    reporter, rep_contact = cast.reporter
    invite = cast.invite
    group = fake.group_chat(GROUP_ID)
    users = {who: fake.user(int(contact.external_id), who, None, username=None)
             for who, contact in (("coord", coord_contact), ("member", member_contact),
                                  ("reporter", rep_contact))}
    stranger = fake.user(7777, "Kẻ Lạ", None, username=None)

    def in_group(user: dict[str, Any], text: str) -> dict[str, Any]:
        if text.startswith("/"):
            command, _, args = text[1:].partition(" ")
            return fake.command_update(command, args, mention=True, user=user, chat=group)
        return fake.text_update(text, user=user, chat=group)

    async with bot_running(app, fake, webhook=False):
        said_in_group = [
            (users["coord"], "/web"), (stranger, f"/join {invite.code}"),
            (users["reporter"], REPORT_TEXT), (users["reporter"], "/report"),
            (users["reporter"], "/status"), (users["coord"], "/status HL-2026-000001"),
            (stranger, "/web"), (users["member"], "/help"),
        ]
        for user, text in said_in_group:
            fake.queue_update(in_group(user, text))
        commands = sum(1 for _, text in said_in_group if text.startswith("/"))
        await fake.wait_for_sent(GROUP_ID, commands, within=10)

        # A ticket is assigned to the member, whose last message was in the group.
        ticket = await file(app, reporter, rep_contact, REPORT_TEXT)
        assert ticket.assignee_id == member.id
        await fake.wait_for_sent(int(member_contact.chat_id), 1, within=10)

        # An old keyboard in the group (posted there before the fix) is pressed.
        old = {"message_id": 4242, "from": fake.bot_user, "chat": group, "date": 0,
               "text": "HL-2026-000001", "reply_markup": {"inline_keyboard": [
                   [{"text": "Nhận", "callback_data": f"ack:{ticket.ref}"}]]}}
        fake.queue_update(fake.callback_update(f"ack:{ticket.ref}", message=old,
                                               user=users["member"]))
        await fake.wait_for_sent(GROUP_ID, commands + 1, within=10)

        # The deep link of the note continues the command in the private chat.
        fake.queue_update(fake.command_update("start", "web", user=users["coord"]))
        fake.queue_update(fake.command_update("join", invite.code, user=stranger))
        fake.queue_update(fake.command_update("web", user=stranger))
        await fake.wait_for_sent(int(coord_contact.chat_id), 1, within=10)
        await fake.wait_for_sent(7777, 2, within=10)
        await _all_settled(app)

    group_texts = [m.text or "" for m in fake.sent_messages(GROUP_ID)]
    assert len(group_texts) == commands + 1  # one note per command and press, nothing else
    for text in group_texts:
        assert "t.me/hotline_test_bot?start=" in text
        assert not SIGNIN.search(text) and ticket.ref not in text and REPORT_TEXT not in text
        assert "Công ty" not in text and coordinator.display_name not in text
        assert all(m.reply_markup is None for m in fake.sent_messages(GROUP_ID))
    assert "t.me/hotline_test_bot?start=web" in group_texts[0]
    assert any("mã mới" in text for text in group_texts)  # the /join note

    # The private chats received everything: the coordinator's link, the member's notice.
    coord_private = [m.text or "" for m in fake.sent_messages(int(coord_contact.chat_id))]
    assert len(coord_private) == 1 and SIGNIN.search(coord_private[0])
    member_private = [m.text or "" for m in fake.sent_messages(int(member_contact.chat_id))]
    assert any(ticket.ref in text and REPORT_TEXT[:30] in text for text in member_private)
    # The stranger: the exposed invite was cancelled, and there is nobody to sign in as.
    stranger_texts = [m.text or "" for m in fake.sent_messages(7777)]
    assert "hết hạn" in stranger_texts[0] and "/start" in stranger_texts[1]
    assert not any(SIGNIN.search(text) for text in stranger_texts)

    async with app.uow() as uow:
        contacts = (await uow.session.execute(select(Contact))).scalars().all()
        assert all(c.chat_id == c.external_id for c in contacts)  # private chats only
        by_id = {c.external_id: c for c in contacts}
        assert by_id["7777"].person_id is None  # (made by the private chat) nobody behind it
        assert (await uow.session.execute(
            select(Person).where(Person.display_name == "Kẻ Lạ"))).first() is None
        row = await uow.session.get(Invite, invite.invite.id)
        assert row is not None and row.used_at is None and row.expires_at <= app.clock.now()
        links = (await uow.session.execute(
            select(KeyValue.value).where(KeyValue.key.like("web.signin.%")))).scalars().all()
        assert [json.loads(value)["person_id"] for value in links] == [coordinator.id]
        group_rows = (await uow.session.execute(
            select(OutboxMessage).where(OutboxMessage.chat_id == str(GROUP_ID)))).scalars().all()
        assert all(r.person_id is None and r.contact_id is None for r in group_rows)


async def test_nothing_personal_reaches_a_zalo_bot_group(
    app: App, clock_running: RunningClock, zalo_bot_server: FakeZaloBotServer
) -> None:
    """The same rule on the Zalo Bot Platform (no deep links there: the note says how to open
    the private chat)."""
    from bot.zalo.bot_api import ZaloBotClient
    from bot.zalo.bot_mapping import update_to_event
    from bot.zalo.bot_sender import ZaloBotSender
    from bot.zalo.choices import NumberedMenus

    fake = zalo_bot_server
    engine = Engine(app, intake=[numbered.intake])
    cast = await Cast.make(app, "zalo_bot")
    coordinator, coord_contact = cast.coordinator
    member, member_contact = cast.member
    reporter, rep_contact = cast.reporter
    invite = cast.invite
    group = "g-to-cong-tac-lien-nganh"

    async def say(user: str, text: str, *, chat: str = group) -> None:
        event = update_to_event(fake.text_update(text, chat_id=chat, user_id=user,
                                                 chat_type="GROUP" if chat == group else "PRIVATE"))
        assert isinstance(event, InboundEvent)
        await engine.handle(event)

    said = [(coord_contact.external_id, "/web"), ("stranger", f"/join {invite.code}"),
            (rep_contact.external_id, REPORT_TEXT), (rep_contact.external_id, "/status"),
            (member_contact.external_id, "/help")]
    for user, text in said:
        await say(user, text)
    ticket = await file(app, reporter, rep_contact, REPORT_TEXT)
    await say(coord_contact.external_id, "/web", chat=coord_contact.external_id)
    async with ZaloBotClient(fake.token, fake.base_url) as client:
        await drain_outbox(app, {"zalo_bot": ZaloBotSender(client, menus=NumberedMenus(app))})

    group_texts = fake.sent_texts(group)
    assert len(group_texts) == 4  # the four commands; the report text got no answer
    for text in group_texts:
        assert "tin nhắn riêng" in text and "bấm vào tên bot" in text
        assert not SIGNIN.search(text) and ticket.ref not in text and REPORT_TEXT not in text
    assert any(ticket.ref in text for text in fake.sent_texts(member_contact.chat_id))
    assert SIGNIN.search(fake.sent_texts(coord_contact.chat_id)[-1])
    async with app.uow() as uow:
        contacts = (await uow.session.execute(select(Contact))).scalars().all()
        assert all(c.chat_id == c.external_id for c in contacts)
        assert "stranger" not in {c.external_id for c in contacts}
        row = await uow.session.get(Invite, invite.invite.id)
        assert row is not None and row.expires_at <= app.clock.now()
    assert member.id == ticket.assignee_id and coordinator.id


async def test_any_group_event_gets_at_most_one_public_note(app: App) -> None:
    """Whatever anyone sends in a group -- commands with or without arguments, ticket refs,
    invite codes, button payloads, plain text, odd content -- nothing runs: at most one note,
    addressed to nobody, naming nothing; no contact is created or moved."""
    import random

    engine = Engine(app)
    cast = await Cast.make(app, "telegram")
    ticket = await file(app, cast.reporter[0], cast.reporter[1], REPORT_TEXT)
    async with app.uow() as uow:
        before = {(c.external_id, c.chat_id, c.person_id)
                  for c in (await uow.session.execute(select(Contact))).scalars()}
    senders = [cast.coordinator[1].external_id, cast.member[1].external_id,
               cast.reporter[1].external_id, "7777"]
    words = ["/start", "/help", "/web", "/status", f"/status {ticket.ref}", "/mine", "/queue",
             "/report", f"/join {cast.invite.code}", "/lang en", "/cancel", "/digest", "/nope",
             f"/ack {ticket.ref}", "1", REPORT_TEXT, "", f"ack:{ticket.ref}", "tri:x"]
    rnd = random.Random(17)
    for n in range(150):
        word = rnd.choice(words)
        kind = rnd.choice(["message", "message", "button", "unsupported"])
        event = InboundEvent(
            channel="telegram", update_id=f"g-{n}", user_id=rnd.choice(senders),
            chat_id=str(GROUP_ID), kind=kind, is_group_chat=True, message_id=str(n),
            text=word if kind == "message" else None,
            payload=word if kind == "button" else None,
            private_chat_url="https://t.me/hotline_test_bot")
        replies = await engine.handle(event)
        assert len(replies) <= 1
        if kind == "unsupported" or (kind == "message" and not word.startswith("/")):
            assert replies == []
        for reply in replies:
            assert reply.chat_id == str(GROUP_ID) and reply.buttons == ()
            assert ticket.ref not in reply.text and "/signin/" not in reply.text
            assert "https://t.me/hotline_test_bot?start=" in reply.text
    async with app.uow() as uow:
        after = {(c.external_id, c.chat_id, c.person_id)
                 for c in (await uow.session.execute(select(Contact))).scalars()}
        rows = (await uow.session.execute(
            select(OutboxMessage).where(OutboxMessage.chat_id == str(GROUP_ID)))).scalars().all()
    assert after == before
    assert all(r.person_id is None and r.contact_id is None for r in rows)
