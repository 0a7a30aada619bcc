"""A bundle whose rules decide on something no trusted key signs is refused when it
loads (DESIGN.md invariant 12; docs/policy.md "Signed inputs")."""

from __future__ import annotations

from typing import Any

import pytest

from shardvault.policy import (
    Admin,
    AdminSet,
    BundleChain,
    BundleError,
    new_bundle,
    parse_initiator_keys,
)
from shardvault.policy.keys import PublicKey

from ._support import BOOK, approver_block, ed25519_key, policy_with

WORKSPACE = "acme"
ADMIN = ed25519_key("admin")
ADMINS = AdminSet(
    (Admin("admin", PublicKey.parse("ed25519", bytes(ADMIN.verify_key).hex(), path="admin")),), 1
)
INITIATORS = parse_initiator_keys(
    {
        "members": [
            {
                "initiator": {"type": "user", "id": "alice"},
                "keys": [
                    {
                        "id": "key-alice",
                        "algorithm": "ed25519",
                        "public_key": bytes(ed25519_key("alice-api").verify_key).hex(),
                    }
                ],
            }
        ]
    }
)

HEADER = f"""\
format: shardvault.policy/v1
version: 1
reference_currency: USD
{approver_block("carol")}
groups:
  treasury: [carol]
"""

INITIATOR_RULES = {
    "an initiator condition": """rules:
  - name: traders
    when: {initiator: {users: [alice]}}
    action: allow
""",
    "a velocity limit per initiator": """rules:
  - name: daily
    when:
      velocity: [{window: 24h, per: initiator, measure: count, over: 10}]
    action: block
""",
    "approvals": """rules:
  - name: everything
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
""",
}


def _load(rules: str, initiators: Any = None) -> BundleChain:
    """Sign a bundle of ``rules`` and give it to a fresh chain."""
    bundle = new_bundle(
        WORKSPACE, policy_with(rules, header=HEADER), BOOK, ADMINS, initiators=initiators
    )
    bundle = bundle.with_signature("admin", ADMIN.sign(bundle.signing_message()).signature)
    chain = BundleChain(WORKSPACE, ADMINS)
    chain.accept(bundle)
    return chain


@pytest.mark.xfail(strict=True, reason="bundles load whatever their rules decide on")
@pytest.mark.parametrize("dependency", sorted(INITIATOR_RULES))
def test_a_rule_on_the_initiator_needs_the_initiator_keys(dependency: str) -> None:
    rules = INITIATOR_RULES[dependency]
    with pytest.raises(BundleError, match=f"depends on the initiator \\({dependency}"):
        _load(rules)
    assert _load(rules, INITIATORS).head is not None


@pytest.mark.xfail(strict=True, reason="bundles load whatever their rules decide on")
def test_a_rule_on_source_tags_is_refused() -> None:
    rules = """rules:
  - name: cold
    when: {source: {tags: [cold]}}
    action: block
"""
    with pytest.raises(BundleError, match="rule 'cold' conditions on source tags"):
        _load(rules, INITIATORS)


@pytest.mark.xfail(strict=True, reason="bundles load whatever their rules decide on")
def test_a_wallet_that_is_not_a_derivation_path_is_refused() -> None:
    rules = """rules:
  - name: hot
    when: {source: {wallets: [m/44/60/0/0/1, ops-eth]}}
    action: allow
"""
    with pytest.raises(BundleError, match="names source wallet 'ops-eth'"):
        _load(rules, INITIATORS)
