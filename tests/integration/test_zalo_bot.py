"""Zalo Bot Platform adapter against the fake platform over real HTTP on loopback."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot import numbered
from bot.zalo.bot_api import ZaloBotClient, ZaloBotError
from bot.zalo.bot_intake import SECRET_HEADER, ZaloBotPoller, bot_webhook_app
from bot.zalo.bot_mapping import update_to_event
from bot.zalo.bot_sender import ZaloBotSender
from bot.zalo.choices import NumberedMenus
from bot.zalo.common import ZaloTransportError, to_plain
from hotline.deps import App
from hotline.messages import Button, OutboundMessage
from storage.models import InboundUpdate, KeyValue
from tests.fakes.zalo_bot_api import FakeZaloBotServer
from tests.fakes.zalo_helpers import Recorder, serve

pytest_plugins = ["tests.fakes.zalo_fixtures"]

CHAT = "e4ea2cd5189df1c3a88c"
SECRET = "hotline-webhook-secret-1"


@pytest.fixture
async def client(zalo_bot_server: FakeZaloBotServer):
    async with ZaloBotClient(zalo_bot_server.token, zalo_bot_server.base_url, timeout=5) as bot:
        yield bot


def no_sleep_log() -> tuple[list[float], object]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    return slept, sleep


# --- mapping ------------------------------------------------------------------------------------


def test_text_image_sticker_and_unsupported_updates_map(zalo_bot_server: FakeZaloBotServer) -> None:
    server = zalo_bot_server
    text = update_to_event(server.text_update("Xin chào", display_name="Trần Bình"))
    assert text is not None and (text.kind, text.text, text.chat_id, text.display_name) == (
        "message", "Xin chào", CHAT, "Trần Bình")
    assert text.channel == "zalo_bot" and text.update_id == text.message_id
    image = update_to_event(server.image_update("ảnh giấy phép"))
    assert image is not None and image.kind == "message" and image.text == "ảnh giấy phép"
    assert image.attachments[0].kind == "photo" and image.attachments[0].file_ref.startswith("https://")
    assert update_to_event(server.sticker_update()).kind == "unsupported"  # type: ignore[union-attr]
    assert update_to_event(server.unsupported_update()).kind == "unsupported"  # type: ignore[union-attr]


def test_wrapped_updates_alternative_spellings_and_garbage(zalo_bot_server: FakeZaloBotServer) -> None:
    update = zalo_bot_server.text_update("hi", chat_type="GROUP")
    wrapped = update_to_event({"ok": True, "result": update})
    assert wrapped is not None and wrapped.text == "hi" and wrapped.is_group_chat
    # SDK spelling: photo instead of photo_url, first_name instead of display_name.
    alt = {"event_name": "message.image.received", "message": {
        "message_id": "m1", "chat": {"id": "c1", "chat_type": "PRIVATE"},
        "from": {"id": "u1", "first_name": "An"}, "photo": "https://x/y.jpg", "date": 1}}
    event = update_to_event(alt)
    assert event is not None and event.display_name == "An" and event.attachments[0].file_ref == "https://x/y.jpg"
    for garbage in (None, [], "x", {"ok": False, "result": update}, {"event_name": TEXT_EVENT},
                    {"event_name": TEXT_EVENT, "message": {"text": "no ids"}}):
        assert update_to_event(garbage) is None


TEXT_EVENT = "message.text.received"


def test_plain_text_keeps_lines_and_links() -> None:
    html = '<b>Phiếu</b> HL-1 &amp; HL-2\n• <i>một</i>\n<a href="https://x.vn/t?a=1&amp;b=2">mở</a>'
    assert to_plain(html) == "Phiếu HL-1 & HL-2\n• một\nmở (https://x.vn/t?a=1&b=2)"


# --- client -------------------------------------------------------------------------------------


async def test_client_envelope_errors_and_redaction(client: ZaloBotClient,
                                                    zalo_bot_server: FakeZaloBotServer) -> None:
    me = await client.get_me()
    assert me["account_type"] == "BASIC"
    zalo_bot_server.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    with pytest.raises(ZaloBotError) as caught:
        await client.send_message(CHAT, "x")
    assert caught.value.error_code == 400
    wrong = ZaloBotClient("999:wrong", zalo_bot_server.base_url)
    with pytest.raises(ZaloBotError) as caught:
        await wrong.get_me()
    assert caught.value.error_code == 401
    await wrong.close()
    closed = ZaloBotClient(zalo_bot_server.token, "http://127.0.0.1:9", timeout=2)
    with pytest.raises(ZaloTransportError) as failed:
        await closed.get_me()
    assert zalo_bot_server.token not in str(failed.value)
    await closed.close()


# --- polling ------------------------------------------------------------------------------------


async def test_polling_delivers_updates_in_order_and_408_means_nothing_new(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    recorder = Recorder()
    poller = ZaloBotPoller(client, recorder, poll_seconds=1)
    assert await poller.poll_once() is None  # an empty long poll: error_code 408, not a failure
    zalo_bot_server.queue_update(zalo_bot_server.text_update("một"))
    zalo_bot_server.queue_update(zalo_bot_server.text_update("hai"))
    zalo_bot_server.queue_update(zalo_bot_server.sticker_update())
    async with asyncio.timeout(10):
        await poller.run(max_updates=3)
    assert [(e.kind, e.text) for e in recorder.events] == [
        ("message", "một"), ("message", "hai"), ("unsupported", None)]
    assert poller.failures == 0
    assert all(c.params["timeout"] == "1" for c in zalo_bot_server.calls_to("getUpdates"))


async def test_polling_408_with_http_408_status_is_also_nothing_new() -> None:
    async with FakeZaloBotServer(no_update_http_status=408, max_poll_seconds=0.2) as server:
        async with ZaloBotClient(server.token, server.base_url, timeout=5) as bot:
            assert await ZaloBotPoller(bot, Recorder(), poll_seconds=1).poll_once() is None


async def test_polling_backs_off_exponentially_up_to_a_cap_then_recovers(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    slept, sleep = no_sleep_log()
    recorder = Recorder()
    poller = ZaloBotPoller(client, recorder, poll_seconds=1, backoff_base=1.0, backoff_cap=4.0,
                           sleep=sleep)  # type: ignore[arg-type]
    zalo_bot_server.fail_next("getUpdates", 502, times=5)
    zalo_bot_server.queue_update(zalo_bot_server.text_update("sau sự cố"))
    async with asyncio.timeout(10):
        await poller.run(max_updates=1)
    assert slept == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert recorder.events[0].text == "sau sự cố" and poller.failures == 0


async def test_polling_retries_a_failing_handler_then_moves_on(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    _slept, sleep = no_sleep_log()
    flaky = Recorder(fail=2)
    poller = ZaloBotPoller(client, flaky, poll_seconds=1, handler_attempts=3, sleep=sleep)  # type: ignore[arg-type]
    zalo_bot_server.queue_update(zalo_bot_server.text_update("a"))
    broken = Recorder(fail=99)
    async with asyncio.timeout(10):
        await poller.run(max_updates=1)
        assert [e.text for e in flaky.events] == ["a"] and flaky.calls == 3
        zalo_bot_server.queue_update(zalo_bot_server.text_update("b"))
        zalo_bot_server.queue_update(zalo_bot_server.text_update("c"))
        poller2 = ZaloBotPoller(client, broken, poll_seconds=1, handler_attempts=2, sleep=sleep)  # type: ignore[arg-type]
        await poller2.run(max_updates=2)
    assert poller2.dropped == 2 and broken.calls == 4


async def test_polling_removes_a_webhook_and_stops_promptly(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    await client.set_webhook("https://hotline.example.vn/zalo/bot/webhook", SECRET)
    server = FakeZaloBotServer(max_poll_seconds=30)  # a long poll that would hang for 30 s
    server_started = await server.start()
    try:
        async with ZaloBotClient(server_started.token, server_started.base_url) as slow:
            stop = asyncio.Event()
            poller = ZaloBotPoller(slow, Recorder(), poll_seconds=30)
            task = asyncio.create_task(poller.run(stop))
            await server_started.wait_for_calls("getUpdates")
            stop.set()
            async with asyncio.timeout(2):
                await task
    finally:
        await server.close()
    poller = ZaloBotPoller(client, Recorder(), poll_seconds=1)
    await poller.prepare()
    assert zalo_bot_server.webhook["url"] == "" and zalo_bot_server.calls_to("deleteWebhook")


# --- webhook ------------------------------------------------------------------------------------


async def test_webhook_accepts_the_secret_bare_or_wrapped_and_refuses_anything_else(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    recorder = Recorder()
    app, worker = bot_webhook_app(path="/zalo/bot/webhook", secret=SECRET, handler=recorder)
    async with serve(app) as base:
        await client.set_webhook(base + "/zalo/bot/webhook", SECRET)
        status, _ = await zalo_bot_server.push_webhook(zalo_bot_server.text_update("bare"))
        assert status == 200
        status, _ = await zalo_bot_server.push_webhook(zalo_bot_server.text_update("wrapped"), wrapped=True)
        assert status == 200
        for secret in (None, "wrong-secret-value", SECRET + "x", ""):
            status, _ = await zalo_bot_server.push_webhook(zalo_bot_server.text_update("evil"),
                                                           secret_token=secret)
            assert status == 403
        status, _ = await zalo_bot_server.push_webhook(zalo_bot_server.sticker_update())
        assert status == 200
        await worker.drain()
    assert [e.text for e in recorder.events] == ["bare", "wrapped", None]
    assert worker.handled == 3


async def test_webhook_refuses_before_parsing(zalo_bot_server: FakeZaloBotServer) -> None:
    from aiohttp import ClientSession

    recorder = Recorder()
    app, _worker = bot_webhook_app(path="/hook", secret=SECRET, handler=recorder)
    async with serve(app) as base, ClientSession() as http:
        async with http.post(base + "/hook", data=b"{not json") as response:
            assert response.status == 403  # no secret: refused before the body is read
        async with http.post(base + "/hook", data=b"{not json", headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 400
    assert recorder.calls == 0


async def test_webhook_answers_fast_while_a_slow_engine_finishes_in_order(
    zalo_bot_server: FakeZaloBotServer,
) -> None:
    slow = Recorder(delay=0.4)
    from bot.zalo.inbound import InboundWorker

    worker = InboundWorker(slow, budget=0.1)
    app, _ = bot_webhook_app(path="/hook", secret=SECRET, handler=slow, worker=worker)
    async with serve(app) as base:
        url = base + "/hook"
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = zalo_bot_server.text_update("1")
        for update in (first, zalo_bot_server.text_update("2"), first):  # the third is a redelivery
            status, _ = await zalo_bot_server.push_webhook(update, url=url, secret_token=SECRET)
            assert status == 200
        assert loop.time() - started < 1.0
        await worker.drain()
    assert [e.text for e in slow.events] == ["1", "2"] and worker.duplicates == 1


# --- sender -------------------------------------------------------------------------------------


def message(text: str, **kw: object) -> OutboundMessage:
    return OutboundMessage(channel="zalo_bot", chat_id=CHAT, text=text, **kw)  # type: ignore[arg-type]


async def test_a_3000_character_reply_arrives_as_two_messages_in_order(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    lines = [f"{i:03d} " + "vướng mắc về thủ tục cấp phép " * 2 for i in range(60)]
    text = "\n".join(line.rstrip() for line in lines)[:3000].rstrip()
    assert 2990 < len(text) <= 3000
    result = await ZaloBotSender(client).send(message(text))
    sent = zalo_bot_server.sent_texts(CHAT)
    assert result.ok and len(sent) == 2 and all(len(s) <= 2000 for s in sent)
    assert "\n".join(sent) == text  # cut on a line boundary, nothing lost, in order
    assert result.message_id == zalo_bot_server.sent(CHAT)[-1].message_id


async def test_html_is_stripped_and_buttons_become_remembered_numbered_choices(
    app: App, client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    sender = ZaloBotSender(client, menus=NumberedMenus(app))
    ack, ask = "ack:HL-2026-000001", "ask:HL-2026-000001"
    buttons = ((Button("Tiếp nhận", ack), Button("Cần thêm thông tin", ask)),)
    result = await sender.send(message("<b>Phiếu HL-2026-000001</b>\nĐã giao cho bạn.", buttons=buttons))
    assert result.ok
    [text] = zalo_bot_server.sent_texts(CHAT)
    assert text == ("Phiếu HL-2026-000001\nĐã giao cho bạn.\n  [1] Tiếp nhận\n  [2] Cần thêm thông tin")
    async with app.uow() as uow:
        assert await numbered.remembered(uow, "zalo_bot", CHAT) == [ack, ask]


async def test_photos_by_url_go_out_local_files_become_a_note(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer, tmp_path
) -> None:
    sender = ZaloBotSender(client)
    assert (await sender.send(message("Biểu đồ", photo="https://cdn.example.vn/chart.png"))).ok
    chart = tmp_path / "bieu-do.png"
    chart.write_bytes(b"\x89PNG")
    assert (await sender.send(message("Báo cáo tuần", photo=str(chart), meta={"lang": "en"}))).ok
    first, second = zalo_bot_server.sent(CHAT)
    assert (first.method, first.photo, first.text) == (
        "sendPhoto", "https://cdn.example.vn/chart.png", "Biểu đồ")
    assert second.method == "sendMessage" and "bieu-do.png" in (second.text or "")
    assert str(tmp_path) not in (second.text or "") and second.text.endswith("Báo cáo tuần")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("code", "status"),
    [(429, "retry_after"), (403, "blocked"), (500, "transient"), (502, "transient"), (401, "transient"),
     (400, "permanent"), (404, "permanent")],
)
async def test_send_errors_map_onto_delivery_results(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer, code: int, status: str
) -> None:
    zalo_bot_server.fail_next("sendMessage", code)
    result = await ZaloBotSender(client).send(message("x"))
    assert result.status == status and zalo_bot_server.token not in (result.error or "")
    if status == "retry_after":
        assert result.retry_after and result.retry_after > 0


async def test_a_hung_send_is_transient_within_the_senders_deadline(
    client: ZaloBotClient, zalo_bot_server: FakeZaloBotServer
) -> None:
    zalo_bot_server.hang("sendMessage", 2.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await ZaloBotSender(client, timeout=0.3).send(message("x"))
    assert result.status == "transient" and loop.time() - started < 1.5


async def test_the_sender_refuses_other_channels_and_empty_messages(client: ZaloBotClient) -> None:
    sender = ZaloBotSender(client)
    with pytest.raises(ValueError, match="zalo_oa"):
        await sender.send(OutboundMessage(channel="zalo_oa", chat_id="1", text="x"))
    assert (await sender.send(message("  "))).status == "permanent"
    assert (await sender.send(message("", retire_buttons_of="menu:x"))).ok


async def test_bad_webhook_input_changes_nothing_in_the_database(
    app: App, zalo_bot_server: FakeZaloBotServer
) -> None:
    """Refused deliveries never reach the handler, so no update is claimed, nothing is written."""
    from handlers.engine import Engine

    engine = Engine(app, intake=[numbered.intake])
    app_, worker = bot_webhook_app(path="/hook", secret=SECRET, handler=engine.handle)
    async with serve(app_) as base:
        for secret in (None, "not-the-secret"):
            status, _ = await zalo_bot_server.push_webhook(zalo_bot_server.text_update("/start"),
                                                           url=base + "/hook", secret_token=secret)
            assert status == 403
        await worker.drain()
    async with app.uow() as uow:
        assert (await uow.session.execute(select(InboundUpdate))).first() is None
        assert (await uow.session.execute(select(KeyValue))).first() is None
        assert await uow.outbox.pending() == []
