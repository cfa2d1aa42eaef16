"""``hotline``: the command line. Each command opens what it needs and says errors in one line."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import typer
from rich.table import Table

from hotline.cli import chat, classify, demo, digest, similar, sweep, web
from hotline.cli import run as run_command
from hotline.cli.common import console, flags_take_no_value, opened_app, run_async
from hotline.config import load_settings
from hotline.domain.enums import Role
from hotline.errors import HotlineError
from hotline.services.people import MAX_INVITE_HOURS, MIN_INVITE_HOURS

flags_take_no_value()
app = typer.Typer(
    name="hotline",
    help="Blocker hotline: chat intake, deadlines, escalation and digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tickets_app = typer.Typer(help="Look at tickets.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tickets_app, name="tickets")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument(
        "head", help="Alembic revision to upgrade to (default: the newest)")) -> None:
    """Create or upgrade the schema (Alembic)."""
    from storage import migrate

    settings = load_settings()
    migrate.upgrade(settings.database_url, revision)
    console.print(f"database at revision {migrate.current(settings.database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the configured database."""
    from storage import migrate

    settings = load_settings()
    console.print(migrate.current(settings.database_url) or "empty (run 'hotline db upgrade')")


@db_app.command("prune")
def db_prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would go, delete nothing"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Delete inbound update ids and sent/failed/undeliverable outbox messages older than
    HOTLINE_INBOUND_RETENTION_DAYS / HOTLINE_OUTBOX_RETENTION_DAYS (the scheduler does this
    every night at 03:30)."""
    from hotline.i18n import format_local_datetime
    from hotline.services.housekeeping import prune_transport_tables

    settings = load_settings()

    async def _go() -> dict[str, object]:
        async with opened_app(settings) as hotline:
            return (await prune_transport_tables(hotline, dry_run=dry_run)).to_json()

    result = run_async(_go)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    inbound: dict[str, object] = result["inbound_updates"]  # type: ignore[assignment]
    outbox: dict[str, object] = result["outbox"]  # type: ignore[assignment]

    def before(part: dict[str, object]) -> str:
        return format_local_datetime(datetime.fromisoformat(str(part["before"])), "en",
                                     settings.timezone)

    verb = "would delete" if dry_run else "deleted"
    console.print(f"inbound update ids: {verb} {inbound['rows']} received before {before(inbound)}")
    console.print(f"outbox (sent/failed/undeliverable): {verb} {outbox['rows']} "
                  f"older than {before(outbox)}")
    console.print(f"{result['batches']} batch(es) in {result['seconds']} s")


@app.command("invite")
def invite(
    role: str = typer.Argument(..., help="member, lead, coordinator, leader or admin"),
    group: str | None = typer.Argument(None, help="owner group code (member and lead)"),
    hours: int | None = typer.Option(
        None, "--hours", min=MIN_INVITE_HOURS, max=MAX_INVITE_HOURS, metavar="HOURS",
        help=f"how long the code is valid, {MIN_INVITE_HOURS} to {MAX_INVITE_HOURS} hours "
        "(default: HOTLINE_INVITE_TTL_HOURS, 72)"),
) -> None:
    """Create a single-use invite code; the person sends '/join CODE' to the bot."""
    from hotline.i18n import format_local_datetime
    from hotline.services import people

    try:
        parsed = Role(role)
    except ValueError:
        valid = ", ".join(r.value for r in Role if r != Role.REPORTER)
        raise HotlineError(f"unknown role {role!r}: use one of {valid}") from None

    async def _go() -> tuple[str, str]:
        async with opened_app() as hotline:
            async with hotline.uow() as uow:
                issued = await people.create_invite(uow, hotline, parsed, group, ttl_hours=hours)
                await uow.commit()
                tz = hotline.settings.timezone
                local = format_local_datetime(issued.invite.expires_at, "en", tz)
                return issued.code, f"{local} ({tz})"

    code, expires = run_async(_go)
    console.print(f"invite code for {parsed.value}{' of ' + group if group else ''}: [bold]{code}[/]")
    console.print(f"valid until {expires}; send '/join {code}' to the bot", soft_wrap=True)


@tickets_app.command("list")
def tickets_list(
    state: list[str] = typer.Option([], "--state", help="filter by state (repeatable)"),
    group: str | None = typer.Option(None, help="owner group code"),
    category: str | None = typer.Option(
        None, help="category code, e.g. data or legal (an unknown code lists them all)"),
    open_only: bool = typer.Option(False, "--open", help="open tickets only"),
    overdue: bool = typer.Option(False, "--overdue", help="open tickets past their deadline"),
    rag: str | None = typer.Option(None, "--rag", help="green, amber or red (open tickets)"),
    triage: bool = typer.Option(False, "--triage", help="waiting for triage"),
    limit: int = typer.Option(50, min=1, max=10000, metavar="N", help="at most N tickets"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List tickets with filters, soonest deadline first."""
    from hotline.domain.enums import Rag, TicketState
    from hotline.services.queries import list_tickets

    for s in state:
        if s not in {x.value for x in TicketState}:
            raise HotlineError(f"unknown state {s!r}")
    if rag is not None and rag not in {x.value for x in Rag}:
        raise HotlineError(f"unknown RAG status {rag!r}: use green, amber or red")

    async def _go() -> list[dict[str, object]]:
        async with opened_app() as hotline:
            async with hotline.uow() as uow:
                return await list_tickets(
                    uow, hotline, states=state or None, group=group, category=category,
                    open_only=open_only or overdue or rag is not None, overdue=overdue, rag=rag,
                    triage=triage, limit=limit,
                )

    rows = run_async(_go)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    table = Table(title=f"{len(rows)} ticket(s)")
    columns = ["ref", "state", "rag", "category", "group", "assignee", "deadline_local", "title"]
    if overdue or rag is not None:  # how late, and how far up the ladder it already went
        columns[7:7] = ["overdue_days", "escalation"]
    headers = {"deadline_local": "deadline", "overdue_days": "late (bd)"}
    for col in columns:
        table.add_column(headers.get(col, col), no_wrap=col == "ref")
    for r in rows:
        table.add_row(*(str(r[c] or "") for c in columns))
    console.print(table)


@tickets_app.command("show")
def tickets_show(
    ref: str = typer.Argument(..., help="ticket code, e.g. HL-2026-000123"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """One ticket with its full event history."""
    from hotline.services.queries import ticket_detail

    async def _go() -> dict[str, object]:
        async with opened_app() as hotline:
            async with hotline.uow() as uow:
                return await ticket_detail(uow, hotline, ref)

    detail = run_async(_go)
    if as_json:
        print(json.dumps(detail, ensure_ascii=False, indent=1, default=str))
        return
    for key in ("ref", "state", "rag", "priority", "category", "group", "assignee", "reporter",
                "organisation", "deadline_local", "extensions", "title"):
        console.print(f"[bold]{key}[/]: {detail[key]}")
    table = Table(title="history")
    for col in ("at", "event", "actor", "from", "to", "note"):
        table.add_column(col)
    for e in detail["events"]:  # type: ignore[union-attr]
        table.add_row(e["at_local"], e["kind"], e["actor"] or "system", e["from_state"] or "",
                      e["to_state"] or "", (e["note"] or "")[:80])
    console.print(table)


def _register_commands() -> None:
    """Commands that live in their own modules (``hotline.cli.*``)."""
    for func, name in (
        (classify.classify, "classify"),
        (similar.similar, "similar"),
        (chat.chat, "chat"),
        (run_command.run_bot, "run"),
        (sweep.sweep, "sweep"),
        (digest.digest, "digest"),
        (digest.export, "export"),
        (demo.demo, "demo"),
        (web.web, "web"),
    ):
        app.command(name)(func)


_register_commands()


def run() -> None:
    """Console-script entry point: expected failures become one sentence and exit code 1."""
    try:
        app()
    except HotlineError as exc:
        # Plain print: Rich would wrap a long sentence over several lines.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if not isinstance(exc, DBAPIError):
            raise
        # A read-only or full database is the operator's to fix: one sentence, the driver's
        # own words, never the statement or its parameters (they can carry user text).
        print(f"error: the database refused the change ({exc.orig}); check that "
              "HOTLINE_DATABASE_URL points at a writable database with free disk space",
              file=sys.stderr)
        sys.exit(1)
