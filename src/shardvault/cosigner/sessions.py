"""What a co-signer node keeps about the sessions it runs (:mod:`.node`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shardvault.cosigner.checks import SigningTarget
from shardvault.cosigner.driver import SessionDriver
from shardvault.crypto.channel import Directory
from shardvault.crypto.protocols.common import SessionId
from shardvault.policy import Evaluation

Result = dict[str, object]
"""A request's result as the node reports it to the coordinator."""

MAX_EARLY_ENVELOPES = 16
"""The most envelopes of a signing session kept while its records round still runs."""


@dataclass
class ActiveSession:
    """A session in progress and what to do when it ends."""

    request_id: str
    kind: str
    driver: SessionDriver
    deadline: float
    on_done: Callable[[object], Result | None]
    siblings: tuple[bytes, ...] = ()
    next_phase: Callable[[object], list[bytes]] | None = None
    """For a records round: what starts the signing session once it ended."""
    early: list[bytes] = field(default_factory=list)
    """Envelopes of the next phase that arrived before this one ended."""
    pending: SessionDriver | None = None
    """For a records round: the FROST signing session started beside it, waiting."""
    offered: int | None = None
    """For a signing session: how many lines of our record the records round offered
    (a peer's signing message of ``merged_round`` or later says it merged them)."""
    merged_round: int = 1
    """The first signing round a peer sends only after the records round."""
    on_fail: Callable[[], None] | None = None
    """What to undo when the session fails (an aux-pool reservation)."""


@dataclass(frozen=True, slots=True)
class PreparedSign:
    """A signing request that passed the checks before its records round."""

    request_id: str
    body: Mapping[str, object]
    sid: SessionId
    signers: tuple[int, ...]
    directory: Directory
    vault: str
    key_id: str
    target: SigningTarget
    signer_key: bytes
    presignature: str | None
    evaluation: Evaluation | None = None
    """The policy's decision on what this co-signer held before the records round."""


@dataclass
class Outbox:
    """What one step of the node produced for the link."""

    envelopes: list[bytes] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    events: list[Result] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.envelopes or self.results or self.events)


def intent_ids(target: SigningTarget) -> tuple[str, str] | None:
    """The (workspace id, transaction id) a transfer's intent names, if it has one."""
    intent = target.intent
    return None if intent is None else (intent.workspace_id, intent.transaction_id)
