"""Background jobs of ``hotline run``: the escalation sweep and the scheduled digests.

APScheduler 3 (``AsyncIOScheduler``) in the programme's time zone runs, in every process:

* ``leader-election`` every few seconds: keep or take leadership (``escalation.leadership``);
* ``sweep`` every ``settings.sweep_interval_seconds``;
* ``weekly-digest`` on ``weekly_digest_weekday`` at ``weekly_digest_hour``:00;
* ``monthly-report`` on ``monthly_report_day`` at the same hour;
* ``housekeeping`` daily at 03:30: prunes old inbound update ids and finished outbox rows
  (``hotline.services.housekeeping``), and the similarity postings of tickets no longer
  suggested (``hotline.services.similarity.prune_postings``). A night when no leader ran is
  simply covered by the next one (everything overdue is still overdue), so there is no
  catch-up for it.

Only the leader does the work; followers' jobs return at once, so when the leader dies a
follower carries on at its next election without rebuilding anything.

Digests are "once per scheduled occasion", remembered in ``key_values`` (scheduler marks): a
digest whose occasion passed while no leader was running (outage, or the leader died at 07:59
on a Monday) is sent when leadership is next taken, once. A process that has never sent one
records the latest occasion as its baseline instead of sending a digest in the middle of the
week on first start.

The digest content belongs to ``hotline.digests.send_scheduled_digests``; it is imported when
the job runs, and skipped with a log line if it is not installed yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from escalation.leadership import Leadership, make_leadership
from escalation.sweep import SweepReport, sweep
from hotline.config import Settings
from hotline.deps import App
from hotline.digests import send_scheduled_digests
from hotline.services.housekeeping import PruneReport, prune_transport_tables
from hotline.services.similarity import prune_postings
from storage.db import upsert_insert
from storage.models import KeyValue

log = logging.getLogger(__name__)

DigestKind = Literal["week", "month"]
DigestSender = Callable[[App, datetime, DigestKind], Awaitable[Any]]
#: Seconds between leadership attempts: how long jobs may go unattended after a leader dies.
ELECTION_SECONDS = 15.0
#: How long ``shutdown`` lets a running job finish before cancelling it.
SHUTDOWN_GRACE_SECONDS = 30.0
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Local (hour, minute) of the daily housekeeping: the quietest time, far from working hours
#: and the 08:00 digests.
HOUSEKEEPING_AT = (3, 30)


def mark_key(kind: DigestKind) -> str:
    return f"scheduler.digest.{kind}"


def latest_occasion(kind: DigestKind, now: datetime, settings: Settings) -> datetime:
    """The most recent scheduled instant of ``kind`` at or before ``now`` (UTC)."""
    tz = ZoneInfo(settings.timezone)
    local = now.astimezone(tz)
    hour = settings.weekly_digest_hour
    if kind == "week":
        back = (local.weekday() - settings.weekly_digest_weekday) % 7
        day = local.date() - timedelta(days=back)
        candidate = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
        if candidate > local:
            candidate = candidate - timedelta(days=7)
            candidate = datetime(candidate.year, candidate.month, candidate.day, hour, tzinfo=tz)
        return candidate.astimezone(UTC)
    day_of_month = settings.monthly_report_day  # 1..14: exists in every month
    candidate = datetime(local.year, local.month, day_of_month, hour, tzinfo=tz)
    if candidate > local:
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        candidate = datetime(year, month, day_of_month, hour, tzinfo=tz)
    return candidate.astimezone(UTC)


class HotlineScheduler:
    """The scheduler plus leadership; ``hotline run`` awaits ``start()`` and ``shutdown()``."""

    def __init__(
        self,
        app: App,
        *,
        leadership: Leadership | None = None,
        election_seconds: float = ELECTION_SECONDS,
        sweep_seconds: float | None = None,
        digest_sender: DigestSender | None = None,
    ) -> None:
        self.app = app
        #: ``hotline.digests.send_scheduled_digests`` unless a test passes its own.
        self.digest_sender: DigestSender = digest_sender or send_scheduled_digests
        self.leadership = leadership or make_leadership(app.engine)
        self.tz = ZoneInfo(app.settings.timezone)
        self.scheduler = AsyncIOScheduler(timezone=self.tz)
        self.last_sweep: SweepReport | None = None
        self._running: set[asyncio.Task[Any]] = set()
        settings = app.settings
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "replace_existing": True}
        self.scheduler.add_job(
            self.elect, IntervalTrigger(seconds=election_seconds, timezone=self.tz),
            id="leader-election", misfire_grace_time=None, **common,
        )
        self.scheduler.add_job(
            self.run_sweep,
            IntervalTrigger(seconds=sweep_seconds or settings.sweep_interval_seconds,
                            timezone=self.tz),
            id="sweep", misfire_grace_time=None, **common,
        )
        self.scheduler.add_job(
            self.run_digest,
            CronTrigger(day_of_week=_WEEKDAYS[settings.weekly_digest_weekday],
                        hour=settings.weekly_digest_hour, minute=0, timezone=self.tz),
            args=["week"], id="weekly-digest", misfire_grace_time=6 * 3600, **common,
        )
        self.scheduler.add_job(
            self.run_digest,
            CronTrigger(day=settings.monthly_report_day, hour=settings.weekly_digest_hour,
                        minute=0, timezone=self.tz),
            args=["month"], id="monthly-report", misfire_grace_time=6 * 3600, **common,
        )
        self.scheduler.add_job(
            self.run_housekeeping,
            CronTrigger(hour=HOUSEKEEPING_AT[0], minute=HOUSEKEEPING_AT[1], timezone=self.tz),
            id="housekeeping", misfire_grace_time=3600, **common,
        )

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    async def start(self) -> None:
        """Elect at once (so a single process starts working immediately), then schedule."""
        await self.elect()
        self.scheduler.start()

    async def shutdown(self) -> None:
        """Let a running sweep or digest finish (bounded), then give up leadership."""
        if self.scheduler.running:
            self.scheduler.pause()
        running = [task for task in self._running if not task.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler stops on the loop's next turn
        await self.leadership.release()

    # --- jobs ------------------------------------------------------------------------------

    async def elect(self) -> bool:
        """Keep or take leadership; a new leader catches up on missed digests (as a job of
        its own, so that ``start()`` and the election never wait for a digest to render)."""
        was_leader = self.leadership.is_leader
        leader = await self.leadership.refresh()
        if leader and not was_leader:
            self.scheduler.add_job(
                self.catch_up_digests, id="digest-catch-up", replace_existing=True,
                misfire_grace_time=None,
            )
        return leader

    async def catch_up_digests(self) -> None:
        for kind in ("week", "month"):
            await self.run_digest(kind, catch_up=True)  # type: ignore[arg-type]

    async def run_sweep(self) -> SweepReport | None:
        if not self.leadership.is_leader:
            return None
        with self._tracked():
            try:
                report = await sweep(self.app, self.app.clock.now())
            except Exception:
                log.exception("escalation sweep failed; the next one will redo what is due")
                return None
        self.last_sweep = report
        if report.fired or report.auto_closed or report.alerts_raised or report.alerts_cleared:
            log.info(
                "sweep: %s fired %s, auto-closed %d, red raised %s cleared %s (%.2fs)",
                report.scanned, report.counts(), len(report.auto_closed), report.alerts_raised,
                report.alerts_cleared, report.seconds,
            )
        return report

    async def run_housekeeping(self) -> PruneReport | None:
        """Prune the transport tables; one log line either way, so operators can see it ran."""
        if not self.leadership.is_leader:
            return None
        with self._tracked():
            try:
                report = await prune_transport_tables(self.app)
            except Exception:
                log.exception("housekeeping failed; tomorrow's run will prune what is due")
                return None
            try:
                postings = await prune_postings(self.app)
                log.info("similarity index: postings of %d ticket(s) no longer suggested pruned, "
                         "%d re-posted (%.2fs)", postings.tickets, postings.reposted,
                         postings.seconds)
            except Exception:
                log.exception("similarity pruning failed; tomorrow's run will prune what is due")
        log.info(
            "housekeeping: pruned %d inbound update id(s) older than %d days and %d finished "
            "outbox message(s) older than %d days in %d batch(es) (%.2fs)",
            report.inbound_updates, self.app.settings.inbound_retention_days, report.outbox,
            self.app.settings.outbox_retention_days, report.batches, report.seconds,
        )
        return report

    async def run_digest(self, kind: DigestKind, *, catch_up: bool = False) -> bool:
        """Send ``kind`` for its latest occasion unless already done; True if it was sent."""
        if not self.leadership.is_leader:
            return False
        with self._tracked():
            now = self.app.clock.now()
            occasion = latest_occasion(kind, now, self.app.settings)
            done = await self._read_mark(kind)
            if done is None and catch_up:
                await self._write_mark(kind, occasion)  # first start: a baseline, not a send
                return False
            if done is not None and done >= occasion:
                return False
            try:
                await self.digest_sender(self.app, now, kind)
            except Exception:
                log.exception("%s digest failed; it will be retried at the next election", kind)
                return False
            await self._write_mark(kind, occasion)
            return True

    # --- helpers ---------------------------------------------------------------------------

    def _tracked(self) -> _Tracked:
        return _Tracked(self._running)

    async def _read_mark(self, kind: DigestKind) -> datetime | None:
        async with self.app.sessions() as session:
            value = (
                await session.execute(select(KeyValue.value).where(KeyValue.key == mark_key(kind)))
            ).scalar_one_or_none()
        return datetime.fromisoformat(value) if value else None

    async def _write_mark(self, kind: DigestKind, occasion: datetime) -> None:
        now = self.app.clock.now()
        async with self.app.sessions() as session:
            stmt = upsert_insert(session, KeyValue).values(
                key=mark_key(kind), value=occasion.isoformat(), updated_at=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[KeyValue.key],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
            await session.execute(stmt)
            await session.commit()


class _Tracked:
    """Remembers the current task while a job body runs, so shutdown can wait for it."""

    def __init__(self, tasks: set[asyncio.Task[Any]]) -> None:
        self._tasks = tasks
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        self._task = asyncio.current_task()
        if self._task is not None:
            self._tasks.add(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._tasks.discard(self._task)


def build_scheduler(app: App, **options: Any) -> HotlineScheduler:
    """What ``hotline run`` calls: ``s = build_scheduler(app); await s.start(); ...;
    await s.shutdown()``."""
    return HotlineScheduler(app, **options)
