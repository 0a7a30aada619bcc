"""``make demo``: the main job on embedded defaults, end to end, then everything stopped.

1. starts a local hardhat chain (:mod:`shardvault.devchain`);
2. ``shardvault init``: a new workspace, its owner and the owner's API key;
3. ``shardvault server``: the API, the pipeline and, on demand, the workspace's three
   co-signer processes (each with its own share store, in ``data-cosigners`` beside the
   server's data directory), on a free loopback port; prints the server's warning (from
   ``/v1/health``) that one host holds every key share;
4. through the SDK (as the CLI does): an approver with an Ed25519 approval key, the
   hardhat network and ETH at 3 000 USD, a policy signed by a demo admin key (key
   generation allowed, transfers worth more than 1 000 USD held for one approval from
   the treasury group) whose bundle carries the asset registry (hardhat, ETH, its
   decimals and its static price, which the co-signers value transfers at, never at a
   price the server sends) and lists the API keys whose signed requests name a
   transfer's initiator;
5. a 2-of-3 MPC vault (CGGMP21 key generation across the co-signers), an ETH wallet,
   its address funded from hardhat's dev account;
6. a transfer of 1 ETH: the policy holds it; the approver signs the intent; the
   co-signers each check the payload, the policy and the approval and sign together;
   the server broadcasts and waits for the confirmation;
7. verifies the audit chain and prints, last, one JSON line: ``vault_id``, ``address``,
   ``tx_id``, ``tx_hash``, ``status``, ``audit_verified`` and the timings.

``python -m shardvault.demo --help`` lists the options. By default each co-signer
searches fresh safe primes for its Paillier key (CGGMP21's auxiliary info: seconds to a
minute on two cores); ``--unsafe-test-only-primes FILE`` uses published TEST-ONLY primes
(the test suite does, and the resulting key is marked test-only). All keys made here are
throw-away: the working directory is deleted at the end unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.devchain import HardhatNode, start_hardhat, stop_hardhat
from shardvault.policy import parse_bundle
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient, generate_key_pair
from shardvault.sdk.custody import sign_bundle

RECIPIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
"""Where the demo sends 1 ETH (hardhat's fourth well-known dev address)."""

APPROVER = "carol@demo.example"

_Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def _raw(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _policy(approver_key: Ed25519PrivateKey) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": 1,
        "reference_currency": "USD",
        "approvers": {APPROVER: {"algorithm": "ed25519", "public_key": _raw(approver_key)}},
        "groups": {"treasury": [APPROVER]},
        "rules": [
            {
                "name": "key-generation",
                "when": {"operation": ["key_generation"]},
                "action": "allow",
            },
            {
                "name": "large-transfers-need-approval",
                "when": {"operation": ["transfer"], "value": {"over": "1000"}},
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
            },
            {"name": "small-transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
        ],
    }


class _Server:
    """``shardvault server`` as a child process on a free loopback port."""

    def __init__(self, data_dir: Path, test_only_primes: Path | None) -> None:
        command = [
            sys.executable, "-m", "shardvault.cli.main", "server",
            "--port", "0", "--data-dir", str(data_dir), "--json", "--log-level", "warning",
        ]  # fmt: skip
        if test_only_primes is not None:
            command += ["--unsafe-test-only-primes", str(test_only_primes)]
        self.log = (data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our own command)
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the server did not start; see {data_dir / 'server.log'}")
        self.url = str(json.loads(line)["url"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def _wait_status(
    client: ShardvaultClient, tx_id: str, wanted: set[str], timeout: float
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        tx = client.get_transaction(tx_id)
        if tx.status in wanted or time.monotonic() > deadline:
            return tx.model_dump()
        time.sleep(0.2)


def run(
    workdir: Path, *, test_only_primes: Path | None = None, say: _Say = _say
) -> dict[str, object]:
    """The whole demo in ``workdir``; answers the summary it prints last."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    chain_dir = workdir / "hardhat"
    chain_dir.mkdir()
    data_dir = workdir / "data"
    say("== 1. local chain: hardhat 2 on 127.0.0.1")
    hardhat, node = start_hardhat(chain_dir)
    server: _Server | None = None
    try:
        say(f"   {node.url} (chain id {node.chain_id})")
        say("== 2. shardvault init: workspace 'demo', owner key")
        owner_pem = workdir / "owner.pem"
        init = subprocess.run(  # noqa: S603 (our own command)
            [sys.executable, "-m", "shardvault.cli.main", "init", "--name", "demo",
             "--owner-name", "Olivia", "--owner-email", "olivia@demo.example",
             "--key-out", str(owner_pem), "--data-dir", str(data_dir), "--json"],
            capture_output=True, check=True, text=True,
        )  # fmt: skip
        owner_doc = json.loads(init.stdout)
        say(f"   workspace {owner_doc['workspace_id']}, owner key {owner_doc['api_key_id']}")
        say("== 3. shardvault server (co-signers start with the first vault)")
        server = _Server(data_dir, test_only_primes)
        say(f"   {server.url}")
        owner = ApiKeyCredentials.from_file(owner_doc["api_key_id"], owner_pem)
        with ShardvaultClient(server.url, owner) as client:
            signer = client.health().signer
        if signer is not None and signer.warning:
            say(f"   WARNING: {signer.warning}")
        summary = _flow(server.url, owner, node, say, timings)
    finally:
        if server is not None:
            say("== stopping the server and its co-signers")
            server.stop()
        stop_hardhat(hardhat)
    summary["seconds"] = {**timings, "total": round(time.perf_counter() - started, 2)}
    return summary


def _flow(
    url: str, owner: ApiKeyCredentials, node: HardhatNode, say: _Say, timings: dict[str, float]
) -> dict[str, object]:
    admin_key = Ed25519PrivateKey.generate()
    approver_key = Ed25519PrivateKey.generate()
    with ShardvaultClient(url, owner) as client:
        say(f"== 4. approver {APPROVER}, network hardhat, policy v1 signed by the admin key")
        private_pem, public_pem = generate_key_pair("EdDSA")
        user = client.create_user(name="Carol", email=APPROVER, role="approver")
        key = client.create_api_key(user_id=user.id, name="carol", public_key_pem=public_pem)
        approver = ApiKeyCredentials.from_pem(key.id, private_pem)
        client.configure_network(
            name="hardhat", kind="evm", chain_id=node.chain_id, rpc_url=node.url
        )
        client.add_asset(symbol="ETH", network="hardhat", price="3000")
        policy = client.create_policy(document=_policy(approver_key))
        members = [{"id": "admin", "algorithm": "ed25519", "public_key": _raw(admin_key)}]
        # The bundle lists the API keys that may create transfers (the owner's): the
        # co-signers take the initiator only from a request signed with one of them.
        proposed = client.propose_policy(
            policy.id,
            admins={"quorum": 1, "members": members},
            initiators_from_api_keys=True,
        )
        assert proposed.signing_message is not None
        client.sign_policy(
            policy.id, signer="admin", signature=sign_bundle(admin_key, proposed.signing_message)
        )
        active = client.activate_policy(policy.id)
        assert active.bundle is not None
        registry = parse_bundle(active.bundle).assets
        assert registry is not None
        for network in registry.networks:
            listed = ", ".join(
                f"{a.id} ({a.decimals} decimals, {a.price} USD)" for a in network.assets
            )
            say(f"   signed asset registry: {network.name}: {listed}")
        say("   rule: transfers worth more than 1 000 USD need 1 approval from 'treasury'")
        say("== 5. 2-of-3 MPC vault: CGGMP21 key generation across three co-signer processes")
        t0 = time.perf_counter()
        vault = client.create_vault(name="treasury", schemes=["ecdsa-secp256k1"])
        timings["vault_keygen"] = round(time.perf_counter() - t0, 2)
        vault_key = vault.keys[0]
        parties = ", ".join(vault_key.cosigners)
        say(
            f"   vault {vault.id}: {vault_key.min_signers}-of-{vault_key.max_signers}, "
            f"co-signers {parties} ({timings['vault_keygen']} s)"
        )
        wallet = client.create_wallet(vault_id=vault.id, asset="ETH")
        address = wallet.addresses[0].address
        node.fund(address, 10 * 10**18)
        say(f"   ETH address {address} ({wallet.addresses[0].path}), funded with 10 ETH")
        say(f"== 6. send 1 ETH to {RECIPIENT}")
        t0 = time.perf_counter()
        tx = client.create_transaction(
            wallet_id=wallet.id,
            destination=RECIPIENT,
            amount="1",
            idempotency_key=secrets.token_hex(8),
        )
        held = _wait_status(client, tx.id, {"pending_approval", "failed", "blocked"}, 60)
        say(f"   {tx.id}: {held['status']} ({held.get('status_reason')})")
        if held["status"] != "pending_approval":
            raise RuntimeError(f"the transfer was not held for approval: {held['status']}")
    with ShardvaultClient(url, approver) as as_approver:
        approved = as_approver.approve_transaction(tx.id, approver=APPROVER, key=approver_key)
        say(f"   approved by {APPROVER}: {approved.status}")
    with ShardvaultClient(url, owner) as client:
        done = _wait_status(client, tx.id, {"completed", "failed", "rejected"}, 120)
        timings["send_to_completed"] = round(time.perf_counter() - t0, 2)
        say(f"   signed by the co-signers, broadcast, confirmed: {done['status']} "
            f"(tx {done.get('tx_hash')})")  # fmt: skip
        say("== 7. audit chain")
        verified = client.verify_audit()
        state = "intact" if verified.valid else f"BROKEN at {verified.broken_at_seq}"
        say(f"   {verified.events} events, {verified.checkpoints} signed checkpoints: {state}")
    receipt = node.rpc("eth_getTransactionReceipt", ["0x" + str(done.get("tx_hash"))])
    on_chain = isinstance(receipt, dict) and receipt.get("status") == "0x1"
    return {
        "vault_id": vault.id,
        "address": address,
        "tx_id": tx.id,
        "tx_hash": done.get("tx_hash"),
        "status": done["status"],
        "on_chain": on_chain,
        "audit_verified": verified.valid,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shardvault.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--unsafe-test-only-primes",
        type=Path,
        default=os.environ.get("SHARDVAULT_DEMO_TEST_ONLY_PRIMES") or None,
        help="TEST ONLY: published safe primes for the co-signers' Paillier keys.",
    )
    parser.add_argument("--keep", type=Path, default=None, help="Run in (and keep) this directory.")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        summary = run(args.keep, test_only_primes=args.unsafe_test_only_primes)
    else:
        with tempfile.TemporaryDirectory(prefix="shardvault-demo-") as tmp:
            summary = run(Path(tmp), test_only_primes=args.unsafe_test_only_primes)
    print(json.dumps(summary, sort_keys=True), flush=True)  # noqa: T201
    ok = summary["status"] == "completed" and summary["audit_verified"] is True
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
