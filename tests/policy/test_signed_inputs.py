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
    UnsignedInputError,
    evaluate,
    new_bundle,
)
from shardvault.policy.keys import PublicKey
from shardvault.policy.signed_inputs import initiator_decides, is_derivation_path

from ._support import (
    BOOK,
    INITIATORS,
    WEI,
    approver_block,
    ed25519_key,
    make_context,
    make_request,
    policy_with,
)

WORKSPACE = "acme"
ADMIN = ed25519_key("admin")
ADMINS = AdminSet(
    (Admin("admin", PublicKey.parse("ed25519", bytes(ADMIN.verify_key).hex(), path="admin")),), 1
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
    "its approvals": """rules:
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


@pytest.mark.parametrize("dependency", sorted(INITIATOR_RULES))
def test_a_rule_on_the_initiator_needs_the_initiator_keys(dependency: str) -> None:
    rules = INITIATOR_RULES[dependency]
    with pytest.raises(BundleError, match=f"depends on the initiator \\({dependency}"):
        _load(rules)
    assert _load(rules, INITIATORS).head is not None


def test_a_rule_on_source_tags_is_refused() -> None:
    rules = """rules:
  - name: cold
    when: {source: {tags: [cold]}}
    action: block
"""
    with pytest.raises(BundleError, match="rule 'cold' conditions on source tags"):
        _load(rules, INITIATORS)


def test_a_wallet_that_is_not_a_derivation_path_is_refused() -> None:
    rules = """rules:
  - name: hot
    when: {source: {wallets: [m/44/60/0/0/1, ops-eth]}}
    action: allow
"""
    with pytest.raises(BundleError, match="names source wallet 'ops-eth'"):
        _load(rules, INITIATORS)


def test_a_stored_bundle_of_an_earlier_release_still_loads() -> None:
    """A holder rebuilding its chain at start re-verifies stored bundles but does not
    refuse one accepted before the rule existed: it could then never take the bundle
    that replaces it. (Co-signers refuse what such a bundle decides on the initiator
    when they evaluate, tests/cosigner/test_initiator_checks.py.)"""
    bundle = new_bundle(
        WORKSPACE, policy_with(INITIATOR_RULES["its approvals"], header=HEADER), BOOK, ADMINS
    )
    bundle = bundle.with_signature("admin", ADMIN.sign(bundle.signing_message()).signature)
    chain = BundleChain(WORKSPACE, ADMINS)
    chain.accept_all([bundle], stored=True)
    assert chain.head == bundle
    with pytest.raises(UnsignedInputError):
        BundleChain(WORKSPACE, ADMINS).accept(bundle)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("m", True),
        ("m/44/60/0/0/7", True),
        ("m/2147483647", True),
        ("m/2147483648", False),
        ("m/44'/60", False),
        ("m/01", False),
        ("44/60", False),
        ("m/", False),
        ("ops-eth", False),
    ],
)
def test_derivation_paths(text: str, valid: bool) -> None:
    assert is_derivation_path(text) is valid


def test_only_the_rules_tried_up_to_the_deciding_one_can_make_the_initiator_decide() -> None:
    policy = policy_with(
        """rules:
  - name: keygen-by-alice
    when: {operation: [key_generation], initiator: {users: [alice]}}
    action: allow
  - name: small
    when: {asset: [ETH], amount: {up_to: "1"}}
    action: allow
  - name: big
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
  - name: alice-raw
    when: {operation: [raw_digest_signing], initiator: {users: [alice]}}
    action: allow
""",
        header=HEADER,
    )
    context = make_context()

    def decides(**request: Any) -> tuple[str, str] | None:
        return initiator_decides(policy, evaluate(policy, make_request(**request), context))

    # A transfer decided by "small": the key-generation rule missed on its operation.
    assert decides() is None
    # Decided by "big": its approvals depend on who initiated.
    assert decides(amount=str(2 * WEI)) == (
        "big",
        "its approvals: nobody approves their own request",
    )
    # A key generation the first rule allowed because alice asked.
    keygen = {"operation": "key_generation", "network": None, "destination": None}
    assert decides(**keygen, asset=None, amount=None) == (
        "keygen-by-alice",
        "an initiator condition",
    )
    # A raw digest under default deny: every rule was tried, "alice-raw" matched nothing
    # only because of who asked.
    raw = {"operation": "raw_digest_signing", "initiator": {"type": "user", "id": "bob"}}
    assert decides(**raw, network=None, destination=None, asset=None, amount=None) == (
        "alice-raw",
        "an initiator condition",
    )
