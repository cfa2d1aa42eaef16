"""Who gets a new ticket: the routing rule, pure (SPEC §4).

A group that claims from its queue gets nobody assigned (its members claim). Otherwise the
first tier that has anyone -- members, then leads -- gives the person with the fewest open
tickets; ties go to whoever was assigned longest ago (never first), then to the lowest id, so
equal loads rotate round robin. ``hotline.services.tickets.choose_assignee`` reads the loads
and applies this.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from hotline.domain.enums import Role

#: Who may be picked, tier by tier: the first tier with anyone in the group wins.
ASSIGNEE_TIERS: tuple[tuple[Role, ...], ...] = ((Role.MEMBER,), (Role.LEAD,))


class Candidate(Protocol):
    id: int
    last_assigned_at: datetime | None


C = TypeVar("C", bound=Candidate)


def least_loaded(loaded: Sequence[tuple[C, int]], epoch: datetime) -> C | None:
    """The candidate with the fewest open tickets; ties to the longest since last assigned
    (``epoch`` stands for never), then the lowest id. None for an empty tier."""
    if not loaded:
        return None
    return min(loaded, key=lambda pl: (pl[1], pl[0].last_assigned_at or epoch, pl[0].id))[0]
