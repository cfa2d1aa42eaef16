"""The persisted similarity index: canonical documents and term postings, in the database.

Written in the filing transaction, so a ticket is searchable the moment it exists; read with two
small queries per search (candidate tickets by shared rare terms, then their documents), so no
process ever loads the whole index. Same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.domain.enums import OPEN_STATES, TicketState
from storage.models import SimilarityDoc, SimilarityTerm, Ticket

_OPEN = sorted(s.value for s in OPEN_STATES)
_DONE = [TicketState.RESOLVED.value, TicketState.CLOSED.value]


def term_key(term: str) -> int:
    """A stable 31-bit key for a term (fits a 4-byte integer on both databases)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def suggestible(resolved_since: datetime) -> ColumnElement[bool]:
    """Tickets a reporter may be offered: open, or resolved since ``resolved_since`` (and
    not themselves a linked duplicate)."""
    return and_(
        Ticket.duplicate_of_id.is_(None),
        or_(Ticket.state.in_(_OPEN),
            and_(Ticket.state.in_(_DONE), Ticket.resolved_at >= resolved_since)),
    )


async def write_document(session: AsyncSession, ticket_id: int, words: Sequence[str],
                         anchors: Iterable[str], terms: Iterable[str], now: datetime) -> None:
    """(Re)index one ticket: its document and postings, replacing any earlier version."""
    await session.execute(delete(SimilarityTerm).where(SimilarityTerm.ticket_id == ticket_id))
    await session.execute(delete(SimilarityDoc).where(SimilarityDoc.ticket_id == ticket_id))
    session.add(SimilarityDoc(ticket_id=ticket_id, text=" ".join(words),
                              anchors=" ".join(sorted(anchors))[:400], indexed_at=now))
    keys = sorted({term_key(t) for t in terms})
    session.add_all([SimilarityTerm(term=k, ticket_id=ticket_id) for k in keys])


async def candidates(session: AsyncSession, weighted_terms: Sequence[tuple[str, float]],
                     resolved_since: datetime, *, limit: int,
                     exclude: Sequence[int] = (), not_reporter: int | None = None,
                     not_organisation: int | None = None) -> list[int]:
    """Suggestible tickets sharing the most weight of ``weighted_terms``, best first; not those
    of ``not_reporter`` or ``not_organisation`` (a reporter is not offered their own)."""
    if not weighted_terms:
        return []
    keys = {term_key(t): w for t, w in weighted_terms}
    weight = case({k: w for k, w in keys.items()}, value=SimilarityTerm.term, else_=0.0)
    stmt = (
        select(SimilarityTerm.ticket_id, func.sum(weight).label("w"))
        .join(Ticket, Ticket.id == SimilarityTerm.ticket_id)
        .where(SimilarityTerm.term.in_(list(keys)), suggestible(resolved_since))
        .group_by(SimilarityTerm.ticket_id)
        .order_by(func.sum(weight).desc(), SimilarityTerm.ticket_id.desc())
        .limit(limit)
    )
    if exclude:
        stmt = stmt.where(SimilarityTerm.ticket_id.not_in(list(exclude)))
    if not_reporter is not None:
        stmt = stmt.where(Ticket.reporter_id != not_reporter)
    if not_organisation is not None:
        stmt = stmt.where(or_(Ticket.organisation_id.is_(None),
                              Ticket.organisation_id != not_organisation))
    return [int(tid) for tid, _ in await session.execute(stmt)]


async def documents(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Canonical text and anchors of the given tickets."""
    if not ticket_ids:
        return {}
    stmt = select(SimilarityDoc.ticket_id, SimilarityDoc.text, SimilarityDoc.anchors).where(
        SimilarityDoc.ticket_id.in_(list(ticket_ids)))
    return {int(tid): (text, anchors) for tid, text, anchors in await session.execute(stmt)}


async def unindexed_ticket_ids(session: AsyncSession, after: int, limit: int) -> list[int]:
    """Tickets without a document, in id order from ``after`` (for ``--reindex`` batches)."""
    indexed = select(SimilarityDoc.ticket_id)
    stmt = (select(Ticket.id).where(Ticket.id > after, Ticket.id.not_in(indexed))
            .order_by(Ticket.id).limit(limit))
    return [int(x) for x in (await session.execute(stmt)).scalars()]
