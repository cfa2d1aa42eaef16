"""The one reminder to rate: asked once, a few days after resolution, if nobody rated.

Run by every sweep pass (``escalation.sweep``), so it needs no scheduler of its own. A
``key_values`` mark per ticket, written in the same transaction as the queued message, makes
the reminder happen exactly once whatever the number of sweeps, workers or restarts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, and_, cast, exists, literal, or_, select

from hotline.deps import Deps
from hotline.domain import payloads as P
from hotline.domain.rating import RATEABLE_STATES, STARS, finished_at, reminder_due
from hotline.services.common import ticket_params
from hotline.services.notify import notify
from storage.models import KeyValue, Ticket
from storage.uow import UnitOfWork

MARK_PREFIX = "rating_reminder:"
BATCH = 200


def mark_key(ticket_id: int) -> str:
    return f"{MARK_PREFIX}{ticket_id}"


def star_buttons(ref: str) -> list[list[tuple[str, str]]]:
    """The 1-5 stars as notification buttons (labels from ``engine.btn.star_n``)."""
    return [[(f"engine.btn.star_{n}", P.build_pair(P.RATE, ref, n)) for n in STARS]]


async def remind_unrated(uow: UnitOfWork, deps: Deps, now: datetime, *,
                         not_before: datetime | None = None) -> list[str]:
    """Queue the reminder for every ticket that is due one; the refs reminded."""
    settings = deps.settings
    oldest = now - timedelta(days=settings.rating_window_days)
    newest = now - timedelta(days=settings.rating_reminder_days)
    in_window = or_(
        and_(Ticket.resolved_at.is_not(None), Ticket.resolved_at.between(oldest, newest)),
        and_(Ticket.resolved_at.is_(None), Ticket.closed_at.between(oldest, newest)),
    )
    marked = exists().where(KeyValue.key == literal(MARK_PREFIX).concat(cast(Ticket.id, String)))
    rows = await uow.session.execute(
        select(Ticket).where(Ticket.state.in_(sorted(RATEABLE_STATES)), Ticket.rating.is_(None),
                             in_window, ~marked).order_by(Ticket.id).limit(BATCH)
    )
    reminded: list[str] = []
    for ticket in rows.scalars():
        finished = finished_at(ticket.resolved_at, ticket.closed_at)
        if not reminder_due(ticket.state, finished, ticket.rating, now,
                            window_days=settings.rating_window_days,
                            after_days=settings.rating_reminder_days):
            continue
        reporter = await uow.people.get(ticket.reporter_id)
        uow.session.add(KeyValue(key=mark_key(ticket.id), value=now.isoformat(), updated_at=now))
        if reporter is None:
            continue
        group = await uow.people.group_by_id(ticket.group_id)
        await notify(uow, reporter, "tickets.rating_reminder", now=now, ticket=ticket,
                     buttons=star_buttons(ticket.ref), not_before=not_before,
                     **(ticket_params(deps, ticket, group) | {"days": settings.rating_window_days}))
        reminded.append(ticket.ref)
    return reminded
