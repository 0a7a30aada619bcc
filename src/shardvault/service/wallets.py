"""Wallets (a vault's holding of one asset) and their addresses.

Addresses come from BIP32 public, non-hardened derivation (``CKDpub``, BIP32 "Public
parent key -> public child key", :mod:`shardvault.crypto.bip32`) of the vault's root key
and chain code along ``m/44/<coin>/<vault number>/0/<index>``. All path steps are
non-hardened, so the signers derive the same child by tweaking their shares (no party
ever needs the root secret, which does not exist anywhere). Note that the path is BIP44's
shape without its hardened steps: wallets made by other software from a seed will not
show the same addresses.

- EVM networks: the Ethereum address (EIP-55) of the derived secp256k1 key.
- Bitcoin: the P2WPKH address (BIP84 style, bech32) of the derived key.
- Solana: the Ed25519 group key itself at ``m``; derivation for Ed25519 FROST keys is not
  implemented, so a Solana wallet has exactly one address.

Derivation and encoding are :mod:`shardvault.policy.address_attestation`'s, the code
co-signers run when they attest an address; each address is shown with the attestations
the co-signers signed (:mod:`.address_attestations`), for clients to verify.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shardvault.chains.bitcoin.address import Network as BitcoinNetwork
from shardvault.chains.errors import ChainError
from shardvault.crypto.channel import PublicIdentity
from shardvault.policy.address_attestation import (
    AddressEncoding,
    DerivationError,
    bitcoin_encoding_network,
    derive_public_key,
    parse_encoding,
)
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.service.vaults import SCHEME_OF_NETWORK
from shardvault.store.models_attestations import AddressAttestation
from shardvault.store.models_vaults import Network, NetworkKind, VaultKey, Wallet, WalletAddress
from shardvault.store.repositories_attestations import AttestationRepository
from shardvault.store.repositories_vaults import (
    AssetRepository,
    NetworkRepository,
    VaultRepository,
    WalletRepository,
)
from shardvault.store.types import utcnow

MAX_ADDRESS_INDEX = (1 << 31) - 1
"""The largest non-hardened BIP32 index."""


def attestation_document(row: AddressAttestation) -> dict[str, object]:
    """A stored attestation in its transport form (``{party, fingerprint, identity,
    statement, signature}``, :class:`~shardvault.policy.address_attestation.SignedAttestation`)."""
    identity = PublicIdentity(
        bytes.fromhex(row.signing_key),
        bytes.fromhex(row.encryption_key),
        bytes.fromhex(row.binding),
    )
    return {
        "party": row.party,
        "fingerprint": identity.fingerprint(),
        "identity": identity.to_json(),
        "statement": json.loads(row.statement),
        "signature": row.signature,
    }


@dataclass(frozen=True, slots=True)
class AddressView:
    """An address, with what its co-signers signed about it. ``attested`` is the
    server's own count (at least ``min_signers`` parties stored); clients count for
    themselves against the co-signers they pinned."""

    id: str
    wallet_id: str
    vault_id: str
    index: int
    path: str
    scheme: str
    address: str
    public_key: str
    created_at: datetime
    attestations: tuple[dict[str, object], ...] = ()
    attested: bool = False

    @classmethod
    def of(
        cls,
        row: WalletAddress,
        vault_id: str,
        attestations: Sequence[AddressAttestation] = (),
        min_signers: int | None = None,
    ) -> AddressView:
        documents = tuple(attestation_document(a) for a in attestations)
        parties = {a.party for a in attestations}
        return cls(
            row.id,
            row.wallet_id,
            vault_id,
            row.index,
            row.path,
            row.scheme,
            row.address,
            row.public_key,
            row.created_at,
            documents,
            min_signers is not None and len(parties) >= max(min_signers, 2),
        )


@dataclass(frozen=True, slots=True)
class WalletView:
    id: str
    vault_id: str
    asset: str
    network: str
    addresses: tuple[AddressView, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DerivedAddress:
    """A derived key and its address on one network."""

    path: str
    public_key: bytes
    address: str


def derivation_path(coin_type: int, vault_number: int, index: int) -> str:
    """``m/44/<coin>/<vault>/0/<index>``, every step non-hardened."""
    return f"m/44/{coin_type}/{vault_number}/0/{index}"


def address_encoding(network: Network) -> AddressEncoding:
    """How a network's addresses are encoded: EIP-55 on EVM networks, P2WPKH on Bitcoin
    (the network named after the workspace's network, mainnet if its name is none of
    ``mainnet``, ``testnet``, ``signet``, ``regtest``), base58 on Solana."""
    if network.kind is NetworkKind.EVM:
        return parse_encoding("ethereum")
    if network.kind is NetworkKind.SOLANA:
        return parse_encoding("solana")
    try:
        btc_network = BitcoinNetwork.from_name(network.name)
    except ChainError:
        btc_network = BitcoinNetwork.MAINNET
    return parse_encoding(f"bitcoin-p2wpkh:{bitcoin_encoding_network(btc_network)}")


def derive_address(
    network: Network, key: VaultKey, vault_number: int, index: int
) -> DerivedAddress:
    """The address at ``index`` of a vault on ``network``.

    Raises:
        ValidationError: the index is out of range, or the scheme has no derivation.
    """
    if not 0 <= index <= MAX_ADDRESS_INDEX:
        raise ValidationError("index", f"must be between 0 and {MAX_ADDRESS_INDEX}")
    if network.kind is NetworkKind.SOLANA and index != 0:
        raise ValidationError(
            "index", "Solana wallets have one address (no Ed25519 derivation yet)"
        )
    path = (
        "m"
        if network.kind is NetworkKind.SOLANA
        else derivation_path(network.coin_type, vault_number, index)
    )
    encoding = address_encoding(network)
    try:
        public_key = derive_public_key(
            encoding.scheme, bytes.fromhex(key.public_key), bytes.fromhex(key.chain_code), path
        )
        return DerivedAddress(path, public_key, encoding.encode(public_key))
    except DerivationError as exc:
        raise ValidationError("index", f"no key at {path}: {exc}") from None


def wallet_key(
    uow: UnitOfWork, workspace_id: str, wallet: Wallet
) -> tuple[Network, VaultKey | None]:
    """The network of ``wallet``'s asset, and the vault's key that signs for it."""
    asset = AssetRepository(uow.session, workspace_id).get(wallet.asset_id)
    assert asset is not None
    network = NetworkRepository(uow.session, workspace_id).get(asset.network_id)
    assert network is not None
    key = VaultRepository(uow.session, workspace_id).key(
        wallet.vault_id, SCHEME_OF_NETWORK[network.kind]
    )
    return network, key


def address_views(
    uow: UnitOfWork, workspace_id: str, wallet: Wallet, rows: Sequence[WalletAddress]
) -> list[AddressView]:
    """``rows`` of ``wallet`` as views, with their attestations and the key's quorum."""
    _, key = wallet_key(uow, workspace_id, wallet)
    attested = AttestationRepository(uow.session, workspace_id).of_addresses([r.id for r in rows])
    min_signers = None if key is None else key.min_signers
    return [AddressView.of(r, wallet.vault_id, attested[r.id], min_signers) for r in rows]


def _wallet_view(uow: UnitOfWork, row: Wallet) -> WalletView:
    asset = AssetRepository(uow.session, row.workspace_id).get(row.asset_id)
    assert asset is not None
    network = NetworkRepository(uow.session, row.workspace_id).get(asset.network_id)
    assert network is not None
    addresses = WalletRepository(uow.session, row.workspace_id).addresses(row.id)
    return WalletView(
        row.id,
        row.vault_id,
        asset.symbol,
        network.name,
        tuple(address_views(uow, row.workspace_id, row, addresses)),
        row.created_at,
    )


def create_wallet(
    uow: UnitOfWork, principal: Principal, *, vault_id: str, asset: str
) -> WalletView:
    """Add a wallet for ``asset`` (a symbol) to a vault; its first address is derived.

    Raises:
        Forbidden, NotFound (vault, asset), Conflict (the wallet exists),
        ValidationError (the vault has no key for the asset's network).
    """
    require(principal, Permission.VAULTS_MANAGE)
    vault = VaultRepository(uow.session, principal.workspace_id).get(vault_id)
    if vault is None:
        raise NotFound("vault", vault_id)
    asset_row = AssetRepository(uow.session, principal.workspace_id).by_symbol(asset)
    if asset_row is None:
        raise NotFound("asset", asset)
    wallets = WalletRepository(uow.session, principal.workspace_id)
    if wallets.find(vault.id, asset_row.id) is not None:
        raise Conflict(f"vault {vault.name!r} already has a {asset} wallet")
    network = NetworkRepository(uow.session, principal.workspace_id).get(asset_row.network_id)
    assert network is not None
    scheme = SCHEME_OF_NETWORK[network.kind]
    if VaultRepository(uow.session, principal.workspace_id).key(vault.id, scheme) is None:
        raise ValidationError(
            "asset", f"vault {vault.name!r} has no {scheme} key for {network.name}"
        )
    row = wallets.add(
        Wallet(vault_id=vault.id, asset_id=asset_row.id, next_index=0, created_at=utcnow())
    )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="wallet.create",
        resource_type="wallet",
        resource_id=row.id,
        details={"vault_id": vault.id, "asset": asset},
    )
    _new_address(uow, principal, row)
    return _wallet_view(uow, row)


def _new_address(uow: UnitOfWork, principal: Principal, wallet: Wallet) -> WalletAddress:
    repo = WalletRepository(uow.session, principal.workspace_id)
    locked = repo.get(wallet.id, lock=True)
    assert locked is not None
    asset = AssetRepository(uow.session, principal.workspace_id).get(locked.asset_id)
    assert asset is not None
    network = NetworkRepository(uow.session, principal.workspace_id).get(asset.network_id)
    assert network is not None
    vaults = VaultRepository(uow.session, principal.workspace_id)
    vault = vaults.get(locked.vault_id)
    key = vaults.key(locked.vault_id, SCHEME_OF_NETWORK[network.kind])
    assert vault is not None
    assert key is not None
    index = locked.next_index
    derived = derive_address(network, key, vault.number, index)
    row = repo.add_address(
        WalletAddress(
            wallet_id=locked.id,
            index=index,
            path=derived.path,
            scheme=key.scheme,
            address=derived.address,
            public_key=derived.public_key.hex(),
            created_at=utcnow(),
        )
    )
    locked.next_index = index + 1
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="address.create",
        resource_type="address",
        resource_id=row.id,
        details={"wallet_id": locked.id, "path": derived.path, "address": derived.address},
    )
    return row


def new_address(uow: UnitOfWork, principal: Principal, wallet_id: str) -> AddressView:
    """Derive the wallet's next address.

    Raises:
        Forbidden, NotFound, ValidationError (no further address for this scheme).
    """
    require(principal, Permission.VAULTS_MANAGE)
    wallet = WalletRepository(uow.session, principal.workspace_id).get(wallet_id)
    if wallet is None:
        raise NotFound("wallet", wallet_id)
    row = _new_address(uow, principal, wallet)
    return address_views(uow, principal.workspace_id, wallet, [row])[0]


def get_wallet(uow: UnitOfWork, principal: Principal, wallet_id: str) -> WalletView:
    """One wallet with its addresses.

    Raises:
        Forbidden, NotFound.
    """
    require(principal, Permission.VAULTS_READ)
    wallet = WalletRepository(uow.session, principal.workspace_id).get(wallet_id)
    if wallet is None:
        raise NotFound("wallet", wallet_id)
    return _wallet_view(uow, wallet)


def list_wallets(
    uow: UnitOfWork, principal: Principal, *, vault_id: str | None = None
) -> list[WalletView]:
    """The workspace's wallets (of one vault when ``vault_id`` is given)."""
    require(principal, Permission.VAULTS_READ)
    rows = WalletRepository(uow.session, principal.workspace_id).list(vault_id)
    return [_wallet_view(uow, w) for w in rows]
