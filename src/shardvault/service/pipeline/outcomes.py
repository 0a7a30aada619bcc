"""What a step answers: go on now, come back later, or nothing more to do.

A worker loops while a step answers :data:`NEXT`, gives the queue item back due after a
:class:`Later`'s delay, and finishes the item on :data:`REST` (the transaction is final,
or waits for someone else: approvers without a deadline, a signed Solana transfer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Next:
    """Run the transaction's next step at once."""


@dataclass(frozen=True, slots=True)
class Later:
    """Come back through the queue after ``seconds`` (0: due at once, but another
    worker may take it; :data:`NEXT` goes on in this worker)."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError("a later step needs a delay of zero or more seconds")


@dataclass(frozen=True, slots=True)
class Rest:
    """Nothing more for the queue to do."""


NEXT: Final = Next()
REST: Final = Rest()

Outcome = Next | Later | Rest


def delay_of(outcome: Outcome) -> float | None:
    """The queue's view: seconds until due (0 at once), or ``None`` to finish the item."""
    match outcome:
        case Next():
            return 0.0
        case Later(seconds):
            return seconds
        case Rest():
            return None
