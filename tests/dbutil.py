"""PostgreSQL admin helpers for tests, kept free of project imports."""

from __future__ import annotations

from pathlib import Path


async def admin_execute(base_url: str, sql: str) -> None:
    """Run one statement on the server behind ``base_url`` (CREATE/DROP DATABASE)."""
    import asyncpg

    url = base_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def scratch_dir(tmp_path: Path) -> Path:
    """A folder for a property test's throw-away SQLite databases: in RAM when the machine has
    /dev/shm (commits there cost no disk flush), else under ``tmp_path``."""
    import tempfile
    import uuid

    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path / uuid.uuid4().hex[:8]
    base.mkdir(exist_ok=True)
    return base
