"""Transaction states and the one table of legal moves per flow.

::

    submitted -> pending_policy -> approved ---------------> signing -> signed
                               \\-> pending_approval -> approved     |
                               \\-> blocked          \\-> rejected    v
    completed <- confirming <=> broadcasting <-----------------------'
         (failed from any live state but signed; cancelled before signing, or
          on chain: a cancel replacement mined in the transfer's place)

Every status change of a transaction goes through :func:`transition`, which refuses a
move the table of the transaction's :class:`Flow` does not hold, or one the table holds
for another :class:`Cause` (a cancellation cannot complete a transaction; only the
pipeline signs). The table is the whole story of what can happen to a transaction:
``confirming -> broadcasting`` is a mined transaction whose block was reorganised away
(the same signed bytes are sent again, never re-signed), ``confirming -> failed`` one
that reverted or never confirmed in time, ``confirming -> cancelled`` one whose cancel
replacement (:mod:`.replacements`) was mined instead of it: the nonce is spent on a
transfer of nothing, so the transfer can never happen.

A flow is what happens after signing: :attr:`Flow.ONCHAIN` transactions are broadcast
and confirmed; :attr:`Flow.SIGN_ONLY` ones stop at ``signed`` (Solana transfers today,
with no Solana node configured).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class TransactionStatus(enum.StrEnum):
    """The states of a transaction (docs/transactions.md)."""

    SUBMITTED = "submitted"
    PENDING_POLICY = "pending_policy"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SIGNING = "signing"
    SIGNED = "signed"
    BROADCASTING = "broadcasting"
    CONFIRMING = "confirming"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class Flow(enum.StrEnum):
    """What follows signing, chosen by the transaction's chain adapter."""

    ONCHAIN = "onchain"
    SIGN_ONLY = "sign_only"


class Cause(enum.StrEnum):
    """Who moves a transaction: the pipeline's steps, a user's cancellation, or an
    approver's decision."""

    PIPELINE = "pipeline"
    CANCEL = "cancel"
    APPROVAL = "approval"


class IllegalTransitionError(Exception):
    """A move the flow's table does not allow (a bug or a raced step: nothing is
    written)."""

    def __init__(
        self, flow: Flow, current: TransactionStatus, target: TransactionStatus, cause: Cause
    ) -> None:
        super().__init__(
            f"{cause.value} cannot move a {flow.value} transaction from {current.value} "
            f"to {target.value}"
        )
        self.flow = flow
        self.current = current
        self.target = target
        self.cause = cause


S = TransactionStatus
_P = frozenset({Cause.PIPELINE})
_C = frozenset({Cause.CANCEL})
_A = frozenset({Cause.APPROVAL})

_Table = Mapping[TransactionStatus, Mapping[TransactionStatus, frozenset[Cause]]]

_BEFORE_SIGNING: dict[TransactionStatus, dict[TransactionStatus, frozenset[Cause]]] = {
    S.SUBMITTED: {S.PENDING_POLICY: _P, S.FAILED: _P, S.CANCELLED: _C},
    S.PENDING_POLICY: {
        S.APPROVED: _P,
        S.PENDING_APPROVAL: _P,
        S.BLOCKED: _P,
        S.FAILED: _P,
        S.CANCELLED: _C,
    },
    # The deadline passing is seen by the pipeline or by an approval arriving late.
    S.PENDING_APPROVAL: {S.APPROVED: _A, S.REJECTED: _A | _P, S.CANCELLED: _C},
    S.APPROVED: {S.SIGNING: _P, S.FAILED: _P, S.CANCELLED: _C},
    S.SIGNING: {S.SIGNED: _P, S.FAILED: _P},
}


def _freeze(table: dict[TransactionStatus, dict[TransactionStatus, frozenset[Cause]]]) -> _Table:
    full = {status: dict(table.get(status, {})) for status in TransactionStatus}
    return MappingProxyType({k: MappingProxyType(v) for k, v in full.items()})


TABLES: Mapping[Flow, _Table] = MappingProxyType(
    {
        Flow.ONCHAIN: _freeze(
            {
                **_BEFORE_SIGNING,
                S.SIGNED: {S.BROADCASTING: _P},
                S.BROADCASTING: {S.CONFIRMING: _P, S.FAILED: _P},
                S.CONFIRMING: {
                    S.COMPLETED: _P,
                    S.FAILED: _P,
                    S.BROADCASTING: _P,
                    S.CANCELLED: _P,
                },
            }
        ),
        Flow.SIGN_ONLY: _freeze(dict(_BEFORE_SIGNING)),
    }
)
"""Per flow: each state's legal next states, each with the causes that may take it."""

TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.REJECTED, S.BLOCKED, S.CANCELLED})
"""States no flow ever leaves."""

CANCELLABLE = frozenset(
    status
    for status in TransactionStatus
    if all(Cause.CANCEL in TABLES[flow][status].get(S.CANCELLED, ()) for flow in Flow)
)
"""States in which nothing has been signed yet, so a cancellation is final."""


def exits(
    flow: Flow, current: TransactionStatus, cause: Cause | None = None
) -> frozenset[TransactionStatus]:
    """The states ``current`` may move to in ``flow`` (by ``cause``, if given)."""
    moves = TABLES[flow][current]
    return frozenset(t for t, causes in moves.items() if cause is None or cause in causes)


def is_resting(flow: Flow, current: TransactionStatus) -> bool:
    """Whether the pipeline has nothing more to do with a transaction in ``current``:
    a terminal state, or one only others leave (a Solana transfer ``signed``)."""
    return not exits(flow, current, Cause.PIPELINE)


def transition(
    flow: Flow, current: TransactionStatus, target: TransactionStatus, cause: Cause
) -> TransactionStatus:
    """``target``, when ``flow``'s table lets ``cause`` move ``current`` there.

    Raises:
        IllegalTransitionError: it does not.
    """
    if cause not in TABLES[flow][current].get(target, frozenset()):
        raise IllegalTransitionError(flow, current, target, cause)
    return target
