"""Every refusal of a forwarded initiator request, and of an unsigned source, at the
level of :func:`signing_target` (docs/cosigner.md "The initiator's signed request").

A compromised coordinator controls everything in a sign request but the initiator's
signature: each test changes one thing in an honest request and expects the refusal
with its check and a reason naming the fault.
"""

from __future__ import annotations

import base64
import hashlib
import time

import jwt
import pytest

from shardvault.chains import solana
from shardvault.cosigner.checks import signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.initiator import refuse_unsigned_initiator, request_digest
from shardvault.policy import EvaluationContext, evaluate, parse_initiator_keys, parse_policy
from tests.cosigner.initiator_support import (
    ALICE,
    BOB,
    INITIATORS,
    create_body,
    forward,
    signed_request,
)
from tests.cosigner.support import WORKSPACE, sign_request, solana_transfer

KEY = hashlib.sha256(b"vault key").digest()
DEST_KEY = hashlib.sha256(b"destination").digest()
DEST = str(solana.Pubkey(DEST_KEY))
LAMPORTS = 500_000_000
SECTION = parse_initiator_keys(INITIATORS)


def _message(lamports: int = LAMPORTS, destination: bytes = DEST_KEY) -> bytes:
    return solana_transfer(KEY, destination, lamports)


def _body(request, message=None, *, created_at=None, **meta):
    body = sign_request(message or _message())
    body["metadata"].update({"workspace_id": WORKSPACE, "transaction_id": "tx-1"})
    forward(body, request, created_at=created_at)
    body["metadata"].update(meta)
    return body


def _target(body, **kwargs):
    return signing_target(body, KEY, initiators=SECTION, **kwargs)


def _refused(check: str, body, *fault: str, **kwargs) -> None:
    with pytest.raises(RequestRefused) as info:
        _target(body, **kwargs)
    assert info.value.check == check, info.value
    for word in fault:
        assert word in info.value.reason, info.value.reason


def _token(claims: dict, *, algorithm: str = "EdDSA", key: object = None) -> str:
    return jwt.encode(claims, ALICE.private_key if key is None else key, algorithm=algorithm)


def _claims(body: bytes, **changes) -> dict:
    now = int(time.time())
    claims = {
        "method": "POST",
        "uri": "/v1/transactions",
        "nonce": "n-1",
        "iat": now,
        "exp": now + 25,
        "sub": ALICE.api_key_id,
        "bodyHash": hashlib.sha256(body).hexdigest(),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _raw(token: str, body: bytes) -> dict:
    return {"token": token, "body": base64.b64encode(body).decode()}


def test_an_honest_request_gives_the_signed_initiator_and_time():
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    target = _target(_body(request))
    assert (target.request.initiator.kind.value, target.request.initiator.id) == ("user", "alice")
    assert target.initiator_request == request_digest(request["token"]).hex()
    assert target.request.source.wallet == "m"


def test_without_initiator_keys_a_forwarded_request_is_not_used():
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    target = signing_target(_body(request), KEY, initiators=None)
    assert target.initiator_request is None


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        ("token", "must be {token, body}"),
        ({"token": "x"}, "must be {token, body}"),
        ({"token": "x" * 8193, "body": ""}, "at most 8192"),
        ({"token": "x", "body": "***"}, "not base64"),
        ({"token": "x", "body": "A" * 30_000}, "at most 16384 bytes"),
    ],
)
def test_a_forwarded_request_that_is_not_token_and_body_is_malformed(raw, fault):
    body = _body(signed_request(ALICE, create_body(DEST, "0.5")))
    body["initiator_request"] = raw
    _refused("malformed", body, fault)


def test_a_token_that_is_not_a_jwt_is_refused():
    body = _body(_raw("not.a.jwt", create_body(DEST, "0.5")), created_at=int(time.time()))
    _refused("initiator", body, "not a JWT")


@pytest.mark.parametrize(
    ("algorithm", "key"),
    [("HS256", "a shared secret the server knows"), ("none", None)],
    ids=["hmac", "none"],
)
def test_a_token_under_another_algorithm_is_refused(algorithm, key):
    create = create_body(DEST, "0.5")
    token = jwt.encode(_claims(create), key, algorithm=algorithm)
    _refused("initiator", _body(_raw(token, create)), "signs with EdDSA", repr(algorithm))


def test_a_token_signed_by_another_key_under_alices_id_is_refused():
    create = create_body(DEST, "0.5")
    token = _token(_claims(create), key=BOB.private_key)
    _refused("initiator", _body(_raw(token, create)), "does not verify", "key-alice")


@pytest.mark.parametrize("claim", ["method", "uri", "iat", "bodyHash"])
def test_a_token_without_a_required_claim_is_refused(claim):
    create = create_body(DEST, "0.5")
    token = _token(_claims(create, **{claim: None}))
    body = _body(_raw(token, create), created_at=int(time.time()))
    _refused("initiator", body, f"lacks the {claim!r} claim")


@pytest.mark.parametrize(
    ("changes", "fault"),
    [
        ({"method": "GET"}, "'GET'"),
        ({"uri": "/v1/transactions?x=1"}, "'/v1/transactions?x=1'"),
        ({"uri": "/v1/vaults"}, "'/v1/vaults'"),
        ({"iat": "yesterday"}, "iat"),
    ],
)
def test_a_token_for_another_request_is_refused(changes, fault):
    create = create_body(DEST, "0.5")
    token = _token(_claims(create, **changes))
    _refused("initiator", _body(_raw(token, create), created_at=int(time.time())), fault)


def test_a_body_that_is_not_the_signed_one_is_refused():
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    request["body"] = base64.b64encode(create_body(DEST, "5")).decode()
    _refused("initiator", _body(request), "not the body the token signs")


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        (b"[1]", "not a JSON object"),
        (b"\xff", "not JSON"),
        (
            b'{"wallet_id":"w","destination":"d","amount":"1","amount":"2"}',
            "duplicate key 'amount'",
        ),
        (b'{"wallet_id":"w","destination":"d","amount":NaN}', "NaN is not a number"),
        (b'{"wallet_id":"w","destination":"d"}', "missing ['amount']"),
        (b'{"wallet_id":"w","destination":"d","amount":"1","asset":"ETH"}', "unknown ['asset']"),
        (b'{"wallet_id":"w","destination":"d","amount":1}', "amount is not a string"),
        (b'{"wallet_id":"w","destination":"d","amount":"1","note":5}', "note"),
        (b'{"wallet_id":"w","destination":"d","amount":"1","source_index":true}', "source_index"),
    ],
)
def test_a_signed_body_that_is_not_a_create_transaction_body_is_refused(text, fault):
    _refused("initiator", _body(signed_request(ALICE, text)), fault)


@pytest.mark.parametrize(
    ("create", "fault"),
    [
        (create_body(str(solana.Pubkey(KEY)), "0.5"), "destination"),
        (create_body(DEST, "0.50000001"), "amount"),
        (create_body(DEST, "0.0000000001"), "is not an amount of SOL"),
        (create_body(DEST, "-1"), "is not an amount of SOL"),
        (create_body(DEST, "0.5", source_index=3), "source_index 3"),
    ],
    ids=["destination", "amount", "decimals", "sign", "source-index"],
)
def test_a_body_that_asks_for_another_transfer_is_refused(create, fault):
    _refused("initiator", _body(signed_request(ALICE, create)), fault)


def test_a_signed_request_does_not_authorise_a_raw_digest():
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    body = sign_request(bytes(32), chain="raw")
    forward(body, request)
    with pytest.raises(RequestRefused) as info:
        signing_target(body, None, initiators=SECTION)
    assert info.value.check == "initiator"
    assert "raw_digest_signing" in info.value.reason


def test_a_claimed_time_that_is_not_the_tokens_is_refused():
    request = signed_request(ALICE, create_body(DEST, "0.5"), issued_at=1_800_000_000)
    _refused("initiator", _body(request, created_at=1_800_000_001), "iat 1800000000")


def test_a_claimed_initiator_of_another_kind_is_refused():
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    body = _body(request, initiator={"type": "api_key", "id": "alice"})
    _refused("initiator", body, "api_key 'alice'", "user 'alice'")


def test_evm_and_bech32_destinations_compare_without_letter_case():
    from shardvault.cosigner.initiator import _same_address

    evm = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert _same_address(evm.lower(), evm, "hardhat")
    assert _same_address(
        "BCRT1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KYGT080",
        "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
        "regtest",
    )
    assert not _same_address(DEST.lower(), DEST, "solana")


# --- The source: the derivation path the co-signer signs along ----------------------


def test_a_claimed_wallet_must_be_the_path():
    body = sign_request(_message())
    body["metadata"]["source"] = {"vault": "treasury", "wallet": "m/44/501/0/0/0"}
    _refused("source", body, "'m/44/501/0/0/0'", "'m'")
    body["metadata"]["source"]["wallet"] = "m"
    assert _target(body).request.source.wallet == "m"


def test_claimed_source_tags_are_refused():
    body = sign_request(_message())
    body["metadata"]["source"] = {"vault": "treasury", "tags": ["hot"]}
    _refused("source", body, "nothing signs source tags")


def test_a_path_that_is_not_a_derivation_path_is_refused():
    body = sign_request(_message())
    _refused("malformed", body, "derivation path", path="m/44'/0")


# --- Unsigned initiators after the evaluation ---------------------------------------

POLICY = parse_policy(
    {
        "format": "shardvault.policy/v1",
        "version": 1,
        "reference_currency": "USD",
        "approvers": {
            "carol": {
                "algorithm": "ed25519",
                "public_key": hashlib.sha256(b"unused").hexdigest(),
            }
        },
        "groups": {"treasury": ["carol"]},
        "rules": [
            {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
            {
                "name": "bob-big",
                "when": {
                    "initiator": {"users": ["bob"]},
                    "amount": {"over": "100"},
                    "asset": ["SOL"],
                },
                "action": "allow",
            },
            {
                "name": "small",
                "when": {"amount": {"up_to": "1"}, "asset": ["SOL"]},
                "action": "allow",
            },
            {
                "name": "per-initiator",
                "when": {
                    "operation": ["transfer"],
                    "velocity": [
                        {"window": "1h", "per": "initiator", "measure": "count", "over": 5}
                    ],
                },
                "action": "block",
            },
            {
                "name": "approvals",
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
            },
        ],
    }
)


def _evaluation(lamports: int, initiator: str = "alice"):
    body = sign_request(_message(lamports))
    body["metadata"]["initiator"] = {"type": "user", "id": initiator}
    request = _target(body).request
    now = request.created_at
    return evaluate(POLICY, request, EvaluationContext(now=now))


def test_an_unsigned_initiator_passes_only_rules_that_do_not_read_it():
    # "small" decides; "bob-big" before it missed on its amount whoever asked.
    small = _evaluation(LAMPORTS, initiator="bob")
    assert small.rule == "small"
    refuse_unsigned_initiator(POLICY, small, signed=False)
    # Claimed as alice, "bob-big" missed on its initiator: bob might have matched it.
    with pytest.raises(RequestRefused) as info:
        refuse_unsigned_initiator(POLICY, _evaluation(LAMPORTS), signed=False)
    assert (info.value.check, info.value.rule) == ("initiator", "bob-big")
    # A larger amount reaches the velocity rule (read per initiator) and the approvals.
    large = _evaluation(5 * 10**9, initiator="bob")
    assert large.rule == "approvals"
    with pytest.raises(RequestRefused) as info:
        refuse_unsigned_initiator(POLICY, large, signed=False)
    assert (info.value.check, info.value.rule) == ("initiator", "per-initiator")
    assert "velocity limit per initiator" in info.value.reason
    refuse_unsigned_initiator(POLICY, large, signed=True)
