"""Shared benchmark plumbing: throw-away databases, a results table, machine-readable rows.

Every benchmark prints its own markdown tables for people; given ``--json FILE`` it also writes
its headline figures as ``Result`` rows, which ``bench/run`` collects into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def machine() -> str:
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores{_cpu_model()}, "
            f"Python {platform.python_version()}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " (" + " ".join(line.split(":", 1)[1].split()) + ")"
    except OSError:
        pass
    return ""


@dataclass
class Result:
    """One headline figure of a benchmark, as ``bench/run`` tabulates it.

    ``ratio`` is the benchmark's own comparison with its baseline (each bench says which way
    round); ``target`` is the figure's goal in words (SPEC or issue), ``met`` whether this run
    reached it (None: no target)."""

    benchmark: str
    database: str  # "sqlite", "postgres" or "-" (no database involved)
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""


async def open_fresh_app(url: str, clock: Any, **settings: Any) -> Any:
    """The application on a new, empty schema at ``url`` (one bench run's throw-away
    database), with ``settings`` over the defaults and no ``.env`` file."""
    from hotline.config import Settings
    from hotline.services.app import open_app
    from storage.db import create_engine, create_schema

    engine = create_engine(url)
    await create_schema(engine)
    await engine.dispose()
    return await open_app(Settings(database_url=url, _env_file=None, **settings), clock)  # type: ignore[call-arg]


def pop_json_arg(argv: list[str] | None = None) -> Path | None:
    """Take ``--json FILE`` out of ``sys.argv`` (before the bench parses its own arguments)."""
    argv = sys.argv if argv is None else argv
    if "--json" not in argv:
        return None
    at = argv.index("--json")
    if at + 1 >= len(argv):
        raise SystemExit("--json needs a file name")
    path = Path(argv[at + 1])
    del argv[at:at + 2]
    return path


def write_results(path: Path | None, results: Sequence[Result]) -> None:
    """Write ``results`` as a JSON list to ``path`` (nothing when no ``--json`` was given)."""
    if path is None:
        return
    path.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=1),
                    encoding="utf-8")


def read_results(path: Path) -> list[Result]:
    return [Result(**row) for row in json.loads(path.read_text(encoding="utf-8"))]


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
