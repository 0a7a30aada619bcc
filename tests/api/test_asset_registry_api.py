"""The asset registry and signed prices at the API (docs/api.md, docs/policy.md "Asset
registry", "Prices"): what a proposal carries, and how the server checks, holds and
lists price reports. Every refusal is a typed 4xx that changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.sdk import ShardvaultClient
from shardvault.sdk.custody import sign_bundle
from shardvault.sdk.errors import ApiError
from shardvault.sdk.prices import sign_price_report
from shardvault.service.platform import Platform
from shardvault.store.models_prices import PriceReportRow
from tests.api.support import Tenant, assert_problem, count_rows, signed_post

USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ADMIN = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ORACLE = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROGUE = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
"""TEST-ONLY keys: an admin, the price key the registry names, a key it does not."""


def _raw(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _policy(*rules: dict[str, object], version: int = 1) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": version,
        "reference_currency": "USD",
        "rules": [*rules, {"name": "rest", "action": "allow"}],
    }


LARGE = {"name": "large", "when": {"value": {"over": "1000"}}, "action": "block"}
REGISTRY = {
    "format": "shardvault.asset-registry/v1",
    "networks": [
        {
            "name": "hardhat",
            "chain": "ethereum",
            "chain_id": 31337,
            "assets": [
                {"id": "ETH", "native": True, "decimals": 18},
                {"id": "USDC", "contract": USDC, "decimals": 6, "price": "1"},
            ],
        }
    ],
    "price_keys": [{"id": "oracle", "algorithm": "ed25519", "public_key": _raw(ORACLE)}],
    "max_price_age": 600,
}


@pytest.fixture
def owner(server_url: str, tenant: Tenant) -> Iterator[ShardvaultClient]:
    with ShardvaultClient(server_url, tenant.owner) as client:
        client.configure_network(name="hardhat", kind="evm", chain_id=31337)
        client.add_asset(symbol="ETH", network="hardhat", price="3000")
        client.add_asset(symbol="USDC", network="hardhat", kind="erc20", contract=USDC, decimals=6)
        yield client


def _activate(owner: ShardvaultClient, document: dict[str, object], **propose: Any) -> Any:
    draft = owner.create_policy(document=document)
    members = [{"id": "admin", "algorithm": "ed25519", "public_key": _raw(ADMIN)}]
    proposed = owner.propose_policy(draft.id, admins={"quorum": 1, "members": members}, **propose)
    assert proposed.signing_message is not None
    owner.sign_policy(
        draft.id, signer="admin", signature=sign_bundle(ADMIN, proposed.signing_message)
    )
    return owner.activate_policy(draft.id)


def test_a_proposal_carries_the_registry_of_the_assets_table(owner: ShardvaultClient) -> None:
    active = _activate(owner, _policy())
    assets = active.bundle["payload"]["assets"]
    assert assets["networks"] == [
        {
            "name": "hardhat",
            "chain": "ethereum",
            "chain_id": 31337,
            "assets": [
                {"id": "ETH", "native": True, "decimals": 18, "price": "3000"},
                {"id": "USDC", "contract": USDC, "decimals": 6},
            ],
        }
    ]
    assert "price_keys" not in assets


def test_a_usd_rule_without_a_price_source_is_a_400_naming_the_rule(
    owner: ShardvaultClient,
) -> None:
    """USDC has no price in the table, and the table names no price key."""
    draft = owner.create_policy(document=_policy(LARGE))
    members = [{"id": "admin", "algorithm": "ed25519", "public_key": _raw(ADMIN)}]
    with pytest.raises(ApiError) as refused:
        owner.propose_policy(draft.id, admins={"quorum": 1, "members": members})
    assert refused.value.status == 400
    assert refused.value.slug == "policy-refused"
    assert "'large'" in str(refused.value)
    assert "USDC" in str(refused.value)
    assert owner.get_policy(draft.id).status == "draft"
    # The admins' own registry, with a price key, prices every asset.
    proposed = owner.propose_policy(
        draft.id, admins={"quorum": 1, "members": members}, assets=REGISTRY
    )
    assert proposed.bundle is not None
    assert proposed.bundle["payload"]["assets"]["price_keys"][0]["id"] == "oracle"


def _report(key: Ed25519PrivateKey = ORACLE, **fields: Any) -> dict[str, object]:
    values: dict[str, Any] = {
        "signer": "oracle",
        "network": "hardhat",
        "asset": "ETH",
        "price": "3000",
        "currency": "USD",
        "observed_at": int(time.time()) - 5,
        **fields,
    }
    return sign_price_report(key, **values)


def test_price_reports_are_checked_held_newest_first_and_listed(
    owner: ShardvaultClient,
    platform: Platform,
) -> None:
    _activate(owner, _policy(LARGE), assets=REGISTRY)
    now = int(time.time())
    held = owner.submit_price_report(_report(observed_at=now - 30, price="2900"))
    assert (held.network, held.asset, held.signer, held.price) == (
        "hardhat",
        "ETH",
        "oracle",
        "2900",
    )
    newer = owner.submit_price_report(_report(observed_at=now - 10, price="3100"))
    assert newer.price == "3100"
    for stale in (now - 10, now - 20):
        with pytest.raises(ApiError) as refused:
            owner.submit_price_report(_report(observed_at=stale))
        assert refused.value.status == 409
    listed = owner.list_price_reports().data
    assert [(r.asset, r.price, r.observed_at) for r in listed] == [("ETH", "3100", now - 10)]
    assert count_rows(platform, PriceReportRow) == 1


@pytest.mark.parametrize(
    ("report", "words"),
    [
        (lambda: _report(ROGUE, signer="rogue"), "'rogue', which the signed asset registry"),
        (lambda: _report(ROGUE), "does not verify"),
        (lambda: _report(asset="BTC"), "BTC on hardhat is not in the signed asset registry"),
        (lambda: _report(currency="EUR"), "priced in EUR"),
        (lambda: _report(observed_at=int(time.time()) + 3600), "lies in the future"),
        (lambda: {**_report(), "report": {"format": "x"}}, "exactly the fields"),
    ],
)
def test_a_report_the_policy_does_not_let_count_is_a_400_and_nothing_is_held(
    owner: ShardvaultClient, platform: Platform, report: Any, words: str
) -> None:
    _activate(owner, _policy(), assets=REGISTRY)
    with pytest.raises(ApiError) as refused:
        owner.submit_price_report(report())
    assert refused.value.status == 400
    assert refused.value.slug == "price-report-refused"
    assert words in str(refused.value)
    assert count_rows(platform, PriceReportRow) == 0


def test_a_report_before_any_policy_with_price_keys_is_refused(
    owner: ShardvaultClient, platform: Platform
) -> None:
    with pytest.raises(ApiError) as refused:
        owner.submit_price_report(_report())
    assert refused.value.status == 400
    assert "does not name as a price key" in str(refused.value)
    assert count_rows(platform, PriceReportRow) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"report": {}, "signer": "oracle"},
        {"report": [], "signer": "oracle", "signature": "00"},
        {"report": {}, "signer": "", "signature": "00"},
        {"report": {}, "signer": "oracle", "signature": "00", "extra": 1},
    ],
)
def test_a_malformed_report_body_is_a_typed_4xx(
    http: httpx.Client, tenant: Tenant, platform: Platform, body: dict[str, object]
) -> None:
    refused = signed_post(http, tenant, "/v1/price-reports", json.dumps(body).encode(), "bad")
    assert 400 <= refused.status_code < 500, refused.text
    assert_problem(refused, refused.status_code, refused.json()["type"].rsplit(":", 1)[1])
    assert count_rows(platform, PriceReportRow) == 0
