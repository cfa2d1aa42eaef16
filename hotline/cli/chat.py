"""``hotline chat``: talk to the bot in a terminal, against the configured database.

Works interactively (line editing through ``input``) and piped
(``printf '/start\\n2\\n' | hotline chat --as alice``); ends on end of input or /quit.

Interactively, lines are read through GNU readline: the terminal's own line discipline cuts a
line at 4,096 bytes (about 2,900 Vietnamese characters) without a sign, while readline takes a
line of any length and a multi-line paste (bracketed paste) as one message. The engine then
applies the same 4,000-character rule, with the same answer, as on Telegram.
"""

from __future__ import annotations

import asyncio
import sys

import typer

from hotline.cli.common import opened_app, run_async
from hotline.errors import HotlineError
from hotline.i18n import LANGUAGES

MAX_USER = 64


def chat(
    user: str = typer.Option(
        "console", "--as", help="your name on the console channel; the same name continues "
        "the same conversation (and profile) next time"),
    lang: str | None = typer.Option(
        None, "--lang", help="vi or en: language for a first contact (afterwards: /lang)"),
) -> None:
    """Chat with the bot in this terminal: same engine and database as Telegram, no token.

    Buttons are shown as numbered choices: answer with the number.
    """
    user = user.strip()
    if not user or len(user) > MAX_USER or any(ch.isspace() for ch in user):
        raise HotlineError(f"--as must be one word of 1 to {MAX_USER} characters")
    if lang is not None and lang not in LANGUAGES:
        raise HotlineError(f"unsupported language {lang!r}: use vi or en")
    for stream in (sys.stdout, sys.stdin):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="replace")
    run_async(lambda: _chat(user, lang))


def use_readline() -> bool:
    """Whole lines and pastes in a terminal (see the module's docstring); False without it."""
    try:
        import readline
    except ImportError:  # a Python built without it: the terminal's limit applies
        return False
    readline.parse_and_bind("set enable-bracketed-paste on")
    return True


async def _chat(user: str, lang: str | None) -> None:
    from bot.console import ConsoleChat

    interactive = sys.stdin.isatty()
    if interactive:
        use_readline()

    async def read_line() -> str | None:
        if interactive:
            try:
                return await asyncio.to_thread(input, "> ")
            except EOFError:
                return None
        line = await asyncio.to_thread(sys.stdin.readline)
        return line or None

    async with opened_app() as app:
        await ConsoleChat(app, user, sys.stdout, lang=lang).run(read_line)
