"""The chain adapter: everything the pipeline's steps need from a chain, behind one
interface, with one implementation per kind of network (:mod:`.evm`, :mod:`.bitcoin`,
:mod:`.solana`) chosen from the network's data (:func:`adapter_for`). The steps
(:mod:`.steps`) never branch on the chain.

The order of the calls, and what is committed between them, is the steps' business:

* :meth:`ChainAdapter.prepare`: node reads before the write transaction (fees, nonce
  floor, coins); never under a row lock.
* :meth:`ChainAdapter.serialize_in`: in the write transaction that moves ``approved ->
  signing``: allocate what must be unique (a nonce, coins), build the chain payload,
  read it back as the policy saw it, store it and its digest.
* :meth:`ChainAdapter.sign_parts`: the payloads the signer signs, from the stored
  payload, checked against the stored digest.
* :meth:`ChainAdapter.assemble`: the signed transaction, every signature verified.
* :meth:`ChainAdapter.send`, :meth:`ChainAdapter.sent_in`: broadcast the same signed
  bytes (asking first whether the chain has them), and what the database records with
  ``confirming`` (:meth:`ChainAdapter.before_sent_in`: once for a batch, first).
* :meth:`ChainAdapter.observe`: confirmations, or that the chain has dropped it (a
  reorganisation): the steps then send the same bytes again.
* :meth:`ChainAdapter.release_in`: what a failure gives back (an unused nonce).

Replacement (:mod:`shardvault.lifecycle.replacements`, run by :mod:`.replacing`): a
transaction the node holds is signed again over what the chain spends once (the nonce,
the coins), so only one of its versions can be mined:

* :meth:`ChainAdapter.prepare_replacement`: node reads (the fees now);
* :meth:`ChainAdapter.rebuild`: the replacement's payload from the newest version the
  node was given, checked to do what the mode says (the same transfer, or nothing);
* :meth:`ChainAdapter.rebuilt_parts`: its payloads for the signer;
* :meth:`ChainAdapter.send_version`: send one version's signed bytes;
* :meth:`ChainAdapter.observe_versions`: each version's place in the chain.

A chain that cannot replace (:class:`NoReplacement`) says so and is never asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shardvault.lifecycle import ReplacementMode
from shardvault.policy import TransactionRequest
from shardvault.policy.model import InitiatorKind, Operation
from shardvault.policy.request import Asset as PolicyAsset
from shardvault.policy.request import Initiator, Source
from shardvault.service.pipeline.outcomes import Later
from shardvault.service.transfer_intent import intent_asset, intent_network
from shardvault.store.models_vaults import NetworkKind

if TYPE_CHECKING:
    from shardvault.service.pipeline.loading import Loaded
    from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
    from shardvault.service.platform import Platform
    from shardvault.service.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class SignPart:
    """One payload for the signer (a Bitcoin spend has one per input)."""

    scheme: str
    payload_kind: str
    payload: bytes
    input_index: int | None = None


@dataclass(frozen=True, slots=True)
class Signed:
    """A verified signed transaction, ready to store."""

    signature: str
    signed_payload: str
    tx_hash: str
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sent:
    """The chain has the signed bytes: ``"sent"`` now, or ``"already_known"``."""

    outcome: str


@dataclass(frozen=True, slots=True)
class Seen:
    """Included in the canonical chain with enough confirmations."""

    block_number: int
    confirmations: int
    success: bool
    details: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Dropped:
    """The chain no longer has the transaction (its block was reorganised away and the
    node does not hold it either): the same signed bytes are to be sent again."""

    reason: str


Observed = Seen | Dropped | Later


@dataclass(frozen=True, slots=True)
class Version:
    """One signed version of a transaction the node was given: the original, or a sent
    replacement."""

    chain_payload: str
    signed_payload: str
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A replacement's payload, ready to sign: what is stored, its digest, and the fee
    it offers (shown to users)."""

    chain_payload: str
    digest: str
    fee: Mapping[str, object]


class ReplacementRefused(Exception):
    """A replacement that cannot be built or sent (no room for a higher fee, the node
    refuses it): the replacement fails, the transaction stays as it is."""


class ChainAdapter(Protocol):
    """One kind of network, as the pipeline uses it (module docstring)."""

    kind: NetworkKind
    serializes_with_policy: bool
    """Whether serialization may join the policy's unit of work (nothing it needs from
    the node must be read under the workspace lock)."""
    serialize_locks_workspace: bool
    """Whether serialization holds the workspace's serialization lock (coins: two
    transfers must not pick the same ones)."""
    payload_names_network: bool
    """Whether the signed payload itself names its network (an EVM chain id); if not,
    co-signers are told the network the workspace names, to compare with their signed
    registry."""

    def template_request(
        self, loaded: Loaded, *, initiator: str, vault: str
    ) -> TransactionRequest: ...

    def prepare(
        self, runtime: PipelineRuntime, platform: Platform, loaded: Loaded
    ) -> object | Later: ...

    def prepare_many(
        self, runtime: PipelineRuntime, loads: Sequence[Loaded]
    ) -> dict[str, object]: ...

    def serialize_in(
        self,
        runtime: PipelineRuntime,
        uow: UnitOfWork,
        locked: Loaded,
        prepared: object,
        initiator: str,
    ) -> dict[str, object] | None: ...

    def sign_parts(self, loaded: Loaded, initiator: str) -> list[SignPart]: ...

    def assemble(
        self, chain_payload: str, public_key: bytes, signatures: Sequence[bytes]
    ) -> Signed: ...

    def send(self, runtime: PipelineRuntime, loaded: Loaded, *, fresh: bool) -> Sent | Later: ...

    def before_sent_in(
        self, runtime: PipelineRuntime, uow: UnitOfWork, loads: Sequence[Loaded]
    ) -> None: ...

    def sent_in(self, runtime: PipelineRuntime, uow: UnitOfWork, loaded: Loaded) -> None: ...

    def observe(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> list[Observed]: ...

    def release_in(
        self, uow: UnitOfWork, loaded: Loaded, fault: PipelineFault
    ) -> dict[str, object]: ...

    replacement_modes: frozenset[ReplacementMode]
    """What a sent transaction of this chain can be replaced with (the module
    docstring); empty: it cannot be replaced."""

    def prepare_replacement(self, runtime: PipelineRuntime, loaded: Loaded) -> object | Later: ...

    def rebuild(
        self, loaded: Loaded, mode: ReplacementMode, prepared: object, newest: Version
    ) -> Rebuilt: ...

    def rebuilt_parts(self, loaded: Loaded, rebuilt: Rebuilt) -> list[SignPart]: ...

    def send_version(
        self, runtime: PipelineRuntime, loaded: Loaded, version: Version
    ) -> Sent | Later: ...

    def observe_versions(
        self, runtime: PipelineRuntime, loaded: Loaded, versions: Sequence[Version]
    ) -> list[Observed]: ...


class NoReplacement:
    """For a chain whose sent transactions cannot be replaced (a Solana transaction
    expires with its blockhash instead)."""

    replacement_modes: frozenset[ReplacementMode] = frozenset()

    def _refuse(self) -> ReplacementRefused:
        return ReplacementRefused("transactions of this network cannot be replaced")

    def prepare_replacement(self, runtime: PipelineRuntime, loaded: Loaded) -> object | Later:
        raise self._refuse()

    def rebuild(
        self, loaded: Loaded, mode: ReplacementMode, prepared: object, newest: Version
    ) -> Rebuilt:
        raise self._refuse()

    def rebuilt_parts(self, loaded: Loaded, rebuilt: Rebuilt) -> list[SignPart]:
        raise self._refuse()

    def send_version(
        self, runtime: PipelineRuntime, loaded: Loaded, version: Version
    ) -> Sent | Later:
        raise self._refuse()

    def observe_versions(
        self, runtime: PipelineRuntime, loaded: Loaded, versions: Sequence[Version]
    ) -> list[Observed]:
        raise self._refuse()


class NoLedger:
    """Defaults for a chain with nothing to record when a transaction goes out and
    nothing to give back when one fails (no account nonces)."""

    def before_sent_in(
        self, runtime: PipelineRuntime, uow: UnitOfWork, loads: Sequence[Loaded]
    ) -> None:
        return None

    def sent_in(self, runtime: PipelineRuntime, uow: UnitOfWork, loaded: Loaded) -> None:
        return None

    def release_in(
        self, uow: UnitOfWork, loaded: Loaded, fault: PipelineFault
    ) -> dict[str, object]:
        return {}


def transfer_request(
    loaded: Loaded, *, destination: str, amount: int, initiator: str, vault: str
) -> TransactionRequest:
    """The policy's view of a transfer of ``amount`` base units of the transaction's
    asset to ``destination`` (as the chain payload reads back)."""
    return TransactionRequest(
        digest=bytes.fromhex(loaded.tx.intent_digest),
        operation=Operation.TRANSFER,
        created_at=int(loaded.tx.created_at.timestamp()),  # type: ignore[arg-type]
        initiator=Initiator(InitiatorKind.USER, initiator),
        source=Source(vault=vault, wallet=loaded.source.path),
        network=intent_network(loaded.network),
        destination=destination,
        asset=PolicyAsset(intent_asset(loaded.network, loaded.asset), loaded.asset.decimals),
        amount=amount,  # type: ignore[arg-type]
    )
