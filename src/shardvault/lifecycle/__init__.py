"""The life of a transaction: its states and the moves between them, as data.

Pure (no I/O): the store keeps the status column, the services move it, and this
package says which moves are legal (:mod:`.states`).
"""

from shardvault.lifecycle.replacements import (
    ENDED_REPLACEMENT,
    LIVE_REPLACEMENT,
    REPLACEMENT_TABLE,
    IllegalReplacementMoveError,
    ReplacementMode,
    ReplacementStatus,
    replacement_transition,
)
from shardvault.lifecycle.states import (
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

__all__ = [
    "CANCELLABLE",
    "ENDED_REPLACEMENT",
    "LIVE_REPLACEMENT",
    "REPLACEMENT_TABLE",
    "TERMINAL",
    "Cause",
    "Flow",
    "IllegalReplacementMoveError",
    "IllegalTransitionError",
    "ReplacementMode",
    "ReplacementStatus",
    "TransactionStatus",
    "exits",
    "is_resting",
    "replacement_transition",
    "transition",
]
