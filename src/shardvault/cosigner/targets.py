"""Ethereum, Solana, raw-digest and key-generation requests, recomputed from the payload.

Each function parses what the coordinator sent with :mod:`shardvault.chains` and returns the
:class:`~.target.SigningTarget`: the bytes to sign and the policy's view of them, formed
from the payload; Bitcoin PSBTs are in :mod:`.targets_bitcoin`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from shardvault.chains import ethereum, solana
from shardvault.chains.errors import ChainError
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.target import (
    KEYGEN_DIGEST_DOMAIN,
    SOLANA_DIGEST_DOMAIN,
    EvmFee,
    SigningTarget,
    SolanaFee,
    asset_fields,
    base_fields,
    metadata_fields,
    network_name,
    policy_request,
    resolve_asset,
    source_from_key,
)
from shardvault.policy import AssetRegistry, Chain, TransactionRequest


def ethereum_target(
    payload: bytes,
    meta: Mapping[str, object],
    key: bytes | None = None,
    registry: AssetRegistry | None = None,
) -> SigningTarget:
    """Recompute an Ethereum transaction's signing hash and the policy view.

    ``key`` is the secp256k1 public key the co-signer will sign with (already derived
    along the request's path); a transfer's source address is derived from it. The
    network's name and the asset's id and decimals come from ``registry`` (the signed
    bundle's), or without one from ``KNOWN_NETWORKS`` (native coins only).

    Raises:
        RequestRefused: the payload is not an unsigned transaction, the key is not a
            secp256k1 point, the network or a token is not in the registry (checks
            ``network``, ``asset``), or the policy view cannot be formed.
    """
    try:
        parsed = ethereum.parse_transaction(payload)
    except ChainError as exc:
        raise RequestRefused("payload", f"not an Ethereum transaction: {exc}") from None
    if isinstance(parsed, ethereum.SignedTransaction):
        raise RequestRefused("payload", "the transaction is already signed")
    digest = ethereum.signing_hash(parsed)
    summary = ethereum.summarize(parsed)
    network = network_name(registry, Chain.ETHEREUM, meta, parsed.chain_id)
    fields = base_fields(meta, digest, "transfer")
    fields["network"] = network
    chain_asset = None
    if summary.kind == "native_transfer" or (
        summary.kind != "token_transfer" and parsed.value and parsed.to is not None
    ):
        native = resolve_asset(registry, Chain.ETHEREUM, chain_id=parsed.chain_id)
        fields["asset"] = asset_fields(native)
        fields["amount"] = str(parsed.value)
        chain_asset = native.chain_asset
    if summary.kind == "native_transfer":
        fields["destination"] = str(summary.recipient)
    elif summary.kind == "token_transfer" and summary.asset != "native":
        # Which token, and its decimals, only the signed registry says (never the
        # coordinator: fake decimals would scale the amount past any limit).
        token = resolve_asset(
            registry, Chain.ETHEREUM, chain_id=parsed.chain_id, contract=str(summary.asset)
        )
        fields["destination"] = str(summary.recipient)
        fields["asset"] = asset_fields(token)
        fields["amount"] = str(summary.amount)
        chain_asset = token.chain_asset
    else:
        fields["operation"] = "contract_call"
        if parsed.to is None:
            raise RequestRefused("payload", "contract creation is not supported")
        fields["destination"] = str(parsed.to)
        if parsed.data[:4] and len(parsed.data) >= 4:
            fields["contract"] = {"selector": "0x" + parsed.data[:4].hex()}
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
            network,
            parsed.gas_limit,
            parsed.max_fee_per_gas,
            parsed.max_priority_fee_per_gas,
        )
    else:
        fee = EvmFee(network, parsed.gas_limit, parsed.gas_price, None)
    return SigningTarget(
        digest,
        policy_request(fields),
        source_address=source,
        fee=fee,
        replay_key=replay_key,
        chain_asset=chain_asset,
    )


def solana_target(
    payload: bytes,
    meta: Mapping[str, object],
    key: bytes,
    registry: AssetRegistry | None = None,
) -> SigningTarget:
    """Check a Solana message that ``key`` must sign and form its policy view.

    Only single transfers are understood (a System Program transfer, or an SPL Token
    ``TransferChecked``, optionally after creating the recipient's token account), with
    at most one ``SetComputeUnitLimit`` and one ``SetComputeUnitPrice``, whose fee the
    target carries for :func:`~.fees.check_fee`; anything else is refused rather than
    guessed at. The network is the one Solana network of ``registry`` (``solana``
    without one); a token's id comes from the registry, whose decimals the
    instruction's must equal.

    Raises:
        RequestRefused: not a message, our key is not a signer, not a transfer from it,
            or Compute Budget instructions the runtime would refuse or that are not
            understood; checks ``network`` and ``asset`` as :func:`.target.network_name`
            and :func:`.target.resolve_asset`.
    """
    try:
        message = solana.parse_message(payload)
        described = solana.describe_message(message)
    except ChainError as exc:
        raise RequestRefused("payload", f"not a Solana message: {exc}") from None
    try:
        budget = solana.read_compute_budget(message)
    except ChainError as exc:
        raise RequestRefused("payload", f"Compute Budget refused: {exc}") from None
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
            "set_compute_unit_limit",
            "set_compute_unit_price",
        )
    ]
    if len(moves) != 1 or others:
        raise RequestRefused("payload", "only a single Solana transfer can be checked")
    move = moves[0]
    digest = hashlib.sha256(SOLANA_DIGEST_DOMAIN + payload).digest()
    fields = base_fields(meta, digest, "transfer")
    fields["network"] = network_name(registry, Chain.SOLANA, meta)
    if move["type"] == "system_transfer":
        if move["from"] != str(ours):
            raise RequestRefused("payload", "the transfer does not spend from the vault key")
        moved = resolve_asset(registry, Chain.SOLANA)
        fields["destination"] = move["to"]
        fields["amount"] = move["lamports"]
    else:
        if move["owner"] != str(ours):
            raise RequestRefused("payload", "the token transfer is not from the vault key")
        decimals = move["decimals"]
        moved = resolve_asset(
            registry,
            Chain.SOLANA,
            contract=str(move["mint"]),
            decimals=decimals if isinstance(decimals, int) else -1,
        )
        fields["destination"] = move["destination"]
        fields["amount"] = move["amount"]
    fields["asset"] = asset_fields(moved)
    # Two different messages with one recent blockhash are two valid transactions (the
    # blockhash bounds a message's life, not its uniqueness), so the replay key is the
    # message itself: the same transfer may be signed again only as the same message.
    replay_key = (
        f"solana:{message.account_keys[0]}:{message.recent_blockhash.hex()}:"
        f"{hashlib.sha256(payload).hexdigest()[:32]}"
    )
    request = policy_request(fields)
    fee = SolanaFee(
        network=request.network or "solana",
        signatures=message.header.num_required_signatures,
        compute_unit_limit=budget.compute_unit_limit,
        compute_unit_price_micro_lamports=budget.compute_unit_price_micro_lamports,
        limit_is_default=budget.limit_is_default,
    )
    return SigningTarget(
        payload,
        request,
        source_address=str(ours),
        fee=fee,
        replay_key=replay_key,
        chain_asset=moved.chain_asset,
    )


def raw_target(payload: bytes, meta: Mapping[str, object]) -> SigningTarget:
    """A raw 32-byte digest: allowed only where a policy rule names raw-digest signing.

    Raises:
        RequestRefused: not 32 bytes.
    """
    if len(payload) != 32:
        raise RequestRefused("payload", "a raw digest must be 32 bytes")
    return SigningTarget(payload, policy_request(base_fields(meta, payload, "raw_digest_signing")))


def keygen_request(meta: Mapping[str, object], request_bytes: bytes) -> TransactionRequest:
    """The policy view of a key generation (its digest is a hash of the request)."""
    digest = hashlib.sha256(KEYGEN_DIGEST_DOMAIN + request_bytes).digest()
    request = policy_request(base_fields(metadata_fields(meta), digest, "key_generation"))
    return source_from_key(request, None)
