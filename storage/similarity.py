"""The persisted similarity index: canonical documents and term postings, in the database.

Written in the filing transaction, so a ticket is searchable the moment it exists; read with two
small queries per search (candidate tickets by shared rare terms, then their documents), so no
process ever loads the whole index. Same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Float, TextClause, and_, bindparam, delete, or_, select, text
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


async def write_document(session: AsyncSession, ticket_id: int, words: Sequence[str],
                         anchors: Iterable[str], terms: Iterable[str], now: datetime) -> None:
    """(Re)index one ticket: its document and postings, replacing any earlier version."""
    await session.execute(delete(SimilarityTerm).where(SimilarityTerm.ticket_id == ticket_id))
    await session.execute(delete(SimilarityDoc).where(SimilarityDoc.ticket_id == ticket_id))
    session.add(SimilarityDoc(ticket_id=ticket_id, text=" ".join(words),
                              anchors=" ".join(sorted(anchors))[:400], indexed_at=now))
    keys = sorted({term_key(t) for t in terms})
    session.add_all([SimilarityTerm(term=k, ticket_id=ticket_id) for k in keys])


#: Most recent suggestible tickets read per query term: bounds the work of a search however
#: common a term is (a rewording shares some rare terms, which find older tickets too).
PER_TERM = 200


def _candidates_sql(terms: int, *, exclude: int, not_reporter: bool, not_organisation: bool) -> str:
    """The candidate query as text: built as SQLAlchemy Core, a union of fourteen limited
    subqueries took ~60 ms to compile per search (measured), ten times its execution. One
    string per shape is cached; every value is a bound parameter."""
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
        f"JOIN tickets t ON t.id = st.ticket_id WHERE st.term = :t{i} AND {condition} "
        f"ORDER BY st.ticket_id DESC LIMIT {PER_TERM}) AS p{i}"
        for i in range(terms)
    ]
    return ("SELECT ticket_id, SUM(w) AS score FROM (" + " UNION ALL ".join(parts) + ") AS hits "
            "GROUP BY ticket_id ORDER BY score DESC, ticket_id DESC LIMIT :limit")


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

    Each term contributes its ``PER_TERM`` most recent suggestible tickets (a backward walk of
    the ``(term, ticket_id)`` primary key), so a search reads a bounded number of postings on
    both databases, whatever the size of the index."""
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
