"""Solana: System Program transfers from a FROST Ed25519 key, signed and verified but not
broadcast (no Solana node is configured; the flow is ``sign_only``, so they rest at
``signed``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import base58

from shardvault.chains.solana.encode import (
    attach_signature,
    compile_legacy_message,
    serialize_message,
)
from shardvault.chains.solana.encode import parse_message as parse_solana_message
from shardvault.chains.solana.encode import serialize_transaction as serialize_solana_transaction
from shardvault.chains.solana.encode import unsigned_transaction as unsigned_solana_transaction
from shardvault.chains.solana.models import LegacyMessage
from shardvault.chains.solana.models import Pubkey as SolanaPubkey
from shardvault.chains.solana.parse import decode_instruction
from shardvault.chains.solana.system import transfer as solana_transfer
from shardvault.policy import TransactionRequest
from shardvault.service.pipeline.chain import (
    NoLedger,
    NoReplacement,
    Observed,
    Sent,
    Signed,
    SignPart,
    transfer_request,
)
from shardvault.service.pipeline.loading import Loaded
from shardvault.service.pipeline.outcomes import Later
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import NetworkKind

SOLANA_OFFLINE_BLOCKHASH = bytes(32)
"""The recent-blockhash field of Solana messages signed without a node: a placeholder.
Such a transaction is signed and verified but cannot be broadcast (no Solana node runs
in this deployment; docs/transactions.md)."""


def build_solana_message(loaded: Loaded, blockhash: bytes) -> LegacyMessage:
    """The legacy message of a System Program transfer from the wallet's address."""
    payer = SolanaPubkey.from_base58(loaded.source.address, field="source")
    destination = SolanaPubkey.from_base58(loaded.tx.destination, field="destination")
    instruction = solana_transfer(payer, destination, int(loaded.tx.amount_base_units))
    return compile_legacy_message(payer, [instruction], blockhash)


def solana_policy_request(
    loaded: Loaded, message: LegacyMessage, *, initiator: str, vault: str
) -> TransactionRequest:
    """The policy's view of a Solana message, decoded back from its instructions.

    Raises:
        PipelineFault: the message is not exactly the requested transfer.
    """
    keys = [str(k) for k in message.account_keys]
    if len(message.instructions) != 1:
        raise PipelineFault("the built message holds more than the transfer")
    compiled = message.instructions[0]
    decoded = decode_instruction(
        message.account_keys[compiled.program_id_index],
        [keys[i] for i in compiled.accounts],
        compiled.data,
        "instructions[0]",
    )
    if (
        decoded.get("type") != "system_transfer"
        or decoded.get("from") != loaded.source.address
        or decoded.get("to") != loaded.tx.destination
        or decoded.get("lamports") != loaded.tx.amount_base_units
    ):
        raise PipelineFault("the built message is not the requested transfer")
    return transfer_request(
        loaded,
        destination=loaded.tx.destination,
        amount=int(loaded.tx.amount_base_units),
        initiator=initiator,
        vault=vault,
    )


class SolanaAdapter(NoLedger, NoReplacement):
    """Solana System Program transfers (module docstring)."""

    kind = NetworkKind.SOLANA
    serializes_with_policy = True
    serialize_locks_workspace = False
    payload_names_network = False

    def template_request(self, loaded: Loaded, *, initiator: str, vault: str) -> TransactionRequest:
        message = build_solana_message(loaded, SOLANA_OFFLINE_BLOCKHASH)
        return solana_policy_request(loaded, message, initiator=initiator, vault=vault)

    def prepare(self, runtime: PipelineRuntime, platform: Platform, loaded: Loaded) -> object:
        return SOLANA_OFFLINE_BLOCKHASH

    def prepare_many(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> dict[str, object]:
        return {loaded.tx.id: SOLANA_OFFLINE_BLOCKHASH for loaded in loads}

    def serialize_in(
        self,
        runtime: PipelineRuntime,
        uow: UnitOfWork,
        locked: Loaded,
        prepared: object,
        initiator: str,
    ) -> dict[str, object] | None:
        """Build the message, check it, and store it."""
        assert isinstance(prepared, bytes)
        message = build_solana_message(locked, prepared)
        solana_policy_request(locked, message, initiator=initiator, vault=locked.tx.vault_id)
        raw = serialize_message(message)
        tx = locked.tx
        tx.chain_payload = json.dumps(
            {"kind": "solana_message", "message": raw.hex(), "broadcast": False},
            sort_keys=True,
        )
        tx.digest = hashlib.sha256(raw).hexdigest()
        return {"digest": tx.digest}

    def sign_parts(self, loaded: Loaded, initiator: str) -> list[SignPart]:
        assert loaded.tx.chain_payload is not None
        raw = bytes.fromhex(json.loads(loaded.tx.chain_payload)["message"])
        if hashlib.sha256(raw).hexdigest() != loaded.tx.digest:
            raise PipelineFault("the stored message does not match the transaction digest")
        return [SignPart("eddsa-ed25519", "solana_message", raw)]

    def assemble(
        self, chain_payload: str, public_key: bytes, signatures: Sequence[bytes]
    ) -> Signed:
        """The signature checked over the message for the payer's key.

        Raises:
            ChainError: it does not verify.
        """
        (signature,) = signatures
        message = parse_solana_message(bytes.fromhex(json.loads(chain_payload)["message"]))
        solana_tx = attach_signature(
            unsigned_solana_transaction(message), message.account_keys[0], signature
        )
        return Signed(
            signature=signature.hex(),
            signed_payload=serialize_solana_transaction(solana_tx).hex(),
            tx_hash=base58.b58encode(signature).decode(),
        )

    def send(self, runtime: PipelineRuntime, loaded: Loaded, *, fresh: bool) -> Sent | Later:
        raise PipelineFault("Solana transfers are not broadcast (no Solana node configured)")

    def observe(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> list[Observed]:
        raise PipelineFault("Solana transfers are not broadcast (no Solana node configured)")
