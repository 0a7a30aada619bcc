"""The initiators section of a policy bundle: which API key speaks for which initiator."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shardvault.policy import (
    Admin,
    AdminSet,
    InitiatorKeys,
    MalformedBundleError,
    new_bundle,
    parse_bundle,
    parse_initiator_keys,
)
from shardvault.policy.keys import PublicKey
from shardvault.policy.model import InitiatorKind

from ._support import BOOK, ed25519_key, p256_key, p256_public_hex, policy_with

WORKSPACE = "acme"

RULES = """rules:
  - name: allow-all
    action: allow
"""


def _ed(name: str) -> str:
    return bytes(ed25519_key(name).verify_key).hex()


SECTION: dict[str, Any] = {
    "members": [
        {
            "initiator": {"type": "user", "id": "alice@example.com"},
            "keys": [
                {
                    "id": "key-a2",
                    "algorithm": "p256",
                    "public_key": p256_public_hex(p256_key("a2")),
                },
                {"id": "key-a1", "algorithm": "ed25519", "public_key": _ed("a1")},
            ],
        },
        {
            "initiator": {"type": "api_key", "id": "settlement-bot"},
            "keys": [{"id": "key-bot", "algorithm": "ed25519", "public_key": _ed("bot")}],
        },
    ]
}


ADMINS = AdminSet((Admin("ann", PublicKey.parse("ed25519", _ed("ann"), path="ann")),), 1)


def _bundle(initiators: InitiatorKeys | None) -> Any:
    bundle = new_bundle(WORKSPACE, policy_with(RULES), BOOK, ADMINS, initiators=initiators)
    return bundle.with_signature("ann", ed25519_key("ann").sign(bundle.signing_message()).signature)


def test_a_bundle_without_initiators_keeps_its_payload_and_hash() -> None:
    plain = _bundle(None)
    assert b"initiators" not in plain.payload()
    with_section = _bundle(parse_initiator_keys(SECTION))
    assert with_section.hash() != plain.hash()
    again = parse_bundle(plain.to_json())
    assert again.initiators is None
    assert again.hash() == plain.hash()


def test_the_section_round_trips_in_canonical_order() -> None:
    bundle = _bundle(parse_initiator_keys(SECTION))
    parsed = parse_bundle(bundle.to_json())
    assert parsed.initiators == bundle.initiators
    assert parsed.hash() == bundle.hash()
    document = bundle.to_json()["payload"]["initiators"]  # type: ignore[index]
    # Members sorted by type then id, keys by id: the same list in any order signs alike.
    assert [m["initiator"]["type"] for m in document["members"]] == ["api_key", "user"]
    assert [k["id"] for k in document["members"][1]["keys"]] == ["key-a1", "key-a2"]
    shuffled = copy.deepcopy(SECTION)
    shuffled["members"].reverse()
    assert _bundle(parse_initiator_keys(shuffled)).hash() == bundle.hash()


def test_a_key_names_its_initiator() -> None:
    section = parse_initiator_keys(SECTION)
    found = section.for_key("key-a2")
    assert found is not None
    initiator, key = found
    assert (initiator.kind, initiator.id) == (InitiatorKind.USER, "alice@example.com")
    assert key.jose_algorithm == "ES256"
    bot = section.for_key("key-bot")
    assert bot is not None
    assert bot[0].kind is InitiatorKind.API_KEY
    assert bot[1].jose_algorithm == "EdDSA"
    assert section.for_key("key-unknown") is None
    assert section.listing() == [
        f"api_key settlement-bot: API key key-bot ed25519 {_ed('bot')}",
        f"user alice@example.com: API key key-a1 ed25519 {_ed('a1')}",
        f"user alice@example.com: API key key-a2 p256 {p256_public_hex(p256_key('a2'))}",
    ]


def _mutated(change: Any) -> dict[str, Any]:
    section = copy.deepcopy(SECTION)
    change(section)
    return section


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        (lambda s: s.update(extra=1), "unknown field 'extra'"),
        (lambda s: s["members"][0].pop("keys"), "missing field 'keys'"),
        (lambda s: s["members"][0]["initiator"].update(type="robot"), "expected user or api_key"),
        (lambda s: s["members"][0]["initiator"].update(id=""), "non-empty id"),
        (lambda s: s["members"][0]["keys"][1].update(algorithm="rsa"), "unknown key algorithm"),
        (lambda s: s["members"][0]["keys"][1].update(public_key="zz"), "not hex"),
        (lambda s: s["members"][0]["keys"][1].update(public_key="00" * 31), "32 bytes"),
        (lambda s: s["members"][0]["keys"][1].update(id="key a1"), "API key id"),
        (lambda s: s["members"][0].update(keys=[]), "without keys"),
        (lambda s: s["members"].append(copy.deepcopy(s["members"][1])), "listed twice"),
        (
            lambda s: s["members"][1]["keys"][0].update(id="key-a1"),
            "an API key id is listed twice",
        ),
        (
            lambda s: s["members"][1]["keys"][0].update(public_key=_ed("a1")),
            "one public key is listed under two API key ids",
        ),
        (lambda s: s.update(members={}), "expected a list"),
    ],
)
def test_a_malformed_section_is_refused_naming_the_fault(change: Any, fault: str) -> None:
    with pytest.raises(MalformedBundleError, match=fault):
        parse_initiator_keys(_mutated(change))
    # Inside a bundle's transport form, the same fault refuses the bundle.
    transport = _bundle(parse_initiator_keys(SECTION)).to_json()
    transport["payload"]["initiators"] = _mutated(change)  # type: ignore[index]
    with pytest.raises(MalformedBundleError, match=fault):
        parse_bundle(transport)


def test_a_section_names_at_most_4096_keys() -> None:
    keys = [
        {"id": f"k{i}", "algorithm": "ed25519", "public_key": _ed(f"k{i}")} for i in range(4097)
    ]
    section = {"members": [{"initiator": {"type": "user", "id": "many"}, "keys": keys}]}
    with pytest.raises(MalformedBundleError, match="more than 4096 keys"):
        parse_initiator_keys(section)
