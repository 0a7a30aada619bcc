"""Co-signers value transfers only at signed prices (DESIGN.md invariant 12, docs/policy.md
"Prices").

A compromised coordinator used to send the prices a co-signer valued a transfer at: a
4 ETH transfer that needed an approval was signed with ``{"ETH": "0.0001"}``. Prices now
come from the signed bundle (static prices of its asset registry) or from price reports
signed by a price key the bundle names, no older than its ``max_price_age``. The nodes
here are in-process co-signers holding an ECDSA key made with the TEST-ONLY Paillier
primes (tests/fixtures/test_only_paillier.json); the test plays the coordinator.
"""

from __future__ import annotations

import time

import pytest

from shardvault.chains import ethereum
from shardvault.cosigner.checks import check_policy, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import (
    BundleChain,
    PolicyBundle,
    parse_address_book,
    parse_admin_set,
    parse_policy,
)
from shardvault.policy.bundle import GENESIS_PREDECESSOR
from tests.cosigner.ecdsa_cluster import (
    ecdsa_cluster,
    presign,
    recovered_sender,
    sign_ethereum,
)
from tests.cosigner.initiator_support import ALICE, create_body, issued_at, signed_request
from tests.cosigner.support import (
    ADMIN_SET,
    ADMINS,
    ETH,
    POLICY,
    PRICE_KEY,
    WORKSPACE,
    _key,
    approval,
    hardhat_network,
    metadata,
    needs_treasury,
    price_report,
    registry,
)

HARDHAT = 31337
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ETH_PATH = "m/44/60/0/0/11"
MAX_PRICE_AGE = 600
FEES = ethereum.FeeParameters(30 * 10**9, 10**9, 21_000)

PRICED_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        # Over 1 000 USD needs one treasury approval.
        needs_treasury("large", {"operation": ["transfer"], "value": {"over": "1000"}}),
        {"name": "small", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}

REGISTRY = {
    **registry(
        # ETH is priced by reports only; USDC has a static price.
        hardhat_network(ETH, {"id": "USDC", "contract": TOKEN, "decimals": 6, "price": "1"})
    ),
    "price_keys": [
        {"id": "oracle", "algorithm": "ed25519", "public_key": bytes(PRICE_KEY.verify_key).hex()}
    ],
    "max_price_age": MAX_PRICE_AGE,
}


@pytest.fixture(scope="module")
def eth_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("signed-prices-cluster")
    with ecdsa_cluster(root, PRICED_POLICY, "eth-1", ETH_PATH, assets=REGISTRY) as (
        cluster,
        public_key,
    ):
        cluster.eth_source = str(ethereum.address_from_public_key(public_key))
        yield cluster


def _four_eth(nonce=0):
    return ethereum.native_transfer(
        chain_id=HARDHAT, nonce=nonce, to=RECIPIENT, amount="4", fees=FEES
    )


def _sign(cluster, tx, *, signers=(1, 2, 3), label="never-made", **extra):
    return sign_ethereum(cluster, tx, "eth-1", ETH_PATH, signers=signers, label=label, **extra)


def _refusals(results):
    return {(r["status"], r.get("check"), r.get("rule")) for r in results.values()}


def test_the_checks_refuse_a_coordinator_price_map():
    """The incident at the level of the checks, with a bundle the admins signed before
    prices were signed inputs (no registry), which a co-signer holds as stored (a newly
    offered one is refused, tests/cosigner/test_stored_bundles.py): the coordinator's
    ``{"ETH": "0.0001"}`` is refused, not used."""
    bundle = PolicyBundle(
        WORKSPACE,
        GENESIS_PREDECESSOR,
        parse_policy(PRICED_POLICY),
        parse_address_book({"format": "shardvault.address-book/v1", "entries": []}),
        parse_admin_set(ADMIN_SET),
    )
    for name in ("admin-1", "admin-2"):
        bundle = bundle.with_signature(name, ADMINS[name].sign(bundle.signing_message()).signature)
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    chain.accept(bundle, stored=True)
    body = {
        "chain": "ethereum",
        "payload": ethereum.encode_unsigned(_four_eth()).hex(),
        "metadata": metadata(),
    }
    target = signing_target(body, None)
    with pytest.raises(RequestRefused) as refused:
        check_policy(
            chain,
            target.request,
            now=int(time.time()),
            prices={"ETH": "0.0001"},
            approvals=[],
            history=(),
        )
    assert refused.value.check == "price"
    assert "prices" in refused.value.reason


def test_a_4_eth_transfer_is_not_signed_at_a_coordinator_price(eth_cluster):
    """The incident: the coordinator values 4 ETH at 0.0001 USD each to skip the
    approval. Every co-signer refuses a plain ``prices`` map, even beside a valid
    signed report."""
    results = _sign(
        eth_cluster,
        _four_eth(),
        prices={"ETH": "0.0001"},
        price_reports=[price_report("hardhat", "ETH", "3000")],
    )
    assert _refusals(results) == {("refused", "price", None)}, results
    assert all("prices" in r["reason"] for r in results.values()), results


def test_without_any_price_the_value_rule_fails_closed(eth_cluster):
    results = _sign(eth_cluster, _four_eth())
    assert _refusals(results) == {("refused", "policy", "large")}, results
    assert all("no price for ETH" in r["reason"] for r in results.values()), results


def test_a_signed_report_prices_the_transfer_and_an_approval_releases_it(eth_cluster):
    report = price_report("hardhat", "ETH", "3000")
    tx = _four_eth(nonce=1)
    held = _sign(eth_cluster, tx, price_reports=[report])
    assert _refusals(held) == {("refused", "policy", "large")}, held
    assert all("requires approvals" in r["reason"] for r in held.values()), held
    presign(eth_cluster, "eth-1", ETH_PATH, "approved")
    good = approval(ethereum.signing_hash(tx))
    # Whose approvals count depends on who initiated it: alice's own signed request
    # (for 4 ETH from the address at index 11) comes with the approved transfer.
    alices = signed_request(ALICE, create_body(RECIPIENT, "4", wallet_id="w-eth", source_index=11))
    signed = _sign(
        eth_cluster,
        tx,
        signers=(1, 3),
        label="approved",
        price_reports=[report],
        approvals=[good],
        metadata=metadata(created_at=issued_at(alices)),
        initiator_request=alices,
    )
    assert {r["status"] for r in signed.values()} == {"ok"}, signed
    assert {r["rule"] for r in signed.values()} == {"large"}
    assert recovered_sender(tx, signed[1]["signature"]) == eth_cluster.eth_source


def test_a_cheap_signed_price_lets_the_transfer_through_without_approval(eth_cluster):
    """The same 4 ETH at a signed 100 USD is 400 USD: the price key, not the
    coordinator, decides."""
    presign(eth_cluster, "eth-1", ETH_PATH, "cheap")
    tx = _four_eth(nonce=2)
    results = _sign(
        eth_cluster,
        tx,
        signers=(1, 3),
        label="cheap",
        price_reports=[price_report("hardhat", "ETH", "100")],
    )
    assert {(r["status"], r["rule"]) for r in results.values()} == {("ok", "small")}, results


def test_a_report_signed_by_a_key_the_bundle_does_not_name_is_refused(eth_cluster):
    rogue = _key("rogue price key")
    for forged in (
        # A signer the bundle does not list.
        price_report("hardhat", "ETH", "0.0001", signer="rogue", key=rogue),
        # The listed signer's name over another key's signature.
        price_report("hardhat", "ETH", "0.0001", key=rogue),
    ):
        results = _sign(eth_cluster, _four_eth(), price_reports=[forged])
        assert _refusals(results) == {("refused", "price", None)}, results
        reasons = {r["reason"] for r in results.values()}
        assert all("price report 0" in reason for reason in reasons), reasons
    unknown = _sign(
        eth_cluster,
        _four_eth(),
        price_reports=[price_report("hardhat", "ETH", "1", signer="rogue", key=rogue)],
    )
    assert all("rogue" in r["reason"] for r in unknown.values()), unknown


def test_a_stale_report_is_not_used_and_the_rule_fails_closed(eth_cluster):
    stale = price_report(
        "hardhat", "ETH", "0.0001", observed_at=int(time.time()) - MAX_PRICE_AGE - 60
    )
    results = _sign(eth_cluster, _four_eth(), price_reports=[stale])
    assert _refusals(results) == {("refused", "policy", "large")}, results
    assert all("max_price_age" in r["reason"] for r in results.values()), results


def test_a_report_for_another_asset_does_not_price_this_one(eth_cluster):
    """A valid report for USDC (statically priced, so unused) leaves ETH without a
    price; a report naming an asset the registry does not list is refused."""
    other = price_report("hardhat", "USDC", "0.0001")
    results = _sign(eth_cluster, _four_eth(), price_reports=[other])
    assert _refusals(results) == {("refused", "policy", "large")}, results
    assert all("no price for ETH" in r["reason"] for r in results.values()), results
    elsewhere = price_report("ethereum", "ETH", "0.0001")
    results = _sign(eth_cluster, _four_eth(), price_reports=[elsewhere])
    assert _refusals(results) == {("refused", "price", None)}, results
    assert all("registry" in r["reason"] for r in results.values()), results


def test_a_report_in_another_currency_is_refused(eth_cluster):
    euros = price_report("hardhat", "ETH", "0.0001", currency="EUR")
    results = _sign(eth_cluster, _four_eth(), price_reports=[euros])
    assert _refusals(results) == {("refused", "price", None)}, results
    assert all("EUR" in r["reason"] for r in results.values()), results


def test_a_report_dated_in_the_future_is_refused(eth_cluster):
    ahead = price_report("hardhat", "ETH", "0.0001", observed_at=int(time.time()) + 3600)
    results = _sign(eth_cluster, _four_eth(), price_reports=[ahead])
    assert _refusals(results) == {("refused", "price", None)}, results
    assert all("future" in r["reason"] for r in results.values()), results
