"""Bitcoin payloads: a P2WPKH spend's PSBT read back as the policy sees it, and its
digest."""

from __future__ import annotations

import hashlib

from shardvault.chains import bitcoin
from shardvault.chains.errors import ChainError
from shardvault.policy import TransactionRequest
from shardvault.service.errors import ValidationError
from shardvault.service.pipeline.chain import transfer_request
from shardvault.service.pipeline.loading import Loaded
from shardvault.service.pipeline.runtime import PipelineFault
from shardvault.service.transactions import bitcoin_network


def bitcoin_policy_request(
    loaded: Loaded, psbt: bytes, *, initiator: str, vault: str
) -> TransactionRequest:
    """The policy's view of a P2WPKH spend, read back from its PSBT the way a co-signer
    reads it (``cosigner.checks.bitcoin_p2wpkh_target``): every input spends the source
    address, the one output not paying back to it is the destination, and its value is
    the amount.

    Raises:
        PipelineFault: the PSBT is not exactly the requested transfer.
    """
    try:
        network = bitcoin_network(loaded.network)
    except ValidationError as exc:
        raise PipelineFault(str(exc)) from None
    try:
        parsed = bitcoin.parse_psbt(psbt)
        unsigned = parsed.unsigned_transaction()
        ours = bitcoin.p2wpkh_script(bytes.fromhex(loaded.source.public_key))
        for index in range(len(unsigned.inputs)):
            spent = parsed.spent_output(index)
            if spent is None or spent.script_pubkey != ours:
                raise PipelineFault(f"input {index} does not spend the source address")
        if bitcoin.address_from_script(ours, network) != loaded.source.address:
            raise PipelineFault("the source key's P2WPKH address is not the wallet's address")
        payments = [o for o in unsigned.outputs if o.script_pubkey != ours]
        if len(payments) != 1:
            raise PipelineFault("the built transaction does not pay exactly one destination")
        destination = bitcoin.address_from_script(payments[0].script_pubkey, network)
    except ChainError as exc:
        raise PipelineFault(f"the built PSBT does not parse: {exc}") from None
    if destination != loaded.tx.destination:
        raise PipelineFault("the built transaction pays another recipient")
    if str(payments[0].value) != loaded.tx.amount_base_units:
        raise PipelineFault("the built transaction moves another amount")
    return transfer_request(
        loaded,
        destination=destination,
        amount=int(payments[0].value),
        initiator=initiator,
        vault=vault,
    )


def bitcoin_digest(psbt: bytes) -> str:
    """SHA-256 of the unsigned transaction (no witness): stable for one PSBT."""
    unsigned = bitcoin.parse_psbt(psbt).unsigned_transaction()
    return hashlib.sha256(unsigned.serialize(include_witness=False)).hexdigest()
