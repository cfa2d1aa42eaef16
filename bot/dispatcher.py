"""The outbox dispatcher: sends what the engine, the sweep and the digests wrote to ``outbox``.

Everything outbound is written to the outbox in the transaction that caused it; this loop is
the only thing that talks to chat APIs on the way out. Its rules, and why:

Order per chat
    A chat's rows go out in id order, one at a time: a later row waits while an earlier one
    is due, in flight, or waiting for its retry ("Report filed" must not arrive before "Which
    category?"). Rows *held* for a later time (``next_attempt_at`` in the future and never
    tried, e.g. an escalation kept for working hours) do not block the chat: an answer to
    something the person just wrote must not wait for tomorrow morning.

Bulk last
    Among chats whose next row is ready, rows that are not a digest (``dedupe_key``
    ``digest:...``) go first: a reply to someone who just wrote does not queue behind a
    broadcast to every member, which at 30 messages a second can take minutes.

Limits
    Per chat from the database (``bot.ratelimit.ChatLimits`` over the chat's recent
    ``sent_at``), so the pace holds across workers and restarts. ``sent_at`` is the moment
    the API *answered*, after the message arrived there, so "next send at ``sent_at`` + 1 s"
    keeps arrivals at least 1 s apart whatever the delays on the way. Overall, all workers
    share one evenly spaced stream of send slots reserved from the database
    (``bot.ratelimit.SharedPacer`` over ``storage.pacing``); a row that waited for its
    chat's gap takes the next slot before a broadcast's queue.

Outcomes (``bot.delivery.DeliveryResult``)
    ``retry_after``: the row waits ``retry_after`` seconds and every worker pauses its sends
    as long (the pause is written to the shared pacing row); not counted as an attempt.
    ``transient``: exponential backoff (``outbox_backoff_base`` doubling up to
    ``outbox_backoff_cap``, plus a little jitter so a recovered API is not hit by every row at
    once); after ``outbox_max_attempts`` the row is ``failed``. ``blocked``: the row is
    ``undeliverable``, its contact inactive, and further rows to that contact are marked
    undeliverable without a call (until the person writes again, which reactivates the
    contact). ``bad_markup``: sent once more as plain text (``send_plain``); the rest of
    a split message follows in plain text too. ``permanent`` (and a sender raising a
    ``ValueError``/``TypeError``, e.g. ``CallbackDataTooLong``): ``failed`` with the error.

Several workers
    A row is claimed with a lease (``claimed_by`` / ``claimed_until``) in a short transaction;
    on PostgreSQL the candidate rows are locked ``FOR UPDATE SKIP LOCKED`` while claiming, so
    two workers never claim the same row. No transaction stays open during an HTTP call (on
    SQLite that would block the engine's writes). A heartbeat extends the leases of rows in
    flight; the final update only applies while the lease is still ours.

Crashes
    State lives only in the database. A row whose sender died stays ``pending`` with a lease
    that runs out after ``lease_seconds``; then any worker retries it. A restarted worker with
    the same ``worker_id`` takes its old claims back at once. Only the row in flight at the
    crash can reach the chat twice.

Recording "sent"
    Outcomes of successful sends are written in small batches (one transaction for what
    finished within ``record_delay``). When that write fails (database down, disk full) the
    row is *held*: it stays in this process as sent, its task waits, the write is retried
    with growing pauses for as long as the process lives, and this worker never claims the
    row again (even once its lease ran out). So a failure to record never repeats a send; a
    process stopped while holding rows may send each of them once more after a restart.

Split texts
    A text-only message longer than the channel's limit (Telegram: 4096) is cut here, not in
    the sender, and each delivered piece is recorded (``parts_sent``), so a retry after piece 2
    of 3 failed sends piece 3 only. Messages with a photo or document are handed to the sender
    whole; if one of those fails half-way, the retry repeats its first part.

On SQLite run a single dispatcher per database (``hotline run`` once): claims are still
exclusive, but SQLite serialises writers, so more workers add contention, not throughput.
The console channel's rows are never touched: ``hotline chat`` consumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update

from bot.delivery import ChannelSender, DeliveryResult
from bot.ratelimit import GLOBAL_MARGIN, ChatLimits, SharedPacer, is_group_chat
from hotline.clock import Clock
from hotline.deps import App
from hotline.domain.enums import OutboxStatus
from hotline.messages import BULK_DEDUPE_PREFIX, OutboundMessage
from hotline.text import split_message
from storage.models import Contact, OutboxMessage
from storage.pacing import Reservation, pause_all, reserve_slots
from storage.types import UTCDateTime

log = logging.getLogger(__name__)

PENDING = OutboxStatus.PENDING.value
SENT = OutboxStatus.SENT.value
FAILED = OutboxStatus.FAILED.value
UNDELIVERABLE = OutboxStatus.UNDELIVERABLE.value

#: Turns one outbox message into the messages actually sent, in order.
Splitter = Callable[[OutboundMessage], list[OutboundMessage]]

_outbox = OutboxMessage.__table__
_contacts = Contact.__table__

#: Seconds to wait after the database refused a claim (down, locked) before trying again.
DB_ERROR_PAUSE = 2.0
#: Attempts at recording a failed outcome before giving up (the lease then brings the row back).
FINISH_ATTEMPTS = 3
#: Longest pause between two attempts at recording "sent" rows held in memory.
RECORD_BACKOFF_CAP = 5.0
BLOCKED_ERROR = "contact blocked the bot or left the chat"


def default_worker_id() -> str:
    """Unique per process; set a stable ``worker_id`` to take claims back after a restart."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def html_splitter(limit: int) -> Splitter:
    """Cut text-only messages into pieces of at most ``limit`` (Telegram's HTML subset)."""

    def split(message: OutboundMessage) -> list[OutboundMessage]:
        if message.photo or message.document:
            return [message]
        pieces = split_message(message.text, limit, html=True)
        if len(pieces) <= 1:
            return [message]
        last = len(pieces) - 1
        # Old buttons are retired with the first piece; the keyboard rides on the last one.
        return [
            replace(
                message,
                text=piece,
                buttons=message.buttons if index == last else (),
                retire_buttons_of=message.retire_buttons_of if index == 0 else None,
            )
            for index, piece in enumerate(pieces)
        ]

    return split


def default_splitters(senders: Mapping[str, ChannelSender]) -> dict[str, Splitter]:
    """Telegram senders expose ``message_limit``; other channels split in their sender."""
    found: dict[str, Splitter] = {}
    for channel, sender in senders.items():
        limit = getattr(sender, "message_limit", None)
        if getattr(sender, "channel", None) == "telegram" and isinstance(limit, int):
            found[channel] = html_splitter(limit)
    return found


@dataclass(frozen=True)
class ClaimedRow:
    """What a worker needs from a claimed row (a plain copy: no session outlives the claim)."""

    id: int
    channel: str
    chat_id: str
    contact_id: int | None
    payload: dict[str, Any]
    attempts: int
    parts_sent: int
    #: The chat's pace allows the first send only from this instant (claimed a little early).
    not_before: datetime | None = None


@dataclass(frozen=True)
class _Claim:
    rows: list[ClaimedRow]
    #: When something not ready now becomes ready (a held row, a rate limit, a lease).
    next_at: datetime | None


class _Stopped(Exception):
    """Shutdown between two pieces of a split message."""


class OutboxDispatcher:
    """Delivers due outbox rows of the channels it has senders for.

    ``run_once`` does one round (claim what is ready, send it, record outcomes) and returns
    how many rows it acted on; ``run`` loops until ``stop_event`` is set, waking on ``wake()``
    (the runtime calls it after the engine committed replies), when a send finishes, when the
    next held row or rate limit comes due, and every ``poll_interval`` seconds for rows
    written by other processes.

    Timing needs a running clock: ``clock`` (default ``app.clock``) decides what is due and
    stamps ``sent_at``, which the per-chat limits read back.
    """

    def __init__(
        self,
        app: App,
        senders: Mapping[str, ChannelSender],
        *,
        worker_id: str | None = None,
        clock: Clock | None = None,
        splitters: Mapping[str, Splitter] | None = None,
        limits: ChatLimits | None = None,
        global_per_second: float | None = None,
        max_attempts: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        lease_seconds: float = 30.0,
        max_in_flight: int = 16,
        poll_interval: float = 1.0,
        stop_grace: float = 30.0,
        jitter: float = 0.1,
        lookahead: float = 0.5,
        claim_every: float = 0.25,
        record_delay: float = 0.1,
    ) -> None:
        settings = app.settings
        if not senders:
            raise ValueError("the dispatcher needs at least one channel sender")
        self.app = app
        self.senders = dict(senders)
        self.channels = sorted(self.senders)
        self.worker_id = (worker_id or default_worker_id())[:64]
        self.clock = clock or app.clock
        self.splitters = dict(default_splitters(self.senders) if splitters is None else splitters)
        self.limits = limits or ChatLimits(
            per_chat_interval=settings.outbox_per_chat_interval,
            group_per_minute=settings.outbox_group_per_minute,
        )
        #: The overall limit, shared by every worker of the same bot through the database.
        self.global_per_second = global_per_second or settings.outbox_global_per_second
        self.pacers = {
            channel: SharedPacer(
                self.global_per_second * GLOBAL_MARGIN,
                lambda count, channel=channel: self._reserve(channel, count),
                now=lambda: self.clock.now().timestamp(),
                publish_pause=lambda until, channel=channel: self._publish_pause(channel, until),
            )
            for channel in self.channels
        }
        self.max_attempts = max_attempts or settings.outbox_max_attempts
        self.backoff_base = backoff_base if backoff_base is not None else settings.outbox_backoff_base
        self.backoff_cap = backoff_cap if backoff_cap is not None else settings.outbox_backoff_cap
        self.lease = timedelta(seconds=lease_seconds)
        self.max_in_flight = max(1, max_in_flight)
        self.poll_interval = poll_interval
        self.stop_grace = stop_grace
        self.jitter = jitter
        self.lookahead = max(0.0, lookahead)
        #: A claim waits until this many slots are free, or ``claim_every`` seconds passed.
        self.claim_min = max(1, self.max_in_flight // 2)
        self.claim_every = claim_every
        self.record_delay = record_delay
        self._last_claim = float("-inf")
        #: Rows sent whose "sent" is not written yet: (row, parts, sent_at, waiter).
        self._unrecorded: dict[int, tuple[ClaimedRow, int, datetime, asyncio.Future[None]]] = {}
        self._recorder: asyncio.Task[None] | None = None
        #: Outcomes so far, by status ("sent", "failed", "undeliverable", "retry_after", ...).
        self.counts: Counter[str] = Counter()
        self._tasks: dict[int, asyncio.Task[str]] = {}
        #: Rows being sent right now (by ``run`` or ``run_once``): their leases are kept alive.
        self._active: set[int] = set()
        #: Loop time of each row's latest successful call (paces the next look at its chat).
        self._last_send: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    # --- public ---------------------------------------------------------------------------------
    def wake(self) -> None:
        """Look for new rows now instead of at the next poll (safe from any task)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def paused_for(self) -> float:
        """Seconds left of the longest pause any channel was told to take."""
        return max((p.paused_for for p in self.pacers.values()), default=0.0)

    @property
    def unrecorded(self) -> int:
        """Rows sent whose outcome is still waiting to be written (held in memory)."""
        return len(self._unrecorded)

    async def run_once(self) -> int:
        """Claim what is ready now (up to ``max_in_flight`` rows), send it, record outcomes."""
        if self.paused_for > 0:
            return 0
        self._stopping = False
        claim = await self._claim(self.max_in_flight)
        if not claim.rows:
            return 0
        try:
            async with self._heartbeat():
                await asyncio.gather(*(self._deliver(row) for row in claim.rows))
        finally:
            for row in claim.rows:
                self._last_send.pop(row.id, None)
        return len(claim.rows)

    async def run(self, stop_event: asyncio.Event) -> None:
        """Deliver until ``stop_event`` is set, then let sends in flight finish (a split message
        stops after its current piece) within ``stop_grace`` seconds and release the rest."""
        self._stopping = False
        await self._release_own_claims()
        stopper = asyncio.create_task(stop_event.wait())
        try:
            async with self._heartbeat():
                while not stop_event.is_set():
                    self._wake.clear()
                    timeout = await self._fill()
                    waker = asyncio.create_task(self._wake.wait())
                    try:
                        await asyncio.wait({stopper, waker}, timeout=timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waker.cancel()
                await self._drain()
            await self._stop_recorder()
        except asyncio.CancelledError:
            # Cancelled instead of stopped: abandon the sends (each releases its lease).
            self._stopping = True
            for task in list(self._tasks.values()):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            if self._recorder is not None:
                self._recorder.cancel()
            raise
        finally:
            stopper.cancel()

    # --- the loop -------------------------------------------------------------------------------
    async def _fill(self) -> float:
        """Start sends for free slots; return how long the loop may sleep before looking again."""
        paused = self.paused_for
        if paused > 0:
            return min(paused, self.poll_interval)
        free = self.max_in_flight - len(self._tasks)
        if free <= 0:
            return self.poll_interval  # a finishing task wakes us
        # Claim in batches: each claim reads every chat's head, so one per finished send
        # would cost more than the sends. Rows claimed early wait in their tasks.
        since = asyncio.get_running_loop().time() - self._last_claim
        if free < self.claim_min and self._tasks and since < self.claim_every:
            return self.claim_every - since
        self._last_claim = asyncio.get_running_loop().time()
        try:
            claim = await self._claim(free)
        except Exception:
            log.exception("outbox: claiming rows failed; retrying in %.0f s", DB_ERROR_PAUSE)
            return DB_ERROR_PAUSE
        for row in claim.rows:
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._tasks[row.id] = task
            task.add_done_callback(lambda _t, row_id=row.id: self._task_done(row_id))
        if len(claim.rows) == free:
            return 0.0  # maybe more is ready
        if claim.next_at is None:
            return self.poll_interval
        wait = (claim.next_at - self.clock.now()).total_seconds()
        return min(max(wait, 0.0), self.poll_interval)

    def _task_done(self, row_id: int) -> None:
        """A finished send frees a slot; claim again once enough are free (``_fill`` also
        looks every ``claim_every`` seconds, for chats whose gap has passed)."""
        self._tasks.pop(row_id, None)
        self._last_send.pop(row_id, None)
        if self.max_in_flight - len(self._tasks) >= self.claim_min:
            self._wake.set()

    async def _drain(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        if not tasks:
            return
        log.info("outbox: waiting for %d send(s) in flight", len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.stop_grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("outbox: cancelled %d send(s) still running at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _heartbeat(self) -> AsyncIterator[None]:
        """Extend the leases of rows in flight every third of a lease."""

        async def beat() -> None:
            interval = self.lease.total_seconds() / 3
            while True:
                await asyncio.sleep(interval)
                ids = sorted(self._active)
                if not ids:
                    continue
                try:
                    async with self.app.uow() as uow:
                        await uow.session.execute(
                            update(_outbox)
                            .where(_outbox.c.id.in_(ids), _outbox.c.claimed_by == self.worker_id,
                                   _outbox.c.status == PENDING)
                            .values(claimed_until=self.clock.now() + self.lease)
                        )
                        await uow.commit()
                except Exception:
                    log.exception("outbox: could not extend leases")

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- claiming -------------------------------------------------------------------------------
    async def _claim(self, limit: int) -> _Claim:
        """Pick each chat's next row if it is due, unclaimed and within the chat's limits, and
        lease up to ``limit`` of them to this worker, oldest first.

        One short transaction of a few statements (each costs a thread hop on SQLite)."""
        o = _outbox.c
        async with self.app.uow() as uow:
            session = uow.session
            now = self.clock.now()
            # A chat's head: its oldest pending row that is due, tried, or claimed. Rows held
            # for later and never tried are skipped (they must not block the chat).
            blocking = or_(o.next_attempt_at <= now, o.attempts > 0, o.last_error.is_not(None),
                           o.claimed_by.is_not(None))
            heads = (
                select(func.min(o.id))
                .where(o.status == PENDING, o.channel.in_(self.channels), blocking)
                .group_by(o.channel, o.chat_id)
            )
            free = or_(o.claimed_until.is_(None), o.claimed_until < now)
            bulk_last = case((o.dedupe_key.like(f"{BULK_DEDUPE_PREFIX}%"), 1), else_=0)
            ready = (
                await session.execute(
                    select(o.id, o.channel, o.chat_id, o.contact_id, _contacts.c.active)
                    .select_from(_outbox.outerjoin(_contacts, _contacts.c.id == o.contact_id))
                    .where(o.id.in_(heads), o.next_attempt_at <= now, free)
                    .order_by(bulk_last, o.id)
                    .limit(max(limit * 4, 64))
                )
            ).all()
            if not ready:
                next_at = await self._next_change(session, now)
                await uow.rollback()
                return _Claim([], next_at)

            # The contact blocked the bot earlier: no call, the row cannot be delivered.
            gone = [r.id for r in ready if r.contact_id is not None and r.active is False]
            if gone:
                await session.execute(
                    update(_outbox)
                    .where(o.id.in_(gone), o.status == PENDING, free)
                    .values(status=UNDELIVERABLE, last_error=BLOCKED_ERROR)
                )
                self.counts[UNDELIVERABLE] += len(gone)

            # Rows whose chat may send again within ``lookahead`` are claimed already and
            # wait in their task, so the claim's own latency does not stretch the chat's gap.
            ahead = timedelta(seconds=self.lookahead)
            horizon = now + ahead
            limited_until: datetime | None = None
            allowed: dict[int, datetime | None] = {}
            # A row this process holds (sent, its outcome not yet written) is never claimed
            # again here, even when its lease ran out while the database refused writes.
            held = self._active | set(self._unrecorded)
            candidates = [r for r in ready if r.id not in gone and r.id not in held]
            recent = await self._recent_sends(session, {r.chat_id for r in candidates}, now)
            for row in candidates:
                group = is_group_chat(row.channel, row.chat_id)
                at = self.limits.allowed_at(recent.get((row.channel, row.chat_id), ()), group)
                if at is None or at <= horizon:
                    allowed[row.id] = at if at is not None and at > now else None
                elif limited_until is None or at < limited_until:
                    limited_until = at - ahead

            claimed: list[ClaimedRow] = []
            if allowed:
                # Rows another worker is claiming right now are skipped, not waited for, so
                # concurrent claimers spread over the ready rows instead of queueing.
                lockable = (
                    select(o.id)
                    .where(o.id.in_(list(allowed)), o.status == PENDING, free)
                    .order_by(bulk_last, o.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                result = await session.execute(
                    update(_outbox)
                    .where(o.id.in_(lockable))
                    .values(claimed_by=self.worker_id, claimed_until=now + self.lease)
                    .returning(o.id, o.channel, o.chat_id, o.contact_id, o.payload, o.attempts,
                               o.parts_sent)
                )
                claimed = sorted(
                    (ClaimedRow(r.id, r.channel, r.chat_id, r.contact_id, dict(r.payload),
                                r.attempts or 0, r.parts_sent or 0, allowed.get(r.id)) for r in result),
                    key=lambda r: r.id,
                )
            # With rows claimed, their completion wakes the loop anyway; only an idle loop
            # needs to know when held rows come due.
            next_at = None if claimed else await self._next_change(session, now)
            if limited_until is not None and (next_at is None or limited_until < next_at):
                next_at = limited_until
            await uow.commit()
        return _Claim(claimed, next_at)

    async def _next_change(self, session: Any, now: datetime) -> datetime | None:
        """The earliest future instant a held/backed-off row comes due or a foreign lease ends."""
        o = _outbox.c
        mine = and_(o.status == PENDING, o.channel.in_(self.channels))
        due = select(func.min(o.next_attempt_at)).where(mine, o.next_attempt_at > now).scalar_subquery()
        lease = (
            select(func.min(o.claimed_until))
            .where(mine, o.claimed_until > now, o.claimed_by != self.worker_id)
            .scalar_subquery()
        )
        row = (await session.execute(select(due, lease))).one()
        found = [t for t in row if t is not None]
        return min(found) if found else None

    async def _recent_sends(
        self, session: Any, chat_ids: set[str], now: datetime
    ) -> dict[tuple[str, str], list[tuple[datetime, int]]]:
        o = _outbox.c
        since = now - self.limits.window
        found: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
        chats = sorted(chat_ids)
        for start in range(0, len(chats), 500):
            result = await session.execute(
                select(o.channel, o.chat_id, o.sent_at, o.parts_sent)
                .where(o.chat_id.in_(chats[start:start + 500]), o.sent_at > since)
            )
            for r in result:
                found.setdefault((r.channel, r.chat_id), []).append((r.sent_at, r.parts_sent or 1))
        return found

    async def _release_own_claims(self) -> None:
        """Claims left by an earlier process with this worker id: it is gone, retry them now."""
        async with self.app.uow() as uow:
            result = await uow.session.execute(
                update(_outbox)
                .where(_outbox.c.claimed_by == self.worker_id, _outbox.c.status == PENDING)
                .values(claimed_by=None, claimed_until=None)
            )
            await uow.commit()
        if result.rowcount:
            log.warning("outbox: took back %d row(s) claimed by a previous %s", result.rowcount,
                        self.worker_id)

    # --- sending --------------------------------------------------------------------------------
    async def _deliver(self, row: ClaimedRow) -> str:
        """Send one claimed row (all its pieces) and record the outcome; returns its status."""
        self._active.add(row.id)
        try:
            outcome = await self._send_row(row)
        except _Stopped:
            await self._release(row)
            return "stopped"
        except asyncio.CancelledError:
            if row.id not in self._unrecorded:
                await asyncio.shield(self._release(row))
            raise
        except Exception as error:
            # A bug, not a delivery problem: keep the loop alive; the row is retried with
            # backoff like a transient failure (and fails after the attempt limit).
            log.exception("outbox row %s: unexpected error", row.id)
            outcome = await self._fail(
                row, DeliveryResult("transient", error=f"{type(error).__name__}: {error}"), None
            )
        finally:
            self._active.discard(row.id)
        self.counts[outcome] += 1
        return outcome

    async def _send_row(self, row: ClaimedRow) -> str:
        try:
            message = OutboundMessage.from_json(row.payload)
        except (KeyError, TypeError, ValueError) as error:
            return await self._fail(row, DeliveryResult("permanent", error=f"bad payload: {error}"),
                                    row.parts_sent)
        sender = self.senders[row.channel]
        splitter = self.splitters.get(row.channel)
        try:
            pieces = splitter(message) if splitter is not None else [message]
        except ValueError as error:  # cannot be cut (open tags fill the limit): try it whole
            log.warning("outbox row %s: not split (%s)", row.id, error)
            pieces = [message]
        total = len(pieces)
        start = row.parts_sent if total > 1 else 0
        if start >= total:  # every piece went out before a crash; only the bookkeeping is left
            await self._finish_sent(row, total)
            return SENT
        group = is_group_chat(row.channel, row.chat_id)
        if row.not_before is not None:
            early = (row.not_before - self.clock.now()).total_seconds()
            if early > 0:
                await asyncio.sleep(early)
            if self._stopping:
                raise _Stopped
        plain = False
        pacer = self.pacers[row.channel]
        for index in range(start, total):
            if index > start:
                if self._stopping:
                    raise _Stopped
                await asyncio.sleep(self.limits.piece_gap(group))
            # A row that waited for its chat's gap (or a later piece) goes before the queue.
            urgent = row.not_before is not None or index > start
            result, plain = await self._send_piece(sender, pieces[index], plain, pacer, urgent)
            if not result.ok:
                return await self._fail(row, result, index)
            self._last_send[row.id] = asyncio.get_running_loop().time()
            if index < total - 1:
                await self._record_progress(row, index + 1)
        await self._finish_sent(row, total)
        return SENT

    async def _send_piece(
        self, sender: ChannelSender, piece: OutboundMessage, plain: bool, pacer: SharedPacer,
        urgent: bool = False,
    ) -> tuple[DeliveryResult, bool]:
        await pacer.acquire(urgent)
        result = await self._call(sender.send_plain if plain else sender.send, piece)  # type: ignore[attr-defined]
        if result.status == "bad_markup" and not plain:
            send_plain = getattr(sender, "send_plain", None)
            if send_plain is None:
                return DeliveryResult("permanent", error=result.error), plain
            log.warning("outbox: markup refused (%s); resending as plain text", result.error)
            await pacer.acquire(True)
            result = await self._call(send_plain, piece)
            plain = True
        if result.status == "bad_markup":
            result = DeliveryResult("permanent", error=result.error)
        return result, plain

    @staticmethod
    async def _call(send: Callable[[OutboundMessage], Any], piece: OutboundMessage) -> DeliveryResult:
        try:
            result = await send(piece)
        except (ValueError, TypeError) as error:
            # A message no channel could accept (CallbackDataTooLong, wrong channel): a bug
            # upstream; retrying cannot help.
            log.error("outbox: sender refused a message: %s: %s", type(error).__name__, error)
            return DeliveryResult("permanent", error=f"{type(error).__name__}: {error}")
        except Exception as error:
            log.exception("outbox: sender raised")
            return DeliveryResult("transient", error=f"{type(error).__name__}: {error}")
        if not isinstance(result, DeliveryResult):
            return DeliveryResult("permanent", error=f"sender returned {type(result).__name__}")
        return result

    # --- recording ------------------------------------------------------------------------------
    def _mine(self, row: ClaimedRow) -> Any:
        o = _outbox.c
        return and_(o.id == row.id, o.claimed_by == self.worker_id, o.status == PENDING)

    async def _write(self, row: ClaimedRow, what: str, statements: Callable[[Any, datetime], Any]) -> None:
        """Run ``statements`` in a short transaction, retrying a little if the database hiccups."""
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            try:
                async with self.app.uow() as uow:
                    done = await statements(uow.session, self.clock.now())
                    await uow.commit()
                if done is False:
                    log.warning("outbox row %s: lease lost before recording %s", row.id, what)
                return
            except Exception:
                if attempt == FINISH_ATTEMPTS:
                    log.exception("outbox row %s: could not record %s; its lease will expire", row.id,
                                  what)
                    return
                await asyncio.sleep(0.2 * attempt)

    async def _record_progress(self, row: ClaimedRow, parts: int) -> None:
        async def go(session: Any, now: datetime) -> bool:
            result = await session.execute(
                update(_outbox).where(self._mine(row))
                .values(parts_sent=parts, sent_at=now, claimed_until=now + self.lease)
            )
            return bool(result.rowcount)

        await self._write(row, "progress", go)

    async def _finish_sent(self, row: ClaimedRow, parts: int) -> None:
        """Record "sent" (batched with other rows finishing now) and wait until it is written;
        until then the row is held (see "Recording" in the module docstring)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unrecorded[row.id] = (row, parts, self.clock.now(), waiter)
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_loop(), name="outbox recorder")
        await asyncio.shield(waiter)

    async def _record_loop(self) -> None:
        """Write held "sent" outcomes in batches until none is left; retry failures with
        growing pauses, for as long as the process runs."""
        pause = 0.2
        while self._unrecorded:
            await asyncio.sleep(self.record_delay)
            batch = dict(self._unrecorded)
            try:
                await self._record_sent(list(batch.values()))
            except Exception as error:
                log.error("outbox: could not record %d sent row(s) (%s: %s); holding them, "
                          "retrying in %.1f s", len(batch), type(error).__name__, error, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECORD_BACKOFF_CAP)
                continue
            pause = 0.2
            for row_id, (_, _, _, waiter) in batch.items():
                del self._unrecorded[row_id]
                if not waiter.done():
                    waiter.set_result(None)

    async def _record_sent(self, entries: list[tuple[ClaimedRow, int, datetime, Any]]) -> None:
        o = _outbox.c
        statement = (
            update(_outbox)
            .where(o.id == bindparam("row_id"), o.status == PENDING,
                   # Ours, or a lease that ran out while we could not write: still ours to
                   # close. A live lease of another worker means it is sending the row again.
                   or_(o.claimed_by == self.worker_id, o.claimed_by.is_(None),
                       o.claimed_until < bindparam("now", type_=UTCDateTime())))
            .values(status=SENT, sent_at=bindparam("sent", type_=UTCDateTime()),
                    parts_sent=bindparam("parts"), attempts=bindparam("tries"),
                    claimed_by=None, claimed_until=None)
        )
        async with self.app.uow() as uow:
            now = self.clock.now()
            connection = await uow.session.connection()
            await connection.execute(statement, [
                {"row_id": row.id, "now": now, "sent": sent_at, "parts": parts,
                 "tries": row.attempts + 1}
                for row, parts, sent_at, _ in entries
            ])
            await uow.commit()

    async def _stop_recorder(self) -> None:
        """At shutdown: give held rows one more chance to be written, then say what is left."""
        recorder = self._recorder
        if recorder is not None and not recorder.done() and self._unrecorded:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(recorder), timeout=min(self.stop_grace, 5.0))
        if recorder is not None and not recorder.done():
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
        if self._unrecorded:
            log.error("outbox: %d row(s) were sent but could not be recorded; each may be sent "
                      "once more after a restart: %s", len(self._unrecorded),
                      sorted(self._unrecorded))

    # --- pacing ---------------------------------------------------------------------------------
    async def _reserve(self, channel: str, count: int) -> Reservation:
        async with self.app.uow() as uow:
            found = await reserve_slots(uow.session, channel, now=self.clock.now().timestamp(),
                                        count=count, interval=self.pacers[channel].interval)
            await uow.commit()
        return found

    async def _publish_pause(self, channel: str, until: float) -> None:
        async with self.app.uow() as uow:
            await pause_all(uow.session, channel, until=until)
            await uow.commit()

    async def _release(self, row: ClaimedRow) -> None:
        async def go(session: Any, now: datetime) -> bool:
            result = await session.execute(
                update(_outbox).where(self._mine(row)).values(claimed_by=None, claimed_until=None)
            )
            return bool(result.rowcount)

        await self._write(row, "release", go)

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts`` (1 = first retry) after transient errors."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return delay * (1 + self.jitter * random.random())

    async def _fail(self, row: ClaimedRow, result: DeliveryResult, parts: int | None) -> str:
        """Record a failed send of piece ``parts`` (the earlier pieces went out; ``None``: keep
        the recorded progress); returns the outcome."""
        error = (result.error or result.status)[:2000]
        o = _outbox.c
        values: dict[str, Any] = {"claimed_by": None, "claimed_until": None, "last_error": error}
        if parts is not None:
            values["parts_sent"] = parts
        outcome: str
        contact_off = False
        if result.status == "retry_after":
            wait = max(0.0, float(result.retry_after or 1.0))
            self.pacers[row.channel].pause(wait)
            values["next_attempt_at"] = timedelta(seconds=wait)
            outcome = "retry_after"
        elif result.status == "transient":
            attempts = row.attempts + 1
            values["attempts"] = attempts
            if attempts >= self.max_attempts:
                values["status"] = FAILED
                outcome = FAILED
            else:
                values["next_attempt_at"] = timedelta(seconds=self.backoff(attempts))
                outcome = "transient"
        elif result.status == "blocked":
            values.update(status=UNDELIVERABLE, attempts=row.attempts + 1)
            contact_off = True
            outcome = UNDELIVERABLE
        else:
            values.update(status=FAILED, attempts=row.attempts + 1)
            outcome = FAILED
        log.log(logging.INFO if outcome in ("retry_after", "transient") else logging.WARNING,
                "outbox row %s (%s): %s: %s", row.id, row.channel, outcome, error)

        async def go(session: Any, now: datetime) -> bool:
            final = dict(values)
            if isinstance(final.get("next_attempt_at"), timedelta):
                final["next_attempt_at"] = now + final["next_attempt_at"]
            result_ = await session.execute(update(_outbox).where(self._mine(row)).values(**final))
            if contact_off:
                if row.contact_id is not None:
                    await session.execute(
                        update(_contacts).where(_contacts.c.id == row.contact_id).values(active=False)
                    )
                # Rows already due for the same chat would only earn the same 403: close them.
                same_chat = and_(o.channel == row.channel, o.chat_id == row.chat_id)
                await session.execute(
                    update(_outbox)
                    .where(o.status == PENDING, o.id != row.id, o.next_attempt_at <= now,
                           or_(o.claimed_by.is_(None), o.claimed_until < now),
                           or_(same_chat, o.contact_id == row.contact_id)
                           if row.contact_id is not None else same_chat)
                    .values(status=UNDELIVERABLE, last_error=BLOCKED_ERROR)
                )
            return bool(result_.rowcount)

        await self._write(row, outcome, go)
        return outcome
