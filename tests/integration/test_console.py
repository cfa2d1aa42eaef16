"""The console channel: in-process, piped through ``hotline chat`` (stdin), and on a terminal.

The subprocess tests use a SQLite file of their own (the console's default backend) on every
run, and each is bounded in time so a hung prompt fails instead of blocking the suite.
"""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select as sql_select

from bot import numbered
from bot.console import ConsoleChat
from handlers.engine import Engine
from handlers.harness import ScriptedClassifier
from hotline.deps import App
from hotline.domain.enums import Role, TicketState
from hotline.messages import Button, OutboundMessage
from storage.models import OutboxMessage, Ticket
from tests.factories import make_staff

HOTLINE = Path(sys.executable).parent / "hotline"
TIMEOUT = 90


def lines_reader(lines: list[str]):  # type: ignore[no-untyped-def]
    feed: Iterator[str] = iter(lines)

    async def read() -> str | None:
        return next(feed, None)

    return read


def test_render_numbers_buttons_continuously() -> None:
    message = OutboundMessage(
        channel="console", chat_id="a", text="<b>Chọn</b> &amp; gửi",
        buttons=((Button("Một", "a:1"), Button("Hai", "a:2")), (Button("<Ba>", "a:3"),)),
    )
    rendered = numbered.render(message, start=4)
    assert rendered.text == "Chọn & gửi\n  [4] Một\n  [5] Hai\n  [6] <Ba>"
    assert rendered.payloads == ["a:1", "a:2", "a:3"]
    assert numbered.render(OutboundMessage("console", "a", "x")).text == "x"
    assert [numbered.choice_number(x) for x in ("2", " 2 ", "2.", "12)", "0101234567", "2a", "")] \
        == [2, 2, 2, 12, None, None, None]


async def test_console_conversation_in_process(app: App) -> None:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    out = io.StringIO()
    chat = ConsoleChat(app, "alice", out, lang="vi", engine=Engine(app, intake=[numbered.intake]))
    script = [
        "/start", "1",  # Tiếng Việt
        "Công ty CP Số Việt", "1",  # enterprise
        "0101234567",  # a tax code: ten digits is text, not a choice
        "1",  # use the display name "alice"
        "Dữ liệu dân cư chưa được chia sẻ",
        "1",  # send
        "", "/quit", "never read",
    ]
    await chat.run(lines_reader(script))
    text = out.getvalue()
    assert "[1] 🇻🇳 Tiếng Việt" in text and "Đã đăng ký: alice" in text
    assert "Đã tiếp nhận phản ánh: HL-2026-000001" in text
    async with app.uow() as uow:
        ticket = (await uow.session.execute(sql_select(Ticket))).scalar_one()
        org_tax = ticket.organisation_id
        pending = await uow.outbox.pending(channel="console", chat_id="alice")
    assert ticket.category == "data" and org_tax is not None
    assert pending == []  # everything for alice was printed and marked sent


async def test_console_prints_notifications_queued_by_others(app: App) -> None:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    engine = Engine(app, intake=[numbered.intake])
    member, contact = await make_staff(app, Role.MEMBER, "mps")
    reporter_out = io.StringIO()
    reporter = ConsoleChat(app, "rep", reporter_out, engine=engine)
    for line in ("/start", "2", "ACME", "1", "1", "Bob", "Data of the province is not shared",
                 "1"):
        await reporter.send(line)
    assert "Report filed: HL-2026-000001" in reporter_out.getvalue()
    staff_out = io.StringIO()
    staff = ConsoleChat(app, contact.external_id, staff_out, engine=engine)
    assert await staff.deliver() == 1  # "assigned to you", with its acknowledge button as [1]
    assert "[1]" in staff_out.getvalue()
    await staff.send("1")
    async with app.uow() as uow:
        ticket = (await uow.session.execute(sql_select(Ticket))).scalar_one()
    assert ticket.state == TicketState.IN_PROGRESS and ticket.assignee_id == member.id
    await staff.send("1")  # the menu was used: "1" is now plain text, not a second press
    assert await reporter.deliver() == 1  # the acknowledgement notification
    assert "HL-2026-000001" in reporter_out.getvalue().rsplit("\n\n", 3)[-2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
               HOTLINE_CLASSIFIER_CACHE_DIR=str(tmp_path / "model"), PYTHONIOENCODING="utf-8",
               COLUMNS="120")
    return env


def _hotline() -> list[str]:
    if HOTLINE.exists():
        return [str(HOTLINE)]
    return [sys.executable, "-c", "from hotline.cli.main import run; run()"]


@pytest.mark.parametrize(("args", "message"), [
    (["--lang", "fr"], "unsupported language"),
    (["--as", "two words"], "--as must be one word"),
    (["--as", ""], "--as must be one word"),
])
def test_hotline_chat_rejects_bad_options(args: list[str], message: str) -> None:
    """One clear sentence (``hotline.cli.main.run`` prints it and exits 1), no database opened."""
    from typer.testing import CliRunner

    from hotline.cli.main import app as cli
    from hotline.errors import HotlineError

    result = CliRunner().invoke(cli, ["chat", *args], input="")
    assert isinstance(result.exception, HotlineError) and message in str(result.exception)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_hotline_chat_piped_then_on_a_terminal(tmp_path: Path) -> None:
    """Piped stdin registers a reporter; a second run on a pseudo-terminal (the interactive
    ``input()`` path) continues the same profile from the same database, and takes a long line
    and a multi-line paste whole."""
    script = "\n".join(["/start", "2", "Example Ltd", "1", "1", "Alice", "/mine", "/lang vi",
                        "/help", "/frobnicate"]) + "\n"
    done = subprocess.run([*_hotline(), "chat", "--as", "alice"], input=script, text=True,
                          capture_output=True, env=_env(tmp_path), cwd=tmp_path,
                          timeout=TIMEOUT, encoding="utf-8")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "[1] 🇻🇳 Tiếng Việt" in out and "[2] 🇬🇧 English" in out
    assert "Registered: Alice, Example Ltd." in out
    assert "Your organisation has no open tickets." in out
    assert "Đã chuyển sang tiếng Việt." in out and "Lệnh không hợp lệ" in out
    assert "Traceback" not in done.stderr

    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen([*_hotline(), "chat", "--as", "alice", "--lang", "en"],
                            stdin=secondary, stdout=secondary, stderr=secondary,
                            env=_env(tmp_path), cwd=tmp_path, close_fds=True)
    os.close(secondary)
    seen = b""

    def read_until(marker: str, deadline: float) -> None:
        nonlocal seen
        wanted = marker.encode()
        while wanted not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {marker!r}; got {seen[-800:]!r}")
            ready, _, _ = select.select([primary], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
        assert wanted in seen, f"missing {marker!r}; got {seen[-800:]!r}"

    def read_prompt(deadline: float) -> None:
        """Until the "> " prompt is on screen: readline reads the terminal from then on (text
        written before it meets the kernel's line buffer)."""
        nonlocal seen
        while not seen.endswith(b"> "):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for the prompt; got {seen[-300:]!r}")
            ready, _, _ = select.select([primary], [], [], remaining)
            if ready:
                seen += os.read(primary, 4096)

    try:
        deadline = time.monotonic() + TIMEOUT
        read_until("> ", deadline)
        os.write(primary, b"/start\n")
        read_until("Chào mừng Alice quay lại", deadline)  # her language is Vietnamese now
        os.write(primary, b"/report\n")
        read_until("Mô tả khó khăn", deadline)
        read_prompt(deadline)
        # A line longer than the terminal's 4,096-byte line buffer arrives whole (readline) and
        # gets Telegram's answer, not a silent cut at about 2,900 characters.
        long_line = ("Dữ liệu dân cư chưa được chia sẻ " * 200)[:5_499]
        os.write(primary, long_line.encode() + b"\n")
        read_until("tối đa 4000 ký tự", deadline)
        read_prompt(deadline)
        # A multi-line paste (bracketed paste) is one message: both lines in one draft.
        os.write(primary, "\x1b[200~Chưa có nghị định hướng dẫn\nLuật Dữ liệu năm 2024"
                          "\x1b[201~\n".encode())
        read_until("sẽ gửi):\r\nChưa có nghị định hướng dẫn\r\nLuật Dữ liệu năm 2024", deadline)
        os.write(primary, b"/cancel\n")
        read_until("Đã hủy", deadline)
        os.write(primary, b"/quit\n")
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)


async def test_numbered_menu_survives_in_the_database(app: App) -> None:
    """A menu remembered by one process answers a number taken in by another."""
    async with app.uow() as uow:
        await numbered.remember(uow, "zalo_bot", "c1", ["lang:vi", "lang:en"], app.clock.now())
        await uow.commit()
    menus = numbered.NumberedMenus(app)
    from hotline.messages import InboundEvent

    event = InboundEvent(channel="zalo_bot", update_id="1", user_id="c1", chat_id="c1", text="2")
    pressed = await menus.resolve(event)
    assert pressed.kind == "button" and pressed.payload == "lang:en"
    again = await menus.resolve(event)
    assert again.kind == "message" and again.text == "2"  # used menus are forgotten
    text = await menus.render(OutboundMessage("zalo_bot", "c1", "Chọn",
                                              buttons=((Button("A", "a:1"),),)), "Chọn")
    assert text == "Chọn\n  [1] A"
    async with app.uow() as uow:
        assert await numbered.remembered(uow, "zalo_bot", "c1") == ["a:1"]
        rows = (await uow.session.execute(sql_select(OutboxMessage))).scalars().all()
    assert rows == []
