"""``hotline sweep``: what operators type, on a database the command migrates itself (SQLite)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline.app import open_app
from hotline.cli.main import app as cli
from hotline.clock import ManualClock
from hotline.config import Settings
from tests.conftest import local
from tests.factories import file, make_reporter, make_staff

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return database


async def _seed(url: str) -> list[str]:
    from hotline.domain.enums import Role

    app = await open_app(Settings(database_url=url, _env_file=None),  # type: ignore[call-arg]
                         ManualClock(local(2026, 12, 7, 9, 0)))
    try:
        reporter, contact = await make_reporter(app)
        await make_staff(app, Role.MEMBER, "mps")
        await make_staff(app, Role.COORDINATOR)
        return [(await file(app, reporter, contact, f"Phiếu {i}")).ref for i in range(2)]
    finally:
        await app.close()


def test_sweep_command_dry_run_then_for_real(url: str) -> None:
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
    again = runner.invoke(cli, ["sweep", "--at", "2027-03-01T10:05", "--json"])
    assert json.loads(again.output)["fired"] == []


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
