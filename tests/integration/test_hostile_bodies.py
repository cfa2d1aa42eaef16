"""Bad input from outside crashes nothing: hostile webhook bodies, lone surrogates, numbers
too big for the database.

- JSON nested 100,000 levels deep on the Telegram webhook and both Zalo webhooks: 400 (after
  the secret or signature: without it, 403 and the body is never parsed), no traceback in the
  log, nothing stored.
- Text carrying lone UTF-16 surrogates (valid JSON: ``"\\ud800"``) from Telegram, Zalo and the
  console: an ordinary answer, not the generic apology, on SQLite and PostgreSQL.
- A coordinator's ``exok:<27 digits>``: the stale-button answer, never OverflowError/DBAPIError.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select

from bot import jsonbody
from bot.console import ConsoleChat
from bot.zalo.bot_intake import SECRET_HEADER, bot_webhook_app
from bot.zalo.bot_mapping import update_to_event
from bot.zalo.oa_intake import TIMESTAMP_HEADER, oa_webhook_app, signature_header
from handlers.engine import Engine
from hotline.deps import App
from hotline.domain.enums import Role
from hotline.i18n import t
from hotline.messages import InboundEvent
from storage.models import InboundUpdate
from tests.factories import make_staff
from tests.fakes.telegram_api import FakeTelegramServer
from tests.fakes.zalo_bot_api import FakeZaloBotServer
from tests.fakes.zalo_helpers import Recorder, serve
from tests.fakes.zalo_oa_api import APP_ID, OA_SECRET_KEY
from tests.integration.test_dispatcher import RunningClock, wait_until
from tests.integration.test_telegram_e2e import bot_running

pytestmark = pytest.mark.timeout(60)
pytest_plugins = ["tests.fakes.zalo_fixtures"]

DEEP = b"[" * 100_000 + b"]" * 100_000
ZALO_SECRET = "hotline-webhook-secret-1"
TG_SECRET = "hostile-Webhook_secret-7"
APOLOGY = str(t("error.generic", "vi"))


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.exc_info or "Traceback" in r.getMessage() or r.levelno >= logging.ERROR]


# --- the bounded parser ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parse_returns_every_shallow_document_unchanged(value: Any) -> None:
    raw = json.dumps(value).encode()
    if jsonbody.depth(raw) <= jsonbody.MAX_DEPTH:
        assert jsonbody.parse(raw) == value


def test_depth_ignores_brackets_inside_strings_and_stops_early() -> None:
    assert jsonbody.depth(b'{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert jsonbody.depth(b'["\\"[[["]') == 1
    assert jsonbody.depth(DEEP, 32) == 33
    with pytest.raises(jsonbody.BadBody, match="deeper"):
        jsonbody.parse(DEEP)
    with pytest.raises(jsonbody.BadBody, match="larger"):
        jsonbody.parse(b"[" + b"1," * 100 + b"1]", max_bytes=50)
    for bad in (b"{not json", b"\xff\xfe", b""):
        with pytest.raises(jsonbody.BadBody, match="not JSON"):
            jsonbody.parse(bad)
    assert jsonbody.parse(b'{"t\\udc80": ["a\\ud800b", "\\ud83d\\ude00"]}') == {"t\ufffd": ["a\ufffdb", "😀"]}


# --- webhooks ------------------------------------------------------------------------------------


async def test_zalo_bot_webhook_refuses_a_deep_body_after_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    app, _ = bot_webhook_app(path="/hook", secret=ZALO_SECRET, handler=recorder)
    async with serve(app) as base, aiohttp.ClientSession() as http:
        async with http.post(base + "/hook", data=DEEP[:200_000]) as response:
            assert response.status == 403
        async with http.post(base + "/hook", data=DEEP[:200_000],
                             headers={SECRET_HEADER: ZALO_SECRET}) as response:
            assert response.status == 400 and "invalid JSON" in await response.text()
    assert recorder.calls == 0 and tracebacks(caplog) == []


async def test_zalo_oa_webhook_checks_the_signature_before_parsing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    web_app, hook = oa_webhook_app(path="/oa", app_id=APP_ID, secret=OA_SECRET_KEY, handler=recorder)
    stamp = "1764730000000"
    deep = DEEP[:200_000]
    async with serve(web_app) as base, aiohttp.ClientSession() as http:
        async with http.post(base + "/oa", data=deep, headers={
                "X-ZEvent-Signature": "mac=" + "0" * 64, TIMESTAMP_HEADER: stamp}) as response:
            assert response.status == 403  # unsigned: refused before the body is parsed
        async with http.post(base + "/oa", data=deep, headers={
                "X-ZEvent-Signature": signature_header(APP_ID, deep, stamp, OA_SECRET_KEY),
                TIMESTAMP_HEADER: stamp}) as response:
            assert response.status == 400  # signed by Zalo but unusable: a client error
        event = {"app_id": APP_ID, "event_name": "user_send_text", "timestamp": stamp,
                 "sender": {"id": "6142494823123456789"}, "recipient": {"id": "oa"},
                 "message": {"msg_id": "m-1", "text": "Lỗi \ud800 cổng dịch vụ"}}
        raw = json.dumps(event).encode()  # the lone surrogate travels as "\ud800"
        async with http.post(base + "/oa", data=raw, headers={
                "X-ZEvent-Signature": signature_header(APP_ID, raw, stamp, OA_SECRET_KEY)}) as response:
            assert response.status == 200
    await hook.worker.drain()
    assert [e.text for e in recorder.events] == ["Lỗi \ufffd cổng dịch vụ"]
    assert hook.refused == 1 and tracebacks(caplog) == []


async def test_telegram_webhook_refuses_deep_bodies_and_answers_surrogate_text(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = telegram_server
    app.settings = app.settings.model_copy(update={"webhook_secret": SecretStr(TG_SECRET)})
    async with bot_running(app, fake, webhook=True, port=0, scheduler=False) as runtime:
        url = runtime.telegram_webhook_url
        assert url is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=DEEP[:200_000]) as response:
                assert response.status == 403
            async with http.post(url, data=DEEP[:200_000], headers=headers) as response:
                assert response.status == 400
            update = fake.command_update("start")
            update["message"]["text"] = "/start"
            update["message"]["from"]["first_name"] = "An \udc80"
            async with http.post(url, data=json.dumps(update), headers=headers) as response:
                assert response.status == 200
            text_update = fake.text_update("Cổng \ud800 dữ liệu lỗi")
            async with http.post(url, data=json.dumps(text_update), headers=headers) as response:
                assert response.status == 200
        await wait_until(lambda: len(fake.sent_messages(1001)) >= 2, within=10)
    texts = [m.text or "" for m in fake.sent_messages(1001)]
    assert texts and not any(APOLOGY in text for text in texts)
    async with app.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(InboundUpdate)) == 2
    assert tracebacks(caplog) == []


async def test_surrogates_from_zalo_and_the_console_get_ordinary_answers(
    app: App, zalo_bot_server: FakeZaloBotServer,
) -> None:
    engine = Engine(app)
    update = json.loads(json.dumps(zalo_bot_server.text_update("/start", display_name="Bình \ud83d")))
    event = update_to_event(update)
    assert isinstance(event, InboundEvent) and event.display_name == "Bình \ufffd"
    replies = await engine.handle(event)
    assert replies and APOLOGY not in replies[0].text
    out = io.StringIO()
    chat = ConsoleChat(app, "an\udcff", out, lang="vi", engine=engine)
    await chat.send("/start")
    await chat.send("Sở \udc80 Thông tin")
    assert APOLOGY not in out.getvalue() and "an\ufffd" == chat.user
    out.getvalue().encode("utf-8")  # printable: nothing left that cannot be encoded


async def test_huge_numbers_in_buttons_are_stale_not_a_crash(app: App) -> None:
    engine = Engine(app)
    _, contact = await make_staff(app, Role.COORDINATOR)
    stale = str(t("error.stale_button", "vi"))
    for n, payload in enumerate(("exok:" + "9" * 27, "exno:" + "9" * 27, "exok:0",
                                 "reato:HL-2026-000001." + "9" * 30)):
        replies = await engine.handle(InboundEvent(
            channel="console", update_id=f"big-{n}", user_id=contact.external_id,
            chat_id=contact.chat_id, kind="button", payload=payload))
        assert replies and APOLOGY not in replies[0].text, payload
        if payload.startswith("ex"):
            assert stale in replies[0].text


def test_zalo_ids_longer_than_any_real_one_are_dropped(zalo_bot_server: FakeZaloBotServer) -> None:
    """A 65-character id would fail the 64-character columns: the update is malformed."""
    from bot.zalo.oa_mapping import event_to_inbound

    long_id = "a" * 65
    assert update_to_event(zalo_bot_server.text_update("hi", chat_id=long_id)) is None
    assert update_to_event(zalo_bot_server.text_update("hi", chat_id="c" * 64)) is not None
    oa = {"event_name": "user_send_text", "sender": {"id": long_id},
          "message": {"msg_id": "m-1", "text": "hi"}}
    assert event_to_inbound(oa) is None
    assert event_to_inbound({**oa, "sender": {"id": "6142494823123456789"},
                             "message": {"msg_id": long_id, "text": "hi"}}) is None
