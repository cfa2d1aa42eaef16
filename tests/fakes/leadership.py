"""Scheduler leadership stand-ins (the real one is a PostgreSQL advisory lock or, on SQLite,
always granted): lets a test run a scheduler that is never the leader."""

from __future__ import annotations


class Never:
    """A follower that never wins the election."""

    is_leader = False

    async def refresh(self) -> bool:
        return False

    async def release(self) -> None:
        return None
