"""Scheduler leadership: with several processes on one PostgreSQL database, one runs the jobs.

Leadership is a PostgreSQL *session-level* advisory lock held on a dedicated connection. The
lock lives exactly as long as that database session, so a leader that dies (crash, SIGKILL,
lost network) releases it without anybody's help, and a follower's next periodic attempt takes
over. No lease table, no clock skew, no heartbeat rows to clean up.

Being a leader is a hint, not the safety net: the sweep is correct with two leaders at once
(unique escalation keys) and digests are idempotent per period, so the brief overlap while a
dead connection is being noticed is harmless.

SQLite is single-process by design (one file, one writer), so there the process always leads.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def lock_key(name: str = "blocker-hotline:scheduler") -> int:
    """A stable signed 64-bit key (advisory locks are per database, so one name suffices)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    async def refresh(self) -> bool:
        """Keep or try to take leadership; returns whether this process leads now."""
        ...

    async def release(self) -> None: ...


class SingleProcessLeadership:
    """SQLite: the only process is the leader."""

    def __init__(self) -> None:
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    async def refresh(self) -> bool:
        self._leader = True
        return True

    async def release(self) -> None:
        self._leader = False


class AdvisoryLockLeadership:
    """PostgreSQL: ``pg_try_advisory_lock`` on a connection kept out of the pool's rotation."""

    def __init__(self, engine: AsyncEngine, key: int | None = None) -> None:
        self._engine = engine
        self._key = lock_key() if key is None else key
        self._conn: AsyncConnection | None = None

    @property
    def is_leader(self) -> bool:
        return self._conn is not None

    @property
    def key(self) -> int:
        return self._key

    async def refresh(self) -> bool:
        if self._conn is not None:
            try:
                # A broken session has lost the lock with it; find out before acting as leader.
                await self._conn.execute(text("SELECT 1"))
                return True
            except Exception as exc:
                log.warning("scheduler leadership lost (%s); will try to take it again", exc)
                await self._discard()
        return await self._try_take()

    async def _try_take(self) -> bool:
        conn: AsyncConnection | None = None
        try:
            conn = await self._engine.connect()
            # Autocommit: the lock is session-level, and an idle-in-transaction session could
            # be killed by the server's idle_in_transaction_session_timeout.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
            ).scalar_one()
        except Exception as exc:
            log.warning("cannot reach the database to elect a scheduler leader: %s", exc)
            if conn is not None:
                await _close_quietly(conn, invalidate=True)
            return False
        if got:
            self._conn = conn
            log.info("this process is now the scheduler leader")
            return True
        await _close_quietly(conn)
        return False

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except Exception:
            await _close_quietly(conn, invalidate=True)
            return
        await _close_quietly(conn)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close_quietly(conn, invalidate=True)


async def _close_quietly(conn: AsyncConnection, *, invalidate: bool = False) -> None:
    try:
        if invalidate:
            await conn.invalidate()
        await conn.close()
    except Exception:  # the connection is being thrown away; nothing useful to report
        pass


def make_leadership(engine: AsyncEngine) -> Leadership:
    if engine.dialect.name == "postgresql":
        return AdvisoryLockLeadership(engine)
    return SingleProcessLeadership()
