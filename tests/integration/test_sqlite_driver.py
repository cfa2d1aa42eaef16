"""The few-hop aiosqlite connection under SQLAlchemy: same results as aiosqlite, fewer hand-offs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import sqlite_driver
from storage.db import create_engine

ROWS = sqlite_driver.PREFETCH * 3 + 7  # several hand-offs' worth, and a ragged last one

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(items), [{"id": i, "name": f"n{i}"} for i in range(1, ROWS + 1)])
    yield engine
    await engine.dispose()


def count_handoffs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = sqlite_driver.FewHopConnection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.FewHopConnection, "_execute", counting)
    return calls


async def test_the_engine_uses_the_few_hop_connection(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.FewHopConnection)


async def test_small_select_is_one_handoff(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's first-use set-up
        calls = count_handoffs(monkeypatch)
        rows = (await conn.execute(select(items).where(items.c.id <= 3))).all()
    assert [r.name for r in rows] == ["n1", "n2", "n3"]
    assert calls.count("_run") == 1 and len([c for c in calls if c != "rollback"]) == 1


async def test_large_results_arrive_whole_and_in_order(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(items.c.id).order_by(items.c.id))).scalars().all()
    assert rows == list(range(1, ROWS + 1))


async def test_streaming_reads_in_partitions(engine: AsyncEngine) -> None:
    seen: list[int] = []
    async with engine.connect() as conn:
        result = await conn.stream(select(items.c.id).order_by(items.c.id))
        async for part in result.partitions(100):
            assert len(part) <= 100
            seen += [r[0] for r in part]
        # fetchone / fetchmany across the prefetch boundary
        result = await conn.stream(select(items.c.id).order_by(items.c.id))
        first = await result.fetchone()
        chunk = await result.fetchmany(sqlite_driver.PREFETCH)
        rest = await result.fetchall()
    assert seen == list(range(1, ROWS + 1))
    assert first is not None and first[0] == 1
    assert [r[0] for r in chunk] == list(range(2, sqlite_driver.PREFETCH + 2))
    assert [r[0] for r in rest] == list(range(sqlite_driver.PREFETCH + 2, ROWS + 1))


async def test_writes_rowcount_lastrowid_returning(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        changed = await conn.execute(update(items).where(items.c.id <= 10).values(name="x"))
        assert changed.rowcount == 10
        added = await conn.execute(insert(items).values(name="new"))
        assert added.inserted_primary_key == (ROWS + 1,)
        returned = await conn.execute(insert(items).values(name="ret").returning(items.c.id))
        assert returned.scalar_one() == ROWS + 2
        many = await conn.execute(insert(items), [{"name": "a"}, {"name": "b"}])
        assert many.rowcount == 2
    async with engine.connect() as conn:
        names = (await conn.execute(select(items.c.name).where(items.c.id > ROWS))).scalars().all()
    assert names == ["new", "ret", "a", "b"]


async def test_errors_and_rollback_behave_as_before(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(Exception, match="UNIQUE"):
            await conn.execute(insert(items).values(id=1, name="dup"))
        await conn.rollback()
        assert (await conn.execute(select(items.c.name).where(items.c.id == 1))).scalar_one() == "n1"


async def test_a_cursor_left_mid_result_is_closed_on_its_thread(engine: AsyncEngine) -> None:
    """An unfinished read holds a snapshot; closing it must release it so the file can grow
    and checkpoint (a write from another connection then succeeds at once)."""
    async with engine.connect() as reader:
        result = await reader.stream(select(items.c.id))
        await result.fetchmany(5)
        await result.close()
        await reader.commit()
        async with engine.begin() as writer:
            await writer.execute(insert(items).values(name="after"))


async def test_begin_travels_with_the_first_statement(engine: AsyncEngine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """BEGIN IMMEDIATE costs no hand-off of its own, yet the write lock is taken at the
    transaction's first statement, as before: another writer is refused until commit."""
    path = engine.url.database

    def write_elsewhere() -> None:
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            other.execute("UPDATE items SET name = 'x' WHERE id = 1")
        finally:
            other.close()

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        await conn.commit()
        calls = count_handoffs(monkeypatch)
        await conn.execute(select(items.c.id).where(items.c.id == 1))
        assert calls == ["_run"]  # BEGIN IMMEDIATE went with it
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await asyncio.to_thread(write_elsewhere)
        await conn.execute(update(items).where(items.c.id == 2).values(name="mine"))
        await conn.commit()
        assert calls[-1] == "commit"
    await asyncio.to_thread(write_elsewhere)  # free again
    async with engine.connect() as conn:
        names = dict((await conn.execute(select(items.c.id, items.c.name)
                                         .where(items.c.id <= 2))).all())
    assert names == {1: "x", 2: "mine"}


async def test_a_transaction_that_ran_nothing_ends_without_a_handoff(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        await conn.commit()
        calls = count_handoffs(monkeypatch)
        await conn.begin()
        await conn.commit()
        await conn.begin()
        await conn.rollback()
        assert calls == []
        # ... and the next transaction still begins properly.
        await conn.execute(insert(items).values(id=ROWS + 1, name="late"))
        await conn.rollback()
        assert (await conn.execute(select(items.c.id).where(items.c.id == ROWS + 1))).first() is None
