"""Co-signers on their own "hosts", the server in the production profile, and the server
host treated as the attacker (docs/threat-model.md).

Three ``shardvault cosigner run --profile production`` processes, each with its own data
directory, OS user and network namespace (veth links to a bridge the test makes),
connect over TLS (the server's certificate pinned) to ``shardvault server --signer remote
--profile production``, which runs as an OS user of its own. The test plays the admins
and the co-signers' operators: it pairs each co-signer with a one-time token, compares the
fingerprints each co-signer printed on its own host with the directory in the proposed
policy bundle, signs and activates it. Then:

* a 2-of-3 ECDSA vault (real safe primes: no test-only primes in production) and an ETH
  transfer signed and mined on hardhat;
* co-signer 1's link cut just before a transfer: its quorum stalls, the session is
  aborted everywhere and co-signers 2 and 3 sign; the link restored; co-signer 2 paused
  (SIGSTOP): the next transfer is signed by 1 and 3; nothing is mined or signed twice
  (each co-signer's history names each transfer at most once) and nonces follow 0, 1, 2;
* liveness, version and attestation of each co-signer in ``GET /v1/cosigners`` and in
  ``shardvault cosigners list``;
* everything the server's OS user can read (its files, its environment, the memory of
  its process) is searched for every co-signer's passphrase, identity seeds, key shares
  and Paillier primes, and every secret-looking string in its files and environment is
  tried as each co-signer's keyring passphrase: nothing is found, nothing opens;
* the server swaps co-signer 3's identity for one it made and plays party 3 itself: the
  honest co-signers refuse every message of the impostor (its signature does not verify
  under the identity the admins signed) and no key comes out.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text

from shardvault.cosigner.errors import LinkError
from shardvault.cosigner.link import HttpLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.node_keys import NodeKeys
from shardvault.cosigner.state import init_node, open_node
from shardvault.crypto.channel import Directory
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.errors import CustodyError
from shardvault.custody.secret import SecretBytes
from shardvault.policy import parse_bundle
from shardvault.sdk import ApiKeyCredentials, PinnedCosigners, ShardvaultClient
from shardvault.sdk.custody import sign_bundle
from shardvault.sdk.errors import ApiError
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.hosts import TestHosts, hosts_available
from tests.service.pipeline_support import fund
from tests.waiting import eventually

__all__ = ["hardhat_node"]

RECIPIENT = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
PYTHON = sys.executable
STALL_AFTER_S = 3
SESSION_TIMEOUT_S = 15
MAX_PASSPHRASE_TRIES = 1000
"""Candidates tried against each keyring (an Argon2 derivation each, ~4 ms here)."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hosts_available() is not None, reason=str(hosts_available())),
]


def _tls_pair(directory: Path, address: str) -> tuple[Path, Path]:
    """A self-signed server certificate for ``address`` (and its key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shardvault test server")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "shardvault.cli.main", *args]


def _run(argv: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(argv, capture_output=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, (argv, done.stderr.decode(errors="replace")[-3000:])
    answer: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return answer


def _raw(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


class Deployment:
    """The server, three co-signer hosts and the admins' keys (module docstring)."""

    def __init__(self, root: Path, hosts: TestHosts, hardhat: HardhatNode) -> None:
        self.root = root
        self.hosts = hosts
        self.hardhat = hardhat
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.passphrases = {i: secrets.token_urlsafe(24) for i in (1, 2, 3)}
        self.admin = Ed25519PrivateKey.generate()
        self.admins = {
            "quorum": 1,
            "members": [{"id": "ada", "algorithm": "ed25519", "public_key": _raw(self.admin)}],
        }
        server_home = root / "server"
        server_home.mkdir(mode=0o700)
        self.data = server_home / "data"
        created = _run(
            _cli("init", "--name", "acme", "--owner-name", "Olivia", "--owner-email",
                 "o@acme.example", "--key-out", str(root / "owner.pem"), "--data-dir",
                 str(self.data), "--json")
        )  # fmt: skip
        self.workspace = str(created["workspace_id"])
        self.credentials = ApiKeyCredentials.from_file(
            str(created["api_key_id"]), root / "owner.pem"
        )
        self.cert, key = _tls_pair(server_home, hosts.server_address)
        self.tls = ssl.create_default_context(cafile=str(self.cert))
        self.port = _free_port(hosts.server_address)
        self.url = f"https://{hosts.server_address}:{self.port}"
        hosts.chown("server", str(server_home))
        self.fingerprints: dict[int, str] = {}
        self.cosigner_dirs: dict[int, Path] = {}
        for party in (1, 2, 3):
            home = root / f"cosigner-{party}"
            home.mkdir(mode=0o700)
            shutil.copy(self.cert, home / "server.pem")
            (home / "admins.json").write_text(json.dumps(self.admins))
            hosts.chown(f"c{party}", str(home))
            self.cosigner_dirs[party] = home / "data"
        self.start_server(key)
        for party in (1, 2, 3):
            home = root / f"cosigner-{party}"
            init = _run(
                hosts.command(party, _cli(
                    "cosigner", "init", "--id", str(party), "--data-dir", str(home / "data"),
                    "--workspace", self.workspace, "--admins", str(home / "admins.json"),
                    "--dev-argon2")),
                env=self.cosigner_env(party),
            )  # fmt: skip
            identity = init["identity"]
            assert isinstance(identity, dict)
            from shardvault.crypto.channel import PublicIdentity

            # What the operator reads on the co-signer's own host.
            self.fingerprints[party] = PublicIdentity.from_json(identity).fingerprint()

    def cosigner_env(self, party: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDVAULT_")}
        env["SHARDVAULT_COSIGNER_PASSPHRASE"] = self.passphrases[party]
        return env

    def start_server(self, key: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDVAULT_")}
        log = (self.root / "server" / "server.log").open("ab")
        self.processes["server"] = subprocess.Popen(
            self.hosts.as_user("server", _cli(
                "server", "--host", self.hosts.server_address, "--port", str(self.port),
                "--data-dir", str(self.data), "--signer", "remote", "--profile", "production",
                "--tls-cert", str(self.cert), "--tls-key", str(key),
                "--cosigner-stall-after", str(STALL_AFTER_S), "--json")),
            stdout=log, stderr=log, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/v1/health", verify=self.tls, timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.processes["server"].poll() is not None:
                    raise AssertionError(self.log("server")) from None
                time.sleep(0.1)

    def start_cosigner(self, party: int) -> None:
        home = self.root / f"cosigner-{party}"
        # The log lives on the co-signer's own "host" (its 0700 directory).
        log = (home / "cosigner.log").open("ab")
        self.processes[f"c{party}"] = subprocess.Popen(
            self.hosts.command(party, _cli(
                "cosigner", "run", "--id", str(party), "--data-dir", str(home / "data"),
                "--server", self.url, "--server-cert", str(home / "server.pem"),
                "--profile", "production", "--poll-wait", "2",
                "--session-timeout", str(SESSION_TIMEOUT_S))),
            stdout=log, stderr=log, env=self.cosigner_env(party),
        )  # fmt: skip

    def pair(self, client: ShardvaultClient, party: int) -> dict[str, object]:
        home = self.root / f"cosigner-{party}"
        token = client.create_pairing_token(party=party).token
        return _run(
            self.hosts.command(party, _cli(
                "cosigner", "pair", "--data-dir", str(home / "data"), "--server", self.url,
                "--server-cert", str(home / "server.pem"), "--token", token,
                "--label", f"host-{party}")),
            env=self.cosigner_env(party),
        )  # fmt: skip

    def log(self, name: str) -> str:
        path = (
            self.root / "server" / "server.log"
            if name == "server"
            else self.root / f"cosigner-{name[1:]}" / "cosigner.log"
        )
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def status(self, party: int) -> dict[str, object]:
        with self.client() as client:
            listed = {c.party: c.status for c in client.list_cosigners().data}
        return listed.get(party, {})

    def client(self) -> ShardvaultClient:
        return ShardvaultClient(self.url, self.credentials, timeout_s=180)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def deployment(hardhat_node: HardhatNode) -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="sv-hosts-"))
    root.chmod(0o755)  # each host's own directory inside is 0700 and its user's
    hosts = TestHosts(3)
    deployment: Deployment | None = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            # The admins' and the test's SDK trust the server's pinned certificate.
            deployment = Deployment(root, hosts, hardhat_node)
            mp.setenv("SSL_CERT_FILE", str(deployment.cert))
            yield deployment
    finally:
        if deployment is not None:
            deployment.close()
        hosts.close()
        if not os.environ.get("SHARDVAULT_TEST_KEEP_HOSTS"):
            shutil.rmtree(root, ignore_errors=True)


def _policy(version: int) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": version,
        "reference_currency": "USD",
        "rules": [
            {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
            {
                "name": "no-large",
                "when": {"asset": ["ETH"], "amount": {"over": "5"}},
                "action": "block",
            },
            {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
        ],
    }


def _send(client: ShardvaultClient, wallet_id: str, amount: str) -> dict[str, object]:
    tx = client.create_transaction(wallet_id=wallet_id, destination=RECIPIENT, amount=amount)
    assert eventually(
        lambda: client.get_transaction(tx.id).status in ("completed", "failed"), timeout=120
    ), client.get_transaction(tx.id)
    done = client.get_transaction(tx.id)
    assert done.status == "completed", done
    return done.model_dump()


def _history_digests(deployment: Deployment) -> dict[int, list[str]]:
    out = {}
    for party, data in deployment.cosigner_dirs.items():
        # The record of signed transactions (v2 lines carry the policy request).
        path = data / "signed.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        requests = [json.loads(line).get("request") for line in lines if line]
        out[party] = [r["digest"] for r in requests if r]
    return out


def test_remote_cosigners_on_their_own_hosts(deployment: Deployment) -> None:
    d = deployment
    with d.client() as client:
        client.configure_network(
            name="hardhat", kind="evm", chain_id=d.hardhat.chain_id, rpc_url=d.hardhat.url
        )
        client.add_asset(symbol="ETH", network="hardhat", price="3000")
        # Pairing: each co-signer registers with a one-time token, from its own host.
        for party in (1, 2, 3):
            paired = d.pair(client, party)
            assert paired["fingerprint"] == d.fingerprints[party]
            d.start_cosigner(party)
        # The admins compare the proposed directory with the fingerprints read on the
        # co-signers' hosts, then sign.
        draft = client.create_policy(document=_policy(1))
        proposed = client.propose_policy(draft.id, admins=d.admins)
        bundle = parse_bundle(proposed.bundle)
        assert bundle.cosigners is not None
        assert bundle.cosigners.fingerprints() == d.fingerprints
        assert proposed.signing_message is not None
        client.sign_policy(
            draft.id, signer="ada", signature=sign_bundle(d.admin, proposed.signing_message)
        )
        client.activate_policy(draft.id)
        assert eventually(
            lambda: all(c.status.get("connected") for c in client.list_cosigners().data),
            timeout=30,
        ), [d.log(f"c{p}") for p in (1, 2, 3)]
        listed = client.list_cosigners().data
        assert [c.in_signed_directory for c in listed] == [True, True, True]
        assert {c.status.get("profile") for c in listed} == {"production"}
        assert {c.status.get("attestation") for c in listed} == {"none"}
        # Each co-signer reports its pool of safe primes (real ones: production profile).
        pools = [c.status.get("prime_pool") for c in listed]
        assert all(isinstance(p, dict) and p["size"] == 8 for p in pools), pools
        assert not any(p["test_only"] for p in pools)  # type: ignore[index]

        vault = client.create_vault(name="ops", schemes=["ecdsa-secp256k1"])
        assert vault.keys[0].cosigners == ["party-1", "party-2", "party-3"]
        assert not getattr(vault.keys[0], "test_only", False)
        wallet = client.create_wallet(vault_id=vault.id, asset="ETH")
        source = wallet.addresses[0].address
        # Each co-signer attested the address it derived; the client verifies them
        # against the fingerprints read on the co-signers' hosts, not the server's word.
        pinned = PinnedCosigners.of(d.fingerprints)
        verified = client.verified_address(wallet.id, pinned=pinned, vault_id=vault.id)
        assert (verified.address.address, verified.tally.parties) == (source, (1, 2, 3))
        fund(d.hardhat, source)
        first = _send(client, wallet.id, "0.5")

        # Co-signer 1 cut off just before the next transfer: its quorum stalls.
        d.hosts.cut(1)
        started = time.monotonic()
        second = _send(client, wallet.id, "0.25")
        assert time.monotonic() - started < 60
        d.hosts.restore(1)
        assert eventually(
            lambda: {c.party: c.status.get("connected") for c in client.list_cosigners().data}[1],
            timeout=60,
        ), d.log("c1")

        # Co-signer 2 paused: the next quorum leaves it out.
        d.processes["c2"].send_signal(signal.SIGSTOP)
        try:
            third = _send(client, wallet.id, "0.125")
        finally:
            d.processes["c2"].send_signal(signal.SIGCONT)

        hashes_ = [str(t["tx_hash"]) for t in (first, second, third)]
        assert len(set(hashes_)) == 3
        nonces = []
        for tx_hash in hashes_:
            mined = d.hardhat.rpc("eth_getTransactionByHash", ["0x" + tx_hash.removeprefix("0x")])
            assert isinstance(mined, dict)
            assert mined["from"].lower() == source.lower()
            nonces.append(int(mined["nonce"], 16))
        assert nonces == [0, 1, 2]
        # Nothing signed twice: each co-signer's history names each transfer at most once.
        histories = _history_digests(d)
        for party, digests in histories.items():
            assert len(digests) == len(set(digests)), (party, digests)
        signed_by = {
            digest: sorted(p for p, ds in histories.items() if digest in ds)
            for digest in {x for ds in histories.values() for x in ds if x}
        }
        transfer_sets = [s for s in signed_by.values() if len(s) >= 2]
        assert [2, 3] in transfer_sets  # the cut-off transfer
        assert [1, 3] in transfer_sets  # the paused one

        # Liveness in the CLI too.
        shown = subprocess.run(
            _cli("cosigners", "list", "--url", d.url, "--api-key", d.credentials.api_key_id,
                 "--key-file", str(d.root / "owner.pem")),
            capture_output=True, env={**os.environ, "SSL_CERT_FILE": str(d.cert)}, check=False,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.decode().splitlines()
        assert len(lines) == 3
        assert all("in signed directory" in line and "last contact" in line for line in lines)
        assert all("prime pool" in line and "/8 ready" in line for line in lines), lines
        assert d.fingerprints[2] in lines[1]

    _nothing_the_server_can_read_opens_a_share(d)
    _a_swapped_identity_gets_no_session(d)


# --- The server host as the attacker -----------------------------------------------


def _server_readable(d: Deployment) -> tuple[list[bytes], list[Path]]:
    """Everything the server's OS user can read: its files, its environment, its memory."""
    server = d.hosts.users["server"]
    blobs: list[bytes] = []
    files = []
    for path in Path(d.root).rglob("*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if not path.is_file():
            continue
        readable = (info.st_uid == server.uid and info.st_mode & 0o400) or info.st_mode & 0o004
        # Its parents must be searchable by it too.
        reachable = all(
            (p.stat().st_uid == server.uid and p.stat().st_mode & 0o100) or p.stat().st_mode & 0o001
            for p in path.parents
            if str(p).startswith(str(d.root))
        )
        if readable and reachable:
            files.append(path)
            blobs.append(path.read_bytes())
    pid = d.processes["server"].pid
    # setpriv execs the server itself: the pid is the server's.
    blobs.append(Path(f"/proc/{pid}/environ").read_bytes())
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                memory.seek(start)
                blobs.append(memory.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return blobs, files


def _cosigner_secrets(d: Deployment) -> list[bytes]:
    """What would open a share: passphrases, identity seeds, key shares, primes."""
    found: list[bytes] = []
    for party, data in d.cosigner_dirs.items():
        phrase = d.passphrases[party].encode()
        found += [phrase, phrase.hex().encode(), base64.b64encode(phrase)]
        with SecretBytes(phrase) as passphrase:
            state = open_node(data, passphrase)
        try:
            seeds = state.identity.seeds()
            found += [seeds[:32], seeds[32:]]
            keys = NodeKeys(state)
            for address in state.custody.store.addresses():
                if address.workspace == "_node":
                    continue
                key = keys.load(address.vault, address.key_id)
                assert isinstance(key, KeyShare)
                found.append(key.share.value.to_bytes(32, "big"))
                for prime in (key.paillier_secret.p, key.paillier_secret.q):
                    found.append(prime.to_bytes((prime.bit_length() + 7) // 8, "big"))
                    found.append(f"{prime:x}".encode())
        finally:
            state.close()
    return found


def _nothing_the_server_can_read_opens_a_share(d: Deployment) -> None:
    blobs, files = _server_readable(d)
    assert any(f.name == "server.key" for f in files)  # the search does reach its files
    assert not any("cosigner-" in str(f) for f in files), files
    assert sum(len(b) for b in blobs) > 10_000_000  # its memory was read
    secrets_ = _cosigner_secrets(d)
    assert len(secrets_) >= 3 * 7
    for secret in secrets_:
        for blob in blobs:
            assert secret not in blob
    # The most random-looking strings in the server's files and environment, tried as
    # each co-signer's keyring passphrase (each try costs an Argon2 derivation).
    candidates = set()
    for blob in blobs[: len(files) + 1]:
        candidates.update(re.findall(rb"[A-Za-z0-9_\-+/=]{16,88}", blob))
    ranked = sorted(candidates, key=_entropy, reverse=True)[:MAX_PASSPHRASE_TRIES]
    assert len(ranked) > 100
    tried = 0
    for data in d.cosigner_dirs.values():
        keyring = json.loads((data / "cosigner.json").read_text())["keyring"]
        for candidate in ranked:
            with pytest.raises(CustodyError):
                _open_keyring(data, keyring, candidate)
            tried += 1
    assert tried == 3 * len(ranked)


def _entropy(text: bytes) -> float:
    """Shannon entropy of ``text`` in bits per character, times its length: how much a
    string looks like a random secret."""
    counts = [text.count(c) for c in set(text)]
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts) * len(text)


def _open_keyring(data: Path, keyring: dict[str, object], candidate: bytes) -> None:
    """Raise unless ``candidate`` opens the keyring (it never should)."""
    from shardvault.custody.backends.local import Argon2Cost

    argon = keyring["argon2"]
    assert isinstance(argon, dict)
    # Opening unseals the master key: a wrong passphrase raises WrongPassphraseError.
    LocalBackend(
        data / "keyring", SecretBytes(candidate), str(keyring["key_id"]), Argon2Cost(**argon)
    ).lock()


def _a_swapped_identity_gets_no_session(d: Deployment) -> None:
    """The server records a key of its own under party 3 (as if it had swapped the
    identity at pairing) and plays party 3 with it. Co-signers 1 and 2 verify party 3's
    messages under the identity the admins signed: every one is refused; the impostor
    cannot open what they encrypt to the real party 3; the sessions time out and no key
    comes out anywhere."""
    d.processes["c3"].send_signal(signal.SIGTERM)
    d.processes["c3"].wait(timeout=20)
    impostor_home = d.root / "impostor"
    with SecretBytes(b"the server's own passphrase") as passphrase:
        fake = init_node(impostor_home, 3, d.workspace, d.admins, passphrase, cost=DEVELOPMENT_COST)
    engine = create_engine(f"sqlite:///{d.data / 'shardvault.db'}")
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE paired_cosigners SET signing_key = :s, encryption_key = :e, "
                "binding = :b, fingerprint = :f WHERE party = 3"
            ),
            {
                "s": fake.signing_key.hex(),
                "e": fake.encryption_key.hex(),
                "b": fake.binding.hex(),
                "f": fake.fingerprint(),
            },
        )
    engine.dispose()
    swapped_at = time.time() + 0.5
    with SecretBytes(b"the server's own passphrase") as passphrase:
        state = open_node(impostor_home, passphrase)
    link = HttpLink(f"{d.url}/cosigners/{d.workspace}", state.identity, verify=d.tls, timeout=10)
    impostor = CosignerNode(state, link, session_timeout=SESSION_TIMEOUT_S)
    # It holds the workspace's signed policy (public: every co-signer was sent it).
    for raw in json.loads((d.cosigner_dirs[1] / "policy" / "bundles.json").read_text()):
        state.accept_bundle(parse_bundle(raw))
    # The impostor takes part under the directory the server likes, not the signed one.
    swapped = Directory.of({**state.directory.entries})
    real = parse_bundle(
        json.loads((d.cosigner_dirs[1] / "policy" / "bundles.json").read_text())[-1]
    ).cosigners
    assert real is not None
    for party in (1, 2):
        identity = real.get(party)
        assert identity is not None
        swapped = swapped.with_party(party, identity)
    impostor._session_directory = lambda parties: swapped  # type: ignore[method-assign]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                impostor.step(1.0)
            except LinkError:
                time.sleep(0.2)  # refused until the relay re-reads the pairings

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        # Wait until the relay re-read the pairings and the impostor polls as party 3.
        assert eventually(
            lambda: (
                (d.status(3).get("last_contact") or 0) > swapped_at
                and d.status(3).get("connected") is True
            ),
            timeout=30,
        )
        with d.client() as client, pytest.raises(ApiError) as refused:
            client.create_vault(name="stolen", schemes=["eddsa-ed25519"])
        # Whoever times out first is named: the honest co-signers waiting for a party 3
        # they can verify, or the impostor, which cannot open what they encrypt to the
        # party 3 the admins signed.
        assert "key generation failed" in refused.value.detail, refused.value.detail
        assert "timed out" in refused.value.detail
        with d.client() as client:
            assert [v.name for v in client.list_vaults().data] == ["ops"]
        # The impostor holds no share of anything.
        assert [a.vault for a in state.custody.store.addresses()] == ["identity"]
    finally:
        stop.set()
        thread.join(timeout=10)
        link.close()
        state.close()
    for party in (1, 2):
        log = d.log(f"c{party}")
        assert "envelope refused" in log, log[-2000:]
        assert "key generated" not in log.split("stolen")[-1]
