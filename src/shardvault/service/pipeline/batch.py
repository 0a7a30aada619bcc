"""A burst's transfers of one workspace, taken together: one evaluation commit, one round
of signing requests, one commit per later step. Each transaction passes through exactly
the states, with the audit and webhook events, of the single path (:mod:`.steps`), and
what is committed before the signer or the node is called is the same; a batch only
shares commits, the workspace lock and round trips."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence

from shardvault.chains.errors import ChainError
from shardvault.lifecycle import Flow, TransactionStatus
from shardvault.service.pipeline.adapters import adapter_for
from shardvault.service.pipeline.chain import ChainAdapter, Observed, Signed
from shardvault.service.pipeline.loading import Loaded, load_many
from shardvault.service.pipeline.outcomes import NEXT, REST, Later, Outcome
from shardvault.service.pipeline.runtime import PipelineFault
from shardvault.service.pipeline.signer import Signing, prices_now, signer_for
from shardvault.service.pipeline.steps import POLICY_STATES, Steps
from shardvault.service.policies import active_policy
from shardvault.service.signing import SigningError

_log = logging.getLogger("shardvault.pipeline")


class Pipeline(Steps):
    """The steps of :class:`.steps.Steps`, and those of a burst taken together."""

    def evaluate_batch(self, workspace_id: str, tx_ids: Sequence[str]) -> dict[str, Outcome]:
        """Transfers of one workspace awaiting policy, taken together.

        One unit of work evaluates them all (and serializes and records the first
        signing attempt of the allowed ones whose chain allows it), their signing
        requests go to the signer at once, and one more unit of work stores the
        signatures (and moves on-chain ones to ``broadcasting``). Answers each
        transaction's outcome (as :meth:`advance` does); a transaction missing from the
        answer is left as it was. An error leaves the evaluation uncommitted (every
        transaction as it was), so the caller can take them one at a time.
        """
        with self.platform.unit_of_work(read_only=True) as uow:
            found = load_many(self.runtime, uow, workspace_id, tx_ids, lock=False)
        peeks = [found[t] for t in tx_ids if t in found and found[t].tx.status in POLICY_STATES]
        if not peeks:
            return {}
        prepared: dict[str, object] = {}
        by_kind: dict[ChainAdapter, list[Loaded]] = {}
        for peek in peeks:
            by_kind.setdefault(adapter_for(peek.network.kind), []).append(peek)
        for adapter, group in by_kind.items():
            if adapter.serializes_with_policy:
                prepared.update(adapter.prepare_many(self.runtime, group))
        outcomes: dict[str, Outcome] = {}
        signings: dict[str, Signing] = {}
        with self.platform.unit_of_work() as uow:
            # One evaluation per workspace at a time. Not FOR UPDATE: a cancellation or
            # approval locks its transaction's row and then inserts its events, whose
            # foreign key takes FOR KEY SHARE on the workspace, which FOR UPDATE blocks;
            # with this batch waiting on that row, PostgreSQL found a deadlock.
            uow.workspaces().serialize(workspace_id)
            locked = load_many(self.runtime, uow, workspace_id, [p.tx.id for p in peeks], lock=True)
            bundle = active_policy(uow, workspace_id)
            prices = prices_now(uow, workspace_id)
            for peek in peeks:
                tx_id = peek.tx.id
                loaded = locked.get(tx_id)
                if loaded is None or loaded.tx.status not in POLICY_STATES:
                    outcomes[tx_id] = NEXT
                    continue
                outcomes[tx_id], signing = self.evaluate_in(uow, loaded, bundle, prices, prepared)
                if signing is None:
                    continue
                signings[tx_id] = signing
                # Sends of one address wait for this runtime's earlier nonces.
                chain_id, nonce = loaded.network.chain_id, loaded.tx.nonce
                if chain_id is not None and nonce is not None:
                    uow.after_commit(
                        functools.partial(
                            self.runtime.send_order.hold,
                            tx_id,
                            chain_id,
                            loaded.source.address,
                            nonce,
                        )
                    )
        self.runtime.fault("evaluated")
        outcomes.update(self._sign_batch(workspace_id, signings, locked))
        return outcomes

    def _sign_batch(
        self,
        workspace_id: str,
        signings: Mapping[str, Signing],
        loads: Mapping[str, Loaded],
    ) -> dict[str, Outcome]:
        """The signing rounds of committed attempts, all asked of the signer at once;
        the signatures stored in one unit of work. A transaction whose round failed
        waits as in :meth:`sign_with`; one of several payloads goes on alone."""
        outcomes: dict[str, Outcome] = {}
        ready: dict[str, Signing] = {}
        for tx_id, signing in signings.items():
            self.runtime.fault("signing")
            if len(signing.requests) != 1:
                outcomes[tx_id] = NEXT
                continue
            ready[tx_id] = signing
        if not ready:
            return outcomes
        signer = signer_for(self.runtime)
        answers = signer.sign_many([s.requests[0] for s in ready.values()])
        finished: dict[str, tuple[int, Signed]] = {}
        retry = Later(self.runtime.broadcast_retry_s)
        for (tx_id, signing), answer in zip(ready.items(), answers, strict=True):
            if isinstance(answer, SigningError):
                _log.warning("signing %s attempt %d failed: %s", tx_id, signing.attempt, answer)
                outcomes[tx_id] = retry
                continue
            adapter = adapter_for(loads[tx_id].network.kind)
            try:
                signed = adapter.assemble(signing.chain_payload, signing.public_key, [answer])
            except ChainError as exc:
                _log.warning("signature of %s attempt %d refused: %s", tx_id, signing.attempt, exc)
                outcomes[tx_id] = retry
                continue
            finished[tx_id] = (signing.attempt, signed)
        if finished:
            with self.platform.unit_of_work() as uow:
                load_many(self.runtime, uow, workspace_id, list(finished), lock=True)
                for tx_id, (attempt, signed) in finished.items():
                    outcomes[tx_id] = self.store_signed(uow, workspace_id, tx_id, attempt, signed)
            self.runtime.fault("signed")
        return outcomes

    def finish_batch(self, workspace_id: str, tx_ids: Sequence[str]) -> dict[str, Outcome]:
        """The transfers of one workspace that this runtime has just moved to
        ``broadcasting`` (after :meth:`evaluate_batch`): sent in the given order (nonce
        order), then moved to ``confirming`` in one unit of work, in which those already
        confirmed also move on. Each passes through the states of :meth:`broadcast` and
        :meth:`confirm`; answers the outcomes, as :meth:`evaluate_batch` does (a
        transaction missing from the answer, or answered :data:`NEXT`, goes on alone)."""
        hints = self.runtime.hints
        fresh = [t for t in tx_ids if hints.holds(t, TransactionStatus.BROADCASTING)]
        if not fresh:
            return {}
        for tx_id in fresh:
            hints.take(tx_id)  # used here: the bytes cannot have been sent yet
        with self.platform.unit_of_work(read_only=True) as uow:
            found = load_many(self.runtime, uow, workspace_id, fresh, lock=False)
        loads = [
            found[t]
            for t in fresh
            if t in found
            and found[t].tx.status is TransactionStatus.BROADCASTING
            and found[t].flow is Flow.ONCHAIN
        ]
        outcomes: dict[str, Outcome] = {}
        sent: list[tuple[Loaded, str]] = []
        for loaded in loads:
            adapter = adapter_for(loaded.network.kind)
            try:
                outcome = adapter.send(self.runtime, loaded, fresh=True)
            except PipelineFault as exc:
                self.runtime.send_order.done([loaded.tx.id])
                self.fail(workspace_id, loaded.tx.id, TransactionStatus.BROADCASTING, exc)
                outcomes[loaded.tx.id] = REST
                continue
            self.runtime.send_order.done([loaded.tx.id])
            if isinstance(outcome, Later):
                outcomes[loaded.tx.id] = outcome
            else:
                sent.append((loaded, outcome.outcome))
        if not sent:
            return outcomes
        self.runtime.fault("broadcast_sent")
        # The chain is asked before ``confirming`` is committed: those already confirmed
        # (a node that mines at once, a fast chain) are then completed in the same unit
        # of work, one write transaction fewer; the others wait as before.
        groups: dict[tuple[ChainAdapter, str | None], list[Loaded]] = {}
        for loaded, _ in sent:
            key = (adapter_for(loaded.network.kind), loaded.network.rpc_url)
            groups.setdefault(key, []).append(loaded)
        observed: dict[str, Observed] = {}
        for (adapter, _), group in groups.items():
            for loaded, seen in zip(group, adapter.observe(self.runtime, group), strict=True):
                observed[loaded.tx.id] = seen
        moved = []
        with self.platform.unit_of_work() as uow:
            load_many(
                self.runtime, uow, workspace_id, [loaded.tx.id for loaded, _ in sent], lock=True
            )
            for adapter in {adapter for adapter, _ in groups}:
                kind = adapter.kind
                group = [loaded for loaded, _ in sent if loaded.network.kind is kind]
                adapter.before_sent_in(self.runtime, uow, group)
            for loaded, outcome_name in sent:
                adapter = adapter_for(loaded.network.kind)
                outcomes[loaded.tx.id] = NEXT
                if self.confirming_in(uow, adapter, loaded, outcome_name):
                    moved.append(loaded)
            for loaded in moved:
                outcomes[loaded.tx.id] = self.observed_in(uow, loaded, observed[loaded.tx.id])
        for loaded in moved:
            hints.take(loaded.tx.id)  # the ``confirming`` hint: used here
        return outcomes
