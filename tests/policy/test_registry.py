"""The asset registry a bundle signs: its document, every refusal of a bad one, and what a
payload means to the policy with and without it (docs/policy.md, "Asset registry")."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from shardvault.policy import (
    MalformedBundleError,
    PolicyDocumentError,
    UnknownAssetError,
    UnknownFieldError,
    UnknownNetworkError,
    load_registry,
    new_bundle,
    parse_bundle,
    parse_policy,
    parse_registry,
    payload_asset,
    payload_network,
)
from shardvault.policy.load import parse_address_book
from shardvault.policy.registry import Chain

from ._support import USDC_CONTRACT, ed25519_key
from .test_bundle import ADMINS, WORKSPACE

USDC = USDC_CONTRACT
MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
ORACLE = ed25519_key("oracle").verify_key.encode().hex()

DOCUMENT: dict[str, Any] = {
    "format": "shardvault.asset-registry/v1",
    "networks": [
        {
            "name": "solana",
            "chain": "solana",
            "assets": [
                {"id": "USDC", "mint": MINT, "decimals": 6, "price": "1.00"},
                {"id": "SOL", "native": True, "decimals": 9},
            ],
        },
        {
            "name": "ethereum",
            "chain": "ethereum",
            "chain_id": 1,
            "assets": [
                {"id": "USDC", "contract": USDC.lower(), "decimals": 6, "price": "1"},
                {"id": "ETH", "native": True, "decimals": 18, "price": "3000.50"},
            ],
        },
        {
            "name": "regtest",
            "chain": "bitcoin",
            "assets": [{"id": "BTC", "native": True, "decimals": 8}],
        },
    ],
    "price_keys": [{"id": "oracle", "algorithm": "ed25519", "public_key": ORACLE}],
    "max_price_age": 300,
}

DEVNET: dict[str, Any] = {
    "name": "devnet-b",
    "chain": "ethereum",
    "chain_id": 31338,
    "native_symbol": "DEV",
    "assets": [{"id": "DEV", "native": True, "decimals": 18}],
}
"""An EVM network outside the well-known table (hardhat's second dev chain, say)."""

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [{"name": "all", "action": "allow"}],
}
BOOK = parse_address_book({"format": "shardvault.address-book/v1", "entries": []})


def test_the_canonical_document_sorts_normalises_and_round_trips():
    registry = parse_registry(DOCUMENT)
    document = registry.to_document()
    assert [n["name"] for n in document["networks"]] == ["ethereum", "regtest", "solana"]
    ethereum = document["networks"][0]
    assert [a["id"] for a in ethereum["assets"]] == ["ETH", "USDC"]
    assert ethereum["assets"][0] == {"id": "ETH", "native": True, "decimals": 18, "price": "3000.5"}
    assert ethereum["assets"][1]["contract"] == USDC  # EIP-55
    assert document["networks"][2]["assets"][1] == {
        "id": "USDC",
        "mint": MINT,
        "decimals": 6,
        "price": "1",
    }
    assert parse_registry(document) == registry
    assert load_registry(json.dumps(DOCUMENT), "json") == registry


def test_equivalent_documents_give_one_bundle_hash_and_no_registry_keeps_the_old_one():
    policy = parse_policy(POLICY)
    reordered = copy.deepcopy(DOCUMENT)
    reordered["networks"].reverse()
    for network in reordered["networks"]:
        network["assets"].reverse()
    first = new_bundle(WORKSPACE, policy, BOOK, ADMINS, assets=parse_registry(DOCUMENT))
    second = new_bundle(WORKSPACE, policy, BOOK, ADMINS, assets=parse_registry(reordered))
    assert first.hash() == second.hash()
    assert parse_bundle(first.to_json()).hash() == first.hash()
    assert parse_bundle(first.to_json()).assets == first.assets
    bare = new_bundle(WORKSPACE, policy, BOOK, ADMINS)
    assert "assets" not in json.loads(bare.payload())
    assert bare.hash() != first.hash()


def _set(path: str, value: object):
    """A change that sets the field at ``path`` (dotted; list indexes as numbers), or
    deletes it for :data:`_DELETE`, or appends to the list at ``path`` for ``+``."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if last == "+":
            target.append(value)
        elif value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()
ETH = "networks.1"
ETH_ASSET = "networks.1.assets.1"
NEW_ETH_ASSET = "networks.1.assets.+"


@pytest.mark.parametrize(
    ("path", "value", "where", "words"),
    [
        ("format", "v2", "assets.format", "format"),
        ("extra", 1, "assets", "unknown field"),
        ("networks", {}, "assets.networks", "a list"),
        (f"{ETH}.name", "Ethereum", "assets.networks[1].name", "a name"),
        (f"{ETH}.chain", "dogecoin", "assets.networks[1].chain", "ethereum, solana"),
        # Any chain id, but not under a well-known network's name, and with its symbol.
        (f"{ETH}.chain_id", 987654321, "assets.networks[1].name", "names another network"),
        ("networks.+", {**DEVNET, "name": "regtest"}, "assets.networks[3].name", "another"),
        ("networks.+", {**DEVNET, "native_symbol": None}, "assets.networks[3]", "native_symbol"),
        ("networks.+", {**DEVNET, "native_symbol": "$"}, "assets.networks[3].native_symbol", "a"),
        ("networks.+", {**DEVNET, "chain_id": 0}, "assets.networks[3].chain_id", "1 to"),
        (f"{ETH}.chain_id", 2**63, "assets.networks[1].chain_id", "must be"),
        (f"{ETH}.chain_id", 11155111, "assets.networks[1].name", "'sepolia'"),
        (f"{ETH}.native_symbol", "POL", "assets.networks[1].native_symbol", "'ETH'"),
        ("networks.0.native_symbol", "SOL", "assets.networks[0].native_symbol", "only EVM"),
        (f"{ETH}.chain_id", _DELETE, "assets.networks[1]", "chain_id"),
        ("networks.0.chain_id", 1, "assets.networks[0].chain_id", "only EVM"),
        ("networks.2.name", "mars", "assets.networks[2].name", "Bitcoin network"),
        (
            "networks.+",
            {"name": "solana-devnet", "chain": "solana", "assets": []},
            "assets.networks[3]",
            "a second solana network",
        ),
        (
            "networks.+",
            {"name": "testnet", "chain": "bitcoin", "assets": []},
            "assets.networks[3]",
            "a second bitcoin network",
        ),
        (
            "networks.+",
            {"name": "ethereum", "chain": "ethereum", "chain_id": 1, "assets": []},
            "assets.networks[3]",
            "listed twice",
        ),
        (f"{ETH_ASSET}.id", "USDC", "assets.networks[1].assets[1]", "listed twice"),
        (f"{ETH_ASSET}.id", "", "assets.networks[1].assets[1].id", "an id"),
        (
            NEW_ETH_ASSET,
            {"id": "ETH2", "native": True, "decimals": 18},
            "assets.networks[1].assets[2]",
            "a second native asset",
        ),
        (
            NEW_ETH_ASSET,
            {"id": "USDC2", "contract": USDC, "decimals": 18},
            "assets.networks[1].assets[2]",
            "again",
        ),
        (f"{ETH_ASSET}.decimals", 6, "assets.networks[1].assets[1].decimals", "18"),
        (f"{ETH_ASSET}.decimals", 37, "assets.networks[1].assets[1].decimals", "0 to 36"),
        (f"{ETH_ASSET}.native", False, "assets.networks[1].assets[1]", "native: true"),
        (f"{ETH_ASSET}.native", "yes", "assets.networks[1].assets[1].native", "true"),
        ("networks.1.assets.0.mint", MINT, "assets.networks[1].assets[0]", "unknown field"),
        (
            "networks.1.assets.0.contract",
            "0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            "assets.networks[1].assets[0].contract",
            "checksum",
        ),
        ("networks.0.assets.0.mint", "0OIl" * 10, "assets.networks[0].assets[0].mint", "base58"),
        (
            "networks.2.assets.+",
            {"id": "WBTC", "contract": USDC, "decimals": 8},
            "assets.networks[2].assets[1].contract",
            "only their native coin",
        ),
        (f"{ETH_ASSET}.price", "1e3", "assets.networks[1].assets[1].price", "decimal"),
        (f"{ETH_ASSET}.price", "-1", "assets.networks[1].assets[1].price", "decimal"),
        (f"{ETH_ASSET}.price", 3000, "assets.networks[1].assets[1].price", "decimal"),
        (f"{ETH_ASSET}.price", "03000", "assets.networks[1].assets[1].price", "decimal"),
        ("max_price_age", _DELETE, "assets", "go together"),
        ("price_keys", _DELETE, "assets", "go together"),
        ("price_keys", [], "assets", "go together"),
        ("max_price_age", 0, "assets.max_price_age", "1 to 604800"),
        ("max_price_age", 604801, "assets.max_price_age", "1 to 604800"),
        ("price_keys.0.algorithm", "rsa", "assets.price_keys[0]", "unknown key algorithm"),
        ("price_keys.0.public_key", "00" * 31, "assets.price_keys[0]", "32 bytes"),
        (
            "price_keys.+",
            {"id": "oracle", "algorithm": "ed25519", "public_key": ORACLE},
            "assets.price_keys[1]",
            "listed twice",
        ),
        (
            "price_keys.+",
            {"id": "oracle-2", "algorithm": "ed25519", "public_key": ORACLE},
            "assets.price_keys[1]",
            "a public key is listed twice",
        ),
    ],
)
def test_a_bad_registry_is_refused_naming_the_path(path, value, where, words):
    document = copy.deepcopy(DOCUMENT)
    _set(path, value)(document)
    with pytest.raises(PolicyDocumentError) as refused:
        parse_registry(document)
    assert refused.value.path == where, refused.value
    assert words in refused.value.reason, refused.value
    if words == "unknown field":
        assert isinstance(refused.value, UnknownFieldError)


def test_a_bundle_carrying_a_bad_registry_is_refused():
    bundle = new_bundle(
        WORKSPACE, parse_policy(POLICY), BOOK, ADMINS, assets=parse_registry(DOCUMENT)
    )
    data = bundle.to_json()
    data["payload"]["assets"]["networks"][0]["assets"][0]["decimals"] = 6  # type: ignore[index]
    with pytest.raises(MalformedBundleError) as refused:
        parse_bundle(data)
    assert refused.value.path == "bundle.payload.assets.networks[0].assets[0].decimals"


# --- What a payload means -----------------------------------------------------------


def test_payloads_resolve_through_the_registry():
    registry = parse_registry(DOCUMENT)
    assert payload_network(registry, Chain.ETHEREUM, 1) == "ethereum"
    assert payload_network(registry, Chain.SOLANA) == "solana"
    assert payload_network(registry, Chain.BITCOIN) == "regtest"
    eth = payload_asset(registry, Chain.ETHEREUM, chain_id=1)
    assert (eth.network, eth.id, eth.decimals, eth.chain_asset) == ("ethereum", "ETH", 18, "ETH")
    usdc = payload_asset(registry, Chain.ETHEREUM, chain_id=1, contract=USDC.lower())
    assert (usdc.id, usdc.decimals, usdc.chain_asset) == ("USDC", 6, USDC)
    spl = payload_asset(registry, Chain.SOLANA, contract=MINT)
    assert (spl.network, spl.id, spl.chain_asset) == ("solana", "USDC", MINT)
    assert registry.asset("ethereum", "ETH").price == Decimal("3000.5")


def test_without_a_registry_the_defaults_apply_and_no_token_resolves():
    assert payload_network(None, Chain.ETHEREUM, 137) == "polygon"
    pol = payload_asset(None, Chain.ETHEREUM, chain_id=137)
    assert (pol.id, pol.decimals) == ("POL", 18)
    assert payload_network(None, Chain.SOLANA) == "solana"
    assert payload_asset(None, Chain.BITCOIN).id == "BTC"
    with pytest.raises(UnknownAssetError, match="no signed asset registry"):
        payload_asset(None, Chain.ETHEREUM, chain_id=1, contract=USDC)
    with pytest.raises(UnknownNetworkError, match="987654321"):
        payload_network(None, Chain.ETHEREUM, 987654321)


def test_what_the_registry_does_not_list_is_refused():
    registry = parse_registry(
        {
            "format": "shardvault.asset-registry/v1",
            "networks": [
                {
                    "name": "ethereum",
                    "chain": "ethereum",
                    "chain_id": 1,
                    "assets": [{"id": "USDC", "contract": USDC, "decimals": 6}],
                }
            ],
        }
    )
    with pytest.raises(UnknownNetworkError, match="base"):
        payload_network(registry, Chain.ETHEREUM, 8453)
    with pytest.raises(UnknownNetworkError, match="no solana network"):
        payload_network(registry, Chain.SOLANA)
    with pytest.raises(UnknownAssetError, match="no native asset"):
        payload_asset(registry, Chain.ETHEREUM, chain_id=1)
    with pytest.raises(UnknownAssetError, match="unknown token"):
        payload_asset(registry, Chain.ETHEREUM, chain_id=1, contract="0x" + "33" * 20)
    with pytest.raises(UnknownAssetError, match="unknown token"):
        payload_asset(registry, Chain.ETHEREUM, chain_id=1, contract="not an address")


def test_any_chain_id_is_a_network_once_the_registry_lists_it():
    with_devnet = {**DOCUMENT, "networks": [*DOCUMENT["networks"], DEVNET]}
    registry = parse_registry(with_devnet)
    devnet = registry.network("devnet-b")
    assert devnet is not None
    assert (devnet.chain_id, devnet.native_symbol, devnet.chain_symbol) == (31338, "DEV", "DEV")
    # The symbol is written for such a chain id only: a well-known one keeps the table's,
    # and its canonical form (so every bundle signed before) is unchanged.
    listed = {n["name"]: n for n in registry.to_document()["networks"]}
    assert listed["devnet-b"]["native_symbol"] == "DEV"
    assert "native_symbol" not in listed["ethereum"]
    assert parse_registry(registry.to_document()) == registry
    ethereum = copy.deepcopy(DOCUMENT)
    ethereum["networks"][1]["native_symbol"] = "ETH"
    assert parse_registry(ethereum) == parse_registry(DOCUMENT)
    # A payload of chain 31338 is on devnet-b, its native coin named DEV in the intent.
    assert payload_network(registry, Chain.ETHEREUM, 31338) == "devnet-b"
    dev = payload_asset(registry, Chain.ETHEREUM, chain_id=31338)
    assert (dev.network, dev.id, dev.decimals, dev.chain_asset) == ("devnet-b", "DEV", 18, "DEV")
    # Without the entry, or without any registry, the chain id is refused, named.
    with pytest.raises(UnknownNetworkError, match="chain id 31338 is not in the signed"):
        payload_network(parse_registry(DOCUMENT), Chain.ETHEREUM, 31338)
    with pytest.raises(UnknownNetworkError, match="31338 is not a well-known network"):
        payload_asset(None, Chain.ETHEREUM, chain_id=31338)
