"""Suggesting tickets about the same problem: index a ticket when it is filed, search the
suggestible ones (open, or resolved in the last ``similar_resolved_days``) for a text.

The score is ``hotline.similarity.score.similarity`` -- the same rule ``hotline similar
--eval`` measures -- computed for the few candidates the database returns for the query's
rarest terms (``storage.similarity.candidates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from hotline.deps import Deps
from hotline.similarity.score import profile_of, similarity, term_weight
from hotline.similarity.text import anchors, canonical_words, terms_of
from storage import similarity as index
from storage.models import Person, Ticket
from storage.uow import UnitOfWork

#: Query terms looked up in the index (the rarest first): enough to find a rewording, few
#: enough that a query reads a bounded number of postings.
QUERY_TERMS = 14
#: Candidates re-scored per search.
CANDIDATES = 24
#: Weight of a shared decree/law number when choosing candidates (rarer than any word).
ANCHOR_TERM_WEIGHT = 12.0
#: Suggestions shown to a reporter at intake (SPEC: "up to 3").
MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Match:
    ticket: Ticket
    score: float


async def index_ticket(uow: UnitOfWork, deps: Deps, ticket: Ticket) -> None:
    """Make ``ticket`` searchable; called in the transaction that files it."""
    words, found = canonical_words(ticket.description), anchors(ticket.description)
    await index.write_document(uow.session, ticket.id, words, found, terms_of(words, found),
                               deps.clock.now())


def _query_terms(words: list[str], found: frozenset[str]) -> list[tuple[str, float]]:
    weighted = [(t, ANCHOR_TERM_WEIGHT if t.startswith("#") else term_weight(t))
                for t in terms_of(words, found)]
    weighted.sort(key=lambda tw: -tw[1])
    return weighted[:QUERY_TERMS]


async def search(
    uow: UnitOfWork, deps: Deps, text: str, *, limit: int = MAX_SUGGESTIONS,
    threshold: float | None = None, exclude: Sequence[int] = (), for_reporter: Person | None = None,
) -> list[Match]:
    """The suggestible tickets most like ``text``, best first, scoring at least ``threshold``
    (the chat's ``similar_threshold`` unless given; pass 0 to see the nearest whatever their
    score). ``for_reporter``: leave out that reporter's and their organisation's own tickets."""
    cut = deps.settings.similar_threshold if threshold is None else threshold
    words, found = canonical_words(text), anchors(text)
    if not words:
        return []
    since = deps.clock.now() - timedelta(days=deps.settings.similar_resolved_days)
    ids = await index.candidates(uow.session, _query_terms(words, found), since,
                                 limit=CANDIDATES, exclude=exclude,
                                 not_reporter=for_reporter.id if for_reporter else None,
                                 not_organisation=for_reporter.organisation_id if for_reporter else None)
    docs = await index.documents(uow.session, ids)
    ids = [i for i in ids if i in docs]
    query = profile_of(words, found)
    stored = [profile_of(docs[i][0].split(), frozenset(docs[i][1].split())) for i in ids]
    scored = sorted(((similarity(query, p), i) for p, i in zip(stored, ids, strict=True)),
                    key=lambda si: (-si[0], -si[1]))
    best = [(s, i) for s, i in scored if s >= cut][:limit]
    if not best:
        return []
    rows = await uow.session.execute(select(Ticket).where(Ticket.id.in_([i for _, i in best])))
    by_id = {t.id: t for t in rows.scalars()}
    return [Match(by_id[i], round(s, 3)) for s, i in best if i in by_id]


async def likely_duplicates(uow: UnitOfWork, deps: Deps, ticket: Ticket,
                            limit: int = MAX_SUGGESTIONS) -> list[Match]:
    """Tickets ``ticket`` may duplicate, for coordinators (triage and ``/dup``): any reporter's,
    filed before it, scoring at least the chat's threshold."""
    found = await search(uow, deps, ticket.description, limit=limit + 3, exclude=[ticket.id])
    return [m for m in found if m.ticket.created_at <= ticket.created_at][:limit]


async def reindex(uow: UnitOfWork, deps: Deps, *, batch: int = 500) -> int:
    """Index every ticket not yet indexed (after upgrading a database that predates the index);
    commits per batch, returns how many were written."""
    written, after = 0, 0
    while True:
        ids = await index.unindexed_ticket_ids(uow.session, after, batch)
        if not ids:
            return written
        rows = await uow.session.execute(select(Ticket).where(Ticket.id.in_(ids)))
        for ticket in rows.scalars():
            await index_ticket(uow, deps, ticket)
        await uow.commit()
        written += len(ids)
        after = ids[-1]
