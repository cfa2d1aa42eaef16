"""``hotline web``: a sign-in link from the command line, and the server as a real process.

On a SQLite database the command migrates itself (as operators would run it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline.cli.main import app as cli
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.domain.enums import Role
from hotline.errors import HotlineError
from hotline.services.app import open_app
from tests.conftest import local
from tests.factories import make_staff

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database)
    monkeypatch.setenv("HOTLINE_PUBLIC_BASE_URL", "https://hotline.example.gov.vn")
    monkeypatch.chdir(tmp_path)  # no stray .env
    return database


async def _leader(url: str) -> int:
    app = await open_app(Settings(database_url=url, _env_file=None),  # type: ignore[call-arg]
                         ManualClock(local(2026, 12, 7, 9, 0)))
    try:
        return (await make_staff(app, Role.LEADER))[0].id
    finally:
        await app.close()


def test_web_link_prints_a_one_time_link(url: str) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["web", "--link", "4242"])
    assert missing.exit_code != 0 and isinstance(missing.exception, HotlineError)  # and it migrated
    person = asyncio.run(_leader(url))
    result = runner.invoke(cli, ["web", "--link", str(person)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"https://hotline\.example\.gov\.vn/signin/[A-Za-z0-9_-]{43}\s*", result.output)


def test_web_serves_until_terminated(url: str, tmp_path: Path) -> None:
    hotline = shutil.which("hotline", path=str(Path(sys.executable).parent))
    if hotline is None:
        pytest.skip("the hotline console script is not installed")
    env = {**os.environ, "HOTLINE_DATABASE_URL": url}
    process = subprocess.Popen([hotline, "web", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if "web on http://" in line or not line:
                break
        found = re.search(r"web on (http://\S+)", line)
        assert found, line
        with urllib.request.urlopen(found.group(1) + "/board", timeout=30) as response:
            assert response.status == 200
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("args", [["tickets", "show", "HL-2026-000000"], ["web", "--link", "9" * 30]])
def test_impossible_ids_on_the_command_line_are_one_error_line(url: str, args: list[str]) -> None:
    """Refs and ids no row can have are "not found": exit 1, one ``error:`` line, no traceback."""
    hotline = shutil.which("hotline", path=str(Path(sys.executable).parent))
    if hotline is None:
        pytest.skip("the hotline console script is not installed")
    done = subprocess.run([hotline, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOTLINE_DATABASE_URL": url})
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "not found" in lines[0] or "no active person" in lines[0]
