"""Shared set-up of the vault and transaction tests: custody on disk, the local ceremony
backend with TEST-ONLY Paillier primes, a workspace with a signer, an approver and an
admin, a hardhat network, a 2-of-3 vault with an ETH wallet, and signed policies.

One real CGGMP21 key generation (aux info with all its proofs, ~5 s) runs per test
session; :class:`ReusedKeygenBackend` re-seals that key's encrypted shares under each new
vault's slot, so every test still signs through the real custody layer and protocol.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_abi.abi import encode as abi_encode

from shardvault.chains.ethereum import ERC20_TRANSFER, encode_call, parse_address
from shardvault.custody import LocalShareStore, SecretBytes, ShareAddress, ShareCustody, ShareSlot
from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.devchain import HardhatNode
from shardvault.sdk.auth import ApiKeyCredentials
from shardvault.service import policies, transactions, vaults, wallets
from shardvault.service.context import Principal
from shardvault.service.initiator_requests import SignedCreateRequest
from shardvault.service.platform import Platform
from shardvault.service.signing import (
    GeneratedKey,
    KeygenProgress,
    LocalCeremonyBackend,
    Scheme,
    SigningBackend,
    keygen_steps,
)
from shardvault.store.models import Role
from tests.policy._support import statement_message

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY_PRIMES = REPO_ROOT / "tests" / "fixtures" / "test_only_paillier.json"
PASSPHRASE = b"test-only keyring passphrase"


def open_custody(directory: Path) -> ShareCustody:
    """A local keyring and share store under ``directory`` (created on first use)."""
    keyring = directory / "keyring"
    passphrase = SecretBytes(PASSPHRASE)
    if keyring.exists() and any(keyring.glob("*.key")):
        kek_id = sorted(keyring.glob("*.key"))[0].stem
        backend = LocalBackend(keyring, passphrase, kek_id, DEVELOPMENT_COST)
    else:
        backend = LocalBackend.initialize(keyring, passphrase, DEVELOPMENT_COST)
    return ShareCustody(backend, LocalShareStore(directory / "shares"))


class ReusedKeygenBackend(LocalCeremonyBackend):
    """The local ceremony backend, with ECDSA key generation run once per process and
    its encrypted shares re-sealed for every later vault (test speed only)."""

    _template: GeneratedKey | None = None
    _template_custody: ShareCustody | None = None

    def __init__(self, custody: ShareCustody, *, presignature_pool: int = 0) -> None:
        super().__init__(
            custody, test_only_primes=TEST_ONLY_PRIMES, presignature_pool=presignature_pool
        )
        self.custody = custody

    def keygen(
        self,
        *,
        workspace_id: str,
        vault_id: str,
        scheme: Scheme,
        min_signers: int,
        max_signers: int,
        initiator: str = "system",
        progress: KeygenProgress | None = None,
    ) -> GeneratedKey:
        if scheme != "ecdsa-secp256k1" or (min_signers, max_signers) != (2, 3):
            return super().keygen(
                workspace_id=workspace_id,
                vault_id=vault_id,
                scheme=scheme,
                min_signers=min_signers,
                max_signers=max_signers,
                progress=progress,
            )
        cls = ReusedKeygenBackend
        if cls._template is None or cls._template_custody is None:
            cls._template = super().keygen(
                workspace_id="template",
                vault_id="template",
                scheme=scheme,
                min_signers=2,
                max_signers=3,
            )
            cls._template_custody = self.custody
        template = cls._template
        for party in template.cosigners:
            source = ShareAddress("template", "template", template.backend_key_id, party)
            with cls._template_custody.load_share(source) as opened:
                target = ShareSlot(
                    ShareAddress(workspace_id, vault_id, template.backend_key_id, party), 0
                )
                self.custody.store_share(target, opened.share, expected_revision=0)
        if progress is not None:
            steps = keygen_steps(scheme, max_signers)
            progress(steps, steps)
        return template


@dataclass
class Member:
    """A user with an API key principal (and its TEST-ONLY private key, which signs the
    requests the member creates transfers with) and an Ed25519 approval key."""

    principal: Principal
    email: str
    approval_key: Ed25519PrivateKey
    credentials: ApiKeyCredentials

    @property
    def approval_public_hex(self) -> str:
        return self.approval_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def statement(
        self,
        digest_hex: str,
        version: int,
        verdict: str = "approve",
        *,
        signed_at: int | None = None,
    ) -> dict[str, object]:
        """This member's signed statement (format v2), dated ``signed_at`` (default:
        now), in the keywords ``submit_approval`` takes."""
        body, message = statement_message(
            self.email,
            bytes.fromhex(digest_hex),
            signed_at=int(time.time()) if signed_at is None else signed_at,
            version=version,
            decision=verdict,
        )
        del body["digest"]
        return {**body, "signature": self.approval_key.sign(message).hex()}


def _key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"test:{name}".encode()).digest())


@dataclass
class Workspace:
    platform: Platform
    owner: Member
    signer: Member
    approver: Member
    outsider: Member
    viewer: Member
    admin_key: Ed25519PrivateKey


def make_workspace(platform: Platform, name: str = "acme") -> Workspace:
    """A workspace with an owner, a signer, two approvers (one not in any policy group
    unless the policy says so) and a viewer; principals are built directly (the API's
    authentication is tested in tests/api)."""
    from shardvault.audit import Actor
    from shardvault.sdk import generate_key_pair
    from shardvault.service.workspaces import create_api_key, create_user, create_workspace
    from shardvault.store.models import KeyAlgorithm

    owner_private, owner_pem = generate_key_pair("EdDSA")
    with platform.unit_of_work() as uow:
        workspace, owner_user, owner_key = create_workspace(
            uow,
            name=name,
            owner_name="Olivia",
            owner_email=f"olivia@{name}.example",
            owner_key_algorithm=KeyAlgorithm.ED25519,
            owner_public_key_pem=owner_pem,
            actor=Actor.cli(),
        )
    owner = Principal(workspace.id, owner_key.id, owner_user.id, Role.OWNER)

    def member(person: str, role: Role) -> Member:
        private, pem = generate_key_pair("EdDSA")
        email = f"{person}@{name}.example"
        with platform.unit_of_work() as uow:
            user = create_user(uow, owner, name=person, email=email, role=role)
            key = create_api_key(
                uow,
                owner,
                user_id=user.id,
                name=f"{person} key",
                algorithm=KeyAlgorithm.ED25519,
                public_key_pem=pem,
            )
        credentials = ApiKeyCredentials.from_pem(key.id, private)
        return Member(
            Principal(workspace.id, key.id, user.id, role), email, _key(email), credentials
        )

    return Workspace(
        platform,
        Member(
            owner,
            f"olivia@{name}.example",
            _key(f"olivia@{name}.example"),
            ApiKeyCredentials.from_pem(owner_key.id, owner_private),
        ),
        member("sam", Role.SIGNER),
        member("carol", Role.APPROVER),
        member("mallory", Role.APPROVER),
        member("victor", Role.VIEWER),
        _key(f"admin@{name}"),
    )


def treasury_policy(
    ws: Workspace, rules: list[dict[str, object]], *, version: int = 1
) -> dict[str, object]:
    """A policy of ``rules`` whose group ``treasury`` is the workspace's approver (with
    their approval key)."""
    return {
        "format": "shardvault.policy/v1",
        "version": version,
        "reference_currency": "USD",
        "approvers": {
            ws.approver.email: {
                "algorithm": "ed25519",
                "public_key": ws.approver.approval_public_hex,
            }
        },
        "groups": {"treasury": [ws.approver.email]},
        "rules": rules,
    }


def policy_document(ws: Workspace, *, version: int, limit_eth: str) -> dict[str, object]:
    """Transfers up to ``limit_eth`` are allowed; above it carol must approve; transfers
    to the blocked test address are blocked."""
    document = treasury_policy(
        ws,
        [
            {
                "name": "blocked-destination",
                "when": {"destination": {"address_book": ["sanctioned"]}},
                "action": "block",
            },
            {
                "name": "small",
                "when": {
                    "initiator": {"groups": ["traders"]},
                    "asset": ["ETH"],
                    "amount": {"up_to": limit_eth},
                },
                "action": "allow",
            },
            {
                "name": "large",
                "when": {"initiator": {"groups": ["traders"]}},
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "4h"},
            },
        ],
        version=version,
    )
    document["approvers"] = {
        **document["approvers"],  # type: ignore[dict-item]
        ws.outsider.email: {"algorithm": "ed25519", "public_key": ws.outsider.approval_public_hex},
    }
    document["groups"] = {"treasury": [ws.approver.email], "traders": [ws.signer.email]}
    return document


SANCTIONED = "0x000000000000000000000000000000000000dEaD"


def activate_policy(
    ws: Workspace,
    document: dict[str, object],
    *,
    sanctioned_entry: bool = True,
    assets: dict[str, object] | None = None,
) -> int:
    """Draft, propose (pinning the admin key on the first bundle; with the asset
    registry ``assets``, or the one of the workspace's tables), sign and activate; with
    ``sanctioned_entry``, first put the blocked test address in the address book (on the
    hardhat network)."""
    from shardvault.service import addressbook

    owner = ws.owner.principal
    admin_public = ws.admin_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    with ws.platform.unit_of_work() as uow:
        if sanctioned_entry and not any(
            e.name == "sanctioned" for e in addressbook.list_entries(uow, owner)
        ):
            addressbook.add_entry(
                uow, owner, name="sanctioned", network="hardhat", address=SANCTIONED
            )
        draft = policies.create_draft(uow, owner, document=document)
        proposed = policies.propose(
            uow,
            owner,
            draft.id,
            admins={
                "quorum": 1,
                "members": [{"id": "admin", "algorithm": "ed25519", "public_key": admin_public}],
            },
            # Rules on the initiator need the keys that sign its requests in the bundle.
            initiators_from_api_keys=True,
            assets=assets,
        )
        assert proposed.signing_message is not None
        signature = ws.admin_key.sign(bytes.fromhex(proposed.signing_message)).hex()
        policies.sign(uow, owner, draft.id, signer="admin", signature=signature)
        active = policies.activate(uow, owner, draft.id)
    return active.version


@dataclass
class Funded:
    vault_id: str
    wallet_id: str
    address: str


def make_vault_wallet(
    ws: Workspace, backend: SigningBackend, asset: str, schemes: Sequence[str]
) -> Funded:
    """A 2-of-3 vault "treasury" with keys for ``schemes`` and its ``asset`` wallet
    (address 0); the network and asset must exist."""
    import uuid

    owner = ws.owner.principal
    vault_id = str(uuid.uuid4())
    keys = vaults.generate_vault_keys(
        backend,
        workspace_id=owner.workspace_id,
        vault_id=vault_id,
        schemes=list(schemes),  # type: ignore[arg-type]
        min_signers=2,
        max_signers=3,
    )
    with ws.platform.unit_of_work() as uow:
        vault = vaults.record_vault(
            uow, owner, vault_id=vault_id, name="treasury", keys=keys, backend_name=backend.name
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=vault.id, asset=asset)
    return Funded(vault.id, wallet.id, wallet.addresses[0].address)


def make_eth_vault(
    ws: Workspace, backend: LocalCeremonyBackend, rpc_url: str, chain_id: int
) -> Funded:
    """A network, an ETH asset, a 2-of-3 ECDSA vault and its ETH wallet (address 0)."""
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(
            uow, owner, name="hardhat", kind="evm", chain_id=chain_id, rpc_url=rpc_url
        )
        vaults.add_asset(uow, owner, symbol="ETH", network="hardhat", price="3000")
    return make_vault_wallet(ws, backend, "ETH", ["ecdsa-secp256k1"])


def fund(node: HardhatNode, address: str, ether: int = 10) -> None:
    """Send ``ether`` from hardhat's first (unlocked) dev account to ``address``."""
    node.fund(address, ether * 10**18)


def create_signed_transfer(
    ws: Workspace,
    member: Member,
    *,
    wallet_id: str,
    destination: str,
    amount: str,
    source_index: int = 0,
) -> transactions.TransactionView:
    """A transfer created as ``POST /v1/transactions`` creates it: the member's signed
    request (JWT and the body the SDK sends) kept with it for the co-signers."""
    document = {
        "wallet_id": wallet_id,
        "destination": destination,
        "amount": amount,
        "source_index": source_index,
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    token = member.credentials.sign_request("POST", "/v1/transactions", body)
    with ws.platform.unit_of_work() as uow:
        return transactions.create_transaction(
            uow,
            member.principal,
            wallet_id=wallet_id,
            destination=destination,
            amount=amount,
            source_index=source_index,
            signed=SignedCreateRequest(token, body),
        )


TEST_TOKEN = REPO_ROOT / "tests" / "fixtures" / "erc20" / "TestToken.json"
"""shardvault's own minimal ERC-20 (bytecode and ABI)."""


def deploy_token(node: HardhatNode) -> str:
    """Deploy TestToken (tests/fixtures/erc20) from hardhat's first dev account; answers
    its address."""
    artifact = json.loads(TEST_TOKEN.read_text())
    data = (
        artifact["bytecode"]
        + abi_encode(["string", "string", "uint256"], ["Test Token", "TST", 10**24]).hex()
    )
    accounts = node.rpc("eth_accounts")
    assert isinstance(accounts, list)
    tx_hash = node.rpc(
        "eth_sendTransaction", [{"from": accounts[0], "data": data, "gas": hex(2_000_000)}]
    )
    receipt = node.rpc("eth_getTransactionReceipt", [tx_hash])
    assert isinstance(receipt, dict)
    return str(receipt["contractAddress"])


def token_call(node: HardhatNode, token: str, to: str, amount: int) -> None:
    """Transfer ``amount`` of ``token`` from hardhat's first dev account to ``to``."""
    accounts = node.rpc("eth_accounts")
    assert isinstance(accounts, list)
    data = "0x" + encode_call(ERC20_TRANSFER, [parse_address(to), amount]).hex()
    node.rpc("eth_sendTransaction", [{"from": accounts[0], "to": token, "data": data}])


@dataclass
class TokenWallets:
    """An ETH wallet and a TST wallet of one vault (the same address), and TST's contract."""

    eth: Funded
    token: str
    tst_wallet_id: str


def make_token_wallets(
    ws: Workspace,
    backend: LocalCeremonyBackend,
    node: HardhatNode,
    *,
    price: str | None = None,
) -> TokenWallets:
    """:func:`make_eth_vault` funded with 10 ETH, TestToken deployed and 50 TST sent to
    the vault's address, the asset TST (18 decimals, ``price`` in the table) and its
    wallet."""
    eth = make_eth_vault(ws, backend, node.url, node.chain_id)
    fund(node, eth.address)
    token = deploy_token(node)
    token_call(node, token, eth.address, 50 * 10**18)
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.add_asset(
            uow,
            owner,
            symbol="TST",
            network="hardhat",
            kind="erc20",
            contract=token,
            decimals=18,
            price=price,
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=eth.vault_id, asset="TST")
    # The token wallet derives the same key, hence the same address, as the ETH wallet.
    assert wallet.addresses[0].address == eth.address
    return TokenWallets(eth, token, wallet.id)
