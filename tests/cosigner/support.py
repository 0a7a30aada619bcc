"""Shared set-up for the co-signer tests: admins, approvers, a policy, Solana payloads.

Keys are deterministic (Ed25519 seeds are SHA-256 of a label) so failures reproduce.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from shardvault.chains import solana
from shardvault.chains.solana import system
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.fees import check_fee
from shardvault.cosigner.state import init_node, pin_peers, unseal_identity
from shardvault.cosigner.target import SigningTarget
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.policy import (
    ApprovalVerdict,
    BundleChain,
    approval_message,
    new_bundle,
    parse_address_book,
    parse_admin_set,
    parse_initiator_keys,
    parse_policy,
    parse_registry,
)
from tests.cosigner.initiator_support import INITIATORS

WORKSPACE = "ws-test"
VAULT = "treasury"
PASSPHRASE = "correct horse battery staple"
TEST_ONLY_PRIMES = Path(__file__).resolve().parents[1] / "fixtures" / "test_only_paillier.json"
"""The TEST-ONLY published safe primes a test co-signer takes for ECDSA key generation
(``CosignerNode(test_only_primes=...)``, ``cosigner run --unsafe-test-only-primes``)."""
SOLANA_DIGEST_DOMAIN = b"shardvault/solana/message-digest/v1\x00"
"""docs/cosigner.md: a Solana request's policy digest is SHA-256(domain || message)."""


def _key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(label.encode()).digest())


ADMINS = {"admin-1": _key("admin-1"), "admin-2": _key("admin-2")}
CAROL = _key("approver-carol")
PRICE_KEY = _key("test-only price key")
"""A TEST-ONLY price key: the bundles of the price tests name it as ``oracle``."""
PRICE_REPORT_DOMAIN = b"shardvault/price-report/v1\x00"
"""docs/policy.md, "Price reports": a price key signs this prefix and the report."""
ADMIN_SET = {
    "quorum": 2,
    "members": [
        {"id": name, "algorithm": "ed25519", "public_key": bytes(k.verify_key).hex()}
        for name, k in ADMINS.items()
    ],
}

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "approvers": {"carol": {"algorithm": "ed25519", "public_key": bytes(CAROL.verify_key).hex()}},
    "groups": {"treasury": ["carol"]},
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "block-large-sol",
            "when": {"asset": ["SOL"], "amount": {"over": "5"}},
            "action": "block",
        },
        {
            "name": "sol-needs-approval",
            "when": {"asset": ["SOL"], "amount": {"over": "1"}},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        },
        {"name": "small-sol", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}


def needs_treasury(name: str, when: dict[str, object]) -> dict[str, object]:
    """A rule ``name`` that holds requests matching ``when`` for one treasury approval."""
    return {
        "name": name,
        "when": when,
        "action": "require_approvals",
        "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
    }


REGTEST_NETWORK = {
    "name": "regtest",
    "chain": "bitcoin",
    "assets": [{"id": "BTC", "native": True, "decimals": 8}],
}
"""The registry entry of a Bitcoin regtest network (its payloads name no network)."""


def hardhat_network(*assets: dict[str, object]) -> dict[str, object]:
    """The registry entry of the local hardhat chain (31337) with ``assets``."""
    return {"name": "hardhat", "chain": "ethereum", "chain_id": 31337, "assets": list(assets)}


def solana_network(name: str = "solana") -> dict[str, object]:
    """The registry entry of a Solana network ``name`` with its SOL (the one Solana
    network a registry lists is the network of every Solana payload)."""
    return {
        "name": name,
        "chain": "solana",
        "assets": [{"id": "SOL", "native": True, "decimals": 9}],
    }


ETH = {"id": "ETH", "native": True, "decimals": 18}
"""The registry entry of ETH, without a static price."""

HARDHAT_NETWORK = hardhat_network(ETH)
"""The registry entry of the local hardhat chain with its ETH."""


def registry(*networks: dict[str, object], **extra: object) -> dict[str, object]:
    """An asset-registry document of ``networks`` (docs/policy.md, "Asset registry")."""
    return {"format": "shardvault.asset-registry/v1", "networks": list(networks), **extra}


def signed_bundle(
    signers=("admin-1", "admin-2"),
    policy=POLICY,
    predecessor=None,
    initiators=INITIATORS,
    assets=None,
):
    """A bundle of ``policy`` signed by ``signers``, listing the initiator keys
    ``initiators`` (a section document, tests/cosigner/initiator_support.py; alice's and
    bob's by default, ``None`` for none) and carrying the asset registry document
    ``assets`` when given (docs/policy.md, "Asset registry")."""
    bundle = new_bundle(
        WORKSPACE,
        parse_policy(policy),
        parse_address_book({"format": "shardvault.address-book/v1", "entries": []}),
        parse_admin_set(ADMIN_SET),
        predecessor,
        initiators=None if initiators is None else parse_initiator_keys(initiators),
        assets=None if assets is None else parse_registry(assets),
    )
    for name in signers:
        key = ADMINS.get(name) or _key(name)
        bundle = bundle.with_signature(name, key.sign(bundle.signing_message()).signature)
    return bundle


def policy_chain(policy=POLICY, assets=None) -> BundleChain:
    """A co-signer's chain of bundles holding ``policy`` (and the asset registry document
    ``assets``, if given), signed by the admin quorum."""
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    chain.accept(signed_bundle(policy=policy, assets=assets))
    return chain


def fee_refusal(chain: BundleChain, target: SigningTarget) -> RequestRefused:
    """The refusal :func:`check_fee` gives ``target``, which must be check ``fee``."""
    with pytest.raises(RequestRefused) as caught:
        check_fee(chain, target)
    assert caught.value.check == "fee", caught.value
    return caught.value


def make_nodes(root: Path, count: int = 3) -> dict[int, Path]:
    """Initialise ``count`` data directories and pin every identity in every one."""
    dirs = {p: root / f"cosigner-{p}" for p in range(1, count + 1)}
    identities = {}
    for party, directory in dirs.items():
        with SecretBytes(PASSPHRASE.encode()) as passphrase:
            identities[party] = init_node(
                directory, party, WORKSPACE, ADMIN_SET, passphrase, cost=DEVELOPMENT_COST
            )
    for directory in dirs.values():
        pin_peers(directory, identities, unseal(directory))
    return dirs


def unseal(directory: Path):
    """The identity of the node in ``directory`` (which signs its configuration)."""
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        return unseal_identity(directory, passphrase)


def metadata(created_at: int | None = None) -> dict[str, object]:
    return {
        "initiator": {"type": "user", "id": "alice"},
        "source": {"vault": VAULT},
        "created_at": int(time.time()) if created_at is None else created_at,
    }


def dkg_request(parties=(1, 2, 3), scheme="eddsa-ed25519", key_id="sol-1") -> dict[str, object]:
    return {
        "kind": "dkg",
        "request_id": f"dkg-{secrets.token_hex(4)}",
        "session_id": secrets.token_hex(32),
        "scheme": scheme,
        "vault": VAULT,
        "key_id": key_id,
        "parties": list(parties),
        "min_signers": 2,
        "metadata": metadata(),
    }


def solana_transfer(
    source: bytes, destination: bytes, lamports: int, blockhash: bytes = b"recent blockhash"
) -> bytes:
    """A legacy Solana message: one System Program transfer from ``source`` (its recent
    blockhash SHA-256 of ``blockhash``: one per transaction where a test needs several)."""
    ours = solana.Pubkey(source)
    message = solana.compile_legacy_message(
        ours,
        [system.transfer(ours, solana.Pubkey(destination), lamports)],
        hashlib.sha256(blockhash).digest(),
    )
    return solana.serialize_message(message)


def solana_digest(message: bytes) -> bytes:
    return hashlib.sha256(SOLANA_DIGEST_DOMAIN + message).digest()


def approval(
    digest: bytes, approver="carol", key=CAROL, version=1, signed_at: int | None = None
) -> dict[str, object]:
    """``approver``'s approve statement (JSON form) over ``digest``, signed at
    ``signed_at`` (default: now)."""
    when = int(time.time()) if signed_at is None else signed_at
    message = approval_message(approver, digest, ApprovalVerdict.APPROVE, version, when)
    return {
        "approver": approver,
        "digest": digest.hex(),
        "decision": "approve",
        "policy_version": version,
        "signed_at": when,
        "signature": key.sign(message).signature.hex(),
    }


def sign_request(
    message: bytes,
    signers=(1, 2),
    *,
    approvals=(),
    digest: bytes | None = None,
    key_id="sol-1",
    chain="solana",
    **extra,
) -> dict[str, object]:
    body = {
        "kind": "sign",
        "request_id": f"sign-{secrets.token_hex(4)}",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": key_id,
        "signers": list(signers),
        "chain": chain,
        "payload": message.hex(),
        "metadata": metadata(),
        "approvals": list(approvals),
    }
    if digest is not None:
        body["digest"] = digest.hex()
    body.update(extra)
    return body


DESTINATION = hashlib.sha256(b"destination wallet").digest()
OTHER_DESTINATION = hashlib.sha256(b"attacker wallet").digest()
LAMPORTS_PER_SOL = 1_000_000_000


def price_report(
    network: str,
    asset: str,
    price: str,
    *,
    observed_at: int | None = None,
    signer: str = "oracle",
    key: SigningKey = PRICE_KEY,
    currency: str = "USD",
) -> dict[str, object]:
    """A signed price report in transport form, built from its specification (canonical
    JSON of the report, signed with the domain prefix), not from the code under test."""
    report = {
        "format": "shardvault.price-report/v1",
        "asset": {"network": network, "id": asset},
        "price": price,
        "currency": currency,
        "observed_at": int(time.time()) if observed_at is None else observed_at,
    }
    message = PRICE_REPORT_DOMAIN + json.dumps(
        report, sort_keys=True, separators=(",", ":")
    ).encode("ascii")
    return {"report": report, "signer": signer, "signature": key.sign(message).signature.hex()}
