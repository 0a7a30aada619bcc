"""Co-signers cap a Solana transaction's compute-unit price, compute-unit limit and fee
under the signed policy (DESIGN.md invariant 12, docs/policy.md "Fee caps").

The fee is 5,000 lamports per signature plus the priority fee, ceil(price x limit /
10**6) lamports, where the price and the limit come from the message's Compute Budget
instructions (the limit, when none is set, is the most a runtime grants by default:
200,000 per other instruction and 3,000 per Compute Budget one). Messages are built with
solders, the Solana SDK's Python binding, and the nodes' signatures verified with it.
"""

from __future__ import annotations

import hashlib

import pytest
from solders import compute_budget as solders_budget
from solders.instruction import Instruction as SoldersInstruction
from solders.pubkey import Pubkey as SoldersPubkey
from solders.signature import Signature as SoldersSignature

from shardvault.cosigner.checks import check_fee, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import parse_registry
from tests.cosigner.support import (
    POLICY,
    dkg_request,
    fee_refusal,
    metadata,
    policy_chain,
    registry,
    sign_request,
    signed_bundle,
    solana_network,
)
from tests.cosigner.test_node import Cluster
from tests.fee_payloads import solana_message, unit_limit, unit_price

KEY = hashlib.sha256(b"solana fee cap test key").digest()
"""An Ed25519 public key's bytes for the checks alone (nothing is signed with it)."""
MAX_PRICE = 10_000
MAX_LIMIT = 400_000
MAX_FEE = 8_000
"""The caps on ``solana``: 10,000 micro-lamports per unit, 400,000 units, and 8,000
lamports in all (5,000 for the one signature and a priority fee of up to 3,000)."""

CAPPED_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
    "fee_caps": {
        "solana": {
            "max_compute_unit_price_micro_lamports": str(MAX_PRICE),
            "max_compute_unit_limit": str(MAX_LIMIT),
            "max_fee_lamports": str(MAX_FEE),
        },
        "solana-tight": {"max_compute_unit_limit": "150000"},
    },
}


def _capped_chain(network: str = "solana"):
    """CAPPED_POLICY in a bundle whose registry names ``network`` as its Solana network."""
    return policy_chain(CAPPED_POLICY, assets=registry(solana_network(network)))


@pytest.fixture(scope="module")
def capped_chain():
    return _capped_chain()


def _message(budget=(), key: bytes = KEY) -> bytes:
    """A legacy message: ``budget`` instructions, then a 1,000-lamport transfer."""
    return solana_message(budget, key)


def _target(message: bytes, network: str = "solana", key: bytes = KEY):
    """What a co-signer makes of ``message`` under a registry naming ``network`` as the
    Solana network (the service sends that name in the metadata too)."""
    body = {
        "chain": "solana",
        "payload": message.hex(),
        "metadata": {**metadata(), "network": network},
    }
    return signing_target(body, key, registry=parse_registry(registry(solana_network(network))))


def _fee_refusal(chain, message: bytes, network: str = "solana") -> str:
    return fee_refusal(chain, _target(message, network)).reason


def _payload_refusal(message: bytes) -> str:
    with pytest.raises(RequestRefused) as caught:
        _target(message)
    assert caught.value.check == "payload", caught.value
    return caught.value.reason


# --- The checks ------------------------------------------------------------------------


def test_a_priority_fee_under_the_caps_is_read_and_passes(capped_chain):
    target = _target(_message([unit_limit(300_000), unit_price(MAX_PRICE)]))
    check_fee(capped_chain, target)
    fee = target.fee
    assert fee is not None
    assert (fee.network, fee.compute_unit_limit, fee.compute_unit_price_micro_lamports) == (
        "solana",
        300_000,
        MAX_PRICE,
    )
    # 5,000 lamports for the one signature plus ceil(300,000 * 10,000 / 10**6).
    assert (fee.priority_fee_lamports, fee.fee_lamports) == (3_000, MAX_FEE)


def test_without_a_limit_the_runtime_default_is_counted(capped_chain):
    target = _target(_message([unit_price(MAX_PRICE)]))
    check_fee(capped_chain, target)
    assert target.fee is not None
    # 200,000 units for the transfer and 3,000 for the price instruction (the most any
    # runtime grants them), so a priority fee of 2,030 lamports.
    assert target.fee.limit_is_default
    assert (target.fee.compute_unit_limit, target.fee.fee_lamports) == (203_000, 7_030)
    # And a cap below the default refuses a message that sets no limit.
    reason = _fee_refusal(_capped_chain("solana-tight"), _message(), network="solana-tight")
    assert "compute-unit limit 200000" in reason
    assert "max_compute_unit_limit 150000 for solana-tight" in reason


def test_a_compute_unit_price_above_the_cap_is_refused(capped_chain):
    reason = _fee_refusal(capped_chain, _message([unit_limit(100_000), unit_price(MAX_PRICE + 1)]))
    assert f"compute-unit price {MAX_PRICE + 1} micro-lamports" in reason
    assert f"max_compute_unit_price_micro_lamports {MAX_PRICE} for solana" in reason


def test_a_compute_unit_limit_above_the_cap_is_refused(capped_chain):
    reason = _fee_refusal(capped_chain, _message([unit_limit(MAX_LIMIT + 1), unit_price(1)]))
    assert f"compute-unit limit {MAX_LIMIT + 1}" in reason
    assert f"max_compute_unit_limit {MAX_LIMIT} for solana" in reason


def test_a_fee_above_the_cap_is_refused_though_price_and_limit_are_within_theirs(capped_chain):
    reason = _fee_refusal(capped_chain, _message([unit_limit(MAX_LIMIT), unit_price(MAX_PRICE)]))
    assert "fee 9000 lamports" in reason
    assert f"max_fee_lamports {MAX_FEE} for solana" in reason


def test_a_network_name_without_a_cap_is_refused_when_others_are_capped():
    """The registry names the Solana network (its payloads do not): one the policy does
    not cap, while it caps others, is not read as uncapped."""
    reason = _fee_refusal(
        _capped_chain("mainnet-beta"),
        _message([unit_limit(MAX_LIMIT), unit_price(10**9)]),
        network="mainnet-beta",
    )
    assert "mainnet-beta" in reason
    assert "solana, solana-tight" in reason


@pytest.mark.parametrize(
    ("budget", "named"),
    [
        pytest.param(
            [unit_price(1), unit_limit(1_000), unit_price(MAX_PRICE * 1000)],
            "instructions[2]: a second set_compute_unit_price",
            id="second-price",
        ),
        pytest.param(
            [unit_limit(1_000), unit_limit(1_400_000)],
            "instructions[1]: a second set_compute_unit_limit",
            id="second-limit",
        ),
        pytest.param(
            [solders_budget.request_heap_frame(64 * 1024)],
            "instructions[0]: Compute Budget instruction 1 is not understood",
            id="request-heap-frame",
        ),
        pytest.param(
            [solders_budget.set_loaded_accounts_data_size_limit(10_000)],
            "instructions[0]: Compute Budget instruction 4 is not understood",
            id="loaded-accounts-data-size",
        ),
        pytest.param(
            [unit_limit(1_400_001)],
            "instructions[0]: a compute-unit limit above 1400000",
            id="limit-above-the-runtime-maximum",
        ),
    ],
)
def test_compute_budget_instructions_the_checks_cannot_read_are_refused(budget, named):
    assert named in _payload_refusal(_message(budget))


def test_malformed_compute_budget_data_is_refused():
    """The parser refuses a Compute Budget instruction of the wrong size, as the runtime
    does."""
    short_price = SoldersInstruction(solders_budget.ID, b"\x03\x01\x00\x00\x00", [])
    reason = _payload_refusal(_message([short_price]))
    assert "instructions[0]: set_compute_unit_price data must be 9 bytes" in reason


# --- In-process nodes: a signature solders verifies, and a fee bump ---------------------


@pytest.fixture(scope="module")
def sol_cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("sol-fee-cap-cluster"))
    bundle = signed_bundle(policy=CAPPED_POLICY)
    results = cluster.run(
        {"kind": "policy", "request_id": "p1", "bundles": [bundle.to_json()]}, [1, 2, 3]
    )
    assert all(r["status"] == "ok" for r in results.values()), results
    results = cluster.run(dkg_request(key_id="sol-fees"), [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    cluster.sol_key = bytes.fromhex(results[1]["public_key"])
    yield cluster
    cluster.close()


def _sign(cluster, message: bytes):
    body = sign_request(
        message,
        (1, 3),
        key_id="sol-fees",
        metadata={
            **metadata(),
            "network": "solana",
            "transaction_id": "sol-bump-1",
            "workspace_id": "ws-1",
        },
    )
    return cluster.run(body, [1, 3])


def test_a_fee_bump_above_the_cap_is_refused_after_the_original_was_signed(sol_cluster):
    """The same transfer, fee payer and blockhash at a higher priority fee: another
    message (the record would refuse it as a second transaction of the transfer), and
    first of all a fee above the cap."""
    key = sol_cluster.sol_key
    original = _message([unit_limit(200_000), unit_price(5_000)], key=key)
    results = _sign(sol_cluster, original)
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = SoldersSignature(bytes.fromhex(results[1]["signature"]))
    assert signature.verify(SoldersPubkey(key), original)

    bump = _message([unit_limit(200_000), unit_price(50_000)], key=key)
    results = _sign(sol_cluster, bump)
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "fee")}
    assert all("max_compute_unit_price_micro_lamports" in r["reason"] for r in results.values())
