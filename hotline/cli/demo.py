"""``hotline demo``: the README's first command -- a complete scripted run on SQLite, no token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotline.cli.common import console

if TYPE_CHECKING:
    from hotline.demo.run import DemoSummary


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="folder for the database and reports"),
    seed: int = typer.Option(7, "--seed", help="same seed, same story"),
    weeks: int = typer.Option(8, "--weeks", min=2, max=26, help="weeks of traffic to replay"),
) -> None:
    """Replay weeks of hotline traffic through the real engine and write the leaders' reports."""
    from hotline.demo.run import run_demo

    console.print("[bold]blocker-hotline demo[/]: a working group, 30 reporting organisations, "
                  f"{weeks} weeks of reports, escalations and digests (seed {seed})")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("replaying", total=1.0)

        def on_progress(fraction: float, day: str) -> None:
            progress.update(task, completed=fraction, description=f"replaying {day}")

        summary = asyncio.run(run_demo(out, seed=seed, weeks=weeks, on_progress=on_progress))
        progress.update(task, completed=1.0, description="done")

    print_summary(console, summary)


def print_summary(out: Console, summary: DemoSummary) -> None:
    """What happened, where the files are, and the command to look around (to copy whole)."""
    table = Table(title="What happened", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for label, value in summary.rows:
        table.add_row(label, value)
    out.print(table)
    # Paths and the command to copy are never wrapped: a terminal narrower than them folds
    # them visually, and piped output (80 columns for Rich) keeps them on one line to copy.
    out.print(f"database: {summary.database}", soft_wrap=True, highlight=False)
    for path in summary.files:
        out.print(f"  {path}", soft_wrap=True, highlight=False)
    out.print(f"finished in {summary.seconds:.1f} s. Look around with:", highlight=False)
    out.print(f"  HOTLINE_DATABASE_URL=sqlite+aiosqlite:///{summary.database} hotline tickets list",
              soft_wrap=True, highlight=False)
