"""Read models for operators (CLI, dashboard): plain dicts, names resolved, times localised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from hotline.deps import Deps
from hotline.domain.enums import ExtensionStatus
from hotline.i18n import format_local_datetime
from hotline.services.common import get_ticket
from hotline.services.tickets import overdue_business_days, rag_of
from storage.models import (
    Escalation,
    Extension,
    Organisation,
    OwnerGroup,
    Person,
    Ticket,
    TicketEvent,
    TicketFollower,
)
from storage.uow import UnitOfWork


async def _names(uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await uow.session.execute(select(Person.id, Person.display_name).where(Person.id.in_(ids)))
    return {pid: name for pid, name in rows}


async def _groups(uow: UnitOfWork) -> dict[int, str]:
    rows = await uow.session.execute(select(OwnerGroup.id, OwnerGroup.code))
    return {gid: code for gid, code in rows}


async def list_tickets(
    uow: UnitOfWork,
    deps: Deps,
    *,
    states: list[str] | None = None,
    group: str | None = None,
    category: str | None = None,
    open_only: bool = False,
    overdue: bool = False,
    rag: str | None = None,
    triage: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    now = deps.clock.now()
    group_id = None
    if group is not None:
        row = await uow.people.group(group)
        if row is None:
            from hotline.errors import NotFound

            codes = ", ".join(sorted(g.code for g in await uow.people.groups()))
            raise NotFound(f"unknown owner group {group!r}; groups: {codes}",
                           key="error.unknown_group_of", code=group, codes=codes)
        group_id = row.id
    if category is not None:
        deps.taxonomy.category(category)
    # RAG and overdue are computed on the business calendar, so filter after loading.
    post_filter = overdue or rag is not None
    tickets = await uow.tickets.list(
        states=states, open_only=open_only, group_id=group_id, category=category,
        needs_triage=True if triage else None, limit=None if post_filter else limit,
    )
    groups = await _groups(uow)
    names = await _names(uow, {t.assignee_id for t in tickets if t.assignee_id})
    rows: list[dict[str, Any]] = []
    for ticket in tickets:
        status = rag_of(deps, ticket, now)
        if overdue and status != "red":
            continue
        if rag is not None and status != rag:
            continue
        rows.append(
            {
                "ref": ticket.ref,
                "state": ticket.state,
                "rag": status,
                "priority": ticket.priority,
                "category": ticket.category,
                "group": groups.get(ticket.group_id),
                "assignee": names.get(ticket.assignee_id) if ticket.assignee_id else None,
                "deadline": ticket.deadline_at,
                "deadline_local": format_local_datetime(ticket.deadline_at, "vi",
                                                        deps.settings.timezone),
                "title": ticket.title,
                # How late, in business days (0 unless red), and the highest escalation level
                # fired in the current deadline cycle: what an operator looks at for --overdue.
                "overdue_days": (round(overdue_business_days(deps, ticket, now), 1)
                                 if status == "red" else 0.0),
                "escalation": None,
                "_key": (ticket.id, ticket.cycle),
            }
        )
        if len(rows) >= limit:
            break
    levels = await _escalation_levels(uow, [r["_key"] for r in rows])
    for r in rows:
        r["escalation"] = levels.get(r.pop("_key"))
    return rows


_LADDER = ("reminder", "l1", "l2", "l3")


async def _escalation_levels(
    uow: UnitOfWork, keys: list[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """Highest ladder level fired per (ticket id, current cycle)."""
    if not keys:
        return {}
    wanted = set(keys)
    stmt = select(Escalation.ticket_id, Escalation.cycle, Escalation.level).where(
        Escalation.ticket_id.in_([tid for tid, _ in keys])
    )
    best: dict[tuple[int, int], str] = {}
    for tid, cycle, level in await uow.session.execute(stmt):
        key = (tid, cycle)
        if key in wanted and level in _LADDER and (
            key not in best or _LADDER.index(level) > _LADDER.index(best[key])
        ):
            best[key] = level
    return best


async def ticket_detail(uow: UnitOfWork, deps: Deps, ref: str) -> dict[str, Any]:
    ticket = await get_ticket(uow, ref, for_update=False)
    events = await uow.events.for_ticket(ticket.id)
    names = await _names(
        uow, {p for p in [ticket.assignee_id, ticket.reporter_id, *(e.actor_id for e in events)] if p}
    )
    org = await uow.session.get(Organisation, ticket.organisation_id) if ticket.organisation_id else None
    groups = await _groups(uow)
    extensions = (
        await uow.session.execute(select(Extension).where(Extension.ticket_id == ticket.id))
    ).scalars().all()
    tz = deps.settings.timezone
    return {
        "ref": ticket.ref,
        "state": ticket.state,
        "rag": rag_of(deps, ticket, deps.clock.now()),
        "priority": ticket.priority,
        "category": ticket.category,
        "group": groups.get(ticket.group_id),
        "assignee": names.get(ticket.assignee_id) if ticket.assignee_id else None,
        "reporter": names.get(ticket.reporter_id),
        "organisation": org.name if org else None,
        "deadline": ticket.deadline_at,
        "deadline_local": format_local_datetime(ticket.deadline_at, "vi", tz),
        "extensions": len(extensions),
        "title": ticket.title,
        "description": ticket.description,
        "events": [
            {
                "at": e.at,
                "at_local": format_local_datetime(e.at, "vi", tz),
                "kind": e.kind,
                "actor": names.get(e.actor_id) if e.actor_id else None,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "note": e.note,
                "data": e.data,
            }
            for e in events
            if isinstance(e, TicketEvent)
        ],
    }


# --- the chat's read side ---------------------------------------------------------------------


async def pending_extension(uow: UnitOfWork, ticket_id: int) -> Extension | None:
    """The ticket's extension request waiting for a decision, if any."""
    row = await uow.session.execute(
        select(Extension).where(
            Extension.ticket_id == ticket_id, Extension.status == ExtensionStatus.PENDING.value
        )
    )
    return row.scalars().first()


async def extension(uow: UnitOfWork, extension_id: int) -> Extension | None:
    return await uow.session.get(Extension, extension_id)


async def organisation(uow: UnitOfWork, organisation_id: int | None) -> Organisation | None:
    return await uow.session.get(Organisation, organisation_id) if organisation_id else None


async def recent_events(uow: UnitOfWork, ticket_id: int, limit: int) -> list[TicketEvent]:
    """The ticket's last ``limit`` events, oldest first."""
    rows = await uow.session.execute(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket_id)
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows.scalars())))


async def followed_tickets(
    uow: UnitOfWork, person_id: int, states: Sequence[str], limit: int
) -> list[Ticket]:
    """Originals the person follows (their own report was linked to them as a duplicate),
    in the given states, earliest deadline first."""
    rows = await uow.session.execute(
        select(Ticket).join(TicketFollower, TicketFollower.ticket_id == Ticket.id)
        .where(TicketFollower.person_id == person_id, Ticket.state.in_(list(states)))
        .order_by(Ticket.deadline_at).limit(limit)
    )
    return list(rows.scalars())
