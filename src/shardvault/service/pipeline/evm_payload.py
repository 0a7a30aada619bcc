"""EVM payloads: the EIP-1559 transaction that carries out a transfer, stored as JSON,
read back as the policy sees it, and the fees and nonce floor the node suggests."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import (
    FeeMarketTransaction,
    erc20_transfer,
    native_transfer,
    signing_payload,
    summarize,
)
from shardvault.chains.ethereum.address import parse_address
from shardvault.chains.ethereum.build import FeeParameters
from shardvault.policy import TransactionRequest
from shardvault.service.chainclients.ethereum import EthereumRpcClient
from shardvault.service.pipeline.chain import transfer_request
from shardvault.service.pipeline.loading import Loaded
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime, SuggestedFees
from shardvault.store.models_vaults import AssetKind

TEMPLATE_FEES = FeeParameters(Wei(0), Wei(0), 21_000)
"""Fees of the template the policy evaluates before any fee is known."""


@dataclass(frozen=True, slots=True)
class ChainState:
    """What EVM serialization asks the node: fee caps and the address's pending nonce
    count (the ledger's floor, for an address also used outside this ledger)."""

    max_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei
    pending: int


def build_chain_transaction(
    loaded: Loaded, *, nonce: int, fees: FeeParameters
) -> FeeMarketTransaction:
    """The EIP-1559 transaction that carries out ``loaded.tx``."""
    network, asset, tx = loaded.network, loaded.asset, loaded.tx
    assert network.chain_id is not None
    if asset.kind is AssetKind.NATIVE:
        return native_transfer(
            chain_id=network.chain_id, nonce=nonce, to=tx.destination, amount=tx.amount, fees=fees
        )
    assert asset.contract is not None
    return erc20_transfer(
        chain_id=network.chain_id,
        nonce=nonce,
        token=asset.contract,
        to=tx.destination,
        amount=tx.amount,
        decimals=asset.decimals,
        fees=fees,
    )


def policy_request(
    loaded: Loaded,
    chain_tx: FeeMarketTransaction,
    *,
    initiator: str,
    vault: str,
) -> TransactionRequest:
    """The policy's view of ``chain_tx``: read back from the built transaction (its
    summary), never from the request's own fields or an opaque hash.

    Raises:
        PipelineFault: the built transaction does not do what was requested.
    """
    summary = summarize(chain_tx)
    asset = loaded.asset
    if asset.kind is AssetKind.NATIVE:
        ok = summary.kind == "native_transfer" and summary.asset == "native"
    else:
        ok = (
            summary.kind == "token_transfer"
            and summary.asset != "native"
            and asset.contract is not None
            and summary.asset == parse_address(asset.contract)
        )
    if not ok or summary.recipient is None:
        raise PipelineFault(
            f"the built transaction is a {summary.kind}, not the requested transfer"
        )
    if summary.recipient.checksummed != loaded.tx.destination:
        raise PipelineFault("the built transaction pays another recipient")
    if str(summary.amount) != loaded.tx.amount_base_units:
        raise PipelineFault("the built transaction moves another amount")
    return transfer_request(
        loaded,
        destination=summary.recipient.checksummed,
        amount=int(summary.amount),
        initiator=initiator,
        vault=vault,
    )


def payload_json(chain_tx: FeeMarketTransaction) -> str:
    """The stored chain payload of an EVM transaction."""
    assert chain_tx.to is not None
    return json.dumps(
        {
            "kind": "ethereum_transaction",
            "chain_id": chain_tx.chain_id,
            "nonce": chain_tx.nonce,
            "max_fee_per_gas": int(chain_tx.max_fee_per_gas),
            "max_priority_fee_per_gas": int(chain_tx.max_priority_fee_per_gas),
            "gas_limit": chain_tx.gas_limit,
            "to": chain_tx.to.checksummed,
            "value": int(chain_tx.value),
            "data": chain_tx.data.hex(),
            "signing_payload": signing_payload(chain_tx).hex(),
        },
        sort_keys=True,
    )


def chain_tx_from_payload(text: str) -> FeeMarketTransaction:
    """The transaction a stored chain payload describes."""
    data = json.loads(text)
    return FeeMarketTransaction(
        chain_id=int(data["chain_id"]),
        nonce=int(data["nonce"]),
        max_priority_fee_per_gas=Wei(int(data["max_priority_fee_per_gas"])),
        max_fee_per_gas=Wei(int(data["max_fee_per_gas"])),
        gas_limit=int(data["gas_limit"]),
        to=parse_address(data["to"]),
        value=Wei(int(data["value"])),
        data=bytes.fromhex(data["data"]),
        access_list=(),
    )


def chain_state(runtime: PipelineRuntime, loaded: Loaded) -> ChainState:
    """Fee caps (from the node at most once per ``runtime.fee_reuse_s``) and the
    pending nonce count (asked every time: a stale count would let an address used
    elsewhere get a nonce that is already taken).

    Raises:
        RpcTransportError, RpcResponseError: the node could not answer.
    """
    url = loaded.network.rpc_url
    assert url is not None
    fees = runtime.fees.fresh(url, runtime.fee_reuse_s)
    client = runtime.ethereum_client(loaded.network)
    try:
        if fees is None:
            suggested = client.suggest_fees()
            fees = SuggestedFees(
                time.monotonic(), suggested.max_fee_per_gas, suggested.max_priority_fee_per_gas
            )
            runtime.fees.put(url, fees)
        pending = client.get_transaction_count(loaded.source.address, "pending")
    finally:
        client.close()
    return ChainState(fees.max_fee_per_gas, fees.max_priority_fee_per_gas, pending)


def fee_parameters(runtime: PipelineRuntime, loaded: Loaded, chain: ChainState) -> FeeParameters:
    """Fee caps from ``chain``; the gas limit of a token transfer estimated by the node
    (plus a fifth), a plain transfer's 21,000.

    Raises:
        RpcTransportError, RpcResponseError: the estimate could not be had.
    """
    if loaded.asset.kind is AssetKind.NATIVE:
        gas = 21_000
    else:
        assert loaded.network.rpc_url is not None
        client = runtime.ethereum_client(loaded.network)
        try:
            template = build_chain_transaction(loaded, nonce=0, fees=TEMPLATE_FEES)
            assert template.to is not None
            estimate = client.estimate_gas(
                sender=parse_address(loaded.source.address), to=template.to, data=template.data
            )
        finally:
            client.close()
        gas = estimate + estimate // 5
    return FeeParameters(chain.max_fee_per_gas, chain.max_priority_fee_per_gas, gas)


def known_on_chain(client: EthereumRpcClient, tx_hash: bytes) -> bool:
    """Whether the node has the transaction, mined or in its pool."""
    if client.get_transaction_receipt(tx_hash) is not None:
        return True
    return client.request("eth_getTransactionByHash", ["0x" + tx_hash.hex()]) is not None
