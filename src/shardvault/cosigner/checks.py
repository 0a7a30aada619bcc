"""What a co-signer checks before it signs (DESIGN.md invariant 3).

The coordinator sends the transaction *payload*, never only a digest. The co-signer

1. parses the payload with :mod:`shardvault.chains` and recomputes what it will sign:
   an Ethereum transaction's signing hash (EIP-155/2930/1559), a Solana message's bytes,
   a Bitcoin PSBT input's sighash (BIP341 key path for a FROST key, BIP143 for a
   CGGMP21 key's P2WPKH output); a raw digest only as a
   ``raw_digest_signing`` request, which the policy blocks unless a rule names it;
2. refuses the request if the coordinator's claimed digest differs from the recomputed
   one (a compromised coordinator showing approvers one transaction and the co-signers
   another);
3. builds the policy's view of the request (operation, destination, asset, amount,
   network) *from the payload*; from the coordinator it takes only what the payload
   cannot say: who initiated it, the source vault/wallet, the creation time, the
   network name of a Solana or Bitcoin payload, prices, and a token's decimals;
4. for an Ethereum transaction, checks its fees against the fee cap the signed policy
   sets for its network (:func:`check_fee`, DESIGN.md invariant 12): the worst-case fee
   (gas limit times max fee per gas, or times gas price for legacy and access-list
   transactions) and a fee-market transaction's priority fee per gas. A network without
   a cap gets no fee check;
5. evaluates the signed policy it holds (the head of its :class:`BundleChain`, pinned to
   the admin set) with its own clock and its own history of what it signed, and counts
   only approvals whose signatures verify over the recomputed digest. Anything but
   ``allow`` is a refusal naming the deciding rule.

The payload digest is the chain's signing digest where there is one (Ethereum), SHA-256
of the message for Solana, and for a PSBT SHA-256 over every input's sighash, so one
approval covers the whole transaction; a claimed ``digest`` is compared with it.

When the metadata carries ``transaction_id`` and ``workspace_id`` (the service's
transactions), a transfer's approvals are counted over its *intent digest* instead
(:mod:`shardvault.policy.intent`), recomputed from the parsed payload (network from the
chain id, or for Bitcoin from ``metadata.network``; destination, asset, amount), the
source address of the key the co-signer signs with (for a P2WPKH PSBT, the key's P2WPKH
address), and those two ids. Nonces, fees, UTXOs and change are not in the intent, so
they may be chosen after approval (an Ethereum fee only within the policy's fee cap);
any change of what moves where changes the digest.
Payloads without an intent (raw digests, contract calls, taproot PSBTs) are approved
over the payload digest as before; see ``docs/cosigner.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shardvault.chains import bitcoin, ethereum, solana
from shardvault.chains.errors import ChainError
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import (
    BundleChain,
    Decision,
    Evaluation,
    EvaluationContext,
    History,
    Operation,
    PastTransaction,
    PolicyError,
    SignedApproval,
    TransactionRequest,
    evaluate,
    parse_approval,
    parse_prices,
    parse_request,
)
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.policy.request import UnixSeconds

SOLANA_DIGEST_DOMAIN = b"shardvault/solana/message-digest/v1\x00"
"""Prefix hashed with a Solana message to form its policy digest."""

PSBT_DIGEST_DOMAIN = b"shardvault/bitcoin/psbt-digest/v1\x00"
"""Prefix hashed with every input sighash of a PSBT to form its policy digest."""

KEYGEN_DIGEST_DOMAIN = b"shardvault/cosigner/keygen-digest/v1\x00"
"""Prefix hashed with a key-generation request to form its policy digest."""

MAX_FUTURE_SKEW = 300
"""How far (seconds) a request's ``created_at`` may lie ahead of the co-signer's clock."""

_METADATA = {
    "initiator",
    "source",
    "created_at",
    "network",
    "token_decimals",
    "transaction_id",
    "workspace_id",
}
_INTENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_BITCOIN_NETWORKS = {
    "bitcoin": bitcoin.Network.MAINNET,
    "testnet": bitcoin.Network.TESTNET,
    "signet": bitcoin.Network.SIGNET,
    "regtest": bitcoin.Network.REGTEST,
}


@dataclass(frozen=True, slots=True)
class EvmFee:
    """What an EVM transaction commits to in fees, read from its payload.

    ``max_fee_wei`` is the worst case the sender can pay: the gas limit times
    ``max_fee_per_gas`` (fee-market transactions) or ``gas_price`` (legacy and
    access-list ones). ``priority_fee_per_gas_wei`` is a fee-market transaction's
    ``max_priority_fee_per_gas``; ``None`` for the others, whose tip is the gas price
    less a base fee the co-signer cannot know.
    """

    network: str
    gas_limit: int
    fee_per_gas_wei: int
    priority_fee_per_gas_wei: int | None

    @property
    def max_fee_wei(self) -> int:
        """The worst-case fee in wei."""
        return self.gas_limit * self.fee_per_gas_wei


@dataclass(frozen=True, slots=True)
class SigningTarget:
    """What the co-signer will sign after its checks: the message bytes (a digest, or a
    Solana message), and the policy view they were checked as."""

    message: bytes
    request: TransactionRequest
    taproot_merkle_root: bytes | None = None
    source_address: str | None = None
    """The address the signing key spends from, for a transfer's intent; ``None`` where
    the co-signer cannot derive it (no key given, or not a transfer)."""
    intent: TransferIntent | None = None
    """The intent whose digest approvals were counted over, when there is one."""
    fee: EvmFee | None = None
    """The fees an EVM transaction commits to, checked by :func:`check_fee`; ``None``
    for other chains (their fees are not capped yet)."""
    replay_key: str | None = None
    """What the chain lets be spent only once by this transaction (``ethereum:<chain
    id>:<sender>:<nonce>``, ``solana:<fee payer>:<recent blockhash>``,
    ``bitcoin:<txid>:<index>,...`` over the sorted outpoints spent); ``None`` for a
    raw digest, or where the sender is not known."""
    payload_digest: bytes = b""
    """The digest of the payload itself (the policy digest before an intent replaced
    it), which the record of signed transactions keys on."""


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request that passed every check, with the evaluation that allowed it."""

    target: SigningTarget
    evaluation: Evaluation


def _hex(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise RequestRefused("malformed", f"field {field} must be a hex string")
    text = value[2:] if value.startswith("0x") else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RequestRefused("malformed", f"field {field} is not hex") from None


def _metadata(raw: object) -> dict[str, object]:
    if not isinstance(raw, Mapping):
        raise RequestRefused("malformed", "field metadata must be an object")
    unknown = sorted(set(raw) - _METADATA)
    if unknown:
        # Destination, amount and asset come from the payload, never from the coordinator.
        raise RequestRefused("malformed", f"metadata may not carry {unknown}")
    return dict(raw)


def _policy_request(fields: dict[str, object]) -> TransactionRequest:
    try:
        return parse_request(fields)
    except PolicyError as exc:
        raise RequestRefused("payload", f"cannot form the policy request: {exc}") from None


def _base(meta: Mapping[str, object], digest: bytes, operation: str) -> dict[str, object]:
    fields: dict[str, object] = {"digest": digest.hex(), "operation": operation}
    for name in ("initiator", "source", "created_at"):
        if name not in meta:
            raise RequestRefused("malformed", f"metadata.{name} is required")
        fields[name] = meta[name]
    return fields


def ethereum_target(
    payload: bytes, meta: Mapping[str, object], key: bytes | None = None
) -> SigningTarget:
    """Recompute an Ethereum transaction's signing hash and the policy view.

    ``key`` is the secp256k1 public key the co-signer will sign with (already derived
    along the request's path); a transfer's source address is derived from it.

    Raises:
        RequestRefused: the payload is not an unsigned transaction, the key is not a
            secp256k1 point, or the policy view cannot be formed.
    """
    try:
        parsed = ethereum.parse_transaction(payload)
    except ChainError as exc:
        raise RequestRefused("payload", f"not an Ethereum transaction: {exc}") from None
    if isinstance(parsed, ethereum.SignedTransaction):
        raise RequestRefused("payload", "the transaction is already signed")
    digest = ethereum.signing_hash(parsed)
    summary = ethereum.summarize(parsed)
    network = ethereum.KNOWN_NETWORKS.get(parsed.chain_id) if parsed.chain_id else None
    if network is None:
        raise RequestRefused("payload", f"chain id {parsed.chain_id} is not a known network")
    fields = _base(meta, digest, "transfer")
    fields["network"] = network.name
    if summary.kind == "native_transfer":
        fields["destination"] = str(summary.recipient)
        fields["asset"] = {"id": network.native_symbol, "decimals": 18}
        fields["amount"] = str(summary.amount)
    elif summary.kind == "token_transfer" and summary.asset != "native":
        decimals = meta.get("token_decimals")
        if not isinstance(decimals, int) or isinstance(decimals, bool):
            raise RequestRefused("malformed", "metadata.token_decimals is required for tokens")
        fields["destination"] = str(summary.recipient)
        fields["asset"] = {"id": str(summary.asset), "decimals": decimals}
        fields["amount"] = str(summary.amount)
    else:
        fields["operation"] = "contract_call"
        if parsed.to is None:
            raise RequestRefused("payload", "contract creation is not supported")
        fields["destination"] = str(parsed.to)
        if parsed.data[:4] and len(parsed.data) >= 4:
            fields["contract"] = {"selector": "0x" + parsed.data[:4].hex()}
        if parsed.value:
            fields["asset"] = {"id": network.native_symbol, "decimals": 18}
            fields["amount"] = str(parsed.value)
    source = sender = None
    if key is not None:
        try:
            sender = ethereum.address_from_public_key(key).checksummed
        except ChainError:
            raise RequestRefused("key", "the signing key is not a secp256k1 public key") from None
        if fields["operation"] == "transfer":
            source = sender
    # The sender's account nonce on this chain can be spent once: a fee bump or a cancel
    # reuses it, any other transaction needs another.
    replay_key = None if sender is None else f"ethereum:{parsed.chain_id}:{sender}:{parsed.nonce}"
    if isinstance(parsed, ethereum.FeeMarketTransaction):
        fee = EvmFee(
            network.name,
            parsed.gas_limit,
            parsed.max_fee_per_gas,
            parsed.max_priority_fee_per_gas,
        )
    else:
        fee = EvmFee(network.name, parsed.gas_limit, parsed.gas_price, None)
    return SigningTarget(
        digest, _policy_request(fields), source_address=source, fee=fee, replay_key=replay_key
    )


def solana_target(payload: bytes, meta: Mapping[str, object], key: bytes) -> SigningTarget:
    """Check a Solana message that ``key`` must sign and form its policy view.

    Only single transfers are understood (a System Program transfer, or an SPL Token
    ``TransferChecked``, optionally after creating the recipient's token account);
    anything else is refused rather than guessed at.

    Raises:
        RequestRefused: not a message, our key is not a signer, or not a transfer from it.
    """
    try:
        message = solana.parse_message(payload)
        described = solana.describe_message(message)
    except ChainError as exc:
        raise RequestRefused("payload", f"not a Solana message: {exc}") from None
    ours = solana.Pubkey(key)
    signers = message.account_keys[: message.header.num_required_signatures]
    if ours not in signers:
        raise RequestRefused("payload", "the vault key is not a signer of this message")
    instructions = described["instructions"]
    assert isinstance(instructions, list)
    decoded = [i["decoded"] for i in instructions if isinstance(i, dict)]
    moves = [
        d
        for d in decoded
        if isinstance(d, dict) and d.get("type") in ("system_transfer", "token_transfer_checked")
    ]
    others = [
        d
        for d in decoded
        if isinstance(d, dict)
        and d.get("type")
        not in (
            "system_transfer",
            "token_transfer_checked",
            "create_associated_token_account_idempotent",
        )
    ]
    if len(moves) != 1 or others:
        raise RequestRefused("payload", "only a single Solana transfer can be checked")
    move = moves[0]
    digest = hashlib.sha256(SOLANA_DIGEST_DOMAIN + payload).digest()
    fields = _base(meta, digest, "transfer")
    fields["network"] = meta.get("network", "solana")
    if move["type"] == "system_transfer":
        if move["from"] != str(ours):
            raise RequestRefused("payload", "the transfer does not spend from the vault key")
        fields["destination"] = move["to"]
        fields["asset"] = {"id": "SOL", "decimals": 9}
        fields["amount"] = move["lamports"]
    else:
        if move["owner"] != str(ours):
            raise RequestRefused("payload", "the token transfer is not from the vault key")
        fields["destination"] = move["destination"]
        fields["asset"] = {"id": move["mint"], "decimals": move["decimals"]}
        fields["amount"] = move["amount"]
    # A message is valid only with its recent blockhash (no durable-nonce instruction is
    # accepted above), and its fee payer pays once for it.
    replay_key = f"solana:{message.account_keys[0]}:{message.recent_blockhash.hex()}"
    return SigningTarget(
        payload, _policy_request(fields), source_address=str(ours), replay_key=replay_key
    )


def _bitcoin_network(meta: Mapping[str, object]) -> tuple[str, bitcoin.Network]:
    """The network a Bitcoin payload is for (a PSBT does not say), from the metadata.

    Raises:
        RequestRefused: a name other than those of ``_BITCOIN_NETWORKS``.
    """
    network_name = meta.get("network", "bitcoin")
    network = _BITCOIN_NETWORKS.get(network_name) if isinstance(network_name, str) else None
    if network is None or not isinstance(network_name, str):
        raise RequestRefused("malformed", f"unknown Bitcoin network {network_name!r}")
    return network_name, network


def bitcoin_target(
    payload: bytes,
    meta: Mapping[str, object],
    key: bytes | None,
    input_index: int,
    *,
    ecdsa_key: bytes | None = None,
) -> SigningTarget:
    """Check a PSBT input that ``key`` (a BIP340 x-only group key, key path only) spends
    and form the policy view: the one output not paying back to the key is the
    destination.

    With ``ecdsa_key`` (a compressed secp256k1 key, derived along the request's path)
    instead of ``key``, the input is a P2WPKH spend of that key: see
    :func:`bitcoin_p2wpkh_target`.

    Raises:
        RequestRefused: not a PSBT, the input is not ours, or not a simple payment; no
            key, or both kinds of key.
    """
    if ecdsa_key is not None:
        if key is not None:
            raise RequestRefused("key", "give a BIP340 key or an ECDSA key, not both")
        return bitcoin_p2wpkh_target(payload, meta, ecdsa_key, input_index)
    if key is None or len(key) != 32:
        raise RequestRefused("key", "taproot needs a BIP340 vault key")
    network_name, network = _bitcoin_network(meta)
    try:
        psbt = bitcoin.parse_psbt(payload)
        ours = bitcoin.output_key(key).script_pubkey
        tx = psbt.unsigned_transaction()
        if not 0 <= input_index < len(tx.inputs):
            raise RequestRefused("malformed", f"input {input_index} does not exist")
        spent = psbt.spent_output(input_index)
        if spent is None or spent.script_pubkey != ours:
            raise RequestRefused("payload", f"input {input_index} is not the vault key's")
        sighashes = [bitcoin.input_sighash(psbt, i) for i in range(len(tx.inputs))]
    except ChainError as exc:
        raise RequestRefused("payload", f"PSBT refused: {exc}") from None
    request = _psbt_payment(meta, network_name, network, tx, ours, sighashes)
    return SigningTarget(
        sighashes[input_index],
        request,
        taproot_merkle_root=b"",
        replay_key=_outpoints_key(tx),
    )


def _outpoints_key(tx: bitcoin.Transaction) -> str:
    """The replay key of a Bitcoin transaction: the outpoints it spends, sorted (each
    can be spent once; a replacement spending the same ones has the same key)."""
    spent = sorted(f"{i.prevout.txid_hex}:{i.prevout.index}" for i in tx.inputs)
    return "bitcoin:" + ",".join(spent)


def _psbt_payment(
    meta: Mapping[str, object],
    network_name: str,
    network: bitcoin.Network,
    tx: bitcoin.Transaction,
    ours: bytes,
    sighashes: Sequence[bytes],
) -> TransactionRequest:
    """The policy view of a PSBT that pays one output not back to ``ours``: a transfer of
    that output's value in BTC to its address; the digest covers every input's sighash.

    Raises:
        RequestRefused: not a payment to exactly one standard address.
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
    fields = _base(meta, digest, "transfer")
    fields["network"] = network_name
    fields["destination"] = destination
    fields["asset"] = {"id": "BTC", "decimals": 8}
    fields["amount"] = str(payments[0].value)
    return _policy_request(fields)


def bitcoin_p2wpkh_target(
    payload: bytes, meta: Mapping[str, object], ecdsa_key: bytes, input_index: int
) -> SigningTarget:
    """Check a PSBT whose input ``input_index`` spends the P2WPKH output of ``ecdsa_key``
    (BIP141 ``OP_0 <HASH160(key)>``) and form the policy view; the message is that
    input's BIP143 sighash (SIGHASH_ALL).

    Every input must spend the same key's P2WPKH output: a co-signer refuses a PSBT
    that mixes in inputs it cannot see as its own, so the whole amount spent is ours.
    Every input must use SIGHASH_ALL (no sighash type, or 1), so each signature
    commits to all inputs and outputs. The policy view: a transfer of BTC (8 decimals)
    from the key's P2WPKH address to the one output not paying back to it, of that
    output's value in satoshi, on the network of ``metadata.network``.

    Amounts (BIP143's fee attack). A BIP143 signature commits to the amount of its own
    input only, and the amounts here come from the witness UTXOs the coordinator
    supplies. An understated amount of the input being signed makes its signature
    invalid on chain, so that lie gains nothing; but a coordinator that shows each
    request (one per input) understated amounts for the *other* inputs can collect
    valid signatures for a transaction whose true fee is larger than any single view
    suggests. The outputs are committed by every signature (``hashOutputs``), so the
    destination, the amount paid and the change checked here are exactly what the
    transaction pays: the most such a coordinator can do is give the excess to a
    miner as fee, never redirect it. Where an input carries its previous transaction
    (``non_witness_utxo``), the PSBT parser checks that its txid is the outpoint's and
    the signer checks that it agrees with the witness UTXO, which proves that amount.

    Raises:
        RequestRefused: ``key``: not a compressed secp256k1 point; ``malformed``: an
            unknown network or a missing input; ``payload``: not a PSBT, an input that
            does not spend the key's P2WPKH output, a sighash type other than ALL, a
            previous transaction that does not match, or not a payment to exactly one
            standard address.
    """
    network_name, network = _bitcoin_network(meta)
    try:
        ours = bitcoin.p2wpkh_script(ecdsa_key)
    except ChainError:
        raise RequestRefused("key", "the signing key is not a compressed secp256k1 key") from None
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
    request = _psbt_payment(meta, network_name, network, tx, ours, sighashes)
    return SigningTarget(
        sighashes[input_index], request, source_address=source, replay_key=_outpoints_key(tx)
    )


def raw_target(payload: bytes, meta: Mapping[str, object]) -> SigningTarget:
    """A raw 32-byte digest: allowed only where a policy rule names raw-digest signing.

    Raises:
        RequestRefused: not 32 bytes.
    """
    if len(payload) != 32:
        raise RequestRefused("payload", "a raw digest must be 32 bytes")
    return SigningTarget(payload, _policy_request(_base(meta, payload, "raw_digest_signing")))


def keygen_request(meta: Mapping[str, object], request_bytes: bytes) -> TransactionRequest:
    """The policy view of a key generation (its digest is a hash of the request)."""
    digest = hashlib.sha256(KEYGEN_DIGEST_DOMAIN + request_bytes).digest()
    return _policy_request(_base(_metadata(meta), digest, "key_generation"))


def _intent_ids(meta: Mapping[str, object]) -> tuple[str, str] | None:
    """The workspace and transaction ids of an intent, or ``None`` when there are none.

    Raises:
        RequestRefused: only one of the two, or one that is not a short identifier.
    """
    present = [name for name in ("workspace_id", "transaction_id") if name in meta]
    if not present:
        return None
    if len(present) == 1:
        missing = "transaction_id" if present == ["workspace_id"] else "workspace_id"
        raise RequestRefused(
            "malformed", f"metadata.{missing} is required with metadata.{present[0]}"
        )
    ids: list[str] = []
    for name in ("workspace_id", "transaction_id"):
        value = meta[name]
        if not isinstance(value, str) or not _INTENT_ID.fullmatch(value):
            raise RequestRefused(
                "malformed", f"metadata.{name} must be an identifier of at most 64 characters"
            )
        ids.append(value)
    return ids[0], ids[1]


def _with_intent(target: SigningTarget, ids: tuple[str, str]) -> SigningTarget:
    """``target`` with its approvals counted over the transfer's intent digest.

    Raises:
        RequestRefused: the payload is not a transfer from a key the co-signer knows.
    """
    request = target.request
    if (
        request.operation is not Operation.TRANSFER
        or target.source_address is None
        or request.network is None
        or request.destination is None
        or request.asset is None
        or request.amount is None
    ):
        raise RequestRefused(
            "malformed",
            "metadata.transaction_id names a transfer intent, but the payload is not a "
            "transfer from the signing key",
        )
    try:
        intent = TransferIntent(
            workspace_id=ids[0],
            transaction_id=ids[1],
            network=request.network,
            source=target.source_address,
            destination=request.destination,
            asset=request.asset.id,
            amount=int(request.amount),
        )
    except PolicyError as exc:
        raise RequestRefused("payload", f"cannot form the transfer intent: {exc}") from None
    return dataclasses.replace(
        target,
        request=dataclasses.replace(request, digest=intent_digest(intent)),
        intent=intent,
    )


def signing_target(
    request: Mapping[str, object], key: bytes | None, *, ecdsa_key: bytes | None = None
) -> SigningTarget:
    """Recompute what a signing request asks for, from its payload.

    ``key`` is the vault's group public key as the chain encodes it (Ed25519 key,
    BIP340 x-only key); ``ecdsa_key`` the compressed secp256k1 public key an Ethereum
    transaction or a Bitcoin P2WPKH input is signed with (derived along the request's
    path). With ``transaction_id`` and
    ``workspace_id`` in the metadata, a transfer's approvals are counted over its intent
    digest (module docstring).

    Raises:
        RequestRefused: malformed request, unsupported chain, payload refused, a
            claimed digest that differs from the recomputed one, or intent metadata on
            a payload that is not a transfer from the signing key.
    """
    chain = request.get("chain")
    payload = _hex(request.get("payload"), "payload")
    meta = _metadata(request.get("metadata", {}))
    ids = _intent_ids(meta)
    if chain == "ethereum":
        target = ethereum_target(payload, meta, ecdsa_key)
    elif chain == "solana":
        if key is None or len(key) != 32:
            raise RequestRefused("key", "Solana needs an Ed25519 vault key")
        target = solana_target(payload, meta, key)
    elif chain == "bitcoin":
        index = request.get("input_index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise RequestRefused("malformed", "field input_index must be an integer")
        target = bitcoin_target(payload, meta, key, index, ecdsa_key=ecdsa_key)
    elif chain == "raw":
        target = raw_target(payload, meta)
    else:
        raise RequestRefused("malformed", f"unknown chain {chain!r}")
    claimed = request.get("digest")
    if claimed is not None and _hex(claimed, "digest") != target.request.digest:
        raise RequestRefused(
            "digest", "the claimed digest is not the digest of the payload (refusing)"
        )
    target = dataclasses.replace(target, payload_digest=target.request.digest)
    if ids is not None:
        target = _with_intent(target, ids)
    return target


def check_fee(chain: BundleChain, target: SigningTarget) -> None:
    """Refuse an EVM transaction whose fees exceed the cap the signed policy sets for its
    network (DESIGN.md invariant 12). The fees come from the payload the co-signer
    parsed, the cap from the policy bundle the admins signed; the coordinator supplies
    neither. A payload without EVM fees, a co-signer without a policy (which
    :func:`check_policy` refuses) or a network without a cap is not checked here.

    Raises:
        RequestRefused: ``fee``: the worst-case fee is above ``max_fee_wei``, or the
            priority fee per gas is above ``max_priority_fee_per_gas_wei``; the reason
            names the cap, its amount and the transaction's.
    """
    fee = target.fee
    bundle = chain.head
    if fee is None or bundle is None:
        return
    cap = bundle.policy.fee_caps.get(fee.network)
    if cap is None:
        return
    if cap.max_fee_wei is not None and fee.max_fee_wei > cap.max_fee_wei:
        raise RequestRefused(
            "fee",
            f"the worst-case fee {fee.max_fee_wei} wei (gas limit {fee.gas_limit} x "
            f"{fee.fee_per_gas_wei} wei per gas) exceeds the policy's max_fee_wei "
            f"{cap.max_fee_wei} for {fee.network}",
        )
    if (
        cap.max_priority_fee_per_gas_wei is not None
        and fee.priority_fee_per_gas_wei is not None
        and fee.priority_fee_per_gas_wei > cap.max_priority_fee_per_gas_wei
    ):
        raise RequestRefused(
            "fee",
            f"the priority fee {fee.priority_fee_per_gas_wei} wei per gas exceeds the "
            f"policy's max_priority_fee_per_gas_wei {cap.max_priority_fee_per_gas_wei} "
            f"for {fee.network}",
        )


def check_policy(
    chain: BundleChain,
    request: TransactionRequest,
    *,
    now: int,
    prices: object,
    approvals: object,
    history: Sequence[PastTransaction],
) -> Evaluation:
    """Evaluate ``request`` under the head of ``chain``; anything but allow is refused.

    Raises:
        RequestRefused: no policy installed, malformed prices or approvals, a creation
            time in the future, or a decision other than ``allow`` (naming the rule).
    """
    bundle = chain.head
    if bundle is None:
        raise RequestRefused("policy", "no signed policy is installed on this co-signer")
    if request.created_at > now + MAX_FUTURE_SKEW:
        raise RequestRefused("malformed", "created_at lies in the future")
    try:
        parsed_prices = parse_prices(prices if prices is not None else {})
        if not isinstance(approvals, list):
            raise RequestRefused("malformed", "field approvals must be a list")
        statements: list[SignedApproval] = [
            parse_approval(a, f"approvals[{i}]") for i, a in enumerate(approvals)
        ]
        context = EvaluationContext(
            now=UnixSeconds(now),
            prices=parsed_prices,
            address_book=bundle.address_book,
            history=History(history),
        )
        evaluation = evaluate(bundle.policy, request, context, statements)
    except PolicyError as exc:
        raise RequestRefused("malformed", f"policy input refused: {exc}") from None
    if evaluation.decision is not Decision.ALLOW:
        reason = evaluation.summary
        counted = evaluation.approval_tally
        if counted is not None and counted.refused:
            # Say why the first statement that did not count was refused (an approval of
            # another digest, a stranger, a bad signature), so the coordinator can tell.
            error = counted.refused[0][1]
            reason += f"; an approval did not count ({type(error).__name__}: {error})"
        raise RequestRefused("policy", reason, rule=evaluation.rule)
    return evaluation
