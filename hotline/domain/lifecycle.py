"""The ticket state machine of SPEC §3 as a table, so it can be tested exhaustively."""

from __future__ import annotations

from enum import StrEnum

from hotline.domain.enums import TicketState as S
from hotline.errors import HotlineError


class Action(StrEnum):
    ASSIGN = "assign"
    ACKNOWLEDGE = "acknowledge"
    REQUEST_INFO = "request_info"
    PROVIDE_INFO = "provide_info"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    REJECT = "reject"


#: action -> {from_state: to_state}. Anything absent is illegal.
TRANSITIONS: dict[Action, dict[S, S]] = {
    # A (re)assignment puts the ticket back to "assigned" so the new owner must acknowledge;
    # a ticket waiting on the reporter keeps waiting (the SLA stays paused).
    Action.ASSIGN: {
        S.NEW: S.ASSIGNED,
        S.ASSIGNED: S.ASSIGNED,
        S.IN_PROGRESS: S.ASSIGNED,
        S.REOPENED: S.REOPENED,
        S.WAITING_REPORTER: S.WAITING_REPORTER,
    },
    Action.ACKNOWLEDGE: {S.ASSIGNED: S.IN_PROGRESS, S.REOPENED: S.IN_PROGRESS},
    Action.REQUEST_INFO: {S.IN_PROGRESS: S.WAITING_REPORTER},
    Action.PROVIDE_INFO: {S.WAITING_REPORTER: S.IN_PROGRESS},
    Action.RESOLVE: {S.IN_PROGRESS: S.RESOLVED, S.WAITING_REPORTER: S.RESOLVED},
    Action.CLOSE: {S.RESOLVED: S.CLOSED},
    Action.REOPEN: {S.RESOLVED: S.REOPENED, S.CLOSED: S.REOPENED},
    Action.REJECT: {
        S.NEW: S.REJECTED,
        S.ASSIGNED: S.REJECTED,
        S.IN_PROGRESS: S.REJECTED,
        S.WAITING_REPORTER: S.REJECTED,
        S.REOPENED: S.REJECTED,
    },
}


class IllegalTransition(HotlineError):
    key = "error.illegal_transition"

    def __init__(self, action: Action, state: S) -> None:
        allowed = sorted(s.value for s in TRANSITIONS[action])
        super().__init__(
            f"cannot {action.value} a ticket in state '{state.value}' "
            f"(allowed from: {', '.join(allowed)})",
            action=action.value,
            state=state.value,
        )
        self.action = action
        self.state = state


def next_state(state: S, action: Action) -> S:
    """Return the state ``action`` leads to from ``state``, or raise ``IllegalTransition``."""
    try:
        return TRANSITIONS[action][state]
    except KeyError:
        raise IllegalTransition(action, state) from None


def can(state: S, action: Action) -> bool:
    return state in TRANSITIONS[action]
