"""Bitcoin: addresses, transactions, PSBT v0/v2, sighashes, coin selection (pure).

P2WPKH (BIP141/BIP143) and P2TR key-path (BIP340/BIP341) spends are built as BIP174
PSBTs, signed by whoever holds the key (the signature comes in from outside and is
verified here before it is attached), finalized and extracted. Each submodule names the
BIP sections it implements.
"""

from shardvault.chains.bitcoin.address import (
    NETWORK_NAMES,
    Network,
    SegwitAddress,
    address_from_script,
    decode_segwit_address,
    encode_segwit_address,
    script_pubkey_for_address,
)
from shardvault.chains.bitcoin.coinselect import (
    FeeRate,
    InsufficientFundsError,
    Payment,
    Selection,
    SpendKind,
    Utxo,
    select_coins,
)
from shardvault.chains.bitcoin.describe import describe, describe_psbt
from shardvault.chains.bitcoin.models import (
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    parse_btc_amount,
    parse_transaction,
)
from shardvault.chains.bitcoin.psbt import (
    KeyOrigin,
    LocktimeConflictError,
    Psbt,
    PsbtSignerRefusal,
    decode_psbt_text,
    parse_psbt,
)
from shardvault.chains.bitcoin.psbt_roles import (
    add_bip32_derivation,
    add_ecdsa_signature,
    add_tap_bip32_derivation,
    add_taproot_key_signature,
    check_input_signable,
    create_psbt,
    extract_transaction,
    finalize,
    input_sighash,
    set_non_witness_utxo,
    set_sighash_type,
    set_tap_internal_key,
    set_witness_utxo,
)
from shardvault.chains.bitcoin.script import p2tr_script, p2wpkh_script
from shardvault.chains.bitcoin.sighash import (
    SIGHASH_ALL,
    SIGHASH_DEFAULT,
    segwit_v0_sighash,
    taproot_key_path_sighash,
)
from shardvault.chains.bitcoin.size import signed_vsize
from shardvault.chains.bitcoin.taproot import TaprootOutputKey, output_key, taproot_tweak

__all__ = [
    "NETWORK_NAMES",
    "SIGHASH_ALL",
    "SIGHASH_DEFAULT",
    "FeeRate",
    "InsufficientFundsError",
    "KeyOrigin",
    "LocktimeConflictError",
    "Network",
    "OutPoint",
    "Payment",
    "Psbt",
    "PsbtSignerRefusal",
    "SegwitAddress",
    "Selection",
    "SpendKind",
    "TaprootOutputKey",
    "Transaction",
    "TxIn",
    "TxOut",
    "Utxo",
    "add_bip32_derivation",
    "add_ecdsa_signature",
    "add_tap_bip32_derivation",
    "add_taproot_key_signature",
    "address_from_script",
    "check_input_signable",
    "create_psbt",
    "decode_psbt_text",
    "decode_segwit_address",
    "describe",
    "describe_psbt",
    "encode_segwit_address",
    "extract_transaction",
    "finalize",
    "input_sighash",
    "output_key",
    "p2tr_script",
    "p2wpkh_script",
    "parse_btc_amount",
    "parse_psbt",
    "parse_transaction",
    "script_pubkey_for_address",
    "segwit_v0_sighash",
    "select_coins",
    "set_non_witness_utxo",
    "set_sighash_type",
    "set_tap_internal_key",
    "set_witness_utxo",
    "signed_vsize",
    "taproot_key_path_sighash",
    "taproot_tweak",
]
