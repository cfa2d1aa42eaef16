"""A full disk under the outbox: a message that went out but could not be recorded as sent is
never sent again by the same dispatcher (issue #17).

The SQLite database lives on a real 2 MB tmpfs. The dispatcher claims and sends while the fake
Telegram holds its answers; meanwhile the write-ahead log is emptied and the disk filled to the
last byte, so when the answers come every attempt to record "sent" fails with SQLITE_FULL. The
rows' one-second leases run out while the disk stays full (the heartbeat cannot extend them
either) -- the moment an older dispatcher claimed its own rows again and sent them a second and
third time. Then space comes back and everything is recorded, each message delivered once.

PostgreSQL's disk belongs to the server, so this runs on SQLite only. It needs to mount a
tmpfs (root); without that it is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiogram import Bot

from hotline.config import Settings
from hotline.deps import App
from hotline.services.app import open_app
from tests.fakes.telegram_api import FakeTelegramServer
from tests.integration.test_dispatcher import (
    RunningClock,
    add_rows,
    make_dispatcher,
    outbox_rows,
    running,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def small_disk(tmp_path: Path, is_pg: bool) -> Iterator[Path]:
    if is_pg:
        pytest.skip("a full disk under SQLite; PostgreSQL's disk is the server's")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 2 MB tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def empty_wal(database: Path) -> None:
    """Move the write-ahead log into the database file and cut it to zero bytes, so that the
    next write needs new space on the disk."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=10)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()


def fill(folder: Path) -> Path:
    """Write until the disk refuses another byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_never_makes_the_dispatcher_send_twice(
    small_disk: Path, clock: object, telegram_server: FakeTelegramServer, telegram_bot: Bot,
    classifier_cache: Path,
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{small_disk / 'hotline.db'}",
                        classifier_cache_dir=classifier_cache, _env_file=None)  # type: ignore[call-arg]
    app: App = await open_app(settings, RunningClock(clock.now()), create_tables=True)  # type: ignore[attr-defined]
    fake = telegram_server
    try:
        for chat in range(1, 7):
            await add_rows(app, chat, [f"tin nhắn cho {chat}"])
        await add_rows(app, 7, ["thứ nhất", "thứ hai"])  # the second waits behind the first
        fake.hang("sendMessage", 1.5, times=7)
        dispatcher = make_dispatcher(app, telegram_bot, lease_seconds=1.0, poll_interval=0.1,
                                     global_per_second=1000)
        async with running(dispatcher):
            await wait_until(lambda: len(fake.calls_to("sendMessage")) == 7, within=10)
            # While the answers are held: an empty write-ahead log and not a byte left.
            await asyncio.to_thread(empty_wal, small_disk / "hotline.db")
            filler = fill(small_disk)
            assert os.statvfs(small_disk).f_bavail == 0
            await wait_until(lambda: dispatcher.unrecorded == 7, within=10)
            await asyncio.sleep(3.0)  # leases ran out long ago; nothing may go out again
            assert len(fake.calls_to("sendMessage")) == 7
            rows = await outbox_rows(app)
            assert [r.status for r in rows.values()] == ["pending"] * 8  # nothing could be written

            filler.unlink()  # space is back
            await wait_until(lambda: len(fake.sent_messages(7)) == 2, within=15)
            await wait_until(lambda: dispatcher.unrecorded == 0, within=10)
        delivered = Counter(c.params.get("text") for c in fake.calls_to("sendMessage"))
        assert len(delivered) == 8 and set(delivered.values()) == {1}  # each exactly once
        rows = await outbox_rows(app)
        assert {(r.status, r.attempts, r.claimed_by) for r in rows.values()} == {("sent", 1, None)}
    finally:
        await app.close()
