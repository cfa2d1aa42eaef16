"""Whole conversations over Zalo: fake platform -> our intake -> Engine -> outbox -> our sender -> fake.

A Zalo user registers and files a blocker, answering the engine's buttons the way each
platform allows: digits on the Bot Platform (numbered choices remembered in the database),
template buttons on the OA (the press comes back as a user message carrying the payload).
Everything crosses real HTTP on loopback; the outbox is drained by a minimal dispatcher
(``tests.fakes.zalo_helpers.drain_outbox``) standing in for the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot import numbered
from bot.zalo.bot_api import ZaloBotClient
from bot.zalo.bot_intake import ZaloBotPoller, bot_webhook_app
from bot.zalo.bot_sender import ZaloBotSender
from bot.zalo.choices import NumberedMenus
from bot.zalo.contacts import set_contact_active
from bot.zalo.inbound import InboundWorker
from bot.zalo.oa_api import ZaloOAClient, ZaloOAuthClient
from bot.zalo.oa_intake import oa_webhook_app
from bot.zalo.oa_mapping import FollowChange
from bot.zalo.oa_sender import ZaloOASender
from bot.zalo.oa_tokens import OATokenManager
from handlers.engine import Engine
from handlers.harness import ScriptedClassifier
from hotline.deps import App
from storage.models import Contact, InboundUpdate, OutboxMessage, Person, Ticket
from tests.fakes.zalo_bot_api import FakeZaloBotServer
from tests.fakes.zalo_helpers import EngineProbe, drain_outbox, serve
from tests.fakes.zalo_oa_api import APP_ID, APP_SECRET, OA_SECRET_KEY, FakeZaloOAServer

pytest_plugins = ["tests.fakes.zalo_fixtures"]

CHAT = "e4ea2cd5189df1c3a88c"
OA_USER = "6142494823000000042"
REPORT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp"


@pytest.fixture
def engine(app: App) -> Engine:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    return Engine(app, intake=[numbered.intake])


def only(payloads: list[str], prefix: str) -> int:
    """Index of the one payload starting with ``prefix`` (``"lang:vi"``, ``"rfile:"``)."""
    matches = [i for i, p in enumerate(payloads) if p.startswith(prefix)]
    assert len(matches) == 1, payloads
    return matches[0]


async def digit_for(app: App, channel: str, chat: str, prefix: str) -> str:
    """The number to type for the remembered choice whose payload starts with ``prefix``."""
    async with app.uow() as uow:
        payloads = await numbered.remembered(uow, channel, chat)
    return str(only(payloads, prefix) + 1)


async def count(app: App, model: type) -> int:
    async with app.uow() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(model))).scalar_one())


# --- Zalo Bot Platform ---------------------------------------------------------------------------


@pytest.fixture
async def bot_client(zalo_bot_server: FakeZaloBotServer) -> AsyncIterator[ZaloBotClient]:
    async with ZaloBotClient(zalo_bot_server.token, zalo_bot_server.base_url, timeout=5) as client:
        yield client


async def test_register_and_file_a_blocker_over_bot_platform_polling(
    app: App, engine: Engine, bot_client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    probe = EngineProbe(engine.handle)
    poller = ZaloBotPoller(bot_client, probe, poll_seconds=1)
    sender = ZaloBotSender(bot_client, menus=NumberedMenus(app))
    senders = {"zalo_bot": sender}
    stop = asyncio.Event()
    running = asyncio.create_task(poller.run(stop))
    server = zalo_bot_server

    async def user_says(text: str) -> list[str]:
        before = len(server.sent(CHAT))
        server.queue_update(server.text_update(text, chat_id=CHAT, display_name="Nguyễn Văn An"))
        await probe.wait_for(probe.handled + 1)
        results = await drain_outbox(app, senders)
        assert results and all(r.ok for r in results), results
        return server.sent_texts(CHAT)[before:]

    try:
        async with asyncio.timeout(20):
            welcome = await user_says("/start")
            assert "[1]" in welcome[-1] and "[2]" in welcome[-1]  # language choice as numbers
            await user_says(await digit_for(app, "zalo_bot", CHAT, "lang:vi"))
            await user_says("Công ty CP Số Việt")
            await user_says(await digit_for(app, "zalo_bot", CHAT, "kind:enterprise"))
            await user_says(await digit_for(app, "zalo_bot", CHAT, "skip:tax"))
            registered = await user_says(await digit_for(app, "zalo_bot", CHAT, "skip:name"))
            assert any("Công ty CP Số Việt" in text for text in registered)
            draft = await user_says(REPORT)
            assert "[1]" in draft[-1]
            filed = await user_says(await digit_for(app, "zalo_bot", CHAT, "rfile:"))
            assert any("HL-2026-000001" in text for text in filed)
            # A sticker gets the engine's polite "not supported" answer, not silence.
            server.queue_update(server.sticker_update(chat_id=CHAT))
            await probe.wait_for(probe.handled + 1)
            assert all(r.ok for r in await drain_outbox(app, senders))
    finally:
        stop.set()
        await running
    assert all("<" not in text for text in server.sent_texts(CHAT))  # plain text only
    async with app.uow() as uow:
        ticket = (await uow.session.execute(select(Ticket))).scalar_one()
        contact = await uow.people.contact("zalo_bot", CHAT)
        person = await uow.session.get(Person, ticket.reporter_id)
    assert ticket.channel == "zalo_bot" and contact is not None and ticket.contact_id == contact.id
    assert person is not None and person.display_name == "Nguyễn Văn An"


async def test_bot_platform_webhook_conversation_and_refused_strangers(
    app: App, engine: Engine, bot_client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    secret = "hotline-bot-webhook-secret"
    worker = InboundWorker(engine.handle)
    web_app, _ = bot_webhook_app(path="/zalo/bot/webhook", secret=secret, handler=engine.handle,
                                 worker=worker)
    sender = ZaloBotSender(bot_client, menus=NumberedMenus(app))
    async with serve(web_app) as base:
        await bot_client.set_webhook(base + "/zalo/bot/webhook", secret)
        status, _ = await zalo_bot_server.push_webhook(zalo_bot_server.text_update("/start", chat_id=CHAT))
        assert status == 200
        status, _ = await zalo_bot_server.push_webhook(
            zalo_bot_server.text_update("/start", chat_id="intruder"), secret_token="guessed-secret")
        assert status == 403
        await worker.drain()
        assert all(r.ok for r in await drain_outbox(app, {"zalo_bot": sender}))
        digit = await digit_for(app, "zalo_bot", CHAT, "lang:vi")
        wrapped = zalo_bot_server.text_update(digit, chat_id=CHAT)
        assert (await zalo_bot_server.push_webhook(wrapped, wrapped=True))[0] == 200
        await worker.drain()
        assert all(r.ok for r in await drain_outbox(app, {"zalo_bot": sender}))
    texts = zalo_bot_server.sent_texts(CHAT)
    assert len(texts) == 2 and "[1]" in texts[0]
    assert zalo_bot_server.sent("intruder") == []
    async with app.uow() as uow:
        assert await uow.people.contact("zalo_bot", "intruder") is None


# --- Zalo Official Account -----------------------------------------------------------------------


@pytest.fixture
async def oa(
    app: App, zalo_oa_server: FakeZaloOAServer
) -> AsyncIterator[tuple[ZaloOASender, OATokenManager]]:
    access, refresh = zalo_oa_server.issue_tokens()
    api = ZaloOAClient(zalo_oa_server.base_url, timeout=5)
    oauth = ZaloOAuthClient(zalo_oa_server.base_url, timeout=5)
    tokens = OATokenManager(app, oauth, app_id=APP_ID, app_secret=APP_SECRET,
                            seed_refresh_token=refresh, seed_access_token=access)
    try:
        yield ZaloOASender(api, tokens, menus=NumberedMenus(app)), tokens
    finally:
        await api.close()
        await oauth.close()


def press(server: FakeZaloOAServer, user: str, prefix: str) -> str:
    """The payload a tap on the button starting with ``prefix`` (last keyboard sent) returns."""
    for sent in reversed(server.sent(user)):
        if sent.buttons:
            payloads = [b["payload"] for b in sent.buttons]
            return payloads[only(payloads, prefix)]
    raise AssertionError("no buttons sent")


async def test_register_and_file_a_blocker_over_the_official_account(
    app: App, engine: Engine, oa, zalo_oa_server: FakeZaloOAServer
) -> None:
    sender, _tokens = oa
    server = zalo_oa_server
    worker = InboundWorker(engine.handle)

    async def on_follow(change: FollowChange) -> None:
        await set_contact_active(app, "zalo_oa", change.user_id, change.active)

    web_app, hook = oa_webhook_app(path="/zalo/oa/webhook", app_id=APP_ID, secret=OA_SECRET_KEY,
                                   handler=engine.handle, worker=worker, on_follow=on_follow)
    async with serve(web_app) as base:
        url = base + "/zalo/oa/webhook"

        async def user_says(text: str) -> list[str]:
            before = len(server.sent(OA_USER))
            status, _, took = await server.push_event(url, server.text_event(OA_USER, text))
            assert status == 200 and took < 2.0
            await worker.drain()
            results = await drain_outbox(app, {"zalo_oa": sender})
            assert results and all(r.ok for r in results), results
            return server.sent_texts(OA_USER)[before:]

        async with asyncio.timeout(20):
            await user_says("/start")
            await user_says(press(server, OA_USER, "lang:en"))  # a tap: the payload as text
            await user_says("Sở Khoa học và Công nghệ tỉnh Bắc Ninh")
            await user_says(press(server, OA_USER, "kind:locality"))
            await user_says(press(server, OA_USER, "skip:tax"))
            await user_says("Trần Thị Bình")
            await user_says(REPORT)
            draft_file = press(server, OA_USER, "rfile:")
            filed = await user_says(draft_file)
            assert any("HL-2026-000001" in text for text in filed)
            # The same tap again (the draft is filed) is stale: an answer, no second ticket.
            assert await user_says(draft_file)
        assert await count(app, Ticket) == 1
        # The person unfollows: the contact goes inactive; Zalo would refuse with -213 now.
        assert (await server.push_event(url, server.follow_event(OA_USER, follow=False)))[0] == 200
        assert hook.refused == 0
    async with app.uow() as uow:
        contact = await uow.people.contact("zalo_oa", OA_USER)
        assert contact is not None and not contact.active
        ticket = (await uow.session.execute(select(Ticket))).scalar_one()
    assert ticket.channel == "zalo_oa" and ticket.contact_id == contact.id
    server.fail_user(OA_USER, -213)
    async with app.uow() as uow:
        uow.session.add(OutboxMessage(channel="zalo_oa", chat_id=OA_USER, payload={
            "channel": "zalo_oa", "chat_id": OA_USER, "text": "Phiếu HL-2026-000001 đã được giao."},
            status="pending", next_attempt_at=app.clock.now(), attempts=0, created_at=app.clock.now()))
        await uow.commit()
    [result] = await drain_outbox(app, {"zalo_oa": sender})
    assert result.status == "blocked" and "undeliverable" in (result.error or "")


async def test_a_redelivered_msg_id_is_processed_once_even_across_a_restart(
    app: App, engine: Engine, oa, zalo_oa_server: FakeZaloOAServer
) -> None:
    sender, _ = oa
    event = zalo_oa_server.text_event(OA_USER, "/start", msg_id="cb31dff1c39642cc1b83")
    for _restart in range(2):  # a fresh webhook process each time: nothing remembered in memory
        worker = InboundWorker(engine.handle)
        web_app, _ = oa_webhook_app(path="/hook", app_id=APP_ID, secret=OA_SECRET_KEY,
                                    handler=engine.handle, worker=worker)
        async with serve(web_app) as base:
            for _copy in range(2):
                assert (await zalo_oa_server.push_event(base + "/hook", event))[0] == 200
            await worker.drain()
    await drain_outbox(app, {"zalo_oa": sender})
    assert len(zalo_oa_server.sent(OA_USER)) == 1
    assert await count(app, InboundUpdate) == 1 and await count(app, Contact) == 1


async def test_an_expired_token_mid_conversation_is_refreshed_and_nothing_is_lost(
    app: App, engine: Engine, oa, zalo_oa_server: FakeZaloOAServer
) -> None:
    sender, tokens = oa
    worker = InboundWorker(engine.handle)
    web_app, _ = oa_webhook_app(path="/hook", app_id=APP_ID, secret=OA_SECRET_KEY,
                                handler=engine.handle, worker=worker)
    async with serve(web_app) as base:
        start = zalo_oa_server.text_event(OA_USER, "/start")
        assert (await zalo_oa_server.push_event(base + "/hook", start))[0] == 200
        await worker.drain()
    zalo_oa_server.expire_all_access_tokens()
    results = await drain_outbox(app, {"zalo_oa": sender})
    assert [r.status for r in results] == ["sent"]
    assert zalo_oa_server.successful_refreshes == 1 and len(zalo_oa_server.sent(OA_USER)) == 1
    stored = await tokens.current()
    assert stored is not None and stored.refresh_token == zalo_oa_server.refresh_token
