"""What a client counts as an attestation of an address (docs/cosigner.md, "Attested
addresses"): only a statement signed by a co-signer it pinned, about the address, vault
and path it was shown, whose address follows from the attested key. Everything else is
named with its reason and not counted; fewer than ``min_signers`` counted is UNVERIFIED.

Addresses are checked against independent encoders: eth-keys (EIP-55), python-bitcointx
(P2WPKH, P2TR) and solders (Solana). Keys are TEST-ONLY, made from labels.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import coincurve
import pytest
from bitcointx import ChainParams
from bitcointx.core.key import CPubKey, XOnlyPubKey
from bitcointx.wallet import P2TRCoinAddress, P2WPKHCoinAddress
from eth_keys import keys as eth_keys
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey
from solders.pubkey import Pubkey as SoldersPubkey

from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.group import SECP256K1
from shardvault.policy import CosignerDirectory
from shardvault.policy.address_attestation import (
    ATTESTATION_DOMAIN,
    AttestationMismatchError,
    DerivationError,
    ExpectedAddress,
    PinnedCosigners,
    canonical_path,
    derive_public_key,
    parse_attestation,
    parse_encoding,
    sign_statement,
    tally_attestations,
)
from tests.address_stub import (
    CHAIN_CODE,
    COSIGNERS,
    FINGERPRINTS,
    PATH,
    ROOT,
    SERVER_OWN,
    VAULT,
    WORKSPACE,
    label,
)
from tests.address_stub import attestations as _attestations
from tests.address_stub import statement as _statement

PINNED = PinnedCosigners.of(FINGERPRINTS)
ECDSA_ROOT = ROOT
ED25519_ROOT = bytes(SigningKey(label("ed25519 root")).verify_key)
BIP340_ROOT = coincurve.PrivateKey(label("bip340 root")).public_key.format()[1:]


def _expected(**changes: Any) -> ExpectedAddress:
    address = _statement().address
    fields: dict[str, Any] = {"address": address, "vault": VAULT, "path": PATH}
    fields.update(changes)
    return ExpectedAddress(**fields)


def test_the_address_is_the_vault_keys_as_independent_encoders_derive_it() -> None:
    child = ExtendedPublicKey(SECP256K1.decode_point(ECDSA_ROOT), CHAIN_CODE).derive(PATH)
    key = child.public_key.to_bytes()
    statement = _statement()
    assert statement.public_key == key
    assert statement.address == eth_keys.PublicKey.from_compressed_bytes(key).to_checksum_address()
    with ChainParams("bitcoin/regtest"):
        segwit = _statement(encoding=parse_encoding("bitcoin-p2wpkh:regtest"))
        assert segwit.address == str(P2WPKHCoinAddress.from_pubkey(CPubKey(key)))
        taproot = _statement(
            scheme="schnorr-bip340",
            root_public_key=BIP340_ROOT,
            path="m",
            encoding=parse_encoding("bitcoin-p2tr:regtest"),
        )
        assert taproot.address == str(P2TRCoinAddress.from_pubkey(XOnlyPubKey(BIP340_ROOT)))
    solana = _statement(
        scheme="eddsa-ed25519",
        root_public_key=ED25519_ROOT,
        path="m",
        encoding=parse_encoding("solana"),
    )
    assert solana.address == str(SoldersPubkey(ED25519_ROOT))


def test_the_signature_covers_the_domain_and_the_canonical_statement() -> None:
    attestation = _attestations((1,))[0]
    message = ATTESTATION_DOMAIN + json.dumps(
        attestation["statement"], sort_keys=True, separators=(",", ":")
    ).encode("ascii")
    VerifyKey(COSIGNERS[1].public.signing_key).verify(
        message, bytes.fromhex(attestation["signature"])
    )
    assert attestation["fingerprint"] == COSIGNERS[1].public.fingerprint()


def test_min_signers_pinned_cosigners_verify_the_address() -> None:
    tally = tally_attestations(_attestations((1, 3)), _expected(), PINNED)
    assert tally.verified
    assert tally.parties == (1, 3)
    assert tally.summary() == "verified (2 of 3 co-signers)"
    assert tally.public_key == _statement().public_key
    assert tally.refused == ()


def test_fewer_than_min_signers_is_unverified() -> None:
    for attestations in ([], _attestations((2,))):
        tally = tally_attestations(attestations, _expected(), PINNED)
        assert not tally.verified
        assert tally.summary().startswith("UNVERIFIED")
    # A statement's own min_signers raises what is needed, never lowers it.
    three = tally_attestations(_attestations((1, 2), min_signers=3), _expected(), PINNED)
    assert (three.required, three.verified) == (3, False)
    one = tally_attestations(_attestations((1,), min_signers=1), _expected(), PINNED)
    assert (one.required, one.verified) == (2, False)
    floor = tally_attestations(_attestations((1, 2)), _expected(), PINNED, min_signers=3)
    assert not floor.verified


def test_the_servers_own_address_has_no_attestation_that_counts() -> None:
    """The server substitutes its own address: the co-signers' attestations name the
    vault's address, not the one shown, and the server's own signatures are by keys
    nobody pinned."""
    own = coincurve.PrivateKey(label("server's own key")).public_key.format()
    theirs = eth_keys.PublicKey.from_compressed_bytes(own).to_checksum_address()
    forged = _attestations((1, 2, 3, 4), SERVER_OWN, root_public_key=own, path="m")
    honest = _attestations((1, 2, 3))
    tally = tally_attestations(forged + honest, _expected(address=theirs, path="m"), PINNED)
    assert not tally.verified
    assert tally.parties == ()
    reasons = "\n".join(tally.refused)
    assert "party 4 is not a pinned co-signer" in reasons
    assert reasons.count("not the pinned one") == 3
    assert reasons.count(f"attests address {_statement().address!r}, not {theirs!r}") == 3


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"vault": "vault-2"}, "attests vault 'vault-2', not 'vault-1'"),
        ({"path": "m/44/60/1/0/8"}, "attests path 'm/44/60/1/0/8'"),
        ({"workspace": "ws-other"}, "attests workspace 'ws-other', not 'ws-acme'"),
    ],
)
def test_an_attestation_for_another_vault_path_or_workspace_does_not_count(
    changes: dict[str, str], reason: str
) -> None:
    expected = _expected(workspace=WORKSPACE)
    if "path" in changes:
        # The same address cannot come from another path: show the one attested.
        other = _statement(path=changes["path"])
        attestations = [
            sign_statement(COSIGNERS[p], _statement(p, **changes)).to_json() for p in (1, 2)
        ]
        expected = _expected(address=other.address, workspace=WORKSPACE)
    else:
        attestations = _attestations((1, 2), **changes)
    tally = tally_attestations(attestations, expected, PINNED)
    assert not tally.verified
    assert tally.refused
    assert all("AttestationMismatchError" in r for r in tally.refused)
    assert all(reason in r for r in tally.refused), tally.refused


def test_a_bad_signature_does_not_count() -> None:
    attestations = _attestations((1, 2))
    signature = bytearray.fromhex(attestations[1]["signature"])
    signature[5] ^= 1
    attestations[1]["signature"] = signature.hex()
    tally = tally_attestations(attestations, _expected(), PINNED)
    assert tally.parties == (1,)
    assert not tally.verified
    assert tally.refused == (
        "BadAttestationSignatureError: party 2: the signature does not verify",
    )


def test_a_pinned_cosigner_that_signs_another_keys_address_does_not_count() -> None:
    """A compromised co-signer signs a statement whose address is not the encoding of
    the key derived along the path: the client recomputes the address and refuses it."""
    own = coincurve.PrivateKey(label("thief")).public_key.format()
    lie = eth_keys.PublicKey.from_compressed_bytes(own).to_checksum_address()
    statement = _statement(2)
    forged = replace(statement, address=lie)
    attestations = [sign_statement(COSIGNERS[2], forged).to_json(), *_attestations((1,))]
    tally = tally_attestations(attestations, _expected(address=lie), PINNED)
    assert tally.parties == ()
    assert any(
        "address is not the ethereum address of the attested key" in r for r in tally.refused
    ), tally.refused
    with pytest.raises(AttestationMismatchError):
        forged.check_consistent()


def test_one_cosigner_counts_once() -> None:
    attestations = _attestations((1,)) * 3
    tally = tally_attestations(attestations, _expected(), PINNED)
    assert (tally.parties, tally.verified) == ((1,), False)
    assert tally.refused.count("party 1 attested twice; counted once") == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: a.update(extra=1),
        lambda a: a.pop("identity"),
        lambda a: a.update(party=2),
        lambda a: a.update(fingerprint="0000 0000"),
        lambda a: a["statement"].update(address=None),
        lambda a: a["statement"].update(min_signers="2"),
        lambda a: a["statement"].update(format="shardvault.address-attestation/v0"),
        lambda a: a["statement"].update(encoding="dogecoin"),
        lambda a: a["identity"].update(binding="00" * 64),
    ],
)
def test_a_malformed_attestation_is_named_and_not_counted(damage: Any) -> None:
    attestations = _attestations((1, 2))
    damage(attestations[0])
    tally = tally_attestations(attestations, _expected(), PINNED)
    assert tally.parties == (2,)
    assert len(tally.refused) == 1
    assert tally.refused[0].startswith("MalformedAttestationError: attestations[0]")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4))
def test_junk_is_never_counted_and_never_raises(junk: list[object]) -> None:
    tally = tally_attestations(junk, _expected(), PINNED)
    assert tally.parties == ()
    assert len(tally.refused) == len(junk)


_SIGNED = _attestations((1,))[0]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(_SIGNED["statement"])),
    st.one_of(st.text(max_size=70), st.integers(0, 2**16)),
)
def test_a_changed_statement_field_never_counts(name: str, value: object) -> None:
    changed = json.loads(json.dumps(_SIGNED))
    if changed["statement"][name] == value:
        return
    changed["statement"][name] = value
    tally = tally_attestations([changed], _expected(), PINNED, min_signers=2)
    assert tally.parties == ()


@pytest.mark.parametrize(
    "path",
    [
        "m/44'/60/0",
        "m/44h",
        "m/01",
        "m/ 1",
        "m/1/",
        "M/1",
        "m/2147483648",
        "/".join(["m"] + ["1"] * 17),
    ],
)
def test_a_path_that_is_not_canonical_and_derivable_is_refused(path: str) -> None:
    with pytest.raises(DerivationError):
        canonical_path(path)
    with pytest.raises(DerivationError):
        derive_public_key("ecdsa-secp256k1", ECDSA_ROOT, CHAIN_CODE, path)


def test_frost_keys_have_an_address_at_the_root_only() -> None:
    with pytest.raises(DerivationError, match="at the root"):
        derive_public_key("eddsa-ed25519", ED25519_ROOT, CHAIN_CODE, "m/0")
    with pytest.raises(DerivationError, match="are for ecdsa-secp256k1 keys"):
        _statement(scheme="eddsa-ed25519", root_public_key=ED25519_ROOT, path="m")


def test_encodings_read_and_print_the_same() -> None:
    for name in (
        "ethereum",
        "solana",
        "bitcoin-p2wpkh:mainnet",
        "bitcoin-p2wpkh:regtest",
        "bitcoin-p2tr:testnet",
        "bitcoin-p2tr:signet",
    ):
        assert str(parse_encoding(name)) == name
    for bad in ("bitcoin-p2wpkh", "bitcoin-p2wpkh:bitcoin", "eth", None, 3):
        with pytest.raises(DerivationError):
            parse_encoding(bad)


def test_parse_and_print_are_inverse() -> None:
    for document in _attestations():
        assert parse_attestation(document).to_json() == document


def test_a_signed_directorys_fingerprints_serve_as_pins() -> None:
    """A client that verified a policy bundle can pin its co-signer directory."""
    directory = CosignerDirectory.of({p: i.public for p, i in COSIGNERS.items()})
    pins = PinnedCosigners.of(directory.fingerprints())
    assert tally_attestations(_attestations((1, 2)), _expected(), pins).verified
