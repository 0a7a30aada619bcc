"""Throughput and latency of the transaction pipeline with the embedded backend.

A SQLite database in a temporary directory, a hardhat node started here, a 2-of-3
CGGMP21 vault made by the LocalCeremonyBackend (TEST-ONLY primes, shares in a local
keyring), an allow-all policy; then BURST transfers are created at once and one
PipelineWorker takes them to ``completed``. Prints the rate and the p50/p99 latency from
creation to ``signed`` and to ``completed`` (from the audit events' timestamps), and the
mean signing time (presigning on demand plus the online round: there is no presignature
pool yet). Run: ``.venv/bin/python bench/bench_pipeline.py [BURST] [--pool]`` (``--pool``: the
burst is served from a presignature pool filled beforehand).
"""

import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from shardvault.audit import Actor, AuditSigner
from shardvault.custody import LocalShareStore, SecretBytes, ShareCustody
from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.sdk import generate_key_pair
from shardvault.service import policies, transactions, vaults, wallets
from shardvault.service.context import Principal
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.signing import LocalCeremonyBackend
from shardvault.service.workspaces import create_user, create_workspace
from shardvault.store import Database, migrate
from shardvault.store.models import AuditEvent, KeyAlgorithm, Role

REPO = Path(__file__).resolve().parents[1]
PRIMES = REPO / "tests" / "fixtures" / "test_only_paillier.json"
RECIPIENT = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"


def start_hardhat(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    (workdir / "hardhat.config.js").write_text(
        "module.exports = { networks: { hardhat: { chainId: 31337 } } };\n"
    )
    (workdir / "node_modules").symlink_to(REPO / "node_modules", target_is_directory=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            str(REPO / "node_modules/.bin/hardhat"),
            "node",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=workdir,
        env=dict(os.environ, HARDHAT_DISABLE_TELEMETRY_PROMPT="true"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("hardhat did not start")


def rpc(url: str, method: str, params: list[object]) -> object:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return reply.json()["result"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    burst = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    pool = "--pool" in sys.argv
    with tempfile.TemporaryDirectory(prefix="sv-bench-") as tmp_name:
        tmp = Path(tmp_name)
        node, url = start_hardhat(tmp)
        try:
            run(tmp, url, burst, pool)
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=10)


def run(tmp: Path, url: str, burst: int, pool: bool) -> None:
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    migrate(db_url)
    platform = Platform(Database(db_url), AuditSigner.generate())
    _, pem = generate_key_pair("EdDSA")
    with platform.unit_of_work() as uow:
        ws, owner_user, key = create_workspace(
            uow,
            name="bench",
            owner_name="Owner",
            owner_email="owner@bench.example",
            owner_key_algorithm=KeyAlgorithm.ED25519,
            owner_public_key_pem=pem,
            actor=Actor.cli(),
        )
    owner = Principal(ws.id, key.id, owner_user.id, Role.OWNER)
    with platform.unit_of_work() as uow:
        signer_user = create_user(
            uow, owner, name="Sam", email="sam@bench.example", role=Role.SIGNER
        )
    signer = Principal(ws.id, key.id, signer_user.id, Role.SIGNER)
    keyring = LocalBackend.initialize(tmp / "keyring", SecretBytes(b"bench"), DEVELOPMENT_COST)
    backend = LocalCeremonyBackend(
        ShareCustody(keyring, LocalShareStore(tmp / "shares")),
        test_only_primes=PRIMES,
        presignature_pool=burst if pool else 0,
    )
    with platform.unit_of_work() as uow:
        vaults.configure_network(
            uow, owner, name="hardhat", kind="evm", chain_id=31337, rpc_url=url
        )
        vaults.add_asset(uow, owner, symbol="ETH", network="hardhat")
    vault_id = str(uuid.uuid4())
    started = time.perf_counter()
    keys = vaults.generate_vault_keys(
        backend,
        workspace_id=ws.id,
        vault_id=vault_id,
        schemes=["ecdsa-secp256k1"],
        min_signers=2,
        max_signers=3,
    )
    keygen_s = time.perf_counter() - started
    admin = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench admin").digest())
    admin_public = admin.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    with platform.unit_of_work() as uow:
        vaults.record_vault(
            uow, owner, vault_id=vault_id, name="ops", keys=keys, backend_name=backend.name
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=vault_id, asset="ETH")
        draft = policies.create_draft(
            uow,
            owner,
            document={
                "format": "shardvault.policy/v1",
                "version": 1,
                "reference_currency": "USD",
                "rules": [{"name": "allow-all", "action": "allow"}],
            },
        )
        proposed = policies.propose(
            uow,
            owner,
            draft.id,
            admins={
                "quorum": 1,
                "members": [{"id": "a", "algorithm": "ed25519", "public_key": admin_public}],
            },
        )
        assert proposed.signing_message is not None
        policies.sign(
            uow,
            owner,
            draft.id,
            signer="a",
            signature=admin.sign(bytes.fromhex(proposed.signing_message)).hex(),
        )
        policies.activate(uow, owner, draft.id)
    source = wallet.addresses[0].address
    accounts = rpc(url, "eth_accounts", [])
    assert isinstance(accounts, list)
    rpc(
        url,
        "eth_sendTransaction",
        [{"from": accounts[0], "to": source, "value": hex(100 * 10**18)}],
    )

    presign_s = 0.0
    if pool:
        # Fill the pool before the burst (what the background filler does over time).
        started = time.perf_counter()
        backend.fill_pool(ws.id, vault_id, keys[0].backend_key_id, wallet.addresses[0].path)
        presign_s = time.perf_counter() - started
    ids = []
    started = time.perf_counter()
    for _ in range(burst):
        with platform.unit_of_work() as uow:
            ids.append(
                transactions.create_transaction(
                    uow, signer, wallet_id=wallet.id, destination=RECIPIENT, amount="0.001"
                ).id
            )
    created_s = time.perf_counter() - started
    worker = PipelineWorker(platform, PipelineRuntime(backend, confirmation_poll_s=0.02))
    started = time.perf_counter()
    worker.drain(timeout_s=600)
    pipeline_s = time.perf_counter() - started

    to_signed, to_completed, signing = [], [], []
    with platform.database.transaction() as session:
        for tx_id in ids:
            events = {
                e.action: e.occurred_at
                for e in session.scalars(select(AuditEvent).where(AuditEvent.resource_id == tx_id))
            }
            assert "transaction.completed" in events, tx_id
            created = events["transaction.submitted"]
            to_signed.append((events["transaction.signed"] - created).total_seconds())
            to_completed.append((events["transaction.completed"] - created).total_seconds())
            signing.append(
                (
                    events["transaction.signed"] - events["transaction.signing_attempt"]
                ).total_seconds()
            )
    nonce = int(str(rpc(url, "eth_getTransactionCount", [source, "latest"])), 16)
    print(
        json.dumps(
            {
                "burst": burst,
                "from_full_pool": pool,
                "presign_fill_per_s": round(burst / presign_s, 2) if pool else None,
                "keygen_2of3_s": round(keygen_s, 2),
                "create_per_s": round(burst / created_s, 1),
                "pipeline_completed_per_s": round(burst / pipeline_s, 2),
                "signing_mean_s": round(statistics.mean(signing), 3),
                "created_to_signed_p50_s": round(percentile(to_signed, 0.5), 2),
                "created_to_signed_p99_s": round(percentile(to_signed, 0.99), 2),
                "created_to_completed_p50_s": round(percentile(to_completed, 0.5), 2),
                "created_to_completed_p99_s": round(percentile(to_completed, 0.99), 2),
                "account_nonce_after": nonce,
            }
        )
    )
    backend.close()
    platform.database.dispose()


if __name__ == "__main__":
    main()
