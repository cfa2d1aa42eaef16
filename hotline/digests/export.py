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
from dataclasses import dataclass, field
from datetime import date, datetime
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

from hotline.deps import Deps
from hotline.digests.compute import Replay, Rules, parse_time, replay_tickets
from hotline.digests.data import DigestInputs, chunks, load_inputs, rules_for
from hotline.digests.model import Digest
from hotline.digests.period import Period
from hotline.digests.render import period_title
from hotline.i18n import normalise_language, plain, t
from storage.models import Person, Ticket, TicketEvent

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "dd/mm/yyyy hh:mm"
PERCENT_FORMAT = "0.0%"
CSV_DATE_FORMAT = "%d/%m/%Y %H:%M"


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
    ticket_id: int = 0


@dataclass(frozen=True)
class ExportData:
    period: Period
    inputs: DigestInputs
    replays: dict[int, Replay]
    events: list[PeriodEvent]
    people: dict[int, str]
    #: Each ticket's full report text (the title is its first line, cut).
    descriptions: dict[int, str] = field(default_factory=dict)


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
            TicketEvent.ticket_id,
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.at >= period.start, TicketEvent.at < period.end)
        .order_by(TicketEvent.at, TicketEvent.id)
    )
    return [
        PeriodEvent(*row[:7], dict(row[7] or {}), int(row[8])) for row in await session.execute(stmt)
    ]


async def _descriptions(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in chunks(sorted(ids)):
        rows = await session.execute(select(Ticket.id, Ticket.description).where(Ticket.id.in_(chunk)))
        out.update({int(tid): text or "" for tid, text in rows})
    return out


def _mentioned(events: Iterable[PeriodEvent]) -> set[int]:
    """People an event names: its actor, and whoever an assignment gave the ticket to."""
    found: set[int] = set()
    for e in events:
        if e.actor_id is not None:
            found.add(e.actor_id)
        for key in ("assignee_id", "previous_assignee_id"):
            value = e.data.get(key)
            if isinstance(value, int):
                found.add(value)
    return found


async def _people_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    names: dict[int, str] = {}
    for chunk in chunks(wanted):
        rows = await session.execute(select(Person.id, Person.display_name).where(Person.id.in_(chunk)))
        names.update({int(pid): name for pid, name in rows})
    return names


async def load_export(app: Any, period: Period, inputs: DigestInputs | None = None) -> ExportData:
    """Tickets of the period (active in it or open at its end) and the period's events."""
    async with app.sessions() as session:
        if inputs is None:
            inputs = await load_inputs(session, period)
        events = await load_period_events(session, period)
        people = await _people_names(session, _mentioned(events))
        descriptions = await _descriptions(session, inputs.tickets)
    rules = rules_for(app)
    group_ids = {g.code: g.id for g in inputs.groups}
    replays, _ = replay_tickets(inputs.events, rules, group_ids, period.end)
    people.update(inputs.names)
    return ExportData(period, inputs, replays, events, people, descriptions)


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
    "description",
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
#: An event's details as readable columns (no JSON): the state it moved from and to, the
#: deadline it set (or, for an escalation, the instant the step fell due), the escalation
#: level, the reason, how many people were told, and the rest in words.
EVENT_COLUMNS = (
    "at",
    "ref",
    "group",
    "event",
    "actor",
    "from_state",
    "to_state",
    "deadline",
    "level",
    "reason",
    "recipients",
    "details",
    "note",
)
TICKET_WIDTHS = (16, 40, 70, 24, 28, 22, 30, 16, 12, 17, 17, 17, 17, 16, 12, 10, 10, 10, 10, 10, 8)
EVENT_WIDTHS = (17, 16, 26, 24, 22, 18, 18, 17, 22, 34, 14, 34, 70)


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
    """One row per ticket of the period, as it stood at the period's moment (its end, or
    the instant a running period is computed as of)."""
    rules = rules or rules_for(deps)
    tz, at = data.period.tz, data.period.moment
    groups = {g.id: g for g in data.inputs.groups}
    rows = []
    for tid, r in data.replays.items():
        info = data.inputs.tickets.get(tid)
        if info is None:
            continue
        group = groups.get(r.group_id) if r.group_id is not None else None
        rows.append(
            [
                info.ref,
                info.title,
                data.descriptions.get(tid, info.title),
                _category(deps, r.category, lang),
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
                _label(f"digest.stock.{r.rag(rules, at)}", lang) if r.is_open else "",
                round(r.days_overdue(rules, at), 2) if r.is_open else None,
                r.ext_requested,
                r.ext_approved,
                r.ext_refused,
                r.reopened,
                r.rating,
            ]
        )
    rows.sort(key=lambda row: row[0])
    return rows


def _category(deps: Deps, code: str | None, lang: str) -> str:
    cat = deps.taxonomy.categories.get(code or "")
    return cat.name(lang) if cat is not None else (code or "")


def _event_name(kind: str, lang: str) -> str:
    name = _label(f"digest.event.{kind}", lang)
    return kind if name.startswith("digest.event.") else name


def _words(key: str, lang: str, code: object) -> str:
    """``key`` in ``lang``, or the code itself when the catalogue has no such word."""
    if code is None or code == "":
        return ""
    text = _label(key, lang)
    return str(code) if text == key else text


def _change(old: str, new: str) -> str:
    return f"{old} → {new}" if old and new else old or new


def event_details(e: PeriodEvent, data: ExportData, deps: Deps, lang: str) -> list[Any]:
    """The readable columns of one event, from its stored details (``EVENT_COLUMNS``, from
    "from_state" on): words, local times, never the raw JSON."""
    d, kind, tz = e.data, e.kind, data.period.tz
    groups = {g.code: g for g in data.inputs.groups}
    deadline = level = reason = recipients = details = None
    if kind in ("created", "resumed", "deadline_changed"):
        deadline = parse_time(d.get("deadline"))
    if kind == "created":
        group = groups.get(str(d.get("group") or ""))
        details = " · ".join(x for x in (
            _category(deps, d.get("category"), lang),
            (group.name_en if lang == "en" else group.name_vi) if group else "",
            _words(f"priority.{d.get('priority')}", lang, d.get("priority")),
        ) if x)
    elif kind == "assigned":
        before, after = d.get("previous_assignee_id"), d.get("assignee_id")
        details = _change(data.people.get(before, "") if isinstance(before, int) else "",
                          data.people.get(after, "") if isinstance(after, int) else "")
    elif kind == "recategorised":
        details = _change(_category(deps, d.get("old"), lang), _category(deps, d.get("new"), lang))
    elif kind == "priority_changed":
        details = _change(_words(f"priority.{d.get('old')}", lang, d.get("old")),
                          _words(f"priority.{d.get('new')}", lang, d.get("new")))
    elif kind == "deadline_changed":
        reason = _words(f"digest.deadline_reason.{d.get('reason')}", lang, d.get("reason"))
    elif kind == "extension_requested":
        deadline = parse_time(d.get("new_deadline"))
        old = parse_time(d.get("old_deadline"))
        details = _label("digest.detail.extension", lang).format(
            n=d.get("request_number", ""), old=_local(old, tz).strftime("%d/%m/%Y %H:%M") if old else "")
    elif kind == "escalated":
        deadline = parse_time(d.get("due_at"))
        level = _words(f"web.level.{d.get('level')}", lang, d.get("level"))
        reason = _words(f"digest.escalation_reason.{d.get('reason')}", lang, d.get("reason"))
        sent = d.get("messages")
        if isinstance(sent, int):
            recipients = sent if sent > 0 else _label("escalation.no_recipient", lang)
        held = parse_time(d.get("held_until"))
        if held is not None:
            details = _label("digest.detail.held", lang).format(
                at=_local(held, tz).strftime("%d/%m/%Y %H:%M"))  # type: ignore[union-attr]
    elif kind == "duplicate_linked":
        details = str(d.get("original") or "")
    elif kind == "rated":
        details = f"{d.get('stars')}/5" if d.get("stars") is not None else None
    elif kind == "attachment":
        details = str(d.get("file_name") or "")
    elif kind == "auto_closed":
        details = _label("digest.detail.auto_closed", lang).format(days=d.get("business_days", ""))
    return [
        _words(f"state.{e.from_state}", lang, e.from_state),
        _words(f"state.{e.to_state}", lang, e.to_state),
        _local(deadline, tz),
        level or "",
        reason or "",
        recipients if recipients is not None else "",
        details or "",
    ]


def event_rows(data: ExportData, deps: Deps, lang: str) -> list[list[Any]]:
    """Every event of the period in words (``EVENT_COLUMNS``)."""
    tz = data.period.tz
    groups = {g.id: g for g in data.inputs.groups}
    rows = []
    for e in data.events:
        r = data.replays.get(e.ticket_id)
        group = groups.get(r.group_id) if r is not None and r.group_id is not None else None
        rows.append([
            _local(e.at, tz),
            e.ref,
            (group.name_en if lang == "en" else group.name_vi) if group else "",
            _event_name(e.kind, lang),
            data.people.get(e.actor_id, "") if e.actor_id is not None else "",
            *event_details(e, data, deps, lang),
            e.note or "",
        ])
    return rows


class Percent(float):
    """A share (0..1) a sheet shows as a percentage (number format ``0.0%``)."""


def summary_rows(digest: Digest, lang: str, taxonomy: Any) -> list[list[Any]]:
    """Indicator / value pairs for the workbook's first sheet."""

    def lbl(key: str, **params: Any) -> str:
        return plain(str(t(key, lang, **params)))

    d = digest
    fmt = "%d/%m/%Y"
    moment = d.period.as_of or d.period.end
    as_of = _local(moment, d.period.tz).strftime("%d/%m/%Y %H:%M")  # type: ignore[union-attr]
    rows: list[list[Any]] = [
        [period_title(d.period, lang)],
        [lbl("digest.dates", first=d.period.first_day.strftime(fmt), last=d.period.last_day.strftime(fmt))],
        [lbl("digest.as_of_now" if d.period.as_of else "digest.as_of_end", date=as_of)],
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
            None if d.first_response.percent is None else Percent(d.first_response.percent / 100),
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
        elif isinstance(value, Percent):
            cell = WriteOnlyCell(ws, value=float(value))
            cell.number_format = PERCENT_FORMAT
        elif isinstance(value, str) and "\n" in value:
            cell = WriteOnlyCell(ws, value=value)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        else:
            out.append(value)
            continue
        out.append(cell)
    return out


def _sheet(
    wb: Workbook, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[int]
) -> None:
    """A table for people: bold header row frozen, set column widths, a filter on every
    column."""
    ws = wb.create_sheet(title[:31])
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(rows) + 1}"
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
        TICKET_WIDTHS,
    )
    _sheet(
        wb,
        _label("digest.sheet.events", lang),
        event_header(lang),
        event_rows(data, deps, lang),
        EVENT_WIDTHS,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, datetime):
        return value.strftime(CSV_DATE_FORMAT)
    return "" if value is None else value


def write_csv(folder: Path, stem: str, data: ExportData, deps: Deps, lang: str) -> list[Path]:
    """Two UTF-8 files with a BOM (so Excel reads the diacritics): tickets and events, with
    the workbook's words and local ``dd/mm/yyyy hh:mm`` times."""
    lang = normalise_language(lang)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, header, rows in (
        ("tickets", ticket_header(lang), ticket_rows(data, deps, lang)),
        ("events", event_header(lang), event_rows(data, deps, lang)),
    ):
        path = folder / f"{stem}-{name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([_csv_safe(v) for v in row] for row in rows)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# For programs
# ---------------------------------------------------------------------------------------------


def raw_records(data: ExportData) -> dict[str, Any]:
    """The same tickets and events for programs: codes, UTC ISO instants, the stored event
    details as they are (the people's files above are for reading, this one for parsing)."""
    groups = {g.id: g.code for g in data.inputs.groups}
    tickets = []
    for tid, r in sorted(data.replays.items(), key=lambda x: x[0]):
        info = data.inputs.tickets.get(tid)
        if info is None:
            continue
        tickets.append({
            "ref": info.ref, "title": info.title, "description": data.descriptions.get(tid, ""),
            "state": r.state, "group": groups.get(r.group_id, "") if r.group_id is not None else "",
            "category": r.category, "priority": r.priority, "assignee_id": r.assignee_id,
            "reporter_id": info.reporter_id, "organisation": info.org_name, "org_kind": info.org_kind,
            "created_at": r.created_at, "deadline_at": r.deadline, "resolved_at": r.resolved_at,
            "closed_at": r.closed_at, "extensions_requested": r.ext_requested,
            "extensions_approved": r.ext_approved, "extensions_refused": r.ext_refused,
            "reopened": r.reopened, "rating": r.rating,
        })
    events = [
        {"at": e.at, "ref": e.ref, "kind": e.kind, "actor_id": e.actor_id,
         "from_state": e.from_state, "to_state": e.to_state, "note": e.note, "data": e.data}
        for e in data.events
    ]
    p = data.period
    period = {"label": p.label, "kind": p.kind, "first_day": p.first_day, "last_day": p.last_day,
              "start": p.start, "end": p.end, "as_of": p.as_of}
    return {"period": period, "tickets": tickets, "events": events}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def write_json(path: Path, data: ExportData) -> Path:
    """``raw_records`` as one UTF-8 JSON file (``hotline export --format json``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(raw_records(data), ensure_ascii=False, indent=1, default=_json_default), "utf-8"
    )
    return path
