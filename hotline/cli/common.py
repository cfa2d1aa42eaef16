"""What every CLI command shares: settings, an opened App, one-sentence errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from rich.console import Console

from hotline.clock import Clock
from hotline.config import Settings, load_settings
from hotline.deps import App
from hotline.errors import ConfigError
from hotline.services.app import open_app

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


def ensure_schema(settings: Settings) -> None:
    """SQLite databases are created/upgraded on the fly (no setup); PostgreSQL must be at head
    (``hotline db upgrade``), since several workers may share it."""
    from storage import migrate

    url = settings.database_url
    if url.startswith("sqlite"):
        migrate.adopt_unversioned(url)
        migrate.upgrade(url)
        return
    head = migrate.head_revision()
    now = migrate.current(url)
    if now != head:
        raise ConfigError(
            f"database schema is at {now or 'nothing'}, expected {head}: run 'hotline db upgrade'"
        )


@asynccontextmanager
async def opened_app(
    settings: Settings | None = None, clock: Clock | None = None
) -> AsyncIterator[App]:
    settings = settings or load_settings()
    await asyncio.to_thread(ensure_schema, settings)
    app = await open_app(settings, clock)
    try:
        yield app
    finally:
        await app.close()


def flags_take_no_value() -> None:
    """Show flags in ``--help`` as flags: Typer 0.29's rich help prints a ``<bool>`` type after
    every on/off option (even ``--help``), as if ``--dry-run`` took a value. Options with a
    value keep their type; only flags, which have none to show, lose it."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_hotline_flags", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)  # type: ignore[arg-type]

    display_type_rich._hotline_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
