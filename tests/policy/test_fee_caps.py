"""Fee caps in the policy document (docs/policy.md "Fee caps"): strict parsing, the
canonical form, and the bundle hash of a policy without caps."""

from __future__ import annotations

from typing import Any

import pytest

from shardvault.policy import (
    BundleChain,
    EvmFeeCap,
    PolicyDocumentError,
    UnknownFieldError,
    new_bundle,
    parse_policy,
    parse_registry,
    schema_errors,
)
from shardvault.policy.fee_caps import refuse_unmatched_fee_caps
from shardvault.policy.load import policy_to_document

from .test_bundle import ADMINS, BOOK, WORKSPACE, policy_v, sign

BASE: dict[str, Any] = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [{"name": "allow-all", "action": "allow"}],
}

MAX_WEI = str(2**256 - 1)


def with_caps(caps: object) -> dict[str, Any]:
    return {**BASE, "fee_caps": caps}


def test_caps_are_read_per_network() -> None:
    policy = parse_policy(
        with_caps(
            {
                "ethereum": {
                    "max_fee_wei": "2100000000000000",
                    "max_priority_fee_per_gas_wei": "3000000000",
                },
                "base": {"max_fee_wei": "0"},
                "hardhat": {"max_priority_fee_per_gas_wei": MAX_WEI},
            }
        )
    )
    assert policy.fee_caps == {
        "ethereum": EvmFeeCap(2_100_000_000_000_000, 3_000_000_000),
        "base": EvmFeeCap(max_fee_wei=0),
        "hardhat": EvmFeeCap(max_priority_fee_per_gas_wei=2**256 - 1),
    }


def test_canonical_document_round_trips_and_sorts_networks() -> None:
    policy = parse_policy(
        with_caps(
            {
                "sepolia": {"max_fee_wei": "5"},
                "base": {"max_priority_fee_per_gas_wei": "7", "max_fee_wei": "9"},
            }
        )
    )
    document = policy_to_document(policy)
    assert list(document["fee_caps"]) == ["base", "sepolia"]  # type: ignore[call-overload]
    assert document["fee_caps"] == {
        "base": {"max_fee_wei": "9", "max_priority_fee_per_gas_wei": "7"},
        "sepolia": {"max_fee_wei": "5"},
    }
    assert parse_policy(document) == policy
    assert schema_errors(document) == []


def test_caps_change_the_bundle_hash() -> None:
    plain = new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS)
    capped_policy = parse_policy(
        {**policy_to_document(policy_v(1)), "fee_caps": {"ethereum": {"max_fee_wei": "1"}}}
    )
    capped = new_bundle(WORKSPACE, capped_policy, BOOK, ADMINS)
    assert capped.hash() != plain.hash()


def test_a_policy_without_caps_keeps_its_canonical_form_and_hash() -> None:
    """The hash pinned here was computed before fee caps existed."""
    policy = policy_v(1)
    assert policy.fee_caps == {}
    assert "fee_caps" not in policy_to_document(policy)
    bundle = new_bundle(WORKSPACE, policy, BOOK, ADMINS)
    assert bundle.hash().hex() == (
        "8a70cb48248c2a26bccb75aa8f986e73e6fe7a36558d4fb5113f88d9f465ffb0"
    )


@pytest.mark.parametrize(
    ("caps", "path"),
    [
        ([], "policy.fee_caps"),
        ({"ethereum": "1"}, "policy.fee_caps.ethereum"),
        ({"ethereum": {}}, "policy.fee_caps.ethereum"),
        ({"": {"max_fee_wei": "1"}}, "policy.fee_caps"),
        ({"ethereum": {"max_fee_wei": 1}}, "policy.fee_caps.ethereum.max_fee_wei"),
        ({"ethereum": {"max_fee_wei": "-1"}}, "policy.fee_caps.ethereum.max_fee_wei"),
        ({"ethereum": {"max_fee_wei": "1.5"}}, "policy.fee_caps.ethereum.max_fee_wei"),
        ({"ethereum": {"max_fee_wei": "01"}}, "policy.fee_caps.ethereum.max_fee_wei"),
        ({"ethereum": {"max_fee_wei": "1e18"}}, "policy.fee_caps.ethereum.max_fee_wei"),
        ({"ethereum": {"max_fee_wei": ""}}, "policy.fee_caps.ethereum.max_fee_wei"),
        ({"ethereum": {"max_fee_wei": True}}, "policy.fee_caps.ethereum.max_fee_wei"),
        (
            {"ethereum": {"max_fee_wei": "1" + "0" * 78}},
            "policy.fee_caps.ethereum.max_fee_wei",
        ),
        (
            {"ethereum": {"max_priority_fee_per_gas_wei": " 1"}},
            "policy.fee_caps.ethereum.max_priority_fee_per_gas_wei",
        ),
    ],
)
def test_malformed_caps_are_refused_with_their_path(caps: object, path: str) -> None:
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy(with_caps(caps))
    assert caught.value.path == path
    # The published schema refuses the same documents.
    assert schema_errors(with_caps(caps))


def test_an_unknown_cap_field_is_refused() -> None:
    caps = {"ethereum": {"max_fee_wei": "1", "max_fee_per_gas_wei": "1"}}
    with pytest.raises(UnknownFieldError) as caught:
        parse_policy(with_caps(caps))
    assert caught.value.path == "policy.fee_caps.ethereum"
    assert schema_errors(with_caps(caps))


# --- Bitcoin and Solana caps (issue #18): each entry is enforced or refused --------------

FAMILY_CAPS = {
    "regtest": {"max_fee_sat": "50000", "max_fee_rate_sat_per_vb": "25.5"},
    "bitcoin": {"max_fee_rate_sat_per_vb": "0.125"},
    "solana": {
        "max_compute_unit_price_micro_lamports": "10000",
        "max_compute_unit_limit": "400000",
        "max_fee_lamports": "15000",
    },
    "solana-devnet": {"max_fee_lamports": "0"},
    "ethereum": {"max_fee_wei": "2100000000000000"},
}


def test_bitcoin_and_solana_caps_are_read_exactly() -> None:
    from decimal import Decimal

    from shardvault.policy import BitcoinFeeCap, EvmFeeCap, SolanaFeeCap

    policy = parse_policy(with_caps(FAMILY_CAPS))
    assert policy.fee_caps == {
        "regtest": BitcoinFeeCap(max_fee_sat=50_000, max_fee_rate_sat_per_vb=Decimal("25.5")),
        "bitcoin": BitcoinFeeCap(max_fee_rate_sat_per_vb=Decimal("0.125")),
        "solana": SolanaFeeCap(
            max_compute_unit_price_micro_lamports=10_000,
            max_compute_unit_limit=400_000,
            max_fee_lamports=15_000,
        ),
        "solana-devnet": SolanaFeeCap(max_fee_lamports=0),
        "ethereum": EvmFeeCap(max_fee_wei=2_100_000_000_000_000),
    }
    rate = policy.fee_caps["regtest"].max_fee_rate_sat_per_vb
    assert isinstance(rate, Decimal)
    document = policy_to_document(policy)
    assert document["fee_caps"] == FAMILY_CAPS
    assert parse_policy(document) == policy
    assert schema_errors(document) == []


@pytest.mark.parametrize(
    ("caps", "path"),
    [
        # A Bitcoin field on an EVM network, and the other way round.
        ({"ethereum": {"max_fee_sat": "1"}}, "policy.fee_caps.ethereum.max_fee_sat"),
        ({"bitcoin": {"max_fee_wei": "1"}}, "policy.fee_caps.bitcoin.max_fee_wei"),
        ({"regtest": {"max_fee_lamports": "1"}}, "policy.fee_caps.regtest.max_fee_lamports"),
        (
            {"hardhat": {"max_compute_unit_limit": "1"}},
            "policy.fee_caps.hardhat.max_compute_unit_limit",
        ),
        # A Bitcoin cap on a name that is no Bitcoin network's; on any other name, the
        # fields of two families (the first decides: the second is named).
        ({"my-chain": {"max_fee_sat": "1"}}, "policy.fee_caps.my-chain.max_fee_sat"),
        (
            {"my-chain": {"max_fee_wei": "1", "max_fee_lamports": "1"}},
            "policy.fee_caps.my-chain.max_fee_lamports",
        ),
        # One entry, two families: the field of the other family is named.
        (
            {"regtest": {"max_fee_sat": "1", "max_fee_wei": "1"}},
            "policy.fee_caps.regtest.max_fee_wei",
        ),
    ],
)
def test_a_cap_of_another_chain_family_is_refused_with_its_path(caps: object, path: str) -> None:
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy(with_caps(caps))
    assert caught.value.path == path
    assert "fee cap" in str(caught.value)


RATE = "policy.fee_caps.regtest.max_fee_rate_sat_per_vb"
PRICE = "policy.fee_caps.solana.max_compute_unit_price_micro_lamports"


@pytest.mark.parametrize(
    ("caps", "path", "schema_refuses"),
    [
        ({"regtest": {"max_fee_sat": 1}}, "policy.fee_caps.regtest.max_fee_sat", True),
        ({"regtest": {"max_fee_sat": "-1"}}, "policy.fee_caps.regtest.max_fee_sat", True),
        # The schema bounds the digits, the loader the value: 21 million BTC at most.
        (
            {"regtest": {"max_fee_sat": "2100000000000001"}},
            "policy.fee_caps.regtest.max_fee_sat",
            False,
        ),
        ({"regtest": {"max_fee_rate_sat_per_vb": 25.5}}, RATE, True),
        ({"regtest": {"max_fee_rate_sat_per_vb": "25.50"}}, RATE, True),
        ({"regtest": {"max_fee_rate_sat_per_vb": "1.0001"}}, RATE, True),
        ({"regtest": {"max_fee_rate_sat_per_vb": "01"}}, RATE, True),
        ({"regtest": {"max_fee_rate_sat_per_vb": ".5"}}, RATE, True),
        ({"regtest": {"max_fee_rate_sat_per_vb": "1e2"}}, RATE, True),
        ({"regtest": {"max_fee_rate_sat_per_vb": "NaN"}}, RATE, True),
        (
            {"solana": {"max_compute_unit_limit": "1400001"}},
            "policy.fee_caps.solana.max_compute_unit_limit",
            False,
        ),
        ({"solana": {"max_compute_unit_price_micro_lamports": str(2**64)}}, PRICE, False),
        ({"solana": {"max_compute_unit_price_micro_lamports": "1" + "0" * 20}}, PRICE, True),
        ({"solana": {"max_fee_lamports": "1.5"}}, "policy.fee_caps.solana.max_fee_lamports", True),
        ({"solana": {"max_fee_lamports": None}}, "policy.fee_caps.solana.max_fee_lamports", True),
    ],
)
def test_malformed_bitcoin_and_solana_caps_are_refused(
    caps: object, path: str, schema_refuses: bool
) -> None:
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy(with_caps(caps))
    assert caught.value.path == path
    assert bool(schema_errors(with_caps(caps))) is schema_refuses


DEVNET_REGISTRY = {
    "format": "shardvault.asset-registry/v1",
    "networks": [
        {
            "name": "devnet-b",
            "chain": "ethereum",
            "chain_id": 31338,
            "native_symbol": "ETH",
            "assets": [{"id": "ETH-B", "native": True, "decimals": 18}],
        },
        {"name": "solana", "chain": "solana", "assets": []},
    ],
}


@pytest.mark.parametrize(
    ("caps", "registry", "refusal"),
    [
        # An EVM cap on a network the registry lists as EVM (any chain id), or on a
        # well-known one, applies.
        ({"devnet-b": {"max_fee_wei": "1"}}, DEVNET_REGISTRY, None),
        ({"hardhat": {"max_fee_wei": "1"}}, None, None),
        ({"solana": {"max_fee_lamports": "1"}}, DEVNET_REGISTRY, None),
        # Co-signers name an EVM network from its chain id through the registry: an EVM
        # cap on any other name could never apply.
        ({"devnet-b": {"max_fee_wei": "1"}}, None, "neither a well-known EVM network"),
        ({"my-evm-chain": {"max_fee_wei": "1"}}, DEVNET_REGISTRY, "neither"),
        ({"solana": {"max_fee_wei": "1"}}, DEVNET_REGISTRY, "among its Solana networks"),
        ({"devnet-b": {"max_fee_lamports": "1"}}, DEVNET_REGISTRY, "among its EVM networks"),
    ],
)
def test_a_cap_meets_the_registry_of_its_bundle(
    caps: dict[str, Any], registry: dict[str, object] | None, refusal: str | None
) -> None:
    policy = parse_policy(with_caps(caps))
    assets = None if registry is None else parse_registry(registry)
    network = next(iter(caps))
    if refusal is None:
        refuse_unmatched_fee_caps(policy.fee_caps, assets)
        return
    with pytest.raises(PolicyDocumentError) as caught:
        refuse_unmatched_fee_caps(policy.fee_caps, assets)
    assert caught.value.path == f"policy.fee_caps.{network}"
    assert refusal in caught.value.reason
    # A holder offered such a bundle refuses it; the server never proposes one.
    chain = BundleChain(WORKSPACE, ADMINS)
    bundle = new_bundle(WORKSPACE, policy, BOOK, ADMINS, assets=assets)
    with pytest.raises(PolicyDocumentError):
        chain.accept(sign(bundle, "ann", "ben"))
