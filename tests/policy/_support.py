"""Builders shared by the policy tests: deterministic keys, requests, policies."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import nacl.signing
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from shardvault.policy import (
    ApprovalVerdict,
    EvaluationContext,
    History,
    SignedApproval,
    TransactionRequest,
    approval_message,
    load_policy,
    parse_address_book,
    parse_history,
    parse_initiator_keys,
    parse_request,
)
from shardvault.policy.model import Policy
from shardvault.policy.request import UnixSeconds

NOW = 1_764_064_800
"""2025-11-25T10:00:00Z, a Tuesday: the default evaluation time of the tests."""

ETH = {"id": "ETH", "decimals": 18}
USDC = {"id": "USDC", "decimals": 6}
WEI = 10**18


def ed25519_key(name: str) -> nacl.signing.SigningKey:
    """A deterministic Ed25519 key for a test identity (seed = SHA-256 of the name)."""
    return nacl.signing.SigningKey(hashlib.sha256(b"ed25519:" + name.encode()).digest())


def p256_key(name: str) -> ec.EllipticCurvePrivateKey:
    """A deterministic P-256 key for a test identity."""
    scalar = int.from_bytes(hashlib.sha256(b"p256:" + name.encode()).digest(), "big")
    return ec.derive_private_key(scalar % (2**255), ec.SECP256R1())


def p256_public_hex(key: ec.EllipticCurvePrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def p256_sign_raw(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """An ECDSA P-256/SHA-256 signature in WebCrypto's raw r||s form."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def approver_block(*names: str) -> str:
    """YAML ``approvers:`` entries with Ed25519 keys for ``names``."""
    lines = ["approvers:"]
    for name in names:
        public = ed25519_key(name).verify_key.encode().hex()
        lines.append(f"  {name}: {{algorithm: ed25519, public_key: {public}}}")
    return "\n".join(lines)


HEADER = f"""\
format: shardvault.policy/v1
version: 7
reference_currency: USD
{approver_block("alice", "bob", "carol", "dave", "erin")}
groups:
  traders: [alice, bob, ci-bot]
  treasury: [carol, dave, erin]
  compliance: [erin]
"""
"""Policy header shared by the tests: approvers with keys, three groups."""


def policy_with(rules_yaml: str, header: str = HEADER) -> Policy:
    """A policy made of the shared header and the given ``rules:`` block."""
    return load_policy(header + rules_yaml)


def request_data(**overrides: Any) -> dict[str, Any]:
    """The JSON form of a default transfer, with fields overridden (None removes)."""
    data: dict[str, Any] = {
        "digest": "ab" * 32,
        "operation": "transfer",
        "created_at": NOW,
        "initiator": {"type": "user", "id": "alice"},
        "source": {"vault": "ops", "wallet": "ops-eth", "tags": ["hot"]},
        "network": "ethereum",
        "destination": "0x" + "11" * 20,
        "asset": dict(ETH),
        "amount": str(WEI),
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def make_request(**overrides: Any) -> TransactionRequest:
    return parse_request(request_data(**overrides))


BOOK = parse_address_book(
    {
        "format": "shardvault.address-book/v1",
        "entries": [
            {"name": "kraken", "network": "ethereum", "address": "0x" + "22" * 20},
            {"name": "payroll-1", "network": "ethereum", "address": "0x" + "33" * 20},
            {"name": "uniswap", "network": "ethereum", "address": "0x" + "44" * 20},
        ],
        "whitelists": {"exchanges": ["kraken"], "payroll": ["payroll-1"]},
    }
)
"""An address book with an exchange, a payroll address and a DEX router."""

PRICES = {"ETH": Decimal("3000"), "USDC": Decimal("1")}


def make_context(
    now: int = NOW,
    history: list[dict[str, Any]] | None = None,
    prices: dict[str, Decimal] | None = None,
) -> EvaluationContext:
    return EvaluationContext(
        now=UnixSeconds(now),
        prices=PRICES if prices is None else prices,
        address_book=BOOK,
        history=History(parse_history(history or [])),
    )


def sign_approval(
    name: str,
    digest: bytes,
    *,
    verdict: ApprovalVerdict = ApprovalVerdict.APPROVE,
    version: int = 7,
    signer: str | None = None,
    signed_at: int = NOW,
) -> SignedApproval:
    """An approval by ``name`` signed with ``signer``'s key (default: ``name``'s) at
    ``signed_at`` (default: NOW, the tests' evaluation time)."""
    key = ed25519_key(signer or name)
    message = approval_message(name, digest, verdict, version, signed_at)
    return SignedApproval(
        name, digest, verdict, version, UnixSeconds(signed_at), key.sign(message).signature
    )


APPROVAL_V1_DOMAIN = b"shardvault/policy/approval/v1\x00"
APPROVAL_V2_DOMAIN = b"shardvault/policy/approval/v2\x00"


def statement_message(
    approver: str,
    digest: bytes,
    *,
    signed_at: int | None,
    version: int = 7,
    decision: str = "approve",
) -> tuple[dict[str, Any], bytes]:
    """The fields of an approval statement and the bytes its approver signs, built here
    from docs/policy.md ("Approvals"), not by the code under test: format v2 (with
    ``signed_at``) or, when ``signed_at`` is None, format v1 (no signing time)."""
    body: dict[str, Any] = {
        "approver": approver,
        "decision": decision,
        "digest": digest.hex(),
        "policy_version": version,
    }
    domain = APPROVAL_V1_DOMAIN
    if signed_at is not None:
        body["signed_at"] = signed_at
        domain = APPROVAL_V2_DOMAIN
    return body, domain + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def statement_json(
    key: nacl.signing.SigningKey,
    approver: str,
    digest: bytes,
    *,
    signed_at: int | None,
    version: int = 7,
    decision: str = "approve",
) -> dict[str, Any]:
    """The JSON form of :func:`statement_message`'s statement, signed with ``key``."""
    body, message = statement_message(
        approver, digest, signed_at=signed_at, version=version, decision=decision
    )
    return {**body, "signature": key.sign(message).signature.hex()}


INITIATORS = parse_initiator_keys(
    {
        "members": [
            {
                "initiator": {"type": "user", "id": "alice"},
                "keys": [
                    {
                        "id": "key-alice",
                        "algorithm": "ed25519",
                        "public_key": ed25519_key("alice-api").verify_key.encode().hex(),
                    }
                ],
            }
        ]
    }
)
"""An initiators section listing one TEST-ONLY API key of alice, for bundles whose
rules depend on the initiator."""


USDC_CONTRACT = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
"""USDC's contract on Ethereum (EIP-55), for asset-registry documents."""


def ethereum_network(*assets: dict[str, object]) -> dict[str, object]:
    """An asset-registry entry of Ethereum mainnet with ``assets``."""
    return {"name": "ethereum", "chain": "ethereum", "chain_id": 1, "assets": list(assets)}
