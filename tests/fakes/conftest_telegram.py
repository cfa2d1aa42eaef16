"""Pytest fixtures for the fake Telegram Bot API.

Load them as a plugin, in a test module or (better, once) in ``tests/conftest.py``::

    pytest_plugins = ["tests.fakes.conftest_telegram"]

(importing the fixture functions by name also works but trips ruff's F811 on every test.)

``telegram_server`` is a started ``FakeTelegramServer`` on 127.0.0.1 (random port), torn down
after the test; ``telegram_bot`` is a real aiogram ``Bot`` talking to it over HTTP with a
5-second request timeout, so a test never waits on a hung call longer than that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot

from tests.fakes.telegram_api import FakeTelegramServer, make_test_bot


@pytest.fixture
async def telegram_server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def telegram_bot(telegram_server: FakeTelegramServer) -> AsyncIterator[Bot]:
    bot = make_test_bot(telegram_server)
    try:
        yield bot
    finally:
        await bot.session.close()
