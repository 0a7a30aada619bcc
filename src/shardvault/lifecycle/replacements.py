"""Replacements of a sent transaction, and the table of their states.

A transaction the node holds but has not mined may be *replaced*: signed again over the
same nonce (EVM) or the same coins (Bitcoin, BIP 125), so that at most one of its signed
versions can ever be mined. Two kinds:

* :attr:`ReplacementMode.SPEED_UP`: the same transfer with a higher fee;
* :attr:`ReplacementMode.CANCEL`: a transfer of nothing to the source itself at the same
  nonce, which pays only the fee and leaves the original unable to be mined.

Each replacement is a record of its own beside its transaction, which stays
``confirming`` while any of its versions may be mined::

    requested -> signed -> sent -> mined
        \\          \\        \\-> superseded
         \\-> failed  \\-> failed
          \\-> superseded

``mined``: this version is the one in the chain. ``superseded``: another version was
mined, or the transaction ended, first. ``failed``: it could not be signed or the node
refused it (the versions sent before it stay where they are).

Pure (no I/O).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class ReplacementMode(enum.StrEnum):
    """What a replacement does (module docstring)."""

    SPEED_UP = "speed_up"
    CANCEL = "cancel"


class ReplacementStatus(enum.StrEnum):
    """The states of a replacement (module docstring)."""

    REQUESTED = "requested"
    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"
    SUPERSEDED = "superseded"
    FAILED = "failed"


R = ReplacementStatus

REPLACEMENT_TABLE: Mapping[ReplacementStatus, frozenset[ReplacementStatus]] = MappingProxyType(
    {
        R.REQUESTED: frozenset({R.SIGNED, R.FAILED, R.SUPERSEDED}),
        R.SIGNED: frozenset({R.SENT, R.FAILED, R.SUPERSEDED}),
        R.SENT: frozenset({R.MINED, R.SUPERSEDED}),
        R.MINED: frozenset(),
        R.SUPERSEDED: frozenset(),
        R.FAILED: frozenset(),
    }
)
"""Each replacement state's legal next states."""

LIVE_REPLACEMENT = frozenset({R.REQUESTED, R.SIGNED})
"""States in which a replacement still has work to do before it is on the node."""

ENDED_REPLACEMENT = frozenset(s for s, nxt in REPLACEMENT_TABLE.items() if not nxt)
"""States no replacement leaves."""


class IllegalReplacementMoveError(Exception):
    """A move the replacement table does not allow (a bug or a raced step)."""

    def __init__(self, current: ReplacementStatus, target: ReplacementStatus) -> None:
        super().__init__(f"a replacement cannot move from {current.value} to {target.value}")
        self.current = current
        self.target = target


def replacement_transition(
    current: ReplacementStatus, target: ReplacementStatus
) -> ReplacementStatus:
    """``target``, when the table lets a replacement move there from ``current``.

    Raises:
        IllegalReplacementMoveError: it does not.
    """
    if target not in REPLACEMENT_TABLE[current]:
        raise IllegalReplacementMoveError(current, target)
    return target
