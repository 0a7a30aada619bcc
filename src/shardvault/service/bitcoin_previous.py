"""The previous transactions of a Bitcoin spend's inputs, fetched from the node so that
co-signers can prove every input's amount (docs/policy.md "Fee caps").

A co-signer that signs one P2WPKH input (BIP143) sees the other inputs' amounts only as
the coordinator claims them, unless the PSBT carries each input's previous transaction,
whose txid the co-signer checks against the outpoint. The node is asked for each one
(``getrawtransaction``, given the block the UTXO scan named); the client checks the
returned bytes hash to the txid, and :func:`~.bitcoin_transfers.prove_input_amounts`
checks the output is the coin the PSBT spends.
"""

from __future__ import annotations

from shardvault.chains.errors import UnsupportedError
from shardvault.service.bitcoin_transfers import BitcoinSpend, prove_input_amounts
from shardvault.service.chainclients import RpcResponseError
from shardvault.service.chainclients.bitcoin import RPC_INVALID_ADDRESS_OR_KEY, BitcoinRpcClient


def with_previous_transactions(client: BitcoinRpcClient, spend: BitcoinSpend) -> BitcoinSpend:
    """``spend`` with each input's previous transaction from ``client``'s node.

    Raises:
        RpcTransportError, RpcResponseError: the node cannot be reached, fails, or
            returns another transaction than the one asked for (worth a retry).
        UnsupportedError: the node does not know a previous transaction: Bitcoin Core
            finds a confirmed one only given its block, which ``scantxoutset`` names
            from version 26, or with ``-txindex=1`` (a retry would not help).
        ChainError: a previous transaction that is not the coin spent
            (:func:`~.bitcoin_transfers.prove_input_amounts`).
    """
    previous: dict[str, bytes] = {}
    for index, coin in enumerate(spend.inputs):
        if coin.txid in previous:
            continue
        try:
            previous[coin.txid] = client.get_raw_transaction(coin.txid, coin.block_hash)
        except RpcResponseError as exc:
            if exc.code != RPC_INVALID_ADDRESS_OR_KEY:
                raise
            raise UnsupportedError(
                "the node does not know this transaction (Bitcoin Core finds a confirmed "
                "one given its block, which scantxoutset names from version 26, or with "
                "-txindex=1)",
                field=f"inputs[{index}].previous_transaction",
            ) from None
    return prove_input_amounts(spend, previous)
