"""Alembic migrations create exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage import migrate
from storage.db import create_engine
from storage.models import Base
from tests.dbutil import admin_execute


def _fresh_url(tmp_path: Path) -> tuple[str, str | None]:
    base = os.environ.get("HOTLINE_TEST_DATABASE_URL")
    if base and base.startswith("postgresql"):
        name = f"hotline_mig_{uuid.uuid4().hex[:8]}"
        asyncio.run(admin_execute(base, f'CREATE DATABASE "{name}"'))
        url = base.rsplit("/", 1)[0] + "/" + name
        return url, name
    return f"sqlite+aiosqlite:///{tmp_path / 'mig.db'}", None


def _diff(url: str) -> list[object]:
    async def _compare() -> list[object]:
        engine = create_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
        await engine.dispose()
        return list(diff)

    return asyncio.run(_compare())


@pytest.mark.timeout(120)
def test_upgrade_to_head_matches_models(tmp_path: Path) -> None:
    url, pg_name = _fresh_url(tmp_path)
    try:
        assert migrate.current(url) is None
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head_revision()
        assert _diff(url) == []
        migrate.upgrade(url)  # idempotent
    finally:
        if pg_name:
            base = os.environ["HOTLINE_TEST_DATABASE_URL"]
            asyncio.run(admin_execute(base, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


def test_a_database_made_without_alembic_is_adopted(tmp_path: Path) -> None:
    """Tables from ``create_schema`` (tests, old demos) are stamped at head, not re-created."""
    from storage.db import create_schema

    url = f"sqlite+aiosqlite:///{tmp_path / 'made.db'}"

    async def _make() -> None:
        engine = create_engine(url)
        await create_schema(engine)
        await engine.dispose()

    asyncio.run(_make())
    assert migrate.adopt_unversioned(url) is True
    assert migrate.current(url) == migrate.head_revision()
    migrate.upgrade(url)  # nothing to do, no "table already exists"
    assert migrate.adopt_unversioned(url) is False
