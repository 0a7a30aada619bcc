"""CGGMP21 co-signers sign Bitcoin P2WPKH inputs only after checking the whole PSBT.

Sighashes are compared with python-bitcointx's BIP143 ``SignatureHash``; the finished
transaction's inputs are verified with python-bitcointx's ``VerifyScript`` (P2SH and
WITNESS flags, the spent amounts given). Intent approvals are made the way the service
makes them (``shardvault.service.transactions.intent_digest``).
"""

from __future__ import annotations

import hashlib
import time

import coincurve
import pytest
from bitcointx.core import CTransaction
from bitcointx.core.script import SIGHASH_ALL, SIGVERSION_WITNESS_V0, CScript, SignatureHash

from shardvault.chains import bitcoin
from shardvault.cosigner.checks import bitcoin_target, check_policy, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import BundleChain, parse_admin_set
from shardvault.service.bitcoin_transfers import (
    SpendableOutput,
    build_p2wpkh_spend,
    finish_p2wpkh_spend,
)
from shardvault.service.transactions import intent_digest
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.initiator_support import ALICE, create_body, forward, signed_request
from tests.cosigner.support import (
    ADMIN_SET,
    POLICY,
    REGTEST_NETWORK,
    WORKSPACE,
    approval,
    metadata,
    registry,
    sign_request,
    signed_bundle,
)
from tests.support_bitcoin_node import verify_inputs

WORKSPACE_ID = "0b7e1c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b"
TRANSACTION_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
REGTEST = bitcoin.Network.REGTEST
KEY = coincurve.PrivateKey(hashlib.sha256(b"p2wpkh co-signer test key").digest())
PUBKEY = KEY.public_key.format(compressed=True)
OURS = bitcoin.p2wpkh_script(PUBKEY)
SOURCE = bitcoin.address_from_script(OURS, REGTEST)
FOREIGN = bitcoin.p2wpkh_script(
    coincurve.PrivateKey(hashlib.sha256(b"someone else").digest()).public_key.format()
)
PAYEE = bitcoin.encode_segwit_address(REGTEST, 1, hashlib.sha256(b"payee").digest())
OTHER_PAYEE = bitcoin.encode_segwit_address(REGTEST, 1, hashlib.sha256(b"attacker").digest())
AMOUNT = 70_000

BTC_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "btc-needs-approval",
            "when": {"operation": ["transfer"], "asset": ["BTC"]},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        },
    ],
}


BTC_REGISTRY = registry(REGTEST_NETWORK)
"""The signed registry names the Bitcoin network: regtest."""


@pytest.fixture(scope="module")
def policy_chain():
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    chain.accept(signed_bundle(policy=BTC_POLICY, assets=BTC_REGISTRY))
    return chain


def _outpoint(label: str, index: int = 0) -> bitcoin.OutPoint:
    return bitcoin.OutPoint(hashlib.sha256(label.encode()).digest(), index)


def _psbt(
    *,
    inputs=((OURS, 50_000), (OURS, 40_000)),
    outputs=None,
    sighash_types=None,
) -> bitcoin.Psbt:
    """A PSBT spending ``inputs`` (script, amount) to PAYEE with change to OURS."""
    if outputs is None:
        payee = bitcoin.script_pubkey_for_address(PAYEE, REGTEST)
        outputs = [bitcoin.TxOut(AMOUNT, payee), bitcoin.TxOut(19_000, OURS)]
    psbt = bitcoin.create_psbt([_outpoint(f"in-{i}") for i in range(len(inputs))], outputs)
    for i, (script, amount) in enumerate(inputs):
        psbt = bitcoin.set_witness_utxo(psbt, i, bitcoin.TxOut(amount, script))
    for i, hash_type in (sighash_types or {}).items():
        psbt = bitcoin.set_sighash_type(psbt, i, hash_type)
    return psbt


def _request(psbt: bitcoin.Psbt, index: int = 0, *, intent=True, **meta) -> dict[str, object]:
    ids = {"transaction_id": TRANSACTION_ID, "workspace_id": WORKSPACE_ID} if intent else {}
    return {
        "chain": "bitcoin",
        "payload": psbt.serialize().hex(),
        "input_index": index,
        "metadata": {**metadata(), "network": "regtest", **ids, **meta},
    }


def _intent(**overrides) -> bytes:
    fields = {
        "workspace_id": WORKSPACE_ID,
        "transaction_id": TRANSACTION_ID,
        "network": "regtest",
        "source": SOURCE,
        "destination": PAYEE,
        "asset": "BTC",
        "amount_base_units": AMOUNT,
        **overrides,
    }
    return intent_digest(**fields)


def _check(chain, body, approvals, key=PUBKEY):
    target = signing_target(body, None, ecdsa_key=key, registry=chain.head.assets)
    evaluation = check_policy(
        chain, target.request, now=int(time.time()), approvals=approvals, history=()
    )
    return target, evaluation


def _bitcointx_sighash(psbt: bitcoin.Psbt, index: int, amount: int) -> bytes:
    tx = CTransaction.deserialize(psbt.unsigned_transaction().serialize(include_witness=False))
    script_code = CScript(b"\x76\xa9\x14" + OURS[2:] + b"\x88\xac")
    return bytes(SignatureHash(script_code, tx, index, SIGHASH_ALL, amount, SIGVERSION_WITNESS_V0))


# --- Checks ------------------------------------------------------------------------


def test_good_request_signs_the_bip143_sighash_under_the_intent(policy_chain):
    psbt = _psbt()
    good = approval(_intent())
    for index, amount in ((0, 50_000), (1, 40_000)):
        target, evaluation = _check(policy_chain, _request(psbt, index), [good])
        assert evaluation.rule == "btc-needs-approval"
        assert target.message == _bitcointx_sighash(psbt, index, amount)
        assert target.source_address == SOURCE
        assert target.taproot_merkle_root is None
        assert target.intent is not None
        assert (target.intent.destination, target.intent.amount) == (PAYEE, AMOUNT)
        assert target.request.digest.hex() == good["digest"]
        assert target.request.network == "regtest"
        assert target.request.asset is not None
        assert (target.request.asset.id, target.request.asset.decimals) == ("BTC", 8)


def test_without_intent_the_psbt_digest_is_approved(policy_chain):
    psbt = _psbt()
    sighashes = [bitcoin.input_sighash(psbt, i) for i in range(2)]
    digest = hashlib.sha256(b"shardvault/bitcoin/psbt-digest/v1\x00" + b"".join(sighashes)).digest()
    body = {**_request(psbt, intent=False), "digest": digest.hex()}
    target, evaluation = _check(policy_chain, body, [approval(digest)])
    assert target.request.digest == digest
    assert target.intent is None
    assert evaluation.rule == "btc-needs-approval"


@pytest.mark.parametrize(
    ("psbt", "index", "named"),
    [
        pytest.param(
            lambda: _psbt(inputs=((FOREIGN, 50_000), (OURS, 40_000))), 0, "input 0", id="not-ours"
        ),
        pytest.param(
            lambda: _psbt(inputs=((OURS, 50_000), (FOREIGN, 40_000))),
            0,
            "input 1",
            id="foreign-extra-input",
        ),
        pytest.param(
            lambda: _psbt(
                outputs=[
                    bitcoin.TxOut(AMOUNT, bitcoin.script_pubkey_for_address(PAYEE, REGTEST)),
                    bitcoin.TxOut(9_000, bitcoin.script_pubkey_for_address(OTHER_PAYEE, REGTEST)),
                ]
            ),
            0,
            "one standard address",
            id="two-payments",
        ),
        pytest.param(
            lambda: _psbt(outputs=[bitcoin.TxOut(89_000, OURS)]),
            0,
            "one standard address",
            id="no-payment",
        ),
        pytest.param(
            lambda: _psbt(outputs=[bitcoin.TxOut(0, b"\x6a\x04abcd"), bitcoin.TxOut(89_000, OURS)]),
            0,
            "one standard address",
            id="op-return",
        ),
        pytest.param(lambda: _psbt(sighash_types={0: 0x03}), 0, "sighash type 0x3", id="single"),
        pytest.param(
            lambda: _psbt(sighash_types={1: 0x81}), 0, "input 1 asks for sighash", id="acp-other"
        ),
    ],
)
def test_malicious_psbts_are_refused(policy_chain, psbt, index, named):
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(psbt(), index), [approval(_intent())])
    assert caught.value.check == "payload"
    assert named in caught.value.reason


def test_missing_witness_utxo_is_refused(policy_chain):
    psbt = bitcoin.create_psbt(
        [_outpoint("x")],
        [bitcoin.TxOut(AMOUNT, bitcoin.script_pubkey_for_address(PAYEE, REGTEST))],
    )
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(psbt), [])
    assert caught.value.check == "payload"
    assert caught.value.reason.startswith("input 0 does not spend")


def test_previous_transaction_is_checked_when_given(policy_chain):
    funding = bitcoin.Transaction(
        2, (bitcoin.TxIn(_outpoint("coinbase")),), (bitcoin.TxOut(50_000, OURS),)
    )
    payee = bitcoin.script_pubkey_for_address(PAYEE, REGTEST)
    outputs = [bitcoin.TxOut(AMOUNT, payee), bitcoin.TxOut(19_000, OURS)]
    base = bitcoin.create_psbt([bitcoin.OutPoint(funding.txid(), 0), _outpoint("in-1")], outputs)
    base = bitcoin.set_witness_utxo(base, 1, bitcoin.TxOut(40_000, OURS))
    # The previous transaction alone proves input 0's amount; it is accepted.
    proven = bitcoin.set_non_witness_utxo(base, 0, funding)
    target, _ = _check(policy_chain, _request(proven, 0), [approval(_intent())])
    assert target.message == _bitcointx_sighash(proven, 0, 50_000)
    # A witness UTXO claiming another amount than the previous transaction: refused.
    lying = bitcoin.set_witness_utxo(proven, 0, bitcoin.TxOut(5_000, OURS))
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(lying, 1), [approval(_intent())])
    assert caught.value.check == "payload"
    assert "disagree" in caught.value.reason


def test_wrong_network_is_refused(policy_chain):
    """The network is the signed registry's (regtest); the coordinator naming another,
    real or not, is refused."""
    for claimed in ("dogecoin", "testnet"):
        with pytest.raises(RequestRefused) as caught:
            _check(policy_chain, _request(_psbt(), network=claimed), [approval(_intent())])
        assert caught.value.check == "network"
        assert claimed in caught.value.reason
        assert "'regtest'" in caught.value.reason


def test_claimed_digest_mismatch_is_refused(policy_chain):
    shown = _psbt()
    sent = _psbt(inputs=((OURS, 50_000), (OURS, 45_000)))
    shown_digest = hashlib.sha256(
        b"shardvault/bitcoin/psbt-digest/v1\x00"
        + b"".join(bitcoin.input_sighash(shown, i) for i in range(2))
    ).digest()
    body = {**_request(sent), "digest": shown_digest.hex()}
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, body, [approval(_intent())])
    assert caught.value.check == "digest"


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"destination": OTHER_PAYEE}, id="destination"),
        pytest.param({"amount": AMOUNT + 1}, id="amount"),
    ],
)
def test_intent_changed_after_approval_is_refused(policy_chain, changed):
    payee = bitcoin.script_pubkey_for_address(changed.get("destination", PAYEE), REGTEST)
    amount = changed.get("amount", AMOUNT)
    psbt = _psbt(outputs=[bitcoin.TxOut(amount, payee), bitcoin.TxOut(19_000, OURS)])
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(psbt), [approval(_intent())])
    assert (caught.value.check, caught.value.rule) == ("policy", "btc-needs-approval")
    assert "ApprovalForAnotherTransactionError" in caught.value.reason


def test_another_key_is_another_source(policy_chain):
    other = coincurve.PrivateKey(hashlib.sha256(b"another key").digest()).public_key.format()
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_psbt()), [approval(_intent())], key=other)
    assert caught.value.check == "payload"
    assert "input 0" in caught.value.reason


@pytest.mark.parametrize(
    ("key", "ecdsa_key"),
    [
        pytest.param(None, b"\x04" + bytes(64), id="uncompressed"),
        pytest.param(None, b"\x02" + bytes(32), id="not-a-point"),
        pytest.param(bytes(32), PUBKEY, id="both-keys"),
        pytest.param(None, None, id="no-key"),
    ],
)
def test_bad_keys_are_refused(key, ecdsa_key):
    with pytest.raises(RequestRefused) as caught:
        bitcoin_target(
            _psbt().serialize(), _request(_psbt())["metadata"], key, 0, ecdsa_key=ecdsa_key
        )
    assert caught.value.check == "key"


def test_input_index_out_of_range_is_refused(policy_chain):
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_psbt(), 2), [])
    assert caught.value.check == "malformed"
    assert "input 2" in caught.value.reason


# --- In-process CGGMP21 nodes sign a two-input spend at a BIP32 path ----------------


BTC_PATH = "m/84/1/0/0/5"


@pytest.fixture(scope="module")
def btc_cluster(tmp_path_factory):
    """Nodes holding BTC_POLICY and an ECDSA key made with the TEST-ONLY Paillier primes."""
    root = tmp_path_factory.mktemp("p2wpkh-cluster")
    with ecdsa_cluster(root, BTC_POLICY, "btc-ecdsa", BTC_PATH, assets=BTC_REGISTRY) as (
        cluster,
        public_key,
    ):
        cluster.btc_pubkey = public_key
        yield cluster


def _presign(cluster, label):
    presign(cluster, "btc-ecdsa", BTC_PATH, label)


def _sign(cluster, psbt: bytes, index: int, label: str, approvals, request=None):
    """Sign input ``index`` of ``psbt`` as the intent's transaction, carrying the
    initiator's signed ``request`` if given."""
    body = sign_request(
        psbt,
        (1, 3),
        chain="bitcoin",
        key_id="btc-ecdsa",
        presignature=label,
        path=BTC_PATH,
        input_index=index,
        approvals=approvals,
    )
    body["metadata"].update(
        {"network": "regtest", "transaction_id": TRANSACTION_ID, "workspace_id": WORKSPACE_ID}
    )
    if request is not None:
        forward(body, request)
    return cluster.run(body, [1, 3])


def test_nodes_sign_a_two_input_p2wpkh_spend_that_bitcointx_verifies(btc_cluster):
    pubkey = btc_cluster.btc_pubkey
    source = bitcoin.address_from_script(bitcoin.p2wpkh_script(pubkey), REGTEST)
    utxos = [
        SpendableOutput(hashlib.sha256(b"fund-1").hexdigest(), 0, 50_000),
        SpendableOutput(hashlib.sha256(b"fund-2").hexdigest(), 1, 40_000),
    ]
    spend = build_p2wpkh_spend(
        network="regtest",
        source_address=source,
        source_pubkey=pubkey,
        utxos=utxos,
        destination=PAYEE,
        amount_sat=AMOUNT,
        fee_rate_sat_per_vb=3,
    )
    assert spend.input_count == 2
    good = approval(_intent(source=source))
    # Alice's one signed request covers every input of the one transaction.
    alices = signed_request(ALICE, create_body(PAYEE, "0.0007", wallet_id="w-btc", source_index=5))
    signatures = []
    for index in range(spend.input_count):
        _presign(btc_cluster, f"btc-{index}")
        results = _sign(btc_cluster, spend.psbt, index, f"btc-{index}", [good], alices)
        assert {r["status"] for r in results.values()} == {"ok"}, results
        assert {r["digest"] for r in results.values()} == {good["digest"]}
        assert {r["signature"] for r in results.values()} == {results[1]["signature"]}
        signatures.append(bytes.fromhex(results[1]["signature"]))
    raw, txid = finish_p2wpkh_spend(spend.psbt, signatures, pubkey)
    assert CTransaction.deserialize(raw).GetTxid()[::-1].hex() == txid
    verify_inputs(raw, [(bitcoin.p2wpkh_script(pubkey), u.amount_sat) for u in spend.inputs])

    # A PSBT paying someone else under the same approval: refused before any session.
    changed = build_p2wpkh_spend(
        network="regtest",
        source_address=source,
        source_pubkey=pubkey,
        utxos=utxos,
        destination=OTHER_PAYEE,
        amount_sat=AMOUNT,
        fee_rate_sat_per_vb=3,
    )
    _presign(btc_cluster, "btc-changed")
    results = _sign(btc_cluster, changed.psbt, 0, "btc-changed", [good])
    assert {(r["status"], r["check"], r["rule"]) for r in results.values()} == {
        ("refused", "policy", "btc-needs-approval")
    }
