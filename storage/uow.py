"""Unit of work: one database transaction, with the repositories that work inside it.

Callers (the engine per inbound event, a CLI command, a sweep) open one, call services, and
commit once, so a state change, its events and its outbox messages land together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories import (
    ConversationRepository,
    EventRepository,
    OutboxRepository,
    PeopleRepository,
    TicketRepository,
)


class UnitOfWork:
    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.tickets = TicketRepository(self.session)
        self.events = EventRepository(self.session)
        self.people = PeopleRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.conversations = ConversationRepository(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back anything uncommitted. An explicit rollback() first would also
        # expire every loaded object, so rows a caller returns from the unit of work (a ticket
        # read for display) could no longer be read once detached.
        await self.session.close()

    async def commit(self) -> None:
        await self.outbox.flush()
        await self.session.commit()

    async def rollback(self) -> None:
        self.outbox.discard()
        await self.session.rollback()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: if the block raises, its writes -- queued outbox rows
        included -- are undone and the rest of the unit of work goes on. Rows queued before it
        are written first, so a flush inside cannot carry them into the rolled-back part, and
        whatever is still queued when the block fails was queued inside it."""
        await self.outbox.flush()
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            self.outbox.discard()
            raise

    async def flush(self) -> None:
        """Write everything pending: ORM changes, then queued outbox rows."""
        await self.session.flush()
        await self.outbox.flush()
