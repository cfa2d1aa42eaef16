"""The inbox table's statements: record one update, find chats with work, take a chat's rows.

Recording is one ``INSERT ... ON CONFLICT DO NOTHING`` keyed on (channel, update id), so a
redelivery while the first copy waits is absorbed there; on PostgreSQL it runs in autocommit
(one round trip: the statement is its own transaction, durable when it returns).

Which worker processes a chat (PostgreSQL, several processes): a *session-level* advisory lock
per chat, taken with ``pg_try_advisory_lock`` on one connection each processor keeps for itself
(``ChatLocks``). The holder processes the chat's rows in ``id`` order and deletes them before
it lets go, so the next holder starts exactly where it stopped; a worker that dies loses its
connection and with it its locks, so its chats pass on at once -- no lease to expire. Two
chats hashing to the same key only take turns. Locks use the two-integer key space, which
never meets the scheduler's one-``bigint`` leader lock. On SQLite (one process per file) the
processors of the process take chats from one registry per database instead.

Processed rows are deleted by their (channel, update id), never by ``id``: SQLite gives a new
row the id of a deleted last row, so a stale id held by a slow processor could name an update
that arrived since and was never processed. The key cannot: a row with the same key is the
same update, whose effect is already committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.models import InboxEntry

log = logging.getLogger(__name__)

_TABLE = InboxEntry.__table__
#: First key of the advisory locks (the second is the chat key's hash): "inbx".
LOCK_SPACE = 0x696E6278


def _record(insert: Any) -> Any:
    return (insert(_TABLE)
            .values(channel=bindparam("channel"), update_id=bindparam("update_id"),
                    chat_key=bindparam("chat_key"), payload=bindparam("payload"),
                    received_at=bindparam("received_at"))
            .on_conflict_do_nothing(index_elements=["channel", "update_id"]))


_RECORD = {"sqlite": _record(sqlite.insert), "postgresql": _record(postgresql.insert)}
_HEADS = (select(_TABLE.c.chat_key).group_by(_TABLE.c.chat_key)
          .order_by(func.min(_TABLE.c.id)).limit(bindparam("limit")))
_ROWS = (select(_TABLE.c.channel, _TABLE.c.update_id, _TABLE.c.payload)
         .where(_TABLE.c.chat_key == bindparam("chat_key"))
         .order_by(_TABLE.c.id).limit(bindparam("limit")))
_DELETE = delete(_TABLE).where(
    tuple_(_TABLE.c.channel, _TABLE.c.update_id).in_(bindparam("keys", expanding=True)))
_COUNT = select(func.count()).select_from(_TABLE)


def chat_key(channel: str, chat_id: str) -> str:
    return f"{channel}:{chat_id}"[:90]


async def record(engine: AsyncEngine, *, channel: str, update_id: str, chat_id: str,
                 payload: str, now: datetime) -> None:
    """Store one raw update (a copy already waiting is left as it is); committed on return."""
    params = {"channel": channel, "update_id": update_id, "chat_key": chat_key(channel, chat_id),
              "payload": payload, "received_at": now}
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(_RECORD["postgresql"], params)
        return
    async with engine.begin() as conn:
        await conn.execute(_RECORD["sqlite"], params)


async def heads(engine: AsyncEngine, limit: int) -> list[str]:
    """Chats with rows waiting, the longest-waiting first."""
    async with engine.connect() as conn:
        rows = await conn.execute(_HEADS, {"limit": limit})
        keys = [row.chat_key for row in rows]
        await conn.rollback()
    return keys


async def rows_of(engine: AsyncEngine, key: str, limit: int) -> list[tuple[str, str, str]]:
    """A chat's waiting rows in arrival order: (channel, update id, payload)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_ROWS, {"chat_key": key, "limit": limit})).all()
        await conn.rollback()
    return [(str(r.channel), str(r.update_id), str(r.payload)) for r in rows]


async def forget(engine: AsyncEngine, keys: Sequence[tuple[str, str]]) -> None:
    """Delete processed updates, by (channel, update id) -- see the module on why not by row
    id. Their effect, and its ``inbound_updates`` mark, are committed."""
    if keys:
        async with engine.begin() as conn:
            await conn.execute(_DELETE, {"keys": list(keys)})


async def waiting(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(_COUNT) or 0)


class _Registry:
    """The chats being worked on in this process, per SQLite database file: two processors of
    one process (two runtimes on one file) never take the same chat at the same time."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # processors may run on different threads' loops
        self._held: dict[str, set[str]] = {}

    def take(self, database: str, keys: list[str]) -> list[str]:
        with self._mutex:
            held = self._held.setdefault(database, set())
            mine = [key for key in dict.fromkeys(keys) if key not in held]
            held.update(mine)
            return mine

    def give_back(self, database: str, keys: Iterable[str]) -> None:
        with self._mutex:
            self._held.get(database, set()).difference_update(keys)


_IN_PROCESS = _Registry()


class ChatLocks:
    """Which chats this processor may work on.

    SQLite (one process per file): a chat is taken from the process's registry for that file.
    PostgreSQL: session-level advisory locks on a connection of our own (see the module).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.shared = engine.dialect.name == "postgresql"
        self._database = engine.url.render_as_string(hide_password=True)
        self._mine: set[str] = set()
        self._conn: AsyncConnection | None = None
        self._mutex = asyncio.Lock()  # one statement at a time on the lock connection

    async def _connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = await self.engine.connect()
            self._conn = await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def try_lock(self, keys: Iterable[str]) -> list[str]:
        """The subset of ``keys`` now ours."""
        keys = list(keys)
        if not self.shared:
            mine = _IN_PROCESS.take(self._database, keys)
            self._mine.update(mine)
            return mine
        if not keys:
            return keys
        async with self._mutex:
            conn = await self._connection()
            try:
                rows = await conn.execute(
                    text("SELECT k FROM unnest(CAST(:keys AS text[])) AS k "
                         "WHERE pg_try_advisory_lock(:space, hashtext(k))"),
                    {"keys": keys, "space": LOCK_SPACE})
            except Exception:
                await self._drop()
                raise
            return [row.k for row in rows]

    async def unlock(self, key: str) -> None:
        if not self.shared:
            self._mine.discard(key)
            _IN_PROCESS.give_back(self._database, [key])
            return
        async with self._mutex:
            if self._conn is None:
                return
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:space, hashtext(:k))"),
                                         {"space": LOCK_SPACE, "k": key})
            except Exception:  # the connection is gone, and the lock with it
                log.warning("inbox: could not release a chat's lock; dropping the connection")
                await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
            except Exception:
                log.debug("inbox: lock connection already gone")

    async def close(self) -> None:
        """Let go of every lock (closing the session releases them all)."""
        if not self.shared:
            _IN_PROCESS.give_back(self._database, self._mine)
            self._mine.clear()
            return
        async with self._mutex:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))
                await conn.close()
            except Exception:
                await conn.invalidate()
