"""Addresses attested by the co-signers, through the service (docs/cosigner.md,
"Attested addresses"): three in-process co-signer nodes pinned to the platform
workspace, the co-signer backend asking them, the database keeping what they signed.

A client that pinned the co-signers' fingerprints counts the attestations the service
returns; an address the server changed in its own database is then UNVERIFIED.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from shardvault.policy.address_attestation import (
    AttestationTally,
    ExpectedAddress,
    PinnedCosigners,
    parse_attestation,
    sign_statement,
    tally_attestations,
)
from shardvault.service import vaults, wallets
from shardvault.service.address_attestations import (
    AttestationUnavailable,
    attest_address,
    attest_new_address,
)
from shardvault.service.cosigner_backend import CosignerBackend
from shardvault.service.errors import Forbidden, NotFound
from shardvault.service.platform import Platform
from shardvault.service.signing import SigningBackend
from shardvault.service.wallets import AddressView
from shardvault.store.models import AuditEvent
from shardvault.store.models_vaults import WalletAddress
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    Workspace,
    make_vault_wallet,
    make_workspace,
    open_custody,
)
from tests.service.test_pipeline_cosigners import Cosigners, cluster, platform

__all__ = ["cluster", "platform"]

SERVERS_ADDRESS = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
RPC = "http://127.0.0.1:1"
OTHER_KEY = hashlib.sha256(b"TEST-ONLY a co-signer's own key").digest()


def pins(cosigners: Cosigners) -> PinnedCosigners:
    return PinnedCosigners.of(
        {p: n.state.identity.public.fingerprint() for p, n in cosigners.nodes.items()}
    )


def eth_wallet(
    ws: Workspace, backend: SigningBackend, schemes: tuple[str, ...] = ("ecdsa-secp256k1",)
) -> tuple[str, str]:
    """A hardhat network, ETH, a 2-of-3 vault with keys for ``schemes``, its ETH wallet."""
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(
            uow, owner, name="hardhat", kind="evm", chain_id=31337, rpc_url=RPC
        )
        vaults.add_asset(uow, owner, symbol="ETH", network="hardhat", price="3000")
    made = make_vault_wallet(ws, backend, "ETH", list(schemes))
    return made.vault_id, made.wallet_id


def sol_wallet(ws: Workspace, backend: SigningBackend) -> tuple[str, str]:
    """A Solana network, SOL, a 2-of-3 vault with an Ed25519 key, its SOL wallet (a
    FROST key generation takes milliseconds, CGGMP21's seconds)."""
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="solana", kind="solana", rpc_url=RPC)
        vaults.add_asset(uow, owner, symbol="SOL", network="solana", price="150")
    made = make_vault_wallet(ws, backend, "SOL", ["eddsa-ed25519"])
    return made.vault_id, made.wallet_id


def tally(view: AddressView, cosigners: Cosigners, vault_id: str) -> AttestationTally:
    expected = ExpectedAddress(view.address, vault_id, view.path)
    return tally_attestations(list(view.attestations), expected, pins(cosigners))


def test_an_address_the_server_changed_in_its_database_is_unverified(
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
) -> None:
    """The co-signers attested the vault's address; a compromised server then hands out
    its own by rewriting the row. Its client counts no attestation of that address."""

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


def test_every_address_is_attested_by_the_cosigners_of_its_key(
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
) -> None:
    """ETH (EIP-55), BTC (P2WPKH on regtest) and SOL (base58 at m): each co-signer's
    attestation verifies against the pins, and the attested key is the one the server
    derived and shows."""
    ws, backend, cosigners = cluster
    owner = ws.owner.principal
    vault_id, eth_wallet_id = eth_wallet(ws, backend, ("ecdsa-secp256k1", "eddsa-ed25519"))
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="regtest", kind="bitcoin", rpc_url=RPC)
        vaults.add_asset(uow, owner, symbol="BTC", network="regtest", price="60000")
        vaults.configure_network(uow, owner, name="solana", kind="solana", rpc_url=RPC)
        vaults.add_asset(uow, owner, symbol="SOL", network="solana", price="150")
        btc = wallets.create_wallet(uow, owner, vault_id=vault_id, asset="BTC")
        sol = wallets.create_wallet(uow, owner, vault_id=vault_id, asset="SOL")
        second = wallets.new_address(uow, owner, eth_wallet_id)
    with ws.platform.unit_of_work() as uow:
        eth_first = wallets.get_wallet(uow, owner, eth_wallet_id).addresses[0]
    for wallet_id, address, encoding in (
        (eth_wallet_id, eth_first, "ethereum"),
        (eth_wallet_id, second, "ethereum"),
        (btc.id, btc.addresses[0], "bitcoin-p2wpkh:regtest"),
        (sol.id, sol.addresses[0], "solana"),
    ):
        assert (address.attestations, address.attested) == ((), False)
        view = attest_address(ws.platform, owner, backend, wallet_id, address.id)
        assert view.attested
        assert [a["party"] for a in view.attestations] == [1, 2, 3]
        assert {a["statement"]["encoding"] for a in view.attestations} == {encoding}  # type: ignore[index]
        counted = tally(view, cosigners, vault_id)
        assert counted.parties == (1, 2, 3), counted.refused
        assert counted.public_key is not None
        assert counted.public_key.hex() == view.public_key
    assert btc.addresses[0].address.startswith("bcrt1q")


def test_an_address_is_attested_again_and_a_silent_cosigner_is_left_out(
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An address made before attestations (or while a co-signer was away) is
    unattested until it is attested again; a co-signer that does not answer within the
    timeout is left out and keeps its earlier attestation; one that answers for another
    address is not stored."""
    ws, backend, cosigners = cluster
    owner = ws.owner.principal
    vault_id, wallet_id = sol_wallet(ws, backend)
    with ws.platform.unit_of_work() as uow:
        address = wallets.get_wallet(uow, owner, wallet_id).addresses[0]
    silent, liar = cosigners.nodes[3], cosigners.nodes[2]
    handle, honest_attest = silent._handle_request, liar._attester.attest

    def ignore_attestations(body: dict[str, Any], out: Any) -> None:
        if body.get("kind") != "attest_address":
            handle(body, out)

    def other_address(body: dict[str, Any], now: float) -> dict[str, object]:
        """A compromised co-signer signs the address of a key of its own."""
        honest = parse_attestation(honest_attest(body, now)).statement
        lie = replace(honest, root_public_key=OTHER_KEY, public_key=OTHER_KEY)
        lie = replace(lie, address=lie.encoding.encode(OTHER_KEY))
        return sign_statement(liar.state.identity, lie).to_json()

    with monkeypatch.context() as patched:
        patched.setattr(silent, "_handle_request", ignore_attestations)
        patched.setattr(liar._attester, "attest", other_address)
        patched.setattr(backend, "_attest_timeout", 1.0)
        view = attest_address(ws.platform, owner, backend, wallet_id, address.id)
    assert [a["party"] for a in view.attestations] == [1]
    assert "co-signer 2's attestation left out: party 2 attests address" in caplog.text
    assert not view.attested
    assert not tally(view, cosigners, vault_id).verified
    view = attest_address(ws.platform, owner, backend, wallet_id, address.id)
    assert [a["party"] for a in view.attestations] == [1, 2, 3]
    assert tally(view, cosigners, vault_id).verified
    with ws.platform.unit_of_work() as uow:
        events = uow.session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "address.attest")
        ).all()
    assert [json.loads(e)["parties"] for e in events] == [[1], [1, 2, 3]]


def test_a_signer_without_cosigners_cannot_attest(platform: Platform, tmp_path: Path) -> None:
    ws = make_workspace(platform)
    local = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    _, wallet_id = sol_wallet(ws, local)
    with ws.platform.unit_of_work() as uow:
        address = wallets.get_wallet(uow, ws.owner.principal, wallet_id).addresses[0]
    with pytest.raises(AttestationUnavailable, match="has no co-signers"):
        attest_address(ws.platform, ws.owner.principal, local, wallet_id, address.id)
    assert attest_new_address(ws.platform, ws.owner.principal, local, wallet_id, address.id) is None
    with pytest.raises(Forbidden):
        attest_address(ws.platform, ws.viewer.principal, local, wallet_id, address.id)
    with pytest.raises(NotFound):
        attest_address(ws.platform, ws.owner.principal, local, wallet_id, "no-such-address")
