"""``hotline digest`` and ``hotline export`` as an operator runs them (always on a SQLite file:
the CLI migrates SQLite on the fly, while PostgreSQL must be at the Alembic head)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.domain.enums import Role
from hotline.services.app import open_app
from storage import migrate
from tests.conftest import local
from tests.factories import file, make_reporter, make_staff


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with two tickets filed in week 2026-W47 (built once)."""
    path = tmp_path_factory.mktemp("cli") / "seed.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)

    async def seed() -> None:
        clock = ManualClock(local(2026, 11, 17, 9))
        app = await open_app(Settings(database_url=url, _env_file=None), clock)  # type: ignore[call-arg]
        await make_staff(app, Role.LEADER, name="Lãnh đạo")
        await make_staff(app, Role.MEMBER, "mps")
        reporter, contact = await make_reporter(app)
        await file(app, reporter, contact, "Dữ liệu <b>chưa</b> chia sẻ")
        await file(app, reporter, contact, "Hồ sơ bị trả lại", category="procedure")
        await app.close()

    asyncio.run(seed())
    return path


@pytest.fixture
def cli_db(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the seeded database, with HOTLINE_* pointing at it."""
    shutil.copy(seeded, tmp_path / "cli.db")
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HOTLINE_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def hotline(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from hotline.cli.main import run

    old = sys.argv
    sys.argv = ["hotline", *args]
    try:
        run()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_writes_files_and_sends_nothing(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = hotline("digest", "--week", "2026-W47", "--lang", "en", capsys=capsys)
    assert code == 0, err
    assert "2026-W47: new 2" in out and "dry run" in out
    folder = cli_db / "out" / "2026-W47"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "2026-W47-leaders-en-telegram.txt",
        "2026-W47-leaders-en.html",
        "2026-W47-leaders-en.png",
    ]
    assert "&lt;b&gt;chưa&lt;/b&gt;" in (folder / "2026-W47-leaders-en.html").read_text("utf-8")

    code, out, _ = hotline(
        "digest", "--month", "2026-11", "--out", str(cli_db / "m"), "--lang", "vi", capsys=capsys
    )
    assert code == 0
    month = sorted(p.name for p in (cli_db / "m" / "2026-11").iterdir())
    assert "2026-11-leaders-vi.xlsx" in month and "2026-11-leaders-vi.png" in month

    code, out, _ = hotline("digest", "--audience", "group:mps", "--week", "2026-W47", capsys=capsys)
    assert code == 0 and "group:mps: 0 recipient(s)" in out


def test_send_twice_says_it_was_already_sent(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = hotline("digest", "--week", "2026-W47", "--send", capsys=capsys)
    assert code == 0, err
    assert "queued" in out and "1 person" in out
    code, out, _ = hotline("digest", "--week", "2026-W47", "--send", capsys=capsys)
    assert code == 0 and "already sent; nothing done" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("digest", "--week", "2026-W60"), "no ISO week 60"),
        (("digest", "--week", "48"), "bad week"),
        (("digest", "--month", "2026-13"), "no month 2026-13"),
        (("digest", "--week", "2026-W47", "--month", "2026-11"), "not both"),
        (("digest", "--audience", "everyone"), "unknown audience"),
        (("digest", "--audience", "group:nope"), "unknown owner group 'nope'"),
        (("digest", "--lang", "fr"), "unknown language"),
        (("export", "--from", "2026-11-31", "--to", "2026-12-01"), "bad date"),
        (("export", "--from", "2026-11-10", "--to", "2026-11-01"), "before the start date"),
        (("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "pdf"), "unknown format"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_1(
    cli_db: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = hotline(*args, capsys=capsys)
    assert code == 1
    assert message in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 2  # one sentence (the console may wrap it)


def test_export_xlsx_and_csv(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = hotline("export", "--from", "2026-11-01", "--to", "2026-11-30", capsys=capsys)
    assert code == 0, err
    assert "2 ticket(s)" in out
    path = cli_db / "out" / "hotline-20261101-20261130.xlsx"
    book = load_workbook(path)
    assert book.sheetnames == ["Phiếu", "Sự kiện"]
    assert book["Phiếu"].max_row == 3
    code, out, _ = hotline(
        "export",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "csv",
        "--out",
        str(cli_db / "csv"),
        "--lang",
        "en",
        capsys=capsys,
    )
    assert code == 0
    assert sorted(p.name for p in (cli_db / "csv").iterdir()) == [
        "hotline-20261101-20261130-events.csv",
        "hotline-20261101-20261130-tickets.csv",
    ]
    code, out, _ = hotline(
        "export",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-01",
        "--out",
        str(cli_db / "one.xlsx"),
        capsys=capsys,
    )
    assert code == 0 and "0 ticket(s)" in out and (cli_db / "one.xlsx").exists()
