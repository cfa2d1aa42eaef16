"""The persisted similarity index: canonical documents and term postings, in the database.

Written in the filing transaction, so a ticket is searchable the moment it exists; read with one
statement per search (the documents of the candidate tickets, found by shared rare terms and
ranked by the score's word part), so no process ever loads the whole index. Same SQL on SQLite
and PostgreSQL.

Every ticket keeps its document; only tickets that may be suggested (open, or resolved within
``similar_resolved_days``) keep their *postings* (``posted``): housekeeping prunes the others
(``prune_postings``), so the index a search walks grows with the live tickets, not with history.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
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
                         *, norm: float, posted: bool = True) -> None:
    """(Re)index one ticket: its document and, if ``posted`` (it may be suggested), its
    postings, replacing any earlier version."""
    await session.execute(delete(SimilarityTerm).where(SimilarityTerm.ticket_id == ticket_id))
    await session.execute(delete(SimilarityDoc).where(SimilarityDoc.ticket_id == ticket_id))
    session.add(SimilarityDoc(ticket_id=ticket_id, text=" ".join(words),
                              anchors=" ".join(sorted(anchors))[:400], indexed_at=now,
                              posted=posted, norm=norm))
    if posted:
        keys = sorted({term_key(t) for t in terms})
        session.add_all([SimilarityTerm(term=k, ticket_id=ticket_id) for k in keys])


#: Most recent postings read per query term: bounds the work of a search however common a
#: term is (a rewording shares some rare terms, which find older tickets too).
PER_TERM = 200
#: Tickets with the most shared weight kept from the postings before they are ranked by the
#: score and checked against the ticket conditions (suggestible, not the reporter's own).
POOL = 300


def _candidates_sql(terms: int, *, exclude: int, not_reporter: bool, not_organisation: bool) -> str:
    """The candidate query as text: built as SQLAlchemy Core, a union of fourteen limited
    subqueries took ~60 ms to compile per search (measured), ten times its execution. One
    string per shape is cached; every value is a bound parameter.

    Each term reads its ``PER_TERM`` most recent postings -- a backward walk of the ``(term,
    ticket_id)`` primary key that touches nothing else (an index-only read on both databases).
    One aggregate sums, per ticket, the squared weights of the shared words (``:w``) and the
    shared decree numbers (``:a``); the ``POOL`` tickets sharing most are joined to their
    documents and tickets, and ranked by the word part of the score itself -- cosine and
    coverage from the shared weight and the two norms (``score.similarity``), plus the anchor
    bonus -- so that a short report is not crowded out by long ones sharing common words.
    Joining every posting to ``tickets`` instead (the first version) cost 3-4 times as much at
    100,000 tickets; it is not needed because postings are kept only for suggestible tickets
    (``prune_postings``), so few of the pool fail the conditions."""
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
        f"SELECT * FROM (SELECT st.ticket_id AS ticket_id, :w{i} AS w, :a{i} AS a "
        f"FROM similarity_terms st WHERE st.term = :t{i} "
        f"ORDER BY st.ticket_id DESC LIMIT {PER_TERM}) AS p{i}"
        for i in range(terms)
    ]
    # The document's norm; one indexed before norms were stored counts as long as the query.
    norm = "(CASE WHEN d.norm > 0 THEN d.norm ELSE :qn END)"
    shorter = f"(CASE WHEN {norm} < :qn THEN {norm} ELSE :qn END)"
    score = (f"(:cosine * c.shared / (:qn * {norm}) + :coverage * c.shared / ({shorter} * {shorter})"
             " + CASE WHEN c.anchors > 0 THEN :anchor ELSE 0 END)")
    return ("SELECT c.ticket_id, d.text, d.anchors FROM (SELECT ticket_id, SUM(w) AS shared, "
            "SUM(a) AS anchors FROM (" + " UNION ALL ".join(parts) + ") AS hits "
            "GROUP BY ticket_id ORDER BY SUM(w) + :anchor_weight * SUM(a) DESC, ticket_id DESC "
            f"LIMIT {POOL}) AS c "
            "JOIN similarity_docs d ON d.ticket_id = c.ticket_id "
            f"JOIN tickets t ON t.id = c.ticket_id WHERE {condition} "
            f"ORDER BY {score} DESC, c.ticket_id DESC LIMIT :limit")


_SQL_CACHE: dict[tuple[int, int, bool, bool], TextClause] = {}


def _candidates_statement(terms: int, exclude: int, not_reporter: bool,
                          not_organisation: bool) -> TextClause:
    key = (terms, exclude, not_reporter, not_organisation)
    stmt = _SQL_CACHE.get(key)
    if stmt is None:
        stmt = text(_candidates_sql(terms, exclude=exclude, not_reporter=not_reporter,
                                    not_organisation=not_organisation)).bindparams(
            bindparam("since", type_=UTCDateTime()),
            *(bindparam(name, type_=Float())
              for name in ("qn", "cosine", "coverage", "anchor", "anchor_weight")),
            *(bindparam(f"w{i}", type_=Float()) for i in range(terms)),
            *(bindparam(f"a{i}", type_=Integer()) for i in range(terms)))
        _SQL_CACHE[key] = stmt
    return stmt


#: A term key no posting has (keys are 31-bit, non-negative): pads a statement's term list.
NO_TERM = -1


def _padded(count: int) -> int:
    """Term lists are padded to a multiple of 8 (with ``NO_TERM``, which costs one index probe),
    so a handful of statement shapes serve every query: each new shape is one more statement
    to prepare and plan (PostgreSQL) and cache, and a search with a new shape paid for it."""
    return -(-count // 8) * 8


#: Postings counted per term when measuring how rare a query's terms are in the index: a term
#: this common counts as common, however much more common it is.
DF_CAP = 200

_DF_CACHE: dict[int, TextClause] = {}


async def frequencies(session: AsyncSession, terms: Sequence[str]) -> list[int]:
    """How many postings each term has in the index (document frequency among the suggestible
    tickets, since only they keep postings), counted up to ``DF_CAP``: one statement reading at
    most ``DF_CAP`` index entries per term."""
    if not terms:
        return []
    size = _padded(len(terms))
    stmt = _DF_CACHE.get(size)
    if stmt is None:
        stmt = text(" UNION ALL ".join(
            f"SELECT {i} AS i, (SELECT COUNT(*) FROM (SELECT 1 AS one FROM similarity_terms "
            f"WHERE term = :t{i} LIMIT {DF_CAP}) AS f{i}) AS df" for i in range(size)))
        _DF_CACHE[size] = stmt
    keys = [term_key(t) for t in terms] + [NO_TERM] * (size - len(terms))
    rows = await session.execute(stmt, {f"t{i}": k for i, k in enumerate(keys)})
    counts = {int(i): int(df) for i, df in rows}
    return [int(counts.get(i, 0)) for i in range(len(terms))]


@dataclass(frozen=True)
class Query:
    """What the candidate query needs of a search text: its terms with their weights
    (``#``-terms are decree/law numbers), the norm of its word weights, and the weights of the
    score's parts (``hotline.similarity.score``)."""

    terms: Sequence[tuple[str, float]]
    norm: float
    cosine: float
    coverage: float
    anchor_bonus: float
    #: How much a shared decree number counts when choosing the pool (rarer than any word).
    anchor_weight: float


async def candidates(session: AsyncSession, query: Query, resolved_since: datetime, *,
                     limit: int, exclude: Sequence[int] = (), not_reporter: int | None = None,
                     not_organisation: int | None = None) -> list[tuple[int, str, str]]:
    """Suggestible tickets most like ``query``, best first, as ``(ticket id, canonical text,
    anchors)``; not those of ``not_reporter`` or ``not_organisation`` (a reporter is not
    offered their own). One statement; it reads at most ``PER_TERM`` postings per term and
    ``POOL`` documents and tickets, whatever the size of the index (see ``_candidates_sql``)."""
    if not query.terms or query.norm <= 0:
        return []
    size = _padded(len(query.terms))
    stmt = _candidates_statement(size, len(exclude), not_reporter is not None,
                                 not_organisation is not None)
    params: dict[str, object] = {
        "since": resolved_since, "limit": limit, "qn": query.norm, "cosine": query.cosine,
        "coverage": query.coverage, "anchor": query.anchor_bonus,
        "anchor_weight": query.anchor_weight}
    for i, (term, weight) in enumerate(query.terms):
        anchor = term.startswith("#")
        params[f"t{i}"] = term_key(term)
        params[f"w{i}"] = 0.0 if anchor else float(weight) ** 2
        params[f"a{i}"] = int(anchor)
    for i in range(len(query.terms), size):
        params[f"t{i}"], params[f"w{i}"], params[f"a{i}"] = NO_TERM, 0.0, 0
    for i, ticket_id in enumerate(exclude):
        params[f"x{i}"] = ticket_id
    if not_reporter is not None:
        params["not_reporter"] = not_reporter
    if not_organisation is not None:
        params["not_organisation"] = not_organisation
    return [(int(tid), doc, anchors) for tid, doc, anchors in await session.execute(stmt, params)]


async def unindexed_ticket_ids(session: AsyncSession, after: int, limit: int) -> list[int]:
    """Tickets without a document (or with one indexed before norms were stored), in id order
    from ``after`` (for ``--reindex`` batches)."""
    indexed = select(SimilarityDoc.ticket_id).where(SimilarityDoc.norm.is_not(None))
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
