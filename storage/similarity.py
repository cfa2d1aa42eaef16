"""The persisted similarity index: canonical documents and term postings, in the database.

Written in the filing transaction, so a ticket is searchable the moment it exists; read with two
small queries per search (candidate tickets by shared rare terms, then their documents), so no
process ever loads the whole index. Same SQL on SQLite and PostgreSQL.

Every ticket keeps its document; only tickets that may be suggested (open, or resolved within
``similar_resolved_days``) keep their *postings* (``posted``): housekeeping prunes the others
(``prune_postings``), so the index a search walks grows with the live tickets, not with history.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Float,
    TextClause,
    and_,
    bindparam,
    delete,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.domain.enums import OPEN_STATES, TicketState
from storage.models import SimilarityDoc, SimilarityTerm, Ticket
from storage.types import UTCDateTime

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


def not_suggestible(resolved_since: datetime) -> ColumnElement[bool]:
    """The negation of ``suggestible``, spelled out (``resolved_at`` may be NULL)."""
    return or_(
        Ticket.duplicate_of_id.is_not(None),
        and_(Ticket.state.not_in(_OPEN),
             or_(Ticket.state.not_in(_DONE), Ticket.resolved_at.is_(None),
                 Ticket.resolved_at < resolved_since)),
    )


def is_suggestible(ticket: Ticket, resolved_since: datetime) -> bool:
    """``suggestible`` for a loaded ticket."""
    if ticket.duplicate_of_id is not None:
        return False
    if ticket.state in _OPEN:
        return True
    return (ticket.state in _DONE and ticket.resolved_at is not None
            and ticket.resolved_at >= resolved_since)


async def write_document(session: AsyncSession, ticket_id: int, words: Sequence[str],
                         anchors: Iterable[str], terms: Iterable[str], now: datetime,
                         *, posted: bool = True) -> None:
    """(Re)index one ticket: its document and, if ``posted`` (it may be suggested), its
    postings, replacing any earlier version."""
    await session.execute(delete(SimilarityTerm).where(SimilarityTerm.ticket_id == ticket_id))
    await session.execute(delete(SimilarityDoc).where(SimilarityDoc.ticket_id == ticket_id))
    session.add(SimilarityDoc(ticket_id=ticket_id, text=" ".join(words),
                              anchors=" ".join(sorted(anchors))[:400], indexed_at=now,
                              posted=posted))
    if posted:
        keys = sorted({term_key(t) for t in terms})
        session.add_all([SimilarityTerm(term=k, ticket_id=ticket_id) for k in keys])


#: Most recent postings read per query term: bounds the work of a search however common a
#: term is (a rewording shares some rare terms, which find older tickets too).
PER_TERM = 200
#: Tickets with the most shared weight kept from the postings before the ticket conditions
#: (suggestible, not the reporter's own) are checked on them.
POOL = 200


def _candidates_sql(terms: int, *, exclude: int, not_reporter: bool, not_organisation: bool) -> str:
    """The candidate query as text: built as SQLAlchemy Core, a union of fourteen limited
    subqueries took ~60 ms to compile per search (measured), ten times its execution. One
    string per shape is cached; every value is a bound parameter.

    Each term reads its ``PER_TERM`` most recent postings -- a backward walk of the ``(term,
    ticket_id)`` primary key that touches nothing else (an index-only read on both databases);
    one aggregate sums the weights per ticket, and only the ``POOL`` best are joined to
    ``tickets`` for the conditions. Joining every posting instead (the first version) cost 3-4
    times as much at 100,000 tickets; it is not needed because postings are kept only for
    suggestible tickets (``prune_postings``), so few of the pool fail the conditions."""
    where = [
        "t.duplicate_of_id IS NULL",
        "(t.state IN (" + ", ".join(f"'{s}'" for s in _OPEN) + ") OR (t.state IN ("
        + ", ".join(f"'{s}'" for s in _DONE) + ") AND t.resolved_at >= :since))",
    ]
    if exclude:
        where.append("t.id NOT IN (" + ", ".join(f":x{i}" for i in range(exclude)) + ")")
    if not_reporter:
        where.append("t.reporter_id <> :not_reporter")
    if not_organisation:
        where.append("(t.organisation_id IS NULL OR t.organisation_id <> :not_organisation)")
    condition = " AND ".join(where)
    parts = [
        f"SELECT * FROM (SELECT st.ticket_id AS ticket_id, :w{i} AS w FROM similarity_terms st "
        f"WHERE st.term = :t{i} ORDER BY st.ticket_id DESC LIMIT {PER_TERM}) AS p{i}"
        for i in range(terms)
    ]
    return ("SELECT c.ticket_id, c.score FROM (SELECT ticket_id, SUM(w) AS score FROM ("
            + " UNION ALL ".join(parts) + ") AS hits GROUP BY ticket_id "
            f"ORDER BY score DESC, ticket_id DESC LIMIT {POOL}) AS c "
            f"JOIN tickets t ON t.id = c.ticket_id WHERE {condition} "
            "ORDER BY c.score DESC, c.ticket_id DESC LIMIT :limit")


_SQL_CACHE: dict[tuple[int, int, bool, bool], TextClause] = {}


def _candidates_statement(terms: int, exclude: int, not_reporter: bool,
                          not_organisation: bool) -> TextClause:
    key = (terms, exclude, not_reporter, not_organisation)
    stmt = _SQL_CACHE.get(key)
    if stmt is None:
        stmt = text(_candidates_sql(terms, exclude=exclude, not_reporter=not_reporter,
                                    not_organisation=not_organisation)).bindparams(
            bindparam("since", type_=UTCDateTime()),
            *(bindparam(f"w{i}", type_=Float()) for i in range(terms)))
        _SQL_CACHE[key] = stmt
    return stmt


async def candidates(session: AsyncSession, weighted_terms: Sequence[tuple[str, float]],
                     resolved_since: datetime, *, limit: int,
                     exclude: Sequence[int] = (), not_reporter: int | None = None,
                     not_organisation: int | None = None) -> list[int]:
    """Suggestible tickets sharing the most weight of ``weighted_terms``, best first; not those
    of ``not_reporter`` or ``not_organisation`` (a reporter is not offered their own).

    A search reads at most ``PER_TERM`` postings per term and ``POOL`` tickets, on both
    databases, whatever the size of the index (see ``_candidates_sql``)."""
    if not weighted_terms:
        return []
    stmt = _candidates_statement(len(weighted_terms), len(exclude), not_reporter is not None,
                                 not_organisation is not None)
    params: dict[str, object] = {"since": resolved_since, "limit": limit}
    for i, (term, weight) in enumerate(weighted_terms):
        params[f"t{i}"] = term_key(term)
        params[f"w{i}"] = float(weight)
    for i, ticket_id in enumerate(exclude):
        params[f"x{i}"] = ticket_id
    if not_reporter is not None:
        params["not_reporter"] = not_reporter
    if not_organisation is not None:
        params["not_organisation"] = not_organisation
    return [int(tid) for tid, _ in await session.execute(stmt, params)]


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


async def unposted_live_ticket_ids(session: AsyncSession, resolved_since: datetime, after: int,
                                   limit: int, *, open_only: bool = False) -> list[int]:
    """Tickets whose document has no postings although they may be suggested again (reopened,
    or ``similar_resolved_days`` raised), in id order from ``after``. ``open_only``: open
    states only (the nightly check: reads only open tickets)."""
    live = Ticket.state.in_(_OPEN) if open_only else suggestible(resolved_since)
    stmt = (select(SimilarityDoc.ticket_id)
            .join(Ticket, Ticket.id == SimilarityDoc.ticket_id)
            .where(SimilarityDoc.posted.is_(False), SimilarityDoc.ticket_id > after, live,
                   Ticket.duplicate_of_id.is_(None))
            .order_by(SimilarityDoc.ticket_id).limit(limit))
    return [int(x) for x in (await session.execute(stmt)).scalars()]


async def posted_stale_ticket_ids(session: AsyncSession, resolved_since: datetime, after: int,
                                  limit: int) -> list[int]:
    """Tickets that still have postings but may no longer be suggested (resolved before
    ``resolved_since``, closed without resolution, rejected, linked as a duplicate), in id
    order from ``after``. Reads the posted documents only (``ix_similarity_docs_posted``)."""
    stmt = (select(SimilarityDoc.ticket_id)
            .join(Ticket, Ticket.id == SimilarityDoc.ticket_id)
            .where(SimilarityDoc.posted.is_(True), SimilarityDoc.ticket_id > after,
                   not_suggestible(resolved_since))
            .order_by(SimilarityDoc.ticket_id).limit(limit))
    return [int(x) for x in (await session.execute(stmt)).scalars()]


async def drop_postings(session: AsyncSession, ticket_ids: Sequence[int]) -> int:
    """Remove the postings of ``ticket_ids`` (their documents stay, ``posted`` false);
    returns how many postings went."""
    if not ticket_ids:
        return 0
    ids = list(ticket_ids)
    gone = (await session.execute(
        delete(SimilarityTerm).where(SimilarityTerm.ticket_id.in_(ids)))).rowcount or 0
    await session.execute(update(SimilarityDoc).where(SimilarityDoc.ticket_id.in_(ids))
                          .values(posted=False))
    return int(gone)
