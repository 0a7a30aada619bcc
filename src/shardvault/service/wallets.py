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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import base58

from shardvault.chains.bitcoin.address import Network as BitcoinNetwork
from shardvault.chains.bitcoin.address import encode_segwit_address
from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import address_from_public_key
from shardvault.crypto.bip32 import derive_path, parse_path
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.group import SECP256K1
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.service.vaults import SCHEME_OF_NETWORK
from shardvault.store.models_vaults import Network, NetworkKind, VaultKey, Wallet, WalletAddress
from shardvault.store.repositories_vaults import (
    AssetRepository,
    NetworkRepository,
    VaultRepository,
    WalletRepository,
)
from shardvault.store.types import utcnow

MAX_ADDRESS_INDEX = (1 << 31) - 1
"""The largest non-hardened BIP32 index."""


@dataclass(frozen=True, slots=True)
class AddressView:
    id: str
    wallet_id: str
    index: int
    path: str
    address: str
    public_key: str
    created_at: datetime

    @classmethod
    def of(cls, row: WalletAddress) -> AddressView:
        return cls(
            row.id, row.wallet_id, row.index, row.path, row.address, row.public_key, row.created_at
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


def derive_address(
    network: Network, key: VaultKey, vault_number: int, index: int
) -> DerivedAddress:
    """The address at ``index`` of a vault on ``network``.

    Raises:
        ValidationError: the index is out of range, or the scheme has no derivation.
    """
    if not 0 <= index <= MAX_ADDRESS_INDEX:
        raise ValidationError("index", f"must be between 0 and {MAX_ADDRESS_INDEX}")
    root = bytes.fromhex(key.public_key)
    if network.kind is NetworkKind.SOLANA:
        if index != 0:
            raise ValidationError(
                "index", "Solana wallets have one address (no Ed25519 derivation yet)"
            )
        return DerivedAddress("m", root, base58.b58encode(root).decode())
    path = derivation_path(network.coin_type, vault_number, index)
    try:
        _, child, _ = derive_path(
            SECP256K1.decode_point(root), bytes.fromhex(key.chain_code), parse_path(path)
        )
    except CryptoError as exc:
        raise ValidationError("index", f"no key at {path}: {exc}") from None
    public_key = child.to_bytes()
    if network.kind is NetworkKind.EVM:
        return DerivedAddress(path, public_key, address_from_public_key(public_key).checksummed)
    try:
        btc_network = BitcoinNetwork.from_name(network.name)
    except ChainError:
        btc_network = BitcoinNetwork.MAINNET
    program = hashlib.new("ripemd160", hashlib.sha256(public_key).digest()).digest()
    return DerivedAddress(path, public_key, encode_segwit_address(btc_network, 0, program))


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
        tuple(AddressView.of(a) for a in addresses),
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
    return AddressView.of(_new_address(uow, principal, wallet))


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
