"""The signer adapter: who signs a vault's payloads, and what they are sent.

:class:`Signer` is the interface a custody mode implements; the MPC co-signers
(:class:`~shardvault.service.signing.SigningBackend`: the co-signer processes, remote
co-signers, or the one-host ceremony) are the only one today. A signing attempt is
counted and committed before the signer is called (:func:`record_attempt`), and each
request carries what a co-signer needs to check it on its own (:func:`cosigner_context`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shardvault.policy import approval_to_json
from shardvault.service.initiator_requests import forwarded_request, signed_created_at
from shardvault.service.pipeline.adapters import adapter_for
from shardvault.service.pipeline.chain import SignPart
from shardvault.service.pipeline.loading import PIPELINE_ACTOR, Loaded
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
from shardvault.service.policies import active_policy
from shardvault.service.price_reports import SignedPrices, signed_prices
from shardvault.service.signing import SigningError, SignRequest, key_parties
from shardvault.service.transactions import intent_network, stored_statements
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import CustodyMode, VaultKey
from shardvault.store.repositories_vaults import TransactionRepository, VaultRepository
from shardvault.store.types import utcnow

MAX_SIGNING_ATTEMPTS = 3
"""Signing failures after which a transaction fails (and its nonce is released)."""


class Signer(Protocol):
    """Signs payloads with a vault's key; raises (or answers) :class:`SigningError` when
    it will not or cannot."""

    def sign(self, request: SignRequest) -> bytes: ...

    def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | SigningError]: ...


def signer_for(runtime: PipelineRuntime, mode: CustodyMode = CustodyMode.MPC) -> Signer:
    """The signer of vaults in custody ``mode``."""
    if mode is not CustodyMode.MPC:
        raise PipelineFault(f"no signer for custody mode {mode.value}")
    return runtime.backend


@dataclass(frozen=True, slots=True)
class Signing:
    """A committed signing attempt and what its round needs."""

    requests: tuple[SignRequest, ...]
    attempt: int
    public_key: bytes
    chain_payload: str


def prices_now(uow: UnitOfWork, workspace_id: str) -> SignedPrices:
    """The active bundle's static prices and the newest signed price reports held
    (:mod:`..price_reports`): what the evaluation uses and the co-signers are sent."""
    return signed_prices(uow, workspace_id, active_policy(uow, workspace_id), now=int(time.time()))


def cosigner_context(
    uow: UnitOfWork,
    loaded: Loaded,
    *,
    initiator: str,
    prices: SignedPrices | None = None,
    unapproved: bool = False,
) -> tuple[dict[str, object], tuple[dict[str, object], ...], tuple[dict[str, object], ...]]:
    """What a co-signer needs to check a signing request on its own: the metadata (who
    asks, from which vault and wallet, when, the intent's ids, and the network the
    workspace names, which a co-signer only compares with its signed registry's), the
    approvers' signed statements over the intent digest (none, not read, when the
    caller knows there are none: ``unapproved``), and the signed price reports value
    limits use."""
    tx = loaded.tx
    metadata: dict[str, object] = {
        "initiator": {"type": "user", "id": initiator},
        "source": {"vault": tx.vault_id, "wallet": loaded.source.path},
        "created_at": signed_created_at(uow, tx),
        "transaction_id": tx.id,
        "workspace_id": tx.workspace_id,
    }
    if not adapter_for(loaded.network.kind).payload_names_network:
        metadata["network"] = intent_network(loaded.network)
    approvals = tuple(
        approval_to_json(a)
        for a in (
            ()
            if unapproved
            else stored_statements(
                TransactionRepository(uow.session, tx.workspace_id).approvals(tx.id),
                bytes.fromhex(tx.intent_digest),
            )
        )
    )
    reports = (prices if prices is not None else prices_now(uow, tx.workspace_id)).reports
    return metadata, approvals, reports


def record_attempt(uow: UnitOfWork, loaded: Loaded) -> tuple[int, VaultKey]:
    """Count one more signing attempt of ``loaded`` (committed with the caller's unit of
    work, before any signer is called) and answer it with the vault key that signs.

    Raises:
        PipelineFault: the attempts are used up.
    """
    tx = loaded.tx
    if tx.signing_attempts >= MAX_SIGNING_ATTEMPTS:
        raise PipelineFault(f"signing failed {tx.signing_attempts} times")
    tx.signing_attempts += 1
    tx.updated_at = utcnow()
    key = VaultRepository(uow.session, tx.workspace_id).key(tx.vault_id, loaded.source.scheme)
    assert key is not None
    uow.audit.append(
        workspace_id=tx.workspace_id,
        actor=PIPELINE_ACTOR,
        action="transaction.signing_attempt",
        resource_type="transaction",
        resource_id=tx.id,
        details={"attempt": tx.signing_attempts, "digest": tx.digest},
    )
    return tx.signing_attempts, key


def signing_in(
    uow: UnitOfWork,
    loaded: Loaded,
    parts: Sequence[SignPart],
    *,
    prices: SignedPrices | None = None,
    unapproved: bool = False,
    initiator: str,
) -> Signing:
    """Record one more signing attempt of ``loaded`` (in ``signing``) and build its
    requests to the signer, one per part; committed by the caller before the signer is
    called. ``unapproved``: the policy allowed it in this unit of work, so it has no
    approvals (approvals are taken only in ``pending_approval``) and none are read (in a
    batch that query flushed the session once per transfer)."""
    tx = loaded.tx
    attempt, key = record_attempt(uow, loaded)
    assert tx.chain_payload is not None
    metadata, approvals, reports = cosigner_context(
        uow, loaded, initiator=initiator, prices=prices, unapproved=unapproved
    )
    requests = sign_requests(
        loaded,
        key,
        parts,
        session=f"{tx.id}:{attempt}",
        context=(metadata, approvals, reports),
        forwarded=forwarded_request(uow, tx),
    )
    return Signing(requests, attempt, bytes.fromhex(loaded.source.public_key), tx.chain_payload)


def sign_requests(
    loaded: Loaded,
    key: VaultKey,
    parts: Sequence[SignPart],
    *,
    session: str,
    context: tuple[dict[str, object], tuple[dict[str, object], ...], tuple[dict[str, object], ...]],
    forwarded: dict[str, str] | None,
) -> tuple[SignRequest, ...]:
    """One request to the signer per part of ``loaded``'s payload, signed with ``key``:
    the session is ``session`` (with ``:<input>`` for a part of one input), ``context``
    what :func:`cosigner_context` answers, ``forwarded`` the initiator's signed request
    (``None``: none goes)."""
    tx = loaded.tx
    metadata, approvals, reports = context
    parties = key_parties(json.loads(key.cosigners))
    return tuple(
        SignRequest(
            workspace_id=tx.workspace_id,
            vault_id=tx.vault_id,
            backend_key_id=key.backend_key_id,
            scheme=part.scheme,  # type: ignore[arg-type]
            path=loaded.source.path,
            payload_kind=part.payload_kind,  # type: ignore[arg-type]
            payload=part.payload,
            session=session if part.input_index is None else f"{session}:{part.input_index}",
            metadata=metadata,
            approvals=approvals,
            price_reports=reports,
            initiator_request=forwarded,
            input_index=part.input_index or 0,
            min_signers=key.min_signers,
            parties=parties,
        )
        for part in parts
    )


def sign_all(signer: Signer, signing: Signing) -> list[bytes]:
    """Every request of ``signing``, one after another.

    Raises:
        SigningError: one could not be signed.
    """
    return [signer.sign(request) for request in signing.requests]
