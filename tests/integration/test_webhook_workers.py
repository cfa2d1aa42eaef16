"""``hotline run --webhook --workers N``: N processes on one port, each update handled once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from hotline.config import Settings
from hotline.services.app import open_app
from storage import migrate
from storage.models import InboundUpdate
from tests.dbutil import admin_execute
from tests.fakes.telegram_api import FakeTelegramServer
from tests.integration.test_telegram_e2e_runtime import run_cli

pytestmark = pytest.mark.timeout(90)

SECRET = "workers-Test_secret"


def test_workers_need_the_webhook_and_postgresql(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_TELEGRAM_TOKEN", "123456:secret-value-here")
    monkeypatch.setenv("HOTLINE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/h.db")
    assert run_cli(monkeypatch, "run", "--workers", "2") == 1
    assert "--workers needs --webhook" in capsys.readouterr().err
    assert run_cli(monkeypatch, "run", "--webhook", "--workers", "2") == 1
    err = capsys.readouterr().err
    assert "--workers needs PostgreSQL" in err and "Traceback" not in err
    monkeypatch.setenv("HOTLINE_ZALO_BOT_TOKEN", "zalo-bot-token")
    monkeypatch.setenv("HOTLINE_ZALO_BOT_MODE", "polling")
    assert run_cli(monkeypatch, "run", "--webhook", "--workers", "2") == 1
    assert "HOTLINE_ZALO_BOT_MODE=webhook" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def listening_pids(pids: list[int], port: int) -> set[int]:
    """Which of ``pids`` hold a socket listening on ``port`` (from /proc, Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    holders = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    holders.add(pid)
        except OSError:
            continue
    return holders


@pytest.fixture
async def migrated_pg(pg_url: str | None) -> AsyncIterator[str]:
    """A fresh PostgreSQL database upgraded with Alembic, as ``hotline run`` expects."""
    base = os.environ.get("HOTLINE_TEST_DATABASE_URL", "")
    if pg_url is None or not base.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL (HOTLINE_TEST_DATABASE_URL)")
    name = f"hotline_workers_{uuid.uuid4().hex[:8]}"
    await admin_execute(base, f'CREATE DATABASE "{name}"')
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_workers_share_the_port_and_handle_each_update_once(
    migrated_pg: str, telegram_server: FakeTelegramServer, tmp_path: Path
) -> None:
    fake, port = telegram_server, free_port()
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": migrated_pg,
        "HOTLINE_TELEGRAM_TOKEN": fake.token,
        "HOTLINE_TELEGRAM_API_URL": fake.base_url,
        "HOTLINE_WEBHOOK_SECRET": SECRET,
        "HOTLINE_WEBHOOK_PORT": str(port),
        "HOTLINE_OUTBOX_PER_CHAT_INTERVAL": "0",
    }
    hotline = Path(sys.executable).with_name("hotline")
    proc = await asyncio.create_subprocess_exec(
        str(hotline), "run", "--webhook", "--workers", "2", "--no-scheduler", "--no-web",
        cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):  # both children listening on the one port
            workers = children(proc.pid)
            if len(workers) == 2 and listening_pids(workers, port) == set(workers):
                break
            if proc.returncode is not None:
                assert proc.stderr is not None
                err = (await proc.stderr.read()).decode(errors="replace")
                raise AssertionError(f"hotline run exited early ({proc.returncode}):\n{err[-3000:]}")
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"workers not listening: {children(proc.pid)}")

        updates = []
        for i in range(40):
            user = fake.user(880_000 + i % 10, f"U{i % 10}", None, language_code="vi")
            updates.append(fake.command_update("start", user=user) if i < 10
                           else fake.text_update(f"xin chào {i}", user=user))
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        # A connection per request, so the kernel spreads them over both listeners.
        connector = aiohttp.TCPConnector(force_close=True, limit=8)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def post(update: dict[str, object]) -> int:
                async with session.post(url, data=json.dumps(update), headers={
                        **headers, "Content-Type": "application/json"}) as response:
                    return response.status

            statuses = await asyncio.gather(*(post(u) for u in updates))
            again = await post(updates[-1])  # a redelivery changes nothing
        assert statuses == [200] * len(updates) and again == 200

        settings = Settings(database_url=migrated_pg, _env_file=None)  # type: ignore[call-arg]
        app = await open_app(settings, sync_groups=False)
        try:
            async with app.uow() as uow:
                ids = (await uow.session.execute(select(InboundUpdate.update_id))).scalars().all()
                rows = await uow.session.scalar(select(func.count()).select_from(InboundUpdate))
        finally:
            await app.close()
        assert rows == len(updates)
        assert sorted(str(i) for i in ids) == sorted(str(u["update_id"]) for u in updates)

        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert err.decode().count("bot stopped") == 2
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
