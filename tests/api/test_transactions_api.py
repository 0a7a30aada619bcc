"""The custody routes through the SDK against a live server, on SQLite and PostgreSQL:
a vault made by the local ceremony backend, a wallet, a signed policy applied through the
API, a transfer that needs an approval, the approval, signing, broadcast to hardhat,
completion; RBAC refusals; tenant isolation; cursor pagination; 50 concurrent creates
with one Idempotency-Key make one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from sqlalchemy import func, select

from shardvault.api import create_app
from shardvault.sdk import (
    ApiKeyCredentials,
    AsyncShardvaultClient,
    ShardvaultClient,
    generate_key_pair,
)
from shardvault.sdk.custody import VaultCreation, Wallet, sign_approval, sign_bundle
from shardvault.sdk.errors import ApiError
from shardvault.service.initiator_requests import forwarded_request, signed_created_at
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.signing import SigningError
from shardvault.store.models import AuditEvent
from shardvault.store.models_initiators import TransactionInitiatorRequest
from shardvault.store.models_vaults import Transaction
from tests.api.support import SwitchableApp, Tenant, count_rows, signed_post, writing_meanwhile
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import ReusedKeygenBackend, fund, open_custody
from tests.waiting import eventually

__all__ = ["hardhat_node"]

RECIPIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


@pytest.fixture
def runtime(tmp_path: Path) -> PipelineRuntime:
    return PipelineRuntime(
        ReusedKeygenBackend(open_custody(tmp_path / "custody")), confirmation_poll_s=0.05
    )


@pytest.fixture
def custody_app(platform: Platform, runtime: PipelineRuntime) -> FastAPI:
    return create_app(platform, pipeline_runtime=runtime)


@pytest.fixture
def url(custody_app: FastAPI, _loopback: tuple[SwitchableApp, str]) -> Iterator[str]:
    switch, base = _loopback
    switch.target = custody_app
    try:
        yield base
    finally:
        switch.target = None


def _member(client: ShardvaultClient, email: str, role: str) -> ApiKeyCredentials:
    private_pem, public_pem = generate_key_pair("EdDSA")
    user = client.create_user(name=email.split("@")[0], email=email, role=role)  # type: ignore[arg-type]
    key = client.create_api_key(user_id=user.id, name="key", public_key_pem=public_pem)
    return ApiKeyCredentials.from_pem(key.id, private_pem)


def _raw(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _eth_wallet(owner: ShardvaultClient, node: HardhatNode) -> Wallet:
    """The hardhat network, its ETH asset, a vault and its ETH wallet."""
    owner.configure_network(name="hardhat", kind="evm", chain_id=node.chain_id, rpc_url=node.url)
    owner.add_asset(symbol="ETH", network="hardhat")
    vault = owner.create_vault(name="ops")
    return owner.create_wallet(vault_id=vault.id, asset="ETH")


def test_transfer_with_approval_end_to_end(
    url: str,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    runtime: PipelineRuntime,
    hardhat_node: HardhatNode,
) -> None:
    admin_key = Ed25519PrivateKey.generate()
    carol_key = Ed25519PrivateKey.generate()
    with ShardvaultClient(url, tenant.owner) as owner:
        signer = _member(owner, "sam@acme.example", "signer")
        approver = _member(owner, "carol@acme.example", "approver")
        viewer = _member(owner, "victor@acme.example", "viewer")
        owner.configure_network(
            name="hardhat", kind="evm", chain_id=hardhat_node.chain_id, rpc_url=hardhat_node.url
        )
        owner.add_asset(symbol="ETH", network="hardhat", price="3000")
        vault = owner.create_vault(name="ops", schemes=["ecdsa-secp256k1"])
        assert vault.keys[0].min_signers == 2
        assert vault.keys[0].cosigners == [
            "party-1",
            "party-2",
            "party-3",
        ]
        wallet = owner.create_wallet(vault_id=vault.id, asset="ETH")
        address = wallet.addresses[0]
        assert address.path == f"m/44/60/{vault.number}/0/0"
        assert owner.new_address(wallet.id).path == f"m/44/60/{vault.number}/0/1"
        policy = owner.create_policy(
            document={
                "format": "shardvault.policy/v1",
                "version": 1,
                "reference_currency": "USD",
                "approvers": {
                    "carol@acme.example": {"algorithm": "ed25519", "public_key": _raw(carol_key)}
                },
                "groups": {"treasury": ["carol@acme.example"]},
                "rules": [
                    {
                        "name": "needs-carol",
                        "action": "require_approvals",
                        "approvals": {
                            "groups": [{"group": "treasury", "count": 1}],
                            "deadline": "1h",
                        },
                    }
                ],
            }
        )
        dry = owner.dry_run_policy(
            policy.id,
            request={
                "digest": "ab" * 32,
                "operation": "transfer",
                "created_at": 1764064800,
                "initiator": {"type": "user", "id": "sam@acme.example"},
                "source": {"vault": "ops"},
                "network": "hardhat",
                "destination": RECIPIENT,
                "asset": {"id": "ETH", "decimals": 18},
                "amount": "1",
            },
            now=1764064800,
        )
        assert dry["decision"] == "require_approvals"
        members = [{"id": "admin", "algorithm": "ed25519", "public_key": _raw(admin_key)}]
        proposed = owner.propose_policy(
            policy.id, admins={"quorum": 1, "members": members}, initiators_from_api_keys=True
        )
        assert proposed.signing_message is not None
        # Activation without the quorum's signature is refused.
        with pytest.raises(ApiError) as refused:
            owner.activate_policy(policy.id)
        assert refused.value.status == 409
        owner.sign_policy(
            policy.id, signer="admin", signature=sign_bundle(admin_key, proposed.signing_message)
        )
        assert owner.activate_policy(policy.id).status == "active"
    fund(hardhat_node, address.address)

    with ShardvaultClient(url, viewer) as as_viewer:
        with pytest.raises(ApiError) as forbidden:
            as_viewer.create_transaction(wallet_id=wallet.id, destination=RECIPIENT, amount="1")
        assert forbidden.value.status == 403
    # The refusal changed nothing but left its audit event in the workspace's chain.
    with platform.database.transaction() as session:
        refusals = session.scalars(
            select(AuditEvent.details).where(
                AuditEvent.workspace_id == tenant.workspace_id,
                AuditEvent.action == "request.refused",
            )
        ).all()
        assert session.scalar(select(func.count()).select_from(Transaction)) == 0
    assert any('"problem":"forbidden"' in d and '"path":"/v1/transactions"' in d for d in refusals)
    with ShardvaultClient(url, signer) as as_signer:
        with pytest.raises(ApiError) as bad_checksum:
            as_signer.create_transaction(
                wallet_id=wallet.id, destination=RECIPIENT.replace("F", "f", 1), amount="1"
            )
        assert bad_checksum.value.status == 400
        tx = as_signer.create_transaction(wallet_id=wallet.id, destination=RECIPIENT, amount="1")
        assert tx.status == "submitted"
    worker = PipelineWorker(platform, runtime)
    worker.drain(timeout_s=30)
    with ShardvaultClient(url, approver) as as_approver:
        pending = as_approver.get_transaction(tx.id)
        assert pending.status == "pending_approval"
        assert pending.approvals_needed == {"treasury": 1}
        # A statement signed two hours ago (past its 1h lifetime) and one dated an hour
        # ahead are refused with a typed 403, and store nothing.
        for signed_at, error in (
            (int(time.time()) - 7200, "ApprovalExpiredError"),
            (int(time.time()) + 3600, "ApprovalFromTheFutureError"),
        ):
            statement = {
                "approver": "carol@acme.example",
                "decision": "approve",
                "policy_version": 1,
                "signed_at": signed_at,
            }
            signature = sign_approval(carol_key, intent_digest=pending.intent_digest, **statement)
            with pytest.raises(ApiError) as refused:
                as_approver.submit_approval(tx.id, **statement, signature=signature)
            assert (refused.value.status, refused.value.slug) == (403, "approval-refused")
            assert error in refused.value.detail
        assert as_approver.get_transaction(tx.id).approvals == []
        approved = as_approver.approve_transaction(
            tx.id, approver="carol@acme.example", key=carol_key
        )
        assert approved.status == "approved"
    worker.drain(timeout_s=60)
    with ShardvaultClient(url, tenant.owner) as owner:
        done = owner.get_transaction(tx.id)
        assert done.status == "completed"
        assert done.tx_hash is not None
        assert owner.verify_audit().valid
    # Another workspace sees nothing of it.
    with ShardvaultClient(url, other_tenant.owner) as stranger:
        with pytest.raises(ApiError) as hidden:
            stranger.get_transaction(tx.id)
        assert hidden.value.status == 404
        assert stranger.list_transactions().data == []


def test_list_with_cursor_cancel_and_concurrent_idempotent_creates(
    url: str, tenant: Tenant, platform: Platform, hardhat_node: HardhatNode
) -> None:
    with ShardvaultClient(url, tenant.owner) as owner:
        wallet = _eth_wallet(owner, hardhat_node)
        ids = {
            owner.create_transaction(wallet_id=wallet.id, destination=RECIPIENT, amount="0.01").id
            for _ in range(5)
        }
        seen: list[str] = []
        cursor = None
        while True:
            page = owner.list_transactions(limit=2, cursor=cursor)
            seen.extend(t.id for t in page.data)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(seen) == sorted(ids)
        cancelled = owner.cancel_transaction(next(iter(ids)), reason="changed my mind")
        assert cancelled.status == "cancelled"
        with pytest.raises(ApiError) as again:
            owner.cancel_transaction(next(iter(ids)))
        assert again.value.status == 409
        # Only a transaction sent and not yet mined can be replaced.
        with pytest.raises(ApiError) as unsent:
            owner.replace_transaction(next(iter(ids)), mode="speed_up")
        assert unsent.value.status == 409
        assert "only a transaction sent" in str(unsent.value)
        assert owner.list_replacements(next(iter(ids))) == []
        with pytest.raises(ApiError) as unknown:
            owner.list_replacements("00000000-0000-0000-0000-000000000000")
        assert unknown.value.status == 404
        with pytest.raises(ApiError) as bad_mode:
            owner.replace_transaction(next(iter(ids)), mode="double_spend")  # type: ignore[arg-type]
        assert bad_mode.value.status == 400
        assert "speed_up" in str(bad_mode.value)

    async def burst() -> list[str]:
        async with AsyncShardvaultClient(url, tenant.owner) as client:
            results = await asyncio.gather(
                *(
                    client.create_transaction(
                        wallet_id=wallet.id,
                        destination=RECIPIENT,
                        amount="0.02",
                        idempotency_key="burst-1",
                    )
                    for _ in range(50)
                )
            )
        return [r.id for r in results]

    created = asyncio.run(burst())
    assert len(set(created)) == 1
    with platform.database.transaction() as session:
        count = session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.amount == "0.02")
        )
        submitted = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "transaction.submitted", AuditEvent.resource_id == created[0]
            )
        )
    assert count == 1
    assert submitted == 1


def test_a_transfer_keeps_its_create_request_exactly_as_signed(
    url: str, tenant: Tenant, platform: Platform, hardhat_node: HardhatNode
) -> None:
    """The body is kept byte for byte (here with spaces the SDK would not send), so a
    co-signer can check it against the token's bodyHash; the token's iat is the time the
    co-signers are told the transfer was created."""
    with ShardvaultClient(url, tenant.owner) as owner:
        wallet = _eth_wallet(owner, hardhat_node)
    body = (
        b'{ "wallet_id": "'
        + wallet.id.encode()
        + b'", "destination": "'
        + RECIPIENT.encode()
        + b'", "amount": "0.25" }'
    )
    with httpx.Client(base_url=url, timeout=30) as http:
        response = signed_post(http, tenant, "/v1/transactions", body, "create-1")
        assert response.status_code == 201, response.text
        before = count_rows(platform, TransactionInitiatorRequest)
        refused = signed_post(http, tenant, "/v1/transactions", b'{"wallet_id": "x"}', "create-2")
        assert refused.status_code == 400, refused.text
    # A refused create keeps nothing.
    assert count_rows(platform, TransactionInitiatorRequest) == before
    with platform.unit_of_work(read_only=True) as uow:
        tx = uow.session.get(Transaction, response.json()["id"])
        assert tx is not None
        forwarded = forwarded_request(uow, tx)
        assert forwarded is not None
        assert base64.b64decode(forwarded["body"]) == body
        payload = forwarded["token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert (claims["sub"], claims["uri"]) == (tenant.owner.api_key_id, "/v1/transactions")
        assert signed_created_at(uow, tx) == claims["iat"]


def test_a_transfer_is_checked_outside_the_write_transaction(
    url: str,
    tenant: Tenant,
    platform: Platform,
    hardhat_node: HardhatNode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request's wallet, asset, network, address, destination and amount are checked
    on a read snapshot: another writer commits meanwhile (on SQLite it would wait for the
    single write lock otherwise). A refused request leaves its idempotency key unused."""
    from shardvault.service import transactions as svc

    with ShardvaultClient(url, tenant.owner) as owner:
        wallet = _eth_wallet(owner, hardhat_node)
        written: list[bool] = []
        prepare = writing_meanwhile(platform, svc.prepare_transfer, written)
        monkeypatch.setattr(svc, "prepare_transfer", prepare)
        first = owner.create_transaction(
            wallet_id=wallet.id, destination=RECIPIENT, amount="0.01", idempotency_key="k-1"
        )
        assert written == [True]
        again = owner.create_transaction(
            wallet_id=wallet.id, destination=RECIPIENT, amount="0.01", idempotency_key="k-1"
        )
        assert again.id == first.id
        with pytest.raises(ApiError) as refused:
            owner.create_transaction(
                wallet_id=wallet.id, destination="0x1234", amount="0.01", idempotency_key="k-2"
            )
        assert refused.value.status == 400
        assert "destination: must be 0x followed by 40 hex digits" in str(refused.value)
        assert str(refused.value).count("destination:") == 1  # the field named once
        later = owner.create_transaction(
            wallet_id=wallet.id, destination=RECIPIENT, amount="0.03", idempotency_key="k-2"
        )
        assert later.id != first.id
        assert later.amount == "0.03"


class _HeldKeygen(ReusedKeygenBackend):
    """Key generation that waits until the test lets it go (and counts its calls)."""

    def __init__(self, custody: object) -> None:
        super().__init__(custody)  # type: ignore[arg-type]
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def keygen(self, **kwargs: object) -> object:  # type: ignore[override]
        self.calls += 1
        self.started.set()
        assert self.release.wait(30)
        return super().keygen(**kwargs)  # type: ignore[arg-type]


def test_a_copy_of_a_vault_request_sent_during_its_key_generation_is_a_replay(
    tenant: Tenant, platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A vault request records its token's nonce before its key generation (seconds to
    minutes), not with the vault afterwards: the same signed request sent meanwhile is
    refused at once, and only one key generation runs."""
    backend = _HeldKeygen(open_custody(tmp_path / "held"))
    switch, base = request.getfixturevalue("_loopback")
    switch.target = create_app(platform, pipeline_runtime=PipelineRuntime(backend))
    body = json.dumps({"name": "ops", "schemes": ["ecdsa-secp256k1"]}).encode()
    headers = {
        "X-API-Key": tenant.owner.api_key_id,
        "Authorization": f"Bearer {tenant.owner.sign_request('POST', '/v1/vaults', body)}",
        "Content-Type": "application/json",
        "Idempotency-Key": "held-vault",
    }
    try:
        with httpx.Client(base_url=base, timeout=60) as http, ThreadPoolExecutor(1) as pool:
            first = pool.submit(http.post, "/v1/vaults", headers=headers, content=body)
            assert backend.started.wait(30)
            copy = http.post("/v1/vaults", headers=headers, content=body)
            assert copy.status_code == 401, copy.text
            assert copy.json()["type"].endswith("replayed-request")
            backend.release.set()
            assert first.result(60).status_code == 201
    finally:
        backend.release.set()
        switch.target = None
    assert backend.calls == 1


def test_vault_creation_refusals_cost_no_key_generation(
    url: str, tenant: Tenant, platform: Platform, request: pytest.FixtureRequest
) -> None:
    body = {"name": "ops", "schemes": ["ecdsa-secp256k1"], "min_signers": 2, "max_signers": 3}
    with ShardvaultClient(url, tenant.owner) as owner:
        started = time.perf_counter()
        with pytest.raises(ApiError) as missing_key:
            owner.request("POST", "/v1/vaults", json_body=body)
        assert missing_key.value.status == 400
        assert time.perf_counter() - started < 2  # refused before any key generation
        assert owner.list_vaults().data == []
    # A server without a signing backend answers 503 (the SDK retries 503, so one attempt).
    switch, base = request.getfixturevalue("_loopback")
    switch.target = create_app(platform)
    with ShardvaultClient(base, tenant.owner, max_attempts=1) as owner:
        with pytest.raises(ApiError) as unavailable:
            owner.create_vault(name="ops")
        assert unavailable.value.status == 503


class _SteppedKeygen(ReusedKeygenBackend):
    """Key generation that reports five steps, then waits until the test lets it go."""

    def __init__(self, custody: object, *, fail: bool = False) -> None:
        super().__init__(custody)  # type: ignore[arg-type]
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def keygen(self, **kwargs: object) -> object:  # type: ignore[override]
        progress = kwargs.get("progress")
        assert callable(progress)
        progress(5, 21)
        self.started.set()
        assert self.release.wait(30)
        if self.fail:
            raise SigningError("co-signer 3 did not answer")
        return super().keygen(**kwargs)  # type: ignore[arg-type]


def _serve(request: pytest.FixtureRequest, platform: Platform, backend: object) -> str:
    switch, base = request.getfixturevalue("_loopback")
    switch.target = create_app(platform, pipeline_runtime=PipelineRuntime(backend))  # type: ignore[arg-type]
    request.addfinalizer(lambda: setattr(switch, "target", None))
    return str(base)


def test_a_vault_request_tells_how_far_its_key_generation_has_come(
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    backend = _SteppedKeygen(open_custody(tmp_path / "stepped"))
    base = _serve(request, platform, backend)
    seen: list[VaultCreation] = []
    try:
        # Two clients: a synchronous client runs one call at a time.
        with (
            ShardvaultClient(base, tenant.owner) as creator,
            ShardvaultClient(base, tenant.owner) as owner,
            ThreadPoolExecutor(1) as pool,
        ):
            creating = pool.submit(
                creator.create_vault,
                name="ops",
                idempotency_key="vault-1",
                on_progress=seen.append,
            )
            assert backend.started.wait(30)
            now = owner.request("GET", "/v1/vault-creations/vault-1").json()
            assert now["state"] == "generating"
            assert (now["steps_done"], now["steps_total"]) == (5, 27)
            assert now["schemes"] == [
                {"scheme": "ecdsa-secp256k1", "steps_done": 5, "steps_total": 27}
            ]
            with ShardvaultClient(base, other_tenant.owner) as stranger:
                with pytest.raises(ApiError) as hidden:
                    stranger.request("GET", "/v1/vault-creations/vault-1")
                assert hidden.value.status == 404
            with pytest.raises(ApiError) as unknown:
                owner.request("GET", "/v1/vault-creations/vault-2")
            assert unknown.value.status == 404
            assert eventually(lambda: any(c.steps_done == 5 for c in seen))
            backend.release.set()
            vault = creating.result(60)
            done = owner.request("GET", "/v1/vault-creations/vault-1").json()
    finally:
        backend.release.set()
    assert now["vault_id"] == vault.id == done["vault_id"]
    assert (done["state"], done["steps_done"], done["steps_total"]) == ("finished", 27, 27)
    assert all(c.vault_id == vault.id for c in seen)
    # Progress reports generating; the poller may also see the finish before the answer
    # to the request arrives, and then only as its last report.
    states = [c.state for c in seen]
    assert states
    assert set(states[:-1]) <= {"generating"}
    assert states[-1] in ("generating", "finished")


def test_a_failed_key_generation_is_reported_as_failed(
    tenant: Tenant, platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = _SteppedKeygen(open_custody(tmp_path / "failing"), fail=True)
    base = _serve(request, platform, backend)
    with ShardvaultClient(base, tenant.owner, max_attempts=1) as owner:
        with ThreadPoolExecutor(1) as pool:
            # The call runs in the pool; this thread only waits for it to end.
            creating = pool.submit(owner.create_vault, name="ops", idempotency_key="vault-f")
            assert backend.started.wait(30)
            backend.release.set()
            with pytest.raises(ApiError):
                creating.result(60)
        state = owner.request("GET", "/v1/vault-creations/vault-f").json()
        assert state["state"] == "failed"
        assert state["steps_done"] == 5
        assert owner.list_vaults().data == []
