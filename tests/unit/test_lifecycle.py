"""The state machine of SPEC §3, every (state, action) pair."""

from __future__ import annotations

import itertools

import pytest

from hotline.domain.enums import TicketState as S
from hotline.domain.lifecycle import TRANSITIONS, Action, IllegalTransition, can, next_state

LEGAL = {
    (S.NEW, Action.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, Action.ASSIGN): S.ASSIGNED,
    (S.IN_PROGRESS, Action.ASSIGN): S.ASSIGNED,
    (S.REOPENED, Action.ASSIGN): S.REOPENED,
    (S.WAITING_REPORTER, Action.ASSIGN): S.WAITING_REPORTER,
    (S.ASSIGNED, Action.ACKNOWLEDGE): S.IN_PROGRESS,
    (S.REOPENED, Action.ACKNOWLEDGE): S.IN_PROGRESS,
    (S.IN_PROGRESS, Action.REQUEST_INFO): S.WAITING_REPORTER,
    (S.WAITING_REPORTER, Action.PROVIDE_INFO): S.IN_PROGRESS,
    (S.IN_PROGRESS, Action.RESOLVE): S.RESOLVED,
    (S.WAITING_REPORTER, Action.RESOLVE): S.RESOLVED,
    (S.RESOLVED, Action.CLOSE): S.CLOSED,
    (S.RESOLVED, Action.REOPEN): S.REOPENED,
    (S.CLOSED, Action.REOPEN): S.REOPENED,
    (S.NEW, Action.REJECT): S.REJECTED,
    (S.ASSIGNED, Action.REJECT): S.REJECTED,
    (S.IN_PROGRESS, Action.REJECT): S.REJECTED,
    (S.WAITING_REPORTER, Action.REJECT): S.REJECTED,
    (S.REOPENED, Action.REJECT): S.REJECTED,
}
ALL_PAIRS = list(itertools.product(S, Action))


def test_table_is_exactly_the_spec() -> None:
    table = {(src, action): dst for action, moves in TRANSITIONS.items() for src, dst in moves.items()}
    assert table == LEGAL


@pytest.mark.parametrize(("state", "action"), [p for p in ALL_PAIRS if p in LEGAL])
def test_legal_transition(state: S, action: Action) -> None:
    assert can(state, action)
    assert next_state(state, action) == LEGAL[(state, action)]


@pytest.mark.parametrize(("state", "action"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_transition_raises_naming_states(state: S, action: Action) -> None:
    assert not can(state, action)
    with pytest.raises(IllegalTransition) as info:
        next_state(state, action)
    message = str(info.value)
    assert state.value in message and action.value in message
    assert info.value.key == "error.illegal_transition"


def test_terminal_states_only_reopen() -> None:
    for action in Action:
        if action is not Action.REOPEN:
            assert not can(S.CLOSED, action)
        assert not can(S.REJECTED, action)


def test_every_state_is_reachable_from_new() -> None:
    seen, frontier = {S.NEW}, [S.NEW]
    while frontier:
        state = frontier.pop()
        for action in Action:
            if can(state, action):
                nxt = next_state(state, action)
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
    assert seen == set(S)
