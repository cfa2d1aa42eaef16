"""Pruning of the two transport tables that every chat message grows: ``inbound_updates`` and
``outbox``.

Neither table is a record of the programme: what happened to a ticket is ``ticket_events``;
that a digest went out once is its ``DigestRun`` row. What each row is still needed for, and so
how long it must stay:

``inbound_updates``
    The de-duplication record of inbound updates. Telegram redelivers an unconfirmed update for
    at most about 24 hours (Zalo similarly), so a row only matters for a day or so; after
    ``inbound_retention_days`` (at least 2) it goes. A redelivery of an update *older* than the
    retention window would not be recognised and would be processed again -- that is why the
    setting has a minimum well above the channels' redelivery horizon.

``outbox``
    Rows in a terminal state (``sent``, ``failed``, ``undeliverable``) are transport history.
    The only reader of old-ish rows is the per-chat rate limit (``bot.dispatcher``), which looks
    at ``sent_at`` within the last minute or so; ``dedupe_key`` is a second guard behind
    ``DigestRun`` only. After ``outbox_retention_days`` (at least 7, so an operator can still
    look at or re-queue a failed message after a long weekend) such rows go. ``pending`` rows,
    claimed or held, are never touched: they are work, not history. The terminal states are an
    explicit list, so a status added later is kept until someone decides it is terminal.

Batches
    Rows go in batches of ``batch_size`` (5,000), one short transaction each, with a brief pause
    in between, so a first run on a table that grew for years never holds SQLite's write lock
    (or PostgreSQL row locks) for long, and the bot's own writes get in between batches.

    Each batch walks an index in key order from where the previous one stopped (a keyset walk)
    instead of repeating ``DELETE ... WHERE id IN (SELECT ... LIMIT n)``: on PostgreSQL, deleted
    rows stay in the heap and indexes until vacuum, and a repeated search would step over all
    of them again in every batch (quadratic on a first run); the walk visits each row once.

    * ``outbox``: one walk per terminal status over ``ix_outbox_status_next (status,
      next_attempt_at)``, by ``(next_attempt_at, id)``. ``next_attempt_at`` of a finished row is
      its last scheduled attempt, so it is old exactly when the row is; ``sent_at`` is checked
      as well, so nothing sent within the window is ever removed.
    * ``inbound_updates``: a walk over its primary key ``(channel, update_id)``, reading
      ``received_at`` of each row. This visits the whole table once a day, and the table is
      bounded by the retention window (14 days of updates), which is cheap; an index on
      ``received_at`` would instead cost a write on every inbound update, the hottest path of
      the bot, so there deliberately is none.

SQLite does not give the space back to the file system: freed pages are reused by new rows, so
the file stops growing; ``VACUUM`` (offline) shrinks it. PostgreSQL's autovacuum does the same.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, literal, or_, select, tuple_

from hotline.deps import App
from hotline.domain.enums import OutboxStatus
from storage.models import InboundUpdate, OutboxMessage

#: Rows per transaction: about 0.1 s of write lock on SQLite, 30-50 ms on PostgreSQL (measured
#: on 100k-400k-row tables; a first run over 700k due rows took 14 s and 7 s in all).
BATCH_SIZE = 5000
#: Pause between two batches, so other writers waiting on SQLite's lock (its busy handler polls
#: every few tens of milliseconds) get it before the next batch does.
BATCH_PAUSE_SECONDS = 0.1
#: Outbox states after which the dispatcher never touches a row again (every update it makes is
#: conditional on ``pending``). Explicit, not "everything but pending", on purpose.
TERMINAL_OUTBOX_STATES: tuple[str, ...] = (
    OutboxStatus.SENT.value,
    OutboxStatus.FAILED.value,
    OutboxStatus.UNDELIVERABLE.value,
)

_inbound: Table = InboundUpdate.__table__  # type: ignore[assignment]
_outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class PruneReport:
    """What one pass removed (or, in a dry run, would remove), and the cut-offs it used."""

    at: datetime
    dry_run: bool
    inbound_cutoff: datetime
    outbox_cutoff: datetime
    inbound_updates: int
    outbox: int
    batches: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "inbound_updates": {"before": self.inbound_cutoff.isoformat(),
                                "rows": self.inbound_updates},
            "outbox": {"before": self.outbox_cutoff.isoformat(), "rows": self.outbox,
                       "statuses": list(TERMINAL_OUTBOX_STATES)},
            "batches": self.batches,
            "seconds": self.seconds,
        }


async def prune_transport_tables(
    app: App,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    pause_seconds: float = BATCH_PAUSE_SECONDS,
) -> PruneReport:
    """Delete inbound update ids and finished outbox rows older than their retention windows.

    Safe to run at any time and from several processes at once: every batch is its own
    transaction, and rows that are due stay due, so an interrupted pass is finished by the next.
    ``dry_run`` walks the same batches and only counts.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    now = now or app.clock.now()
    settings = app.settings
    inbound_cutoff = now - timedelta(days=settings.inbound_retention_days)
    outbox_cutoff = now - timedelta(days=settings.outbox_retention_days)
    walk = _Walk(app, dry_run=dry_run, batch_size=batch_size, pause_seconds=pause_seconds)

    inbound = await walk.run(_inbound, _inbound.c.received_at < inbound_cutoff,
                             (_inbound.c.channel, _inbound.c.update_id))
    o = _outbox.c
    outbox = 0
    for status in TERMINAL_OUTBOX_STATES:
        finished_before = (
            (o.status == status)
            & (o.next_attempt_at < outbox_cutoff)
            & or_(o.sent_at.is_(None), o.sent_at < outbox_cutoff)
        )
        outbox += await walk.run(_outbox, finished_before, (o.next_attempt_at, o.id))
    return PruneReport(
        at=now,
        dry_run=dry_run,
        inbound_cutoff=inbound_cutoff,
        outbox_cutoff=outbox_cutoff,
        inbound_updates=inbound,
        outbox=outbox,
        batches=walk.batches,
        seconds=round(time.perf_counter() - started, 3),
    )


class _Walk:
    """Deletes (or counts) the rows matching a condition, ``batch_size`` at a time, in the
    order of ``key`` -- the columns of an index the condition can use, ending in a unique one."""

    def __init__(self, app: App, *, dry_run: bool, batch_size: int, pause_seconds: float) -> None:
        self.app = app
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.pause_seconds = pause_seconds
        self.batches = 0

    async def run(self, table: Table, condition: ColumnElement[bool],
                  key: tuple[Any, ...]) -> int:
        total = 0
        last: tuple[Any, ...] | None = None
        while True:
            where = [condition]
            if last is not None:
                where += _after(key, last)
            async with self.app.engine.begin() as conn:
                # The key of the batch's last row: the batch is everything matching up to it.
                upper = (
                    await conn.execute(
                        select(*key).where(*where).order_by(*key)
                        .offset(self.batch_size - 1).limit(1)
                    )
                ).first()
                if upper is not None:
                    where.append(tuple_(*key) <= _values(key, tuple(upper)))
                if self.dry_run:
                    count = int(await conn.scalar(
                        select(func.count()).select_from(table).where(*where)) or 0)
                else:
                    count = (await conn.execute(delete(table).where(*where))).rowcount or 0
            self.batches += 1
            total += count
            if upper is None:  # fewer than a batch were left: this one took them all
                return total
            last = tuple(upper)
            await asyncio.sleep(self.pause_seconds)


def _values(key: tuple[Any, ...], values: tuple[Any, ...]) -> ColumnElement[Any]:
    """A row value typed like ``key`` (so UTC datetimes are stored-format on SQLite)."""
    return tuple_(*(literal(value, column.type) for column, value in zip(key, values, strict=True)))


def _after(key: tuple[Any, ...], last: tuple[Any, ...]) -> list[ColumnElement[bool]]:
    """Rows strictly after ``last`` in key order, as one row-value comparison: both SQLite and
    PostgreSQL start the index scan there (a separate bound on the first column would make
    SQLite seek by that column alone and re-read the kept rows before ``last`` every batch)."""
    return [tuple_(*key) > _values(key, last)]
