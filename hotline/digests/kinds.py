"""Kinds of blockers in a period: what the programme counts, as a pure function of events.

A *kind* is an original ticket -- one not linked as a duplicate by the period's end -- with
its duplicates and followers. Its *affected parties* are the organisation that raised it and
every organisation (or, for a reporter without one, person) recorded by a ``followed`` event on
it before the end; a party affected by two kinds is one affected party.

* received: kinds whose original was filed in the period;
* resolved: kinds whose original had a resolution in the period; split by the kind of
  organisation that raised them ("16 raised by enterprises, 20 by ministries");
* open / overdue: kinds whose original is open (overdue) at the end, judged like tickets;
* due: the latest deadline among the open kinds ("5 remain, due 31 December");
* affected: distinct parties of the kinds received, resolved or open, split by their kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hotline.domain.enums import EventKind, OrgKind

if TYPE_CHECKING:
    from hotline.digests.compute import Replay, Rules
    from hotline.digests.model import EventRow, TicketInfo

REPORTER_KINDS: tuple[str, ...] = tuple(k.value for k in OrgKind)


@dataclass(frozen=True, slots=True)
class Kinds:
    received: int = 0
    resolved: int = 0
    open: int = 0
    overdue: int = 0
    #: Resolved kinds by who raised them, in ``REPORTER_KINDS`` order.
    resolved_by: tuple[tuple[str, int], ...] = ()
    #: Open kinds by who raised them.
    open_by: tuple[tuple[str, int], ...] = ()
    affected: int = 0
    affected_by: tuple[tuple[str, int], ...] = ()
    #: Latest deadline among the kinds open at the end (None when none is open).
    due: datetime | None = None

    def resolved_count(self, kind: str) -> int:
        return dict(self.resolved_by).get(kind, 0)

    def affected_count(self, kind: str) -> int:
        return dict(self.affected_by).get(kind, 0)


def _kind(value: object) -> str:
    return value if isinstance(value, str) and value in REPORTER_KINDS else OrgKind.OTHER.value


def _party(organisation_id: object, person_id: object) -> str:
    return f"o{organisation_id}" if organisation_id is not None else f"p{person_id}"


def compute_kinds(
    events: Iterable[EventRow],
    replays: Mapping[int, Replay],
    tickets: Mapping[int, TicketInfo],
    rules: Rules,
    start: datetime,
    end: datetime,
) -> Kinds:
    duplicates: set[int] = set()
    resolved_in: set[int] = set()
    followers: dict[int, dict[str, str]] = {}
    for e in events:
        if e.at >= end:
            continue
        if e.kind == EventKind.DUPLICATE_LINKED.value:
            duplicates.add(e.ticket_id)
        elif e.kind == EventKind.RESOLVED.value and e.at >= start:
            resolved_in.add(e.ticket_id)
        elif e.kind == EventKind.FOLLOWED.value and e.data:
            party = _party(e.data.get("organisation_id"), e.data.get("person_id"))
            followers.setdefault(e.ticket_id, {})[party] = _kind(e.data.get("org_kind"))

    received = resolved = open_ = overdue = 0
    resolved_by = dict.fromkeys(REPORTER_KINDS, 0)
    open_by = dict.fromkeys(REPORTER_KINDS, 0)
    parties: dict[str, str] = {}
    due: datetime | None = None
    for tid, r in replays.items():
        if tid in duplicates or r.created_at is None:
            continue
        info = tickets.get(tid)
        raiser = _kind(info.org_kind if info else None)
        is_received = start <= r.created_at < end
        is_resolved = tid in resolved_in
        received += is_received
        if is_resolved:
            resolved += 1
            resolved_by[raiser] += 1
        if r.is_open:
            open_ += 1
            open_by[raiser] += 1
            overdue += r.overdue(rules, end)
            if r.deadline is not None and (due is None or r.deadline > due):
                due = r.deadline
        if is_received or is_resolved or r.is_open:
            if info is not None:
                parties[_party(info.organisation_id, info.reporter_id)] = raiser
            parties.update(followers.get(tid, {}))
    affected_by = dict.fromkeys(REPORTER_KINDS, 0)
    for kind in parties.values():
        affected_by[kind] += 1
    return Kinds(
        received=received, resolved=resolved, open=open_, overdue=overdue,
        resolved_by=tuple(resolved_by.items()), open_by=tuple(open_by.items()),
        affected=len(parties), affected_by=tuple(affected_by.items()), due=due,
    )


def kinds_json(kinds: Kinds) -> dict[str, object]:
    """The API's and pages' form of ``Kinds`` (reporter kinds as keys)."""
    return {
        "received": kinds.received, "resolved": kinds.resolved, "open": kinds.open,
        "overdue": kinds.overdue, "resolved_by": dict(kinds.resolved_by),
        "open_by": dict(kinds.open_by), "affected": kinds.affected,
        "affected_by": dict(kinds.affected_by), "due": kinds.due,
    }


def kinds_from_json(data: Mapping[str, object]) -> Kinds:
    def pairs(key: str) -> tuple[tuple[str, int], ...]:
        value = data.get(key) or {}
        return tuple((str(k), int(v)) for k, v in value.items())  # type: ignore[union-attr]

    due = data.get("due")
    return Kinds(
        received=int(data["received"]), resolved=int(data["resolved"]),  # type: ignore[call-overload]
        open=int(data["open"]), overdue=int(data["overdue"]),  # type: ignore[call-overload]
        resolved_by=pairs("resolved_by"), open_by=pairs("open_by"),
        affected=int(data["affected"]), affected_by=pairs("affected_by"),  # type: ignore[call-overload]
        due=due if isinstance(due, datetime) else None,
    )
