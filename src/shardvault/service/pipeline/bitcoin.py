"""Bitcoin: P2WPKH spends of the vault's ECDSA key (docs/transactions.md "Bitcoin").

Coins are chosen outside the write transaction and taken inside it under the workspace's
serialization lock, so two transfers never spend the same coin; a transfer holds the
coins its PSBT spends from ``signing`` until it is final.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from shardvault.chains import bitcoin
from shardvault.chains.bitcoin import InsufficientFundsError
from shardvault.chains.errors import ChainError
from shardvault.lifecycle import TransactionStatus
from shardvault.policy import TransactionRequest
from shardvault.service.bitcoin_previous import with_previous_transactions
from shardvault.service.bitcoin_transfers import (
    BitcoinSpend,
    SpendableOutput,
    build_p2wpkh_spend,
    finish_p2wpkh_spend,
)
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.chainclients.bitcoin import (
    AlreadyInChainError,
    MissingInputsError,
    NodeWarmingUpError,
)
from shardvault.service.errors import ValidationError
from shardvault.service.pipeline.bitcoin_payload import bitcoin_digest, bitcoin_policy_request
from shardvault.service.pipeline.bitcoin_replace import BitcoinReplacing
from shardvault.service.pipeline.chain import (
    Dropped,
    NoLedger,
    Observed,
    Seen,
    Sent,
    Signed,
    SignPart,
    Version,
    transfer_request,
)
from shardvault.service.pipeline.loading import Loaded
from shardvault.service.pipeline.outcomes import Later
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.transactions import bitcoin_network
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import NetworkKind, Transaction

_log = logging.getLogger("shardvault.pipeline")

BITCOIN_CONFIRMATION_TARGET = 6
"""Blocks ``estimatesmartfee`` is asked to confirm within."""

BITCOIN_MIN_FEE_RATE = Decimal(1)
"""The fee-rate floor in sat/vB (Bitcoin Core's default minimum relay fee)."""

_UTXO_HOLDING_STATUSES = (
    TransactionStatus.SIGNING,
    TransactionStatus.SIGNED,
    TransactionStatus.BROADCASTING,
    TransactionStatus.CONFIRMING,
)
"""States in which a Bitcoin transfer holds the UTXOs its PSBT spends."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    spend: BitcoinSpend
    rate: Decimal


def _held_outpoints(uow: UnitOfWork, loaded: Loaded) -> set[tuple[str, int]]:
    """UTXOs of the source address that other live transfers already spend.

    ``scantxoutset`` reads the confirmed UTXO set, where a coin spent by a mempool
    transaction still shows until that transaction is mined; spending it again would be
    refused as a conflict, so it is left out."""
    rows = uow.session.scalars(
        select(Transaction).where(
            Transaction.workspace_id == loaded.tx.workspace_id,
            Transaction.source_address_id == loaded.tx.source_address_id,
            Transaction.id != loaded.tx.id,
            Transaction.status.in_(_UTXO_HOLDING_STATUSES),
        )
    )
    held: set[tuple[str, int]] = set()
    for row in rows:
        if not row.chain_payload:
            continue
        payload = json.loads(row.chain_payload)
        if payload.get("kind") != "bitcoin_psbt":
            continue
        for item in payload.get("inputs", []):
            held.add((str(item["txid"]), int(item["vout"])))
    return held


class BitcoinAdapter(NoLedger, BitcoinReplacing):
    """P2WPKH spends through a Bitcoin Core node (module docstring)."""

    kind = NetworkKind.BITCOIN
    serializes_with_policy = False
    serialize_locks_workspace = True
    payload_names_network = False

    def template_request(self, loaded: Loaded, *, initiator: str, vault: str) -> TransactionRequest:
        # No template without the address's UTXOs: the request as created (its
        # destination and amount were checked then); serialization reads the same
        # view back from the PSBT and refuses any difference.
        return transfer_request(
            loaded,
            destination=loaded.tx.destination,
            amount=int(loaded.tx.amount_base_units),
            initiator=initiator,
            vault=vault,
        )

    def prepare(
        self, runtime: PipelineRuntime, platform: Platform, loaded: Loaded
    ) -> _Prepared | Later:
        """Choose coins of the source address and build the PSBT. Node trouble retries;
        a spend that cannot be built (too little money, dust) fails the transaction.

        Raises:
            PipelineFault: the spend cannot be built.
        """
        tx_id = loaded.tx.id
        try:
            bitcoin_network(loaded.network)
        except ValidationError as exc:
            raise PipelineFault(str(exc)) from None
        with platform.unit_of_work(read_only=True) as uow:
            held = _held_outpoints(uow, loaded)
        client = runtime.bitcoin_client(loaded.network)
        try:
            scan = client.scan_utxos([f"addr({loaded.source.address})"])
            estimate = client.estimate_smart_fee(BITCOIN_CONFIRMATION_TARGET)
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("serializing %s: node trouble (%s); retrying", tx_id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        rate = BITCOIN_MIN_FEE_RATE
        if estimate is not None:
            rate = max(rate, Decimal(estimate.sat_per_kvb) / 1000)
        utxos = [
            SpendableOutput(u.outpoint.txid_hex, u.outpoint.index, int(u.value), u.block_hash)
            for u in scan.unspents
            if (u.outpoint.txid_hex, u.outpoint.index) not in held
        ]
        try:
            spend = build_p2wpkh_spend(
                network=loaded.network.name,
                source_address=loaded.source.address,
                source_pubkey=bytes.fromhex(loaded.source.public_key),
                utxos=utxos,
                destination=loaded.tx.destination,
                amount_sat=int(loaded.tx.amount_base_units),
                fee_rate_sat_per_vb=rate,
            )
        except InsufficientFundsError as exc:
            raise PipelineFault(
                f"insufficient funds: the source address's {len(utxos)} spendable outputs "
                f"({sum(u.amount_sat for u in utxos)} sat) cannot pay "
                f"{loaded.tx.amount_base_units} sat and the fee at {rate} sat/vB ({exc})"
            ) from None
        except ChainError as exc:
            raise PipelineFault(f"cannot build the Bitcoin spend: {exc}") from None
        # Co-signers prove every input's amount from its previous transaction.
        try:
            with runtime.bitcoin_client(loaded.network) as client:
                spend = with_previous_transactions(client, spend)
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("serializing %s: node trouble (%s); retrying", tx_id, exc)
            return Later(runtime.broadcast_retry_s)
        except ChainError as exc:
            raise PipelineFault(f"cannot prove the inputs' amounts: {exc}") from None
        return _Prepared(spend, rate)

    def prepare_many(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> dict[str, object]:
        return {}  # coins are chosen by the serialization step, never with the policy

    def serialize_in(
        self,
        runtime: PipelineRuntime,
        uow: UnitOfWork,
        locked: Loaded,
        prepared: object,
        initiator: str,
    ) -> dict[str, object] | None:
        """Take the chosen coins (``None``: another transfer took one meanwhile, build
        again), check the PSBT reads back as the request, and store it."""
        assert isinstance(prepared, _Prepared)
        spend, rate = prepared.spend, prepared.rate
        taken = {(u.txid, u.vout) for u in spend.inputs}
        if taken & _held_outpoints(uow, locked):
            return None
        # The PSBT to be signed must do exactly what the policy evaluated.
        bitcoin_policy_request(locked, spend.psbt, initiator=initiator, vault=locked.tx.vault_id)
        tx = locked.tx
        tx.chain_payload = json.dumps(
            {
                "kind": "bitcoin_psbt",
                "psbt": spend.psbt.hex(),
                "fee_sat": spend.fee_sat,
                "change_sat": spend.change_sat,
                "vsize": spend.vsize,
                "fee_rate_sat_per_vb": str(rate),
                "inputs": [
                    {"txid": u.txid, "vout": u.vout, "amount_sat": u.amount_sat}
                    for u in spend.inputs
                ],
            },
            sort_keys=True,
        )
        tx.digest = bitcoin_digest(spend.psbt)
        return {
            "digest": tx.digest,
            "inputs": spend.input_count,
            "fee_sat": spend.fee_sat,
            "change_sat": spend.change_sat,
        }

    def sign_parts(self, loaded: Loaded, initiator: str) -> list[SignPart]:
        """One signature per input (same PSBT, ``input_index`` i); what is signed must
        still be the stored, evaluated transfer."""
        tx = loaded.tx
        assert tx.chain_payload is not None
        psbt = bytes.fromhex(json.loads(tx.chain_payload)["psbt"])
        if bitcoin_digest(psbt) != tx.digest:
            raise PipelineFault("the stored PSBT does not match the transaction digest")
        bitcoin_policy_request(loaded, psbt, initiator=initiator, vault=tx.vault_id)
        inputs = len(bitcoin.parse_psbt(psbt).unsigned_transaction().inputs)
        return [
            SignPart("ecdsa-secp256k1", "bitcoin_psbt", psbt, input_index=index)
            for index in range(inputs)
        ]

    def assemble(
        self, chain_payload: str, public_key: bytes, signatures: Sequence[bytes]
    ) -> Signed:
        """Every signature verified against its input's sighash, then attached.

        Raises:
            ChainError: one does not verify.
        """
        psbt = bytes.fromhex(json.loads(chain_payload)["psbt"])
        raw, txid = finish_p2wpkh_spend(psbt, list(signatures), public_key)
        # The column holds one signature; every input's is in the witnesses.
        return Signed(
            signature=signatures[0].hex(),
            signed_payload=raw.hex(),
            tx_hash=txid,
            details={"signatures": len(signatures)},
        )

    def send(self, runtime: PipelineRuntime, loaded: Loaded, *, fresh: bool) -> Sent | Later:
        """Ask the node for the txid first; send the same signed bytes only when it does
        not know them. A typed rejection fails the transaction; node trouble retries."""
        tx = loaded.tx
        assert tx.tx_hash is not None
        assert tx.signed_payload is not None
        client = runtime.bitcoin_client(loaded.network)
        try:
            # On resume the transaction may already be out: never send before asking.
            if client.get_transaction_status(tx.tx_hash) is not None:
                return Sent("already_known")
            try:
                client.send_raw_transaction(bytes.fromhex(tx.signed_payload))
            except AlreadyInChainError:
                return Sent("already_known")
            except MissingInputsError as exc:
                # Its coins are spent: by this very transaction (then the node knows
                # it) or by another one, which is final for this transfer.
                if client.get_transaction_status(tx.tx_hash) is None:
                    raise PipelineFault(f"the node refused the transaction: {exc}") from None
                return Sent("already_known")
            except TransactionRejectedError as exc:
                raise PipelineFault(f"the node refused the transaction: {exc}") from None
        except (RpcTransportError, NodeWarmingUpError) as exc:
            _log.warning("broadcast of %s: node unavailable (%s); retrying", tx.id, exc)
            return Later(runtime.broadcast_retry_s)
        except RpcResponseError as exc:
            _log.warning("broadcast of %s: node error (%s); retrying", tx.id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        return Sent("sent")

    def observe(self, runtime: PipelineRuntime, loads: Sequence[Loaded]) -> list[Observed]:
        """Each txid's confirmations once it has the network's required count; dropped
        when the node knows it neither in a block nor in its mempool."""
        return [self._observe(runtime, loaded, loaded.tx.tx_hash or "") for loaded in loads]

    def observe_versions(
        self, runtime: PipelineRuntime, loaded: Loaded, versions: Sequence[Version]
    ) -> list[Observed]:
        """Each version's place in the chain, as :meth:`observe` (one set of coins: at
        most one can be mined, and the node drops the others)."""
        return [self._observe(runtime, loaded, v.tx_hash) for v in versions]

    def _observe(self, runtime: PipelineRuntime, loaded: Loaded, txid: str) -> Observed:
        poll = Later(runtime.confirmation_poll_s)
        client = runtime.bitcoin_client(loaded.network)
        try:
            status = client.get_transaction_status(txid)
            height = client.get_block_count() if status is not None else 0
        except (RpcTransportError, RpcResponseError):
            return poll
        finally:
            client.close()
        if status is None:
            return Dropped("the node knows the transaction neither in a block nor its mempool")
        if status.confirmations < loaded.network.required_confirmations:
            return poll
        block_number = height - status.confirmations + 1
        return Seen(
            block_number=block_number,
            confirmations=status.confirmations,
            success=True,
            details={
                "block_number": block_number,
                "block_hash": status.block_hash,
                "confirmations": status.confirmations,
            },
        )
