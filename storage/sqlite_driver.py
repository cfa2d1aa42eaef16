"""aiosqlite with one thread hand-off per statement instead of three or four.

aiosqlite runs every sqlite3 call on its connection's own thread and wakes the event loop with
the result. SQLAlchemy's async adapter makes a separate call for each step of a statement --
create a cursor, execute, fetch the rows, close the cursor -- so a chat message's half-dozen
statements cost some twenty round trips between the threads. On a small machine those hand-offs,
not SQLite, were most of an inbound event's time (the event loop sat idle waiting for them).

This connection keeps aiosqlite's model (SQLite work never runs on the event loop, so a slow
query or a busy wait for another process's lock cannot stall the bot) and only merges the steps:
the cursor is made on the connection's thread with its first statement, ``execute`` brings back
up to ``PREFETCH`` rows in the same hand-off, and closing a cursor whose statement has finished
needs no hand-off at all (sqlite3 has already reset the statement). Larger results are fetched
in further hand-offs, so streaming reads still stream.

The transaction's ``BEGIN`` travels with its first statement too: SQLAlchemy's ``begin`` event
only notes it (``begin_on_next``), the connection's thread runs it just before that statement,
and a transaction that ran no statement commits or rolls back without a hand-off.

It plugs in through SQLAlchemy's documented ``async_creator_fn`` connect argument of the
``sqlite+aiosqlite`` dialect; everything else (pool, dialect, transactions) is unchanged.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

#: Rows brought back together with ``execute``; results this small need no second hand-off.
PREFETCH = 256


class FewHopCursor(aiosqlite.Cursor):
    def __init__(self, conn: FewHopConnection) -> None:
        super().__init__(conn, None)  # type: ignore[arg-type]  # made on the thread, see _run
        self._buffer: deque[Any] = deque()
        #: The statement may have more rows than the buffer holds.
        self._more = False

    def _run(self, many: bool, sql: str, parameters: Any) -> tuple[list[Any], bool]:
        """Runs on the connection's thread: execute, and fetch the first rows if any."""
        if self._cursor is None:
            self._cursor = self._conn._conn.cursor()
        begin, self._conn.begin_on_next = self._conn.begin_on_next, None
        if begin is not None:
            self._cursor.execute(begin)
        if many:
            self._cursor.executemany(sql, parameters)
        else:
            self._cursor.execute(sql, parameters)
        if self._cursor.description is None:
            return [], False
        rows = self._cursor.fetchmany(PREFETCH)
        return rows, len(rows) == PREFETCH

    async def _start(self, many: bool, sql: str, parameters: Any) -> FewHopCursor:
        rows, self._more = await self._execute(self._run, many, sql, parameters)
        self._buffer = deque(rows)
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> FewHopCursor:
        return await self._start(False, sql, [] if parameters is None else parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> FewHopCursor:
        return await self._start(True, sql, parameters)

    async def executescript(self, sql_script: str) -> FewHopCursor:
        if self._cursor is None:
            self._cursor = await self._execute(self._conn._conn.cursor)
        self._conn.begin_on_next = None  # sqlite3 commits before a script anyway
        self._buffer, self._more = deque(), False
        await super().executescript(sql_script)
        return self

    async def fetchone(self) -> Any:
        if self._buffer:
            return self._buffer.popleft()
        if not self._more:
            return None
        row = await super().fetchone()
        self._more = row is not None
        return row

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            size = self._cursor.arraysize if self._cursor is not None else 1
        out = [self._buffer.popleft() for _ in range(min(size, len(self._buffer)))]
        if len(out) < size and self._more:
            more = list(await super().fetchmany(size - len(out)))
            self._more = len(more) == size - len(out)
            out += more
        return out

    async def fetchall(self) -> list[Any]:
        out = list(self._buffer)
        self._buffer.clear()
        if self._more:
            out += list(await super().fetchall())
            self._more = False
        return out

    async def close(self) -> None:
        # A finished statement was reset by sqlite3 when its last row was read; only a cursor
        # left in the middle of a result holds anything (a read snapshot) worth a hand-off.
        self._buffer.clear()
        if self._cursor is not None and self._more:
            self._more = False
            await super().close()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None


class FewHopConnection(aiosqlite.Connection):
    #: The ``BEGIN`` statement to run on the thread before the next statement, if any.
    begin_on_next: str | None = None

    async def commit(self) -> None:
        if self.begin_on_next is not None:  # nothing ran: no transaction was opened
            self.begin_on_next = None
            return
        await super().commit()

    async def rollback(self) -> None:
        if self.begin_on_next is not None:
            self.begin_on_next = None
            return
        await super().rollback()

    @contextmanager
    async def cursor(self) -> FewHopCursor:  # type: ignore[override]
        return FewHopCursor(self)


def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> FewHopConnection:
    """``aiosqlite.connect`` with the few-hop cursor (SQLAlchemy awaits the result)."""
    connection = FewHopConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection
