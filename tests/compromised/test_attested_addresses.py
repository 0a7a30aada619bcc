"""A deposit address is the vault's only if the co-signers say so, each by itself
(issue: co-signers decide on signed facts only; docs/cosigner.md, "Attested addresses").

The test is the compromised server (tests/compromised/harness.py): it would rather hand
out an address of its own. Three co-signer processes in the production profile hold a
2-of-3 CGGMP21 key and a FROST Ed25519 key. Asked to sign the server's address, they
refuse; asked what the address is, each derives it from the key it holds and signs it
with its identity key (checked here with eth-keys, python-bitcointx, solders and
PyNaCl, not the project's code); a path they cannot derive and a flood are refused by
name. The user's SDK, pointed at the server's API on a loopback socket
(tests/compromised/loopback_api.py serving tests/address_stub.py) and pinning the
co-signers' fingerprints, accepts the vault's address and refuses the server's, whatever
attestations the server puts beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shardvault.cosigner.attest import ATTEST_BURST, ATTEST_RATE
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.policy.address_attestation import PinnedCosigners
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient, UnverifiedAddressError
from shardvault.sdk.addresses import VerifiedAddress
from tests.address_stub import (
    PATH,
    SERVER_OWN,
    SERVERS_KEY,
    WALLET,
    AddressStub,
    address_view,
    attestations,
    statement,
)
from tests.compromised.harness import CompromisedServer
from tests.compromised.loopback_api import LoopbackApi
from tests.cosigner.attest_support import (
    attestation_request,
    independent_address,
    verify_statement_signature,
)
from tests.cosigner.support import POLICY, VAULT, WORKSPACE, metadata
from tests.waiting import eventually

ECDSA_KEY = "eth-deposits"
SOLANA_KEY = "sol-deposits"
PARTIES = (1, 2, 3)
KEYS_ONLY = {
    **POLICY,
    "rules": [{"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"}],
}
"""The signed policy: keys may be made; attestations need no policy decision."""
OWN = {"workspace": WORKSPACE, "vault": VAULT, "key_id": ECDSA_KEY, "root_public_key": SERVERS_KEY}
"""What the server's own statements say: this workspace, vault and key, but its own key
(tests/address_stub.py), so they name an address of the server's."""


@dataclass(frozen=True)
class Vault:
    """The vault's keys as the server holds them (public parts only)."""

    ecdsa_root: ExtendedPublicKey
    solana_key: bytes

    def public_key(self, key_id: str, path: str) -> bytes:
        if key_id == SOLANA_KEY:
            return self.solana_key
        return self.ecdsa_root.derive(path).public_key.to_bytes()


@pytest.fixture(scope="module")
def vault(server: CompromisedServer) -> Vault:
    server.start("development")
    server.install(KEYS_ONLY)
    root = server.ecdsa_key(ECDSA_KEY, metadata())
    return Vault(root, server.frost_key(SOLANA_KEY, metadata()))


def _checks(results: dict[int, dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(r["status"], r.get("check")) for r in results.values()}


def _attested(server: CompromisedServer, key_id: str, path: str, encoding: str) -> list[dict]:
    """Every co-signer's attestation of ``key_id`` at ``path``, as the server keeps them."""
    results = server.run_each(attestation_request(key_id, path, encoding), PARTIES)
    assert _checks(results) == {("ok", None)}, results
    return [results[p]["attestation"] for p in PARTIES]


def test_an_address_the_server_sends_to_be_signed_is_refused(server, vault):
    theirs = statement(1, **OWN).address
    request = attestation_request(ECDSA_KEY, PATH, "ethereum", address=theirs)
    results = server.run_each(request, PARTIES)
    assert _checks(results) == {("refused", "malformed")}, results
    assert all("takes no field address" in r["reason"] for r in results.values()), results


@pytest.mark.parametrize(
    ("key_id", "path", "encoding"),
    [
        (ECDSA_KEY, PATH, "ethereum"),
        (ECDSA_KEY, "m/84/1/0/0/5", "bitcoin-p2wpkh:regtest"),
        (SOLANA_KEY, "m", "solana"),
    ],
)
def test_each_cosigner_attests_the_address_it_derives_under_its_identity(
    server, vault, key_id, path, encoding
):
    """One address from every co-signer: the encoding (by another library) of the key
    derived from the public results of the key generation, each statement signed by
    that co-signer's identity key (the one the admins' directory pins)."""
    expected = independent_address(encoding, vault.public_key(key_id, path))
    for party, attestation in zip(PARTIES, _attested(server, key_id, path, encoding), strict=True):
        identity = server.identities[party]
        verify_statement_signature(attestation, identity.signing_key)
        assert attestation["fingerprint"] == identity.fingerprint()
        signed = attestation["statement"]
        assert (signed["party"], signed["workspace"], signed["vault"]) == (
            party,
            WORKSPACE,
            VAULT,
        )
        assert (signed["key_id"], signed["path"]) == (key_id, path)
        assert signed["address"] == expected


@pytest.mark.parametrize(
    ("key_id", "path", "reason"),
    [
        (ECDSA_KEY, "m/44'/60'/0'/0/7", "hardened"),
        (SOLANA_KEY, "m/0", "at the root (m) only"),
    ],
)
def test_a_path_the_cosigners_cannot_derive_is_refused(server, vault, key_id, path, reason):
    encoding = "solana" if key_id == SOLANA_KEY else "ethereum"
    results = server.run_each(attestation_request(key_id, path, encoding), PARTIES)
    assert _checks(results) == {("refused", "derivation")}, results
    assert all(reason in r["reason"] for r in results.values()), results


# --- The user's SDK against the server's API ------------------------------------------


@pytest.fixture
def pinned(server: CompromisedServer) -> PinnedCosigners:
    """The fingerprints the co-signers' operators read on their own hosts."""
    return PinnedCosigners.of({p: i.fingerprint() for p, i in server.identities.items()})


@pytest.fixture
def show() -> Iterator:
    """Have the server's API show one address beside some attestations, and answer
    what the user's SDK makes of it."""
    apis: list[LoopbackApi] = []

    def verified(address: str, attested: list[dict], pinned: PinnedCosigners) -> VerifiedAddress:
        view = address_view(address, attested)
        view["attested"] = True  # the server's word, which the SDK ignores
        api = LoopbackApi(AddressStub([view]).handle)
        apis.append(api)
        credentials = ApiKeyCredentials("key-viewer", Ed25519PrivateKey.generate())
        with ShardvaultClient(api.url, credentials, max_attempts=1) as client:
            return client.verified_address(
                WALLET, pinned=pinned, vault_id=VAULT, workspace_id=WORKSPACE
            )

    yield verified
    for api in apis:
        api.close()


def test_the_sdk_verifies_the_vaults_address_by_the_pinned_cosigners(server, vault, pinned, show):
    attested = _attested(server, ECDSA_KEY, PATH, "ethereum")
    honest = attested[0]["statement"]["address"]
    verified = show(honest, attested, pinned)
    assert verified.tally.parties == PARTIES
    assert verified.public_key == vault.public_key(ECDSA_KEY, PATH)
    assert verified.vault_public_key == vault.ecdsa_root.public_key.to_bytes()


def _beside(attested: list[dict], theirs: str) -> dict[str, tuple[list[dict], str]]:
    """The attestations the server can put beside its address ``theirs``, and what the
    SDK names for not counting them."""
    edited = [{**a, "statement": {**a["statement"], "address": theirs}} for a in attested]
    return {
        "the vault's attestations": (attested, "AttestationMismatchError"),
        "none": ([], "the server returned no attestation"),
        "signed by identities of its own": (
            attestations(identities=SERVER_OWN, **OWN),
            "UnpinnedCosignerError",
        ),
        "the vault's, edited to its address": (edited, "BadAttestationSignatureError"),
    }


@pytest.mark.parametrize(
    "beside",
    [
        "the vault's attestations",
        "none",
        "signed by identities of its own",
        "the vault's, edited to its address",
    ],
)
def test_the_sdk_refuses_an_address_of_the_servers_own(server, vault, pinned, show, beside):
    attested = _attested(server, ECDSA_KEY, PATH, "ethereum")
    theirs = statement(1, **OWN).address
    assert theirs != attested[0]["statement"]["address"]
    shown, reason = _beside(attested, theirs)[beside]
    with pytest.raises(UnverifiedAddressError) as refused:
        show(theirs, shown, pinned)
    assert refused.value.address == theirs
    assert refused.value.tally.parties == ()
    assert reason in str(refused.value)


def test_a_flood_of_attestation_requests_is_cut_off(server, vault):
    """More requests at once than the burst the rate allows: the co-signer answers the
    burst (and what refills while it works) and refuses the rest naming ``rate``."""
    count = 2 * ATTEST_BURST
    bodies = [attestation_request(SOLANA_KEY, "m", "solana") for _ in range(count)]
    started = time.monotonic()
    server.core.submit_many([(body, [3]) for body in bodies])
    results = [server.results(body, [3])[3] for body in bodies]
    elapsed = time.monotonic() - started
    refused = [r for r in results if r["status"] != "ok"]
    assert refused, "no request was cut off"
    assert {(r["status"], r["check"]) for r in refused} == {("refused", "rate")}
    assert "too many address attestations" in refused[0]["reason"]
    # The bucket held at most the burst and refilled at most at the rate meanwhile.
    assert count - len(refused) <= ATTEST_BURST + ATTEST_RATE * elapsed + 1
    # The budget refills: once an attestation is answered again, leave a second's worth
    # (ATTEST_RATE) for the other tests of the module.
    assert eventually(
        lambda: (
            server.run(attestation_request(SOLANA_KEY, "m", "solana"), [3])[3]["status"] == "ok"
        ),
        timeout=10.0,
        interval=0.1,
    )
    time.sleep(1.0)
