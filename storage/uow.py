"""Unit of work: one database transaction, with the repositories that work inside it.

Callers (the engine per inbound event, a CLI command, a sweep) open one, call services, and
commit once, so a state change, its events and its outbox messages land together or not at all.
"""

from __future__ import annotations

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
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    async def flush(self) -> None:
        await self.session.flush()
