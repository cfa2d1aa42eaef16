"""Pytest fixtures for the fake Zalo servers; load with ``pytest_plugins`` in a test module:

    pytest_plugins = ["tests.fakes.zalo_fixtures"]

Each fixture starts its fake on 127.0.0.1 (random port) and closes it after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.zalo_bot_api import FakeZaloBotServer
from tests.fakes.zalo_oa_api import FakeZaloOAServer


@pytest.fixture
async def zalo_bot_server() -> AsyncIterator[FakeZaloBotServer]:
    async with FakeZaloBotServer() as server:
        yield server


@pytest.fixture
async def zalo_oa_server() -> AsyncIterator[FakeZaloOAServer]:
    async with FakeZaloOAServer() as server:
        yield server
