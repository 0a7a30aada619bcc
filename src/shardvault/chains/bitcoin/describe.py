"""A JSON-able description of a PSBT or raw transaction, for people and policies.

Input is text: a PSBT in base64 (Bitcoin Core's form, starting ``cHNidP``) or hex
(starting ``70736274ff``), or a raw transaction in hex. The description lists every input
(what it spends, its amount and address when the PSBT says, whether it is signed), every
output (address, amount), the totals, the fee and the fee rate (over the exact virtual size
once the PSBT is complete, an estimate before). Amounts are decimal strings of satoshi
so that no float ever carries money.
"""

import binascii

from shardvault.chains.amounts import format_decimal_amount
from shardvault.chains.bitcoin.address import Network, address_from_script
from shardvault.chains.bitcoin.coinselect import SpendKind
from shardvault.chains.bitcoin.encoding import compact_size
from shardvault.chains.bitcoin.models import Transaction, TxOut, parse_transaction
from shardvault.chains.bitcoin.psbt import (
    MAGIC,
    Psbt,
    decode_psbt_text,
)
from shardvault.chains.bitcoin.psbt_roles import (
    extract_transaction,
    input_is_signed,
)
from shardvault.chains.bitcoin.script import ScriptType, classify
from shardvault.chains.errors import ChainError, DecodeError

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
"""The values a description holds."""

_MAX_TEXT = 8_000_000


def _output(txout: TxOut, index: int, network: Network) -> dict[str, JsonValue]:
    return {
        "index": index,
        "address": address_from_script(txout.script_pubkey, network),
        "script_type": classify(txout.script_pubkey).value,
        "script_pubkey": txout.script_pubkey.hex(),
        "amount_sat": str(txout.value),
        "amount_btc": format_decimal_amount(txout.value, 8),
    }


def _describe_transaction(tx: Transaction, network: Network) -> dict[str, JsonValue]:
    total_out = sum(o.value for o in tx.outputs)
    return {
        "kind": "transaction",
        "network": network.name.lower(),
        "txid": tx.txid_hex,
        "wtxid": tx.wtxid_hex,
        "version": tx.version,
        "locktime": tx.locktime,
        "size": len(tx.serialize()),
        "vsize": tx.vsize(),
        "weight": tx.weight(),
        "inputs": [
            {
                "index": i,
                "prevout": str(txin.prevout),
                "sequence": txin.sequence,
                "script_sig": txin.script_sig.hex(),
                "witness": [item.hex() for item in txin.witness],
                "signed": bool(txin.script_sig or txin.witness),
            }
            for i, txin in enumerate(tx.inputs)
        ],
        "outputs": [_output(o, i, network) for i, o in enumerate(tx.outputs)],
        "output_total_sat": str(total_out),
        # A raw transaction does not say what its inputs are worth, so its fee is unknown.
        "fee_sat": None,
    }


def _psbt_vsize(psbt: Psbt, tx: Transaction) -> tuple[int | None, bool]:
    # Exact once every input is final; before that an estimate from the spent output
    # types (worst-case signature sizes, as coin selection uses), or None when an input
    # is of a type shardvault does not size.
    if all(p.is_finalized for p in psbt.inputs):
        return extract_transaction(psbt).vsize(), False
    kinds = []
    for i in range(len(tx.inputs)):
        spent = psbt.spent_output(i)
        kind = None if spent is None else classify(spent.script_pubkey)
        if kind is ScriptType.P2WPKH:
            kinds.append(SpendKind.P2WPKH)
        elif kind is ScriptType.P2TR:
            kinds.append(SpendKind.P2TR)
        else:
            return None, True
    counts = len(compact_size(len(tx.inputs))) + len(compact_size(len(tx.outputs)))
    weight = (8 + counts) * 4 + 2
    weight += sum(k.input_weight for k in kinds)
    weight += sum(len(o.serialize()) * 4 for o in tx.outputs)
    return -(-weight // 4), True


def describe_psbt(psbt: Psbt, network: Network = Network.MAINNET) -> dict[str, JsonValue]:
    """Describe a parsed PSBT (see the module docstring)."""
    tx = psbt.unsigned_transaction()
    inputs: list[JsonValue] = []
    for i, txin in enumerate(tx.inputs):
        spent = psbt.spent_output(i)
        p = psbt.inputs[i]
        inputs.append(
            {
                "index": i,
                "prevout": str(txin.prevout),
                "sequence": txin.sequence,
                "amount_sat": None if spent is None else str(spent.value),
                "address": (
                    None if spent is None else address_from_script(spent.script_pubkey, network)
                ),
                "script_type": None if spent is None else classify(spent.script_pubkey).value,
                "signed": input_is_signed(psbt, i),
                "finalized": p.is_finalized,
                "partial_signatures": len(p.partial_sigs),
                "sighash_type": p.sighash_type,
            }
        )
    try:
        fee = psbt.fee()
    except ChainError:
        fee = None
    vsize, estimated = _psbt_vsize(psbt, tx)
    fee_rate = None
    if fee is not None and vsize:
        # sat/vB with three decimals, rounded down.
        fee_rate = format_decimal_amount(fee * 1000 // vsize, 3)
    known = [psbt.spent_output(i) for i in range(len(tx.inputs))]
    total_in = None if any(k is None for k in known) else sum(k.value for k in known if k)
    return {
        "kind": "psbt",
        "psbt_version": psbt.version,
        "network": network.name.lower(),
        "txid": tx.txid_hex,
        "tx_version": tx.version,
        "locktime": tx.locktime,
        "inputs": inputs,
        "outputs": [_output(o, i, network) for i, o in enumerate(tx.outputs)],
        "input_total_sat": None if total_in is None else str(total_in),
        "output_total_sat": str(sum(o.value for o in tx.outputs)),
        "fee_sat": None if fee is None else str(fee),
        "vsize": vsize,
        "vsize_is_estimate": estimated,
        "fee_rate_sat_per_vb": fee_rate,
        "signed_inputs": [i for i in range(len(tx.inputs)) if input_is_signed(psbt, i)],
        "complete": all(p.is_finalized for p in psbt.inputs),
    }


def describe(data: str, network: Network = Network.MAINNET) -> dict[str, JsonValue]:
    """Describe a PSBT (base64 or hex) or a raw transaction (hex).

    Raises:
        DecodeError: the text is none of these, or malformed.
        ChainError: any other validation failure of the PSBT or transaction.
    """
    if not isinstance(data, str) or len(data) > _MAX_TEXT:
        raise DecodeError("must be a string of at most 8,000,000 characters", field="data")
    text = data.strip()
    if text.startswith("cHNidP") or text[:10].lower() == MAGIC.hex():
        return describe_psbt(decode_psbt_text(text), network)
    try:
        raw = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise DecodeError(
            "is neither a PSBT (base64 or hex) nor a raw transaction in hex", field="data"
        ) from None
    return _describe_transaction(parse_transaction(raw), network)
