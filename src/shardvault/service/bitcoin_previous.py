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

from shardvault.service.bitcoin_transfers import BitcoinSpend, prove_input_amounts
from shardvault.service.chainclients.bitcoin import BitcoinRpcClient


def with_previous_transactions(client: BitcoinRpcClient, spend: BitcoinSpend) -> BitcoinSpend:
    """``spend`` with each input's previous transaction from ``client``'s node.

    Raises:
        RpcTransportError, RpcResponseError: the node cannot be reached, does not know a
            transaction, or returns another one.
        ChainError: a previous transaction that is not the coin spent
            (:func:`~.bitcoin_transfers.prove_input_amounts`).
    """
    previous: dict[str, bytes] = {}
    for coin in spend.inputs:
        if coin.txid not in previous:
            previous[coin.txid] = client.get_raw_transaction(coin.txid, coin.block_hash)
    return prove_input_amounts(spend, previous)
