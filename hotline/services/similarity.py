"""Suggesting tickets about the same problem: index a ticket when it is filed, search the
suggestible ones (open, or resolved in the last ``similar_resolved_days``) for a text.

The score is ``hotline.similarity.score.similarity`` -- the same rule ``hotline similar
--eval`` measures -- computed for the few candidates the database returns for the query's
rarest terms (``storage.similarity.candidates``). Only suggestible tickets keep postings:
``prune_postings`` (nightly housekeeping, ``hotline similar --prune``) removes the others' and
gives them back to reopened ones; a reopened ticket is re-indexed at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select

from hotline.deps import App, Deps
from hotline.similarity.score import (
    ANCHOR_BONUS,
    COVERAGE_WEIGHT,
    WORD_WEIGHT,
    char_grams,
    profile_of,
    similarity,
    term_weight,
    upper_bound,
)
from hotline.similarity.text import anchors, canonical_words, terms_of
from storage import similarity as index
from storage.models import Person, Ticket
from storage.uow import UnitOfWork

#: Query terms looked up in the index (the rarest in it first): enough to find a rewording,
#: few enough that a query reads a bounded number of postings.
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


def _resolved_since(deps: Deps, now: datetime | None = None) -> datetime:
    """Resolved tickets are suggested until this long after their resolution."""
    return (now or deps.clock.now()) - timedelta(days=deps.settings.similar_resolved_days)


async def index_ticket(uow: UnitOfWork, deps: Deps, ticket: Ticket) -> None:
    """Make ``ticket`` searchable; called in the transaction that files it (and when it is
    reopened: its postings may have been pruned)."""
    words, found = canonical_words(ticket.description), anchors(ticket.description)
    await index.write_document(uow.session, ticket.id, words, found, terms_of(words, found),
                               deps.clock.now(), norm=profile_of(words, found, chars=False).norm,
                               posted=index.is_suggestible(ticket, _resolved_since(deps)))


#: Query terms (the heaviest) whose postings are counted to choose the rarest in the index.
COUNTED_TERMS = 32


async def _query_terms(uow: UnitOfWork, words: list[str],
                       found: frozenset[str]) -> list[tuple[str, float]]:
    """The query's rarest terms *in the index*, with their weights: terms no live ticket has
    are left out (an English word the glossary does not map finds nothing, and would take the
    place of one that does), then the least frequent first, ties by weight."""
    weighted = [(t, ANCHOR_TERM_WEIGHT if t.startswith("#") else term_weight(t))
                for t in terms_of(words, found)]
    weighted.sort(key=lambda tw: -tw[1])
    weighted = weighted[:COUNTED_TERMS]
    df = await index.frequencies(uow.session, [t for t, _ in weighted])
    present = sorted((d, -w, t) for (t, w), d in zip(weighted, df, strict=True) if d > 0)
    return [(t, -w) for _, w, t in present[:QUERY_TERMS]]


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
    query = profile_of(words, found)
    found_docs = await index.candidates(
        uow.session,
        index.Query(await _query_terms(uow, words, found), query.norm, WORD_WEIGHT, COVERAGE_WEIGHT,
                    ANCHOR_BONUS, ANCHOR_TERM_WEIGHT ** 2),
        _resolved_since(deps), limit=CANDIDATES, exclude=exclude,
        not_reporter=for_reporter.id if for_reporter else None,
        not_organisation=for_reporter.organisation_id if for_reporter else None)
    scored: list[tuple[float, int]] = []
    for i, doc_text, doc_anchors in found_docs:
        doc_words = doc_text.split()
        stored = profile_of(doc_words, frozenset(doc_anchors.split()), chars=False)
        if cut > 0 and upper_bound(query, stored) < cut:
            continue  # cannot reach the threshold: its character pieces are not worth making
        scored.append((similarity(query, replace(stored, chars=char_grams(doc_words))), i))
    scored.sort(key=lambda si: (-si[0], -si[1]))
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
    """Index every ticket not yet indexed (after upgrading a database that predates the index),
    and give postings back to every suggestible ticket whose postings were pruned (e.g. after
    ``similar_resolved_days`` was raised); commits per batch, returns how many were written."""
    written = 0
    for pick in (lambda after: index.unindexed_ticket_ids(uow.session, after, batch),
                 lambda after: index.unposted_live_ticket_ids(
                     uow.session, _resolved_since(deps), after, batch)):
        after = 0
        while ids := await pick(after):
            written += await _index_batch(uow, deps, ids)
            after = ids[-1]
    return written


async def _index_batch(uow: UnitOfWork, deps: Deps, ids: list[int]) -> int:
    rows = await uow.session.execute(select(Ticket).where(Ticket.id.in_(ids)))
    for ticket in rows.scalars():
        await index_ticket(uow, deps, ticket)
    await uow.commit()
    return len(ids)


@dataclass(frozen=True)
class PruneReport:
    """One pass of ``prune_postings``."""

    tickets: int  # tickets whose postings went
    postings: int
    reposted: int  # open tickets whose postings came back
    seconds: float

    def to_json(self) -> dict[str, float | int]:
        return {"tickets": self.tickets, "postings": self.postings, "reposted": self.reposted,
                "seconds": self.seconds}


#: Tickets per pruning transaction (~60 postings each): short write locks on SQLite.
PRUNE_BATCH = 500
#: Pause between two pruning batches, so the bot's own writes get in between.
PRUNE_PAUSE_SECONDS = 0.05


async def prune_postings(app: App, *, batch: int = PRUNE_BATCH,
                         pause_seconds: float = PRUNE_PAUSE_SECONDS) -> PruneReport:
    """Remove the postings of tickets that may no longer be suggested (resolved more than
    ``similar_resolved_days`` ago, closed unresolved, rejected, linked as a duplicate); their
    documents stay, so ``--reindex`` or a reopening brings them back. Also re-posts open
    tickets left without postings (a reopening that raced a pass). One short transaction per
    batch, walking the posted documents in id order; safe to interrupt or run twice."""
    started = time.perf_counter()
    since = _resolved_since(app)
    tickets = postings = reposted = 0
    after = 0
    while True:
        async with app.uow() as uow:
            ids = await index.posted_stale_ticket_ids(uow.session, since, after, batch)
            if not ids:
                break
            postings += await index.drop_postings(uow.session, ids)
            await uow.commit()
        tickets += len(ids)
        after = ids[-1]
        await asyncio.sleep(pause_seconds)
    after = 0
    while True:
        async with app.uow() as uow:
            ids = await index.unposted_live_ticket_ids(uow.session, since, after, batch,
                                                       open_only=True)
            if not ids:
                break
            reposted += await _index_batch(uow, app, ids)
        after = ids[-1]
    return PruneReport(tickets, postings, reposted, round(time.perf_counter() - started, 3))
