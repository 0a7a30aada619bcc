"""Signed policy bundles: what a co-signer's BundleChain accepts and refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shardvault.policy import (
    Admin,
    AdminSet,
    BadBundleSignatureError,
    BrokenChainError,
    BundleChain,
    Decision,
    DuplicateSignerError,
    EvaluationContext,
    MalformedBundleError,
    PolicyBundle,
    PublicKey,
    QuorumNotMetError,
    ReplayedBundleError,
    UnknownSignerError,
    WrongWorkspaceError,
    evaluate,
    new_bundle,
    parse_bundle,
)
from shardvault.policy.bundle import GENESIS_PREDECESSOR
from shardvault.policy.load import parse_address_book
from shardvault.policy.request import UnixSeconds

from ._support import (
    BOOK,
    HEADER,
    INITIATORS,
    NOW,
    ed25519_key,
    make_request,
    p256_key,
    p256_public_hex,
    p256_sign_raw,
    policy_with,
)

WORKSPACE = "acme"


def ed_admin(name: str) -> Admin:
    return Admin(
        name, PublicKey.parse("ed25519", ed25519_key(name).verify_key.encode().hex(), path=name)
    )


def p256_admin(name: str) -> Admin:
    return Admin(name, PublicKey.parse("p256", p256_public_hex(p256_key(name)), path=name))


ADMINS = AdminSet((ed_admin("ann"), ed_admin("ben"), p256_admin("cat")), quorum=2)
"""Two Ed25519 admins and one P-256 (browser WebCrypto) admin, any two of three."""


def sign(bundle: PolicyBundle, *names: str, as_name: str | None = None) -> PolicyBundle:
    """Add signatures by ``names`` (P-256 for names starting with "c", in raw r||s)."""
    for name in names:
        message = bundle.signing_message()
        if name.startswith("c"):
            signature = p256_sign_raw(p256_key(name), message)
        else:
            signature = ed25519_key(name).sign(message).signature
        bundle = bundle.with_signature(as_name or name, signature)
    return bundle


def policy_v(version: int) -> Any:
    rules = f"""rules:
  - name: allow-v{version}
    action: allow
"""
    return policy_with(
        rules, header=f"format: shardvault.policy/v1\nversion: {version}\nreference_currency: USD\n"
    )


def chain_with(n: int) -> tuple[BundleChain, list[PolicyBundle]]:
    """A chain that accepted versions 1..n, each signed by ann and cat."""
    chain = BundleChain(WORKSPACE, ADMINS)
    bundles: list[PolicyBundle] = []
    for version in range(1, n + 1):
        previous = bundles[-1] if bundles else None
        bundle = sign(
            new_bundle(WORKSPACE, policy_v(version), BOOK, ADMINS, previous), "ann", "cat"
        )
        chain.accept(bundle)
        bundles.append(bundle)
    return chain, bundles


def test_a_quorum_of_mixed_keys_builds_a_chain() -> None:
    chain, bundles = chain_with(3)
    assert chain.head is bundles[-1]
    assert chain.head_hash == bundles[-1].hash()
    assert bundles[0].predecessor == GENESIS_PREDECESSOR
    assert bundles[1].predecessor == bundles[0].hash()
    assert chain.head is not None
    assert chain.head.policy.rules[0].name == "allow-v3"


def test_transport_form_round_trips_and_verifies() -> None:
    chain = BundleChain(WORKSPACE, ADMINS)
    bundle = sign(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS), "ben", "cat")
    parsed = parse_bundle(bundle.to_json())
    assert parsed.hash() == bundle.hash()
    chain.accept(parsed)


def test_tampered_payload_is_refused() -> None:
    bundle = sign(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS), "ann", "ben")
    data = bundle.to_json()
    payload = data["payload"]
    assert isinstance(payload, dict)
    payload["policy"]["rules"][0]["action"] = "block"
    with pytest.raises(BadBundleSignatureError):
        BundleChain(WORKSPACE, ADMINS).accept(parse_bundle(data))


def test_signed_by_a_non_admin() -> None:
    bundle = sign(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS), "ann", "ben", "mallory")
    chain = BundleChain(WORKSPACE, ADMINS)
    with pytest.raises(UnknownSignerError, match="mallory") as info:
        chain.accept(bundle)
    assert info.value.path == "signatures[2]"
    assert chain.head is None


def test_non_admin_key_under_an_admin_name() -> None:
    bundle = sign(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS), "ann")
    bundle = sign(bundle, "mallory", as_name="ben")
    with pytest.raises(BadBundleSignatureError, match="ben"):
        BundleChain(WORKSPACE, ADMINS).accept(bundle)


def test_signed_by_too_few_admins() -> None:
    bundle = sign(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS), "cat")
    with pytest.raises(QuorumNotMetError, match="1 admin signatures, the quorum is 2"):
        BundleChain(WORKSPACE, ADMINS).accept(bundle)
    unsigned = new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS)
    with pytest.raises(QuorumNotMetError):
        BundleChain(WORKSPACE, ADMINS).accept(unsigned)


def test_the_same_admin_twice_is_not_a_quorum() -> None:
    bundle = sign(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS), "ann", "ann")
    with pytest.raises(DuplicateSignerError):
        BundleChain(WORKSPACE, ADMINS).accept(bundle)


def test_replayed_old_bundle() -> None:
    chain, bundles = chain_with(3)
    for old in bundles:
        with pytest.raises(ReplayedBundleError):
            chain.accept(old)
    assert chain.head is bundles[-1]


def test_predecessor_that_does_not_chain() -> None:
    chain, bundles = chain_with(2)
    # Version 3 built on version 1 (a fork), with valid signatures.
    fork = sign(new_bundle(WORKSPACE, policy_v(3), BOOK, ADMINS, bundles[0]), "ann", "ben")
    with pytest.raises(BrokenChainError, match="predecessor"):
        chain.accept(fork)
    # A version that skips ahead, even naming the right predecessor.
    skip = sign(new_bundle(WORKSPACE, policy_v(4), BOOK, ADMINS, bundles[1]), "ann", "ben")
    with pytest.raises(BrokenChainError, match="does not follow"):
        chain.accept(skip)
    # A first bundle must start from the genesis predecessor.
    with pytest.raises(BrokenChainError):
        BundleChain(WORKSPACE, ADMINS).accept(bundles[1])
    assert chain.head is bundles[-1]


def test_bundle_for_another_workspace() -> None:
    bundle = sign(new_bundle("other", policy_v(1), BOOK, ADMINS), "ann", "ben")
    with pytest.raises(WrongWorkspaceError):
        BundleChain(WORKSPACE, ADMINS).accept(bundle)


def test_admin_set_changes_only_under_the_current_set() -> None:
    chain, bundles = chain_with(1)
    new_admins = AdminSet((ed_admin("dan"), ed_admin("eve")), quorum=2)
    # The new admins cannot install themselves.
    hijack = sign(new_bundle(WORKSPACE, policy_v(2), BOOK, new_admins, bundles[0]), "dan", "eve")
    with pytest.raises(UnknownSignerError):
        chain.accept(hijack)
    # The current set hands over.
    handover = sign(new_bundle(WORKSPACE, policy_v(2), BOOK, new_admins, bundles[0]), "ann", "cat")
    chain.accept(handover)
    assert chain.admins == new_admins
    # From now on the old admins are strangers.
    stale = sign(new_bundle(WORKSPACE, policy_v(3), BOOK, new_admins, handover), "ann", "cat")
    with pytest.raises(UnknownSignerError):
        chain.accept(stale)
    chain.accept(sign(new_bundle(WORKSPACE, policy_v(3), BOOK, new_admins, handover), "dan", "eve"))


def test_address_book_changes_need_the_quorum_too() -> None:
    chain, bundles = chain_with(1)
    book = parse_address_book(
        {
            "format": "shardvault.address-book/v1",
            "entries": [{"name": "attacker", "network": "ethereum", "address": "0x" + "66" * 20}],
            "whitelists": {"exchanges": ["attacker"]},
        }
    )
    one = sign(new_bundle(WORKSPACE, policy_v(2), book, ADMINS, bundles[0]), "ann")
    with pytest.raises(QuorumNotMetError):
        chain.accept(one)
    assert chain.head is not None
    assert chain.head.address_book == BOOK
    chain.accept(sign(one, "ben"))
    assert chain.head.address_book == book


def test_a_different_address_book_changes_the_hash() -> None:
    empty = parse_address_book({"format": "shardvault.address-book/v1"})
    a = new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS)
    b = new_bundle(WORKSPACE, policy_v(1), empty, ADMINS)
    assert a.hash() != b.hash()


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(extra=1), "bundle"),
        (lambda d: d["payload"].update(format="v0"), "bundle.payload.format"),
        (lambda d: d["payload"].update(version=9), "bundle.payload.version"),
        (lambda d: d["payload"].update(predecessor="00"), "bundle.payload.predecessor"),
        (lambda d: d["payload"].update(predecessor="zz"), "bundle.payload.predecessor"),
        (lambda d: d["payload"]["admins"].update(quorum=5), "admins.quorum"),
        (
            lambda d: d["payload"]["admins"]["members"].append(
                d["payload"]["admins"]["members"][0]
            ),
            "admins.members",
        ),
        (lambda d: d["payload"]["policy"].update(colour="red"), "bundle.payload.policy"),
        (lambda d: d["signatures"].append({"signer": "ann"}), "bundle.signatures[0]"),
        (lambda d: d.update(signatures={}), "bundle.signatures"),
    ],
)
def test_malformed_transport_forms(mutate: Any, where: str) -> None:
    data = copy.deepcopy(new_bundle(WORKSPACE, policy_v(1), BOOK, ADMINS).to_json())
    mutate(data)
    with pytest.raises(MalformedBundleError) as info:
        parse_bundle(data)
    assert info.value.path == where


def test_a_cosigner_decides_with_the_chain_head() -> None:
    """What a co-signer does: verify the bundle chain, then evaluate with the head's
    policy and address book. Whitelisting an address is a quorum-signed bundle; before
    it the transfer needs approvals, after it the transfer is allowed."""
    rules = """rules:
  - name: to-exchanges
    when: {destination: {whitelists: [exchanges]}}
    action: allow
  - name: else
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
"""

    def policy(version: int) -> Any:
        return policy_with(rules, header=HEADER.replace("version: 7", f"version: {version}"))

    empty = parse_address_book({"format": "shardvault.address-book/v1"})
    chain = BundleChain(WORKSPACE, ADMINS)
    # The approvals rule depends on the initiator: the bundle lists the initiator keys.
    first = new_bundle(WORKSPACE, policy(1), empty, ADMINS, initiators=INITIATORS)
    chain.accept(sign(first, "ann", "ben"))
    request = make_request(destination="0x" + "22" * 20)

    def decide() -> Decision:
        head = chain.head
        assert head is not None
        context = EvaluationContext(now=UnixSeconds(NOW), address_book=head.address_book)
        return evaluate(head.policy, request, context).decision

    assert decide() is Decision.REQUIRE_APPROVALS
    assert chain.head is not None
    second = new_bundle(WORKSPACE, policy(2), BOOK, ADMINS, chain.head, initiators=INITIATORS)
    chain.accept(sign(second, "ben", "cat"))
    assert decide() is Decision.ALLOW
