"""When a ticket can be rated: the one rule the chat, the card's buttons and the reminder share.

A rating is the reporter's verdict on how the blocker was handled, so it must never be lost to
a stray keystroke or a closed keyboard: it stays possible (and can be changed) for a window
after the ticket was resolved, and one reminder asks if nobody rated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hotline.domain.enums import TicketState

RATEABLE_STATES = frozenset({TicketState.RESOLVED.value, TicketState.CLOSED.value})
STARS = range(1, 6)


def finished_at(resolved_at: datetime | None, closed_at: datetime | None) -> datetime | None:
    """When the work ended: resolution, else the close (a ticket closed without resolving)."""
    return resolved_at or closed_at


def rating_open(state: str, finished: datetime | None, now: datetime, window_days: int) -> bool:
    """Whether the reporter may rate (or re-rate) now."""
    if state not in RATEABLE_STATES or finished is None:
        return False
    return now <= finished + timedelta(days=window_days)


def reminder_due(state: str, finished: datetime | None, rating: int | None, now: datetime,
                 *, window_days: int, after_days: int) -> bool:
    """Whether the one reminder should go now: unrated, old enough, still rateable."""
    if rating is not None or finished is None:
        return False
    return (rating_open(state, finished, now, window_days)
            and now >= finished + timedelta(days=after_days))
