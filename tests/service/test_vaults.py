"""Networks, assets, vaults, wallets and addresses (service layer, SQLite and PostgreSQL),
and the local ceremony backend's FROST path: an Ed25519 vault signs a Solana transfer
message that solders and PyNaCl verify (signed and verified, not broadcast: no Solana
node runs here).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from nacl.signing import VerifyKey
from solders.hash import Hash
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction as SolanaTransaction
from sqlalchemy import func, select

from shardvault.service import vaults, wallets
from shardvault.service.errors import Conflict, Forbidden, NotFound, ValidationError
from shardvault.service.platform import Platform
from shardvault.service.signing import PARTY_COUNTS, LocalCeremonyBackend, SignRequest
from shardvault.service.vaults import VaultKeyView
from shardvault.store import Database
from shardvault.store.models import AuditEvent
from shardvault.store.models_vaults import Network
from tests.api.support import make_platform
from tests.service.pipeline_support import Workspace, make_workspace, open_custody


@pytest.fixture
def ws(database: Database) -> Workspace:
    return make_workspace(make_platform(database))


def _events(platform: Platform) -> int:
    with platform.database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Bad Name", "kind": "evm", "chain_id": 31337}, "name"),
        ({"name": "x", "kind": "tron"}, "kind"),
        ({"name": "x", "kind": "evm"}, "chain_id"),
        ({"name": "x", "kind": "evm", "chain_id": 2**63}, "chain_id"),
        ({"name": "x", "kind": "solana", "chain_id": 1}, "chain_id"),
        ({"name": "x", "kind": "evm", "chain_id": 1, "rpc_url": "ftp://node"}, "rpc_url"),
        # Any chain id, but not under a well-known or Bitcoin network's name; a
        # well-known one keeps its native symbol.
        ({"name": "ethereum", "kind": "evm", "chain_id": 999_999_999}, "name"),
        ({"name": "regtest", "kind": "evm", "chain_id": 999_999_999}, "name"),
        ({"name": "x", "kind": "evm", "chain_id": 137, "native_symbol": "ETH"}, "native_symbol"),
        (
            {"name": "x", "kind": "evm", "chain_id": 31338, "native_symbol": "E T H"},
            "native_symbol",
        ),
        # Every node and the broadcast URL through the SSRF guard.
        (
            {
                "name": "x",
                "kind": "evm",
                "chain_id": 1,
                "rpc_urls": ["http://127.0.0.1:8545", "http://169.254.169.254/"],
            },
            "rpc_urls[1]",
        ),
        (
            {
                "name": "x",
                "kind": "evm",
                "chain_id": 1,
                "rpc_urls": ["http://127.0.0.1:8545", "http://127.0.0.1:8545"],
            },
            "rpc_urls[1]",
        ),
        ({"name": "x", "kind": "evm", "chain_id": 1, "rpc_urls": ["h"] * 9}, "rpc_urls"),
        (
            {
                "name": "x",
                "kind": "evm",
                "chain_id": 1,
                "rpc_url": "http://127.0.0.1:1",
                "rpc_urls": ["http://127.0.0.1:2"],
            },
            "rpc_urls",
        ),
        (
            {"name": "x", "kind": "evm", "chain_id": 1, "broadcast_url": "http://[fe80::1]:8545/"},
            "broadcast_url",
        ),
        # The legacy fee model is refused, saying why.
        ({"name": "x", "kind": "evm", "chain_id": 56, "fee_model": "legacy"}, "fee_model"),
        # EVM settings on another chain family.
        ({"name": "x", "kind": "solana", "broadcast_url": "http://127.0.0.1:1"}, "broadcast_url"),
        ({"name": "x", "kind": "bitcoin", "native_symbol": "BTC"}, "native_symbol"),
        ({"name": "x", "kind": "bitcoin", "rpc_urls": ["http://a", "http://b"]}, "rpc_urls"),
        (
            {"name": "x", "kind": "evm", "chain_id": 1, "required_confirmations": 0},
            "required_confirmations",
        ),
    ],
)
def test_bad_network_is_refused_and_changes_nothing(
    ws: Workspace, kwargs: dict[str, object], field: str
) -> None:
    before = _events(ws.platform)
    with pytest.raises(ValidationError) as refused, ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, ws.owner.principal, **kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert _events(ws.platform) == before
    with ws.platform.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Network)) == 0


def test_any_evm_chain_id_is_a_network_with_its_nodes_and_symbol(ws: Workspace) -> None:
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        devnet = vaults.configure_network(
            uow, owner, name="devnet-b", kind="evm", chain_id=31338, native_symbol="DEV",
            rpc_urls=["http://127.0.0.1:9545", "https://rpc.example/v1"],
            broadcast_url="https://private.example/rpc", required_confirmations=3,
        )  # fmt: skip
        polygon = vaults.configure_network(uow, owner, name="pos", kind="evm", chain_id=137)
        other = vaults.configure_network(uow, owner, name="l3", kind="evm", chain_id=424242)
        listed = vaults.list_networks(uow, owner)
    assert devnet.rpc_url == "http://127.0.0.1:9545"
    assert devnet.rpc_urls == ("http://127.0.0.1:9545", "https://rpc.example/v1")
    assert (devnet.broadcast_url, devnet.native_symbol) == ("https://private.example/rpc", "DEV")
    assert (devnet.fee_model, devnet.native_decimals, devnet.required_confirmations) == (
        "eip1559", 18, 3,
    )  # fmt: skip
    # A well-known chain id takes the table's symbol; another defaults to ETH.
    assert (polygon.native_symbol, other.native_symbol) == ("POL", "ETH")
    assert [n.name for n in listed] == ["devnet-b", "l3", "pos"]
    assert listed[0] == devnet
    with ws.platform.database.transaction() as session:
        details = session.scalars(
            select(AuditEvent.details)
            .where(AuditEvent.action == "network.configure")
            .order_by(AuditEvent.seq)
        ).first()
    assert details is not None
    assert json.loads(details)["private_broadcast"] is True
    # The URLs (which may carry a node's credentials) are not in the audit log.
    assert "private.example" not in details


def test_the_legacy_fee_model_is_refused_saying_why(ws: Workspace) -> None:
    with pytest.raises(ValidationError) as refused, ws.platform.unit_of_work() as uow:
        vaults.configure_network(
            uow, ws.owner.principal, name="bsc", kind="evm", chain_id=56, fee_model="legacy"
        )
    assert "EIP-1559 (type 2) transactions only" in str(refused.value)


def test_assets_are_checked_against_their_network(ws: Workspace) -> None:
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="hardhat", kind="evm", chain_id=31337)
        vaults.configure_network(uow, owner, name="solana", kind="solana")
    cases: list[tuple[dict[str, object], type[Exception]]] = [
        ({"symbol": "ETH", "network": "nope"}, NotFound),
        ({"symbol": "ETH", "network": "hardhat", "decimals": 6}, ValidationError),
        ({"symbol": "USDC", "network": "hardhat", "kind": "erc20"}, ValidationError),
        (
            {
                "symbol": "USDC",
                "network": "hardhat",
                "kind": "erc20",
                "contract": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB49".lower().replace(
                    "a0", "A0"
                ),
                "decimals": 6,
            },
            ValidationError,
        ),
        (
            {"symbol": "USDC", "network": "solana", "kind": "erc20", "contract": "x"},
            ValidationError,
        ),
        ({"symbol": "ETH", "network": "hardhat", "price": "-1"}, ValidationError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error), ws.platform.unit_of_work() as uow:
            vaults.add_asset(uow, owner, **kwargs)  # type: ignore[arg-type]
    with ws.platform.unit_of_work() as uow:
        usdc = vaults.add_asset(
            uow,
            owner,
            symbol="USDC",
            network="hardhat",
            kind="erc20",
            contract="0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
            decimals=6,
        )
    assert usdc.contract == "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    with pytest.raises(Conflict), ws.platform.unit_of_work() as uow:
        vaults.add_asset(uow, owner, symbol="USDC", network="hardhat")


def test_roles_that_may_not_manage_vaults_are_refused(ws: Workspace) -> None:
    for member in (ws.signer, ws.approver, ws.viewer):
        with pytest.raises(Forbidden), ws.platform.unit_of_work() as uow:
            vaults.configure_network(uow, member.principal, name="x", kind="solana")
        with pytest.raises(Forbidden):
            vaults.check_vault_request(
                member.principal, name="v", schemes=["eddsa-ed25519"], min_signers=2, max_signers=3
            )
    with pytest.raises(ValidationError):
        vaults.check_vault_request(
            ws.owner.principal, name="v", schemes=["rsa"], min_signers=2, max_signers=3
        )
    with pytest.raises(ValidationError):
        vaults.check_vault_request(
            ws.owner.principal, name="v", schemes=["eddsa-ed25519"], min_signers=4, max_signers=3
        )


def test_a_quorum_is_checked_against_what_the_backend_can_make(ws: Workspace) -> None:
    """The co-signer backend makes keys over every co-signer of the workspace (3), the
    local ceremony over 2 to 16 parties; min_signers is 2 to max_signers either way."""
    owner = ws.owner.principal

    def check(min_signers: int, max_signers: int, choices: tuple[int, ...]) -> None:
        vaults.check_vault_request(
            owner,
            name="v",
            schemes=["eddsa-ed25519"],
            min_signers=min_signers,
            max_signers=max_signers,
            max_signers_choices=choices,
        )

    check(2, 3, (3,))
    check(3, 3, (3,))
    check(2, 16, PARTY_COUNTS)
    for min_signers, max_signers, choices, field, reason in (
        (2, 5, (3,), "max_signers", "must be 3 with this server's signing backend (not 5)"),
        (2, 17, PARTY_COUNTS, "max_signers", "must be 2 to 16"),
        (2, 4, (3, 5), "max_signers", "must be 3 or 5"),
        (1, 3, (3,), "min_signers", "must be 2 to max_signers (3), not 1"),
        (4, 3, (3,), "min_signers", "must be 2 to max_signers (3), not 4"),
    ):
        with pytest.raises(ValidationError) as caught:
            check(min_signers, max_signers, choices)
        assert caught.value.field == field
        assert caught.value.reason.startswith(reason)


def test_ed25519_vault_signs_a_solana_transfer_that_solders_verifies(
    ws: Workspace, tmp_path: Path
) -> None:
    """FROST (RFC 9591, Ed25519) through the local ceremony backend, shares in custody;
    the signature is checked by solders (Transaction.verify) and PyNaCl."""
    owner = ws.owner.principal
    backend = LocalCeremonyBackend(open_custody(tmp_path / "custody"))
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="solana", kind="solana")
        vaults.add_asset(uow, owner, symbol="SOL", network="solana")
    vault_id = str(uuid.uuid4())
    keys = vaults.generate_vault_keys(
        backend,
        workspace_id=owner.workspace_id,
        vault_id=vault_id,
        schemes=["eddsa-ed25519"],
        min_signers=2,
        max_signers=3,
    )
    with ws.platform.unit_of_work() as uow:
        vault = vaults.record_vault(
            uow, owner, vault_id=vault_id, name="sol", keys=keys, backend_name=backend.name
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=vault.id, asset="SOL")
    address = wallet.addresses[0]
    assert address.path == "m"
    payer = Pubkey.from_string(address.address)
    instruction = transfer(
        TransferParams(from_pubkey=payer, to_pubkey=Pubkey.new_unique(), lamports=5000)
    )
    unsigned_message = Message.new_with_blockhash([instruction], payer, Hash.new_unique())
    signature = backend.sign(
        SignRequest(
            workspace_id=owner.workspace_id,
            vault_id=vault.id,
            backend_key_id=keys[0].backend_key_id,
            scheme="eddsa-ed25519",
            path="m",
            payload_kind="solana_message",
            payload=bytes(unsigned_message),
            session="test:1",
        )
    )
    VerifyKey(bytes(payer)).verify(bytes(unsigned_message), signature)
    signed = SolanaTransaction.populate(unsigned_message, [Signature.from_bytes(signature)])
    signed.verify()
    assert signed.message.account_keys[0] == payer
    # A Solana wallet has exactly one address (no Ed25519 derivation yet).
    with pytest.raises(ValidationError), ws.platform.unit_of_work() as uow:
        wallets.new_address(uow, owner, wallet.id)


def test_evm_addresses_follow_the_derivation_path(ws: Workspace, tmp_path: Path) -> None:
    """Addresses m/44/60/<vault>/0/<i> differ per index; the pipeline tests show that the
    threshold signature at that path recovers (eth-account) to the same address."""
    from tests.service.pipeline_support import ReusedKeygenBackend, make_eth_vault

    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    funded = make_eth_vault(ws, backend, "http://127.0.0.1:1", 31337)
    with ws.platform.unit_of_work() as uow:
        second = wallets.new_address(uow, ws.owner.principal, funded.wallet_id)
        third = wallets.new_address(uow, ws.owner.principal, funded.wallet_id)
        view = wallets.get_wallet(uow, ws.owner.principal, funded.wallet_id)
    assert [a.path for a in view.addresses] == ["m/44/60/0/0/0", "m/44/60/0/0/1", "m/44/60/0/0/2"]
    assert len({funded.address, second.address, third.address}) == 3
    # Other roles may read but not derive; other workspaces cannot see the wallet.
    with pytest.raises(Forbidden), ws.platform.unit_of_work() as uow:
        wallets.new_address(uow, ws.viewer.principal, funded.wallet_id)
    other = make_workspace(ws.platform, "globex")
    with pytest.raises(NotFound), ws.platform.unit_of_work() as uow:
        wallets.get_wallet(uow, other.owner.principal, funded.wallet_id)


@pytest.mark.parametrize(
    ("min_signers", "max_signers", "overlap"),
    [(2, 3, True), (3, 5, True), (2, 4, False), (3, 6, False), (2, 2, True)],
)
def test_a_key_whose_quorums_can_be_disjoint_carries_a_warning(
    min_signers: int, max_signers: int, overlap: bool
) -> None:
    """Records are shared within a quorum: replays and velocity hold across quorums only
    when any two quorums share a co-signer (docs/cosigner.md)."""
    key = VaultKeyView("ecdsa-secp256k1", "02" * 33, "00" * 32, min_signers, max_signers, (), "x")
    assert key.quorums_overlap is overlap
    if overlap:
        assert key.warning is None
    else:
        assert key.warning is not None
        assert f"{min_signers}-of-{max_signers}" in key.warning
        assert "disjoint quorums" in key.warning
