"""PostgreSQL admin helpers for tests, kept free of project imports."""

from __future__ import annotations


async def admin_execute(base_url: str, sql: str) -> None:
    """Run one statement on the server behind ``base_url`` (CREATE/DROP DATABASE)."""
    import asyncpg

    url = base_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
