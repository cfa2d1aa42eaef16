"""The command menu Telegram clients show when a user types ``/``.

Vietnamese is registered without ``language_code`` so it is the default for everyone;
English is registered for ``language_code="en"``, which Telegram matches against the
client's interface language. Descriptions come from ``templates/locales/*/telegram.toml``.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand

from hotline.i18n import t

#: Order is the order of the menu.
COMMANDS: tuple[str, ...] = (
    "start",
    "report",
    "mine",
    "status",
    "rate",
    "queue",
    "join",
    "cancel",
    "help",
    "lang",
    "web",
)


def bot_commands(lang: str) -> list[BotCommand]:
    """The menu in ``lang``; descriptions are plain text (Telegram shows them verbatim)."""
    return [
        BotCommand(command=name, description=t(f"telegram.commands.{name}", lang).unescape())
        for name in COMMANDS
    ]


async def set_bot_commands(bot: Bot) -> None:
    """Register both menus; idempotent, so it runs on every start."""
    await bot.set_my_commands(bot_commands("vi"))
    await bot.set_my_commands(bot_commands("en"), language_code="en")


async def delete_bot_commands(bot: Bot) -> None:
    await bot.delete_my_commands()
    await bot.delete_my_commands(language_code="en")
