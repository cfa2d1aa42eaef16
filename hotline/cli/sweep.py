"""``hotline sweep [--at TIME] [--dry-run] [--json]``: one escalation pass, as of a time.

Operators use it to see what the scheduler would do (``--dry-run``), to catch up by hand after
an outage, or -- with ``--at`` -- to replay a moment. ``main.py`` registers it when present.
"""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.table import Table

from escalation.sweep import parse_at
from hotline.cli.common import console, opened_app, run_async
from hotline.i18n import format_local_datetime


def sweep(
    at: str | None = typer.Option(
        None, "--at", help="ISO time, local Asia/Ho_Chi_Minh if no offset"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would fire, change nothing"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Run one escalation pass: fire every step due by TIME (default: now), exactly once."""
    from hotline.config import load_settings

    settings = load_settings()
    when = parse_at(at, settings.timezone) if at is not None else None

    async def _go() -> dict[str, object]:
        from escalation.sweep import sweep as run_sweep

        async with opened_app(settings) as hotline:
            report = await run_sweep(hotline, when or hotline.clock.now(), dry_run=dry_run)
            return report.to_json()

    result = run_async(_go)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    _print(result, settings.timezone)


def _print(result: dict[str, object], tz: str) -> None:
    fired: list[dict[str, object]] = result["fired"]  # type: ignore[assignment]
    verb = "would fire" if result["dry_run"] else "fired"
    at = format_local_datetime(datetime.fromisoformat(str(result["at"])), "en", tz)
    table = Table(title=f"sweep as of {at}: {len(fired)} step(s) {verb}")
    for col in ("ticket", "group", "level", "reason", "due", "messages", "held until"):
        table.add_column(col, no_wrap=col in ("ticket", "level", "messages"))
    for step in fired:
        held = step["held_until"]
        table.add_row(
            str(step["ticket"]),
            str(step["group"]),
            str(step["level"]),
            str(step["reason"]),
            format_local_datetime(datetime.fromisoformat(str(step["due_at"])), "en", tz),
            "-" if result["dry_run"] else (str(step["messages"]) if step["messages"] else "0 (no recipient)"),
            format_local_datetime(datetime.fromisoformat(str(held)), "en", tz) if held else "",
        )
    console.print(table)
    console.print(
        f"scanned {result['scanned']} open ticket(s) in {result['seconds']} s; "
        f"already fired elsewhere: {result['already_fired']}"
    )
    for label, key in (
        ("auto-closed", "auto_closed"),
        ("reminded to rate", "rating_reminded"),
        ("red alert raised", "alerts_raised"),
        ("red alert cleared", "alerts_cleared"),
        ("red groups", "red_groups"),
    ):
        items: list[str] = result[key]  # type: ignore[assignment]
        if items:
            console.print(f"{label}: {', '.join(items)}")
