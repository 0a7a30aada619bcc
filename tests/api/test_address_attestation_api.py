"""Attested addresses through the API and the SDK, against a live server whose signer is
three co-signer nodes (in-process, pinned to the tenant's workspace and admin set):
a new wallet's address and every new address come with each co-signer's attestation,
which the SDK verifies against the fingerprints the test pinned; ``.../attest`` asks
again; bad input is a typed 4xx that changes nothing; a signer without co-signers
answers 409 ``attestation-unavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from shardvault.api import create_app
from shardvault.sdk import ApiKeyCredentials, PinnedCosigners, ShardvaultClient, generate_key_pair
from shardvault.sdk.custody import sign_bundle
from shardvault.sdk.errors import ApiError
from shardvault.service.cosigner_backend import CosignerBackend
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.policies import activated_bundles
from shardvault.store.models import AuditEvent
from shardvault.store.models_attestations import AddressAttestation
from tests.api.support import SwitchableApp, Tenant, assert_problem, count_rows
from tests.service.pipeline_support import ReusedKeygenBackend, open_custody
from tests.service.test_pipeline_cosigners import Cosigners

ADMIN = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYGEN_POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [{"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"}],
}


def _admin_set() -> dict[str, object]:
    public = ADMIN.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return {"quorum": 1, "members": [{"id": "admin", "algorithm": "ed25519", "public_key": public}]}


def _serve(app: FastAPI, loopback: tuple[SwitchableApp, str]) -> Iterator[str]:
    switch, base = loopback
    switch.target = app
    try:
        yield base
    finally:
        switch.target = None


@pytest.fixture
def cosigners(tenant: Tenant, tmp_path: Path) -> Iterator[Cosigners]:
    nodes = Cosigners(tmp_path / "cosigners", tenant.workspace_id, _admin_set())
    yield nodes
    nodes.close()


@pytest.fixture
def url(
    platform: Platform,
    tenant: Tenant,
    cosigners: Cosigners,
    _loopback: tuple[SwitchableApp, str],
) -> Iterator[str]:

    def bundles(workspace_id: str) -> list[dict[str, object]]:
        with platform.unit_of_work() as uow:
            return activated_bundles(uow, workspace_id)

    backend = CosignerBackend(lambda _ws: cosigners.relay, bundles, attest_timeout=5.0)
    try:
        yield from _serve(
            create_app(platform, pipeline_runtime=PipelineRuntime(backend)), _loopback
        )
    finally:
        backend.close()


def _activate_policy(owner: ShardvaultClient) -> None:
    policy = owner.create_policy(document=KEYGEN_POLICY)
    proposed = owner.propose_policy(policy.id, admins=_admin_set())
    assert proposed.signing_message is not None
    owner.sign_policy(
        policy.id, signer="admin", signature=sign_bundle(ADMIN, proposed.signing_message)
    )
    owner.activate_policy(policy.id)


def _pins(cosigners: Cosigners) -> PinnedCosigners:
    return PinnedCosigners.of(
        {p: n.state.identity.public.fingerprint() for p, n in cosigners.nodes.items()}
    )


def test_addresses_come_with_the_cosigners_attestations(
    url: str, tenant: Tenant, cosigners: Cosigners, platform: Platform
) -> None:
    with ShardvaultClient(url, tenant.owner) as owner:
        _activate_policy(owner)
        owner.configure_network(
            name="hardhat", kind="evm", chain_id=31337, rpc_url="http://127.0.0.1:1"
        )
        owner.add_asset(symbol="ETH", network="hardhat")
        vault = owner.create_vault(name="ops", schemes=["ecdsa-secp256k1"])
        wallet = owner.create_wallet(vault_id=vault.id, asset="ETH")
        first = wallet.addresses[0]
        assert first.attested
        assert [a["party"] for a in first.attestations] == [1, 2, 3]
        assert first.vault_id == vault.id
        verified = owner.verified_address(wallet.id, pinned=_pins(cosigners), vault_id=vault.id)
        assert verified.tally.summary() == "verified (3 of 3 co-signers)"
        assert verified.public_key.hex() == first.public_key
        fresh = owner.new_verified_address(wallet.id, pinned=_pins(cosigners), vault_id=vault.id)
        assert fresh.address.path == f"m/44/60/{vault.number}/0/1"
        assert fresh.tally.parties == (1, 2, 3)
        # Asked again: the same parties, each one's attestation replaced.
        again = owner.attest_address(wallet.id, first.id)
        assert [a["party"] for a in again.attestations] == [1, 2, 3]
        assert again.attestations[0]["statement"] == first.attestations[0]["statement"]
    assert count_rows(platform, AddressAttestation) == 6
    with platform.unit_of_work(read_only=True) as uow:
        events = uow.session.query(AuditEvent).filter(AuditEvent.action == "address.attest").all()
    assert len(events) == 3
    assert all(json.loads(e.details)["attested"] for e in events)


def test_bad_attestation_requests_are_typed_and_change_nothing(
    url: str, tenant: Tenant, cosigners: Cosigners, platform: Platform
) -> None:
    with ShardvaultClient(url, tenant.owner) as owner:
        _activate_policy(owner)
        owner.configure_network(name="solana", kind="solana", rpc_url="http://127.0.0.1:1")
        owner.add_asset(symbol="SOL", network="solana")
        vault = owner.create_vault(name="sol", schemes=["eddsa-ed25519"])
        wallet = owner.create_wallet(vault_id=vault.id, asset="SOL")
        other = owner.create_vault(name="sol-2", schemes=["eddsa-ed25519"])
        other_wallet = owner.create_wallet(vault_id=other.id, asset="SOL")
        private_pem, public_pem = generate_key_pair("EdDSA")
        user = owner.create_user(name="victor", email="victor@acme.example", role="viewer")
        key = owner.create_api_key(user_id=user.id, name="viewer", public_key_pem=public_pem)
    assert wallet.addresses[0].attested
    before = count_rows(platform, AddressAttestation)
    refused: list[tuple[str, int, str]] = [
        (f"/v1/wallets/{wallet.id}/addresses/no-such-address/attest", 404, "not-found"),
        # An address of another wallet, asked for through this one.
        (
            f"/v1/wallets/{wallet.id}/addresses/{other_wallet.addresses[0].id}/attest",
            404,
            "not-found",
        ),
        (f"/v1/wallets/no-such-wallet/addresses/{wallet.addresses[0].id}/attest", 404, "not-found"),
        (f"/v1/wallets/{wallet.id}/addresses/{'x' * 5000}/attest", 404, "not-found"),
    ]
    with ShardvaultClient(url, tenant.owner) as owner:
        for path, status, problem in refused:
            with pytest.raises(ApiError) as caught:
                owner.request("POST", path, json_body={}, idempotency_key=f"k-{len(path)}")
            assert (caught.value.status, caught.value.slug) == (status, problem), path
    viewer = ApiKeyCredentials.from_pem(key.id, private_pem)
    with ShardvaultClient(url, viewer) as as_viewer, pytest.raises(ApiError) as forbidden:
        as_viewer.attest_address(wallet.id, wallet.addresses[0].id)
    assert forbidden.value.status == 403
    with httpx.Client(base_url=url) as http:
        path = f"/v1/wallets/{wallet.id}/addresses/{wallet.addresses[0].id}/attest"
        headers = {
            "X-API-Key": tenant.owner.api_key_id,
            "Authorization": f"Bearer {tenant.owner.sign_request('POST', path, b'')}",
        }
        missing_key = http.post(path, headers=headers)
    assert_problem(missing_key, 400, "invalid-request")
    assert count_rows(platform, AddressAttestation) == before


@pytest.fixture
def local_url(
    platform: Platform, tmp_path: Path, _loopback: tuple[SwitchableApp, str]
) -> Iterator[str]:
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    yield from _serve(create_app(platform, pipeline_runtime=PipelineRuntime(backend)), _loopback)


def test_a_signer_without_cosigners_answers_409(
    local_url: str, tenant: Tenant, platform: Platform
) -> None:
    with ShardvaultClient(local_url, tenant.owner) as owner:
        owner.configure_network(name="solana", kind="solana", rpc_url="http://127.0.0.1:1")
        owner.add_asset(symbol="SOL", network="solana")
        vault = owner.create_vault(name="sol", schemes=["eddsa-ed25519"])
        wallet = owner.create_wallet(vault_id=vault.id, asset="SOL")
        address = wallet.addresses[0]
        assert (address.attestations, address.attested) == ([], False)
        with pytest.raises(ApiError) as caught:
            owner.attest_address(wallet.id, address.id)
    assert (caught.value.status, caught.value.slug) == (409, "attestation-unavailable")
    assert "has no co-signers to attest addresses" in caught.value.detail
    assert count_rows(platform, AddressAttestation) == 0
