"""``hotline digest`` and ``hotline export``: digests and spreadsheets from the command line.

``digest`` defaults to a dry run that writes the files an audience would get (chat text, HTML
report, chart, monthly workbook) so an operator can look before sending; ``--send`` queues them
in the outbox, once per (audience, period). ``export`` writes every ticket and event of a date
range for analysts. ``main.py`` registers both when this module exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hotline.cli.common import console, opened_app, run_async
from hotline.errors import InvalidInput

if TYPE_CHECKING:
    from hotline.digests.period import Period


def _period(week: str | None, month: str | None, tz: str) -> Period | None:
    """The period named on the command line; None means "the last complete week"."""
    from hotline.digests import period as P

    if week and month:
        raise InvalidInput("give either --week or --month, not both")
    if week:
        return P.parse_week(week, tz)
    if month:
        return P.parse_month(month, tz)
    return None


def digest(
    week: str | None = typer.Option(None, "--week", help="ISO week, e.g. 2026-W48"),
    month: str | None = typer.Option(None, "--month", help="month, e.g. 2026-11"),
    audience: str = typer.Option("leaders", "--audience", help="leaders | group:CODE | reporters"),
    dry_run: bool = typer.Option(
        True, "--dry-run/--send", help="write the files only (default), or queue the messages"
    ),
    out: Path | None = typer.Option(None, "--out", help="folder for the files (default: output_dir)"),
    lang: str | None = typer.Option(None, "--lang", help="vi or en for a dry run (default: both)"),
) -> None:
    """Build a digest; with neither --week nor --month, the last complete ISO week.

    A week or month still running is reported as of now ("2026-W49, to Thursday 03/12 14:35"):
    overdue and late are judged now, nothing is projected; it can be previewed, not sent.
    """
    from hotline.config import load_settings
    from hotline.digests import period as P
    from hotline.digests.send import check_group, parse_audience

    settings = load_settings()
    tz = settings.timezone
    chosen = _period(week, month, tz)
    target = parse_audience(audience)
    if lang is not None and lang not in ("vi", "en"):
        raise InvalidInput(f"unknown language {lang!r}: use vi or en")
    folder = out or settings.output_dir

    async def _go() -> tuple[str, list[str], list[Path]]:
        from hotline.digests.data import build_digest_with_inputs
        from hotline.digests.render import plain_summary
        from hotline.digests.send import recipients, render_bundle, send_digest

        async with opened_app(settings) as hotline:
            await check_group(hotline, target)
            now = hotline.clock.now()
            # The one "as of" rule: a period still running is reported to now, and says so.
            period = P.as_of(chosen or P.last_complete_week(now, tz), now)
            digest, inputs = await build_digest_with_inputs(hotline, period)
            lines = [plain_summary(digest)]
            if dry_run:
                async with hotline.uow() as uow:
                    people = await recipients(uow, target)
                languages = [lang] if lang else ["vi", "en"]
                bundle = await render_bundle(
                    hotline, digest, target, languages, folder, now=now, inputs=inputs, reporters=people
                )
                if target.kind == "reporters":
                    lines.append(f"{len(bundle.reporters)} opted-in reporter(s) with open tickets")
                else:
                    pieces = {r.lang: len(r.messages) for r in bundle.by_lang.values()}
                    lines.append(
                        f"{target.key}: {len(people)} recipient(s); chat messages per language: {pieces}"
                    )
                lines.append("dry run: nothing queued (use --send to queue the messages)")
                return period.label, lines, bundle.files
            result = await send_digest(
                hotline, period, target, now=now, out_dir=folder, digest=digest, inputs=inputs
            )
            if result.status == "already_sent":
                lines.append(f"the {target.key} digest for {period.label} was already sent; nothing done")
            else:
                lines.append(f"queued {result.messages} message(s) for {result.people} person(s)")
            return period.label, lines, list(result.files)

    _, lines, files = run_async(_go)
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for path in files:
        console.print(str(path), highlight=False, markup=False, soft_wrap=True)


def export(
    from_: str = typer.Option(..., "--from", help="first day, e.g. 2026-11-01"),
    to: str = typer.Option(..., "--to", help="last day, included, e.g. 2026-11-30"),
    format: str = typer.Option(
        "xlsx", "--format",
        help="xlsx or csv (for people: words, local times) or json (for programs: codes, UTC)",
    ),
    out: Path | None = typer.Option(None, "--out", help="folder or .xlsx file (default: output_dir)"),
    lang: str = typer.Option("vi", "--lang", help="vi or en (column headings, names)"),
) -> None:
    """Write every ticket (as it stood at the end) and every event of a date range."""
    from hotline.config import load_settings
    from hotline.digests import period as P

    settings = load_settings()
    fmt = format.lower().strip()
    if fmt not in ("xlsx", "csv", "json"):
        raise InvalidInput(
            f"unknown format {format!r}: use xlsx, csv or json", key="digest.error.bad_format"
        )
    if lang not in ("vi", "en"):
        raise InvalidInput(f"unknown language {lang!r}: use vi or en")
    period = P.date_range(P.parse_date(from_), P.parse_date(to), settings.timezone)
    target = out or settings.output_dir

    async def _go() -> tuple[list[Path], int, int]:
        from hotline.digests.export import load_export, write_csv, write_json, write_xlsx

        async with opened_app(settings) as hotline:
            # A range reaching past today is exported as of now, like every period.
            data = await load_export(hotline, P.as_of(period, hotline.clock.now()))
            stem = f"hotline-{period.first_day:%Y%m%d}-{period.last_day:%Y%m%d}"
            if fmt == "json":
                folder = target.parent if target.suffix.lower() == ".json" else target
                path = target if target.suffix.lower() == ".json" else folder / f"{stem}-raw.json"
                paths = [write_json(path, data)]
            elif fmt == "csv":
                folder = target.parent if target.suffix.lower() == ".csv" else target
                paths = write_csv(folder, stem, data, hotline, lang)
            else:
                path = target if target.suffix.lower() == ".xlsx" else target / f"{stem}.xlsx"
                paths = [write_xlsx(path, data, hotline, lang)]
            return paths, len(data.replays), len(data.events)

    paths, tickets, events = run_async(_go)
    console.print(
        f"{tickets} ticket(s), {events} event(s) from {period.first_day} to {period.last_day}",
        highlight=False,
        markup=False,
    )
    for path in paths:
        console.print(str(path.resolve()), highlight=False, markup=False, soft_wrap=True)
