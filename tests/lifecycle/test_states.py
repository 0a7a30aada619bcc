"""The lifecycle's table on its own: every move it does not hold is refused, for every
flow and cause, and the table has the shape the pipeline's guarantees rest on (nothing
is signed twice, only unsigned transactions can be cancelled, every live state can end).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.lifecycle import (
    CANCELLABLE,
    TERMINAL,
    Cause,
    Flow,
    IllegalTransitionError,
    TransactionStatus,
    exits,
    is_resting,
    transition,
)
from shardvault.lifecycle.states import TABLES

S = TransactionStatus
ALL_MOVES = list(itertools.product(Flow, S, S, Cause))


def _legal(flow: Flow, current: S, target: S, cause: Cause) -> bool:
    return cause in TABLES[flow][current].get(target, frozenset())


@pytest.mark.parametrize("flow", list(Flow))
def test_every_move_outside_the_table_is_refused_and_every_move_in_it_allowed(flow: Flow) -> None:
    refused = allowed = 0
    for current, target, cause in itertools.product(S, S, Cause):
        if _legal(flow, current, target, cause):
            assert transition(flow, current, target, cause) is target
            allowed += 1
            continue
        with pytest.raises(IllegalTransitionError) as raised:
            transition(flow, current, target, cause)
        assert (raised.value.flow, raised.value.current, raised.value.target) == (
            flow,
            current,
            target,
        )
        assert raised.value.cause is cause
        assert current.value in str(raised.value)
        assert target.value in str(raised.value)
        refused += 1
    assert allowed > 10
    assert refused > 400


def test_terminal_states_have_no_exit_in_any_flow() -> None:
    for flow, status in itertools.product(Flow, TERMINAL):
        assert exits(flow, status) == frozenset()
        assert is_resting(flow, status)


def test_only_unsigned_transactions_can_be_cancelled_and_only_by_a_cancellation() -> None:
    """A user cancels only what is unsigned; a signed transfer ends ``cancelled`` only
    when the pipeline sees its cancel replacement mined in its place."""
    assert frozenset({S.SUBMITTED, S.PENDING_POLICY, S.PENDING_APPROVAL, S.APPROVED}) == CANCELLABLE
    for flow, current, target, cause in ALL_MOVES:
        if target is S.CANCELLED and _legal(flow, current, target, cause):
            if cause is Cause.PIPELINE:
                assert (flow, current) == (Flow.ONCHAIN, S.CONFIRMING)
                continue
            assert current in CANCELLABLE
            assert cause is Cause.CANCEL
        if cause is Cause.CANCEL and _legal(flow, current, target, cause):
            assert target is S.CANCELLED


def test_approvers_only_decide_pending_approvals() -> None:
    for flow, current, target, cause in ALL_MOVES:
        if cause is Cause.APPROVAL and _legal(flow, current, target, cause):
            assert current is S.PENDING_APPROVAL
            assert target in (S.APPROVED, S.REJECTED)


def _reachable(flow: Flow, start: S) -> set[S]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in exits(flow, todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_nothing_is_signed_again_once_signed() -> None:
    """From ``signed`` on, no path leads back to ``signing`` or any state before it:
    a dropped transaction is sent again with the same bytes, never re-signed."""
    before_signed = {S.SUBMITTED, S.PENDING_POLICY, S.PENDING_APPROVAL, S.APPROVED, S.SIGNING}
    for flow in Flow:
        assert not _reachable(flow, S.SIGNED) & before_signed


def test_every_state_can_end_and_only_sign_only_rests_at_signed() -> None:
    for flow in Flow:
        assert _reachable(flow, S.SUBMITTED) == (
            set(S) - {S.BROADCASTING, S.CONFIRMING, S.COMPLETED}
            if flow is Flow.SIGN_ONLY
            else set(S)
        )
    for flow, status in itertools.product(Flow, S):
        if status not in _reachable(flow, S.SUBMITTED):
            continue
        reachable = _reachable(flow, status)
        if flow is Flow.SIGN_ONLY and status is S.SIGNED:
            assert reachable == {S.SIGNED}
            assert is_resting(flow, status)
            continue
        assert reachable & TERMINAL, (flow, status)
    assert is_resting(Flow.SIGN_ONLY, S.SIGNED)
    assert not is_resting(Flow.ONCHAIN, S.SIGNED)


def test_only_confirmation_completes_and_only_a_drop_sends_again() -> None:
    for flow, current, target, cause in ALL_MOVES:
        if not _legal(flow, current, target, cause):
            continue
        if target is S.COMPLETED:
            assert current is S.CONFIRMING
            assert cause is Cause.PIPELINE
        if target is S.BROADCASTING:
            assert current in (S.SIGNED, S.CONFIRMING)
            assert flow is Flow.ONCHAIN
        if target is S.SIGNED:
            assert current is S.SIGNING


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Flow)), st.lists(st.sampled_from(list(S)), max_size=20))
def test_a_random_walk_is_accepted_exactly_while_each_step_is_in_the_table(
    flow: Flow, targets: list[S]
) -> None:
    current = S.SUBMITTED
    for target in targets:
        causes = [c for c in Cause if _legal(flow, current, target, c)]
        if not causes:
            with pytest.raises(IllegalTransitionError):
                transition(flow, current, target, Cause.PIPELINE)
            continue
        current = transition(flow, current, target, causes[0])
    assert current in _reachable(flow, S.SUBMITTED)
