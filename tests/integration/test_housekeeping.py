"""Housekeeping of the transport tables: what goes, what stays, in batches; the nightly job and
``hotline db prune``. Runs on SQLite and, with ``HOTLINE_TEST_DATABASE_URL``, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from escalation.leadership import SingleProcessLeadership
from escalation.scheduler import build_scheduler
from hotline.cli.main import app as cli
from hotline.clock import ManualClock
from hotline.config import Settings, load_settings
from hotline.deps import App
from hotline.domain.enums import OutboxStatus
from hotline.errors import ConfigError
from hotline.services.app import open_app
from hotline.services.housekeeping import TERMINAL_OUTBOX_STATES, prune_transport_tables
from storage.models import InboundUpdate, OutboxMessage
from tests.conftest import VN, local
from tests.fakes.leadership import Never

pytestmark = pytest.mark.timeout(60)

DAY = timedelta(days=1)


def _outbox_row(label: str, status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    """A finished-or-not outbox row whose last activity was ``at``; ``label`` is its chat id."""
    row: dict[str, Any] = {
        "channel": "telegram", "chat_id": label, "payload": {"text": label}, "status": status,
        "next_attempt_at": at, "attempts": 1, "created_at": at, "parts_sent": 0,
        "sent_at": at if status == OutboxStatus.SENT.value else None,
    }
    return {**row, **extra}


async def _insert(app: App, inbound: list[tuple[str, datetime]],
                  outbox: list[dict[str, Any]]) -> None:
    async with app.engine.begin() as conn:
        if inbound:
            await conn.execute(insert(InboundUpdate.__table__), [
                {"channel": "telegram", "update_id": update_id, "received_at": at}
                for update_id, at in inbound
            ])
        if outbox:
            await conn.execute(insert(OutboxMessage.__table__), outbox)


async def _left(app: App) -> tuple[set[str], set[str]]:
    """Update ids and outbox chat ids (the rows' labels) still in the database."""
    async with app.engine.connect() as conn:
        inbound = set((await conn.execute(select(InboundUpdate.update_id))).scalars())
        outbox = set((await conn.execute(select(OutboxMessage.chat_id))).scalars())
    return inbound, outbox


def test_every_outbox_status_is_either_work_or_history() -> None:
    """A status added later must be classified here before housekeeping may delete it."""
    assert set(OutboxStatus) == {OutboxStatus.PENDING} | set(map(OutboxStatus, TERMINAL_OUTBOX_STATES))
    assert OutboxStatus.PENDING.value not in TERMINAL_OUTBOX_STATES


def test_retention_settings_have_safe_minimums() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.inbound_retention_days, defaults.outbox_retention_days) == (14, 90)
    assert Settings(inbound_retention_days=2, outbox_retention_days=7,
                    _env_file=None).inbound_retention_days == 2  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="HOTLINE_INBOUND_RETENTION_DAYS"):
        load_settings(inbound_retention_days=1, _env_file=None)
    with pytest.raises(ConfigError, match="HOTLINE_OUTBOX_RETENTION_DAYS"):
        load_settings(outbox_retention_days=6, _env_file=None)


async def test_only_old_update_ids_and_old_finished_messages_go(app: App, clock: ManualClock) -> None:
    now = clock.now()
    old_in, old_out = now - 15 * DAY, now - 91 * DAY
    await _insert(
        app,
        [("old", old_in), ("edge", now - 14 * DAY + timedelta(seconds=1)), ("new", now - DAY)],
        [
            _outbox_row("old-sent", "sent", old_out),
            _outbox_row("old-failed", "failed", old_out, last_error="400 chat not found"),
            _outbox_row("old-undeliverable", "undeliverable", old_out),
            # Work, however old: held, backed off, or in a worker's hands right now.
            _outbox_row("old-pending", "pending", old_out, attempts=0),
            _outbox_row("old-claimed", "pending", old_out, claimed_by="bot-1",
                        claimed_until=now + timedelta(seconds=30)),
            _outbox_row("new-sent", "sent", now - timedelta(minutes=1)),
            _outbox_row("new-failed", "failed", now - 89 * DAY),
            # Queued long ago but delivered yesterday: recent transport history, kept.
            _outbox_row("late-sent", "sent", old_out, sent_at=now - DAY),
        ],
    )
    report = await prune_transport_tables(app, pause_seconds=0)
    assert (report.inbound_updates, report.outbox, report.dry_run) == (1, 3, False)
    assert report.inbound_cutoff == now - 14 * DAY and report.outbox_cutoff == now - 90 * DAY
    inbound, outbox = await _left(app)
    assert inbound == {"edge", "new"}
    assert outbox == {"old-pending", "old-claimed", "new-sent", "new-failed", "late-sent"}
    again = await prune_transport_tables(app, pause_seconds=0)
    assert (again.inbound_updates, again.outbox) == (0, 0)


async def test_small_batches_delete_everything_due_and_a_dry_run_nothing(
    app: App, clock: ManualClock
) -> None:
    """Many rows share a timestamp (a digest queues hundreds at one instant), so batches end in
    the middle of a tie; update ids sort as text ("10" < "9"), interleaving old and new."""
    now = clock.now()
    inbound = [(str(i), now - (20 if i % 3 else 1) * DAY) for i in range(50)]
    outbox = [
        _outbox_row(f"m{i}", TERMINAL_OUTBOX_STATES[i % 3] if i % 4 else "pending",
                    now - (100 + i % 2) * DAY if i % 5 else now - DAY)
        for i in range(60)
    ]
    await _insert(app, inbound, outbox)
    due_in = {u for u, at in inbound if at < now - 14 * DAY}
    due_out = {r["chat_id"] for r in outbox
               if r["status"] != "pending" and r["next_attempt_at"] < now - 90 * DAY}
    assert len(due_in) == 33 and len(due_out) == 36

    before = await _left(app)
    dry = await prune_transport_tables(app, dry_run=True, batch_size=4, pause_seconds=0)
    assert (dry.dry_run, dry.inbound_updates, dry.outbox) == (True, 33, 36)
    assert await _left(app) == before

    report = await prune_transport_tables(app, batch_size=4, pause_seconds=0)
    assert (report.inbound_updates, report.outbox) == (33, 36)
    assert report.batches >= 33 // 4 + 36 // 4
    inbound_left, outbox_left = await _left(app)
    assert inbound_left == before[0] - due_in and outbox_left == before[1] - due_out

    with pytest.raises(ValueError):
        await prune_transport_tables(app, batch_size=0)


async def test_redelivery_is_caught_within_retention_and_not_after(
    app: App, clock: ManualClock
) -> None:
    """Why ``inbound_retention_days`` has a minimum: once an id is pruned, a redelivery of that
    update would be processed again. Channels redeliver for about a day, far inside 2 days."""

    async def claim(update_id: str) -> bool:
        async with app.uow() as uow:
            fresh = await uow.conversations.claim_update("telegram", update_id, clock.now())
            await uow.commit()
        return fresh

    assert await claim("777")
    clock.advance(timedelta(days=13, hours=23))
    await prune_transport_tables(app, pause_seconds=0)
    assert not await claim("777")  # still remembered: a redelivery is ignored
    clock.advance(timedelta(hours=2))
    report = await prune_transport_tables(app, pause_seconds=0)
    assert report.inbound_updates == 1
    assert await claim("777")  # forgotten: the same id would be taken as new


async def test_nightly_job_is_registered_and_leader_only(
    app: App, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    now = clock.now()
    await _insert(app, [("old", now - 30 * DAY)], [_outbox_row("old", "sent", now - 100 * DAY)])

    follower = build_scheduler(app, leadership=Never())
    job = follower.scheduler.get_job("housekeeping")
    assert job is not None
    first = job.trigger.get_next_fire_time(None, datetime(2027, 2, 3, 12, 0, tzinfo=VN))
    assert first == local(2027, 2, 4, 3, 30) and str(first.tzinfo) == "Asia/Ho_Chi_Minh"
    assert await follower.run_housekeeping() is None
    assert await _left(app) == ({"old"}, {"old"})

    leader = build_scheduler(app, leadership=SingleProcessLeadership())
    assert await leader.elect()
    with caplog.at_level(logging.INFO, logger="escalation.scheduler"):
        report = await leader.run_housekeeping()
    assert report is not None and (report.inbound_updates, report.outbox) == (1, 1)
    assert await _left(app) == (set(), set())
    [line] = [r.getMessage() for r in caplog.records if "housekeeping" in r.getMessage()]
    assert "pruned 1 inbound update id(s) older than 14 days and 1 finished outbox" in line


async def test_a_failing_prune_is_logged_and_the_job_survives(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import escalation.scheduler as module

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(module, "prune_transport_tables", broken)
    leader = build_scheduler(app, leadership=SingleProcessLeadership())
    await leader.elect()
    with caplog.at_level(logging.ERROR, logger="escalation.scheduler"):
        assert await leader.run_housekeeping() is None
    assert "housekeeping failed" in caplog.text


# --- hotline db prune -----------------------------------------------------------------------


@pytest.fixture
def cli_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return database


def test_prune_command_dry_run_then_for_real(cli_url: str) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["db", "prune", "--json"])  # migrates the new file first
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output)["outbox"]["rows"] == 0

    async def seed() -> None:
        app = await open_app(Settings(database_url=cli_url, _env_file=None))  # type: ignore[call-arg]
        now = app.clock.now()
        try:
            await _insert(app, [("old", now - 30 * DAY), ("new", now)],
                          [_outbox_row("old", "failed", now - 100 * DAY),
                           _outbox_row("new", "sent", now)])
        finally:
            await app.close()

    asyncio.run(seed())
    dry = runner.invoke(cli, ["db", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 received before" in dry.output
    assert "sent/failed/undeliverable): would delete 1 older than" in dry.output
    real = runner.invoke(cli, ["db", "prune", "--json"])
    result = json.loads(real.output)
    assert (result["dry_run"], result["inbound_updates"]["rows"], result["outbox"]["rows"]) == (
        False, 1, 1)
    again = runner.invoke(cli, ["db", "prune"])
    assert "deleted 0 received before" in again.output


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing-folder", "error: database folder does not exist"),
        ("not-a-database", "error: the database refused the change (file is not a database)"),
        ("bad-setting", "error: invalid configuration HOTLINE_OUTBOX_RETENTION_DAYS"),
    ],
)
def test_prune_command_says_what_is_wrong_in_one_line(
    setup: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hotline.cli.main import run

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "hotline.db"
    if setup == "missing-folder":
        target = tmp_path / "gone" / "hotline.db"
    elif setup == "not-a-database":
        target.write_text("these are not the pages you are looking for\n" * 200)
    else:
        monkeypatch.setenv("HOTLINE_OUTBOX_RETENTION_DAYS", "3")
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{target}")
    monkeypatch.setattr(sys, "argv", ["hotline", "db", "prune"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(expected), err
    assert "Traceback" not in err and err.count("\n") == 1

