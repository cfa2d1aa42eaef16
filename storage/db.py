"""Engine and session factory; the only place that knows which database is behind the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hotline.errors import ConfigError
from storage import sqlite_driver
from storage.models import Base


def normalise_url(url: str) -> str:
    """Accept the URLs operators copy from docs (``postgresql://``, ``sqlite:///``)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        url = "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def create_engine(url: str, *, echo: bool = False, read_only: bool = False, **kwargs: Any) -> AsyncEngine:
    """``read_only`` (SQLite): plain deferred, ``query_only`` transactions, for readers that
    must never hold the write lock (the web); PostgreSQL readers never block writers anyway."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"invalid HOTLINE_DATABASE_URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"database folder does not exist: {parent}")
        # One thread hand-off per statement instead of three or four (see sqlite_driver).
        engine = create_async_engine(
            url, echo=echo,
            connect_args={"timeout": 30, "async_creator_fn": sqlite_driver.connect}, **kwargs
        )
        _configure_sqlite(engine, read_only=read_only)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        return create_async_engine(url, echo=echo, **kwargs)
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")


#: WAL lets the dispatcher read while the engine writes; foreign keys are off by default.
_WRITER_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL")
#: In WAL mode a deferred reader sees a consistent snapshot and never blocks a writer.
_READER_PRAGMAS = ("busy_timeout=30000", "query_only=ON")


def _configure_sqlite(engine: AsyncEngine, *, read_only: bool = False) -> None:
    pragmas = _READER_PRAGMAS if read_only else _WRITER_PRAGMAS
    # IMMEDIATE takes the write lock up front: no deadlocks between readers upgrading to writers.
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # aiosqlite's own transaction handling is disabled so SQLAlchemy's BEGIN is the real one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Sent together with the transaction's first statement (see sqlite_driver).
        conn.connection.driver_connection.begin_on_next = begin


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def create_schema(engine: AsyncEngine) -> None:
    """Create all tables directly (tests, demo); production uses ``hotline db upgrade``."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def drop_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)


def dialect_of(session: AsyncSession) -> str:
    """The session's database ("sqlite" or "postgresql"; an unbound session counts as SQLite)."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT into ``table`` for the session's database, with ``on_conflict_do_nothing`` /
    ``on_conflict_do_update`` (SQLite and PostgreSQL spell them alike; the generic insert has
    neither)."""
    return (postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert)(table)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached (refused or lost connection,
    server starting up or shutting down): a passing condition, unlike a failing statement.
    asyncpg is imported here, not at the top, so a SQLite-only process never loads it."""
    import asyncpg

    transient: tuple[type[BaseException], ...] = (
        ConnectionError, TimeoutError,
        asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
    )
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return False
        if isinstance(current, transient) or getattr(current, "connection_invalidated", False):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
