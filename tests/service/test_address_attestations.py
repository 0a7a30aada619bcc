"""Addresses attested by the co-signers, through the service (docs/cosigner.md,
"Attested addresses"): three in-process co-signer nodes pinned to the platform
workspace, the co-signer backend asking them, the database keeping what they signed.

A client that pinned the co-signers' fingerprints counts the attestations the service
returns; an address the server changed in its own database is then UNVERIFIED.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import update

from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV
from shardvault.service import vaults, wallets
from shardvault.service.cosigner_backend import CosignerBackend
from shardvault.service.platform import Platform
from shardvault.service.policies import activated_bundles
from shardvault.store import Database
from shardvault.store.models_vaults import WalletAddress
from tests.api.support import make_platform
from tests.service.bitcoin_pipeline_support import activate, bitcoin_policy
from tests.service.pipeline_support import (
    TEST_ONLY_PRIMES,
    Workspace,
    make_vault_wallet,
    make_workspace,
)
from tests.service.test_pipeline_cosigners import Cosigners

NOT_YET = pytest.mark.xfail(strict=True, reason="the service does not attest addresses yet")

SERVERS_ADDRESS = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def cluster(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Workspace, CosignerBackend, Cosigners]]:
    monkeypatch.setenv(TEST_ONLY_PRIMES_ENV, str(TEST_ONLY_PRIMES))
    ws = make_workspace(platform)
    activate(ws, bitcoin_policy(ws))
    admin_public = ws.admin_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    admin_set: dict[str, object] = {
        "quorum": 1,
        "members": [{"id": "admin", "algorithm": "ed25519", "public_key": admin_public}],
    }
    cosigners = Cosigners(tmp_path / "cosigners", ws.owner.principal.workspace_id, admin_set)

    def bundles(workspace_id: str) -> list[dict[str, object]]:
        with platform.unit_of_work() as uow:
            return activated_bundles(uow, workspace_id)

    backend = CosignerBackend(lambda _ws: cosigners.relay, bundles, attest_timeout=5.0)
    try:
        yield ws, backend, cosigners
    finally:
        backend.close()
        cosigners.close()


def pins(cosigners: Cosigners) -> Any:
    from shardvault.policy.address_attestation import PinnedCosigners

    return PinnedCosigners.of(
        {p: n.state.identity.public.fingerprint() for p, n in cosigners.nodes.items()}
    )


def eth_wallet(ws: Workspace, backend: CosignerBackend) -> tuple[str, str]:
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(
            uow, owner, name="hardhat", kind="evm", chain_id=31337, rpc_url="http://127.0.0.1:1"
        )
        vaults.add_asset(uow, owner, symbol="ETH", network="hardhat", price="3000")
    made = make_vault_wallet(ws, backend, "ETH", ["ecdsa-secp256k1"])
    return made.vault_id, made.wallet_id


def tally(view: Any, cosigners: Cosigners, vault_id: str) -> Any:
    from shardvault.policy.address_attestation import ExpectedAddress, tally_attestations

    expected = ExpectedAddress(view.address, vault_id, view.path)
    return tally_attestations(list(view.attestations), expected, pins(cosigners))


@NOT_YET
def test_an_address_the_server_changed_in_its_database_is_unverified(
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
) -> None:
    """The co-signers attested the vault's address; a compromised server then hands out
    its own by rewriting the row. Its client counts no attestation of that address."""
    from shardvault.service.address_attestations import attest_address

    ws, backend, cosigners = cluster
    vault_id, wallet_id = eth_wallet(ws, backend)
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        first = wallets.get_wallet(uow, owner, wallet_id).addresses[0]
    attested = attest_address(ws.platform, owner, backend, wallet_id, first.id)
    assert tally(attested, cosigners, vault_id).verified
    with ws.platform.unit_of_work() as uow:
        uow.session.execute(
            update(WalletAddress)
            .where(WalletAddress.id == first.id)
            .values(address=SERVERS_ADDRESS)
        )
    with ws.platform.unit_of_work() as uow:
        shown = wallets.get_wallet(uow, owner, wallet_id).addresses[0]
    assert shown.address == SERVERS_ADDRESS
    counted = tally(shown, cosigners, vault_id)
    assert not counted.verified
    assert counted.parties == ()
    assert all(f"not {SERVERS_ADDRESS!r}" in r for r in counted.refused)
