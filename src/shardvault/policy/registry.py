"""The asset registry: the networks, assets, decimals and static prices a bundle signs.

A co-signer reads a payload's amount in base units and its network and asset as the
chain encodes them (an EVM chain id, a token contract, a Solana mint). What that means
to the policy (the network's name, the asset's id and decimals, its price) must come
from something the admin quorum signed, not from the coordinator (DESIGN.md invariant
12): that is this registry, an optional ``assets`` section of the policy bundle. It also
names the **price keys** whose signed reports (:mod:`.prices`) price assets without a
static price, and how old such a report may be.

Document (YAML or JSON; canonical JSON in the bundle, networks sorted by name and
assets by id, prices normalised, contracts in EIP-55 form)::

    {"format": "shardvault.asset-registry/v1",
     "networks": [{"name": "ethereum", "chain": "ethereum", "chain_id": 1,
                   "assets": [{"id": "ETH", "native": true, "decimals": 18,
                               "price": "3000"},
                              {"id": "USDC", "contract": "0xA0b8...", "decimals": 6}]},
                  {"name": "devnet-b", "chain": "ethereum", "chain_id": 31338,
                   "native_symbol": "ETH", "assets": [...]},
                  {"name": "solana", "chain": "solana",
                   "assets": [{"id": "SOL", "native": true, "decimals": 9}]}],
     "price_keys": [{"id": "oracle-1", "algorithm": "ed25519", "public_key": "hex"}],
     "max_price_age": 300}

Rules (each refused with the path at fault):

* ``chain`` is ``ethereum`` (any EVM chain), ``solana`` or ``bitcoin``.
* An EVM network has a ``chain_id``: any valid EIP-155 id. A well-known one
  (:data:`shardvault.chains.ethereum.KNOWN_NETWORKS`) keeps that table's name and native
  symbol: fee caps, rules and transfer intents name it that way, so the registry cannot
  call chain 1 ``sepolia``. Any other chain id may take any valid name that is not a
  well-known network's or a Bitcoin network's, and names its ``native_symbol`` (what a
  transfer's intent calls its native coin; written only for such chain ids). No two
  networks share a chain id.
* Solana and Bitcoin payloads do not say which network they are for, so a registry lists
  **at most one** network of each of the two; a co-signer takes that one's name, and a
  Bitcoin network's name (``bitcoin``, ``testnet``, ``signet``, ``regtest``, or
  ``mainnet``/``main``/``test``) sets how addresses are encoded.
* Network names are unique; asset ids are unique per network and so are contracts (an
  ERC-20 ``contract``, a Solana ``mint``); a network has at most one ``native: true``
  asset, whose decimals are the chain's (18, 9, 8). Bitcoin networks hold only native
  assets.
* ``price`` is a static price of one whole unit in the policy's reference currency, as a
  decimal string. ``price_keys`` and ``max_price_age`` (1 s to 7 days) come together.

Resolution (:func:`payload_network`, :func:`payload_asset`) answers what a payload means
to the policy. With a registry, an EVM chain id it does not list is refused, well-known
or not. Without a registry the built-in defaults apply: a well-known EVM chain id's name
and native coin from ``KNOWN_NETWORKS`` (18 decimals; any other chain id is refused),
``solana`` with SOL (9), ``bitcoin`` (mainnet) with BTC (8); no token is understood
without a registry.
A rule that limits value with no signed price for an asset it can see is refused when
a bundle is offered (:func:`shardvault.policy.signed_inputs.refuse_unsigned_inputs`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shardvault.chains.bitcoin import NETWORK_NAMES as BITCOIN_NETWORK_NAMES
from shardvault.chains.bitcoin import Network as BitcoinNetwork
from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import WELL_KNOWN_NAMES, parse_address, well_known
from shardvault.chains.ethereum.models import check_chain_id
from shardvault.chains.solana import Pubkey
from shardvault.policy._exact import decimal_string, decimal_text
from shardvault.policy.errors import (
    ConfigurationKeyError,
    PolicyDocumentError,
    UnknownAssetError,
    UnknownFieldError,
    UnknownNetworkError,
)
from shardvault.policy.keys import PublicKey
from shardvault.policy.text import DocumentFormat, check_depth, parse_text

REGISTRY_FORMAT = "shardvault.asset-registry/v1"
"""The ``format`` value of asset-registry documents."""

MAX_NETWORKS = 64
"""The most networks one registry lists."""

MAX_ASSETS = 1024
"""The most assets one registry lists, over all its networks."""

MAX_PRICE_KEYS = 16
"""The most price keys one registry names."""

MAX_PRICE_AGE = 7 * 86_400
"""The longest ``max_price_age`` (seconds) a registry may set."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class Chain(StrEnum):
    """The chain family of a network: how its payloads are read."""

    ETHEREUM = "ethereum"
    SOLANA = "solana"
    BITCOIN = "bitcoin"


NATIVE_DECIMALS: Mapping[Chain, int] = {Chain.ETHEREUM: 18, Chain.SOLANA: 9, Chain.BITCOIN: 8}
"""The decimals of each chain family's native coin (wei, lamports, satoshi)."""

DEFAULT_NETWORK: Mapping[Chain, str] = {Chain.SOLANA: "solana", Chain.BITCOIN: "bitcoin"}
"""Without a registry, the network a Solana or Bitcoin payload is taken to be on."""

DEFAULT_NATIVE: Mapping[Chain, str] = {Chain.SOLANA: "SOL", Chain.BITCOIN: "BTC"}
"""Without a registry, the id of Solana's and Bitcoin's native coin."""


@dataclass(frozen=True, slots=True)
class RegistryAsset:
    """An asset on one network: its id, decimals, contract (``None`` for the native
    coin; an EIP-55 address or a base58 mint) and static price, if any."""

    id: str
    decimals: int
    contract: str | None = None
    price: Decimal | None = None

    @property
    def native(self) -> bool:
        """Whether this is the network's native coin."""
        return self.contract is None


@dataclass(frozen=True, slots=True)
class RegistryNetwork:
    """A network the admins registered, with its assets. ``native_symbol`` is what a
    transfer's intent calls the native coin of an EVM chain id that is not well known
    (``None`` otherwise: the table's symbol, or Solana's and Bitcoin's own)."""

    name: str
    chain: Chain
    chain_id: int | None
    assets: tuple[RegistryAsset, ...]
    native_symbol: str | None = None

    @property
    def chain_symbol(self) -> str:
        """The native coin's symbol as the chain names it (an intent's asset)."""
        if self.native_symbol is not None:
            return self.native_symbol
        known = well_known(self.chain_id) if self.chain is Chain.ETHEREUM else None
        return known.native_symbol if known is not None else DEFAULT_NATIVE.get(self.chain, "ETH")

    def get(self, asset_id: str) -> RegistryAsset | None:
        """The asset with id ``asset_id``, if listed."""
        return next((a for a in self.assets if a.id == asset_id), None)

    def native(self) -> RegistryAsset | None:
        """The native coin, if listed."""
        return next((a for a in self.assets if a.native), None)

    def token(self, contract: str) -> RegistryAsset | None:
        """The token of ``contract`` (compared in canonical form), if listed."""
        wanted = _canonical_contract(self.chain, contract)
        return next((a for a in self.assets if a.contract == wanted), None)


@dataclass(frozen=True, slots=True)
class PriceKey:
    """A key whose signed reports price assets (:mod:`.prices`)."""

    id: str
    key: PublicKey


@dataclass(frozen=True, slots=True)
class AssetRegistry:
    """The registry a bundle signs (module docstring): its networks, price keys and the
    oldest price report a co-signer uses."""

    networks: tuple[RegistryNetwork, ...]
    price_keys: tuple[PriceKey, ...] = ()
    max_price_age: int | None = None

    def network(self, name: str) -> RegistryNetwork | None:
        """The network named ``name``, if listed."""
        return next((n for n in self.networks if n.name == name), None)

    def evm_network(self, chain_id: int) -> RegistryNetwork | None:
        """The EVM network of ``chain_id``, if listed."""
        return next(
            (n for n in self.networks if n.chain is Chain.ETHEREUM and n.chain_id == chain_id),
            None,
        )

    def only_network(self, chain: Chain) -> RegistryNetwork | None:
        """The one Solana or Bitcoin network, if listed."""
        return next((n for n in self.networks if n.chain is chain), None)

    def asset(self, network: str, asset_id: str) -> RegistryAsset | None:
        """Asset ``asset_id`` of network ``network``, if listed."""
        listed = self.network(network)
        return None if listed is None else listed.get(asset_id)

    def price_key(self, key_id: str) -> PriceKey | None:
        """The price key ``key_id``, if named."""
        return next((k for k in self.price_keys if k.id == key_id), None)

    def all_assets(self) -> Iterable[tuple[RegistryNetwork, RegistryAsset]]:
        """Every (network, asset) pair, networks by name and assets by id."""
        for network in self.networks:
            for asset in network.assets:
                yield network, asset

    def to_document(self) -> dict[str, object]:
        """The canonical document (module docstring) that bundles sign."""
        networks = []
        for network in sorted(self.networks, key=lambda n: n.name):
            item: dict[str, object] = {"name": network.name, "chain": network.chain.value}
            if network.chain_id is not None:
                item["chain_id"] = network.chain_id
            if network.native_symbol is not None:
                item["native_symbol"] = network.native_symbol
            item["assets"] = [
                _asset_document(network.chain, a)
                for a in sorted(network.assets, key=lambda a: a.id)
            ]
            networks.append(item)
        document: dict[str, object] = {"format": REGISTRY_FORMAT, "networks": networks}
        if self.price_keys:
            document["price_keys"] = [
                {"id": k.id, "algorithm": k.key.algorithm.value, "public_key": k.key.hex()}
                for k in sorted(self.price_keys, key=lambda k: k.id)
            ]
            document["max_price_age"] = self.max_price_age
        return document


def _asset_document(chain: Chain, asset: RegistryAsset) -> dict[str, object]:
    item: dict[str, object] = {"id": asset.id}
    if asset.contract is None:
        item["native"] = True
    else:
        item["mint" if chain is Chain.SOLANA else "contract"] = asset.contract
    item["decimals"] = asset.decimals
    if asset.price is not None:
        item["price"] = decimal_string(asset.price)
    return item


# --- Reading documents ----------------------------------------------------------------


def _fields(
    value: object, path: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise PolicyDocumentError("expected a mapping", path=path)
    for key in value:
        if key not in required and key not in optional:
            known = ", ".join(sorted(required | set(optional)))
            raise UnknownFieldError(f"unknown field {key!r} (expected {known})", path=path)
    for key in sorted(required - set(value)):
        raise PolicyDocumentError(f"missing field {key!r}", path=path)
    return dict(value)


def _matching(value: object, pattern: re.Pattern[str], path: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PolicyDocumentError(f"expected {what}", path=path)
    return value


def _list(value: object, path: str, most: int) -> list[object]:
    if not isinstance(value, list):
        raise PolicyDocumentError("expected a list", path=path)
    if len(value) > most:
        raise PolicyDocumentError(f"at most {most} entries", path=path)
    return value


def _int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyDocumentError(f"expected an integer from {low} to {high}", path=path)
    return value


def _canonical_contract(chain: Chain, text: str, path: str = "contract") -> str:
    """A token's contract in canonical form (EIP-55 address, base58 mint).

    Raises:
        PolicyDocumentError: not an address of the chain, or a chain without tokens.
    """
    try:
        if chain is Chain.ETHEREUM:
            return parse_address(text, field=path).checksummed
        if chain is Chain.SOLANA:
            return str(Pubkey.from_base58(text, field=path))
    except ChainError as exc:
        raise PolicyDocumentError(exc.reason, path=path) from None
    raise PolicyDocumentError("Bitcoin networks list only their native coin", path=path)


def _asset(value: object, path: str, chain: Chain) -> RegistryAsset:
    token_field = "mint" if chain is Chain.SOLANA else "contract"
    obj = _fields(value, path, {"id", "decimals"}, {"native", token_field, "price"})
    asset_id = _matching(obj["id"], _ID, f"{path}.id", "an id of 1-64 of A-Z a-z 0-9 . _ -")
    decimals = _int(obj["decimals"], f"{path}.decimals", 0, 36)
    native = obj.get("native", False)
    if native is not True and native is not False:
        raise PolicyDocumentError("expected true", path=f"{path}.native")
    contract = None
    if native:
        if token_field in obj:
            raise PolicyDocumentError(f"a native asset has no {token_field}", path=path)
        if decimals != NATIVE_DECIMALS[chain]:
            raise PolicyDocumentError(
                f"the native coin of {chain.value} networks has {NATIVE_DECIMALS[chain]} decimals",
                path=f"{path}.decimals",
            )
    else:
        if token_field not in obj:
            raise PolicyDocumentError(f"give native: true or the token's {token_field}", path=path)
        raw = obj[token_field]
        if not isinstance(raw, str):
            raise PolicyDocumentError("expected an address", path=f"{path}.{token_field}")
        contract = _canonical_contract(chain, raw, f"{path}.{token_field}")
    price = None
    if "price" in obj:
        price = decimal_text(obj["price"])
        if price is None:
            raise PolicyDocumentError(
                'expected a non-negative decimal string such as "3000.25"', path=f"{path}.price"
            )
    return RegistryAsset(asset_id, decimals, contract, price)


def _evm_identity(obj: Mapping[str, object], name: str, path: str) -> tuple[int, str | None]:
    """An EVM network's chain id and, for a chain id that is not well known, its native
    symbol (module docstring: a well-known chain id keeps its name and symbol)."""
    if "chain_id" not in obj:
        raise PolicyDocumentError("an EVM network needs its chain_id", path=path)
    chain_id = _int(obj["chain_id"], f"{path}.chain_id", 1, 2**64 - 1)
    try:
        check_chain_id(chain_id)
    except ChainError as exc:
        raise PolicyDocumentError(exc.reason, path=f"{path}.chain_id") from None
    symbol = obj.get("native_symbol")
    if symbol is not None:
        symbol = _matching(
            symbol, _SYMBOL, f"{path}.native_symbol", "a symbol of 1-32 of A-Z a-z 0-9 . _ -"
        )
    known = well_known(chain_id)
    if known is not None:
        if known.name != name:
            raise PolicyDocumentError(
                f"chain id {chain_id} is named {known.name!r}", path=f"{path}.name"
            )
        if symbol is not None and symbol != known.native_symbol:
            raise PolicyDocumentError(
                f"the native coin of chain id {chain_id} is {known.native_symbol!r}",
                path=f"{path}.native_symbol",
            )
        return chain_id, None
    if name in WELL_KNOWN_NAMES or name in BITCOIN_NETWORK_NAMES:
        raise PolicyDocumentError(
            f"{name!r} names another network (a well-known EVM chain id or a Bitcoin "
            f"network), not chain id {chain_id}",
            path=f"{path}.name",
        )
    if symbol is None:
        raise PolicyDocumentError(
            f"chain id {chain_id} is not a well-known network: give its native_symbol",
            path=path,
        )
    return chain_id, symbol


def _network(value: object, path: str) -> RegistryNetwork:
    obj = _fields(value, path, {"name", "chain", "assets"}, {"chain_id", "native_symbol"})
    name = _matching(
        obj["name"], _NAME, f"{path}.name", "a name of 1-64 of a-z 0-9 . _ - (lowercase first)"
    )
    try:
        chain = Chain(str(obj["chain"]))
    except ValueError:
        raise PolicyDocumentError(
            "expected ethereum, solana or bitcoin", path=f"{path}.chain"
        ) from None
    chain_id = native_symbol = None
    if chain is Chain.ETHEREUM:
        chain_id, native_symbol = _evm_identity(obj, name, path)
    elif "native_symbol" in obj:
        raise PolicyDocumentError(
            "only EVM networks name their native_symbol", path=f"{path}.native_symbol"
        )
    elif "chain_id" in obj:
        raise PolicyDocumentError("only EVM networks have a chain_id", path=f"{path}.chain_id")
    elif chain is Chain.BITCOIN:
        try:
            BitcoinNetwork.from_name(name)
        except ChainError:
            raise PolicyDocumentError(
                "a Bitcoin network is named bitcoin, testnet, signet or regtest",
                path=f"{path}.name",
            ) from None
    items = _list(obj["assets"], f"{path}.assets", MAX_ASSETS)
    assets = [_asset(item, f"{path}.assets[{i}]", chain) for i, item in enumerate(items)]
    ids: set[str] = set()
    contracts: set[str | None] = set()
    for i, asset in enumerate(assets):
        where = f"{path}.assets[{i}]"
        if asset.id in ids:
            raise PolicyDocumentError(f"asset id {asset.id!r} is listed twice", path=where)
        if asset.contract in contracts:
            what = "a second native asset" if asset.native else f"{asset.contract} again"
            raise PolicyDocumentError(f"{what} on network {name!r}", path=where)
        ids.add(asset.id)
        contracts.add(asset.contract)
    return RegistryNetwork(
        name, chain, chain_id, tuple(sorted(assets, key=lambda a: a.id)), native_symbol
    )


def _price_keys(value: object, path: str) -> tuple[PriceKey, ...]:
    items = _list(value, path, MAX_PRICE_KEYS)
    keys: list[PriceKey] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        obj = _fields(item, where, {"id", "algorithm", "public_key"})
        key_id = _matching(obj["id"], _ID, f"{where}.id", "an id of 1-64 of A-Z a-z 0-9 . _ -")
        algorithm, public = obj["algorithm"], obj["public_key"]
        if not isinstance(algorithm, str) or not isinstance(public, str):
            raise PolicyDocumentError("algorithm and public_key are strings", path=where)
        try:
            key = PublicKey.parse(algorithm, public, path=where)
        except ConfigurationKeyError as exc:
            raise PolicyDocumentError(exc.reason, path=exc.path) from None
        if any(k.id == key_id for k in keys):
            raise PolicyDocumentError(f"price key {key_id!r} is listed twice", path=where)
        if any(k.key == key for k in keys):
            raise PolicyDocumentError("a public key is listed twice", path=where)
        keys.append(PriceKey(key_id, key))
    return tuple(sorted(keys, key=lambda k: k.id))


def parse_registry(data: object, path: str = "assets") -> AssetRegistry:
    """Read a registry document (module docstring).

    Raises:
        UnknownFieldError: a field the format does not define.
        PolicyDocumentError: anything else malformed or inconsistent, naming the path
            (a duplicate name, chain id, asset id or contract; a second Solana or Bitcoin
            network; a well-known chain id under another name or native symbol, another
            chain id under a well-known name or without its native symbol; native
            decimals other than the chain's; price keys without a maximum age).
    """
    check_depth(data, path)
    obj = _fields(data, path, {"format", "networks"}, {"price_keys", "max_price_age"})
    if obj["format"] != REGISTRY_FORMAT:
        raise PolicyDocumentError(f"expected format {REGISTRY_FORMAT!r}", path=f"{path}.format")
    items = _list(obj["networks"], f"{path}.networks", MAX_NETWORKS)
    networks = [_network(item, f"{path}.networks[{i}]") for i, item in enumerate(items)]
    seen_names: set[str] = set()
    seen_ids: set[int] = set()
    seen_chains: set[Chain] = set()
    for i, network in enumerate(networks):
        where = f"{path}.networks[{i}]"
        if network.name in seen_names:
            raise PolicyDocumentError(f"network {network.name!r} is listed twice", path=where)
        if network.chain_id is not None and network.chain_id in seen_ids:
            raise PolicyDocumentError(f"chain id {network.chain_id} is listed twice", path=where)
        if network.chain in DEFAULT_NETWORK and network.chain in seen_chains:
            raise PolicyDocumentError(
                f"a second {network.chain.value} network: its payloads do not name their "
                "network, so a registry lists at most one",
                path=where,
            )
        seen_names.add(network.name)
        seen_chains.add(network.chain)
        if network.chain_id is not None:
            seen_ids.add(network.chain_id)
    if sum(len(n.assets) for n in networks) > MAX_ASSETS:
        raise PolicyDocumentError(f"at most {MAX_ASSETS} assets", path=f"{path}.networks")
    keys = _price_keys(obj["price_keys"], f"{path}.price_keys") if "price_keys" in obj else ()
    max_age = None
    if "max_price_age" in obj:
        max_age = _int(obj["max_price_age"], f"{path}.max_price_age", 1, MAX_PRICE_AGE)
    if bool(keys) != (max_age is not None):
        raise PolicyDocumentError(
            "price_keys (at least one) and max_price_age go together", path=path
        )
    return AssetRegistry(tuple(sorted(networks, key=lambda n: n.name)), keys, max_age)


def load_registry(text: str, fmt: DocumentFormat = "yaml") -> AssetRegistry:
    """Parse a registry document from YAML or JSON text. Raises as :func:`parse_registry`."""
    return parse_registry(parse_text(text, fmt))


# --- What a payload means to the policy -----------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedAsset:
    """A payload's network and asset as the policy names them (``network``, ``id``,
    ``decimals``), and the asset as the payload itself names it (``chain_asset``: an
    EVM network's native symbol, ``SOL``, ``BTC``, a token contract or mint), which a
    transfer's intent carries."""

    network: str
    id: str
    decimals: int
    chain_asset: str


def payload_network(
    registry: AssetRegistry | None, chain: Chain, chain_id: int | None = None
) -> str:
    """The name of the network a payload of ``chain`` (with ``chain_id`` for EVM) is on.

    Raises:
        UnknownNetworkError: a chain id or chain family the registry does not list, or
            (without a registry) an EVM chain id outside ``KNOWN_NETWORKS``.
    """
    if chain is Chain.ETHEREUM:
        return _evm_network(registry, chain_id).name
    return _solana_or_bitcoin_network(registry, chain)


def _evm_network(registry: AssetRegistry | None, chain_id: int | None) -> RegistryNetwork:
    """The network of an EVM payload's ``chain_id``: the registry's entry, or without a
    registry the well-known one (as an entry without assets).

    Raises:
        UnknownNetworkError: as :func:`payload_network`, naming the chain id.
    """
    known = well_known(chain_id)
    if registry is None:
        if known is None:
            raise UnknownNetworkError(
                f"chain id {chain_id} is not a well-known network, and no signed asset "
                "registry lists it"
            )
        return RegistryNetwork(known.name, Chain.ETHEREUM, known.chain_id, ())
    listed = None if chain_id is None else registry.evm_network(chain_id)
    if listed is None:
        named = f" ({known.name})" if known is not None else ""
        raise UnknownNetworkError(f"chain id {chain_id}{named} is not in the signed asset registry")
    return listed


def _solana_or_bitcoin_network(registry: AssetRegistry | None, chain: Chain) -> str:
    """The name of the one Solana or Bitcoin network (see :func:`payload_network`)."""
    if registry is None:
        return DEFAULT_NETWORK[chain]
    only = registry.only_network(chain)
    if only is None:
        raise UnknownNetworkError(f"the signed asset registry names no {chain.value} network")
    return only.name


def payload_asset(
    registry: AssetRegistry | None,
    chain: Chain,
    *,
    chain_id: int | None = None,
    contract: str | None = None,
) -> ResolvedAsset:
    """What a payload moving ``contract`` (``None``: the native coin) means to the policy.

    Raises:
        UnknownNetworkError: see :func:`payload_network`.
        UnknownAssetError: a token without a registry, a token or native coin the
            registry does not list on the payload's network.
    """
    if chain is Chain.ETHEREUM:
        evm = _evm_network(registry, chain_id)
        network, native_symbol = evm.name, evm.chain_symbol
    else:
        network, native_symbol = _solana_or_bitcoin_network(registry, chain), DEFAULT_NATIVE[chain]
    if contract is None:
        if registry is None:
            return ResolvedAsset(network, native_symbol, NATIVE_DECIMALS[chain], native_symbol)
        listed_network = registry.network(network)
        native = None if listed_network is None else listed_network.native()
        if native is None:
            raise UnknownAssetError(
                f"the signed asset registry lists no native asset on network {network!r}"
            )
        return ResolvedAsset(network, native.id, native.decimals, native_symbol)
    try:
        canonical = _canonical_contract(chain, contract)
    except PolicyDocumentError as exc:
        raise UnknownAssetError(f"unknown token {contract}: {exc.reason}") from None
    if registry is None:
        raise UnknownAssetError(f"unknown token {canonical}: no signed asset registry")
    listed_network = registry.network(network)
    token = None if listed_network is None else listed_network.token(canonical)
    if token is None:
        raise UnknownAssetError(
            f"unknown token {canonical}: not in the signed asset registry of {network!r}"
        )
    return ResolvedAsset(network, token.id, token.decimals, canonical)
