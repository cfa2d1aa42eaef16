"""The overall send pace shared by every dispatcher process: one row per channel (bot).

Telegram counts a bot's messages over any one-second window, whichever process sent them, so
the pace lives where every worker already meets: the database. A worker *reserves* the next
few send slots in one short transaction -- ``next_at`` moves forward by ``count * interval``
from where it stood (or from now, after a quiet spell) -- and sends at those instants. Slots
handed to different workers never overlap, so the bot's combined stream stays evenly spaced
however many workers share it, and nobody divides the limit by hand.

A ``429 retry_after`` seen by any worker is written here (``paused_until``); the others learn
it at their next reservation, which never returns a slot inside the pause.

Times are epoch seconds (float) from the injected clock: plain numbers compare and add alike
on SQLite and PostgreSQL, where interval arithmetic does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, String, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class SendPacing(Base):
    """The next free overall send slot of one channel's bot, and any pause it was told to take."""

    __tablename__ = "send_pacing"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Epoch seconds of the first slot nobody has reserved yet.
    next_at: Mapped[float] = mapped_column(Float)
    #: Epoch seconds until which nobody sends (the API answered 429 ``retry_after``).
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)


_pacing = SendPacing.__table__


@dataclass(frozen=True)
class Reservation:
    """``count`` slots ``interval`` apart from ``first`` (epoch seconds), all this worker's."""

    first: float
    count: int
    interval: float
    paused_until: float

    @property
    def slots(self) -> list[float]:
        return [self.first + i * self.interval for i in range(self.count)]


def _greatest(session: AsyncSession, *values: object) -> object:
    from storage.db import dialect_of  # storage.models imports this module

    # PostgreSQL spells the scalar maximum GREATEST; SQLite's multi-argument max() is the same.
    return (func.greatest if dialect_of(session) == "postgresql" else func.max)(*values)


async def reserve_slots(
    session: AsyncSession, key: str, *, now: float, count: int, interval: float
) -> Reservation:
    """Take the next ``count`` slots (one statement; the caller commits). On PostgreSQL the
    row lock serialises concurrent reservations; on SQLite the writer lock (BEGIN IMMEDIATE)."""
    from storage.db import upsert_insert

    c = _pacing.c
    span = count * interval
    start = _greatest(session, c.next_at, c.paused_until, now)
    statement = (
        upsert_insert(session, _pacing)
        .values(key=key, next_at=now + span, paused_until=0.0)
        .on_conflict_do_update(index_elements=[c.key], set_={"next_at": start + span})
        .returning(c.next_at, c.paused_until)
    )
    row = (await session.execute(statement)).one()
    return Reservation(float(row.next_at) - span, count, interval, float(row.paused_until or 0.0))


async def pause_all(session: AsyncSession, key: str, *, until: float) -> None:
    """Nobody sends on this channel before ``until`` (the longest pause wins)."""
    from storage.db import upsert_insert

    c = _pacing.c
    statement = (
        upsert_insert(session, _pacing)
        .values(key=key, next_at=until, paused_until=until)
        .on_conflict_do_update(
            index_elements=[c.key],
            set_={"next_at": _greatest(session, c.next_at, until),
                  "paused_until": _greatest(session, c.paused_until, until)},
        )
    )
    await session.execute(statement)
