"""Shared benchmark plumbing: throw-away databases and a results table."""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def machine() -> str:
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


@asynccontextmanager
async def temp_database(kind: str) -> AsyncIterator[str]:
    """A fresh database URL of ``kind`` ('sqlite' or 'postgres'), dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        return
    import asyncpg

    base = os.environ.get("HOTLINE_BENCH_PG_URL", DEFAULT_PG)
    admin = base.replace("postgresql+asyncpg://", "postgresql://")
    name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def postgres_available() -> bool:
    async def _probe() -> bool:
        try:
            import asyncpg

            base = os.environ.get("HOTLINE_BENCH_PG_URL", DEFAULT_PG)
            conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"),
                                         timeout=3)
            await conn.close()
            return True
        except Exception:
            return False

    return asyncio.run(_probe())


def print_table(title: str, header: list[str], rows: list[list[object]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text)
    print()
    return text
