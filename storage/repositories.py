"""Queries, kept out of services so the services read as business steps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hotline.domain.enums import OPEN_STATES, OutboxStatus, Role
from storage.conversation_state import ConversationState
from storage.db import dialect_of
from storage.models import (
    Contact,
    Conversation,
    InboundUpdate,
    OutboxMessage,
    OwnerGroup,
    Person,
    Ticket,
    TicketCounter,
    TicketEvent,
)

log = logging.getLogger(__name__)

_OPEN = [s.value for s in OPEN_STATES]


# The statements every inbound event runs are built once, with bound parameters: building a
# statement and its cache key costs more CPU than executing it (measured: a fresh caller query
# 970 µs, the same one built once 440 µs). They are immutable, so sharing them is safe.


# Core tables, not the ORM classes: an ORM insert given a parameter dict is a bulk insert.
def _claim_update(insert: Any) -> Any:
    return (insert(InboundUpdate.__table__)
            .values(channel=bindparam("channel"), update_id=bindparam("update_id"),
                    received_at=bindparam("received_at"))
            .on_conflict_do_nothing(index_elements=["channel", "update_id"]))


def _next_seq(insert: Any) -> Any:
    counters = TicketCounter.__table__
    return (insert(counters)
            .values(year=bindparam("year"), last_seq=1)
            .on_conflict_do_update(index_elements=[counters.c.year],
                                   set_={"last_seq": counters.c.last_seq + 1})
            .returning(counters.c.last_seq))


def _store_conversation(insert: Any) -> Any:
    table = Conversation.__table__
    stmt = insert(table).values(channel=bindparam("channel"), external_id=bindparam("external_id"),
                                step=bindparam("step"), data=bindparam("data"),
                                updated_at=bindparam("updated_at"))
    return (stmt.on_conflict_do_update(index_elements=[table.c.channel, table.c.external_id],
                                       set_={"step": stmt.excluded.step, "data": stmt.excluded.data,
                                             "updated_at": stmt.excluded.updated_at})
            .returning(table.c.id))


def _per_dialect(build: Any) -> dict[str, Any]:
    """``build``'s statement for each database, chosen per session with ``dialect_of``."""
    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


_CLAIM_UPDATE = _per_dialect(_claim_update)
_SEQUENCE_EXISTS = text("SELECT to_regclass(CAST(:name AS text)) IS NOT NULL")
_NEXTVAL = text("SELECT nextval(CAST(CAST(:name AS text) AS regclass))")


def _sequence_name(year: int) -> str:
    return f"ticket_ref_{int(year)}"

_NEXT_SEQ = _per_dialect(_next_seq)
_STORE_CONVERSATION = _per_dialect(_store_conversation)
_UPDATE_CONVERSATION = (
    update(Conversation.__table__)
    .where(Conversation.__table__.c.id == bindparam("conversation_id"))
    .values(step=bindparam("step"), data=bindparam("data"), updated_at=bindparam("updated_at"))
)


def _filed_since(reporter_id: Any) -> Any:
    """Tickets ``reporter_id`` filed since the ``since`` parameter (the daily limit)."""
    return select(func.count()).where(Ticket.reporter_id == reporter_id,
                                      Ticket.created_at >= bindparam("since"))


_FILED_SINCE = _filed_since(bindparam("reporter_id"))
_CALLER = (
    select(
        Contact, Person, Conversation.id, Conversation.step, Conversation.data,
        Conversation.updated_at, _filed_since(Contact.person_id).correlate(Contact).scalar_subquery(),
    )
    .outerjoin(Person, Person.id == Contact.person_id)
    .outerjoin(Conversation, and_(Conversation.channel == Contact.channel,
                                  Conversation.external_id == Contact.external_id))
    .where(Contact.channel == bindparam("channel"), Contact.external_id == bindparam("external_id"))
    .with_for_update(of=Contact)
)
_WITH_OPEN_LOAD = (
    select(
        Person,
        select(func.count())
        .where(Ticket.assignee_id == Person.id, Ticket.state.in_(_OPEN))
        .correlate(Person)
        .scalar_subquery(),
    )
    .where(Person.role.in_(bindparam("roles", expanding=True)), Person.active.is_(True),
           Person.group_id == bindparam("group_id"))
    .order_by(Person.id)
)
_ACTIVE_CONTACTS = (
    select(Contact)
    .where(Contact.person_id == bindparam("person_id"), Contact.active.is_(True))
    .order_by(Contact.last_seen_at.desc().nulls_last(), Contact.id.desc())
)
_GROUP_BY_CODE = select(OwnerGroup).where(OwnerGroup.code == bindparam("code"))
_INSERT_OUTBOX = insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id)
#: Several rows in one statement; the ids come back in the order the rows were given.
_INSERT_OUTBOX_ORDERED = (insert(OutboxMessage.__table__)
                          .returning(OutboxMessage.__table__.c.id, sort_by_parameter_order=True))


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_seq(self, year: int) -> int:
        """Take the next number for ``year``.

        PostgreSQL: from the year's sequence (``ticket_ref_<year>``, made on first use), which
        holds no lock beyond the call, so concurrent filings never wait for each other's
        numbering. The price is gaps: a filing that rolls back after taking its number (a
        refused action, a crash) leaves that number unused (a sequence never goes back). A
        reference identifies a ticket -- unique, never reused, growing in the order of
        filing -- and nothing counts tickets by their numbers (digests count the tickets
        themselves), so a missing number is harmless. SQLite has one writer: the year's
        ``ticket_counters`` row is incremented in the filing's own transaction and a rollback
        gives the number back.
        """
        dialect = dialect_of(self.session)
        if dialect == "postgresql":
            name = _sequence_name(year)
            if (await self.session.execute(_SEQUENCE_EXISTS, {"name": name})).scalar():
                return int((await self.session.execute(_NEXTVAL, {"name": name})).scalar_one())
            return await self._first_of_year(year)
        stmt = _NEXT_SEQ[dialect]
        return int((await self.session.execute(stmt, {"year": year})).scalar_one())

    async def _first_of_year(self, year: int) -> int:
        """Once a year: make the sequence, continuing after the numbers already given (the
        year's counter row, kept from before sequences, and the tickets), and take a number
        from it. On a connection of its own, outside the pool: this transaction just looked
        the name up and found nothing (PostgreSQL may keep that answer until it ends), and a
        second connection from a pool that every filing is waiting on could never come.
        Another worker making it at the same moment is fine (one of the two wins)."""
        import asyncpg

        bind = self.session.bind
        assert isinstance(bind, AsyncEngine)
        name = _sequence_name(year)
        url = bind.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(url)
        try:
            try:
                async with conn.transaction():
                    # Not "IF NOT EXISTS": only its maker may set where it starts (another
                    # worker's sequence may already have given numbers not yet committed).
                    await conn.execute(f"CREATE SEQUENCE {name} AS bigint")
                    await conn.execute(
                        "SELECT setval($1::regclass, GREATEST(1, n), n > 0) FROM ("
                        " SELECT GREATEST(COALESCE((SELECT last_seq FROM ticket_counters"
                        "   WHERE year = $2), 0), COALESCE((SELECT max(seq) FROM tickets"
                        "   WHERE year = $2), 0)) AS n) AS given", name, year)
                    return int(await conn.fetchval("SELECT nextval($1::regclass)", name))
            except (asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
                log.info("ticket number sequence %s made concurrently", name)
            return int(await conn.fetchval("SELECT nextval($1::regclass)", name))
        finally:
            await conn.close()

    def add(self, ticket: Ticket) -> None:
        self.session.add(ticket)

    async def get(self, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
        stmt = select(Ticket).where(Ticket.id == ticket_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_ref(self, ref: str, *, for_update: bool = False) -> Ticket | None:
        stmt = select(Ticket).where(Ticket.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(
        self,
        *,
        states: Sequence[str] | None = None,
        open_only: bool = False,
        group_id: int | None = None,
        assignee_id: int | None = None,
        reporter_id: int | None = None,
        organisation_id: int | None = None,
        category: str | None = None,
        needs_triage: bool | None = None,
        unassigned: bool = False,
        deadline_before: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Ticket]:
        stmt = select(Ticket)
        if open_only:
            stmt = stmt.where(Ticket.state.in_(_OPEN))
        if states:
            stmt = stmt.where(Ticket.state.in_(list(states)))
        if group_id is not None:
            stmt = stmt.where(Ticket.group_id == group_id)
        if assignee_id is not None:
            stmt = stmt.where(Ticket.assignee_id == assignee_id)
        if reporter_id is not None:
            stmt = stmt.where(Ticket.reporter_id == reporter_id)
        if organisation_id is not None:
            stmt = stmt.where(Ticket.organisation_id == organisation_id)
        if category is not None:
            stmt = stmt.where(Ticket.category == category)
        if needs_triage is not None:
            stmt = stmt.where(Ticket.needs_triage.is_(needs_triage))
        if unassigned:
            stmt = stmt.where(Ticket.assignee_id.is_(None))
        if deadline_before is not None:
            stmt = stmt.where(Ticket.deadline_at < deadline_before)
        stmt = stmt.order_by(Ticket.deadline_at, Ticket.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def with_open_load(self, roles: Sequence[str], group_id: int) -> list[tuple[Person, int]]:
        """Active people of ``roles`` in a group with their open-ticket count, in one query
        (routing runs on every filing)."""
        rows = await self.session.execute(_WITH_OPEN_LOAD, {"roles": list(roles), "group_id": group_id})
        return [(person, int(count)) for person, count in rows]

    async def count_filed_since(self, reporter_id: int, since: datetime) -> int:
        found = await self.session.execute(_FILED_SINCE, {"reporter_id": reporter_id, "since": since})
        return int(found.scalar_one())


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, event: TicketEvent) -> None:
        self.session.add(event)

    async def for_ticket(self, ticket_id: int) -> list[TicketEvent]:
        stmt = (
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
        return list((await self.session.execute(stmt)).scalars())


class PeopleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: int) -> Person | None:
        return await self.session.get(Person, person_id)

    async def contact(self, channel: str, external_id: str) -> Contact | None:
        stmt = select(Contact).where(Contact.channel == channel, Contact.external_id == external_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def contacts_of(self, person_id: int) -> list[Contact]:
        """A person's active contacts, latest seen first (every notification asks this)."""
        return list((await self.session.execute(_ACTIVE_CONTACTS, {"person_id": person_id})).scalars())

    async def group(self, code: str) -> OwnerGroup | None:
        return (await self.session.execute(_GROUP_BY_CODE, {"code": code})).scalar_one_or_none()

    async def group_by_id(self, group_id: int) -> OwnerGroup | None:
        return await self.session.get(OwnerGroup, group_id)

    async def groups(self) -> list[OwnerGroup]:
        return list((await self.session.execute(select(OwnerGroup).order_by(OwnerGroup.id))).scalars())

    async def with_role(self, *roles: Role, group_id: int | None = None) -> list[Person]:
        stmt = select(Person).where(
            Person.role.in_([r.value for r in roles]), Person.active.is_(True)
        )
        if group_id is not None:
            stmt = stmt.where(Person.group_id == group_id)
        return list((await self.session.execute(stmt.order_by(Person.id))).scalars())


class QueuedMessage:
    """An outbox row written with the transaction's next flush; ``id`` is known from then on."""

    __slots__ = ("id", "values")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.id: int | None = None


class OutboxRepository:
    """Outbox rows are queued and inserted with one prebuilt Core statement at the next flush
    (commit, ``UnitOfWork.flush``, or a read of the outbox), in the order they were queued --
    the dispatcher sends a chat's messages in id order. Writing them as ORM objects made the
    session's unit-of-work flush the costliest step of an ordinary chat message."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._queued: list[QueuedMessage] = []

    def queue(self, values: dict[str, Any]) -> QueuedMessage:
        queued = QueuedMessage(values)
        self._queued.append(queued)
        return queued

    async def flush(self) -> None:
        queued, self._queued = self._queued, []
        if len(queued) == 1:
            result = await self.session.execute(_INSERT_OUTBOX, queued[0].values)
            queued[0].id = int(result.scalar_one())
        elif queued:
            result = await self.session.execute(_INSERT_OUTBOX_ORDERED, [q.values for q in queued])
            for item, new_id in zip(queued, result.scalars(), strict=True):
                item.id = int(new_id)

    def discard(self) -> None:
        """Forget the rows not yet written (their part of the transaction is undone; rows
        already flushed go with the database's rollback)."""
        self._queued = []

    async def pending(self, *, channel: str | None = None, chat_id: str | None = None,
                      due_by: datetime | None = None) -> list[OutboxMessage]:
        await self.flush()
        stmt = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING.value)
        if channel is not None:
            stmt = stmt.where(OutboxMessage.channel == channel)
        if chat_id is not None:
            stmt = stmt.where(OutboxMessage.chat_id == chat_id)
        if due_by is not None:
            stmt = stmt.where(OutboxMessage.next_attempt_at <= due_by)
        return list((await self.session.execute(stmt.order_by(OutboxMessage.id))).scalars())

    async def mark_sent(self, ids: Sequence[int], at: datetime) -> None:
        if ids:
            await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(ids)))
                .values(status=OutboxStatus.SENT.value, sent_at=at)
            )


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, state: ConversationState, now: datetime) -> None:
        """Write ``state`` back if it changed: one UPDATE, or an upsert for a first step."""
        if not state.changed:
            return
        state.updated_at = now
        params = {"step": state.step, "data": state.data, "updated_at": now}
        if state.id is None:
            params |= {"channel": state.channel, "external_id": state.external_id}
            result = await self.session.execute(_STORE_CONVERSATION[dialect_of(self.session)], params)
            state.mark_stored(int(result.scalar_one()))
        else:
            await self.session.execute(_UPDATE_CONVERSATION, {**params, "conversation_id": state.id})
            state.mark_stored()

    async def caller(
        self, channel: str, external_id: str, *, filed_since: datetime
    ) -> tuple[Contact | None, Person | None, ConversationState, int]:
        """The contact behind an inbound event, its person and its conversation, in one query.

        Every inbound event needs all three; one round trip instead of three is most of what
        makes a chat message cheap. On PostgreSQL the contact row is locked until commit (it
        has the same key as the conversation), so two workers handling two quick messages of
        the same person take turns instead of overwriting each other's step. The fourth value
        is how many tickets the person filed since ``filed_since`` (for the daily limit). A
        caller with no stored conversation is idle; the row is made when a step is first saved.
        """
        params = {"channel": channel, "external_id": external_id, "since": filed_since}
        row = (await self.session.execute(_CALLER, params)).one_or_none()
        if row is None:
            return None, None, ConversationState(channel, external_id), 0
        contact, person, conv_id, step, data, updated_at, filed = row
        state = ConversationState(channel, external_id, id=conv_id, step=step, data=data,
                                  updated_at=updated_at)
        return contact, person, state, int(filed)

    async def claim_update(self, channel: str, update_id: str, now: datetime) -> bool:
        """Record an inbound update id; False if it was already processed (redelivery)."""
        params = {"channel": channel, "update_id": update_id, "received_at": now}
        result = await self.session.execute(_CLAIM_UPDATE[dialect_of(self.session)], params)
        return bool(result.rowcount)
