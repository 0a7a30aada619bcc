"""A bundle whose value limit depends on a price nothing in it signs is refused when it
is offered to a holder (docs/policy.md, "Signed inputs" and "Asset registry"): a value
limit with no signed price source for the assets it can see. A rule naming an asset or
network the registry does not list loads (it never matches). A bundle the holder stored
before is not refused, so the holder still starts; its value rule finds no price and
fails closed.

Before this check a co-signer held such a bundle and valued transfers at whatever prices
the coordinator sent.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from shardvault.policy import (
    BundleChain,
    Decision,
    EvaluationContext,
    PolicyBundle,
    PolicyError,
    UnsignedInputError,
    evaluate,
    new_bundle,
    parse_bundle,
    parse_policy,
    parse_registry,
)
from shardvault.policy.load import parse_address_book
from shardvault.policy.request import UnixSeconds

from ._support import NOW, USDC_CONTRACT, WEI, ethereum_network, make_request
from .test_bundle import ADMINS, WORKSPACE, sign

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


def _signed(policy: dict[str, object], registry: dict[str, object] | None = None) -> PolicyBundle:
    """A bundle of ``policy`` (and ``registry``) signed by a quorum of the admins."""
    assets = None if registry is None else parse_registry(registry)
    return sign(
        new_bundle(WORKSPACE, parse_policy(policy), BOOK, ADMINS, assets=assets), "ann", "cat"
    )


def _bundle(policy: dict[str, object], registry: dict[str, object] | None = None) -> PolicyBundle:
    """The bundle as a holder's chain accepts it when it is offered."""
    chain = BundleChain(WORKSPACE, ADMINS)
    chain.accept(_signed(policy, registry))
    assert chain.head is not None
    return chain.head


def _refused(policy, registry=None) -> PolicyError:
    with pytest.raises(UnsignedInputError) as info:
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
    """A bundle the admins signed anyway reads (``parse_bundle`` checks its form only)
    but is refused when offered to a chain, so no co-signer installs it."""
    good = _bundle(_policy({**LARGE, "when": {"asset": ["ETH"], "value": {"over": "1"}}}), REGISTRY)
    data = good.to_json()
    payload = data["payload"]
    assert isinstance(payload, dict)
    payload["policy"]["rules"][0]["when"] = {"value": {"over": "1"}}  # type: ignore[index]
    unpriced = sign(dataclasses.replace(parse_bundle(data), signatures=()), "ann", "cat")
    chain = BundleChain(WORKSPACE, ADMINS)
    with pytest.raises(UnsignedInputError) as info:
        chain.accept(unpriced)
    assert "'large'" in info.value.reason
    assert "price" in info.value.reason
    assert chain.head is None


def test_a_stored_bundle_without_a_price_source_loads_and_offered_anew_is_refused():
    """A holder rebuilding its chain at start does not refuse a bundle it stored before
    the check existed (a USD rule and no registry): it could then never take the bundle
    that replaces it. The rule finds no signed price and fails closed. Offered anew, the
    same bundle is refused."""
    old = _signed(_policy(LARGE))
    stored = BundleChain(WORKSPACE, ADMINS)
    stored.accept_all([parse_bundle(old.to_json())], stored=True)
    assert stored.head == old
    assert stored.head is not None
    assert stored.head.assets is None
    head = stored.head
    request = make_request(amount=str(WEI))
    evaluation = evaluate(head.policy, request, EvaluationContext(now=UnixSeconds(NOW)))
    assert evaluation.decision is Decision.BLOCK
    assert evaluation.rule == "large"
    assert "no price for ETH in USD" in evaluation.summary

    offered = BundleChain(WORKSPACE, ADMINS)
    with pytest.raises(UnsignedInputError) as info:
        offered.accept(old)
    assert info.value.path == "policy.rules[0].when.value"
    assert "'large'" in info.value.reason
    assert "no asset registry" in info.value.reason
    assert offered.head is None
