"""The routing rule on its own: fewest open tickets, then longest since last assigned, then id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hotline.domain.enums import Role
from hotline.domain.routing import ASSIGNEE_TIERS, least_loaded

NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class Member:
    id: int
    last_assigned_at: datetime | None = None


def test_the_member_with_fewest_open_tickets_gets_it() -> None:
    an, binh = Member(1), Member(2)
    assert least_loaded([(an, 3), (binh, 1)], NEVER) is binh


def test_equal_loads_rotate_to_whoever_waited_longest_and_never_first() -> None:
    an = Member(1, datetime(2027, 3, 1, 9, tzinfo=UTC))
    binh = Member(2, datetime(2027, 3, 1, 8, tzinfo=UTC))
    chi = Member(3, None)
    assert least_loaded([(an, 2), (binh, 2)], NEVER) is binh
    assert least_loaded([(an, 2), (binh, 2), (chi, 2)], NEVER) is chi
    assert least_loaded([(Member(5), 0), (Member(4), 0)], NEVER).id == 4  # type: ignore[union-attr]


def test_an_empty_tier_picks_nobody_and_members_come_before_leads() -> None:
    assert least_loaded([], NEVER) is None
    assert ASSIGNEE_TIERS == ((Role.MEMBER,), (Role.LEAD,))
