"""The roles of a PSBT (BIP174 "Roles") over the model of :mod:`.psbt`.

:func:`create_psbt` is the Creator; the ``set_``/``add_`` functions the Updater;
:func:`add_ecdsa_signature` and :func:`add_taproot_key_signature` are the Signer for a
signature made elsewhere (an MPC quorum, an HSM), which they verify against the sighash
computed here before attaching it; :func:`finalize` the Input Finalizer for P2WPKH
(native or nested in P2SH, BIP141) and taproot key-path inputs;
:func:`extract_transaction` the Transaction Extractor. :func:`check_input_signable`
applies BIP174's "Signer" checks that a signer must refuse (a witness UTXO for a
non-witness input, a redeemScript or witnessScript that does not hash to the script it
claims).
"""

from collections.abc import Iterable, Sequence

from coincurve import PublicKey, PublicKeyXOnly

from shardvault.chains.bitcoin.encoding import (
    compact_size,
    hash160,
    sha256,
    u32,
)
from shardvault.chains.bitcoin.models import (
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    serialize_witness,
)
from shardvault.chains.bitcoin.psbt import (
    _KEPT_AFTER_FINALIZE,
    _KNOWN_INPUT_TYPES,
    GLOBAL_UNSIGNED_TX,
    IN_BIP32_DERIVATION,
    IN_FINAL_SCRIPTSIG,
    IN_FINAL_SCRIPTWITNESS,
    IN_NON_WITNESS_UTXO,
    IN_PARTIAL_SIG,
    IN_SIGHASH_TYPE,
    IN_TAP_BIP32_DERIVATION,
    IN_TAP_INTERNAL_KEY,
    IN_TAP_KEY_SIG,
    IN_WITNESS_UTXO,
    Psbt,
    PsbtSignerRefusal,
    _build,
)
from shardvault.chains.bitcoin.psbt_fields import (
    KeyOrigin,
    PsbtMap,
    PsbtRecord,
    _is_strict_der,
    _pubkey_key,
    _schnorr_sig,
    _xonly_key,
)
from shardvault.chains.bitcoin.script import (
    ScriptType,
    check_compressed_pubkey,
    classify,
    is_witness_program,
    p2wpkh_script_code,
)
from shardvault.chains.bitcoin.sighash import (
    SIGHASH_ALL,
    SIGHASH_DEFAULT,
    segwit_v0_sighash,
    taproot_key_path_sighash,
)
from shardvault.chains.bitcoin.taproot import output_key
from shardvault.chains.errors import (
    ChainError,
    DecodeError,
    InvalidAddressError,
    SignatureAssemblyError,
    UnsupportedError,
)

# --- Creator and Updater -----------------------------------------------------------------


def _with_record(psbt_map: PsbtMap, record: PsbtRecord) -> PsbtMap:
    # Replace a record with the same key, or insert before the first larger key so that
    # maps built here stay in key order.
    out = [r for r in psbt_map if r.key != record.key]
    position = next((i for i, r in enumerate(out) if r.key > record.key), len(out))
    out.insert(position, record)
    return tuple(out)


def _replace_input(psbt: Psbt, index: int, records: PsbtMap) -> Psbt:
    maps = list(psbt.input_maps)
    maps[index] = records
    return _build(psbt.global_map, maps, psbt.output_maps)


def _check_input_index(psbt: Psbt, index: int) -> None:
    if not 0 <= index < len(psbt.inputs):
        raise ChainError(f"input {index} does not exist", field="input_index")


def create_psbt(
    inputs: Sequence[OutPoint | TxIn],
    outputs: Sequence[TxOut],
    *,
    tx_version: int = 2,
    locktime: int = 0,
) -> Psbt:
    """Creator (BIP174): a version 0 PSBT around an unsigned transaction.

    Raises:
        DecodeError: an input that carries a scriptSig or witness.
    """
    tx_inputs = tuple(i if isinstance(i, TxIn) else TxIn(i) for i in inputs)
    for i, txin in enumerate(tx_inputs):
        if txin.script_sig or txin.witness:
            raise DecodeError("must not carry a scriptSig or witness", field=f"inputs[{i}]")
    tx = Transaction(tx_version, tx_inputs, tuple(outputs), locktime)
    global_map = (PsbtRecord(GLOBAL_UNSIGNED_TX, b"", tx.serialize(include_witness=False)),)
    return _build(global_map, [() for _ in tx.inputs], [() for _ in tx.outputs])


def set_witness_utxo(psbt: Psbt, index: int, utxo: TxOut) -> Psbt:
    """Updater: record the output input ``index`` spends (amount and script)."""
    _check_input_index(psbt, index)
    record = PsbtRecord(IN_WITNESS_UTXO, b"", utxo.serialize())
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def set_non_witness_utxo(psbt: Psbt, index: int, previous_tx: Transaction) -> Psbt:
    """Updater: the whole transaction input ``index`` spends from.

    Raises:
        DecodeError: it is not the transaction the input names, or lacks the output.
    """
    _check_input_index(psbt, index)
    record = PsbtRecord(IN_NON_WITNESS_UTXO, b"", previous_tx.serialize())
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def set_sighash_type(psbt: Psbt, index: int, hash_type: int) -> Psbt:
    """Updater: the sighash type the signer must use for input ``index``."""
    _check_input_index(psbt, index)
    if not 0 <= hash_type <= 0xFFFF_FFFF:
        raise UnsupportedError("must fit in 32 bits", field="sighash_type")
    record = PsbtRecord(IN_SIGHASH_TYPE, b"", u32(hash_type))
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def add_bip32_derivation(psbt: Psbt, index: int, pubkey: bytes, origin: KeyOrigin) -> Psbt:
    """Updater: the key origin of a public key that signs input ``index``."""
    _check_input_index(psbt, index)
    _pubkey_key(pubkey, f"inputs[{index}].bip32_derivation")
    record = PsbtRecord(IN_BIP32_DERIVATION, pubkey, origin.serialize())
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def set_tap_internal_key(psbt: Psbt, index: int, internal_key: bytes) -> Psbt:
    """Updater: the taproot internal key of input ``index`` (BIP371)."""
    _check_input_index(psbt, index)
    _xonly_key(internal_key, f"inputs[{index}].tap_internal_key")
    record = PsbtRecord(IN_TAP_INTERNAL_KEY, b"", internal_key)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def add_tap_bip32_derivation(
    psbt: Psbt, index: int, x_only: bytes, origin: KeyOrigin, leaf_hashes: Iterable[bytes] = ()
) -> Psbt:
    """Updater: the key origin of a taproot key of input ``index`` (BIP371)."""
    _check_input_index(psbt, index)
    _xonly_key(x_only, f"inputs[{index}].tap_bip32_derivation")
    hashes = list(leaf_hashes)
    if any(len(h) != 32 for h in hashes):
        raise DecodeError("leaf hashes must be 32 bytes", field="leaf_hashes")
    value = compact_size(len(hashes)) + b"".join(hashes) + origin.serialize()
    record = PsbtRecord(IN_TAP_BIP32_DERIVATION, x_only, value)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


# --- Signer ---------------------------------------------------------------------------------


def _spent_script(psbt: Psbt, index: int) -> bytes:
    spent = psbt.spent_output(index)
    if spent is None:
        raise PsbtSignerRefusal(
            "has neither a witness nor a non-witness UTXO", field=f"inputs[{index}]"
        )
    return spent.script_pubkey


def check_input_signable(psbt: Psbt, index: int) -> bytes:
    """BIP174 "Signer" checks; returns the script the input's signature commits to.

    Raises:
        PsbtSignerRefusal: no UTXO; a redeemScript that does not hash to the P2SH output;
            a witnessScript that does not hash to the P2WSH program; a witness UTXO for an
            input that is not a witness program; a taproot internal key that does not
            tweak to the output key.
    """
    _check_input_index(psbt, index)
    p = psbt.inputs[index]
    field = f"inputs[{index}]"
    script = _spent_script(psbt, index)
    if p.redeem_script is not None:
        if classify(script) is not ScriptType.P2SH or script[2:22] != hash160(p.redeem_script):
            raise PsbtSignerRefusal("redeemScript does not match the scriptPubKey", field=field)
        script = p.redeem_script
    if p.witness_script is not None:
        if classify(script) is not ScriptType.P2WSH or script[2:] != sha256(p.witness_script):
            raise PsbtSignerRefusal("witnessScript does not match the witness program", field=field)
    if p.witness_utxo is not None and p.non_witness_utxo is None and not is_witness_program(script):
        raise PsbtSignerRefusal("a witness UTXO is given for a non-witness input", field=field)
    if p.non_witness_utxo is not None and p.witness_utxo is not None:
        if p.non_witness_utxo.outputs[psbt.prevout(index).index] != p.witness_utxo:
            raise PsbtSignerRefusal("witness and non-witness UTXOs disagree", field=field)
    if classify(script) is ScriptType.P2TR and p.tap_internal_key is not None:
        tweaked = output_key(p.tap_internal_key, p.tap_merkle_root)
        if tweaked.x_only != script[2:]:
            raise PsbtSignerRefusal(
                "taproot internal key does not tweak to the output key", field=field
            )
    return script


def input_sighash(psbt: Psbt, index: int, *, require_full_utxo: bool = False) -> bytes:
    """The digest a signer signs for input ``index``: BIP143 for P2WPKH, BIP341 key path
    for P2TR, using the input's sighash type (default ALL, or DEFAULT for taproot).

    A BIP143 signature commits only to its own input's amount, so a signer shown false
    amounts for the other inputs can be led to pay a hidden fee; ``require_full_utxo``
    makes P2WPKH signing need the whole previous transaction (``non_witness_utxo``),
    whose txid proves the amount, of every input but a taproot one (native or
    P2SH-wrapped segwit v0, and legacy). Taproot commits to every input's amount, so
    signing one does not need this, and a taproot sibling's own signature commits to
    the amounts of all.

    Raises:
        PsbtSignerRefusal: as :func:`check_input_signable`, a taproot input whose
            sibling inputs lack their UTXOs, or a missing previous transaction under
            ``require_full_utxo``.
        UnsupportedError: any other script type.
    """
    script = check_input_signable(psbt, index)
    p = psbt.inputs[index]
    tx = psbt.unsigned_transaction()
    kind = classify(script)
    if kind is ScriptType.P2WPKH:
        if require_full_utxo:
            for i, other in enumerate(psbt.inputs):
                spent_i = psbt.spent_output(i)
                # Every input but a taproot one (native v0, P2SH-wrapped v0, legacy):
                # only its own signature, if any, commits to its amount.
                is_taproot = spent_i is not None and classify(spent_i.script_pubkey) is (
                    ScriptType.P2TR
                )
                if not is_taproot and other.non_witness_utxo is None:
                    raise PsbtSignerRefusal(
                        "needs the previous transaction to prove its amount",
                        field=f"inputs[{i}].non_witness_utxo",
                    )
        spent = psbt.spent_output(index)
        assert spent is not None
        hash_type = SIGHASH_ALL if p.sighash_type is None else p.sighash_type
        return segwit_v0_sighash(tx, index, p2wpkh_script_code(script[2:]), spent.value, hash_type)
    if kind is ScriptType.P2TR:
        spent_outputs = []
        for i in range(len(tx.inputs)):
            spent_i = psbt.spent_output(i)
            if spent_i is None:
                raise PsbtSignerRefusal(
                    "taproot signing needs every input's UTXO", field=f"inputs[{i}]"
                )
            spent_outputs.append(spent_i)
        hash_type = SIGHASH_DEFAULT if p.sighash_type is None else p.sighash_type
        return taproot_key_path_sighash(tx, index, spent_outputs, hash_type)
    raise UnsupportedError(
        f"signing {kind.value} inputs is not supported", field=f"inputs[{index}]"
    )


def add_ecdsa_signature(psbt: Psbt, index: int, pubkey: bytes, signature: bytes) -> Psbt:
    """Signer: attach an ECDSA signature (DER plus the sighash byte) to a P2WPKH input.

    The signature is verified against :func:`input_sighash` and the key against the
    witness program before it is attached.

    Raises:
        PsbtSignerRefusal, UnsupportedError: as :func:`input_sighash`.
        SignatureAssemblyError: not P2WPKH, a key that is not the input's, a sighash byte
            other than the input's, non-DER or high-s encoding, or a signature that does
            not verify.
    """
    field = f"inputs[{index}].partial_sig"
    digest = input_sighash(psbt, index)
    script = _spent_script(psbt, index)
    if classify(script) is not ScriptType.P2WPKH:
        raise SignatureAssemblyError("ECDSA signatures are for P2WPKH inputs", field=field)
    try:
        check_compressed_pubkey(pubkey, field)
    except InvalidAddressError as exc:
        raise SignatureAssemblyError(str(exc)) from None
    if hash160(pubkey) != script[2:]:
        raise SignatureAssemblyError("public key does not match the witness program", field=field)
    expected_type = psbt.inputs[index].sighash_type
    expected_type = SIGHASH_ALL if expected_type is None else expected_type
    if len(signature) < 2 or signature[-1] != expected_type:
        raise SignatureAssemblyError(f"sighash byte must be {expected_type:#04x}", field=field)
    if not _is_strict_der(signature[:-1]):
        raise SignatureAssemblyError("signature is not strict DER", field=field)
    # libsecp256k1 rejects high-s signatures, as Bitcoin's standardness rules (BIP146) do.
    if not PublicKey(pubkey).verify(signature[:-1], digest, hasher=None):
        raise SignatureAssemblyError("signature does not verify for this input", field=field)
    record = PsbtRecord(IN_PARTIAL_SIG, pubkey, signature)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def add_taproot_key_signature(psbt: Psbt, index: int, signature: bytes) -> Psbt:
    """Signer: attach a BIP340 signature (64 bytes, or 65 with a hash type) to a P2TR
    input's key path, after verifying it against the output key and :func:`input_sighash`.

    Raises:
        PsbtSignerRefusal, UnsupportedError: as :func:`input_sighash`.
        SignatureAssemblyError: not P2TR, wrong length, a hash type other than the
            input's, or a signature that does not verify.
    """
    field = f"inputs[{index}].tap_key_sig"
    digest = input_sighash(psbt, index)
    script = _spent_script(psbt, index)
    if classify(script) is not ScriptType.P2TR:
        raise SignatureAssemblyError("Schnorr key-path signatures are for P2TR", field=field)
    try:
        _schnorr_sig(signature, field)
    except DecodeError as exc:
        raise SignatureAssemblyError(str(exc)) from None
    expected_type = psbt.inputs[index].sighash_type or SIGHASH_DEFAULT
    actual_type = signature[64] if len(signature) == 65 else SIGHASH_DEFAULT
    if actual_type != expected_type:
        raise SignatureAssemblyError(
            f"hash type {actual_type:#04x} is not the input's {expected_type:#04x}", field=field
        )
    if not PublicKeyXOnly(script[2:]).verify(signature[:64], digest):
        raise SignatureAssemblyError("signature does not verify for this input", field=field)
    record = PsbtRecord(IN_TAP_KEY_SIG, b"", signature)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


# --- Finalizer and Extractor -----------------------------------------------------------------


def finalize(psbt: Psbt) -> Psbt:
    """Input Finalizer: build the final scriptSig and witness of every signed P2WPKH
    input, native or nested in P2SH, and of every signed P2TR key-path input, and clear
    the fields BIP174 says to clear. Already final inputs are left alone.

    Raises:
        PsbtSignerRefusal: as :func:`check_input_signable`.
        SignatureAssemblyError: an input without the signature it needs.
        UnsupportedError: an input of another script type, among them P2SH-wrapped P2WSH,
            P2SH with a non-segwit redeemScript, and a P2SH-wrapped witness version 1
            program (which BIP341 says is not taproot).
    """
    maps = list(psbt.input_maps)
    for index, p in enumerate(psbt.inputs):
        if p.is_finalized:
            continue
        # For a P2SH input this is the redeemScript, already checked against the output.
        script = check_input_signable(psbt, index)
        kind = classify(script)
        nested = p.redeem_script is not None
        script_sig: bytes | None = None
        if kind is ScriptType.P2WPKH:
            sigs = [(k, s) for k, s in p.partial_sigs if hash160(k) == script[2:]]
            if not sigs:
                raise SignatureAssemblyError(
                    "has no signature for its key", field=f"inputs[{index}].partial_sig"
                )
            key, sig = sigs[0]
            stack: tuple[bytes, ...] = (sig, key)
            if nested:
                # BIP141 "P2WPKH nested in BIP16 P2SH": the scriptSig is one direct push
                # of the 22-byte redeemScript (opcode 0x16 pushes the next 22 bytes).
                script_sig = bytes([len(script)]) + script
        elif kind is ScriptType.P2TR and not nested:
            if p.tap_key_sig is None:
                raise SignatureAssemblyError(
                    "has no key-path signature", field=f"inputs[{index}].tap_key_sig"
                )
            stack = (p.tap_key_sig,)
        else:
            # BIP341 "Script validation rules": a witness version 1 program inside P2SH is
            # not taproot, so a key-path witness is not what spends it.
            wrapped = " inside P2SH" if nested else ""
            raise UnsupportedError(
                f"finalizing {kind.value} inputs{wrapped} is not supported",
                field=f"inputs[{index}]",
            )
        kept = tuple(
            r
            for r in maps[index]
            if r.key_type in _KEPT_AFTER_FINALIZE or r.key_type not in _KNOWN_INPUT_TYPES
        )
        if script_sig is not None:
            kept = _with_record(kept, PsbtRecord(IN_FINAL_SCRIPTSIG, b"", script_sig))
        record = PsbtRecord(IN_FINAL_SCRIPTWITNESS, b"", serialize_witness(stack))
        maps[index] = _with_record(kept, record)
    return _build(psbt.global_map, maps, psbt.output_maps)


def extract_transaction(psbt: Psbt) -> Transaction:
    """Transaction Extractor: the network transaction of a fully finalized PSBT.

    Raises:
        SignatureAssemblyError: an input that is not finalized.
    """
    tx = psbt.unsigned_transaction()
    inputs = []
    for index, (txin, p) in enumerate(zip(tx.inputs, psbt.inputs, strict=True)):
        if not p.is_finalized:
            raise SignatureAssemblyError("is not finalized", field=f"inputs[{index}]")
        inputs.append(
            TxIn(
                txin.prevout,
                p.final_script_sig or b"",
                txin.sequence,
                p.final_script_witness or (),
            )
        )
    return Transaction(tx.version, tuple(inputs), tx.outputs, tx.locktime)


def input_is_signed(psbt: Psbt, index: int) -> bool:
    """Whether input ``index`` is final or carries any signature."""
    p = psbt.inputs[index]
    return p.is_finalized or bool(p.partial_sigs) or p.tap_key_sig is not None
