"""Networks, assets and vaults.

A workspace first configures the chains it uses (``configure_network``: an EVM chain by
its EIP-155 id and RPC URL, Bitcoin, Solana) and the assets on them (``add_asset``: the
native coin, or an ERC-20 token by contract address and decimals). A vault is then
created in custody mode ``mpc``: one distributed key generation per requested scheme,
run by the :class:`~shardvault.service.signing.SigningBackend`; the vault stores only the
public outcome (root public key, BIP32 chain code, quorum, co-signer ids).

Key generation runs before the database transaction that records the vault (a DKG can
take seconds and must not hold the workspace's write lock); if recording fails, the
shares written by the backend are orphaned under a key id nothing refers to.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from shardvault.audit import JsonValue
from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import parse_address
from shardvault.service.context import Principal
from shardvault.service.destinations import DestinationPolicy
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.evm_networks import (
    check_evm_network,
    check_rpc_urls,
    native_symbol_of,
    rpc_urls_of,
)
from shardvault.service.pagination import page_of, page_size
from shardvault.service.rbac import Permission, require
from shardvault.service.signing import (
    MIN_SIGNERS,
    PARTY_COUNTS,
    SCHEMES,
    GeneratedKey,
    Scheme,
    SigningBackend,
)
from shardvault.service.uow import UnitOfWork
from shardvault.service.views import Page
from shardvault.service.workspaces import decode_cursor, encode_cursor
from shardvault.store.models_vaults import (
    Asset,
    AssetKind,
    CustodyMode,
    EvmFeeModel,
    Network,
    NetworkKind,
    Vault,
    VaultKey,
)
from shardvault.store.repositories_vaults import (
    AssetRepository,
    NetworkRepository,
    VaultRepository,
)
from shardvault.store.types import utcnow

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9._-]{1,32}$")

COIN_TYPES = {NetworkKind.EVM: 60, NetworkKind.BITCOIN: 0, NetworkKind.SOLANA: 501}

DEFAULT_RPC_POLICY = DestinationPolicy.for_rpc_nodes()
"""Where a network's node may be when the server was given no other policy: public
addresses and this host, never link-local or cloud metadata."""
"""SLIP-44 coin types used in the derivation path ``m/44/<coin>/<vault>/0/<index>``."""

NATIVE_DECIMALS = {NetworkKind.EVM: 18, NetworkKind.BITCOIN: 8, NetworkKind.SOLANA: 9}
"""The decimals of each chain family's native coin (wei, satoshi, lamports)."""

SCHEME_OF_NETWORK: dict[NetworkKind, Scheme] = {
    NetworkKind.EVM: "ecdsa-secp256k1",
    NetworkKind.BITCOIN: "ecdsa-secp256k1",
    NetworkKind.SOLANA: "eddsa-ed25519",
}
"""Which of a vault's keys signs for each chain family."""


@dataclass(frozen=True, slots=True)
class NetworkView:
    id: str
    name: str
    kind: str
    chain_id: int | None
    coin_type: int
    rpc_url: str | None
    required_confirmations: int
    rpc_urls: tuple[str, ...]
    broadcast_url: str | None
    native_symbol: str | None
    native_decimals: int
    fee_model: str | None

    @classmethod
    def of(cls, row: Network) -> NetworkView:
        evm = row.kind is NetworkKind.EVM
        return cls(
            row.id,
            row.name,
            row.kind.value,
            row.chain_id,
            row.coin_type,
            row.rpc_url,
            row.required_confirmations,
            rpc_urls_of(row),
            row.broadcast_url,
            native_symbol_of(row) if evm else None,
            NATIVE_DECIMALS[row.kind],
            row.fee_model if evm else None,
        )


@dataclass(frozen=True, slots=True)
class AssetView:
    id: str
    symbol: str
    network: str
    kind: str
    contract: str | None
    decimals: int
    price: str | None


@dataclass(frozen=True, slots=True)
class VaultKeyView:
    scheme: str
    public_key: str
    chain_code: str
    min_signers: int
    max_signers: int
    cosigners: tuple[str, ...]
    backend: str

    @property
    def quorums_overlap(self) -> bool:
        """Whether any two quorums of this key share a co-signer (``2 * min_signers >
        max_signers``): only then do the co-signers' shared records refuse a replay
        and sum a velocity limit across every quorum (docs/cosigner.md, "Records
        shared within a quorum")."""
        return 2 * self.min_signers > self.max_signers

    @property
    def warning(self) -> str | None:
        """What the threshold gives up, when quorums can be disjoint."""
        if self.quorums_overlap:
            return None
        return (
            f"with {self.min_signers}-of-{self.max_signers}, two quorums can share no "
            "co-signer: a compromised server can get one approval signed twice, or split "
            "a velocity limit, through disjoint quorums; choose min_signers > "
            f"{self.max_signers // 2} to close this"
        )

    @classmethod
    def of(cls, row: VaultKey) -> VaultKeyView:
        return cls(
            row.scheme,
            row.public_key,
            row.chain_code,
            row.min_signers,
            row.max_signers,
            tuple(json.loads(row.cosigners)),
            row.backend,
        )


@dataclass(frozen=True, slots=True)
class VaultView:
    id: str
    name: str
    number: int
    custody_mode: str
    keys: tuple[VaultKeyView, ...]
    created_at: datetime


def _name(field: str, value: str) -> str:
    if not _NAME.match(value):
        raise ValidationError(field, "must be 1-64 of a-z, 0-9, '.', '_', '-' (lowercase first)")
    return value


def _vault_view(uow: UnitOfWork, row: Vault) -> VaultView:
    keys = VaultRepository(uow.session, row.workspace_id).keys(row.id)
    return VaultView(
        row.id,
        row.name,
        row.number,
        row.custody_mode.value,
        tuple(VaultKeyView.of(k) for k in keys),
        row.created_at,
    )


def _asset_view(uow: UnitOfWork, row: Asset) -> AssetView:
    network = NetworkRepository(uow.session, row.workspace_id).get(row.network_id)
    assert network is not None  # composite foreign key
    return AssetView(
        row.id, row.symbol, network.name, row.kind.value, row.contract, row.decimals, row.price
    )


# Networks and assets.


def configure_network(
    uow: UnitOfWork,
    principal: Principal,
    *,
    name: str,
    kind: str,
    chain_id: int | None = None,
    rpc_url: str | None = None,
    required_confirmations: int = 1,
    rpc_policy: DestinationPolicy = DEFAULT_RPC_POLICY,
    rpc_urls: Sequence[str] | None = None,
    broadcast_url: str | None = None,
    native_symbol: str | None = None,
    fee_model: str | None = None,
) -> NetworkView:
    """Add a network to the workspace. Its node is ``rpc_url``, or for an EVM network
    ``rpc_urls`` (one or more, tried in order when one cannot be reached); an EVM network
    may also name a private ``broadcast_url``, its ``native_symbol`` and its
    ``fee_model`` (:mod:`.evm_networks`). Every URL must be an http(s) URL that
    ``rpc_policy`` allows (the SSRF guard, :mod:`.destinations`; it may carry the node's
    user and password); the pipeline checks the address it resolves to again at every
    connection. Any valid chain id may be registered: the co-signers accept it once the
    admin quorum lists it in a policy bundle's asset registry.

    Raises:
        Forbidden: the role may not manage vaults.
        ValidationError: a bad name, kind, chain id, URL, symbol, fee model (``legacy``
            is refused) or confirmation count; EVM settings on another kind of network.
        Conflict: a network with this name exists.
    """
    require(principal, Permission.VAULTS_MANAGE)
    try:
        network_kind = NetworkKind(kind)
    except ValueError:
        raise ValidationError("kind", "must be evm, bitcoin or solana") from None
    if rpc_url is not None and rpc_urls is not None:
        raise ValidationError("rpc_urls", "give rpc_url or rpc_urls, not both")
    urls = list(rpc_urls) if rpc_urls is not None else [] if rpc_url is None else [rpc_url]
    settings = None
    if network_kind is NetworkKind.EVM:
        settings = check_evm_network(
            name=name,
            chain_id=chain_id,
            native_symbol=native_symbol,
            fee_model=fee_model or EvmFeeModel.EIP1559.value,
            rpc_urls=urls,
            broadcast_url=broadcast_url,
            rpc_policy=rpc_policy,
        )
        urls = list(settings.rpc_urls)
    else:
        for field, value in (
            ("chain_id", chain_id),
            ("broadcast_url", broadcast_url),
            ("native_symbol", native_symbol),
            ("fee_model", fee_model),
        ):
            if value is not None:
                raise ValidationError(field, f"only EVM networks have a {field}")
        if len(urls) > 1:
            raise ValidationError("rpc_urls", "only EVM networks list several nodes")
        urls = list(check_rpc_urls(urls, rpc_policy))
    if not 1 <= required_confirmations <= 1000:
        raise ValidationError("required_confirmations", "must be between 1 and 1000")
    networks = NetworkRepository(uow.session, principal.workspace_id)
    if networks.by_name(_name("name", name)) is not None:
        raise Conflict(f"a network named {name!r} exists")
    row = networks.add(
        Network(
            name=name,
            kind=network_kind,
            chain_id=chain_id,
            coin_type=COIN_TYPES[network_kind],
            rpc_url=urls[0] if urls else None,
            fallback_rpc_urls=json.dumps(urls[1:]),
            broadcast_url=None if settings is None else settings.broadcast_url,
            native_symbol=None if settings is None else settings.native_symbol,
            fee_model=EvmFeeModel.EIP1559.value,
            required_confirmations=required_confirmations,
            created_at=utcnow(),
        )
    )
    details: dict[str, JsonValue] = {"name": name, "kind": network_kind.value, "chain_id": chain_id}
    if settings is not None:
        details.update(
            native_symbol=settings.native_symbol,
            nodes=len(urls),
            private_broadcast=settings.broadcast_url is not None,
        )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="network.configure",
        resource_type="network",
        resource_id=row.id,
        details=details,
    )
    return NetworkView.of(row)


def list_networks(uow: UnitOfWork, principal: Principal) -> list[NetworkView]:
    """The workspace's networks."""
    require(principal, Permission.VAULTS_READ)
    return [
        NetworkView.of(n) for n in NetworkRepository(uow.session, principal.workspace_id).list()
    ]


def add_asset(
    uow: UnitOfWork,
    principal: Principal,
    *,
    symbol: str,
    network: str,
    kind: str = "native",
    contract: str | None = None,
    decimals: int | None = None,
    price: str | None = None,
) -> AssetView:
    """Add an asset: a network's native coin, or an ERC-20 token on an EVM network.

    ``price`` (one whole unit in the policy's reference currency) is the static price
    the asset registry the server proposes with the next policy carries
    (:mod:`shardvault.service.asset_registry`); it counts once the admins sign it.

    An asset is unique per (network, contract), and a network has one native asset: a
    second would give the same coin two prices or two names.

    Raises:
        Forbidden, NotFound (network), ValidationError, Conflict (symbol taken, the
        network's native asset or the contract's asset exists).
    """
    require(principal, Permission.VAULTS_MANAGE)
    if not _SYMBOL.match(symbol):
        raise ValidationError("symbol", "must be 1-32 of A-Z, a-z, 0-9, '.', '_', '-'")
    row_network = NetworkRepository(uow.session, principal.workspace_id).by_name(network)
    if row_network is None:
        raise NotFound("network", network)
    try:
        asset_kind = AssetKind(kind)
    except ValueError:
        raise ValidationError("kind", "must be native or erc20") from None
    if asset_kind is AssetKind.NATIVE:
        if contract is not None:
            raise ValidationError("contract", "a native asset has no contract")
        expected = NATIVE_DECIMALS[row_network.kind]
        if decimals is not None and decimals != expected:
            raise ValidationError("decimals", f"the native asset has {expected} decimals")
        decimals = expected
    else:
        if row_network.kind is not NetworkKind.EVM:
            raise ValidationError("kind", "ERC-20 tokens live on EVM networks")
        if contract is None:
            raise ValidationError("contract", "an ERC-20 asset needs its contract address")
        try:
            contract = parse_address(contract, field="contract").checksummed
        except ChainError as exc:
            raise ValidationError("contract", exc.reason) from None
        if decimals is None or not 0 <= decimals <= 36:
            raise ValidationError("decimals", "an ERC-20 asset needs decimals between 0 and 36")
    if price is not None and not re.match(r"^(0|[1-9][0-9]{0,30})(\.[0-9]{1,18})?$", price):
        raise ValidationError("price", "must be a non-negative decimal string")
    assets = AssetRepository(uow.session, principal.workspace_id)
    if assets.by_symbol(symbol) is not None:
        raise Conflict(f"an asset with symbol {symbol!r} exists")
    held = assets.on_network(row_network.id, contract)
    if held is not None:
        raise Conflict(_duplicate(network, contract, held.symbol))
    try:
        row = assets.add(
            Asset(
                network_id=row_network.id,
                symbol=symbol,
                kind=asset_kind,
                contract=contract,
                decimals=decimals,
                price=price,
                created_at=utcnow(),
            )
        )
    except IntegrityError:
        # A concurrent request added the same asset between the check and the insert.
        raise Conflict(_duplicate(network, contract, None)) from None
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="asset.add",
        resource_type="asset",
        resource_id=row.id,
        details={"symbol": symbol, "network": network, "kind": asset_kind.value},
    )
    return _asset_view(uow, row)


def _duplicate(network: str, contract: str | None, symbol: str | None) -> str:
    held = "" if symbol is None else f" ({symbol!r})"
    if contract is None:
        return f"network {network!r} already has its native asset{held}"
    return f"network {network!r} already has an asset of contract {contract}{held}"


def list_assets(uow: UnitOfWork, principal: Principal) -> list[AssetView]:
    """The workspace's assets."""
    require(principal, Permission.VAULTS_READ)
    rows = AssetRepository(uow.session, principal.workspace_id).list()
    return [_asset_view(uow, a) for a in rows]


# Vaults.


def check_vault_request(
    principal: Principal,
    *,
    name: str,
    schemes: list[str],
    min_signers: int,
    max_signers: int,
    max_signers_choices: Sequence[int] = PARTY_COUNTS,
) -> list[Scheme]:
    """Validate a vault request before any key generation runs. ``max_signers_choices``
    are the party counts the signing backend can make keys for (its
    ``max_signers_choices``: the co-signer backend has exactly the workspace's
    co-signers); ``min_signers`` must be 2 to ``max_signers``.

    Raises:
        Forbidden, ValidationError.
    """
    require(principal, Permission.VAULTS_MANAGE)
    _name("name", name)
    if not schemes or len(set(schemes)) != len(schemes):
        raise ValidationError("schemes", "name at least one scheme, each once")
    checked: list[Scheme] = []
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise ValidationError("schemes", f"unknown scheme {scheme!r}")
        checked.append(scheme)
    if max_signers not in max_signers_choices:
        raise ValidationError(
            "max_signers",
            f"must be {_choices(max_signers_choices)} with this server's signing backend "
            f"(not {max_signers})",
        )
    if not MIN_SIGNERS <= min_signers <= max_signers:
        raise ValidationError(
            "min_signers",
            f"must be {MIN_SIGNERS} to max_signers ({max_signers}), not {min_signers}: "
            "with 1, any single share could sign alone",
        )
    return checked


def _choices(values: Sequence[int]) -> str:
    """``3``, ``2 or 3``, or ``2 to 16`` (a run of consecutive values)."""
    ordered = sorted(set(values))
    if len(ordered) == 1:
        return str(ordered[0])
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]} to {ordered[-1]}"
    return ", ".join(map(str, ordered[:-1])) + f" or {ordered[-1]}"


VaultKeygenProgress = Callable[[Scheme, int, int], None]
"""Told ``(scheme, steps_done, steps_total)`` as a vault's key generations advance."""


def generate_vault_keys(
    backend: SigningBackend,
    *,
    workspace_id: str,
    vault_id: str,
    schemes: list[Scheme],
    min_signers: int,
    max_signers: int,
    initiator: str = "system",
    progress: VaultKeygenProgress | None = None,
) -> list[GeneratedKey]:
    """Run one DKG per scheme through ``backend`` (outside any database transaction).
    ``initiator`` (the asking user's email) is what the co-signers' policy sees;
    ``progress``, if given, is told each scheme's steps as its DKG advances."""
    return [
        backend.keygen(
            workspace_id=workspace_id,
            vault_id=vault_id,
            scheme=scheme,
            min_signers=min_signers,
            max_signers=max_signers,
            initiator=initiator,
            progress=functools.partial(progress, scheme) if progress is not None else None,
        )
        for scheme in schemes
    ]


def initiator_email(uow: UnitOfWork, principal: Principal) -> str:
    """The email of the user behind ``principal`` (the policy's initiator id)."""
    user = uow.users(principal.workspace_id).get(principal.user_id)
    return user.email if user is not None else principal.user_id


def record_vault(
    uow: UnitOfWork,
    principal: Principal,
    *,
    vault_id: str,
    name: str,
    keys: list[GeneratedKey],
    backend_name: str,
) -> VaultView:
    """Store a vault and the public outcome of its key generations.

    Raises:
        Forbidden, Conflict (the name is taken).
    """
    require(principal, Permission.VAULTS_MANAGE)
    vaults = VaultRepository(uow.session, principal.workspace_id)
    if vaults.by_name(name) is not None:
        raise Conflict(f"a vault named {name!r} exists")
    row = vaults.add(
        name=name,
        row=Vault(id=vault_id, custody_mode=CustodyMode.MPC, created_at=utcnow()),
    )
    for key in keys:
        vaults.add_key(
            VaultKey(
                vault_id=row.id,
                scheme=key.scheme,
                public_key=key.public_key.hex(),
                chain_code=key.chain_code.hex(),
                min_signers=key.min_signers,
                max_signers=key.max_signers,
                cosigners=json.dumps(list(key.cosigners)),
                backend=backend_name,
                backend_key_id=key.backend_key_id,
                created_at=utcnow(),
            )
        )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="vault.create",
        resource_type="vault",
        resource_id=row.id,
        details={
            "name": name,
            "custody_mode": CustodyMode.MPC.value,
            "number": row.number,
            "keys": [
                {
                    "scheme": k.scheme,
                    "public_key": k.public_key.hex(),
                    "min_signers": k.min_signers,
                    "max_signers": k.max_signers,
                    "test_only": k.test_only,
                }
                for k in keys
            ],
        },
    )
    return _vault_view(uow, row)


def get_vault(uow: UnitOfWork, principal: Principal, vault_id: str) -> VaultView:
    """One vault of the workspace.

    Raises:
        Forbidden, NotFound.
    """
    require(principal, Permission.VAULTS_READ)
    row = VaultRepository(uow.session, principal.workspace_id).get(vault_id)
    if row is None:
        raise NotFound("vault", vault_id)
    return _vault_view(uow, row)


def list_vaults(
    uow: UnitOfWork, principal: Principal, *, limit: int = 50, cursor: str | None = None
) -> Page[VaultView]:
    """A page of the workspace's vaults, in id order."""
    require(principal, Permission.VAULTS_READ)
    size = page_size(limit)
    rows = VaultRepository(uow.session, principal.workspace_id).list(
        limit=size + 1, after_id=decode_cursor(cursor)
    )
    return page_of(rows, size, lambda r: _vault_view(uow, r), lambda item: encode_cursor(item.id))
