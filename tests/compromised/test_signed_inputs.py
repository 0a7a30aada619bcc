"""Prices, decimals and network names reach the co-signers signed, or not at all
(DESIGN.md invariant 12; issue: co-signers decide on signed facts only).

The test is the compromised server (tests/compromised/harness.py): it holds the relay,
the signed bundle and the public part of a 2-of-3 CGGMP21 key, and tries to get a
transfer signed that the policy would hold, by asserting the facts the policy decides
on: a ``prices`` map that values 4 ETH at almost nothing, an ERC-20's decimals, a Bitcoin
network's name, a price report signed by a key the admins never named, a report older
than the bundle's ``max_price_age``. Every co-signer of the quorum must refuse, and say
which check refused; beside them, a fresh report of the named price key is what prices a
transfer that is then signed.

The bundle carries an asset registry (docs/policy.md, "Asset registry") naming hardhat's
ETH and a 6-decimal USDC, Bitcoin regtest, and one TEST-ONLY price key; and, since its
approval rules depend on who initiated a transfer, the initiator keys of alice and bob
(docs/policy.md, "Signed inputs").
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence

import pytest
from eth_account import Account
from nacl.signing import SigningKey

from shardvault.chains import bitcoin, ethereum
from shardvault.policy import parse_initiator_keys, parse_registry
from tests.compromised.harness import RESULT_TIMEOUT, CompromisedServer
from tests.cosigner.initiator_support import INITIATORS
from tests.cosigner.support import (
    ETH,
    PRICE_KEY,
    REGTEST_NETWORK,
    VAULT,
    hardhat_network,
    needs_treasury,
    price_report,
    registry,
)
from tests.cosigner.support import POLICY as TREASURY_POLICY

KEY_ID = "signed-inputs-key"
HARDHAT = 31337
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
"""The USDC contract the registry lists (nothing is deployed: the test reads what the
co-signers answer, and no attack here gets as far as a signature)."""
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FEES = ethereum.FeeParameters(2 * 10**9, 10**9, 100_000)
MAX_PRICE_AGE = 600
ROGUE_KEY = SigningKey(hashlib.sha256(b"TEST-ONLY rogue price key").digest())
"""A TEST-ONLY key the registry does not name."""

POLICY = {
    **TREASURY_POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        # Over 1,000 USD of ETH needs carol.
        needs_treasury("eth-large", {"asset": ["ETH"], "value": {"over": "1000"}}),
        # Over 1,000 USDC needs carol.
        needs_treasury("usdc-large", {"asset": ["USDC"], "amount": {"over": "1000"}}),
        # Every transfer on the admins' Bitcoin network needs carol.
        needs_treasury("regtest-btc", {"operation": ["transfer"], "network": ["regtest"]}),
        {"name": "small", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}

REGISTRY = registry(
    hardhat_network(ETH, {"id": "USDC", "contract": TOKEN, "decimals": 6}),
    REGTEST_NETWORK,
    price_keys=[
        {"id": "oracle", "algorithm": "ed25519", "public_key": bytes(PRICE_KEY.verify_key).hex()}
    ],
    max_price_age=MAX_PRICE_AGE,
)
"""Hardhat's ETH (priced by reports only) and a 6-decimal USDC, Bitcoin regtest, and the
TEST-ONLY price key of tests/cosigner/support.py as ``oracle``."""


@pytest.fixture(scope="module")
def vault(server: CompromisedServer):
    server.start("development")
    server.install(
        POLICY, assets=parse_registry(REGISTRY), initiators=parse_initiator_keys(INITIATORS)
    )
    return server.ecdsa_key(KEY_ID, _metadata())


def _metadata(**extra: object) -> dict[str, object]:
    return {
        "initiator": {"type": "user", "id": "alice"},
        "source": {"vault": VAULT},
        "created_at": int(time.time()),
        **extra,
    }


def _sign_body(
    server: CompromisedServer,
    path: str,
    signers: Sequence[int],
    chain: str,
    payload: bytes,
    metadata: Mapping[str, object],
    **extra: object,
) -> dict[str, object]:
    """A signing request the way the server sends one, with a fresh presignature made
    for it (so a co-signer that lets the attack through does sign)."""
    return {
        "kind": "sign",
        "request_id": secrets.token_hex(8),
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": KEY_ID,
        "signers": list(signers),
        "chain": chain,
        "payload": payload.hex(),
        "path": path,
        "presignature": server.presign(KEY_ID, path, signers),
        "metadata": dict(metadata),
        "approvals": [],
        **extra,
    }


def _every_answer(
    server: CompromisedServer, body: Mapping[str, object], signers: Sequence[int]
) -> dict[int, dict[str, object]]:
    """Every signer's answer to ``body`` (not only the first refusal); a session that
    did not complete is then aborted, as the server would abort it."""
    server.submit(body, signers)
    request_id = str(body["request_id"])
    answers = server.core.wait_results(request_id, list(signers), RESULT_TIMEOUT)
    server.core.forget(request_id)
    if all(answers.get(p, {}).get("status") == "ok" for p in signers):
        return answers
    server.core.submit(
        {
            "kind": "abort",
            "request_id": f"abort-{secrets.token_hex(8)}",
            "session_id": body["session_id"],
        },
        list(signers),
    )
    return answers


def _assert_refused(
    answers: Mapping[int, Mapping[str, object]],
    signers: Sequence[int],
    check: str,
    *words: str,
    rule: str | None = None,
) -> None:
    """Every signer answered, refused with ``check`` (and ``rule``), gave no signature,
    and said each of ``words``."""
    assert sorted(answers) == sorted(signers), answers
    assert {(a["status"], a.get("check"), a.get("rule")) for a in answers.values()} == {
        ("refused", check, rule)
    }, answers
    assert all("signature" not in a for a in answers.values()), answers
    for word in words:
        assert all(word in str(a.get("reason")) for a in answers.values()), (word, answers)


FOUR_ETH = ethereum.native_transfer(chain_id=HARDHAT, nonce=0, to=RECIPIENT, amount="4", fees=FEES)
"""4 ETH (12,000 USD at 3,000 USD per ETH); the path signing it names the sender."""


def _four_eth() -> bytes:
    return ethereum.encode_unsigned(FOUR_ETH)


def test_a_coordinator_price_map_is_refused(server, vault):
    """The server values 4 ETH at 0.0001 USD each to skip carol's approval (beside a
    good signed report, which would have held it)."""
    signers = (1, 2)
    body = _sign_body(
        server,
        "m/1/1",
        signers,
        "ethereum",
        _four_eth(),
        _metadata(),
        prices={"ETH": "0.0001"},
        price_reports=[price_report("hardhat", "ETH", "3000")],
    )
    _assert_refused(_every_answer(server, body, signers), signers, "price", "field prices")


def test_coordinator_token_decimals_are_refused(server, vault):
    """5,000 USDC (6 decimals) said to be an 18-decimal token is 5e-9 USDC, under the
    1,000 USDC that needs carol."""
    signers = (1, 3)
    tx = ethereum.erc20_transfer(
        chain_id=HARDHAT,
        nonce=0,
        token=TOKEN,
        to=RECIPIENT,
        amount="5000",
        decimals=6,
        fees=FEES,
    )
    body = _sign_body(
        server,
        "m/1/2",
        signers,
        "ethereum",
        ethereum.encode_unsigned(tx),
        _metadata(token_decimals=18),
    )
    _assert_refused(_every_answer(server, body, signers), signers, "malformed", "token_decimals")


@pytest.mark.parametrize(("claimed", "path"), [("testnet", "m/1/3/0"), ("bitcoin", "m/1/3/1")])
def test_a_coordinator_bitcoin_network_name_is_refused(server, vault, claimed, path):
    """The admins' Bitcoin network is regtest, where every transfer needs carol; the
    server says the PSBT is for another network, which no rule names."""
    signers = (2, 3)
    ours = bitcoin.p2wpkh_script(vault.derive(path).public_key.to_bytes())
    payee = b"\x00\x14" + hashlib.sha256(b"payee " + claimed.encode()).digest()[:20]
    outpoint = bitcoin.OutPoint(hashlib.sha256(b"funding " + claimed.encode()).digest(), 0)
    psbt = bitcoin.create_psbt(
        [outpoint], [bitcoin.TxOut(60_000, payee), bitcoin.TxOut(39_000, ours)]
    )
    psbt = bitcoin.set_witness_utxo(psbt, 0, bitcoin.TxOut(100_000, ours))
    body = _sign_body(
        server,
        path,
        signers,
        "bitcoin",
        psbt.serialize(),
        _metadata(network=claimed),
        input_index=0,
    )
    _assert_refused(
        _every_answer(server, body, signers), signers, "network", repr(claimed), "'regtest'"
    )


@pytest.mark.parametrize(("signer", "path"), [("oracle", "m/1/4/0"), ("rogue", "m/1/4/1")])
def test_a_price_report_signed_by_a_key_the_bundle_does_not_name_is_refused(
    server, vault, signer, path
):
    """0.0001 USD per ETH, signed by a key the admins never named: under the registry's
    signer name, or under its own."""
    signers = (1, 2)
    forged = price_report("hardhat", "ETH", "0.0001", signer=signer, key=ROGUE_KEY)
    body = _sign_body(
        server, path, signers, "ethereum", _four_eth(), _metadata(), price_reports=[forged]
    )
    _assert_refused(
        _every_answer(server, body, signers), signers, "price", "price report 0", signer
    )


def test_a_stale_price_report_is_not_used_and_the_value_rule_fails_closed(server, vault):
    """A report the price key did sign, at 0.0001 USD, but older than the bundle's
    max_price_age: without a fresh price the value limit holds the transfer."""
    signers = (1, 3)
    observed_at = int(time.time()) - MAX_PRICE_AGE - 60
    stale = price_report("hardhat", "ETH", "0.0001", observed_at=observed_at)
    body = _sign_body(
        server, "m/1/5", signers, "ethereum", _four_eth(), _metadata(), price_reports=[stale]
    )
    _assert_refused(
        _every_answer(server, body, signers),
        signers,
        "policy",
        "max_price_age",
        rule="eth-large",
    )


def test_a_fresh_report_of_the_named_price_key_is_what_prices_the_transfer(server, vault):
    """The honest path beside the attacks: the same 4 ETH at a signed 100 USD is
    400 USD, under the limit, and is signed without an approval."""
    signers = (2, 3)
    report = price_report("hardhat", "ETH", "100")
    body = _sign_body(
        server, "m/1/6", signers, "ethereum", _four_eth(), _metadata(), price_reports=[report]
    )
    answers = _every_answer(server, body, signers)
    assert {(a["status"], a.get("rule")) for a in answers.values()} == {("ok", "small")}, answers
    signature = bytes.fromhex(str(answers[2]["signature"]))
    signed = ethereum.assemble(
        FOUR_ETH,
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    sender = Account.recover_transaction(ethereum.encode_signed(signed))
    address = ethereum.address_from_public_key(vault.derive("m/1/6").public_key.to_bytes())
    assert sender == address.checksummed
