"""The pipeline's part of a replacement (:mod:`shardvault.lifecycle.replacements`): a
transaction in ``confirming`` with a replacement asked for has it built, signed and sent
before its versions are looked for in the chain again.

* ``requested``: the chain adapter rebuilds the newest version at the same nonce (coins)
  with the fees it takes now; one signing attempt is counted and committed before the
  signer is called, as for any transaction (:func:`.signer.record_attempt`); the
  signatures are verified and stored: ``signed``.
* ``signed``: the bytes are sent: ``sent`` (the transaction's clock for
  ``--max-unconfirmed`` starts again), or the node refuses them: ``failed``, and the
  versions sent before stay where they are.

The signer is asked for the same transaction (its ids, so the co-signers' replay rule
admits it only at the same nonce or coins) with the original's approvals for a speed-up
(its intent is the original's) and none for a cancel (a transfer of nothing, which the
policy decides on its own), and without the initiator's signed request for a cancel
(that request asks for the transfer, not for its cancel).
"""

from __future__ import annotations

import json
import logging

from shardvault.chains.errors import ChainError
from shardvault.lifecycle import (
    LIVE_REPLACEMENT,
    ReplacementMode,
    ReplacementStatus,
    TransactionStatus,
)
from shardvault.service.initiator_requests import forwarded_request
from shardvault.service.pipeline.chain import ChainAdapter, Rebuilt, ReplacementRefused, Version
from shardvault.service.pipeline.loading import PIPELINE_ACTOR, Loaded, initiator_email, load_in
from shardvault.service.pipeline.outcomes import NEXT, Later, Outcome
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
from shardvault.service.pipeline.signer import (
    MAX_SIGNING_ATTEMPTS,
    Signing,
    cosigner_context,
    sign_all,
    sign_requests,
    signer_for,
)
from shardvault.service.pipeline.versions import move_replacement, replacement_of, versions_of
from shardvault.service.platform import Platform
from shardvault.service.signing import SigningError
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import Replacement
from shardvault.store.repositories_vaults import VaultRepository
from shardvault.store.types import utcnow

_log = logging.getLogger("shardvault.pipeline")


class Replacer:
    """Builds, signs and sends a confirming transaction's replacement."""

    def __init__(self, platform: Platform, runtime: PipelineRuntime) -> None:
        self.platform = platform
        self.runtime = runtime

    def advance(self, loaded: Loaded, adapter: ChainAdapter, live: Replacement) -> Outcome:
        """One step of ``live`` (a replacement in ``requested`` or ``signed``)."""
        if live.status == ReplacementStatus.REQUESTED:
            return self._sign(loaded, adapter, live.id)
        return self._send(loaded, adapter, live.id)

    def _locked(
        self,
        uow: UnitOfWork,
        loaded: Loaded,
        replacement_id: str,
        *states: ReplacementStatus,
    ) -> tuple[Loaded, Replacement] | None:
        """The transaction (still ``confirming``) and the replacement, locked, when the
        replacement is in one of ``states``; else ``None`` (another step moved on)."""
        locked = load_in(
            self.runtime, uow, loaded.tx.workspace_id, loaded.tx.id, TransactionStatus.CONFIRMING
        )
        if locked is None:
            return None
        row = replacement_of(uow, locked.tx, replacement_id, lock=True)
        return None if row is None or row.status not in states else (locked, row)

    def _fail(self, loaded: Loaded, replacement_id: str, reason: str) -> Outcome:
        with self.platform.unit_of_work() as uow:
            found = self._locked(uow, loaded, replacement_id, *LIVE_REPLACEMENT)
            if found is not None:
                move_replacement(uow, found[1], ReplacementStatus.FAILED, reason=reason)
        _log.warning("replacement of %s failed: %s", loaded.tx.id, reason)
        return NEXT

    def _sign(self, loaded: Loaded, adapter: ChainAdapter, replacement_id: str) -> Outcome:
        try:
            prepared = adapter.prepare_replacement(self.runtime, loaded)
        except ReplacementRefused as exc:
            return self._fail(loaded, replacement_id, str(exc))
        if isinstance(prepared, Later):
            return prepared
        with self.platform.unit_of_work() as uow:
            found = self._locked(uow, loaded, replacement_id, ReplacementStatus.REQUESTED)
            if found is None:
                return NEXT
            locked, row = found
            if row.signing_attempts >= MAX_SIGNING_ATTEMPTS:
                move_replacement(
                    uow,
                    row,
                    ReplacementStatus.FAILED,
                    reason=f"signing failed {row.signing_attempts} times",
                )
                return NEXT
            mode = ReplacementMode(row.mode)
            try:
                rebuilt = adapter.rebuild(
                    locked, mode, prepared, versions_of(uow, locked.tx).newest
                )
            except (ReplacementRefused, PipelineFault, ChainError) as exc:
                move_replacement(uow, row, ReplacementStatus.FAILED, reason=str(exc))
                return NEXT
            row.chain_payload = rebuilt.chain_payload
            row.digest = rebuilt.digest
            row.fee = json.dumps(dict(rebuilt.fee), sort_keys=True)
            row.signing_attempts += 1
            row.updated_at = utcnow()
            signing = self._signing(uow, locked, row, mode, adapter, rebuilt)
            uow.audit.append(
                workspace_id=row.workspace_id,
                actor=PIPELINE_ACTOR,
                action="transaction.replacement_signing_attempt",
                resource_type="transaction",
                resource_id=row.transaction_id,
                details={
                    "replacement": row.id,
                    "attempt": row.signing_attempts,
                    "digest": row.digest,
                },
            )
        self.runtime.fault("replacement_signing")
        try:
            signatures = sign_all(signer_for(self.runtime), signing)
            signed = adapter.assemble(signing.chain_payload, signing.public_key, signatures)
        except (SigningError, ChainError) as exc:
            _log.warning("signing a replacement of %s failed: %s", loaded.tx.id, exc)
            return Later(self.runtime.broadcast_retry_s)
        with self.platform.unit_of_work() as uow:
            found = self._locked(uow, loaded, replacement_id, ReplacementStatus.REQUESTED)
            if found is None:
                return NEXT
            _, row = found
            if row.signing_attempts != signing.attempt or row.digest != rebuilt.digest:
                return NEXT
            row.signature = signed.signature
            row.signed_payload = signed.signed_payload
            row.tx_hash = signed.tx_hash
            move_replacement(uow, row, ReplacementStatus.SIGNED)
        self.runtime.fault("replacement_signed")
        return self._send(loaded, adapter, replacement_id)

    def _signing(
        self,
        uow: UnitOfWork,
        locked: Loaded,
        row: Replacement,
        mode: ReplacementMode,
        adapter: ChainAdapter,
        rebuilt: Rebuilt,
    ) -> Signing:
        """The signer's requests for ``row``'s attempt (module docstring)."""
        tx = locked.tx
        key = VaultRepository(uow.session, tx.workspace_id).key(tx.vault_id, locked.source.scheme)
        assert key is not None
        initiator = initiator_email(uow, tx)
        cancel = mode is ReplacementMode.CANCEL
        metadata, approvals, reports = cosigner_context(
            uow, locked, initiator=initiator, unapproved=cancel
        )
        requests = sign_requests(
            locked,
            key,
            adapter.rebuilt_parts(locked, rebuilt),
            session=f"{tx.id}:r{row.seq}.{row.signing_attempts}",
            context=(metadata, approvals, reports),
            forwarded=None if cancel else forwarded_request(uow, tx),
        )
        return Signing(
            requests,
            row.signing_attempts,
            bytes.fromhex(locked.source.public_key),
            rebuilt.chain_payload,
        )

    def _send(self, loaded: Loaded, adapter: ChainAdapter, replacement_id: str) -> Outcome:
        with self.platform.unit_of_work(read_only=True) as uow:
            row = replacement_of(uow, loaded.tx, replacement_id)
            if row is None or row.status != ReplacementStatus.SIGNED:
                return NEXT
            assert row.chain_payload is not None
            assert row.signed_payload is not None
            assert row.tx_hash is not None
            version = Version(row.chain_payload, row.signed_payload, row.tx_hash)
        try:
            sent = adapter.send_version(self.runtime, loaded, version)
        except ReplacementRefused as exc:
            return self._fail(loaded, replacement_id, str(exc))
        if isinstance(sent, Later):
            return sent
        with self.platform.unit_of_work() as uow:
            found = self._locked(uow, loaded, replacement_id, ReplacementStatus.SIGNED)
            if found is None:
                return NEXT
            locked, row = found
            move_replacement(
                uow,
                row,
                ReplacementStatus.SENT,
                details={"broadcast": sent.outcome, "replaces": row.replaces_tx_hash},
            )
            # The limit on waiting unconfirmed counts from the newest version's send.
            locked.tx.updated_at = utcnow()
        return NEXT

    def resend_newest(self, loaded: Loaded, adapter: ChainAdapter, newest: Version) -> Outcome:
        """Every version has left the node (a reorganisation, an eviction): the newest
        goes out again, as the same bytes."""
        try:
            sent = adapter.send_version(self.runtime, loaded, newest)
        except ReplacementRefused as exc:
            _log.warning("sending %s's newest version again: %s", loaded.tx.id, exc)
            return Later(self.runtime.confirmation_poll_s)
        return sent if isinstance(sent, Later) else Later(self.runtime.confirmation_poll_s)
