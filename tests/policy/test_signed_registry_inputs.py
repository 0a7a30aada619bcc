"""A bundle whose rules depend on something nothing in it signs is refused when it loads
(docs/policy.md, "Asset registry"): a value limit with no signed price source for the
assets it can see, an asset or network the registry does not list.

Before this check a co-signer held such a bundle and valued transfers at whatever prices
the coordinator sent.
"""

from __future__ import annotations

import copy

import pytest

from shardvault.policy import (
    BundleError,
    PolicyError,
    new_bundle,
    parse_bundle,
    parse_policy,
    parse_registry,
)
from shardvault.policy.load import parse_address_book

from ._support import USDC_CONTRACT, ethereum_network
from .test_bundle import ADMINS, WORKSPACE

BOOK = parse_address_book({"format": "shardvault.address-book/v1", "entries": []})


def _policy(*rules: dict[str, object]) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": 1,
        "reference_currency": "USD",
        "rules": [*rules, {"name": "rest", "action": "allow"}],
    }


LARGE = {
    "name": "large",
    "when": {"value": {"over": "1000"}},
    "action": "block",
}
DAILY = {
    "name": "daily-value",
    "when": {"velocity": [{"window": "24h", "per": "workspace", "measure": "value", "over": "1"}]},
    "action": "block",
}

REGISTRY = {
    "format": "shardvault.asset-registry/v1",
    "networks": [
        ethereum_network(
            {"id": "ETH", "native": True, "decimals": 18, "price": "3000"},
            {"id": "USDC", "contract": USDC_CONTRACT, "decimals": 6},
        )
    ],
}


def _bundle(policy: dict[str, object], registry: dict[str, object] | None = None):
    assets = None if registry is None else parse_registry(registry)
    return new_bundle(WORKSPACE, parse_policy(policy), BOOK, ADMINS, assets=assets)


def _refused(policy, registry=None) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        _bundle(policy, registry)
    return info.value


@pytest.mark.parametrize("rule", [LARGE, DAILY], ids=["value", "velocity-value"])
def test_a_usd_rule_without_any_price_source_is_refused(rule):
    refusal = _refused(_policy(rule))
    assert refusal.path is not None
    assert refusal.path.startswith("policy.rules[0]")
    assert repr(rule["name"]) in refusal.reason
    assert "price" in refusal.reason


def test_a_usd_rule_is_refused_when_an_asset_it_can_see_has_no_price():
    """ETH has a static price, USDC none, and the bundle names no price key."""
    refusal = _refused(_policy(LARGE), REGISTRY)
    assert "USDC" in refusal.reason
    assert "'large'" in refusal.reason
    # Narrowed to ETH by an asset condition, the same rule is priced.
    eth_only = {**LARGE, "when": {"asset": ["ETH"], "value": {"over": "1000"}}}
    assert _bundle(_policy(eth_only), REGISTRY).assets is not None
    # Velocity in USD sums every asset, so it needs USDC priced too, whatever the rule's
    # asset condition.
    refusal = _refused(_policy({**DAILY, "when": {"asset": ["ETH"], **DAILY["when"]}}), REGISTRY)
    assert "USDC" in refusal.reason


def test_price_keys_cover_every_asset():
    keyed = copy.deepcopy(REGISTRY)
    keyed["price_keys"] = [
        {
            "id": "oracle",
            "algorithm": "ed25519",
            "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        }
    ]
    keyed["max_price_age"] = 300
    assert _bundle(_policy(LARGE, DAILY), keyed).assets is not None


def test_a_rule_naming_an_asset_the_registry_does_not_list_loads_and_never_matches():
    """Only unpriced value limits are refused: a rule on an asset or network the
    registry does not list depends on nothing unsigned, it simply never matches (a
    policy shared by workspaces with other assets still loads)."""
    elsewhere = {"name": "elsewhere", "when": {"asset": ["SOL"], "network": ["solana"]}}
    bundle = _bundle(_policy({**elsewhere, "action": "block"}), REGISTRY)
    assert bundle.policy.rules[0].name == "elsewhere"


def test_a_co_signer_refuses_such_a_bundle_in_transport_form():
    """A bundle the admins signed anyway (built without the check) is refused by
    ``parse_bundle``, so no co-signer installs it."""
    good = _bundle(_policy({**LARGE, "when": {"asset": ["ETH"], "value": {"over": "1"}}}), REGISTRY)
    data = good.to_json()
    payload = data["payload"]
    assert isinstance(payload, dict)
    payload["policy"]["rules"][0]["when"] = {"value": {"over": "1"}}  # type: ignore[index]
    with pytest.raises(BundleError) as info:
        parse_bundle(data)
    assert "'large'" in info.value.reason
    assert "price" in info.value.reason
