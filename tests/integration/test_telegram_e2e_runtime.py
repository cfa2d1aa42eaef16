"""``hotline run`` around the conversation: configuration errors, token check, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from aiogram import Bot
from pydantic import SecretStr
from sqlalchemy import select

from bot.ratelimit import ChatLimits
from bot.runtime import BotRuntime
from hotline.cli import main as cli
from hotline.deps import App
from hotline.errors import ConfigError
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot
from tests.integration.test_dispatcher import RunningClock, add_rows, running_clock, texts

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clock_running(app: App) -> RunningClock:
    return running_clock(app)


@pytest.fixture
def no_channels(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    for name in list(os.environ):
        if name.startswith(("HOTLINE_TELEGRAM", "HOTLINE_ZALO", "HOTLINE_WEBHOOK")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["hotline", *args])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    return int(exited.value.code or 0)


def test_run_without_a_token_says_what_to_do(
    no_channels: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "run") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: set HOTLINE_TELEGRAM_TOKEN") and "hotline chat" in err
    assert "Traceback" not in err


def test_run_webhook_without_a_secret_and_a_malformed_token(
    no_channels: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_TELEGRAM_TOKEN", "123456:secret-value-here")
    assert run_cli(monkeypatch, "run", "--webhook") == 1
    assert "HOTLINE_WEBHOOK_SECRET is required" in capsys.readouterr().err
    monkeypatch.setenv("HOTLINE_TELEGRAM_TOKEN", "not a token")
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite+aiosqlite:///{os.getcwd()}/h.db")
    assert run_cli(monkeypatch, "run") == 1
    err = capsys.readouterr().err
    assert "not a bot token" in err and "not a token" not in err.replace("not a bot token", "")


async def test_a_refused_token_stops_at_start(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    fake = telegram_server
    fake.fail_next("getMe", 401)
    runtime = BotRuntime(app, make_test_bot(fake), scheduler=False, web=False)
    with pytest.raises(ConfigError, match="refused HOTLINE_TELEGRAM_TOKEN"):
        await runtime.run(handle_signals=False)
    assert fake.calls_to("getUpdates") == []


async def test_sigterm_finishes_the_send_in_flight_and_leaves_the_rest(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    fake = telegram_server
    bot: Bot = make_test_bot(fake)
    runtime = BotRuntime(app, bot, worker_id="term", polling_timeout=1, drain_timeout=5, web=False,
                         dispatcher_options={"limits": ChatLimits(per_chat_interval=5.0)})
    task = asyncio.create_task(runtime.run(handle_signals=True))
    await asyncio.wait_for(runtime.started.wait(), 10)
    fake.hang("sendMessage", 0.5)
    await add_rows(app, 77, ["đang gửi", "để lại trong outbox"])
    assert runtime.dispatcher is not None
    runtime.dispatcher.wake()
    await fake.wait_for_calls("sendMessage", 1)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 15)
    assert texts(fake, 77) == ["đang gửi"]
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all()
    assert [(r.status, r.claimed_by) for r in rows] == [("sent", None), ("pending", None)]
    # The signal handlers are gone again: the default action is back.
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)


async def test_zalo_bot_runs_alongside_telegram_when_configured(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    """Both intakes feed the one engine; the one dispatcher answers each on its own channel."""
    from tests.fakes.zalo_bot_api import FakeZaloBotServer

    async with FakeZaloBotServer() as zalo:
        app.settings = app.settings.model_copy(update={
            "zalo_bot_token": SecretStr(zalo.token), "zalo_bot_api_url": zalo.base_url,
        })
        runtime = BotRuntime(app, make_test_bot(telegram_server), worker_id="both", polling_timeout=1,
                             drain_timeout=5, scheduler=False, web=False,
                             dispatcher_options={"limits": ChatLimits(per_chat_interval=0.0)})
        assert runtime.dispatcher is not None and runtime.dispatcher.channels == ["telegram", "zalo_bot"]
        task = asyncio.create_task(runtime.run(handle_signals=False))
        try:
            await asyncio.wait_for(runtime.started.wait(), 10)
            zalo.queue_update(zalo.text_update("/start", chat_id="zchat1"))
            telegram_server.queue_update(telegram_server.command_update("start"))
            await zalo.wait_for_sent("zchat1", 1, within=10)
            await telegram_server.wait_for_calls("sendMessage", 1, within=10)
        finally:
            runtime.stop()
            await asyncio.wait_for(task, 15)
    assert "[1]" in zalo.sent_texts("zchat1")[0]  # buttons become numbered choices on Zalo
    assert telegram_server.sent_messages(1001)[0].buttons


async def test_a_taken_port_is_one_clear_error(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer
) -> None:
    import socket

    app.settings = app.settings.model_copy(update={"webhook_secret": SecretStr("s3cret")})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = BotRuntime(app, make_test_bot(telegram_server), webhook=True, port=port, scheduler=False,
                             web=False)
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            await runtime.run(handle_signals=False)
