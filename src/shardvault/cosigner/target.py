"""What a co-signer will sign, and the shared pieces its payload checks are built from.

:class:`SigningTarget` is the outcome of recomputing a request from its payload
(:mod:`.targets`, :mod:`.targets_bitcoin`); :mod:`.checks` adds the transfer's intent and
evaluates the signed policy over it; :mod:`.fees` caps what it may pay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from shardvault.chains import solana
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import (
    AssetRegistry,
    Chain,
    PolicyError,
    TransactionRequest,
    UnknownAssetError,
    UnknownNetworkError,
    parse_request,
    payload_asset,
    payload_network,
)
from shardvault.policy.intent import TransferIntent
from shardvault.policy.registry import ResolvedAsset

SOLANA_DIGEST_DOMAIN = b"shardvault/solana/message-digest/v1\x00"
"""Prefix hashed with a Solana message to form its policy digest."""

PSBT_DIGEST_DOMAIN = b"shardvault/bitcoin/psbt-digest/v1\x00"
"""Prefix hashed with every input sighash of a PSBT to form its policy digest."""

KEYGEN_DIGEST_DOMAIN = b"shardvault/cosigner/keygen-digest/v1\x00"
"""Prefix hashed with a key-generation request to form its policy digest."""

MAX_FUTURE_SKEW = 300
"""How far (seconds) a request's ``created_at`` may lie ahead of the co-signer's clock."""

METADATA_FIELDS = {
    "initiator",
    "source",
    "created_at",
    "network",
    "transaction_id",
    "workspace_id",
}
"""What the coordinator may say besides the payload. ``network`` is only compared with
the network the signed registry names (a differing one is refused); decimals, prices and
the asset are never taken from it."""


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
class BitcoinFee:
    """What a Bitcoin transaction pays in fees, read from its PSBT.

    ``fee_sat`` is the amounts the inputs spend less the outputs; ``vsize`` the virtual
    size the transaction will have once signed
    (:func:`shardvault.chains.bitcoin.signed_vsize`). ``unproven_inputs`` are the
    inputs whose amount only the coordinator vouches for: neither their previous
    transaction (``non_witness_utxo``) nor the signature being made commits to it.
    """

    network: str
    fee_sat: int
    vsize: int
    unproven_inputs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SolanaFee:
    """What a Solana message pays in fees, read from its header and its Compute Budget
    instructions (:func:`shardvault.chains.solana.read_compute_budget`).

    ``signatures`` is the number the header requires (5,000 lamports each);
    ``compute_unit_limit`` the limit set, or the runtime's default when
    ``limit_is_default``; ``compute_unit_price_micro_lamports`` 0 when none is set.
    """

    network: str
    signatures: int
    compute_unit_limit: int
    compute_unit_price_micro_lamports: int
    limit_is_default: bool = False

    @property
    def priority_fee_lamports(self) -> int:
        """ceil(limit * price / 10**6) lamports."""
        return solana.priority_fee_lamports(
            self.compute_unit_limit, self.compute_unit_price_micro_lamports
        )

    @property
    def fee_lamports(self) -> int:
        """The base fee for every signature plus the priority fee."""
        return self.signatures * solana.LAMPORTS_PER_SIGNATURE + self.priority_fee_lamports


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
    fee: EvmFee | BitcoinFee | SolanaFee | None = None
    """The fees the transaction commits to, checked by :func:`check_fee`; ``None``
    for a raw digest."""
    replay_key: str | None = None
    """What the chain lets be spent only once by this transaction (``ethereum:<chain
    id>:<sender>:<nonce>``, ``solana:<fee payer>:<recent blockhash>:<message hash>``,
    ``bitcoin:<txid>:<index>,...`` over the sorted outpoints spent); ``None`` for a
    raw digest, or where the sender is not known."""
    payload_digest: bytes = b""
    """The digest of the payload itself (the policy digest before an intent replaced
    it), which the record of signed transactions keys on."""
    initiator_request: str | None = None
    """Hex digest of the initiator's own signed request when one verified
    (:mod:`.initiator`), so the record binds it to one transaction; ``None`` when the
    initiator is the coordinator's unsigned claim."""
    chain_asset: str | None = None
    """The asset as the payload names it (an EVM network's native symbol, ``SOL``,
    ``BTC``, a token contract or mint): what a transfer's intent names, while the policy
    request names the registry's id."""


def hex_field(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise RequestRefused("malformed", f"field {field} must be a hex string")
    text = value[2:] if value.startswith("0x") else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RequestRefused("malformed", f"field {field} is not hex") from None


def metadata_fields(raw: object) -> dict[str, object]:
    if not isinstance(raw, Mapping):
        raise RequestRefused("malformed", "field metadata must be an object")
    unknown = sorted(set(raw) - METADATA_FIELDS)
    if unknown:
        # Destination, amount and asset come from the payload, never from the coordinator.
        raise RequestRefused("malformed", f"metadata may not carry {unknown}")
    return dict(raw)


def policy_request(fields: dict[str, object]) -> TransactionRequest:
    try:
        return parse_request(fields)
    except PolicyError as exc:
        raise RequestRefused("payload", f"cannot form the policy request: {exc}") from None


def source_from_key(request: TransactionRequest, path: str | None) -> TransactionRequest:
    """``request`` with its source wallet named by what the co-signer holds: the
    derivation ``path`` it signs along (``None`` for a key generation, which spends from
    no wallet). A coordinator-sent wallet must be that path, and source tags, which
    nothing signs, must be absent (docs/policy.md "Signed inputs").

    Raises:
        RequestRefused: check ``source``, naming the claimed wallet and the path, or the
            tags.
    """
    claimed = request.source
    if claimed.tags:
        raise RequestRefused(
            "source", f"metadata.source.tags {sorted(claimed.tags)}: nothing signs source tags"
        )
    if claimed.wallet is not None and claimed.wallet != path:
        where = "no wallet" if path is None else f"derivation path {path!r}"
        raise RequestRefused(
            "source",
            f"metadata.source.wallet {claimed.wallet!r} is not the {where} this co-signer "
            "signs along",
        )
    return dataclasses.replace(request, source=dataclasses.replace(claimed, wallet=path))


def base_fields(meta: Mapping[str, object], digest: bytes, operation: str) -> dict[str, object]:
    fields: dict[str, object] = {"digest": digest.hex(), "operation": operation}
    for name in ("initiator", "source", "created_at"):
        if name not in meta:
            raise RequestRefused("malformed", f"metadata.{name} is required")
        fields[name] = meta[name]
    return fields


def network_name(
    registry: AssetRegistry | None,
    chain: Chain,
    meta: Mapping[str, object],
    chain_id: int | None = None,
) -> str:
    """The network a payload is on, from the signed registry (or the built-in defaults
    without one, :mod:`shardvault.policy.registry`); a ``metadata.network`` that names
    another is refused, never taken.

    Raises:
        RequestRefused: check ``network``: the registry does not list the payload's
            network, or the coordinator claims another.
    """
    try:
        name = payload_network(registry, chain, chain_id)
    except UnknownNetworkError as exc:
        raise RequestRefused("network", exc.reason) from None
    claimed = meta.get("network")
    if claimed is not None and claimed != name:
        source = "the signed asset registry" if registry is not None else "the default"
        raise RequestRefused(
            "network",
            f"metadata.network {claimed!r} is not {name!r}, the {chain.value} network "
            f"{source} names (the coordinator does not choose it)",
        )
    return name


def resolve_asset(
    registry: AssetRegistry | None,
    chain: Chain,
    *,
    chain_id: int | None = None,
    contract: str | None = None,
    decimals: int | None = None,
) -> ResolvedAsset:
    """The policy's view of the asset a payload moves (``contract``: a token contract or
    mint; ``None``: the native coin). ``decimals``, where the payload itself states
    them (an SPL ``TransferChecked``), must be the registry's.

    Raises:
        RequestRefused: check ``network`` or ``asset`` (an unknown token, an unlisted
            native coin, decimals that differ from the registry's).
    """
    try:
        resolved = payload_asset(registry, chain, chain_id=chain_id, contract=contract)
    except UnknownNetworkError as exc:
        raise RequestRefused("network", exc.reason) from None
    except UnknownAssetError as exc:
        raise RequestRefused("asset", exc.reason) from None
    if decimals is not None and decimals != resolved.decimals:
        raise RequestRefused(
            "asset",
            f"{resolved.id} has {resolved.decimals} decimals in the signed asset registry, "
            f"the payload says {decimals}",
        )
    return resolved


def asset_fields(resolved: ResolvedAsset) -> dict[str, object]:
    """The ``asset`` field of a policy request (:func:`policy_request`)."""
    return {"id": resolved.id, "decimals": resolved.decimals}
