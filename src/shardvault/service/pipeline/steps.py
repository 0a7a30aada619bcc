"""The steps: one per state, the same for every chain (the chain's part is its adapter,
:mod:`.chain`; the signer's is :mod:`.signer`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import timedelta

from shardvault.chains.errors import ChainError
from shardvault.lifecycle import ReplacementMode, TransactionStatus, is_resting
from shardvault.policy import (
    AssetRegistryError,
    EvaluationContext,
    History,
    PastTransaction,
    PolicyBundle,
    evaluate,
    parse_request,
    request_to_json,
)
from shardvault.policy.model import Decision, Policy
from shardvault.service.asset_registry import policy_view
from shardvault.service.pipeline.adapters import adapter_for
from shardvault.service.pipeline.chain import ChainAdapter, Dropped, Observed, Seen, Signed
from shardvault.service.pipeline.loading import Loaded, initiator_email, load, load_in, move_to
from shardvault.service.pipeline.outcomes import NEXT, REST, Later, Outcome
from shardvault.service.pipeline.replacing import Replacer
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
from shardvault.service.pipeline.signer import (
    Signing,
    prices_now,
    sign_all,
    signer_for,
    signing_in,
)
from shardvault.service.pipeline.versions import has_versions_in, take_version_in, versions_of
from shardvault.service.platform import Platform
from shardvault.service.policies import active_policy
from shardvault.service.price_reports import SignedPrices
from shardvault.service.signing import SigningError
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import NetworkKind, Transaction
from shardvault.store.repositories_vaults import TransactionRepository
from shardvault.store.types import utcnow

_log = logging.getLogger("shardvault.pipeline")

VELOCITY_LOOKBACK = timedelta(days=31)
"""How far back the pipeline reads history for velocity limits (the longest window a
policy may sensibly use; longer windows see only this much)."""

POLICY_STATES = (TransactionStatus.SUBMITTED, TransactionStatus.PENDING_POLICY)

_SAME_STEP: dict[TransactionStatus, tuple[TransactionStatus, ...]] = {
    TransactionStatus.SUBMITTED: (TransactionStatus.PENDING_POLICY, TransactionStatus.SIGNING),
    TransactionStatus.PENDING_POLICY: (TransactionStatus.SIGNING,),
    TransactionStatus.APPROVED: (TransactionStatus.SIGNING,),
}
"""States a step that started in the key's state may have committed before it raised a
:class:`PipelineFault` (one step runs policy, serialization and the signing round)."""

SIGN_ONLY_REASON = "signed and verified; not broadcast (no node configured for this network)"


class Steps:
    """The step functions; :meth:`advance` runs the one the transaction's state calls for
    (:class:`.batch.Pipeline` adds the steps of a burst, taken together)."""

    def __init__(self, platform: Platform, runtime: PipelineRuntime) -> None:
        self.platform = platform
        self.runtime = runtime
        self.replacer = Replacer(platform, runtime)

    def advance(self, workspace_id: str, tx_id: str) -> Outcome:
        """Run one step; answers what the queue does next (:mod:`.outcomes`)."""
        hint = self.runtime.recall(tx_id)
        if hint is not None:
            status, kind = hint
        else:
            with self.platform.unit_of_work(read_only=True) as uow:
                loaded = load(self.runtime, uow, workspace_id, tx_id, lock=False)
                if loaded is None:
                    return REST
                status = loaded.tx.status
                kind = loaded.network.kind
        try:
            return self._dispatch(workspace_id, tx_id, status, kind, fresh=hint is not None)
        except PipelineFault as exc:
            self.fail(workspace_id, tx_id, status, exc)
            return REST

    def _dispatch(
        self,
        workspace_id: str,
        tx_id: str,
        status: TransactionStatus,
        kind: NetworkKind,
        *,
        fresh: bool,
    ) -> Outcome:
        adapter = adapter_for(kind)
        match status:
            case TransactionStatus.SUBMITTED | TransactionStatus.PENDING_POLICY:
                return self.evaluate(workspace_id, tx_id)
            case TransactionStatus.PENDING_APPROVAL:
                return self.check_deadline(workspace_id, tx_id)
            case TransactionStatus.APPROVED:
                return self.serialize(workspace_id, tx_id, adapter)
            case TransactionStatus.SIGNING:
                return self.sign(workspace_id, tx_id, adapter)
            case TransactionStatus.SIGNED:
                return self.start_broadcast(workspace_id, tx_id)
            case TransactionStatus.BROADCASTING:
                # Fresh: this worker has just committed ``broadcasting`` itself, so the
                # bytes cannot have been sent yet and the node need not be asked first.
                return self.broadcast(workspace_id, tx_id, adapter, fresh=fresh)
            case TransactionStatus.CONFIRMING:
                return self.confirm(workspace_id, tx_id, adapter)
            case (
                TransactionStatus.COMPLETED
                | TransactionStatus.FAILED
                | TransactionStatus.REJECTED
                | TransactionStatus.BLOCKED
                | TransactionStatus.CANCELLED
            ):
                return REST

    def fail(
        self, workspace_id: str, tx_id: str, status: TransactionStatus, fault: PipelineFault
    ) -> None:
        """Fail the transaction a step in ``status`` raised ``fault`` for, giving back
        what the chain adapter says is unused (a nonce no signed bytes can spend)."""
        with self.platform.unit_of_work() as uow:
            loaded = load(self.runtime, uow, workspace_id, tx_id, lock=True)
            # A fault in evaluation may come after the same unit of work moved the
            # transaction on from ``submitted``; it rolled back, so either state is it.
            if loaded is None or loaded.tx.status not in (status, *_SAME_STEP.get(status, ())):
                return
            released = adapter_for(loaded.network.kind).release_in(uow, loaded, fault)
            move_to(
                self.runtime,
                uow,
                loaded,
                TransactionStatus.FAILED,
                reason=str(fault),
                details=released,
            )

    # Policy.

    def evaluate(self, workspace_id: str, tx_id: str) -> Outcome:
        """Policy, and for an allowed transfer whose chain allows it also serialization
        and the first signing attempt, in one unit of work; then the signing round."""
        with self.platform.unit_of_work(read_only=True) as uow:
            peek = load(self.runtime, uow, workspace_id, tx_id, lock=False)
        if peek is None or peek.tx.status not in POLICY_STATES:
            return NEXT
        adapter = adapter_for(peek.network.kind)
        prepared = (
            adapter.prepare_many(self.runtime, [peek]) if adapter.serializes_with_policy else {}
        )
        with self.platform.unit_of_work() as uow:
            # Evaluations of one workspace run one at a time, so each sees every earlier
            # decision in its velocity history (the lock of evaluate_batch).
            uow.workspaces().serialize(workspace_id)
            loaded = load(self.runtime, uow, workspace_id, tx_id, lock=True)
            if loaded is None or loaded.tx.status not in POLICY_STATES:
                return NEXT
            outcome, signing = self.evaluate_in(
                uow,
                loaded,
                active_policy(uow, workspace_id),
                prices_now(uow, workspace_id),
                prepared,
            )
        self.runtime.fault("evaluated")
        if signing is not None:
            return self.sign_with(workspace_id, tx_id, adapter, signing)
        return outcome

    def evaluate_in(
        self,
        uow: UnitOfWork,
        loaded: Loaded,
        bundle: PolicyBundle | None,
        prices: SignedPrices,
        prepared: Mapping[str, object],
    ) -> tuple[Outcome, Signing | None]:
        """Evaluate ``loaded`` (locked, awaiting policy, under the workspace lock) in the
        caller's unit of work; an allowed transfer with its chain's ``prepared`` data is
        also serialized and given its first signing attempt. Answers what comes next and
        that attempt."""
        workspace_id = loaded.tx.workspace_id
        tx = loaded.tx
        if tx.status is TransactionStatus.SUBMITTED:
            move_to(self.runtime, uow, loaded, TransactionStatus.PENDING_POLICY)
        self.runtime.fault("evaluating")
        if bundle is None:
            move_to(self.runtime, uow, loaded, TransactionStatus.BLOCKED, reason="no active policy")
            return REST, None
        email = initiator_email(uow, tx)
        adapter = adapter_for(loaded.network.kind)
        request = adapter.template_request(loaded, initiator=email, vault=tx.vault_id)
        try:
            request = policy_view(bundle.assets, loaded.network, loaded.asset, request)
        except AssetRegistryError as exc:
            move_to(self.runtime, uow, loaded, TransactionStatus.BLOCKED, reason=str(exc))
            return REST, None
        now = int(time.time())
        context = EvaluationContext(
            now=now,  # type: ignore[arg-type]
            address_book=bundle.address_book,
            history=History(self._history(uow, workspace_id, tx, bundle.policy)),
            network_prices=prices.table.prices,
            price_notes=prices.table.notes,
        )
        evaluation = evaluate(bundle.policy, request, context)
        tx.policy_version = evaluation.policy_version
        tx.policy_rule = evaluation.rule
        tx.policy_evaluation = json.dumps(
            {"request": request_to_json(request), "evaluation": evaluation.to_json()},
            sort_keys=True,
        )
        details: dict[str, object] = {
            "policy_version": evaluation.policy_version,
            "rule": evaluation.rule,
            "decision": evaluation.decision.value,
        }
        if evaluation.decision is Decision.BLOCK:
            move_to(
                self.runtime,
                uow,
                loaded,
                TransactionStatus.BLOCKED,
                reason=evaluation.summary,
                details=details,
            )
            return REST, None
        if evaluation.decision is not Decision.ALLOW:
            tx.approval_deadline = evaluation.deadline
            details["approvals_needed"] = evaluation.approvals_needed
            details["deadline"] = evaluation.deadline
            move_to(
                self.runtime,
                uow,
                loaded,
                TransactionStatus.PENDING_APPROVAL,
                reason=evaluation.summary,
                details=details,
            )
            if evaluation.deadline is None:
                return REST, None
            return Later(max(evaluation.deadline - now, 0) + 1), None
        move_to(
            self.runtime,
            uow,
            loaded,
            TransactionStatus.APPROVED,
            reason=evaluation.summary,
            details=details,
        )
        ready = prepared.get(tx.id)
        if adapter.serializes_with_policy and ready is not None:
            if self._serialize_in(uow, adapter, loaded, ready, email):
                parts = adapter.sign_parts(loaded, email)
                signing = signing_in(
                    uow, loaded, parts, prices=prices, unapproved=True, initiator=email
                )
                return NEXT, signing
        return NEXT, None

    def _history(
        self, uow: UnitOfWork, workspace_id: str, tx: Transaction, policy: Policy
    ) -> list[PastTransaction]:
        """The past transactions the policy's velocity conditions can see: none when it
        has none, else those of its longest window (at most :data:`VELOCITY_LOOKBACK`).
        Reading and parsing the whole month for every evaluation grew with the workspace's
        traffic, under the workspace lock."""
        windows = [v.window_seconds for rule in policy.rules for v in rule.when.velocity]
        if not windows:
            return []
        since = utcnow() - min(timedelta(seconds=max(windows)), VELOCITY_LOOKBACK)
        past = []
        for row in TransactionRepository(uow.session, workspace_id).history(since, tx.id):
            if not row.policy_evaluation:
                continue
            stored = json.loads(row.policy_evaluation)
            decision = None if row.status is TransactionStatus.PENDING_APPROVAL else Decision.ALLOW
            past.append(PastTransaction(parse_request(stored["request"]), decision))
        return past

    def check_deadline(self, workspace_id: str, tx_id: str) -> Outcome:
        with self.platform.unit_of_work() as uow:
            loaded = load_in(
                self.runtime, uow, workspace_id, tx_id, TransactionStatus.PENDING_APPROVAL
            )
            if loaded is None:
                return NEXT
            deadline = loaded.tx.approval_deadline
            now = int(time.time())
            if deadline is None:
                return REST
            if now > deadline:
                move_to(
                    self.runtime,
                    uow,
                    loaded,
                    TransactionStatus.REJECTED,
                    reason="approval deadline passed",
                )
                return REST
            return Later(float(deadline - now + 1))

    # Serialization and signing.

    def _serialize_in(
        self,
        uow: UnitOfWork,
        adapter: ChainAdapter,
        locked: Loaded,
        prepared: object,
        initiator: str,
    ) -> bool:
        """``approved -> signing`` with the chain payload built from ``prepared``; false
        if the adapter must prepare again (what it chose was taken meanwhile)."""
        details = adapter.serialize_in(self.runtime, uow, locked, prepared, initiator)
        if details is None:
            return False
        move_to(self.runtime, uow, locked, TransactionStatus.SIGNING, details=details)
        return True

    def serialize(self, workspace_id: str, tx_id: str, adapter: ChainAdapter) -> Outcome:
        """An approved transfer: what the chain needs is read from its node, then
        serialization and the first signing attempt in one unit of work, then the
        signing round."""
        with self.platform.unit_of_work(read_only=True) as uow:
            loaded = load(self.runtime, uow, workspace_id, tx_id, lock=False)
            if loaded is None or loaded.tx.status is not TransactionStatus.APPROVED:
                return NEXT
        prepared = adapter.prepare(self.runtime, self.platform, loaded)
        if isinstance(prepared, Later):
            return prepared
        with self.platform.unit_of_work() as uow:
            if adapter.serialize_locks_workspace:
                # One serialization per workspace at a time, so two transfers never take
                # the same coins (the lock of evaluate_batch).
                uow.workspaces().serialize(workspace_id)
            locked = load_in(self.runtime, uow, workspace_id, tx_id, TransactionStatus.APPROVED)
            if locked is None:
                return NEXT
            email = initiator_email(uow, locked.tx)
            if not self._serialize_in(uow, adapter, locked, prepared, email):
                return NEXT  # build again
            signing = signing_in(uow, locked, adapter.sign_parts(locked, email), initiator=email)
        self.runtime.fault("serialized")
        return self.sign_with(workspace_id, tx_id, adapter, signing)

    def sign(self, workspace_id: str, tx_id: str, adapter: ChainAdapter) -> Outcome:
        """A transaction found in ``signing`` (a retry, or a worker resuming after a
        crash): a new attempt, then the round."""
        with self.platform.unit_of_work() as uow:
            loaded = load_in(self.runtime, uow, workspace_id, tx_id, TransactionStatus.SIGNING)
            if loaded is None:
                return NEXT
            email = initiator_email(uow, loaded.tx)
            signing = signing_in(uow, loaded, adapter.sign_parts(loaded, email), initiator=email)
        return self.sign_with(workspace_id, tx_id, adapter, signing)

    def sign_with(
        self, workspace_id: str, tx_id: str, adapter: ChainAdapter, signing: Signing
    ) -> Outcome:
        """The signing round of a committed attempt; the signatures are verified and
        stored, and an on-chain transaction moves on to ``broadcasting`` in the same
        commit."""
        self.runtime.fault("signing")
        try:
            signatures = sign_all(signer_for(self.runtime), signing)
            signed = adapter.assemble(signing.chain_payload, signing.public_key, signatures)
        except (SigningError, ChainError) as exc:
            _log.warning("signing %s attempt %d failed: %s", tx_id, signing.attempt, exc)
            return Later(self.runtime.broadcast_retry_s)
        with self.platform.unit_of_work() as uow:
            outcome = self.store_signed(uow, workspace_id, tx_id, signing.attempt, signed)
        self.runtime.fault("signed")
        return outcome

    def store_signed(
        self, uow: UnitOfWork, workspace_id: str, tx_id: str, attempt: int, signed: Signed
    ) -> Outcome:
        """Store a verified signed transaction of attempt ``attempt``: ``signed``, and
        for an on-chain flow ``broadcasting`` in the same commit. A transaction whose
        attempt is no longer current is left as it is."""
        loaded = load_in(self.runtime, uow, workspace_id, tx_id, TransactionStatus.SIGNING)
        if loaded is None or loaded.tx.signing_attempts != attempt:
            return NEXT
        tx = loaded.tx
        tx.signature = signed.signature
        tx.signed_payload = signed.signed_payload
        tx.tx_hash = signed.tx_hash
        details = {"tx_hash": tx.tx_hash, **signed.details}
        if is_resting(loaded.flow, TransactionStatus.SIGNED):
            move_to(
                self.runtime,
                uow,
                loaded,
                TransactionStatus.SIGNED,
                reason=SIGN_ONLY_REASON,
                details=details,
            )
            return REST
        move_to(self.runtime, uow, loaded, TransactionStatus.SIGNED, details=details)
        self._into_broadcasting(uow, loaded)
        return NEXT

    # Broadcast and confirmation.

    def _into_broadcasting(
        self, uow: UnitOfWork, loaded: Loaded, *, reason: str | None = None
    ) -> None:
        loaded.tx.broadcast_attempts += 1
        move_to(
            self.runtime,
            uow,
            loaded,
            TransactionStatus.BROADCASTING,
            reason=reason,
            details={"tx_hash": loaded.tx.tx_hash, "attempt": loaded.tx.broadcast_attempts},
        )

    def start_broadcast(self, workspace_id: str, tx_id: str) -> Outcome:
        with self.platform.unit_of_work() as uow:
            loaded = load_in(self.runtime, uow, workspace_id, tx_id, TransactionStatus.SIGNED)
            if loaded is None:
                return NEXT
            if is_resting(loaded.flow, TransactionStatus.SIGNED):
                return REST
            self._into_broadcasting(uow, loaded)
        return NEXT

    def broadcast(
        self, workspace_id: str, tx_id: str, adapter: ChainAdapter, *, fresh: bool = False
    ) -> Outcome:
        """Send the signed bytes, then commit ``confirming``."""
        with self.platform.unit_of_work(read_only=True) as uow:
            loaded = load(self.runtime, uow, workspace_id, tx_id, lock=False)
            if loaded is None or loaded.tx.status is not TransactionStatus.BROADCASTING:
                return NEXT
        sent = adapter.send(self.runtime, loaded, fresh=fresh)
        if isinstance(sent, Later):
            return sent
        self.runtime.fault("broadcast_sent")
        with self.platform.unit_of_work() as uow:
            self.confirming_in(uow, adapter, loaded, sent.outcome)
        return NEXT

    def confirming_in(
        self, uow: UnitOfWork, adapter: ChainAdapter, sent: Loaded, outcome: str
    ) -> bool:
        """``broadcasting -> confirming`` of a sent transaction, with what its chain
        records then; false if another step moved the transaction first."""
        locked = load_in(
            self.runtime, uow, sent.tx.workspace_id, sent.tx.id, TransactionStatus.BROADCASTING
        )
        if locked is None:
            return False
        adapter.sent_in(self.runtime, uow, locked)
        move_to(
            self.runtime,
            uow,
            locked,
            TransactionStatus.CONFIRMING,
            details={"tx_hash": locked.tx.tx_hash, "broadcast": outcome},
        )
        return True

    def confirm(self, workspace_id: str, tx_id: str, adapter: ChainAdapter) -> Outcome:
        """Look for the transaction in the chain; a replacement asked for is built,
        signed and sent first (:mod:`.replacing`), and a replaced transaction is looked
        for under each of its versions."""
        with self.platform.unit_of_work(read_only=True) as uow:
            loaded = load(self.runtime, uow, workspace_id, tx_id, lock=False)
            if loaded is None or loaded.tx.status is not TransactionStatus.CONFIRMING:
                return NEXT
            versions = versions_of(uow, loaded.tx) if adapter.replacement_modes else None
        if versions is not None and versions.live is not None:
            return self.replacer.advance(loaded, adapter, versions.live)
        mined: str | None = None
        mode: ReplacementMode | None = None
        if versions is None or versions.ids == (None,):
            (observed,) = adapter.observe(self.runtime, [loaded])
        else:
            looks = adapter.observe_versions(self.runtime, loaded, versions.versions)
            seen = [i for i, look in enumerate(looks) if isinstance(look, Seen)]
            if seen:
                observed = looks[seen[0]]
                mined, mode = versions.ids[seen[0]], versions.modes[seen[0]]
            elif all(isinstance(look, Dropped) for look in looks):
                return self.replacer.resend_newest(loaded, adapter, versions.newest)
            else:
                observed = Later(self.runtime.confirmation_poll_s)
        if isinstance(observed, Later) and not self._expired(loaded.tx):
            return observed
        with self.platform.unit_of_work() as uow:
            return self.observed_in(uow, loaded, observed, mined=mined, mode=mode)

    def _expired(self, tx: Transaction) -> bool:
        """Whether ``tx`` has waited in ``confirming`` past the runtime's limit."""
        limit = self.runtime.max_unconfirmed_s
        return limit is not None and (utcnow() - tx.updated_at).total_seconds() > limit

    def observed_in(
        self,
        uow: UnitOfWork,
        loaded: Loaded,
        observed: Observed,
        *,
        mined: str | None = None,
        mode: ReplacementMode | None = None,
    ) -> Outcome:
        """What a look at the chain means for a confirming transaction, in the caller's
        unit of work: completed (or failed: reverted; or cancelled: its cancel was mined
        in its place); dropped by a reorganisation (the same bytes go out again:
        ``confirming -> broadcasting``, nothing is signed); unconfirmed past
        :attr:`PipelineRuntime.max_unconfirmed_s` (failed); or look again later.
        ``mined``: the replacement seen, when it is not the original."""
        locked = load_in(
            self.runtime, uow, loaded.tx.workspace_id, loaded.tx.id, TransactionStatus.CONFIRMING
        )
        if locked is None:
            return NEXT
        tx = locked.tx
        if isinstance(observed, Seen):
            tx.confirmations = observed.confirmations
            tx.block_number = observed.block_number
            details = dict(observed.details)
            if mined is not None:
                details["replaced"] = tx.tx_hash
                take_version_in(uow, tx, mined)
                details["tx_hash"] = tx.tx_hash
            if mode is ReplacementMode.CANCEL:
                move_to(
                    self.runtime,
                    uow,
                    locked,
                    TransactionStatus.CANCELLED,
                    reason="cancelled on chain: a transfer of nothing took its nonce",
                    details=details,
                    mined=mined,
                )
            elif observed.success:
                move_to(
                    self.runtime,
                    uow,
                    locked,
                    TransactionStatus.COMPLETED,
                    details=details,
                    mined=mined,
                )
            else:
                move_to(
                    self.runtime,
                    uow,
                    locked,
                    TransactionStatus.FAILED,
                    reason="reverted on chain",
                    details=details,
                    mined=mined,
                )
            return REST
        if isinstance(observed, Dropped) and has_versions_in(uow, tx):
            return NEXT  # the replaced transaction's versions are looked at together
        if isinstance(observed, Dropped):
            self._into_broadcasting(uow, locked, reason=f"sent again: {observed.reason}")
            return NEXT
        if self._expired(tx):
            waited = (utcnow() - tx.updated_at).total_seconds()
            move_to(
                self.runtime,
                uow,
                locked,
                TransactionStatus.FAILED,
                reason=(
                    f"not confirmed within {self.runtime.max_unconfirmed_s:g} s of its "
                    "broadcast; the signed bytes "
                    "may still be mined (docs/transactions.md)"
                ),
                details={"tx_hash": tx.tx_hash, "waited_s": round(waited)},
            )
            return REST
        assert isinstance(observed, Later)
        return observed
