"""The transaction pipeline: every state recorded, resumable after a crash.

The states and the legal moves between them are :mod:`shardvault.lifecycle`'s table, one
per flow; every status change goes through it (:func:`.loading.move_to`). Each step
(:mod:`.steps`) is one unit of work that re-reads the transaction under a row lock,
checks that it is still in the state the step expects, and commits the new state with
its audit event (and, where it applies, the nonce ledger change) in the same database
transaction. The ``version`` column makes a step that raced another fail instead of
overwriting it. Where nothing outside the database happens between two states, one unit
of work takes the transaction through both, each with its own audit and webhook event:
an allowed EVM or Solana transfer goes ``submitted -> pending_policy -> approved ->
signing`` (policy, nonce, serialization and the first signing attempt) in one commit,
and ``signing -> signed -> broadcasting`` in another; what is committed before each call
to the signer or the node is unchanged. A worker that has just committed a state goes on
to the next step without reading it back (a hint, checked again under the row lock).

The steps never branch on the chain: a chain adapter (:mod:`.chain`; :mod:`.evm`,
:mod:`.bitcoin`, :mod:`.solana`, chosen from the network's kind) builds, checks, signs,
sends and watches; a signer adapter (:mod:`.signer`) signs. Steps answer typed outcomes
(:mod:`.outcomes`); the caches they share are objects of the :class:`PipelineRuntime`.

At-most-once rules (see docs/transactions.md for the full argument):

- **Nonce**: allocated in the same transaction that moves ``approved -> signing`` and
  records it on the transaction; confirmed in the same transaction that moves
  ``broadcasting -> confirming``; released only when the transaction fails before its
  bytes could have reached the chain (signing failed, or the node refused them).
- **Signing**: ``signing_attempts`` is incremented and committed before the signer is
  called (intent recorded first). A crash mid-signing loses that signature with the
  process; the retry signs the same payload, with the same nonce, so at most one of the
  signatures can ever be valid on chain.
- **Broadcast**: ``signed -> broadcasting`` commits first; in ``broadcasting`` a worker
  resuming the transaction (any but the one that just committed ``broadcasting``) first
  asks the node whether the transaction is already known (mined or pending) and only
  sends the raw bytes when it is not. Re-sending the *same* signed bytes is the only
  retry; nothing is ever re-signed after ``signed``, not even when a reorganisation drops
  a mined transaction (``confirming -> broadcasting``: the same bytes go out again).

Solana transfers (FROST Ed25519 vaults) follow the same states up to ``signed`` and rest
there (the ``sign_only`` flow): they are signed and verified but not broadcast, since no
Solana node is configured (:data:`.solana.SOLANA_OFFLINE_BLOCKHASH`).
"""

from shardvault.service.pipeline.batch import Pipeline
from shardvault.service.pipeline.outcomes import NEXT, REST, Later, Next, Outcome, Rest
from shardvault.service.pipeline.runtime import NodeRefusal, PipelineFault, PipelineRuntime
from shardvault.service.pipeline.worker import (
    DEFAULT_BATCH_SIZE,
    IDLE_POLL_S,
    MAX_BATCH_SIZE,
    MIN_IDLE_S,
    PipelineWorker,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IDLE_POLL_S",
    "MAX_BATCH_SIZE",
    "MIN_IDLE_S",
    "NEXT",
    "REST",
    "Later",
    "Next",
    "NodeRefusal",
    "Outcome",
    "Pipeline",
    "PipelineFault",
    "PipelineRuntime",
    "PipelineWorker",
    "Rest",
]
