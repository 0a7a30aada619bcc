"""Bitcoin replacement (BIP 125): the same coins spent again with a higher fee, taken
from the change, so that at most one version can be mined (docs/transactions.md
"Replacing a sent transaction").

A node takes the replacement when it pays at least the original's fee plus the
incremental relay fee (1 sat/vB) for its own size, at a higher rate (BIP 125 rules 3, 4
and 6); each replacement pays at least that, at least 9/8 of the newest version's fee,
and at least the rate the node now estimates. The inputs (so the co-signers' replay key,
the outpoints) and the payment are unchanged; only the change shrinks, or goes to the
fee whole when what is left would be dust. A cancel (all coins back to the source) is
not offered on Bitcoin yet: the co-signers read a spend with no payment as malformed.
"""

from __future__ import annotations

import json
import logging
import math
from decimal import Decimal

from shardvault.chains import bitcoin
from shardvault.chains.amounts import Satoshi
from shardvault.chains.errors import ChainError
from shardvault.lifecycle import ReplacementMode
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.chainclients.bitcoin import AlreadyInChainError, MissingInputsError
from shardvault.service.pipeline.bitcoin_payload import bitcoin_digest, bitcoin_policy_request
from shardvault.service.pipeline.chain import (
    Rebuilt,
    ReplacementRefused,
    Sent,
    SignPart,
    Version,
)
from shardvault.service.pipeline.loading import Loaded
from shardvault.service.pipeline.outcomes import Later
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime

_log = logging.getLogger("shardvault.pipeline")

CHANGE_DUST_SAT = 294
"""Bitcoin Core's dust limit of a P2WPKH output at the default 3 sat/vB dust relay fee."""

INCREMENTAL_RELAY_SAT_PER_VB = 1
"""Bitcoin Core's default incremental relay fee (BIP 125 rule 4)."""

CONFIRMATION_TARGET = 2
"""The estimate a speed-up asks for: confirmation within two blocks."""


def bumped_fee(old_fee: int, vsize: int, rate: Decimal) -> int:
    """The fee a replacement of ``vsize`` vbytes pays: BIP 125's minimum over the old
    fee, 9/8 of it, and ``rate`` for its size, whichever is most (whole satoshi)."""
    return max(
        old_fee + INCREMENTAL_RELAY_SAT_PER_VB * vsize,
        -(-old_fee * 9 // 8),
        math.ceil(rate * vsize),
    )


def rebuild_spend(psbt_bytes: bytes, source_script: bytes, new_fee: int) -> tuple[bytes, int, int]:
    """The PSBT of ``psbt_bytes`` paying ``new_fee``: the same inputs (each with its
    UTXO records) and payment; the change less the difference, or dropped into the fee
    when it would be dust. Answers the PSBT, its fee and its change.

    Raises:
        ReplacementRefused: the change cannot pay the higher fee.
    """
    old = bitcoin.parse_psbt(psbt_bytes)
    unsigned = old.unsigned_transaction()
    old_fee = old.fee()
    assert old_fee is not None
    change = [i for i, o in enumerate(unsigned.outputs) if o.script_pubkey == source_script]
    if not change:
        raise ReplacementRefused("the spend has no change to pay a higher fee from")
    (index,) = change
    left = int(unsigned.outputs[index].value) - (new_fee - int(old_fee))
    outputs = list(unsigned.outputs)
    if left >= CHANGE_DUST_SAT:
        outputs[index] = bitcoin.TxOut(Satoshi(left), source_script)
    else:
        if left < 0:
            raise ReplacementRefused(
                f"the change ({int(unsigned.outputs[index].value)} sat) cannot pay a fee of "
                f"{new_fee} sat"
            )
        del outputs[index]
        left = 0
    psbt = bitcoin.create_psbt(
        list(unsigned.inputs), outputs, tx_version=unsigned.version, locktime=unsigned.locktime
    )
    for i, psbt_input in enumerate(old.inputs):
        if psbt_input.witness_utxo is not None:
            psbt = bitcoin.set_witness_utxo(psbt, i, psbt_input.witness_utxo)
        if psbt_input.non_witness_utxo is not None:
            psbt = bitcoin.set_non_witness_utxo(psbt, i, psbt_input.non_witness_utxo)
    fee = psbt.fee()
    assert fee is not None
    return psbt.serialize(), int(fee), left


class BitcoinReplacing:
    """The replacement half of the Bitcoin adapter (:mod:`.chain`)."""

    replacement_modes = frozenset({ReplacementMode.SPEED_UP})

    def prepare_replacement(self, runtime: PipelineRuntime, loaded: Loaded) -> Decimal | Later:
        """The rate (sat/vB) the node estimates now for a quick confirmation (0 when it
        has no estimate: the BIP 125 minimum then decides)."""
        client = runtime.bitcoin_client(loaded.network)
        try:
            estimate = client.estimate_smart_fee(CONFIRMATION_TARGET)
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("fees for replacing %s: node trouble (%s)", loaded.tx.id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        return Decimal(0) if estimate is None else Decimal(estimate.sat_per_kvb) / 1000

    def rebuild(
        self, loaded: Loaded, mode: ReplacementMode, prepared: object, newest: Version
    ) -> Rebuilt:
        """The speed-up of ``newest`` (module docstring), read back as the transfer the
        policy allowed.

        Raises:
            ReplacementRefused: a cancel, or change too small for the higher fee.
            PipelineFault: the rebuilt PSBT is not the requested transfer.
        """
        if mode is not ReplacementMode.SPEED_UP:
            raise ReplacementRefused("a Bitcoin transfer can be sped up, not cancelled")
        assert isinstance(prepared, Decimal)
        payload = json.loads(newest.chain_payload)
        vsize = int(payload["vsize"])
        old_fee = int(payload["fee_sat"])
        new_fee = bumped_fee(old_fee, vsize, prepared)
        source_script = bitcoin.p2wpkh_script(bytes.fromhex(loaded.source.public_key))
        try:
            psbt, fee, change = rebuild_spend(
                bytes.fromhex(payload["psbt"]), source_script, new_fee
            )
        except ChainError as exc:
            raise PipelineFault(f"cannot rebuild the Bitcoin spend: {exc}") from None
        bitcoin_policy_request(loaded, psbt, initiator="-", vault=loaded.tx.vault_id)
        rebuilt = {
            **payload,
            "psbt": psbt.hex(),
            "fee_sat": fee,
            "change_sat": change,
            "fee_rate_sat_per_vb": str(Decimal(fee) / vsize),
        }
        return Rebuilt(
            chain_payload=json.dumps(rebuilt, sort_keys=True),
            digest=bitcoin_digest(psbt),
            fee={"fee_sat": fee, "change_sat": change, "vsize": vsize},
        )

    def rebuilt_parts(self, loaded: Loaded, rebuilt: Rebuilt) -> list[SignPart]:
        psbt = bytes.fromhex(json.loads(rebuilt.chain_payload)["psbt"])
        if bitcoin_digest(psbt) != rebuilt.digest:
            raise PipelineFault("the replacement's PSBT does not match its digest")
        inputs = len(bitcoin.parse_psbt(psbt).unsigned_transaction().inputs)
        return [
            SignPart("ecdsa-secp256k1", "bitcoin_psbt", psbt, input_index=index)
            for index in range(inputs)
        ]

    def send_version(
        self, runtime: PipelineRuntime, loaded: Loaded, version: Version
    ) -> Sent | Later:
        """Send one version's signed bytes (asking the node first).

        Raises:
            ReplacementRefused: the node refuses them (too low a fee, or the coins are
                spent: another version was mined).
        """
        client = runtime.bitcoin_client(loaded.network)
        try:
            if client.get_transaction_status(version.tx_hash) is not None:
                return Sent("already_known")
            try:
                client.send_raw_transaction(bytes.fromhex(version.signed_payload))
            except AlreadyInChainError:
                return Sent("already_known")
            except MissingInputsError:
                raise ReplacementRefused(
                    "the coins are spent: an earlier version was mined first"
                ) from None
            except TransactionRejectedError as exc:
                raise ReplacementRefused(f"the node refused the replacement: {exc}") from None
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("sending a replacement of %s: node trouble (%s)", loaded.tx.id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        return Sent("sent")
