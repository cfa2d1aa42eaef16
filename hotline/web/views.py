"""What each page shows, as plain data: the JSON API returns it, the templates render it.

One builder per page means the HTML and the API cannot drift apart, and a test comparing the
API with the digest also vouches for the page. Visibility is decided per ticket by
``hotline.services.visibility`` -- the rule the chat uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hotline.digests.compute import escalation_messages
from hotline.digests.kinds import kinds_json
from hotline.digests.model import Digest, GroupRow, TicketLine, TrendWeek
from hotline.digests.period import Period, display_label
from hotline.domain.enums import ExtensionStatus, Role
from hotline.services import visibility
from hotline.services.tickets import rag_of
from hotline.web.figures import Figures, GroupExtra, TicketRow
from hotline.web.params import Filters
from hotline.web.state import BOARD_SPECS, WebState
from storage.models import (
    Extension,
    Organisation,
    OwnerGroup,
    Person,
    Ticket,
    TicketEvent,
)
from storage.uow import UnitOfWork

#: Event kinds whose note was addressed to the reporter (they received it in the chat).
REPORTER_NOTES = frozenset({"message", "info_requested", "info_added", "info_provided", "resolved",
                            "rejected", "reopened", "duplicate_linked"})
PAGE_SIZE = 50


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------


def period_json(period: Period, spec: str) -> dict[str, Any]:
    """The period and its "as of" state: ``as_of`` is the instant a running period's figures
    are computed as of (null once it has ended), ``title_vi``/``title_en`` the label every
    surface shows ("2026-W49, đến thứ Năm 03/12 14:35")."""
    return {"spec": spec, "label": period.label, "kind": period.kind,
            "first_day": period.first_day, "last_day": period.last_day,
            "start": period.start, "end": period.end, "finished": period.finished,
            "as_of": period.as_of, "title_vi": display_label(period, "vi"),
            "title_en": display_label(period, "en")}


def _flow_stock(g: GroupRow | Digest) -> dict[str, int]:
    return {
        "new": g.flow.new, "resolved": g.flow.resolved, "closed": g.flow.closed,
        "rejected": g.flow.rejected, "reopened": g.flow.reopened, "open": g.stock.open,
        "overdue": g.stock.overdue, "green": g.stock.green, "amber": g.stock.amber,
        "red": g.stock.red, "waiting_reporter": g.stock.waiting_reporter,
        "ext_requested": g.extensions.requested, "ext_approved": g.extensions.approved,
        "ext_refused": g.extensions.refused,
    }


def trend_json(weeks: Sequence[TrendWeek]) -> list[dict[str, Any]]:
    return [{"label": w.label, "first_day": w.first_day, "opened": w.opened, "resolved": w.resolved}
            for w in weeks]


def _line_json(line: TicketLine) -> dict[str, Any]:
    return {
        "ref": line.ref, "title": line.title, "state": line.state, "rag": line.rag,
        "group": line.group_code, "category": line.category, "priority": line.priority,
        "deadline": line.deadline_at, "overdue": line.overdue, "days_overdue": line.days_overdue,
        "stalled_days": line.stalled_days, "assignee": line.assignee_name or None,
    }


def row_json(row: TicketRow) -> dict[str, Any]:
    return {
        "ref": row.ref, "title": row.title, "state": row.state, "rag": row.rag,
        "overdue": row.overdue, "group": row.group_code, "category": row.category,
        "priority": row.priority, "reporter_kind": row.org_kind, "created": row.created_at,
        "deadline": row.deadline_at, "resolved": row.resolved_at, "extensions": row.extensions,
    }


def row_visible(person: Person, row: Any) -> bool:
    """``can_view`` on a row that has the ticket's ownership fields (a ``TicketRow``)."""
    return visibility.can_see_row(person, row)


# ---------------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------------


async def dashboard(state: WebState, person: Person, filters: Filters) -> dict[str, Any]:
    base, computed_at = await state.period_figures(filters.period)
    computed_at = base.period.as_of or computed_at  # the instant the figures are judged at
    digest = await state.filtered(base, filters)
    visible_refs = {x.ref for x in digest.stalled
                    if x.ticket_id in base.rows and row_visible(person, base.rows[x.ticket_id])}
    groups = [g for g in digest.groups if filters.group is None or g.code == filters.group]
    groups.sort(key=lambda g: (not g.red_alert, -g.stock.overdue, -g.stock.open, g.code))
    fr = digest.first_response
    return {
        "period": period_json(digest.period, filters.period),
        "filters": filters.as_dict(),
        "as_of": computed_at,
        "totals": {**_flow_stock(digest), "escalations": digest.escalations},
        "kinds": kinds_json(digest.kinds),
        "first_response": {"met": fr.met, "missed": fr.missed, "pending": fr.pending,
                           "percent": fr.percent},
        "resolve_time": {"count": digest.resolve_time.count,
                         "median_days": digest.resolve_time.median_days,
                         "p90_days": digest.resolve_time.p90_days},
        "satisfaction": {"count": digest.satisfaction.count, "mean": digest.satisfaction.mean},
        "groups": [{"code": g.code, "name_vi": g.name.vi, "name_en": g.name.en,
                    "red_alert": g.red_alert, **_flow_stock(g)} for g in groups],
        "red_alerts": [{"code": a.code, "name_vi": a.name.vi, "name_en": a.name.en,
                        "raised_at": a.raised_at, "overdue": a.overdue_count}
                       for a in digest.red_alerts if a.open_at_end
                       and (filters.group is None or a.code == filters.group)],
        "stalled": [_line_json(x) for x in digest.stalled if x.ref in visible_refs],
        "extensions_pending": await pending_extensions(state, person, filters),
        "trend": trend_json(digest.trend),
    }


@dataclass(frozen=True, slots=True)
class _Pending:
    """A pending extension with the ticket's ownership fields (what ``can_view`` reads)."""

    item: dict[str, Any]
    category: str
    group_id: int
    assignee_id: int | None
    reporter_id: int
    organisation_id: int | None


async def _load_pending(state: WebState) -> list[_Pending]:
    stmt = (
        select(Extension, Ticket, OwnerGroup.code)
        .join(Ticket, Ticket.id == Extension.ticket_id)
        .join(OwnerGroup, OwnerGroup.id == Ticket.group_id)
        .where(Extension.status == ExtensionStatus.PENDING.value)
        .order_by(Extension.requested_at, Extension.id)
    )
    async with state.read.sessions() as session:
        rows = (await session.execute(stmt)).all()
        wanted = sorted({ext.requested_by_id for ext, _, _ in rows}) or [0]
        names = {pid: name for pid, name in await session.execute(
            select(Person.id, Person.display_name).where(Person.id.in_(wanted)))}
    return [
        _Pending({"ref": t.ref, "title": t.title, "group": code, "requested_at": ext.requested_at,
                  "requested_by": names.get(ext.requested_by_id), "old_deadline": ext.old_deadline,
                  "new_deadline": ext.new_deadline, "reason": ext.reason,
                  "requests": t.extension_requests},
                 t.category, t.group_id, t.assignee_id, t.reporter_id, t.organisation_id)
        for ext, t, code in rows
    ]


async def pending_extensions(state: WebState, person: Person, filters: Filters,
                             limit: int = 50) -> list[dict[str, Any]]:
    """Requests waiting for a coordinator, oldest first (a live queue, not a period figure;
    it changes only with events, so it is cached like the figures)."""
    mark = await state.watermark()

    async def load() -> list[_Pending]:
        return await _load_pending(state)

    pending = (await state.figures.get(("pending-extensions",), mark, load, expires=False)).value
    out: list[dict[str, Any]] = []
    for x in pending:
        if filters.group is not None and x.item["group"] != filters.group:
            continue
        if filters.category is not None and x.category != filters.category:
            continue
        if not visibility.can_see_row(person, x):
            continue
        out.append(x.item)
        if len(out) >= limit:
            break
    return out


# ---------------------------------------------------------------------------------------------
# Ticket lists
# ---------------------------------------------------------------------------------------------


def _sorted_matching(state: WebState, base: Figures, filters: Filters) -> list[TicketRow]:
    """Matching rows, open first then by deadline; kept per figures and filter, since sorting
    a year of tickets on every page view would be most of the page's cost."""
    key = (id(base), filters)
    found = state.row_lists.get(key)
    if found is not None and found[0] is base:
        return found[1]
    far = datetime.max.replace(tzinfo=base.period.end.tzinfo)
    rows = [r for r in base.rows.values() if filters.matches(r)]
    rows.sort(key=lambda r: (r.state not in _OPEN_VALUES, r.deadline_at or far, r.ref))
    state.row_lists[key] = (base, rows)
    while len(state.row_lists) > 32:
        state.row_lists.pop(next(iter(state.row_lists)))
    return rows


def staff_rows(state: WebState, base: Figures, person: Person, filters: Filters) -> list[TicketRow]:
    return [r for r in _sorted_matching(state, base, filters) if row_visible(person, r)]


_OPEN_VALUES = frozenset({"new", "assigned", "in_progress", "waiting_reporter", "reopened"})


async def staff_tickets(state: WebState, person: Person, filters: Filters, offset: int,
                        limit: int) -> dict[str, Any]:
    base, computed_at = await state.period_figures(filters.period)
    rows = staff_rows(state, base, person, filters)
    return {
        "period": period_json(base.period, filters.period), "filters": filters.as_dict(),
        "as_of": computed_at, "total": len(rows), "offset": offset, "limit": limit,
        "items": [row_json(r) for r in rows[offset: offset + limit]],
    }


async def reporter_tickets(state: WebState, person: Person, offset: int, limit: int) -> dict[str, Any]:
    """A reporter's organisation's tickets (and originals they follow), live, newest first."""
    now = state.app.clock.now()
    async with state.read.sessions() as session:
        stmt = (select(Ticket, OwnerGroup.code).join(OwnerGroup, OwnerGroup.id == Ticket.group_id)
                .where(visibility.reporter_scope(person))
                .order_by(Ticket.created_at.desc(), Ticket.id.desc()))
        found = (await session.execute(stmt)).all()
    items = []
    for ticket, code in found:
        if not visibility.can_see_row(person, ticket, is_follower=True):  # in scope above
            continue
        items.append({"ref": ticket.ref, "title": ticket.title, "state": ticket.state,
                      "rag": _live_rag(state, ticket, now), "group": code,
                      "category": ticket.category, "created": ticket.created_at,
                      "deadline": ticket.deadline_at, "extensions": ticket.extension_count})
    return {"total": len(items), "offset": offset, "limit": limit,
            "items": items[offset: offset + limit]}


# ---------------------------------------------------------------------------------------------
# One ticket
# ---------------------------------------------------------------------------------------------


async def ticket_page(state: WebState, person: Person, ref: str) -> dict[str, Any]:
    """The ticket with its whole history, if ``person`` may see it; otherwise exactly the
    answer for a missing ticket (``NotFound``), as in the chat (``services.visibility``)."""
    async with UnitOfWork(state.read.sessions) as uow:
        ticket = await visibility.visible_ticket(uow, person, ref, for_update=False)
        events = await uow.events.for_ticket(ticket.id)
        group = await uow.people.group_by_id(ticket.group_id)
        staff = person.role != Role.REPORTER.value
        ids = {p for p in [ticket.assignee_id, ticket.reporter_id, *(e.actor_id for e in events)] if p}
        names = {pid: name for pid, name in await uow.session.execute(
            select(Person.id, Person.display_name).where(Person.id.in_(sorted(ids) or [0])))}
        org = (await uow.session.get(Organisation, ticket.organisation_id)
               if ticket.organisation_id else None)
        extensions = (await uow.session.execute(
            select(Extension).where(Extension.ticket_id == ticket.id).order_by(Extension.id))).scalars().all()
    now = state.app.clock.now()
    detail: dict[str, Any] = {
        "ref": ticket.ref, "title": ticket.title, "description": ticket.description,
        "state": ticket.state, "rag": _live_rag(state, ticket, now), "priority": ticket.priority,
        "category": ticket.category, "group": group.code if group else None,
        "created": ticket.created_at, "deadline": ticket.deadline_at,
        "first_response_due": ticket.first_response_due_at, "acknowledged": ticket.acknowledged_at,
        "resolved": ticket.resolved_at, "closed": ticket.closed_at,
        "extensions": ticket.extension_count, "extension_requests": ticket.extension_requests,
        "reopened": ticket.reopen_count, "rating": ticket.rating,
        "waiting_reporter": ticket.paused_since is not None,
        "events": [_event_json(e, names, staff) for e in events if isinstance(e, TicketEvent)],
    }
    if staff:
        detail.update({
            "assignee": names.get(ticket.assignee_id) if ticket.assignee_id else None,
            "reporter": names.get(ticket.reporter_id),
            "organisation": org.name if org is not None else None,
            "reporter_kind": org.kind if org is not None else None,
            "rating_comment": ticket.rating_comment,
            "extension_history": [{"requested_at": x.requested_at, "old_deadline": x.old_deadline,
                                   "new_deadline": x.new_deadline, "status": x.status,
                                   "reason": x.reason, "decided_at": x.decided_at}
                                  for x in extensions],
        })
    else:
        detail["status_path"] = _status_path(ticket)
    return detail


def _live_rag(state: WebState, ticket: Ticket, now: datetime | None = None) -> str | None:
    """RAG of an open ticket now; None for finished ones (nothing is at risk any more)."""
    if ticket.state not in _OPEN_VALUES:
        return None
    return rag_of(state.app, ticket, now or state.app.clock.now())


def _status_path(ticket: Ticket) -> str:
    from hotline.links import status_path

    return status_path(ticket.ref, ticket.check_code)


def _event_json(e: TicketEvent, names: dict[int, str], staff: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"at": e.at, "kind": e.kind, "from_state": e.from_state, "to_state": e.to_state}
    if staff:
        out["actor"] = names.get(e.actor_id) if e.actor_id else None
        out["note"] = e.note
        level = (e.data or {}).get("level") if e.kind == "escalated" else None
        out["level"] = level if level in ("reminder", "l1", "l2", "l3") else None
        # How many people the step told (``escalation_messages``); 0: recorded, nobody told.
        out["told"] = escalation_messages(e.data) if out["level"] else None
    else:
        out["note"] = e.note if e.kind in REPORTER_NOTES else None
    return out


# ---------------------------------------------------------------------------------------------
# Public board and status
# ---------------------------------------------------------------------------------------------


def _board_group(g: GroupRow, extra: GroupExtra | None) -> dict[str, Any]:
    extra = extra or GroupExtra()
    return {
        "code": g.code, "name_vi": g.name.vi, "name_en": g.name.en,
        "received": g.flow.new, "resolved": g.flow.resolved,
        "resolved_on_time": extra.resolved_on_time, "overdue": g.stock.overdue,
        "extensions_granted": g.extensions.approved, "red_alert": g.red_alert,
        "satisfaction": {"count": extra.ratings, "mean": extra.satisfaction},
    }


def board_period(figures: Figures, spec: str) -> dict[str, Any]:
    """Counts per owner group only: no ticket text, no names, no organisations."""
    d = figures.digest
    groups = [_board_group(g, figures.extras.get(g.group_id)) for g in d.groups]
    groups.sort(key=lambda g: (not g["red_alert"], -g["overdue"], g["code"]))
    return {
        "period": period_json(figures.period, spec),
        "totals": {
            "received": d.flow.new, "resolved": d.flow.resolved,
            "resolved_on_time": sum(x.resolved_on_time for x in figures.extras.values()),
            "overdue": d.stock.overdue, "extensions_granted": d.extensions.approved,
            "red_alerts": sum(1 for g in d.groups if g.red_alert),
            "satisfaction": {"count": d.satisfaction.count, "mean": d.satisfaction.mean},
        },
        "kinds": kinds_json(d.kinds),
        "groups": groups,
    }


async def board(state: WebState) -> tuple[dict[str, Any], str]:
    """The board's data, all of it from one snapshot (one read, one instant: ``as_of``), and
    that snapshot's version, which the page's chart link and the page cache carry."""
    snapshot, version = await state.board_snapshot()
    parts = dict(zip(BOARD_SPECS, snapshot.figures, strict=True))
    as_of = snapshot.figures[0].period.moment
    return {
        "as_of": as_of,
        "version": version,
        **{spec: board_period(figures, spec) for spec, figures in parts.items()},
        "trend": trend_json(snapshot.trend),
    }, version


async def status_page(state: WebState, ref: str, code: str) -> dict[str, Any] | None:
    """State, owner group, deadline, RAG, extensions and dated state changes -- nothing else.
    None when the ref is unknown *or* the check code is wrong (indistinguishable)."""
    import secrets

    from hotline.domain.ids import TICKET_REF_RE

    if not TICKET_REF_RE.match(ref) or not (1 <= len(code) <= 16):
        return None
    async with state.read.sessions() as session:
        found = (await session.execute(
            select(Ticket, OwnerGroup).join(OwnerGroup, OwnerGroup.id == Ticket.group_id)
            .where(Ticket.ref == ref))).first()
        if found is None:
            secrets.compare_digest(code, "x" * len(code))  # same work either way
            return None
        ticket, group = found
        if not secrets.compare_digest(code.encode(), ticket.check_code.encode()):
            return None
        changes = (await session.execute(
            select(TicketEvent.at, TicketEvent.from_state, TicketEvent.to_state)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.to_state.is_not(None))
            .order_by(TicketEvent.at, TicketEvent.id))).all()
    return {
        "ref": ticket.ref, "state": ticket.state,
        "group": {"code": group.code, "name_vi": group.name_vi, "name_en": group.name_en},
        "deadline": ticket.deadline_at, "rag": _live_rag(state, ticket),
        "extensions": ticket.extension_count,
        "history": [{"at": at, "from_state": a, "to_state": b} for at, a, b in changes],
    }
