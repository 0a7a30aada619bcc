"""An asset is unique per (workspace, network, contract), and a network has one native
asset: a second one is a typed 409 that changes nothing.

The incident: an admin added a second native asset with a near-zero price on the same
network, and every transfer on that network was valued at it.
"""

import json

import httpx

from shardvault.service.platform import Platform
from shardvault.store.models_vaults import Asset
from tests.api.support import Tenant, assert_problem, count_rows, signed_post

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _post(http: httpx.Client, tenant: Tenant, path: str, body: dict[str, object], key: str):
    return signed_post(http, tenant, path, json.dumps(body).encode(), key)


def _hardhat(http: httpx.Client, tenant: Tenant) -> None:
    made = _post(
        http,
        tenant,
        "/v1/networks",
        {"name": "hardhat", "kind": "evm", "chain_id": 31337},
        "network-hardhat",
    )
    assert made.status_code == 201, made.text
    eth = _post(
        http,
        tenant,
        "/v1/assets",
        {"symbol": "ETH", "network": "hardhat", "price": "3000"},
        "asset-eth",
    )
    assert eth.status_code == 201, eth.text


def test_a_second_native_asset_on_a_network_is_a_409(
    http: httpx.Client, platform: Platform, tenant: Tenant
) -> None:
    _hardhat(http, tenant)
    cheap = _post(
        http,
        tenant,
        "/v1/assets",
        {"symbol": "ETH2", "network": "hardhat", "price": "0.0001"},
        "asset-eth2",
    )
    problem = assert_problem(cheap, 409, "conflict")
    assert "native" in problem["detail"]
    assert "hardhat" in problem["detail"]
    assert count_rows(platform, Asset) == 1


def test_a_second_asset_of_one_contract_is_a_409(
    http: httpx.Client, platform: Platform, tenant: Tenant
) -> None:
    _hardhat(http, tenant)
    usdc = {"network": "hardhat", "kind": "erc20", "contract": TOKEN, "decimals": 6}
    first = _post(http, tenant, "/v1/assets", {"symbol": "USDC", **usdc}, "asset-usdc")
    assert first.status_code == 201, first.text
    # The same contract under another symbol, written in lower case.
    again = _post(
        http,
        tenant,
        "/v1/assets",
        {"symbol": "USDC2", **usdc, "contract": TOKEN.lower(), "decimals": 18},
        "asset-usdc2",
    )
    problem = assert_problem(again, 409, "conflict")
    assert TOKEN in problem["detail"]
    assert count_rows(platform, Asset) == 2
