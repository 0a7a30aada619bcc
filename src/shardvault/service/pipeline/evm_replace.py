"""EVM replacement: the same nonce signed again, with higher fees (a speed-up), or as a
transfer of nothing to the source itself (a cancel), so that at most one version of the
transaction can be mined (docs/transactions.md "Replacing a sent transaction").

A node takes a replacement into its pool only when it raises both fee caps by enough
(go-ethereum's price bump is 10 %); each replacement offers at least
:data:`FEE_BUMP_NUMERATOR` / :data:`FEE_BUMP_DENOMINATOR` of the newest version's caps, and
never less than the node suggests now. The co-signers sign it only as the same
transaction (its ids) at the same nonce, under their fee caps (docs/cosigner.md).
"""

from __future__ import annotations

import json
import logging

from eth_hash.auto import keccak

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import FeeMarketTransaction, signing_hash, summarize
from shardvault.chains.ethereum.address import parse_address
from shardvault.lifecycle import ReplacementMode
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.chainclients.ethereum import AlreadyKnownError, NonceTooLowError
from shardvault.service.pipeline.chain import (
    Rebuilt,
    ReplacementRefused,
    Sent,
    SignPart,
    Version,
)
from shardvault.service.pipeline.evm_payload import (
    chain_tx_from_payload,
    known_on_chain,
    payload_json,
    policy_request,
)
from shardvault.service.pipeline.loading import Loaded
from shardvault.service.pipeline.outcomes import Later
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime

_log = logging.getLogger("shardvault.pipeline")

FEE_BUMP_NUMERATOR = 9
FEE_BUMP_DENOMINATOR = 8
"""A replacement's fee caps are at least 9/8 of the newest version's (12.5 %, above the
10 % nodes require, rounded up)."""

PLAIN_TRANSFER_GAS = 21_000


def bumped(value: int) -> Wei:
    """``value`` raised by the minimum bump, rounded up (a zero cap becomes 1 wei)."""
    return Wei(max(-(-value * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR), value + 1))


class EvmReplacing:
    """The replacement half of the EVM adapter (:mod:`.chain`)."""

    replacement_modes = frozenset(ReplacementMode)

    def prepare_replacement(
        self, runtime: PipelineRuntime, loaded: Loaded
    ) -> tuple[Wei, Wei] | Later:
        """The fee caps the node suggests now (never the runtime's cached ones: a
        replacement is asked for because fees moved)."""
        client = runtime.ethereum_client(loaded.network)
        try:
            suggested = client.suggest_fees()
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("fees for replacing %s: node trouble (%s)", loaded.tx.id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        return suggested.max_fee_per_gas, suggested.max_priority_fee_per_gas

    def rebuild(
        self, loaded: Loaded, mode: ReplacementMode, prepared: object, newest: Version
    ) -> Rebuilt:
        """The replacement of ``newest`` at its nonce: fee caps bumped past it (and at
        least the node's suggestion ``prepared``); for a speed-up the same call, checked
        to pay the same recipient the same amount; for a cancel, nothing to the source.

        Raises:
            PipelineFault: the stored version is not this transfer.
        """
        assert isinstance(prepared, tuple)
        suggested_max, suggested_tip = prepared
        previous = chain_tx_from_payload(newest.chain_payload)
        tip = Wei(max(bumped(previous.max_priority_fee_per_gas), suggested_tip))
        max_fee = Wei(max(bumped(previous.max_fee_per_gas), suggested_max, tip))
        if mode is ReplacementMode.SPEED_UP:
            chain_tx = FeeMarketTransaction(
                chain_id=previous.chain_id,
                nonce=previous.nonce,
                max_priority_fee_per_gas=tip,
                max_fee_per_gas=max_fee,
                gas_limit=previous.gas_limit,
                to=previous.to,
                value=previous.value,
                data=previous.data,
            )
            # The same transfer the policy allowed and the approvers approved.
            policy_request(loaded, chain_tx, initiator="-", vault=loaded.tx.vault_id)
        else:
            chain_tx = FeeMarketTransaction(
                chain_id=previous.chain_id,
                nonce=previous.nonce,
                max_priority_fee_per_gas=tip,
                max_fee_per_gas=max_fee,
                gas_limit=PLAIN_TRANSFER_GAS,
                to=parse_address(loaded.source.address),
                value=Wei(0),
                data=b"",
            )
            summary = summarize(chain_tx)
            if summary.kind != "native_transfer" or int(summary.amount or 0) != 0:
                raise PipelineFault("the built cancel is not a transfer of nothing")
        if chain_tx.nonce != loaded.tx.nonce:
            raise PipelineFault("the newest version is at another nonce")
        return Rebuilt(
            chain_payload=payload_json(chain_tx),
            digest=signing_hash(chain_tx).hex(),
            fee={
                "max_fee_per_gas": str(int(max_fee)),
                "max_priority_fee_per_gas": str(int(tip)),
                "gas_limit": chain_tx.gas_limit,
            },
        )

    def rebuilt_parts(self, loaded: Loaded, rebuilt: Rebuilt) -> list[SignPart]:
        payload = bytes.fromhex(json.loads(rebuilt.chain_payload)["signing_payload"])
        if bytes(keccak(payload)).hex() != rebuilt.digest:
            raise PipelineFault("the replacement's signing payload does not match its digest")
        return [SignPart("ecdsa-secp256k1", "ethereum_transaction", payload)]

    def send_version(
        self, runtime: PipelineRuntime, loaded: Loaded, version: Version
    ) -> Sent | Later:
        """Send one version's signed bytes.

        Raises:
            ReplacementRefused: the node refuses them (too small a bump, or the nonce
                is spent: an earlier version was mined).
        """
        client = runtime.ethereum_client(loaded.network)
        tx_hash = bytes.fromhex(version.tx_hash)
        try:
            try:
                returned = client.send_raw_transaction(bytes.fromhex(version.signed_payload))
            except AlreadyKnownError:
                return Sent("already_known")
            except NonceTooLowError:
                if known_on_chain(client, tx_hash):
                    return Sent("already_known")
                raise ReplacementRefused(
                    "the nonce is spent: an earlier version was mined first"
                ) from None
            except TransactionRejectedError as exc:
                raise ReplacementRefused(f"the node refused the replacement: {exc}") from None
            if returned != tx_hash:
                raise ReplacementRefused("the node reports another transaction hash")
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("sending a replacement of %s: node trouble (%s)", loaded.tx.id, exc)
            return Later(runtime.broadcast_retry_s)
        finally:
            client.close()
        return Sent("sent")
