"""Bitcoin P2WPKH spends for the transaction pipeline: build the PSBT, finish the signed
transaction (pure: no database, no network).

A wallet's Bitcoin address is the P2WPKH address (BIP141) of the ECDSA key derived at a
non-hardened BIP32 path (:mod:`shardvault.service.wallets`). :func:`build_p2wpkh_spend`
chooses coins from that address's UTXOs (:func:`shardvault.chains.bitcoin.select_coins`),
pays the destination, returns change to the same address unless it would be dust, and
wraps the transaction in a BIP174 version 0 PSBT with a witness UTXO on every input, which
is what a CGGMP21 co-signer checks (``shardvault.cosigner.checks.bitcoin_p2wpkh_target``).
The co-signers then sign each input's BIP143 sighash (one request per input), and
:func:`finish_p2wpkh_spend` verifies each signature with coincurve before attaching it as
DER plus SIGHASH_ALL, finalizes and extracts the network transaction.

Every error is a :class:`~shardvault.chains.errors.ChainError` subclass naming the field
at fault (``InsufficientFundsError``, ``InvalidAmountError``, ``InvalidAddressError``,
``DecodeError``, :class:`InputSignatureError`...), so the pipeline can catch one root.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from shardvault.chains import bitcoin
from shardvault.chains.amounts import MAX_SATOSHI, Satoshi
from shardvault.chains.bitcoin.models import SEQUENCE_RBF
from shardvault.chains.bitcoin.script import ScriptType, check_compressed_pubkey, classify
from shardvault.chains.errors import (
    DecodeError,
    InvalidAddressError,
    InvalidAmountError,
    SignatureAssemblyError,
    UnsupportedError,
)

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order n of secp256k1's group; a low-s signature has ``s <= n // 2`` (BIP146)."""

_PAYMENT_KINDS: dict[ScriptType, tuple[bitcoin.SpendKind, int]] = {
    # (the kind whose output weight is at least this script's, Core's dust limit at the
    # default 3 sat/vB dust relay fee). P2PKH (34 bytes), P2SH (32) and P2WSH (43) are
    # sized as a P2TR output (43 bytes), which never underestimates the fee.
    ScriptType.P2WPKH: (bitcoin.SpendKind.P2WPKH, 294),
    ScriptType.P2TR: (bitcoin.SpendKind.P2TR, 330),
    ScriptType.P2WSH: (bitcoin.SpendKind.P2TR, 330),
    ScriptType.P2PKH: (bitcoin.SpendKind.P2TR, 546),
    ScriptType.P2SH: (bitcoin.SpendKind.P2TR, 540),
}


class InputSignatureError(SignatureAssemblyError):
    """A signature for one input is malformed, high-s or does not verify; names the input."""

    def __init__(self, input_index: int, reason: str) -> None:
        super().__init__(reason, field=f"signatures[{input_index}]")
        self.input_index = input_index


@dataclass(frozen=True, slots=True)
class SpendableOutput:
    """A UTXO of the source address: ``txid`` as RPC and explorers show it (big-endian
    hex), the output index, its value in satoshi and, when the node says, the hash of
    the block that holds it (to fetch its transaction from a node without an index)."""

    txid: str
    vout: int
    amount_sat: int
    block_hash: str | None = None


@dataclass(frozen=True, slots=True)
class BitcoinSpend:
    """A P2WPKH spend ready for signing.

    ``psbt`` is a BIP174 version 0 PSBT with a witness UTXO on every input; output 0 pays
    the destination and output 1, when ``change_sat`` is not 0, returns change to the
    source address. ``vsize`` is the estimate the fee was computed for (worst-case
    72-byte signatures), so the signed transaction is at most that large.
    """

    psbt: bytes
    fee_sat: int
    change_sat: int
    input_count: int
    vsize: int
    inputs: tuple[SpendableOutput, ...]
    """The UTXOs spent, in input order (to reserve them until the spend confirms)."""


def _fee_rate(value: int | Decimal) -> bitcoin.FeeRate:
    """Parse a sat/vB rate given as an int or an exact Decimal (at most three decimals).

    Raises:
        InvalidAmountError: a float, bool, non-finite, negative or absurd rate.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidAmountError("must be an int or Decimal sat/vB rate", field="fee_rate")
    try:
        text = format(Decimal(value), "f")
    except (InvalidOperation, ValueError):
        raise InvalidAmountError("must be a finite sat/vB rate", field="fee_rate") from None
    return bitcoin.FeeRate.from_sat_per_vb(text)


def _utxo(index: int, item: SpendableOutput) -> bitcoin.Utxo:
    field = f"utxos[{index}]"
    if len(item.txid) != 64:
        raise DecodeError("txid must be 64 hex digits", field=f"{field}.txid")
    if isinstance(item.vout, bool) or not isinstance(item.vout, int):
        raise DecodeError("vout must be an integer", field=f"{field}.vout")
    amount = item.amount_sat
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_SATOSHI:
        raise InvalidAmountError("must be a positive number of satoshi", field=f"{field}.amount")
    try:
        outpoint = bitcoin.OutPoint.from_display(item.txid, item.vout)
    except DecodeError as exc:
        raise DecodeError(str(exc), field=field) from None
    return bitcoin.Utxo(outpoint, Satoshi(amount), bitcoin.SpendKind.P2WPKH)


def build_p2wpkh_spend(
    *,
    network: str,
    source_address: str,
    source_pubkey: bytes,
    utxos: Sequence[SpendableOutput],
    destination: str,
    amount_sat: int,
    fee_rate_sat_per_vb: int | Decimal,
) -> BitcoinSpend:
    """Build the PSBT paying ``amount_sat`` to ``destination`` from the P2WPKH address of
    ``source_pubkey``, with change back to ``source_address`` (omitted when it would be
    dust; the remainder then goes to the fee).

    Inputs signal replaceability (BIP125 nSequence) so a stuck spend can be bumped; the
    locktime is 0.

    Raises:
        InvalidAddressError: an unknown network, a source address that is not the
            key's P2WPKH address, a destination of another network or malformed.
        UnsupportedError: a destination script shardvault cannot size (not P2PKH, P2SH,
            P2WPKH, P2WSH or P2TR).
        InvalidAmountError: an amount that is not positive or below the destination's
            dust limit, a bad fee rate, or a UTXO value that is not positive.
        DecodeError: a malformed or repeated UTXO reference.
        InsufficientFundsError: the UTXOs cannot pay the amount and the fee.
    """
    btc_network = bitcoin.Network.from_name(network)
    try:
        source_script = bitcoin.p2wpkh_script(check_compressed_pubkey(source_pubkey))
    except InvalidAddressError as exc:
        raise InvalidAddressError(str(exc), field="source_pubkey") from None
    if (
        bitcoin.script_pubkey_for_address(source_address, btc_network, field="source_address")
        != source_script
    ):
        raise InvalidAddressError(
            "is not the P2WPKH address of the source key", field="source_address"
        )
    destination_script = bitcoin.script_pubkey_for_address(
        destination, btc_network, field="destination"
    )
    sized = _PAYMENT_KINDS.get(classify(destination_script))
    if sized is None:
        raise UnsupportedError("cannot pay this kind of output script", field="destination")
    kind, dust = sized
    if isinstance(amount_sat, bool) or not isinstance(amount_sat, int) or amount_sat <= 0:
        raise InvalidAmountError("must be a positive number of satoshi", field="amount")
    if amount_sat < dust:
        raise InvalidAmountError(f"is below the dust limit of {dust} sat", field="amount")
    if amount_sat > MAX_SATOSHI:
        raise InvalidAmountError("exceeds 21,000,000 BTC", field="amount")
    fee_rate = _fee_rate(fee_rate_sat_per_vb)
    candidates = [_utxo(i, u) for i, u in enumerate(utxos)]
    seen: set[bitcoin.OutPoint] = set()
    for i, candidate in enumerate(candidates):
        if candidate.outpoint in seen:
            raise DecodeError("the same output is listed twice", field=f"utxos[{i}]")
        seen.add(candidate.outpoint)

    selection = bitcoin.select_coins(
        candidates,
        [bitcoin.Payment(Satoshi(amount_sat), kind)],
        fee_rate,
        bitcoin.SpendKind.P2WPKH,
    )
    outputs = [bitcoin.TxOut(Satoshi(amount_sat), destination_script)]
    if selection.change is not None:
        outputs.append(bitcoin.TxOut(selection.change, source_script))
    psbt = bitcoin.create_psbt(
        [bitcoin.TxIn(u.outpoint, sequence=SEQUENCE_RBF) for u in selection.inputs], outputs
    )
    for index, utxo in enumerate(selection.inputs):
        psbt = bitcoin.set_witness_utxo(psbt, index, bitcoin.TxOut(utxo.value, source_script))
    # The fee is what the inputs leave over; selection and PSBT must agree on it.
    assert psbt.fee() == selection.fee
    by_outpoint = {bitcoin.OutPoint.from_display(u.txid, u.vout): u for u in utxos}
    return BitcoinSpend(
        psbt=psbt.serialize(),
        fee_sat=int(selection.fee),
        change_sat=0 if selection.change is None else int(selection.change),
        input_count=len(selection.inputs),
        vsize=selection.vsize,
        inputs=tuple(by_outpoint[u.outpoint] for u in selection.inputs),
    )


def prove_input_amounts(spend: BitcoinSpend, previous: Mapping[str, bytes]) -> BitcoinSpend:
    """``spend`` with every input's previous transaction in its PSBT (BIP174
    ``non_witness_utxo``). ``previous`` maps a txid (display hex) to that transaction's
    bytes, as a node returned them.

    Raises:
        DecodeError: a missing or undecodable previous transaction, or one whose txid or
            outputs are not the input's (the Updater's check).
        InvalidAmountError: a previous transaction whose output is not the coin the
            PSBT spends (another amount or script than the scan reported).
    """
    psbt = bitcoin.parse_psbt(spend.psbt)
    for index, coin in enumerate(spend.inputs):
        field = f"inputs[{index}].previous_transaction"
        raw = previous.get(coin.txid)
        if raw is None:
            raise DecodeError("is missing", field=field)
        previous_tx = bitcoin.parse_transaction(raw)
        psbt = bitcoin.set_non_witness_utxo(psbt, index, previous_tx)
        if previous_tx.outputs[coin.vout] != psbt.inputs[index].witness_utxo:
            raise InvalidAmountError(
                f"pays {previous_tx.outputs[coin.vout].value} sat to another script or "
                f"amount than the {coin.amount_sat} sat coin being spent",
                field=field,
            )
    return dataclasses.replace(spend, psbt=psbt.serialize())


def psbt_input_sighash(psbt: bytes, index: int) -> bytes:
    """The 32-byte digest input ``index`` of ``psbt`` is signed over (BIP143 for P2WPKH).

    Raises:
        DecodeError: not a PSBT.
        ChainError: no such input, or an input that cannot be signed
            (:func:`shardvault.chains.bitcoin.input_sighash`).
    """
    return bitcoin.input_sighash(bitcoin.parse_psbt(psbt), index)


def _der_signature(index: int, signature: bytes, digest: bytes, pubkey: bytes) -> bytes:
    """Check one 65-byte ``r || s || recovery_id`` signature and return it as DER.

    Raises:
        InputSignatureError: wrong length, r or s out of range, high s, or a signature
            that does not verify for ``digest`` under ``pubkey``.
    """
    if len(signature) != 65:
        raise InputSignatureError(index, "must be 65 bytes (r || s || recovery id)")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
        raise InputSignatureError(index, "r and s must lie in [1, n-1]")
    if s > SECP256K1_ORDER // 2:
        raise InputSignatureError(index, "s is high; Bitcoin relays low-s signatures only")
    der: bytes = cdata_to_der(deserialize_compact(signature[:64]))
    if not PublicKey(pubkey).verify(der, digest, hasher=None):
        raise InputSignatureError(index, "does not verify for this input's sighash")
    return der


def finish_p2wpkh_spend(
    psbt: bytes, signatures: Sequence[bytes], pubkey: bytes
) -> tuple[bytes, str]:
    """Attach one signature per input (in input order), finalize and extract.

    Each signature is the co-signers' 65-byte ``r || s || recovery_id`` (low s). It is
    verified with coincurve against the input's BIP143 sighash before it is attached as
    DER plus SIGHASH_ALL.

    Returns:
        The raw network transaction (with witnesses) and its txid (display hex).

    Raises:
        DecodeError: ``psbt`` is not a PSBT.
        InvalidAddressError: ``pubkey`` is not a compressed secp256k1 key.
        SignatureAssemblyError: not one signature per input.
        InputSignatureError: a signature that is malformed or does not verify, naming
            its input; also an input that does not spend ``pubkey``'s P2WPKH output.
        ChainError: an input that cannot be signed or finalized (as
            :func:`shardvault.chains.bitcoin.add_ecdsa_signature` and ``finalize``).
    """
    parsed = bitcoin.parse_psbt(psbt)
    ours = bitcoin.p2wpkh_script(check_compressed_pubkey(pubkey))
    if len(signatures) != len(parsed.inputs):
        raise SignatureAssemblyError(
            f"{len(signatures)} signatures for {len(parsed.inputs)} inputs", field="signatures"
        )
    for index, signature in enumerate(signatures):
        spent = parsed.spent_output(index)
        if spent is None or spent.script_pubkey != ours:
            raise InputSignatureError(index, "the input does not spend this key's P2WPKH output")
        digest = bitcoin.input_sighash(parsed, index)
        der = _der_signature(index, bytes(signature), digest, pubkey)
        parsed = bitcoin.add_ecdsa_signature(
            parsed, index, pubkey, der + bytes([bitcoin.SIGHASH_ALL])
        )
    tx = bitcoin.extract_transaction(bitcoin.finalize(parsed))
    return tx.serialize(), tx.txid_hex
