"""The outbox dispatcher against the fake Bot API: order, limits, retries, failures, leases.

Rows are written the way services write them (``hotline.services.notify.enqueue``) and sent
by the real ``TelegramSender`` over aiogram and loopback HTTP, so "delivered" means the fake
Telegram stored the message. Timing assertions use the fake's receive times (loop time).

The dispatcher needs a running clock (it decides what is due and paces chats from
``sent_at``), so these tests swap the frozen test clock for ``RunningClock``: the same
Monday-morning start, moving with real time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiogram import Bot
from sqlalchemy import select

from bot.delivery import DeliveryResult
from bot.dispatcher import OutboxDispatcher
from bot.ratelimit import ChatLimits
from bot.telegram.sender import TelegramSender
from hotline.clock import ManualClock, ensure_utc
from hotline.deps import App
from hotline.messages import Button, OutboundMessage
from hotline.services.notify import enqueue
from hotline.text import split_message
from storage.models import Contact, OutboxMessage
from tests.fakes.telegram_api import FakeTelegramServer

pytestmark = pytest.mark.timeout(60)


class RunningClock:
    """Starts at a chosen instant and moves with real (monotonic) time; ``advance`` jumps."""

    def __init__(self, start: datetime) -> None:
        self._start = ensure_utc(start)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)

    def advance(self, **kwargs: float) -> None:
        self._start += timedelta(**kwargs)


def running_clock(app: App) -> RunningClock:
    """Replace the app's frozen clock (before anything is written) with a running one."""
    start = app.clock.now() if isinstance(app.clock, ManualClock) else None
    clock = RunningClock(start or datetime(2026, 12, 7, 2, 0).astimezone())
    app.clock = clock
    return clock


async def add_rows(
    app: App,
    chat_id: int | str,
    texts: Sequence[str],
    *,
    channel: str = "telegram",
    contact_id: int | None = None,
    not_before: datetime | None = None,
    buttons: tuple[tuple[Button, ...], ...] = (),
    **fields: Any,
) -> list[int]:
    """Queue one row per text, in one transaction, as a service would."""
    async with app.uow() as uow:
        now = app.clock.now()
        rows = [
            enqueue(
                uow,
                OutboundMessage(channel=channel, chat_id=str(chat_id), text=text, buttons=buttons, **fields),
                now=now,
                contact_id=contact_id,
                not_before=not_before,
            )
            for text in texts
        ]
        await uow.commit()
        return [row.id for row in rows]


async def outbox_rows(app: App) -> dict[int, OutboxMessage]:
    async with app.uow() as uow:
        found = (await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return {row.id: row for row in found}


async def add_contact(app: App, chat_id: int) -> int:
    async with app.uow() as uow:
        contact = Contact(channel="telegram", external_id=str(chat_id), chat_id=str(chat_id),
                          active=True, created_at=app.clock.now())
        uow.session.add(contact)
        await uow.commit()
        return contact.id


def make_dispatcher(app: App, bot: Bot, **options: Any) -> OutboxDispatcher:
    options.setdefault("poll_interval", 0.2)
    options.setdefault("jitter", 0.0)
    return OutboxDispatcher(app, {"telegram": TelegramSender(bot, timeout=5)}, **options)


@asynccontextmanager
async def running(dispatcher: OutboxDispatcher) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


async def wait_until(predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Poll ``predicate`` (state changed by other tasks and the fake server) until true."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 -- the state has no event to wait on
            await asyncio.sleep(0.01)


def texts(fake: FakeTelegramServer, chat_id: int | str) -> list[str]:
    return [m.text or "" for m in fake.sent_messages(chat_id)]


def send_times(fake: FakeTelegramServer, chat_id: int | str) -> list[float]:
    return [c.received_at for c in fake.calls_to("sendMessage") if c.params.get("chat_id") == chat_id]


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.fixture
def clock_running(app: App) -> RunningClock:
    return running_clock(app)


# --- order and pace ---------------------------------------------------------------------------


async def test_burst_to_one_chat_keeps_order_and_gap(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """200 messages to one chat: all delivered, once, in order, never closer than the gap."""
    interval = 0.05
    fake = telegram_server
    wanted = [f"tin nhắn {i:03d}" for i in range(200)]
    await add_rows(app, 4242, wanted)
    async with running(make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=interval))):
        await wait_until(lambda: len(fake.sent_messages(4242)) >= 200, within=40)
    assert texts(fake, 4242) == wanted
    assert min(gaps(send_times(fake, 4242))) >= interval
    rows = await outbox_rows(app)
    assert {r.status for r in rows.values()} == {"sent"}
    assert all(r.attempts == 1 and r.claimed_by is None for r in rows.values())


async def test_real_one_second_gap_per_private_chat(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """The default setting (1 s per private chat) on a few messages; other chats are not held up."""
    fake = telegram_server
    assert app.settings.outbox_per_chat_interval == 1.0
    await add_rows(app, 7, ["một", "hai", "ba"])
    await add_rows(app, 8, ["khác"])
    async with running(make_dispatcher(app, telegram_bot)):
        await wait_until(lambda: len(fake.sent_messages(7)) == 3, within=10)
    assert texts(fake, 7) == ["một", "hai", "ba"] and texts(fake, 8) == ["khác"]
    assert min(gaps(send_times(fake, 7))) >= 1.0
    assert send_times(fake, 8)[0] < send_times(fake, 7)[1]


async def test_held_rows_do_not_block_and_go_when_due(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """A row held for working hours stays back; the chat's later replies are not held with it.
    Rows of other channels (console) are left for their own consumer."""
    fake = telegram_server
    later = clock_running.now() + timedelta(hours=1)
    await add_rows(app, 11, ["nhắc việc lúc 8 giờ"], not_before=later)
    await add_rows(app, 11, ["trả lời ngay", "trả lời tiếp"])
    await add_rows(app, "alice", ["console"], channel="console")
    dispatcher = make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0))
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    assert texts(fake, 11) == ["trả lời ngay", "trả lời tiếp"]
    clock_running.advance(hours=1, seconds=1)
    assert await dispatcher.run_once() == 1
    assert texts(fake, 11)[-1] == "nhắc việc lúc 8 giờ"
    rows = await outbox_rows(app)
    assert [r.status for r in rows.values()] == ["sent", "sent", "sent", "pending"]


async def test_many_chats_in_parallel_each_in_order(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    chats = list(range(301, 321))
    for round_ in range(3):
        for chat in chats:
            await add_rows(app, chat, [f"{chat}-{round_}"])
    async with running(make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=0.02))):
        await wait_until(lambda: sum(len(fake.sent_messages(c)) for c in chats) >= 60)
    for chat in chats:
        assert texts(fake, chat) == [f"{chat}-{r}" for r in range(3)]
    # The overall pace (30/s by default): no 31 calls within one second (sends are spaced
    # evenly when they leave; loopback jitter of a few ms is allowed for on arrival).
    times = sorted(c.received_at for c in fake.calls_to("sendMessage"))
    assert min(later - earlier for earlier, later in zip(times, times[30:], strict=False)) >= 0.97


# --- failures ---------------------------------------------------------------------------------


async def test_retry_after_storm_delays_but_loses_nothing(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    await add_rows(app, 21, ["a", "b", "c"])
    await add_rows(app, 22, ["x", "y"])
    fake.fail_next("sendMessage", 429, times=3, retry_after=1)
    dispatcher = make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0))
    async with running(dispatcher):
        await wait_until(lambda: len(fake.sent_messages(21)) == 3 and len(fake.sent_messages(22)) == 2)
    assert texts(fake, 21) == ["a", "b", "c"] and texts(fake, 22) == ["x", "y"]
    calls = fake.calls_to("sendMessage")
    assert len(calls) == 5 + 3
    # After a 429 nothing was sent for retry_after seconds.
    refused = calls[:3]
    accepted = calls[3:]
    assert accepted[0].received_at - refused[-1].received_at >= 1.0
    rows = await outbox_rows(app)
    assert {r.status for r in rows.values()} == {"sent"}
    assert all(r.attempts == 1 for r in rows.values())  # 429 is not a failed attempt
    assert dispatcher.counts["retry_after"] == 3 and dispatcher.counts["sent"] == 5


async def test_server_errors_back_off_then_succeed(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    await add_rows(app, 31, ["một", "hai"])
    fake.fail_next("sendMessage", 502, times=3)
    dispatcher = make_dispatcher(
        app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0), backoff_base=0.1, backoff_cap=0.25
    )
    async with running(dispatcher):
        await wait_until(lambda: len(fake.sent_messages(31)) == 2)
    assert texts(fake, 31) == ["một", "hai"]  # the second waited for the first's retries
    tries = [c.received_at for c in fake.calls_to("sendMessage")]
    assert len(tries) == 5
    waits = gaps(tries[:4])
    assert waits[0] >= 0.1 and waits[1] >= 0.2 and 0.25 <= waits[2] < 1.0  # doubled, capped
    first = next(iter((await outbox_rows(app)).values()))
    assert first.status == "sent" and first.attempts == 4 and "Bad Gateway" in (first.last_error or "")


async def test_gives_up_after_max_attempts_and_moves_on(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    await add_rows(app, 32, ["không tới", "tới"])
    fake.fail_next("sendMessage", 500, times=3)
    dispatcher = make_dispatcher(
        app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0), backoff_base=0.02, max_attempts=3
    )
    async with running(dispatcher):
        await wait_until(lambda: len(fake.sent_messages(32)) == 1)
    assert texts(fake, 32) == ["tới"]
    first, second = (await outbox_rows(app)).values()
    assert (first.status, first.attempts, second.status) == ("failed", 3, "sent")
    assert "Internal Server Error" in (first.last_error or "")


async def test_blocked_bot_marks_contact_inactive_and_stops(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    contact_id = await add_contact(app, 41)
    await add_rows(app, 41, ["một", "hai", "ba"], contact_id=contact_id)
    later = clock_running.now() + timedelta(minutes=5)
    await add_rows(app, 41, ["sáng mai"], contact_id=contact_id, not_before=later)
    await add_rows(app, 42, ["người khác"])
    fake.fail_chat(41, 403)
    dispatcher = make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0))
    for _ in range(3):
        await dispatcher.run_once()
    assert [c.params["chat_id"] for c in fake.calls_to("sendMessage")].count(41) == 1  # one try only
    assert texts(fake, 42) == ["người khác"]
    rows = list((await outbox_rows(app)).values())
    assert [r.status for r in rows[:3]] == ["undeliverable"] * 3
    assert "blocked" in (rows[0].last_error or "")
    async with app.uow() as uow:
        assert (await uow.session.get(Contact, contact_id)).active is False  # type: ignore[union-attr]
    # The held row, once due, is not even tried while the contact is inactive.
    clock_running.advance(minutes=6)
    await dispatcher.run_once()
    assert [c.params["chat_id"] for c in fake.calls_to("sendMessage")].count(41) == 1
    assert (await outbox_rows(app))[rows[3].id].status == "undeliverable"


async def test_bad_markup_falls_back_to_plain_text_once(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    await add_rows(app, 51, ["<b>Phiếu</b> <foo>HL-2026-000001</foo> &amp; xong"])
    fake.fail_next("sendMessage", 400, times=1)
    dispatcher = make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0))
    await dispatcher.run_once()
    [sent] = fake.sent_messages(51)
    assert sent.parse_mode is None and sent.text == "Phiếu HL-2026-000001 & xong"
    assert len([c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 51]) == 2
    # Refused as plain text too: failed after exactly two tries, never a third.
    await add_rows(app, 52, ["<b>bad</b>"])
    fake.fail_next("sendMessage", 400, times=2)
    await dispatcher.run_once()
    assert fake.sent_messages(52) == []
    rows = list((await outbox_rows(app)).values())
    assert [r.status for r in rows] == ["sent", "failed"]
    assert len([c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 52]) == 2
    assert "parse entities" in (rows[1].last_error or "")


async def test_permanent_errors_fail_the_row_and_the_chat_goes_on(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    fake = telegram_server
    too_long = (Button("x", "p" * 65),)
    await add_rows(app, 61, ["nút quá dài"], buttons=(too_long,))
    await add_rows(app, 61, ["chat không tồn tại"])
    await add_rows(app, 61, ["sau đó"])
    fake.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    dispatcher = make_dispatcher(app, telegram_bot, limits=ChatLimits(per_chat_interval=0.0))
    for _ in range(3):
        await dispatcher.run_once()
    rows = list((await outbox_rows(app)).values())
    assert [r.status for r in rows] == ["failed", "failed", "sent"]
    assert "CallbackDataTooLong" in (rows[0].last_error or "")
    assert "chat not found" in (rows[1].last_error or "")
    assert texts(fake, 61) == ["sau đó"]


async def test_split_message_resumes_after_the_delivered_pieces(
    app: App, clock_running: RunningClock, telegram_server: FakeTelegramServer, telegram_bot: Bot
) -> None:
    """A 3-piece text whose 2nd piece hits a 5xx: the retry sends pieces 2 and 3 only; the
    buttons ride on the last piece and the old keyboard is retired with the first."""
    fake = telegram_server
    old = fake.message(chat=fake.private_chat(fake.user(71)), text="cũ",
                       reply_markup={"inline_keyboard": [[{"text": "OK", "callback_data": "ok:1"}]]})
    old["from"] = fake.bot_user
    lines = [f"<b>Dòng {i:04d}</b> nội dung khá dài để chia nhỏ tin nhắn" for i in range(170)]
    body = "\n".join(lines)
    assert len(split_message(body)) == 3
    await add_rows(app, 71, [body], buttons=((Button("Xác nhận", "cfm:HL-2026-000001"),),),
                   retire_buttons_of=str(old["message_id"]))

    class FailSecond:
        """Lets the first piece through, then makes the next call fail once."""

        def __init__(self, inner: TelegramSender) -> None:
            self.inner, self.calls = inner, 0
            self.channel, self.message_limit = "telegram", inner.message_limit

        async def send(self, message: OutboundMessage) -> DeliveryResult:
            self.calls += 1
            if self.calls == 2:
                fake.fail_next("sendMessage", 500)
            return await self.inner.send(message)

    sender = FailSecond(TelegramSender(telegram_bot, timeout=5))
    dispatcher = OutboxDispatcher(app, {"telegram": sender}, limits=ChatLimits(per_chat_interval=0.0),
                                  backoff_base=0.05, jitter=0.0, poll_interval=0.1)
    assert await dispatcher.run_once() == 1
    row = next(iter((await outbox_rows(app)).values()))
    assert (row.status, row.parts_sent, row.attempts) == ("pending", 1, 1)
    await asyncio.sleep(0.1)
    assert await dispatcher.run_once() == 1
    sent = fake.sent_messages(71)
    assert len(sent) == 3 and all(s.html and s.html.count("<b>") == s.html.count("</b>") for s in sent)
    assert "".join((s.text or "") + "\n" for s in sent).strip() == "\n".join(
        line.replace("<b>", "").replace("</b>", "") for line in lines
    )
    assert [bool(s.buttons) for s in sent] == [False, False, True]
    assert "reply_markup" not in old  # retired
    assert len(fake.calls_to("editMessageReplyMarkup")) == 1
    row = next(iter((await outbox_rows(app)).values()))
    assert (row.status, row.parts_sent) == ("sent", 3)


async def test_a_sender_that_raises_is_retried_then_failed(app: App, clock_running: RunningClock) -> None:
    """A crashing sender (a bug) never stops the loop: the row backs off like a 5xx."""

    class Broken:
        calls = 0

        async def send(self, message: OutboundMessage) -> DeliveryResult:
            Broken.calls += 1
            raise RuntimeError("boom")

    await add_rows(app, 91, ["x"])
    dispatcher = OutboxDispatcher(app, {"telegram": Broken()}, max_attempts=2, backoff_base=0.05,
                                  jitter=0.0, limits=ChatLimits(per_chat_interval=0.0))
    assert await dispatcher.run_once() == 1
    await asyncio.sleep(0.06)
    assert await dispatcher.run_once() == 1
    [row] = (await outbox_rows(app)).values()
    assert (row.status, row.attempts, Broken.calls) == ("failed", 2, 2)
    assert "RuntimeError: boom" in (row.last_error or "")
