"""A full disk or a read-only SQLite file: one clear answer, nothing half-written.

The tests run as root, so ``chmod`` would not stop a single write. Two real mechanisms instead:

* **Disk full** -- ``PRAGMA max_page_count`` set (on every new connection of the app's engine) to
  the database's current size: SQLite then fails the first write that needs a new page with
  ``SQLITE_FULL`` ("database or disk is full"), exactly as on a full disk.
* **Read-only** -- the file and its folder get the immutable attribute (``chattr +i``), which
  the kernel enforces for root too: SQLite's read-write open fails, it falls back to a
  read-only one, and the first write fails with ``SQLITE_READONLY``. (Skipped where the file
  system has no such attribute.)

What the reporter sees is the engine's error path (a translated apology in *their* language);
what the operator sees is one ``error:`` line from the CLI with exit code 1, no traceback and
no statement parameters (they can quote user text). The ticket, its events and its outbox rows
land together or not at all; once space is back the same report files normally.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from bot import numbered
from handlers.engine import Engine
from handlers.harness import ScriptedClassifier
from hotline.deps import App
from hotline.domain.enums import Role
from hotline.i18n import t
from hotline.messages import InboundEvent
from hotline.services.app import open_app
from storage.models import Invite, OutboxMessage, Ticket, TicketEvent
from tests.conftest import REPO_ROOT
from tests.factories import make_staff
from tests.reliability.support import register
from tests.reliability.tally import TALLY

pytestmark = pytest.mark.timeout(60)

REPORTER = 8001
LONG_REPORT = ("Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp; chi tiết kèm theo. " * 45)[:3900]


@pytest.fixture(autouse=True)
def sqlite_only(is_pg: bool) -> None:
    if is_pg:
        pytest.skip("SQLite file faults (the PostgreSQL run covers a server restart instead)")


async def counts(app: App) -> tuple[int, int, int]:
    async with app.uow() as uow:
        s = uow.session
        return (int(await s.scalar(select(func.count()).select_from(Ticket)) or 0),
                int(await s.scalar(select(func.count()).select_from(TicketEvent)) or 0),
                int(await s.scalar(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.payload["text"].as_string().contains("HL-"))) or 0))


def press(payload: str, update_id: str) -> InboundEvent:
    return InboundEvent(channel="telegram", update_id=update_id, user_id=str(REPORTER),
                        chat_id=str(REPORTER), kind="button", payload=payload, language="vi")


async def test_disk_full_while_filing_answers_clearly_and_writes_nothing(app: App) -> None:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    await make_staff(app, Role.MEMBER, "mps")
    await register(app, REPORTER, language="en")  # an English speaker on a Vietnamese client
    engine = Engine(app, intake=[numbered.intake])
    replies = await engine.handle(InboundEvent(
        channel="telegram", update_id="full-0", user_id=str(REPORTER), chat_id=str(REPORTER),
        text=LONG_REPORT, language="vi"))
    payload = next(b.payload for row in replies[0].buttons for b in row if b.payload.startswith("rfile:"))
    before = await counts(app)

    async with app.uow() as uow:
        pages = int(await uow.session.scalar(text("PRAGMA page_count")) or 0)

    def full_disk(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(app.engine.sync_engine, "connect", full_disk)
    await app.engine.dispose()  # every connection from now on sees the full disk
    try:
        answer = await engine.handle(press(payload, "full-1"))
        after = await counts(app)
    finally:
        event.remove(app.engine.sync_engine, "connect", full_disk)
        await app.engine.dispose()
    TALLY["sqlite_fault"] += 1
    TALLY["half_written"] += int(after != before)
    assert [r.text for r in answer] == [str(t("error.generic", "en"))]  # their language
    assert after == before  # no ticket, no event, no notification

    # Space is back: the reporter taps "send" again and the report files whole.
    await engine.handle(press(payload, "full-2"))
    tickets, events, notices = await counts(app)
    assert tickets == before[0] + 1 and events > before[1] and notices > before[2]


def immutable(paths: list[Path], on: bool) -> None:
    flag = "+i" if on else "-i"
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True, timeout=10)


async def test_read_only_database_is_one_cli_line_and_one_translated_answer(
    app: App, database_url: str, tmp_path: Path
) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: no way to make a file read-only for root")
    await register(app, REPORTER, language="vi")
    from storage import migrate

    await asyncio.to_thread(migrate.adopt_unversioned, database_url)
    await asyncio.to_thread(migrate.upgrade, database_url)
    async with app.uow() as uow:
        invites = int(await uow.session.scalar(select(func.count()).select_from(Invite)) or 0)
    await app.engine.dispose()
    db_file = Path(database_url.split("///", 1)[1])
    locked = [db_file, db_file.parent]
    try:
        immutable(locked, True)
    except (subprocess.CalledProcessError, OSError) as error:
        pytest.skip(f"this file system refuses the immutable attribute: {error}")
    try:
        env = {**os.environ, "HOTLINE_DATABASE_URL": database_url}
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from hotline.cli.main import run; run()", "invite", "member", "mps",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(REPO_ROOT), env=env,
        )
        _, err = await asyncio.wait_for(cli.communicate(), 60)
        stderr = err.decode()
        # The bot's engine on the same file: the reporter gets the apology in Vietnamese.
        ro_app = await open_app(app.settings, app.clock, sync_groups=False)
        try:
            answer = await Engine(ro_app).handle(InboundEvent(
                channel="telegram", update_id="ro-1", user_id=str(REPORTER), chat_id=str(REPORTER),
                text="/mine", language="en"))
        finally:
            await ro_app.close()
    finally:
        immutable(locked, False)
    async with app.uow() as uow:
        invites_after = int(await uow.session.scalar(select(func.count()).select_from(Invite)) or 0)
    TALLY["sqlite_fault"] += 1
    TALLY["half_written"] += int(invites_after != invites)
    assert cli.returncode == 1, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    # SQLite's words depend on whether its WAL files were left behind: both say what is wrong.
    assert stderr.startswith("error: the database refused the change (")
    assert "readonly database" in stderr or "unable to open database file" in stderr
    assert invites_after == invites
    # The engine could not even record its apology (read-only), so it answers without storing:
    # in the language of the client hint, since the person could not be read back either.
    assert [r.text for r in answer] in ([str(t("error.generic", "vi"))], [str(t("error.generic", "en"))])
    assert all("outbox_id" not in r.meta for r in answer)
