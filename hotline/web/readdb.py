"""Sessions for the web's reads, which must never hold up the bot's writes.

The shared SQLite engine opens every transaction with ``BEGIN IMMEDIATE`` (the write lock up
front, so the engine's read-then-write transactions cannot deadlock). A dashboard computing a
year of figures inside such a transaction would block every chat message for seconds. So on
SQLite the web reads through an engine of its own whose transactions are plain deferred,
``query_only`` ones: in WAL mode they see a consistent snapshot and never block writers.
PostgreSQL readers never block writers anyway, so there the application's sessions are used,
except by the worker thread (``worker``), whose event loop needs connections of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hotline.config import Settings
from hotline.deps import Deps
from storage.db import create_engine, make_sessionmaker, normalise_url


@dataclass
class ReadApp(Deps):
    """The ``Deps`` plus read-only sessions: what the digest loaders expect of an ``app``."""

    sessions: Any = None


def in_memory(settings: Settings) -> bool:
    url = make_url(normalise_url(settings.database_url))
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


class ReadDatabase:
    """``sessions`` for reading; ``shared`` are the application's, used where nothing better
    is needed (PostgreSQL on the serving loop, an in-memory SQLite database)."""

    def __init__(self, settings: Settings, shared: Any = None, *, own_engine: bool = False) -> None:
        self._engine: AsyncEngine | None = None
        url = make_url(normalise_url(settings.database_url))
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._engine = create_engine(settings.database_url, read_only=True)
            self.sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(self._engine)
        elif own_engine and url.get_backend_name() == "postgresql":
            self._engine = create_engine(settings.database_url, pool_size=2, max_overflow=2)
            self.sessions = make_sessionmaker(self._engine)
        else:
            self.sessions = shared

    def reader(self, deps: Deps) -> ReadApp:
        return ReadApp(settings=deps.settings, clock=deps.clock, calendar=deps.calendar,
                       taxonomy=deps.taxonomy, sessions=self.sessions)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
