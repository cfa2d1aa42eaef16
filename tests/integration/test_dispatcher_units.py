"""The dispatcher's pure parts: per-chat limits, the overall pacer, splitting, backoff."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.dispatcher import OutboxDispatcher, default_splitters, html_splitter
from bot.ratelimit import ChatLimits, Pacer, is_group_chat
from hotline.messages import Button, OutboundMessage

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_group_chats_are_the_negative_telegram_ids() -> None:
    assert is_group_chat("telegram", "-1001234567890") and is_group_chat("telegram", "-42")
    assert is_group_chat("telegram", "@kenh_thong_bao")
    assert not is_group_chat("telegram", "1001") and not is_group_chat("zalo_bot", "-5")


def test_private_chat_waits_the_interval_after_the_last_send() -> None:
    limits = ChatLimits(per_chat_interval=1.0, group_per_minute=20)
    assert limits.allowed_at([], group=False) is None
    assert limits.allowed_at([(at(0), 1), (at(5), 1)], group=False) == at(6)


def test_group_chat_waits_for_the_oldest_of_the_last_twenty_to_leave_the_minute() -> None:
    limits = ChatLimits(per_chat_interval=1.0, group_per_minute=20)
    sends = [(at(i * 2), 1) for i in range(20)]  # 20 sends in 38 s
    assert limits.allowed_at(sends, group=True) == at(60)  # the first one leaves the window
    assert limits.allowed_at(sends[1:], group=True) == at(39)  # 19 so far: only the gap
    # A row sent in 3 pieces counts 3 times.
    pieces = [(at(0), 3), *[(at(i), 1) for i in range(1, 18)]]
    assert limits.allowed_at(pieces, group=True) == at(60)
    assert limits.piece_gap(True) == 3.0 and limits.piece_gap(False) == 1.0


@given(st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=60))
def test_following_allowed_at_never_breaks_either_limit(offsets: list[float]) -> None:
    """Whatever happened before, sending at ``allowed_at`` keeps <= 20 per minute and >= 1 s."""
    limits = ChatLimits(per_chat_interval=1.0, group_per_minute=20)
    history = [(at(x), 1) for x in sorted(offsets)]
    nxt = limits.allowed_at(history, group=True)
    assert nxt is not None
    assert nxt >= history[-1][0] + timedelta(seconds=1)
    window = [t for t, _ in history if t > nxt - timedelta(minutes=1)]
    assert len(window) <= 19


async def test_pacer_spaces_calls_and_pauses_everyone() -> None:
    pacer = Pacer(50)  # 20 ms apart
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await pacer.acquire()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(6)))
    assert all(b - a >= 0.0195 for a, b in itertools.pairwise(times))
    pacer.pause(0.2)
    assert 0.15 < pacer.paused_for <= 0.2
    start = loop.time()
    await one()
    assert loop.time() - start >= 0.195
    with pytest.raises(ValueError):
        Pacer(0)


def test_html_splitter_moves_buttons_to_the_last_piece_and_retires_with_the_first() -> None:
    text = "\n".join(f"<b>mục {i}</b> nội dung" for i in range(40))
    message = OutboundMessage(channel="telegram", chat_id="1", text=text,
                              buttons=((Button("OK", "ok:1"),),), retire_buttons_of="9")
    pieces = html_splitter(200)(message)
    assert len(pieces) > 2
    assert [bool(p.buttons) for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert [p.retire_buttons_of for p in pieces] == ["9"] + [None] * (len(pieces) - 1)
    assert all(len(p.text) <= 200 for p in pieces)
    short = OutboundMessage(channel="telegram", chat_id="1", text="ngắn")
    assert html_splitter(200)(short) == [short]
    photo = OutboundMessage(channel="telegram", chat_id="1", text=text, photo="charts/week.png")
    assert html_splitter(200)(photo) == [photo]  # media: the sender decides


def test_only_telegram_senders_get_a_splitter() -> None:
    class Telegramish:
        channel, message_limit = "telegram", 4096

        async def send(self, message: OutboundMessage) -> object: ...

    class Other:
        async def send(self, message: OutboundMessage) -> object: ...

    found = default_splitters({"telegram": Telegramish(), "zalo_bot": Other()})  # type: ignore[dict-item]
    assert set(found) == {"telegram"}


def test_backoff_doubles_up_to_the_cap(app: object) -> None:
    class Nothing:
        async def send(self, message: OutboundMessage) -> object: ...

    dispatcher = OutboxDispatcher(app, {"telegram": Nothing()}, backoff_base=1.0, backoff_cap=10.0,  # type: ignore[arg-type,dict-item]
                                  jitter=0.0)
    assert [dispatcher.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    jittery = OutboxDispatcher(app, {"telegram": Nothing()}, backoff_base=1.0, jitter=0.1)  # type: ignore[arg-type,dict-item]
    assert all(4.0 <= jittery.backoff(3) <= 4.4 for _ in range(50))
    with pytest.raises(ValueError):
        OutboxDispatcher(app, {})  # type: ignore[arg-type]
