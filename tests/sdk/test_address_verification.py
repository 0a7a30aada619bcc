"""The SDK shows an address as verified only when ``min_signers`` co-signers the user
pinned attest it (docs/cosigner.md, "Attested addresses"): a server that hands out its
own address, or backs it with attestations that do not count, gets
:class:`UnverifiedAddressError` naming why. The server is :mod:`tests.address_stub`."""

from __future__ import annotations

import pytest

from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.group import SECP256K1
from shardvault.sdk import (
    PinnedCosigners,
    SdkError,
    UnverifiedAddressError,
    require_verified,
    verify_address,
)
from shardvault.sdk.custody import Address
from tests.address_stub import (
    ADDRESS_ID,
    CHAIN_CODE,
    FINGERPRINTS,
    PATH,
    ROOT,
    SERVER_OWN,
    SERVERS_KEY,
    VAULT,
    WALLET,
    AddressStub,
    address_view,
    attestations,
    honest_address,
    servers_address,
    statement,
    stub_client,
)


def _refused(view: dict[str, object], **options: object):  # type: ignore[no-untyped-def]
    with (
        stub_client(AddressStub([view])) as client,
        pytest.raises(UnverifiedAddressError) as caught,
    ):
        client.verified_address(WALLET, pinned=PinnedCosigners.of(FINGERPRINTS), **options)
    return caught.value


def test_an_address_the_server_substituted_is_refused() -> None:
    """The server shows its own address beside the co-signers' attestations of the
    vault's: none of them names the address shown."""
    theirs = servers_address()
    error = _refused(address_view(theirs, attestations()))
    assert error.address == theirs
    assert error.tally.parties == ()
    assert "UNVERIFIED" in str(error)
    assert f"attests address {honest_address()!r}, not {theirs!r}" in str(error)
    assert error.tally.refused
    assert all("AttestationMismatchError" in r for r in error.tally.refused)


def test_an_address_without_attestations_is_refused() -> None:
    error = _refused(address_view(servers_address(), []))
    assert error.tally.parties == ()
    assert "0 of the 2 co-signer attestations needed" in str(error)


def test_attestations_by_cosigners_the_user_did_not_pin_do_not_count() -> None:
    """The server signs its own key's address with identities it made: one for each
    real party, and a fourth party nobody listed."""
    own = attestations((1, 2, 3, 4), SERVER_OWN, root_public_key=SERVERS_KEY)
    error = _refused(address_view(servers_address(), own))
    assert error.tally.parties == ()
    reasons = "\n".join(error.tally.refused)
    assert reasons.count("UnpinnedCosignerError") == 4
    assert "party 4 is not a pinned co-signer" in reasons
    assert "party 1 signed with identity" in reasons


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"vault": "vault-2"}, "attests vault 'vault-2', not 'vault-1'"),
        ({"workspace": "ws-other"}, "attests workspace 'ws-other', not 'ws-acme'"),
    ],
)
def test_attestations_for_another_vault_or_workspace_do_not_count(
    changes: dict[str, str], reason: str
) -> None:
    error = _refused(
        address_view(honest_address(), attestations(**changes)), workspace_id="ws-acme"
    )
    assert error.tally.parties == ()
    assert all(reason in r for r in error.tally.refused), error.tally.refused


def test_attestations_for_another_path_do_not_count() -> None:
    """Attestations of the key at another index, shown as this address."""
    other = attestations(path="m/44/60/1/0/9")
    error = _refused(address_view(str(other[0]["statement"]["address"]), other))
    assert error.tally.parties == ()
    assert all(
        "attests path 'm/44/60/1/0/9', not 'm/44/60/1/0/0'" in r for r in error.tally.refused
    )


def test_a_bad_signature_does_not_count() -> None:
    attested = attestations((1, 2))
    signature = bytearray.fromhex(attested[0]["signature"])
    signature[0] ^= 0x80
    attested[0]["signature"] = signature.hex()
    error = _refused(address_view(honest_address(), attested))
    assert error.tally.parties == (2,)
    assert error.tally.refused == (
        "BadAttestationSignatureError: party 1: the signature does not verify",
    )


def test_fewer_than_min_signers_is_not_verified() -> None:
    error = _refused(address_view(honest_address(), attestations((3,))))
    assert error.tally.parties == (3,)
    assert error.tally.required == 2
    # The user may ask for more than the key's threshold, never for fewer than two.
    error = _refused(address_view(honest_address(), attestations((1, 3))), min_signers=3)
    assert (error.tally.parties, error.tally.required) == ((1, 3), 3)


def _pins() -> PinnedCosigners:
    return PinnedCosigners.of(FINGERPRINTS)


def test_an_address_two_pinned_cosigners_attest_is_verified() -> None:
    view = address_view(honest_address(), attestations((1, 3)))
    with stub_client(AddressStub([view])) as client:
        verified = client.verified_address(WALLET, pinned=_pins())
    assert verified.address.address == honest_address()
    assert verified.tally.parties == (1, 3)
    assert verified.tally.summary() == "verified (2 of 3 co-signers)"
    assert verified.public_key == statement(1).public_key
    # The attested key is the vault's root key derived along the path (BIP32, public).
    child = ExtendedPublicKey(SECP256K1.decode_point(ROOT), CHAIN_CODE).derive(PATH)
    assert verified.public_key == child.public_key.to_bytes()


def test_a_new_address_is_verified_before_it_is_answered() -> None:
    first = address_view(honest_address(), attestations())
    second_attested = attestations(path="m/44/60/1/0/1")
    second = address_view(str(second_attested[0]["statement"]["address"]), second_attested, index=1)
    with stub_client(AddressStub([first], fresh=[second])) as client:
        verified = client.new_verified_address(WALLET, pinned=_pins())
    assert verified.address.index == 1
    assert verified.tally.parties == (1, 2, 3)
    substituted = address_view(servers_address(), second_attested, index=1)
    with (
        stub_client(AddressStub([first], fresh=[substituted])) as client,
        pytest.raises(UnverifiedAddressError, match="do not use it"),
    ):
        client.new_verified_address(WALLET, pinned=_pins())


def test_the_vault_the_user_expects_is_the_one_checked() -> None:
    """The server may claim another vault for the wallet; a user who names the vault
    they expect has the attestations checked against it, not against the server's."""
    view = address_view(honest_address(), attestations())
    with stub_client(AddressStub([view])) as client:
        assert client.verified_address(WALLET, pinned=_pins(), vault_id=VAULT).tally.verified
        with pytest.raises(UnverifiedAddressError, match="attests vault 'vault-1', not 'vault-9'"):
            client.verified_address(WALLET, pinned=_pins(), vault_id="vault-9")


def test_an_address_is_chosen_by_id_and_an_unknown_one_is_an_error() -> None:
    first = address_view(honest_address(), attestations())
    other = address_view(servers_address(), [], index=1)
    with stub_client(AddressStub([first, other])) as client:
        chosen = client.verified_address(WALLET, pinned=_pins(), address_id=ADDRESS_ID)
        assert chosen.address.id == ADDRESS_ID
        with pytest.raises(UnverifiedAddressError):
            client.verified_address(WALLET, pinned=_pins())  # the newest: unattested
        with pytest.raises(SdkError, match="has no address nope"):
            client.verified_address(WALLET, pinned=_pins(), address_id="nope")


def test_an_address_from_a_server_without_attestations_is_unverified() -> None:
    """An older server's address view has no attestation fields at all."""
    view = address_view(honest_address(), [])
    for name in ("vault_id", "scheme", "attestations", "attested"):
        view.pop(name)
    address = Address.model_validate(view)
    tally = verify_address(address, _pins(), vault_id=VAULT)
    assert (tally.verified, tally.parties) == (False, ())
    with pytest.raises(UnverifiedAddressError, match="the server returned no attestation"):
        require_verified(address, _pins(), vault_id=VAULT)


def test_attest_address_asks_the_server_again() -> None:
    view = address_view(honest_address(), attestations())
    with stub_client(AddressStub([view])) as client:
        again = client.attest_address(WALLET, ADDRESS_ID)
    assert len(again.attestations) == 3


def test_a_user_who_noted_the_vault_key_binds_the_address_to_it() -> None:
    """The address is the vault's key: the attested key derives from the root key the
    user noted when the vault was made, or the address does not count."""
    view = address_view(honest_address(), attestations())
    with stub_client(AddressStub([view])) as client:
        verified = client.verified_address(WALLET, pinned=_pins(), vault_public_key=ROOT)
        assert verified.vault_public_key == ROOT
        with pytest.raises(UnverifiedAddressError, match="attests vault key"):
            client.verified_address(WALLET, pinned=_pins(), vault_public_key=SERVERS_KEY)
