"""Spreadsheets of a period: the monthly report workbook and ``hotline export`` (XLSX or CSV).

Tickets are described as they stood at the end of the period (the same replay as the digest,
so the workbook and the digest agree); events are every event inside the period, with notes.
Times are written as local wall-clock times, the way people in Hanoi read them.

User text goes into cells as text, never as a formula: openpyxl would turn ``=HYPERLINK(...)``
typed by a reporter into a live formula, and spreadsheet programs do the same with CSV fields
starting with ``= + - @`` -- so XLSX cells are forced to the string type and such CSV fields
get a leading apostrophe (the OWASP advice for CSV injection).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.app import Deps
from hotline.digests.compute import Replay, Rules, replay_tickets
from hotline.digests.data import DigestInputs, _chunks, load_inputs, rules_for
from hotline.digests.model import Digest
from hotline.digests.period import Period
from hotline.i18n import normalise_language, plain, t
from storage.models import Person, Ticket, TicketEvent

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "dd/mm/yyyy hh:mm"


@dataclass(frozen=True)
class PeriodEvent:
    at: datetime
    ref: str
    kind: str
    actor_id: int | None
    from_state: str | None
    to_state: str | None
    note: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class ExportData:
    period: Period
    inputs: DigestInputs
    replays: dict[int, Replay]
    events: list[PeriodEvent]
    people: dict[int, str]


async def load_period_events(session: AsyncSession, period: Period) -> list[PeriodEvent]:
    stmt = (
        select(
            TicketEvent.at,
            Ticket.ref,
            TicketEvent.kind,
            TicketEvent.actor_id,
            TicketEvent.from_state,
            TicketEvent.to_state,
            TicketEvent.note,
            TicketEvent.data,
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.at >= period.start, TicketEvent.at < period.end)
        .order_by(TicketEvent.at, TicketEvent.id)
    )
    return [PeriodEvent(*row[:7], dict(row[7] or {})) for row in await session.execute(stmt)]


async def _people_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    names: dict[int, str] = {}
    for chunk in _chunks(wanted):
        rows = await session.execute(select(Person.id, Person.display_name).where(Person.id.in_(chunk)))
        names.update({int(pid): name for pid, name in rows})
    return names


async def load_export(app: Any, period: Period, inputs: DigestInputs | None = None) -> ExportData:
    """Tickets of the period (active in it or open at its end) and the period's events."""
    async with app.sessions() as session:
        if inputs is None:
            inputs = await load_inputs(session, period)
        events = await load_period_events(session, period)
        people = await _people_names(session, [e.actor_id for e in events if e.actor_id is not None])
    rules = rules_for(app)
    group_ids = {g.code: g.id for g in inputs.groups}
    replays, _ = replay_tickets(inputs.events, rules, group_ids, period.end)
    people.update(inputs.names)
    return ExportData(period, inputs, replays, events, people)


# ---------------------------------------------------------------------------------------------
# Rows (pure)
# ---------------------------------------------------------------------------------------------


def _local(value: datetime | None, tz: str) -> datetime | None:
    """Excel has no time zones: local wall-clock time, naive, to the second."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)


def _label(key: str, lang: str) -> str:
    return plain(str(t(key, lang)))


TICKET_COLUMNS = (
    "ref",
    "title",
    "category",
    "group",
    "assignee",
    "reporter",
    "org_kind",
    "priority",
    "created",
    "deadline",
    "resolved_at",
    "closed",
    "state",
    "rag",
    "days_overdue",
    "ext_requested",
    "ext_approved",
    "ext_refused",
    "reopened",
    "rating",
)
EVENT_COLUMNS = ("at", "ref", "event", "actor", "from_state", "to_state", "note", "data")


def ticket_header(lang: str) -> list[str]:
    keys = {
        "ext_requested": "digest.metric.ext_requested",
        "ext_approved": "digest.metric.ext_approved",
        "ext_refused": "digest.metric.ext_refused",
    }
    return [_label(keys.get(c, f"digest.col.{c}"), lang) for c in TICKET_COLUMNS]


def event_header(lang: str) -> list[str]:
    return [_label(f"digest.col.{c}", lang) for c in EVENT_COLUMNS]


def ticket_rows(data: ExportData, deps: Deps, lang: str, rules: Rules | None = None) -> list[list[Any]]:
    """One row per ticket of the period, as it stood at the end."""
    rules = rules or rules_for(deps)
    tz, end = data.period.tz, data.period.end
    groups = {g.id: g for g in data.inputs.groups}
    rows = []
    for tid, r in data.replays.items():
        info = data.inputs.tickets.get(tid)
        if info is None:
            continue
        group = groups.get(r.group_id) if r.group_id is not None else None
        cat = deps.taxonomy.categories.get(r.category)
        rows.append(
            [
                info.ref,
                info.title,
                cat.name(lang) if cat else r.category,
                (group.name_en if lang == "en" else group.name_vi) if group else "",
                data.people.get(r.assignee_id, "") if r.assignee_id is not None else "",
                info.org_name,
                _label(f"org_kind.{info.org_kind}", lang),
                _label(f"priority.{r.priority}", lang),
                _local(r.created_at, tz),
                _local(r.deadline, tz),
                _local(r.resolved_at, tz),
                _local(r.closed_at, tz),
                _label(f"state.{r.state}", lang),
                _label(f"digest.stock.{r.rag(rules, end)}", lang) if r.is_open else "",
                round(r.days_overdue(rules, end), 2) if r.is_open else None,
                r.ext_requested,
                r.ext_approved,
                r.ext_refused,
                r.reopened,
                r.rating,
            ]
        )
    rows.sort(key=lambda row: row[0])
    return rows


def _event_name(kind: str, lang: str) -> str:
    name = _label(f"digest.event.{kind}", lang)
    return kind if name.startswith("digest.event.") else name


def event_rows(data: ExportData, lang: str) -> list[list[Any]]:
    tz = data.period.tz
    return [
        [
            _local(e.at, tz),
            e.ref,
            _event_name(e.kind, lang),
            data.people.get(e.actor_id, "") if e.actor_id is not None else "",
            e.from_state or "",
            e.to_state or "",
            e.note or "",
            json.dumps(e.data, ensure_ascii=False, sort_keys=True, default=str) if e.data else "",
        ]
        for e in data.events
    ]


def summary_rows(digest: Digest, lang: str, taxonomy: Any) -> list[list[Any]]:
    """Indicator / value pairs for the workbook's first sheet."""

    def lbl(key: str, **params: Any) -> str:
        return plain(str(t(key, lang, **params)))

    d = digest
    rows: list[list[Any]] = [
        [lbl(f"digest.title_{d.period.kind}", label=d.period.label)],
        [lbl("digest.dates", first=d.period.first_day.isoformat(), last=d.period.last_day.isoformat())],
        [],
        [lbl("digest.col.indicator"), lbl("digest.col.value")],
        [lbl("digest.flow.new"), d.flow.new],
        [lbl("digest.flow.resolved"), d.flow.resolved],
        [lbl("digest.flow.closed"), d.flow.closed],
        [lbl("digest.flow.rejected"), d.flow.rejected],
        [lbl("digest.flow.reopened"), d.flow.reopened],
        [lbl("digest.stock.open"), d.stock.open],
        [lbl("digest.stock.overdue"), d.stock.overdue],
        [lbl("digest.stock.amber"), d.stock.amber],
        [lbl("digest.stock.green"), d.stock.green],
        [lbl("digest.stock.waiting"), d.stock.waiting_reporter],
        [lbl("digest.metric.ext_requested"), d.extensions.requested],
        [lbl("digest.metric.ext_approved"), d.extensions.approved],
        [lbl("digest.metric.ext_refused"), d.extensions.refused],
        [
            lbl("digest.metric.first_response"),
            None if d.first_response.percent is None else round(d.first_response.percent, 1),
        ],
        [lbl("digest.metric.resolve_median"), _round(d.resolve_time.median_days)],
        [lbl("digest.metric.resolve_p90"), _round(d.resolve_time.p90_days)],
        [lbl("digest.metric.satisfaction"), _round(d.satisfaction.mean)],
        [lbl("digest.metric.ratings"), d.satisfaction.count],
        [lbl("digest.metric.escalations"), d.escalations],
        [lbl("digest.metric.red_groups"), ", ".join(a.name(lang) for a in d.red_alerts if a.open_at_end)],
        [],
        [
            lbl("digest.col.group"),
            lbl("digest.stock.open"),
            lbl("digest.stock.overdue"),
            lbl("digest.stock.green"),
            lbl("digest.stock.amber"),
            lbl("digest.stock.red"),
            lbl("digest.flow.new"),
            lbl("digest.flow.resolved"),
            lbl("digest.metric.ext_requested"),
            lbl("digest.metric.ext_approved"),
        ],
    ]
    for g in d.groups:
        rows.append(
            [
                g.name(lang),
                g.stock.open,
                g.stock.overdue,
                g.stock.green,
                g.stock.amber,
                g.stock.red,
                g.flow.new,
                g.flow.resolved,
                g.extensions.requested,
                g.extensions.approved,
            ]
        )
    rows.append([])
    rows.append(
        [
            lbl("digest.col.kind"),
            lbl("digest.flow.new"),
            lbl("digest.flow.resolved"),
            lbl("digest.stock.open"),
            lbl("digest.stock.overdue"),
            lbl("digest.col.rating"),
            lbl("digest.col.ratings"),
        ]
    )
    for k in d.by_reporter_kind:
        rows.append(
            [
                lbl(f"org_kind.{k.key}"),
                k.flow.new,
                k.flow.resolved,
                k.stock.open,
                k.stock.overdue,
                _round(k.satisfaction.mean),
                k.satisfaction.count,
            ]
        )
    rows.append([])
    rows.append(
        [
            lbl("digest.col.category"),
            lbl("digest.flow.new"),
            lbl("digest.flow.resolved"),
            lbl("digest.stock.open"),
            lbl("digest.stock.overdue"),
        ]
    )
    for c in d.by_category:
        cat = taxonomy.categories.get(c.key)
        rows.append(
            [cat.name(lang) if cat else c.key, c.flow.new, c.flow.resolved, c.stock.open, c.stock.overdue]
        )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

_HEAD_FONT = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="F1F3F7")


def _cells(ws: WriteOnlyWorksheet, values: Sequence[Any], *, head: bool = False) -> list[Any]:
    """A row for ``ws.append``: plain values where openpyxl would do the right thing (fast), a
    cell object only where it would not -- text that looks like a formula, and dates that
    should read the Vietnamese way."""
    out: list[Any] = []
    for value in values:
        if head:
            cell = WriteOnlyCell(ws, value=value)
            cell.font, cell.fill = _HEAD_FONT, _HEAD_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        elif isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(ws, value=value)
            cell.data_type = "s"  # user text is never a formula
        elif isinstance(value, datetime):
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = DATE_FORMAT
        else:
            out.append(value)
            continue
        out.append(cell)
    return out


def _sheet(
    wb: Workbook, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]], widths: Sequence[int]
) -> None:
    ws = wb.create_sheet(title[:31])
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.append(_cells(ws, header, head=True))
    for row in rows:
        ws.append(_cells(ws, row))


def write_xlsx(path: Path, data: ExportData, deps: Deps, lang: str, digest: Digest | None = None) -> Path:
    """The workbook: summary (when a digest is given), tickets, events."""
    lang = normalise_language(lang)
    wb = Workbook(write_only=True)
    if digest is not None:
        ws = wb.create_sheet(_label("digest.sheet.summary", lang))
        ws.column_dimensions["A"].width = 48
        for col in "BCDEFGHIJ":
            ws.column_dimensions[col].width = 14
        for row in summary_rows(digest, lang, deps.taxonomy):
            ws.append(_cells(ws, row, head=len(row) > 1 and all(isinstance(v, str) for v in row)))
    _sheet(
        wb,
        _label("digest.sheet.tickets", lang),
        ticket_header(lang),
        ticket_rows(data, deps, lang),
        (16, 50, 24, 28, 22, 30, 16, 12, 17, 17, 17, 17, 16, 12, 10, 10, 10, 10, 10, 8),
    )
    _sheet(
        wb,
        _label("digest.sheet.events", lang),
        event_header(lang),
        event_rows(data, lang),
        (17, 16, 20, 22, 16, 16, 60, 50),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return "" if value is None else value


def write_csv(folder: Path, stem: str, data: ExportData, deps: Deps, lang: str) -> list[Path]:
    """Two UTF-8 files with a BOM (so Excel reads the diacritics): tickets and events."""
    lang = normalise_language(lang)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, header, rows in (
        ("tickets", ticket_header(lang), ticket_rows(data, deps, lang)),
        ("events", event_header(lang), event_rows(data, lang)),
    ):
        path = folder / f"{stem}-{name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([_csv_safe(v) for v in row] for row in rows)
        paths.append(path)
    return paths
