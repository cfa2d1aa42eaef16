"""The scheduler: job timing, leader-only work, digest occasions, PostgreSQL leadership."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from escalation.leadership import AdvisoryLockLeadership, SingleProcessLeadership, lock_key
from escalation.scheduler import build_scheduler, latest_occasion
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.deps import App
from storage.db import create_engine
from tests.conftest import VN, local
from tests.fakes.leadership import Never

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def digests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[datetime, str]]:
    """A stand-in for ``hotline.digests.send_scheduled_digests`` (the scheduler's default
    sender) that records what it was asked to send."""
    calls: list[tuple[datetime, str]] = []

    async def send_scheduled_digests(app: App, now: datetime, kind: str) -> None:
        calls.append((now, kind))

    monkeypatch.setattr("escalation.scheduler.send_scheduled_digests", send_scheduled_digests)
    return calls


def test_latest_occasion_follows_the_configured_schedule() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    # Monday 08:00 weekly, the 10th at 08:00 monthly.
    assert latest_occasion("week", local(2027, 2, 8, 8, 0), s) == local(2027, 2, 8, 8, 0)
    assert latest_occasion("week", local(2027, 2, 8, 7, 59), s) == local(2027, 2, 1, 8, 0)
    assert latest_occasion("week", local(2027, 2, 14, 23, 0), s) == local(2027, 2, 8, 8, 0)
    assert latest_occasion("month", local(2027, 2, 10, 8, 0), s) == local(2027, 2, 10, 8, 0)
    assert latest_occasion("month", local(2027, 2, 10, 7, 0), s) == local(2027, 1, 10, 8, 0)
    assert latest_occasion("month", local(2027, 1, 3, 7, 0), s) == local(2026, 12, 10, 8, 0)
    other = Settings(weekly_digest_weekday=4, weekly_digest_hour=16, monthly_report_day=14,
                     _env_file=None)  # type: ignore[call-arg]
    assert latest_occasion("week", local(2027, 2, 8, 8, 0), other) == local(2027, 2, 5, 16, 0)
    assert latest_occasion("month", local(2027, 3, 1, 8, 0), other) == local(2027, 2, 14, 16, 0)


async def test_jobs_and_their_triggers(app: App) -> None:
    scheduler = build_scheduler(app, leadership=Never())
    jobs = {job.id: job for job in scheduler.scheduler.get_jobs()}
    assert set(jobs) == {"leader-election", "sweep", "weekly-digest", "monthly-report",
                         "housekeeping"}
    assert jobs["sweep"].trigger.interval.total_seconds() == app.settings.sweep_interval_seconds
    wednesday = datetime(2027, 2, 3, 12, 0, tzinfo=VN)
    weekly = jobs["weekly-digest"].trigger.get_next_fire_time(None, wednesday)
    monthly = jobs["monthly-report"].trigger.get_next_fire_time(None, wednesday)
    assert weekly == local(2027, 2, 8, 8, 0) and monthly == local(2027, 2, 10, 8, 0)
    assert str(weekly.tzinfo) == "Asia/Ho_Chi_Minh"


async def test_followers_do_no_work(app: App, clock: ManualClock,
                                    digests: list[tuple[datetime, str]]) -> None:
    scheduler = build_scheduler(app, leadership=Never())
    assert not await scheduler.elect()
    assert await scheduler.run_sweep() is None
    clock.set(local(2027, 2, 8, 8, 0))
    assert not await scheduler.run_digest("week")
    assert digests == []


async def test_sqlite_process_leads_and_sweeps(app: App, clock: ManualClock) -> None:
    scheduler = build_scheduler(app, leadership=SingleProcessLeadership())
    assert await scheduler.elect() and scheduler.is_leader
    report = await scheduler.run_sweep()
    assert report is not None and report.at == clock.now()


async def test_digest_once_per_occasion_with_catch_up(
    app: App, clock: ManualClock, digests: list[tuple[datetime, str]]
) -> None:
    scheduler = build_scheduler(app, leadership=SingleProcessLeadership())
    clock.set(local(2027, 2, 3, 10, 0))  # first start, a Wednesday: a baseline, no digest
    await scheduler.elect()
    assert scheduler.scheduler.get_job("digest-catch-up") is not None
    await scheduler.catch_up_digests()
    assert digests == []
    clock.set(local(2027, 2, 8, 8, 0))  # the Monday job fires
    assert await scheduler.run_digest("week")
    assert not await scheduler.run_digest("week")  # a second trigger the same week: no
    assert digests == [(local(2027, 2, 8, 8, 0), "week")]

    # The leader is down over the next Monday 08:00; a new leader at 09:30 catches up once.
    clock.set(local(2027, 2, 15, 9, 30))
    successor = build_scheduler(app, leadership=SingleProcessLeadership())
    await successor.elect()
    await successor.catch_up_digests()
    successor.scheduler.remove_job("digest-catch-up")
    await successor.elect()  # already leading: no second catch-up
    assert successor.scheduler.get_job("digest-catch-up") is None
    # The monthly baseline was 10 Jan; 10 Feb passed unattended, so that one is caught up too.
    assert digests == [
        (local(2027, 2, 8, 8, 0), "week"),
        (local(2027, 2, 15, 9, 30), "week"),
        (local(2027, 2, 15, 9, 30), "month"),
    ]
    clock.set(local(2027, 2, 15, 9, 31))
    assert not await successor.run_digest("month")
    assert not await successor.run_digest("week")


async def test_scheduler_runs_sweeps_and_catches_up_on_its_own(
    app: App, clock: ManualClock, digests: list[tuple[datetime, str]]
) -> None:
    from storage.models import KeyValue

    async with app.uow() as uow:  # a weekly digest was last sent for Monday 1 February
        uow.session.add(KeyValue(key="scheduler.digest.week", value=local(2027, 2, 1, 8, 0)
                                 .isoformat(), updated_at=clock.now()))
        await uow.commit()
    clock.set(local(2027, 2, 9, 10, 0))  # started on Tuesday: Monday's digest was missed
    scheduler = build_scheduler(app, leadership=SingleProcessLeadership(), election_seconds=0.05,
                                sweep_seconds=0.05)
    await scheduler.start()
    try:
        for _ in range(100):
            if scheduler.last_sweep is not None and digests:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.shutdown()
    assert scheduler.last_sweep is not None
    assert digests == [(local(2027, 2, 9, 10, 0), "week")]
    assert not scheduler.scheduler.running


@pytest.mark.postgres
async def test_postgres_leadership_moves_when_the_leader_dies(
    app: App, is_pg: bool, database_url: str
) -> None:
    if not is_pg:
        pytest.skip("advisory-lock leadership needs PostgreSQL")
    key = lock_key("test-leadership")
    engines = [create_engine(database_url) for _ in range(3)]
    first, second = (AdvisoryLockLeadership(e, key) for e in engines[:2])
    try:
        assert await first.refresh() and first.is_leader
        assert not await second.refresh() and not second.is_leader
        assert await first.refresh()  # a live leader keeps the lock

        # The leader's session dies (crash, network): the lock goes with it.
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        async with engines[2].connect() as admin:
            killed = await admin.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                     "WHERE locktype = 'advisory' AND granted "
                     "AND database = (SELECT oid FROM pg_database "
                     "                WHERE datname = current_database()) "
                     "AND classid::bigint = :hi AND objid::bigint = :lo"),
                {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
            )
            assert killed.all() == [(True,)]
            await admin.commit()
        # pg_terminate_backend only signals: the lock goes when that backend has exited, which
        # on a loaded machine takes a moment (the scheduler's next refresh takes it over).
        for _ in range(100):
            if await second.refresh():
                break
            await asyncio.sleep(0.05)
        assert second.is_leader
        assert not await first.refresh() and not first.is_leader  # notices, stays follower

        await second.release()
        assert await first.refresh()
    finally:
        for leadership in (first, second):
            await leadership.release()
        for engine in engines:
            await engine.dispose()


@pytest.mark.postgres
async def test_only_one_of_two_postgres_schedulers_leads(
    app: App, is_pg: bool, settings: Settings, clock: ManualClock
) -> None:
    if not is_pg:
        pytest.skip("advisory-lock leadership needs PostgreSQL")
    from hotline.services.app import open_app

    other_app = await open_app(settings, clock, sync_groups=False)
    schedulers: list[Any] = [build_scheduler(app), build_scheduler(other_app)]
    try:
        results = [await s.elect() for s in schedulers]
        assert results == [True, False]
        assert await schedulers[1].run_sweep() is None
        await schedulers[0].shutdown()  # graceful: the lock is released
        assert await schedulers[1].elect()
    finally:
        for s in schedulers:
            await s.shutdown()
        await other_app.close()
