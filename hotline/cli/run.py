"""``hotline run``: the bot (Telegram, and Zalo if configured), the outbox dispatcher and the
escalation scheduler in one process, until SIGTERM/SIGINT.

Configuration comes from the environment (``HOTLINE_TELEGRAM_TOKEN``, ``HOTLINE_DATABASE_URL``,
``HOTLINE_WEBHOOK_SECRET``...); see docs/telegram.md. Without any channel configured the
command says so in one sentence and points at ``hotline chat``.
"""

from __future__ import annotations

import logging
import os

import typer

from hotline.cli.common import opened_app, run_async
from hotline.config import Settings, load_settings
from hotline.errors import ConfigError

log = logging.getLogger("hotline.run")

NO_CHANNEL = (
    "set HOTLINE_TELEGRAM_TOKEN to the token @BotFather gave you (or configure a Zalo channel) "
    "to run the bot, or try `hotline chat` to talk to it in a terminal"
)


def run_bot(
    webhook: bool = typer.Option(
        False, "--webhook",
        help="receive Telegram updates on a webhook server (needs HOTLINE_WEBHOOK_SECRET; "
        "HOTLINE_PUBLIC_BASE_URL to register it) instead of long polling"),
    worker_id: str | None = typer.Option(
        None, "--worker-id", envvar="HOTLINE_WORKER_ID",
        help="name of this worker in outbox leases; unique per running process, stable across "
        "restarts so a restarted worker retries its unfinished sends at once"),
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="do not run escalation sweeps and digests in this process"),
    no_web: bool = typer.Option(
        False, "--no-web", help="do not serve the dashboard and public board on the webhook port"),
    workers: int = typer.Option(
        1, "--workers", min=1,
        help="with --webhook and PostgreSQL: this many worker processes sharing the port "
        "(SO_REUSEPORT); one scheduler leader among them, outbox rows claimed once"),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """Run the bot: updates in, engine, outbox out, escalation on schedule."""
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise ConfigError(f"unknown log level {log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    settings = load_settings()
    check_channels(settings, webhook=webhook)
    check_workers(settings, webhook=webhook, workers=workers)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiohttp's client logs full request URLs at DEBUG, and Bot API URLs contain the token.
    logging.getLogger("aiohttp.client").setLevel(max(level, logging.INFO))
    if workers > 1:
        raise typer.Exit(_run_workers(settings, workers, worker_id=worker_id,
                                      scheduler=not no_scheduler, web=not no_web))
    run_async(lambda: _run(settings, webhook=webhook, worker_id=worker_id,
                           scheduler=not no_scheduler, web=not no_web))


def check_workers(settings: Settings, *, webhook: bool, workers: int) -> None:
    """Several workers need a shared port (webhook) and a database several processes may
    write at once (PostgreSQL: SQLite has one writer and its dispatcher is one per file)."""
    if workers <= 1:
        return
    if not webhook:
        raise ConfigError("--workers needs --webhook: with long polling only one process may "
                          "ask Telegram for updates")
    if settings.zalo_bot_token is not None and settings.zalo_bot_mode == "polling":
        raise ConfigError("--workers needs HOTLINE_ZALO_BOT_MODE=webhook: only one process may "
                          "poll the Zalo bot for messages")
    if settings.database_url.startswith("sqlite"):
        raise ConfigError("--workers needs PostgreSQL (HOTLINE_DATABASE_URL): a SQLite file has "
                          "one writer, run one worker on it")


def _run_workers(settings: Settings, workers: int, *, worker_id: str | None, scheduler: bool,
                 web: bool) -> int:
    """Fork the workers once the port is known to be free; an explicit worker id gets the
    worker's index appended (stable across restarts, unique per process)."""
    # Imported once here (aiogram takes seconds), inherited by every child.
    import bot.runtime
    import bot.telegram.client  # noqa: F401
    from bot.workers import check_port, run_workers

    check_port(settings.webhook_host, settings.webhook_port)

    def work(index: int) -> None:
        run_async(lambda: _run(settings, webhook=True, reuse_port=True,
                               worker_id=f"{worker_id}-{index}" if worker_id else None,
                               scheduler=scheduler, web=web))

    return run_workers(workers, work)


def check_channels(settings: Settings, *, webhook: bool) -> None:
    """Fail before touching the database when no channel, or a half-configured one, is set."""
    from bot.runtime import zalo_configured_settings

    if settings.telegram_token is None and not zalo_configured_settings(settings):
        raise ConfigError(NO_CHANNEL)
    if webhook and settings.telegram_token is not None and settings.webhook_secret is None:
        raise ConfigError(
            "HOTLINE_WEBHOOK_SECRET is required with --webhook (1-256 characters of A-Z, a-z, "
            "0-9, _ and -); Telegram sends it with every update"
        )


async def _run(settings: Settings, *, webhook: bool, worker_id: str | None, scheduler: bool,
               web: bool, reuse_port: bool = False) -> None:
    from bot.runtime import BotRuntime
    from bot.telegram.client import bot_from_settings
    from hotline.web.app import setup_web

    # A malformed token is refused before the database is touched.
    bot = bot_from_settings(settings) if settings.telegram_token is not None else None
    try:
        async with opened_app(settings) as app:
            runtime = BotRuntime(
                app, bot, webhook=webhook, scheduler=scheduler,
                web=setup_web if web else None, reuse_port=reuse_port,
                worker_id=worker_id or default_worker_id(settings),
            )
            await runtime.run()  # closes the bot's session on the way out
    finally:
        if bot is not None:
            await bot.session.close()


def default_worker_id(settings: Settings) -> str:
    """SQLite runs one dispatcher per database, so the host name is stable and unique enough
    (a restart takes its leases back at once); PostgreSQL workers add their process id."""
    import socket

    host = socket.gethostname()
    if settings.database_url.startswith("sqlite"):
        return host[:64]
    return f"{host}:{os.getpid()}"[:64]
