"""Run Alembic from code, so ``hotline db upgrade`` works from an installed package."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.db import normalise_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(database_url))
    config.set_main_option("version_path_separator", "os")
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    from sqlalchemy import text

    from storage.db import create_engine

    async def _read() -> str | None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                try:
                    row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
                except Exception:
                    return None
                return row[0] if row else None
        finally:
            await engine.dispose()

    return asyncio.run(_read())


def autogenerate(database_url: str, message: str) -> None:
    """Developer helper: write a new revision from the models (``python -m storage.migrate``)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


def adopt_unversioned(database_url: str) -> bool:
    """A database made by ``create_schema`` (tests, old demos) has the tables but no Alembic
    version: mark it as at head instead of failing on "table already exists". True if stamped."""
    from sqlalchemy import inspect

    from storage.db import create_engine

    async def _tables() -> set[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    tables = asyncio.run(_tables())
    if "tickets" in tables and "alembic_version" not in tables:
        command.stamp(alembic_config(database_url), "head")
        return True
    return False


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite:///:memory:")).get_current_head()


def regenerate_initial() -> Path:
    """Rewrite revision 0001 from the models. Only while nothing has been released: once a
    database in the field is at 0001, schema changes need a new revision (``autogenerate``)."""
    import tempfile

    for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'empty.db'}"
        command.revision(alembic_config(url), message="initial schema", autogenerate=True,
                         rev_id="0001")
    return next((MIGRATIONS_DIR / "versions").glob("0001_*.py"))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--regenerate-initial"]:
        print(regenerate_initial())
    else:
        autogenerate(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "schema change")
