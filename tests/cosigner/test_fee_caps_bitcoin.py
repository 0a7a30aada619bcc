"""Co-signers cap a Bitcoin transaction's fee and fee rate under the signed policy
(DESIGN.md invariant 12, docs/policy.md "Fee caps"), with every input amount proven.

The fee is the inputs' amounts less the outputs. A BIP143 (P2WPKH) signature commits to
its own input's amount only, so the other inputs' amounts must come with their previous
transactions (``non_witness_utxo``, whose txid is the outpoint's); a BIP341 (taproot)
signature commits to every input's amount and script, so a lie about one makes the
signature useless. Signed transactions are verified with python-bitcointx
(``VerifyScript``, ``SignatureHashSchnorr``, ``get_virtual_size``); the nodes hold an
ECDSA key made with the TEST-ONLY Paillier primes (tests/fixtures/test_only_paillier.json)
and a FROST BIP340 key.
"""

from __future__ import annotations

import dataclasses
import hashlib

import coincurve
import pytest
from bitcointx.core import CMutableTransaction, CTransaction, CTxOut
from bitcointx.core.script import CScript, SignatureHashSchnorr

from shardvault.chains import bitcoin
from shardvault.chains.bitcoin.psbt import IN_NON_WITNESS_UTXO, PsbtRecord
from shardvault.cosigner.checks import check_fee, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import parse_registry
from shardvault.service.bitcoin_transfers import finish_p2wpkh_spend
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.support import (
    POLICY,
    REGTEST_NETWORK,
    dkg_request,
    fee_refusal,
    metadata,
    policy_chain,
    registry,
    sign_request,
)
from tests.fee_payloads import funding, spend_psbt
from tests.support_bitcoin_node import verify_inputs

REGTEST = bitcoin.Network.REGTEST
KEY = coincurve.PrivateKey(hashlib.sha256(b"fee cap test key").digest())
PUBKEY = KEY.public_key.format(compressed=True)
OURS = bitcoin.p2wpkh_script(PUBKEY)
INTERNAL = coincurve.PrivateKey(hashlib.sha256(b"fee cap taproot key").digest()).public_key
INTERNAL_X = INTERNAL.format(compressed=True)[1:]
OURS_TR = bitcoin.output_key(INTERNAL_X).script_pubkey
FOREIGN_TR = bitcoin.p2tr_script(hashlib.sha256(b"someone else's coin").digest())
MAX_FEE_SAT = 5_000
MAX_RATE = 10
"""The caps on regtest: 5,000 sat, and 10 sat per vbyte of the signed transaction."""

CAPPED_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "btc", "when": {"operation": ["transfer"], "asset": ["BTC"]}, "action": "allow"},
    ],
    "fee_caps": {
        "regtest": {"max_fee_sat": str(MAX_FEE_SAT), "max_fee_rate_sat_per_vb": str(MAX_RATE)},
        "signet": {"max_fee_sat": "1000000"},
    },
}


BTC_REGISTRY = registry(REGTEST_NETWORK)
"""The signed registry names the Bitcoin network: regtest."""


@pytest.fixture(scope="module")
def capped_chain():
    return policy_chain(CAPPED_POLICY, assets=BTC_REGISTRY)


def _psbt(coins=((50_000, OURS), (40_000, OURS)), *, change_script=OURS, **fields):
    """:func:`~tests.fee_payloads.spend_psbt` of ``coins``, by default two of ours (every
    input proven unless ``proven`` says otherwise)."""
    return spend_psbt(coins, change_script=change_script, **fields)


def _body(psbt: bitcoin.Psbt, index: int = 0, network: str = "regtest") -> dict[str, object]:
    return {
        "chain": "bitcoin",
        "payload": psbt.serialize().hex(),
        "input_index": index,
        "metadata": {**metadata(), "network": network},
    }


def _p2wpkh(psbt, index=0, assets=BTC_REGISTRY):
    """What a co-signer makes of a P2WPKH request under the registry ``assets`` (whose
    Bitcoin network the service names in the metadata too)."""
    signed = parse_registry(assets)
    (network,) = signed.networks
    body = _body(psbt, index, network.name)
    return signing_target(body, None, ecdsa_key=PUBKEY, registry=signed)


def _taproot(psbt, index=0):
    return signing_target(_body(psbt, index), INTERNAL_X, registry=parse_registry(BTC_REGISTRY))


# --- P2WPKH (BIP143) --------------------------------------------------------------


def test_p2wpkh_fee_above_the_cap_is_refused(capped_chain):
    refusal = fee_refusal(capped_chain, _p2wpkh(_psbt(fee=MAX_FEE_SAT + 1)))
    assert f"fee {MAX_FEE_SAT + 1} sat" in refusal.reason
    assert f"max_fee_sat {MAX_FEE_SAT} for regtest" in refusal.reason


def test_p2wpkh_fee_rate_above_the_cap_is_refused(capped_chain):
    """4,000 sat is under the absolute cap, but about 18 sat/vB on a 2-in, 2-out spend."""
    target = _p2wpkh(_psbt(fee=4_000))
    refusal = fee_refusal(capped_chain, target)
    assert target.fee is not None
    assert f"4000 sat over {target.fee.vsize} vB" in refusal.reason
    assert f"max_fee_rate_sat_per_vb {MAX_RATE} for regtest" in refusal.reason


def test_p2wpkh_fee_under_both_caps_is_computed_and_passes(capped_chain):
    psbt = _psbt(fee=1_000)
    target = _p2wpkh(psbt, index=1)
    check_fee(capped_chain, target)
    assert target.fee is not None
    assert (target.fee.network, target.fee.fee_sat) == ("regtest", 1_000)
    # 166 bytes without witness (2 inputs of 41 bytes, a P2TR and a P2WPKH output),
    # the segwit marker and two 107-byte witnesses (a 71-byte signature, a 33-byte key):
    # weight 166 * 4 + 2 + 214 = 880.
    assert target.fee.vsize == 220
    # Signed with the test key, python-bitcointx measures the transaction at the size
    # counted or a vbyte more (a 72-byte signature: r needs a 33rd byte half the time).
    signatures = [KEY.sign_recoverable(bitcoin.input_sighash(psbt, i), hasher=None) for i in (0, 1)]
    raw, _ = finish_p2wpkh_spend(psbt.serialize(), signatures, PUBKEY)
    verify_inputs(raw, [(OURS, 50_000), (OURS, 40_000)])
    assert target.fee.vsize <= CTransaction.deserialize(raw).get_virtual_size() <= 221


@pytest.mark.parametrize("index", [0, 1])
def test_an_input_amount_without_its_previous_transaction_is_refused(capped_chain, index):
    """The other input's amount is only claimed: its BIP143 signature, not ours, commits
    to it. Understated, it hides a fee (BIP143's fee attack)."""
    other = 1 - index
    psbt = _psbt(fee=1_000, proven=(index,))
    refusal = fee_refusal(capped_chain, _p2wpkh(psbt, index))
    assert f"input {other}'s amount is not proven" in refusal.reason
    assert "non_witness_utxo" in refusal.reason


def test_the_input_being_signed_needs_no_previous_transaction(capped_chain):
    """A one-input spend: the BIP143 signature commits to the input's own amount, so a
    lie about it makes the signature invalid; nothing else is claimed."""
    psbt = _psbt(((100_000, OURS),), fee=1_000, proven=())
    target = _p2wpkh(psbt)
    check_fee(capped_chain, target)
    assert target.fee is not None
    assert target.fee.fee_sat == 1_000


def test_a_previous_transaction_of_another_txid_is_refused(capped_chain):
    """The previous transaction claims the amount; its txid must be the outpoint's."""
    psbt = _psbt(fee=1_000, proven=(0,))
    lying = funding("a coin of more value", 40_000, OURS)
    # The Updater refuses to attach it, so the coordinator writes the record itself.
    record = PsbtRecord(IN_NON_WITNESS_UTXO, b"", lying.serialize())
    maps = (psbt.input_maps[0], (*psbt.input_maps[1], record))
    forged = dataclasses.replace(psbt, input_maps=maps).serialize()
    with pytest.raises(RequestRefused) as caught:
        signing_target(
            {**_body(psbt), "payload": forged.hex()},
            None,
            ecdsa_key=PUBKEY,
            registry=parse_registry(BTC_REGISTRY),
        )
    assert caught.value.check == "payload"
    assert "inputs[1].non_witness_utxo" in caught.value.reason
    assert "not the transaction the input spends" in caught.value.reason


def test_a_witness_amount_that_disagrees_with_the_previous_transaction_is_refused(capped_chain):
    psbt = _psbt(fee=1_000, claimed={1: 39_000})
    with pytest.raises(RequestRefused) as caught:
        _p2wpkh(psbt)
    assert caught.value.check == "payload"
    assert "witness and non-witness UTXOs disagree" in caught.value.reason


def test_a_network_name_without_a_cap_is_refused_when_others_are_capped():
    """The registry names the Bitcoin network (a PSBT does not): one the policy does not
    cap, while it caps others, is not read as uncapped."""
    testnet = registry({**REGTEST_NETWORK, "name": "testnet"})
    chain = policy_chain(CAPPED_POLICY, assets=testnet)
    refusal = fee_refusal(chain, _p2wpkh(_psbt(fee=15_000), assets=testnet))
    assert "testnet" in refusal.reason
    assert "regtest" in refusal.reason


# --- Taproot key path (BIP341) ---------------------------------------------------------


def test_taproot_fee_above_the_cap_is_refused(capped_chain):
    psbt = _psbt(
        ((100_000, OURS_TR), (20_000, FOREIGN_TR)), fee=6_000, proven=(), change_script=OURS_TR
    )
    refusal = fee_refusal(capped_chain, _taproot(psbt))
    assert "fee 6000 sat" in refusal.reason


def test_taproot_amounts_need_no_previous_transaction(capped_chain):
    psbt = _psbt(
        ((100_000, OURS_TR), (20_000, FOREIGN_TR)), fee=1_000, proven=(), change_script=OURS_TR
    )
    target = _taproot(psbt)
    check_fee(capped_chain, target)
    assert target.fee is not None
    # 178 bytes without witness (2 inputs of 41 bytes, two P2TR outputs), the marker and
    # two 66-byte key-path witnesses (one 64-byte signature each): weight 846.
    assert (target.fee.fee_sat, target.fee.vsize) == (1_000, 212)


@pytest.mark.parametrize(
    "hash_type",
    [0x02, 0x03, 0x81, 0x82, 0x83],
    ids=["none", "single", "all-anyonecanpay", "none-anyonecanpay", "single-anyonecanpay"],
)
def test_taproot_sighash_types_that_leave_outputs_or_inputs_out_are_refused(
    capped_chain, hash_type
):
    """NONE lets anyone rewrite the outputs after signing; SINGLE all but one;
    ANYONECANPAY leaves the other inputs' amounts out of the signature."""
    psbt = _psbt(
        ((100_000, OURS_TR),),
        fee=1_000,
        proven=(),
        sighash_types={0: hash_type},
        change_script=OURS_TR,
    )
    with pytest.raises(RequestRefused) as caught:
        _taproot(psbt)
    assert caught.value.check == "payload"
    assert f"sighash type {hash_type:#x}" in caught.value.reason


# --- In-process nodes: signatures, the signed size, a fee bump --------------------------

BTC_PATH = "m/84/1/0/0/7"
TRANSACTION_ID = "fee-bump-1"


@pytest.fixture(scope="module")
def btc_cluster(tmp_path_factory):
    """Nodes holding CAPPED_POLICY, an ECDSA key (P2WPKH) and a FROST BIP340 key."""
    root = tmp_path_factory.mktemp("btc-fee-cap-cluster")
    with ecdsa_cluster(root, CAPPED_POLICY, "btc-ecdsa", BTC_PATH, assets=BTC_REGISTRY) as (
        cluster,
        public_key,
    ):
        cluster.btc_pubkey = public_key
        results = cluster.run(dkg_request(scheme="schnorr-bip340", key_id="btc-tr"), [1, 2, 3])
        assert {r["status"] for r in results.values()} == {"ok"}, results
        cluster.tr_key = bytes.fromhex(results[1]["public_key"])
        yield cluster


def _cluster_sign(cluster, psbt: bitcoin.Psbt, index: int, *, intent=True, **fields):
    """Sign input ``index`` on nodes 1 and 3; a P2WPKH transfer under its intent (the
    service's requests), a taproot one without (taproot PSBTs carry no intent)."""
    ids = {"transaction_id": TRANSACTION_ID, "workspace_id": "ws-1"} if intent else {}
    body = sign_request(
        psbt.serialize(),
        (1, 3),
        chain="bitcoin",
        input_index=index,
        metadata={**metadata(), "network": "regtest", **ids},
        **fields,
    )
    return cluster.run(body, [1, 3])


def _sign_p2wpkh(cluster, psbt: bitcoin.Psbt, label: str) -> list[dict[int, dict]]:
    out = []
    for index in range(len(psbt.inputs)):
        presign(cluster, "btc-ecdsa", BTC_PATH, f"{label}-{index}")
        out.append(
            _cluster_sign(
                cluster,
                psbt,
                index,
                key_id="btc-ecdsa",
                presignature=f"{label}-{index}",
                path=BTC_PATH,
            )
        )
    return out


def test_a_fee_bump_above_the_cap_is_refused_after_the_original_was_signed(btc_cluster):
    """Same outpoints (the same replay key, so the record lets a replacement through):
    the bump is checked against the cap like any other transaction."""
    pubkey = btc_cluster.btc_pubkey
    ours = bitcoin.p2wpkh_script(pubkey)
    coins = ((50_000, ours), (40_000, ours))
    original = _psbt(coins, fee=1_000, change_script=ours, label="bump")
    signed = _sign_p2wpkh(btc_cluster, original, "original")
    assert all({r["status"] for r in results.values()} == {"ok"} for results in signed), signed
    signatures = [bytes.fromhex(results[1]["signature"]) for results in signed]
    raw, _ = finish_p2wpkh_spend(original.serialize(), signatures, pubkey)
    verify_inputs(raw, [(ours, 50_000), (ours, 40_000)])

    bump = _psbt(coins, fee=MAX_FEE_SAT + 1_000, change_script=ours, label="bump")
    presign(btc_cluster, "btc-ecdsa", BTC_PATH, "bump-0")
    results = _cluster_sign(
        btc_cluster, bump, 0, key_id="btc-ecdsa", presignature="bump-0", path=BTC_PATH
    )
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "fee")}
    assert all(f"max_fee_sat {MAX_FEE_SAT}" in r["reason"] for r in results.values()), results


def test_a_lying_taproot_amount_gives_a_signature_valid_only_for_the_fee_computed(btc_cluster):
    """The coordinator claims 1,000 sat for a foreign input worth 200,000: the fee it
    shows is 2,000 sat, under the cap, and the nodes sign. BIP341 commits to every
    input's amount, so the signature verifies (bitcointx) only against the claimed
    amounts: the transaction the chain would accept pays the fee that was checked, and
    with the true amounts the signature is worthless."""
    internal = btc_cluster.tr_key
    ours = bitcoin.output_key(internal).script_pubkey
    coins = ((100_000, ours), (200_000, FOREIGN_TR))
    psbt = _psbt(coins, fee=2_000 + 199_000, proven=(), claimed={1: 1_000}, change_script=ours)
    target = signing_target(_body(psbt), internal, registry=parse_registry(BTC_REGISTRY))
    assert target.fee is not None
    assert target.fee.fee_sat == 2_000
    results = _cluster_sign(btc_cluster, psbt, 0, intent=False, key_id="btc-tr")
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[1]["signature"])

    tx = CMutableTransaction.deserialize(psbt.unsigned_transaction().serialize())

    def bip341_sighash(amounts):
        spent = [CTxOut(a, CScript(s)) for a, (_, s) in zip(amounts, coins, strict=True)]
        return bytes(SignatureHashSchnorr(tx, 0, spent))

    output_key = coincurve.PublicKeyXOnly(bitcoin.output_key(internal).x_only)
    assert output_key.verify(signature, bip341_sighash([100_000, 1_000]))
    assert not output_key.verify(signature, bip341_sighash([100_000, 200_000]))


def test_taproot_sighash_is_bitcointx_s():
    """The BIP341 sighash the fee checks rest on, against python-bitcointx."""
    psbt = _psbt(
        ((100_000, OURS_TR), (20_000, FOREIGN_TR)), fee=1_000, proven=(), change_script=OURS_TR
    )
    tx = CMutableTransaction.deserialize(psbt.unsigned_transaction().serialize())
    spent = [CTxOut(100_000, CScript(OURS_TR)), CTxOut(20_000, CScript(FOREIGN_TR))]
    for index in range(2):
        assert bitcoin.input_sighash(psbt, index) == bytes(
            SignatureHashSchnorr(tx, index, spent)
        ), index
