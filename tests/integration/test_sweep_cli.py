"""``hotline sweep``: what operators type, on a database the command migrates itself (SQLite)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline.cli.main import app as cli
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.services.app import open_app
from tests.conftest import local
from tests.factories import file, make_reporter, make_staff

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return database


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The commands' clock (injected where ``opened_app`` builds the App): Monday 1 March 2027,
    10:00 in Hanoi unless a test moves it."""
    from hotline.cli import common

    clock = ManualClock(local(2027, 3, 1, 10, 0))
    real = common.open_app

    async def with_clock(settings: Settings, given: object = None) -> object:
        return await real(settings, given or clock)  # type: ignore[arg-type]

    monkeypatch.setattr(common, "open_app", with_clock)
    return clock


async def _seed(url: str, at: datetime | None = None) -> list[str]:
    from hotline.domain.enums import Role

    app = await open_app(Settings(database_url=url, _env_file=None),  # type: ignore[call-arg]
                         ManualClock(at or local(2026, 12, 7, 9, 0)))
    try:
        reporter, contact = await make_reporter(app)
        await make_staff(app, Role.MEMBER, "mps")
        await make_staff(app, Role.COORDINATOR)
        return [(await file(app, reporter, contact, f"Phiếu {i}")).ref for i in range(2)]
    finally:
        await app.close()


def test_sweep_command_dry_run_then_for_real(url: str, wall: ManualClock) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["sweep", "--at", "2027-03-01T10:00", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["fired"] == []  # migrated an empty database, nothing due

    refs = asyncio.run(_seed(url))
    dry = runner.invoke(cli, ["sweep", "--at", "2027-03-01T10:00", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    result = json.loads(dry.output)
    assert result["dry_run"] and result["at"] == "2027-03-01T03:00:00+00:00"  # local -> UTC
    assert sorted(result["counts"].items()) == [("l1", 2), ("l2", 2), ("l3", 2), ("reminder", 2)]

    real = runner.invoke(cli, ["sweep", "--at", "2027-03-01T10:00+07:00"])
    assert real.exit_code == 0, real.output
    assert "8 step(s) fired" in real.output and refs[0] in real.output
    wall.set(local(2027, 3, 1, 10, 5))
    again = runner.invoke(cli, ["sweep", "--at", "2027-03-01T10:05", "--json"])
    assert json.loads(again.output)["fired"] == []


def test_a_sweep_in_the_future_only_looks(url: str, wall: ManualClock,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """On Thursday 3 December an operator asks what the sweep does on Christmas Eve: without
    --dry-run it is refused in one sentence and writes nothing; with --dry-run it shows the
    steps; a sweep as of a past instant records what it does at the real time, not then."""
    from sqlalchemy import select

    from hotline.cli.main import run
    from storage.models import Escalation, OutboxMessage, TicketEvent

    wall.set(local(2026, 12, 3, 14, 35))
    runner = CliRunner()
    assert runner.invoke(cli, ["sweep", "--dry-run"]).exit_code == 0  # creates the database
    asyncio.run(_seed(url, local(2026, 11, 2, 9, 0)))
    monkeypatch.setattr(sys, "argv", ["hotline", "sweep", "--at", "2026-12-24T10:00"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --at 2026-12-24T03:00:00+00:00 is later than now")
    assert "--dry-run" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1

    async def written() -> tuple[int, int, list[object]]:
        app = await open_app(Settings(database_url=url, _env_file=None), wall)  # type: ignore[call-arg]
        try:
            async with app.sessions() as s:
                steps = len((await s.execute(select(Escalation.id))).all())
                out = len((await s.execute(select(OutboxMessage.id))).all())
                ats = list((await s.execute(
                    select(TicketEvent.at).where(TicketEvent.kind == "escalated"))).scalars())
            return steps, out, ats
        finally:
            await app.close()

    before = asyncio.run(written())
    assert before[0] == 0 and before[2] == []
    dry = runner.invoke(cli, ["sweep", "--at", "2026-12-24T10:00", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["fired"], "the preview shows what would fire then"
    assert asyncio.run(written()) == before

    # Catching up as of Monday: decided as of then, recorded now (Thursday 14:35).
    real = runner.invoke(cli, ["sweep", "--at", "2026-11-30T09:00", "--json"])
    assert real.exit_code == 0, real.output
    assert json.loads(real.output)["fired"]
    steps, _, ats = asyncio.run(written())
    assert steps and ats and set(ats) == {local(2026, 12, 3, 14, 35)}


def test_bad_time_is_one_sentence_and_exit_1(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline.cli.main import run

    monkeypatch.setattr(sys, "argv", ["hotline", "sweep", "--at", "next tuesday"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --at 'next tuesday' is not an ISO time")
    assert "Traceback" not in err and err.count("error") == 1


def test_tickets_list_overdue_shows_how_late_and_the_escalation_level(url: str) -> None:
    """Operators' view after sweeps: tickets filed long ago are red, late, escalated to L3."""

    async def seed_old() -> None:
        from hotline.domain.enums import Role

        app = await open_app(Settings(database_url=url, _env_file=None),  # type: ignore[call-arg]
                             ManualClock(local(2024, 1, 8, 9, 0)))
        try:
            reporter, contact = await make_reporter(app)
            await make_staff(app, Role.MEMBER, "mps")
            await file(app, reporter, contact, "Phiếu cũ")
        finally:
            await app.close()

    runner = CliRunner()
    assert runner.invoke(cli, ["sweep", "--json"]).exit_code == 0  # migrates
    asyncio.run(seed_old())
    assert runner.invoke(cli, ["sweep", "--json"]).exit_code == 0  # as of now: all four rungs
    listed = runner.invoke(cli, ["tickets", "list", "--overdue", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert row["rag"] == "red" and row["escalation"] == "l3" and row["overdue_days"] > 100
    table = runner.invoke(cli, ["tickets", "list", "--rag", "red"])
    assert "HL-2024-000001" in table.output and "late" in table.output
