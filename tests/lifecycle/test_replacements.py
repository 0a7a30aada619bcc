"""The replacement table on its own: every move outside it is refused, and its shape
gives what the pipeline relies on (nothing leaves an ended replacement; a replacement
reaches the node only once signed; only a sent one can be the one mined)."""

from __future__ import annotations

import itertools

import pytest

from shardvault.lifecycle import (
    ENDED_REPLACEMENT,
    LIVE_REPLACEMENT,
    REPLACEMENT_TABLE,
    IllegalReplacementMoveError,
    ReplacementStatus,
    replacement_transition,
)

R = ReplacementStatus


def test_every_move_outside_the_table_is_refused() -> None:
    allowed = refused = 0
    for current, target in itertools.product(R, R):
        if target in REPLACEMENT_TABLE[current]:
            assert replacement_transition(current, target) is target
            allowed += 1
            continue
        with pytest.raises(IllegalReplacementMoveError) as raised:
            replacement_transition(current, target)
        assert (raised.value.current, raised.value.target) == (current, target)
        assert current.value in str(raised.value)
        refused += 1
    assert allowed == 8
    assert refused == len(R) ** 2 - 8


def test_the_table_has_the_shape_the_pipeline_relies_on() -> None:
    assert frozenset({R.MINED, R.SUPERSEDED, R.FAILED}) == ENDED_REPLACEMENT
    assert frozenset({R.REQUESTED, R.SIGNED}) == LIVE_REPLACEMENT
    # Only a version the node was given can be the one mined.
    assert [s for s in R if R.MINED in REPLACEMENT_TABLE[s]] == [R.SENT]
    # Once sent, it can no longer fail: an earlier version or this one will be mined.
    assert R.FAILED not in REPLACEMENT_TABLE[R.SENT]
    # Nothing goes back.
    order = list(R)
    for current in (R.REQUESTED, R.SIGNED, R.SENT):
        for target in REPLACEMENT_TABLE[current]:
            assert order.index(target) > order.index(current)
    # Every live state can end.
    for state in R:
        if state not in ENDED_REPLACEMENT:
            assert REPLACEMENT_TABLE[state] & ENDED_REPLACEMENT
