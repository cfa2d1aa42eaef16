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


@pytest.mark.timeout(120)
def test_contacts_pointing_at_a_group_are_repaired(tmp_path: Path) -> None:
    """A database from before the group fix: a coordinator's Telegram contact moved to a group
    (negative id) with a sign-in link still queued there, a Zalo Bot contact moved to a Zalo
    group, and a healthy private contact. After the upgrade every contact is its private chat,
    the queued link goes to the person's own chat, and old sign-in links and sessions are void."""
    from sqlalchemy import text

    url, pg_name = _fresh_url(tmp_path)
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, 3, tzinfo=UTC)
    try:
        migrate.upgrade(url, "0001")

        async def _seed() -> None:
            engine = create_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO contacts (id, channel, external_id, chat_id, active, created_at) VALUES "
                    "(1, 'telegram', '1001', '-1001234567890', true, :now), "
                    "(2, 'zalo_bot', 'u-an', 'g-tocongtac', true, :now), "
                    "(3, 'telegram', '1002', '1002', true, :now)"), {"now": now})
                payload = '{"channel": "telegram", "chat_id": "-1001234567890", "text": "link", ' \
                          '"buttons": [], "retire_buttons_of": "77", "meta": {}}'
                await conn.execute(text(
                    "INSERT INTO outbox (id, channel, chat_id, contact_id, payload, status, "
                    "next_attempt_at, attempts, created_at, parts_sent) VALUES "
                    "(1, 'telegram', '-1001234567890', 1, :payload, 'pending', :now, 0, :now, 0), "
                    "(2, 'telegram', '-1001234567890', NULL, :payload, 'pending', :now, 0, :now, 0)"),
                    {"payload": payload, "now": now})
                await conn.execute(text(
                    "INSERT INTO key_values (key, value, updated_at) VALUES "
                    "('web.signin.abc', '{}', :now), ('web.session.def', '{}', :now), "
                    "('zalo_oa.tokens', '{}', :now)"), {"now": now})
            await engine.dispose()

        async def _read() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[str]]:
            engine = create_engine(url)
            async with engine.connect() as conn:
                contacts = [tuple(r) for r in await conn.execute(
                    text("SELECT id, chat_id FROM contacts ORDER BY id"))]
                outbox = [tuple(r) for r in await conn.execute(
                    text("SELECT id, chat_id, payload FROM outbox ORDER BY id"))]
                keys = [r[0] for r in await conn.execute(text("SELECT key FROM key_values"))]
            await engine.dispose()
            return contacts, outbox, keys

        asyncio.run(_seed())
        migrate.upgrade(url)
        contacts, outbox, keys = asyncio.run(_read())
        assert contacts == [(1, "1001"), (2, "u-an"), (3, "1002")]
        import json

        first = json.loads(outbox[0][2]) if isinstance(outbox[0][2], str) else outbox[0][2]
        assert outbox[0][1] == "1001" and first["chat_id"] == "1001"
        assert first["retire_buttons_of"] is None
        assert outbox[1][1] == "-1001234567890"  # a group's own note (no contact) stays
        assert keys == ["zalo_oa.tokens"]
    finally:
        if pg_name:
            base = os.environ["HOTLINE_TEST_DATABASE_URL"]
            asyncio.run(admin_execute(base, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
