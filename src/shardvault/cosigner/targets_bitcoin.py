"""Bitcoin PSBT inputs, recomputed from the payload: a taproot key-path input of a FROST
key, or a P2WPKH input of a CGGMP21 key (BIP143)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from shardvault.chains import bitcoin
from shardvault.chains.errors import ChainError
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.target import (
    PSBT_DIGEST_DOMAIN,
    BitcoinFee,
    SigningTarget,
    asset_fields,
    base_fields,
    network_name,
    policy_request,
    resolve_asset,
)
from shardvault.policy import AssetRegistry, Chain, TransactionRequest


def _bitcoin_network(
    meta: Mapping[str, object], registry: AssetRegistry | None
) -> tuple[str, bitcoin.Network]:
    """The network a Bitcoin payload is for (a PSBT does not say): the one Bitcoin
    network of the signed registry, or ``bitcoin`` (mainnet) without one; its name
    sets the address encoding. A ``metadata.network`` naming another is refused.

    Raises:
        RequestRefused: check ``network`` (:func:`.target.network_name`).
    """
    name = network_name(registry, Chain.BITCOIN, meta)
    try:
        return name, bitcoin.Network.from_name(name)
    except ChainError:  # pragma: no cover - the registry's parser checks the name
        raise RequestRefused("network", f"{name!r} is not a Bitcoin network") from None


def bitcoin_target(
    payload: bytes,
    meta: Mapping[str, object],
    key: bytes | None,
    input_index: int,
    *,
    ecdsa_key: bytes | None = None,
    registry: AssetRegistry | None = None,
) -> SigningTarget:
    """Check a PSBT input that ``key`` (a BIP340 x-only group key, key path only) spends
    and form the policy view: the one output not paying back to the key is the
    destination.

    With ``ecdsa_key`` (a compressed secp256k1 key, derived along the request's path)
    instead of ``key``, the input is a P2WPKH spend of that key: see
    :func:`bitcoin_p2wpkh_target`. The network and BTC's id come from ``registry``
    (:func:`_bitcoin_network`).

    Raises:
        RequestRefused: not a PSBT, the input is not ours, a sighash type other than
            DEFAULT or ALL, or not a simple payment; no key, or both kinds of key.
    """
    if ecdsa_key is not None:
        if key is not None:
            raise RequestRefused("key", "give a BIP340 key or an ECDSA key, not both")
        return bitcoin_p2wpkh_target(payload, meta, ecdsa_key, input_index, registry=registry)
    if key is None or len(key) != 32:
        raise RequestRefused("key", "taproot needs a BIP340 vault key")
    name, network = _bitcoin_network(meta, registry)
    try:
        psbt = bitcoin.parse_psbt(payload)
        ours = bitcoin.output_key(key).script_pubkey
        tx = psbt.unsigned_transaction()
        if not 0 <= input_index < len(tx.inputs):
            raise RequestRefused("malformed", f"input {input_index} does not exist")
        spent = psbt.spent_output(input_index)
        if spent is None or spent.script_pubkey != ours:
            raise RequestRefused("payload", f"input {input_index} is not the vault key's")
        # DEFAULT and ALL commit to every input (outpoint, amount, script) and every
        # output (BIP341 "Common signature message"): NONE or SINGLE would let the
        # outputs be rewritten after signing, ANYONECANPAY the other inputs.
        hash_type = psbt.inputs[input_index].sighash_type
        if hash_type not in (None, bitcoin.SIGHASH_DEFAULT, bitcoin.SIGHASH_ALL):
            raise RequestRefused(
                "payload",
                f"input {input_index} asks for sighash type {hash_type:#x}; only DEFAULT "
                "or ALL is signed",
            )
        sighashes = [bitcoin.input_sighash(psbt, i) for i in range(len(tx.inputs))]
    except ChainError as exc:
        raise RequestRefused("payload", f"PSBT refused: {exc}") from None
    request, btc = _psbt_payment(meta, registry, name, network, tx, ours, sighashes)
    # The signature commits to every input's amount, so each is proven by it.
    return SigningTarget(
        sighashes[input_index],
        request,
        taproot_merkle_root=b"",
        fee=_fee(psbt, name, unproven=()),
        replay_key=_outpoints_key(tx),
        chain_asset=btc,
    )


def _fee(psbt: bitcoin.Psbt, name: str, unproven: tuple[int, ...]) -> BitcoinFee:
    """The fee (inputs less outputs) and the signed virtual size of ``psbt``.

    Raises:
        RequestRefused: ``payload``: an input's amount is unknown, or the outputs exceed
            the inputs.
    """
    try:
        fee = psbt.fee()
        vsize = bitcoin.signed_vsize(psbt)
    except ChainError as exc:
        raise RequestRefused("payload", f"PSBT refused: {exc}") from None
    if fee is None:
        raise RequestRefused("payload", "an input's amount is unknown, so is the fee")
    return BitcoinFee(name, int(fee), vsize, unproven)


def _outpoints_key(tx: bitcoin.Transaction) -> str:
    """The replay key of a Bitcoin transaction: the outpoints it spends, sorted (each
    can be spent once; a replacement spending the same ones has the same key)."""
    spent = sorted(f"{i.prevout.txid_hex}:{i.prevout.index}" for i in tx.inputs)
    return "bitcoin:" + ",".join(spent)


def _psbt_payment(
    meta: Mapping[str, object],
    registry: AssetRegistry | None,
    name: str,
    network: bitcoin.Network,
    tx: bitcoin.Transaction,
    ours: bytes,
    sighashes: Sequence[bytes],
) -> tuple[TransactionRequest, str]:
    """The policy view of a PSBT that pays one output not back to ``ours``: a transfer of
    that output's value in the network's native coin (the registry's id for it) to its
    address; the digest covers every input's sighash. Answers the view and the coin as
    an intent names it (``BTC``).

    Raises:
        RequestRefused: not a payment to exactly one standard address; check ``asset``:
            a registry that lists no native coin on the network.
    """
    payments = [o for o in tx.outputs if o.script_pubkey != ours]
    try:
        destination = None
        if len(payments) == 1:
            destination = bitcoin.address_from_script(payments[0].script_pubkey, network)
    except ChainError as exc:
        raise RequestRefused("payload", f"PSBT refused: {exc}") from None
    if destination is None:
        raise RequestRefused("payload", "only a payment to one standard address can be checked")
    digest = hashlib.sha256(PSBT_DIGEST_DOMAIN + b"".join(sighashes)).digest()
    btc = resolve_asset(registry, Chain.BITCOIN)
    fields = base_fields(meta, digest, "transfer")
    fields["network"] = name
    fields["destination"] = destination
    fields["asset"] = asset_fields(btc)
    fields["amount"] = str(payments[0].value)
    return policy_request(fields), btc.chain_asset


def bitcoin_p2wpkh_target(
    payload: bytes,
    meta: Mapping[str, object],
    ecdsa_key: bytes,
    input_index: int,
    *,
    registry: AssetRegistry | None = None,
) -> SigningTarget:
    """Check a PSBT whose input ``input_index`` spends the P2WPKH output of ``ecdsa_key``
    (BIP141 ``OP_0 <HASH160(key)>``) and form the policy view; the message is that
    input's BIP143 sighash (SIGHASH_ALL).

    Every input must spend the same key's P2WPKH output: a co-signer refuses a PSBT
    that mixes in inputs it cannot see as its own, so the whole amount spent is ours.
    Every input must use SIGHASH_ALL (no sighash type, or 1), so each signature
    commits to all inputs and outputs. The policy view: a transfer of BTC (8 decimals)
    from the key's P2WPKH address to the one output not paying back to it, of that
    output's value in satoshi, on the Bitcoin network of the signed registry
    (:func:`_bitcoin_network`).

    Amounts (BIP143's fee attack). A BIP143 signature commits to the amount of its own
    input only, and the amounts here come from the witness UTXOs the coordinator
    supplies. An understated amount of the input being signed makes its signature
    invalid on chain, so that lie gains nothing; but a coordinator that shows each
    request (one per input) understated amounts for the *other* inputs could collect
    valid signatures for a transaction whose true fee is larger than any single view
    suggests. The outputs are committed by every signature (``hashOutputs``), so the
    destination, the amount paid and the change checked here are exactly what the
    transaction pays: the most such a coordinator can do is give the excess to a
    miner as fee, never redirect it. Where an input carries its previous transaction
    (``non_witness_utxo``), the PSBT parser checks that its txid is the outpoint's and
    the signer checks that it agrees with the witness UTXO, which proves that amount.
    The target's :class:`~.target.BitcoinFee` lists the other inputs without one as
    unproven, and :func:`~.fees.check_fee` refuses them wherever a fee cap applies.

    Raises:
        RequestRefused: ``key``: not a compressed secp256k1 point; ``network``: see
            :func:`_bitcoin_network`; ``malformed``: a missing input; ``payload``: not a
            PSBT, an input that
            does not spend the key's P2WPKH output, a sighash type other than ALL, a
            previous transaction that does not match, or not a payment to exactly one
            standard address.
    """
    try:
        ours = bitcoin.p2wpkh_script(ecdsa_key)
    except ChainError:
        raise RequestRefused("key", "the signing key is not a compressed secp256k1 key") from None
    name, network = _bitcoin_network(meta, registry)
    try:
        psbt = bitcoin.parse_psbt(payload)
        tx = psbt.unsigned_transaction()
    except ChainError as exc:
        raise RequestRefused("payload", f"PSBT refused: {exc}") from None
    if not 0 <= input_index < len(tx.inputs):
        raise RequestRefused("malformed", f"input {input_index} does not exist")
    # The input being signed first, so its refusal names it; then every other input.
    for i in (input_index, *(j for j in range(len(tx.inputs)) if j != input_index)):
        spent = psbt.spent_output(i)
        if spent is None or spent.script_pubkey != ours:
            raise RequestRefused(
                "payload",
                f"input {i} does not spend the vault key's P2WPKH output "
                "(every input must be the key's own)",
            )
        hash_type = psbt.inputs[i].sighash_type
        if hash_type is not None and hash_type != bitcoin.SIGHASH_ALL:
            raise RequestRefused(
                "payload", f"input {i} asks for sighash type {hash_type:#x}; only ALL is signed"
            )
    try:
        # input_sighash runs the BIP174 signer checks on each input, among them that a
        # non-witness UTXO agrees with the witness UTXO.
        sighashes = [bitcoin.input_sighash(psbt, i) for i in range(len(tx.inputs))]
        source = bitcoin.address_from_script(ours, network)
    except ChainError as exc:
        raise RequestRefused("payload", f"PSBT refused: {exc}") from None
    request, btc = _psbt_payment(meta, registry, name, network, tx, ours, sighashes)
    # BIP143 commits to the amount of the input being signed only; another input's
    # amount is proven by its previous transaction, whose txid the parser checked.
    unproven = tuple(
        i
        for i, psbt_input in enumerate(psbt.inputs)
        if i != input_index and psbt_input.non_witness_utxo is None
    )
    return SigningTarget(
        sighashes[input_index],
        request,
        source_address=source,
        fee=_fee(psbt, name, unproven),
        replay_key=_outpoints_key(tx),
        chain_asset=btc,
    )
