"""Bitcoin and Solana fee caps hold against the server (issue: co-signers decide on signed
facts only; DESIGN.md invariant 12).

The test is the compromised server (tests/compromised/harness.py). The admins signed a
policy that lets any transfer through but caps its fees: on regtest 5,000 sat and
10 sat/vB, on solana a compute-unit price, a compute-unit limit and a whole fee. The
server builds each payload itself (tests/fee_payloads.py: the project's PSBT Updater,
solders) to burn the wallet in fees, and every co-signer in the quorum must refuse it,
each by itself, naming the check. The bundle's asset registry names the networks those
payloads are on (regtest, solana: neither payload says), so a network name the server
picks to escape a cap is refused before any cap is read. Three co-signer processes in
the production profile
hold a 2-of-3 CGGMP21 key (P2WPKH inputs), a FROST BIP340 key (taproot) and a FROST
Ed25519 key (Solana); what they do sign is verified with python-bitcointx, coincurve
and solders.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import coincurve
import pytest
from bitcointx.core import CMutableTransaction, CTxOut
from bitcointx.core.script import CScript, SignatureHashSchnorr
from solders.pubkey import Pubkey as SoldersPubkey
from solders.signature import Signature as SoldersSignature

from shardvault.chains import bitcoin
from shardvault.policy import parse_registry
from shardvault.service.bitcoin_transfers import finish_p2wpkh_spend
from tests.compromised.harness import CompromisedServer
from tests.cosigner.support import (
    REGTEST_NETWORK,
    metadata,
    registry,
    sign_request,
    solana_network,
)
from tests.fee_payloads import solana_message, spend_psbt, unit_limit, unit_price
from tests.support_bitcoin_node import verify_inputs

ECDSA_KEY = "btc-p2wpkh"
TAPROOT_KEY = "btc-taproot"
SOLANA_KEY = "sol-fees"
BTC_PATH = "m/84/1/0/0/3"
WORKSPACE_ID = "7d2c4b1a-9e8f-4a6b-8c5d-3e2f1a0b9c8d"
MAX_FEE_SAT = 5_000
MAX_RATE = 10
"""The caps on regtest: 5,000 sat, and 10 sat per vbyte of the signed transaction."""
MAX_PRICE = 10_000
MAX_LIMIT = 400_000
MAX_FEE_LAMPORTS = 8_000
"""The caps on solana: 10,000 micro-lamports a unit, 400,000 units, 8,000 lamports in
all (5,000 for the one signature and a priority fee of up to 3,000)."""

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "approvers": {},
    "groups": {},
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
    "fee_caps": {
        "regtest": {"max_fee_sat": str(MAX_FEE_SAT), "max_fee_rate_sat_per_vb": str(MAX_RATE)},
        "solana": {
            "max_compute_unit_price_micro_lamports": str(MAX_PRICE),
            "max_compute_unit_limit": str(MAX_LIMIT),
            "max_fee_lamports": str(MAX_FEE_LAMPORTS),
        },
    },
}


REGISTRY = registry(REGTEST_NETWORK, solana_network())
"""The admins' asset registry: Bitcoin regtest and solana, the networks every Bitcoin
and Solana payload here is taken to be on."""


@dataclass(frozen=True)
class Keys:
    """The vault's public keys as the server holds them."""

    p2wpkh: bytes
    """The compressed CGGMP21 key at :data:`BTC_PATH`."""
    taproot: bytes
    """The FROST BIP340 internal key (x-only)."""
    solana: bytes
    """The FROST Ed25519 key."""

    @property
    def ours(self) -> bytes:
        return bitcoin.p2wpkh_script(self.p2wpkh)

    @property
    def ours_taproot(self) -> bytes:
        return bitcoin.output_key(self.taproot).script_pubkey


@pytest.fixture(scope="module")
def keys(server: CompromisedServer) -> Keys:
    server.start("development")
    server.install(POLICY, assets=parse_registry(REGISTRY))
    root = server.ecdsa_key(ECDSA_KEY, metadata())
    taproot = server.frost_key(TAPROOT_KEY, metadata(), scheme="schnorr-bip340")
    solana = server.frost_key(SOLANA_KEY, metadata())
    return Keys(root.derive(BTC_PATH).public_key.to_bytes(), taproot, solana)


def _checks(results: dict[int, dict[str, object]]) -> set[tuple[object, object]]:
    return {(r["status"], r.get("check")) for r in results.values()}


def _refused_by_each(
    results: dict[int, dict[str, object]], parties: Sequence[int], check: str, *reasons: str
) -> None:
    """Every party in ``parties`` refused, naming ``check`` and each of ``reasons``."""
    assert sorted(results) == sorted(parties), results
    assert _checks(results) == {("refused", check)}, results
    for fragment in reasons:
        assert all(fragment in str(r["reason"]) for r in results.values()), (fragment, results)


# --- Bitcoin: P2WPKH inputs of the CGGMP21 key -----------------------------------------


def _p2wpkh_body(
    server: CompromisedServer,
    psbt: bitcoin.Psbt,
    index: int,
    signers: Sequence[int],
    *,
    network: str = "regtest",
    transaction_id: str | None = None,
) -> dict[str, object]:
    """Sign input ``index`` with a presignature made for it: nothing but the checks
    stands between the server and a signature. The service's requests name the transfer
    (``transaction_id``); by default a fresh one."""
    label = server.presign(ECDSA_KEY, BTC_PATH, signers)
    transaction_id = transaction_id or str(uuid.uuid4())
    ids = {"transaction_id": transaction_id, "workspace_id": WORKSPACE_ID}
    return sign_request(
        psbt.serialize(),
        signers,
        key_id=ECDSA_KEY,
        chain="bitcoin",
        input_index=index,
        path=BTC_PATH,
        presignature=label,
        metadata={**metadata(), "network": network, **ids},
    )


def test_a_p2wpkh_fee_above_max_fee_sat_is_refused(server, keys):
    psbt = spend_psbt(
        ((50_000, keys.ours), (40_000, keys.ours)),
        change_script=keys.ours,
        fee=MAX_FEE_SAT + 1,
        label="over-fee",
    )
    results = server.run_each(_p2wpkh_body(server, psbt, 0, (1, 2)), (1, 2))
    _refused_by_each(
        results,
        (1, 2),
        "fee",
        f"the fee {MAX_FEE_SAT + 1} sat",
        f"max_fee_sat {MAX_FEE_SAT} for regtest",
    )


def test_a_p2wpkh_fee_rate_above_the_cap_is_refused(server, keys):
    """4,000 sat is under the absolute cap, but about 18 sat/vB on a 2-in, 2-out spend."""
    psbt = spend_psbt(
        ((50_000, keys.ours), (40_000, keys.ours)),
        change_script=keys.ours,
        fee=4_000,
        label="over-rate",
    )
    results = server.run_each(_p2wpkh_body(server, psbt, 1, (2, 3)), (2, 3))
    _refused_by_each(
        results, (2, 3), "fee", "4000 sat over 220 vB", f"max_fee_rate_sat_per_vb {MAX_RATE}"
    )


def test_a_sibling_input_without_its_previous_transaction_is_refused(server, keys):
    """Input 1's amount is only claimed (its own BIP143 signature, not input 0's, would
    commit to it): understated, it would hide a fee."""
    psbt = spend_psbt(
        ((50_000, keys.ours), (40_000, keys.ours)),
        change_script=keys.ours,
        proven=(0,),
        label="unproven",
    )
    results = server.run_each(_p2wpkh_body(server, psbt, 0, (1, 3)), (1, 3))
    _refused_by_each(results, (1, 3), "fee", "input 1's amount is not proven", "non_witness_utxo")


def test_a_bitcoin_network_without_a_cap_is_refused_while_regtest_is_capped(server, keys):
    """The server names testnet, which the policy does not cap, for a spend whose fee is
    four times regtest's cap: the network is the signed registry's, so the name is
    refused (check ``network``) before the cap of either network is read."""
    psbt = spend_psbt(
        ((50_000, keys.ours), (40_000, keys.ours)),
        change_script=keys.ours,
        fee=20_000,
        label="uncapped-network",
    )
    body = _p2wpkh_body(server, psbt, 0, (1, 2), network="testnet")
    results = server.run_each(body, (1, 2))
    _refused_by_each(
        results, (1, 2), "network", "metadata.network 'testnet' is not 'regtest'", "registry"
    )


def _signed_spend(results, psbt: bitcoin.Psbt, keys: Keys, amount: int) -> None:
    """The one-input spend of ``psbt`` signed as ``results`` say, verified by
    python-bitcointx against the coin it spends."""
    signature = bytes.fromhex(str(results[min(results)]["signature"]))
    raw, _ = finish_p2wpkh_spend(psbt.serialize(), [signature], keys.p2wpkh)
    verify_inputs(raw, [(keys.ours, amount)])


def test_a_fee_bump_above_the_cap_is_refused_after_the_original_was_signed(server, keys):
    """The same transfer and the same outpoint (a replacement the record lets through),
    re-signed with more fee: above the cap it is refused like any payload, within it
    signed."""
    coins = ((100_000, keys.ours),)

    def spend(fee: int) -> bitcoin.Psbt:
        return spend_psbt(coins, change_script=keys.ours, fee=fee, label="bump")

    original = spend(1_000)
    results = server.run_ok(
        _p2wpkh_body(server, original, 0, (1, 2), transaction_id="btc-bump"), (1, 2)
    )
    _signed_spend(results, original, keys, 100_000)

    greedy = spend(MAX_FEE_SAT + 2_000)
    body = _p2wpkh_body(server, greedy, 0, (2, 3), transaction_id="btc-bump")
    _refused_by_each(
        server.run_each(body, (2, 3)),
        (2, 3),
        "fee",
        f"the fee {MAX_FEE_SAT + 2_000} sat",
        f"max_fee_sat {MAX_FEE_SAT}",
    )

    # 1,200 sat over the spend's 153 vB (under 8 sat/vB): within both caps, so signed.
    modest = spend(1_200)
    results = server.run_ok(
        _p2wpkh_body(server, modest, 0, (2, 3), transaction_id="btc-bump"), (2, 3)
    )
    _signed_spend(results, modest, keys, 100_000)


# --- Bitcoin: a taproot input of the FROST BIP340 key ---------------------------------


def _taproot_body(psbt: bitcoin.Psbt, signers: Sequence[int]) -> dict[str, object]:
    return sign_request(
        psbt.serialize(),
        signers,
        key_id=TAPROOT_KEY,
        chain="bitcoin",
        input_index=0,
        metadata={**metadata(), "network": "regtest"},
    )


def test_a_taproot_input_with_sighash_none_is_refused(server, keys):
    """SIGHASH_NONE would let the server rewrite every output once it holds the
    signature. The same spend with the default sighash is signed, and the signature
    verifies (coincurve) over python-bitcointx's BIP341 sighash."""
    coins = ((100_000, keys.ours_taproot),)
    loose = spend_psbt(
        coins, change_script=keys.ours_taproot, sighash_types={0: 0x02}, label="none"
    )
    results = server.run_each(_taproot_body(loose, (1, 3)), (1, 3))
    _refused_by_each(results, (1, 3), "payload", "sighash type 0x2")

    default = spend_psbt(coins, change_script=keys.ours_taproot, label="none")
    results = server.run_ok(_taproot_body(default, (1, 3)), (1, 3))
    tx = CMutableTransaction.deserialize(default.unsigned_transaction().serialize())
    sighash = SignatureHashSchnorr(tx, 0, [CTxOut(100_000, CScript(keys.ours_taproot))])
    output_key = coincurve.PublicKeyXOnly(bitcoin.output_key(keys.taproot).x_only)
    assert output_key.verify(bytes.fromhex(str(results[1]["signature"])), bytes(sighash))


# --- Solana: the FROST Ed25519 key -----------------------------------------------------


def _solana_body(message: bytes, network: str = "solana") -> dict[str, object]:
    return sign_request(
        message, (1, 2), key_id=SOLANA_KEY, metadata={**metadata(), "network": network}
    )


def test_a_solana_transfer_within_the_caps_is_signed(server, keys):
    """The control: price, limit and fee under their caps (5,000 + 1,000 lamports)."""
    message = solana_message([unit_limit(200_000), unit_price(5_000)], keys.solana)
    results = server.run_ok(_solana_body(message), (1, 2))
    signature = SoldersSignature(bytes.fromhex(str(results[1]["signature"])))
    assert signature.verify(SoldersPubkey(keys.solana), message)


@pytest.mark.parametrize(
    ("budget", "network", "check", "reasons"),
    [
        pytest.param(
            [unit_limit(100_000), unit_price(MAX_PRICE + 1)],
            "solana",
            "fee",
            (f"compute-unit price {MAX_PRICE + 1}", "max_compute_unit_price_micro_lamports"),
            id="price-above-its-cap",
        ),
        pytest.param(
            [unit_limit(MAX_LIMIT + 1), unit_price(1)],
            "solana",
            "fee",
            (f"compute-unit limit {MAX_LIMIT + 1}", f"max_compute_unit_limit {MAX_LIMIT}"),
            id="limit-above-its-cap",
        ),
        pytest.param(
            # 5,000 for the signature and 400,000 x 10,000 / 10**6 = 4,000 of priority.
            [unit_limit(MAX_LIMIT), unit_price(MAX_PRICE)],
            "solana",
            "fee",
            ("the fee 9000 lamports", f"max_fee_lamports {MAX_FEE_LAMPORTS} for solana"),
            id="fee-above-its-cap",
        ),
        pytest.param(
            [unit_price(1), unit_limit(1_000), unit_price(MAX_PRICE * 1_000)],
            "solana",
            "payload",
            ("instructions[2]: a second set_compute_unit_price",),
            id="second-price-instruction",
        ),
        pytest.param(
            # A priority fee of 0.4 SOL (400,000 units at 10**9 micro-lamports) under a
            # network name the policy does not cap: the registry names solana, so the
            # name is refused.
            [unit_limit(MAX_LIMIT), unit_price(10**9)],
            "solana-devnet",
            "network",
            ("metadata.network 'solana-devnet' is not 'solana'", "registry"),
            id="uncapped-network",
        ),
    ],
)
def test_a_solana_fee_above_the_signed_caps_is_refused(
    server, keys, budget, network, check, reasons
):
    message = solana_message(budget, keys.solana)
    results = server.run_each(_solana_body(message, network), (1, 2))
    _refused_by_each(results, (1, 2), check, *reasons)
