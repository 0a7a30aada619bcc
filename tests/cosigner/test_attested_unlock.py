"""Attested unlock end to end: co-signer processes, a key-release service and a relay.

Three ``shardvault cosigner`` processes are initialised and run with
``--unlock-mode attested``: they hold no keyring. Each is its own development enclave
(DESIGN.md invariant 2): it measures the package files it runs from as PCRs, makes an
RSA recipient key pair in its own memory, and for every share it seals or opens gets a
fresh nonce from the key-release service, attests, and receives the data key encrypted
to its recipient key. The service (``KeyReleaseService`` over a ``local`` keyring,
served by uvicorn) and the relay run in this process; everything listens on 127.0.0.1.

The processes run from a snapshot of the package copied into a temporary directory
(``PYTHONPATH``), and the service pins that snapshot's measurements, so edits that other
people make to the working tree during the run cannot change the outcome. A second copy
with one byte changed plays the modified co-signer. FROST Ed25519 signatures (RFC 9591)
are verified with PyNaCl (libsodium).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from nacl.signing import VerifyKey

import shardvault
from shardvault.chains import ethereum
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import identity_address, unlock_mode
from shardvault.crypto.channel import Directory, PublicIdentity
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.custody.attestation.devenclave import DevelopmentEnclave, DevelopmentRoot, measure
from shardvault.custody.attestation.nitro import PcrPolicy, decode_document
from shardvault.custody.attested import AttestedShareCustody
from shardvault.custody.envelope import ShareAddress, inspect, open_share
from shardvault.custody.errors import AttestationPcrError
from shardvault.custody.release_service import PATH_PREFIX, HttpReleaseClient
from shardvault.custody.sharestore.local import LocalShareStore
from tests.cosigner.support import (
    ADMIN_SET,
    DESTINATION,
    LAMPORTS_PER_SOL,
    VAULT,
    WORKSPACE,
    dkg_request,
    sign_request,
    signed_bundle,
    solana_digest,
    solana_transfer,
)
from tests.cosigner.test_processes import FIXTURE_PATH, _stop, _wait_started
from tests.cosigner_processes import LoopbackRelay
from tests.custody.netproxy import CuttableProxy
from tests.custody.release_support import PINNED_PCRS, ServedRelease, local_service

ROLE = "cosigner"
RESULT_TIMEOUT = 20.0


def _snapshot(destination: Path, change: str | None = None) -> Path:
    """Copy the package to ``destination/shardvault``; optionally append one byte to the
    file ``change`` (relative to the package). Returns the directory for PYTHONPATH."""
    package = Path(shardvault.__file__).resolve().parent
    shutil.copytree(
        package, destination / "shardvault", ignore=shutil.ignore_patterns("__pycache__")
    )
    if change is not None:
        target = destination / "shardvault" / change
        target.write_bytes(target.read_bytes() + b"#")
    return destination


def _cli(code_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "shardvault.cli.main", "cosigner", *args]


def _env(code_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(code_dir)
    return env


def _init(code_dir: Path, party: int, data_dir: Path, admins: Path, served, root_dir: Path):
    return subprocess.Popen(
        _cli(
            code_dir,
            "init",
            "--id",
            str(party),
            "--data-dir",
            str(data_dir),
            "--workspace",
            WORKSPACE,
            "--admins",
            str(admins),
            "--unlock-mode",
            "attested",
            "--release-url",
            served.url,
            "--release-key",
            served.service.public_key.hex(),
            "--dev-root-dir",
            str(root_dir),
            "--role",
            ROLE,
            # Party 1 makes a fresh recipient key pair for every release.
            *(["--recipient-per-unlock"] if party == 1 else []),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(code_dir),
        text=True,
    )


def _run(
    code_dir: Path, party: int, data_dir: Path, relay_url: str, release_url: str | None = None
) -> subprocess.Popen:
    log = open(data_dir.parent / f"cosigner-{party}.log", "a")
    override = ["--release-url", release_url] if release_url else []
    process = subprocess.Popen(
        _cli(
            code_dir,
            "run",
            "--id",
            str(party),
            "--data-dir",
            str(data_dir),
            "--coordinator",
            relay_url,
            "--unlock-mode",
            "attested",
            "--poll-wait",
            "1",
            "--session-timeout",
            "15",
            # TEST-ONLY published safe primes: CGGMP21 auxiliary info needs no search.
            "--unsafe-test-only-primes",
            str(FIXTURE_PATH),
            *override,
        ),
        stdout=subprocess.PIPE,
        stderr=log,
        env=_env(code_dir),
        text=True,
    )
    log.close()
    return process


class AttestedCluster:
    """Release service, relay and three attested co-signer processes; ``close`` stops all."""

    def __init__(self, root_path: Path) -> None:
        self.root_path = root_path
        self.processes: dict[int, subprocess.Popen] = {}
        self.relay: LoopbackRelay | None = None
        self.dev_root = DevelopmentRoot.generate()
        self.root_dir = root_path / "devroot"
        self.dev_root.save(self.root_dir)
        self.code = _snapshot(root_path / "code")
        pcrs = measure(self.code / "shardvault", role=ROLE, root_der=self.dev_root.der)
        self.pcrs = pcrs
        # The service pins the snapshot's measurements (what the processes run).
        service = local_service(
            root_path / "service-keyring",
            self.dev_root,
            policy=PcrPolicy(expected={i: pcrs[i] for i in PINNED_PCRS}),
        )
        self.served = ServedRelease(service)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        admins = self.root_path / "admins.json"
        admins.write_text(json.dumps(ADMIN_SET))
        self.dirs = {p: self.root_path / f"cosigner-{p}" for p in (1, 2, 3)}
        inits = {
            p: _init(self.code, p, d, admins, self.served, self.root_dir)
            for p, d in self.dirs.items()
        }
        identities = {}
        for party, process in inits.items():
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            answer = json.loads(out)
            assert answer["unlock"] == "attested"
            identities[party] = PublicIdentity.from_json(answer["identity"])
        # Pinning signs each configuration again, so each node unlocks its identity
        # (one attested release each), from the snapshot's code like the processes.
        directory_file = self.root_path / "directory.json"
        directory_file.write_text(json.dumps({str(p): i.to_json() for p, i in identities.items()}))
        for directory in self.dirs.values():
            pinned = subprocess.run(
                _cli(
                    self.code,
                    "pin",
                    "--data-dir",
                    str(directory),
                    "--directory",
                    str(directory_file),
                ),
                capture_output=True,
                env=_env(self.code),
                text=True,
                timeout=60,
                check=False,
            )
            assert pinned.returncode == 0, pinned.stderr
        # Releases from here on are the running processes'.
        self.first_run_exchange = len(self.served.exchanges)
        self.relay = LoopbackRelay(RelayCore(Directory.of(identities)))
        self.core = self.relay.core
        self.processes = {p: _run(self.code, p, d, self.relay.url) for p, d in self.dirs.items()}
        for process in self.processes.values():
            _wait_started(process)

    def run(self, body: dict, parties) -> dict[int, dict]:
        self.core.submit(body, list(parties))
        results = self.core.wait_results(body["request_id"], list(parties), RESULT_TIMEOUT)
        assert set(results) == set(parties), results
        return results

    def close(self) -> list[tuple[int, int | None]]:
        stopped = []
        try:
            for party, process in self.processes.items():
                if process.poll() is None:
                    _stop(process)
                stopped.append((party, process.returncode))
                if process.stdout is not None:
                    process.stdout.close()
        finally:
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
            if self.relay is not None:
                self.relay.close()
            self.served.stop()
        return stopped


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = AttestedCluster(tmp_path_factory.mktemp("attested"))
    try:
        policy = {
            "kind": "policy",
            "request_id": "policy-1",
            "bundles": [signed_bundle().to_json()],
        }
        results = c.run(policy, (1, 2, 3))
        assert {r["status"] for r in results.values()} == {"ok"}, results
        yield c
    finally:
        stopped = c.close()
    assert stopped == [(1, 0), (2, 0), (3, 0)]


@pytest.fixture(scope="module")
def sol_key(cluster) -> bytes:
    results = cluster.run(dkg_request(), (1, 2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    keys = {r["public_key"] for r in results.values()}
    assert len(keys) == 1
    return bytes.fromhex(keys.pop())


def _exchanges(cluster, op: str, status: int = 200):
    return [
        e for e in cluster.served.exchanges if e.path == PATH_PREFIX + op and e.status == status
    ]


def test_attested_nodes_hold_no_keyring(cluster) -> None:
    for directory in cluster.dirs.values():
        assert unlock_mode(directory) == "attested"
        assert not (directory / "keyring").exists()
        config = json.loads((directory / "cosigner.json").read_text())
        assert "keyring" not in config
        assert config["unlock"]["release_public_key"] == cluster.served.service.public_key.hex()
    # Each init sealed its identity with a generated key; each start opened it.
    assert len(_exchanges(cluster, "generate-data-key")) >= 3
    assert len(_exchanges(cluster, "decrypt")) >= 3


def test_dkg_and_signing_with_attested_unlock(cluster, sol_key) -> None:
    generated = len(_exchanges(cluster, "generate-data-key"))
    released = len(_exchanges(cluster, "decrypt"))
    message = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 4)
    results = cluster.run(sign_request(message, (2, 3), digest=solana_digest(message)), (2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    assert results[2]["signature"] == results[3]["signature"]
    VerifyKey(sol_key).verify(message, bytes.fromhex(results[2]["signature"]))
    # Each signer unlocked its share through a fresh attested release for this request.
    assert len(_exchanges(cluster, "decrypt")) - released == 2
    assert len(_exchanges(cluster, "generate-data-key")) == generated
    # The stored share of key sol-1 is wrapped by the service's backend.
    for directory in cluster.dirs.values():
        store = LocalShareStore(directory / "shares")
        party = directory.name.rsplit("-", 1)[1]
        blob = store.read(ShareAddress(WORKSPACE, VAULT, "sol-1", party)).blob
        assert inspect(blob).wrapped_key.backend == "local"


def test_ecdsa_keygen_presign_and_ethereum_signature_with_attested_unlock(cluster) -> None:
    """CGGMP21 2-of-3 through attested unlock; the signed transaction recovers (with
    eth-account) to the address of the generated key."""
    body = dkg_request(scheme="ecdsa-secp256k1", key_id="eth-1")
    body["aux_session_id"] = secrets.token_hex(32)
    results = cluster.run(body, (1, 2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    public_key = bytes.fromhex(results[1]["public_key"])
    presign = {
        "kind": "presign",
        "request_id": "presign-attested",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": "eth-1",
        "signers": [2, 3],
        "presignature": "p1",
    }
    assert {r["status"] for r in cluster.run(presign, (2, 3)).values()} == {"ok"}
    tx = ethereum.native_transfer(
        chain_id=1,
        nonce=0,
        to="0x2222222222222222222222222222222222222222",
        amount="0.5",
        fees=ethereum.FeeParameters(30 * 10**9, 10**9, 21000),
    )
    request = sign_request(
        ethereum.encode_unsigned(tx),
        (2, 3),
        chain="ethereum",
        key_id="eth-1",
        presignature="p1",
        digest=ethereum.signing_hash(tx),
    )
    results = cluster.run(request, (2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[2]["signature"])
    signed = ethereum.assemble(
        tx,
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    recovered = Account.recover_transaction(ethereum.encode_signed(signed))
    assert recovered == str(ethereum.address_from_public_key(public_key))


def test_recipient_keys_per_process_or_per_unlock(cluster, sol_key) -> None:
    """Party 1 (``--recipient-per-unlock``) attests a new public key for every release;
    parties 2 and 3 keep the one made at process start."""
    message = solana_transfer(sol_key, DESTINATION, 4321)
    assert {r["status"] for r in cluster.run(sign_request(message, (1, 2)), (1, 2)).values()} == {
        "ok"
    }
    keys: dict[str, list[bytes]] = {"1": [], "2": [], "3": []}
    released = _exchanges(cluster, "decrypt")
    for exchange in cluster.served.exchanges[cluster.first_run_exchange :]:
        if exchange not in released:
            continue
        body = json.loads(exchange.request)
        document = decode_document(base64.b64decode(body["document"]))
        assert document.public_key is not None
        keys[body["context"]["party_id"]].append(document.public_key)
    assert len(keys["1"]) >= 2
    assert len(set(keys["1"])) == len(keys["1"])
    assert len(keys["2"]) >= 2
    assert len(set(keys["2"])) == 1
    config = json.loads((cluster.dirs[1] / "cosigner.json").read_text())
    assert config["unlock"]["recipient_per_unlock"] is True


def test_modified_cosigner_gets_no_data_key(cluster, sol_key, tmp_path) -> None:
    """A co-signer process running code with one byte changed does not start: the
    service refuses its attestation (pcr-mismatch) and it never sees a data key."""
    tampered = _snapshot(tmp_path / "tampered", change="cosigner/node.py")
    assert measure(tampered / "shardvault", role=ROLE)[0] != cluster.pcrs[0]
    refused_before = len(_exchanges(cluster, "decrypt", 403))
    released_before = len(_exchanges(cluster, "decrypt"))
    # A copy of party 3's directory: the honest process holds the directory's run lock
    # (one process per co-signer), and the copy has the same sealed shares.
    copy = tmp_path / "copy" / "cosigner-3"
    shutil.copytree(cluster.dirs[3], copy)
    process = _run(tampered, 3, copy, cluster.relay.url)
    try:
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert '"started"' not in out
    log = (copy.parent / "cosigner-3.log").read_text()
    assert "key release refused (pcr-mismatch): AttestationPcrError" in log
    refused = _exchanges(cluster, "decrypt", 403)
    assert len(refused) == refused_before + 1
    assert json.loads(refused[-1].response.split(b"\n")[-1])["reason"] == "pcr-mismatch"
    assert len(_exchanges(cluster, "decrypt")) == released_before
    # The same code, in process, asking for party 3's signing share: refused, typed.
    enclave = DevelopmentEnclave(
        cluster.dev_root,
        measurements=measure(tampered / "shardvault", role=ROLE, root_der=cluster.dev_root.der),
    )
    client = HttpReleaseClient(cluster.served.url, cluster.served.service.public_key)
    try:
        custody = AttestedShareCustody(LocalShareStore(cluster.dirs[3] / "shares"), client, enclave)
        with pytest.raises(AttestationPcrError) as caught:
            custody.load_share(ShareAddress(WORKSPACE, VAULT, "sol-1", "3"))
        assert caught.value.reason == "pcr-mismatch"
    finally:
        client.close()
    # The honest quorum still signs.
    message = solana_transfer(sol_key, DESTINATION, 1000)
    results = cluster.run(sign_request(message, (1, 3)), (1, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    VerifyKey(sol_key).verify(message, bytes.fromhex(results[1]["signature"]))


def test_release_service_away_is_a_typed_failure_and_nothing_is_lost(cluster, sol_key) -> None:
    """Party 3 reaches the service through a proxy that the test cuts: its next unlock
    fails with BackendUnavailableError (reported, the node keeps running), and the
    share is intact for the next process."""
    target = cluster.served.url.removeprefix("http://").split(":")
    proxy = CuttableProxy((target[0], int(target[1])))
    honest = cluster.processes[3]
    _stop(honest)
    honest.stdout.close()
    proxied = _run(cluster.code, 3, cluster.dirs[3], cluster.relay.url, release_url=proxy.url)
    try:
        _wait_started(proxied)
        message = solana_transfer(sol_key, DESTINATION, 555)
        results = cluster.run(sign_request(message, (1, 3)), (1, 3))
        assert {r["status"] for r in results.values()} == {"ok"}, results
        proxy.cut()
        body = sign_request(solana_transfer(sol_key, DESTINATION, 556), (1, 3))
        cluster.core.submit(body, [1, 3])
        failed = cluster.core.wait_results(body["request_id"], [3], RESULT_TIMEOUT)[3]
        assert failed["status"] == "failed"
        assert failed["reason"].startswith("BackendUnavailableError: key-release service")
        # The coordinator aborts the session at party 1, which would otherwise wait.
        abort = {"kind": "abort", "request_id": "abort-away", "session_id": body["session_id"]}
        assert cluster.run(abort, (1,))[1]["status"] == "ok"
        assert proxied.poll() is None
    finally:
        proxy.close()
        _stop(proxied)
        proxied.stdout.close()
        cluster.processes[3] = _run(cluster.code, 3, cluster.dirs[3], cluster.relay.url)
        _wait_started(cluster.processes[3])
    message = solana_transfer(sol_key, DESTINATION, 557)
    results = cluster.run(sign_request(message, (1, 3)), (1, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    VerifyKey(sol_key).verify(message, bytes.fromhex(results[3]["signature"]))


def test_cosigner_attesting_under_another_development_root_is_refused(cluster, tmp_path) -> None:
    stranger = tmp_path / "stranger-root"
    DevelopmentRoot.generate().save(stranger)
    copy = tmp_path / "cosigner-2"
    shutil.copytree(cluster.dirs[2], copy)
    config = json.loads((copy / "cosigner.json").read_text())
    config["unlock"]["enclave"]["root_dir"] = str(stranger)
    (copy / "cosigner.json").write_text(json.dumps(config))
    process = _run(cluster.code, 2, copy, cluster.relay.url)
    try:
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert '"started"' not in out
    log = (copy.parent / "cosigner-2.log").read_text()
    assert "(untrusted-root): AttestationRootError" in log


def test_replayed_document_from_the_wire_is_refused(cluster, sol_key) -> None:
    """An eavesdropper replays a co-signer's recorded release request: the nonce in its
    document was used, so the service refuses it (and the answer, were it given, is
    encrypted to the co-signer's key anyway)."""
    recorded = _exchanges(cluster, "decrypt")[-1]
    response = httpx.post(cluster.served.url + recorded.path, content=recorded.request)
    assert response.status_code == 403
    assert json.loads(response.content)["reason"] == "nonce-mismatch"


def test_no_plaintext_key_or_share_crosses_the_release_service(cluster, sol_key) -> None:
    message = solana_transfer(sol_key, DESTINATION, 777)
    assert {r["status"] for r in cluster.run(sign_request(message), (1, 2)).values()} == {"ok"}
    backend = cluster.served.service.backend
    needles: list[bytes] = []
    packages = {}
    for party, directory in cluster.dirs.items():
        store = LocalShareStore(directory / "shares")
        # Every blob this co-signer holds: its identity, sol-1, and eth-1 when the ECDSA
        # test ran first (the order is random).
        for address in store.addresses():
            blob = store.read(address).blob
            header = inspect(blob)
            # TEST ONLY: the service's backend opens the blob to learn what to search for.
            with backend.unwrap(header.wrapped_key, header.context()) as data_key:
                needles.append(data_key.reveal())
            with open_share(backend, blob, address) as opened:
                plaintext = opened.share.reveal()
            needles.append(plaintext)
            if address.key_id == "sol-1":
                tag, encoded = plaintext.split(b"\x00", 1)
                assert tag == b"shardvault/cosigner/key/frost/v1"
                packages[party] = KeyPackage.from_bytes(encoded)
                needles.append(packages[party].signing_share.to_bytes())
            elif address.key_id == "eth-1":
                tag, encoded = plaintext.split(b"\x00", 1)
                assert tag == b"shardvault/cosigner/key/cggmp21/v1"
                share = KeyShare.from_bytes(encoded)
                needles.append(share.share.to_bytes())
                for prime in (share.paillier_secret.p, share.paillier_secret.q):
                    needles.append(prime.to_bytes((prime.bit_length() + 7) // 8, "big"))
        assert identity_address(party) in store.addresses()
    group = packages[1].public.suite.group
    secret = group.scalar(0)
    for party in (1, 2):
        secret = secret + packages[party].signing_share * lagrange_coefficient(group, party, [1, 2])
    assert group.base_multiply(secret) == packages[1].public.group_public_key
    needles.append(secret.to_bytes())
    traffic = cluster.served.traffic
    logs = b"".join(p.read_bytes() for p in cluster.root_path.glob("cosigner-*.log"))
    assert len(cluster.served.exchanges) > 20
    for needle in needles:
        for encoded in (needle, needle[::-1], needle.hex().encode(), base64.b64encode(needle)):
            assert encoded not in traffic
            assert encoded not in logs
    # Control: what is not secret (a wrapped key) is found by the same search.
    assert base64.b64encode(header.wrapped_key.blob) in traffic


def test_attested_init_and_run_flags_are_checked(tmp_path) -> None:
    from click.testing import CliRunner

    from shardvault.cli.cosigner import group

    admins = tmp_path / "admins.json"
    admins.write_text(json.dumps(ADMIN_SET))
    runner = CliRunner()
    base = ["init", "--id", "1", "--data-dir", str(tmp_path / "n"), "--workspace", WORKSPACE]
    base += ["--admins", str(admins), "--unlock-mode", "attested"]
    missing = runner.invoke(group, [*base, "--release-url", "http://127.0.0.1:9"])
    assert missing.exit_code == 1
    assert "needs --release-url, --release-key and --dev-root-dir" in missing.output
    bad_key = runner.invoke(
        group,
        [*base, "--release-url", "http://x", "--release-key", "zz", "--dev-root-dir", "d"],
    )
    assert bad_key.exit_code == 1
    assert "--release-key" in bad_key.output
    assert not (tmp_path / "n").exists()
    # A service that is not there: init fails, typed, and leaves no configuration.
    DevelopmentRoot.generate().save(tmp_path / "root")
    away = runner.invoke(
        group,
        [
            *base,
            "--release-url",
            "http://127.0.0.1:9",
            "--release-key",
            "00" * 32,
            "--dev-root-dir",
            str(tmp_path / "root"),
        ],
    )
    assert away.exit_code == 1
    assert "unreachable" in away.output
    assert not (tmp_path / "n" / "cosigner.json").exists()


def test_run_refuses_a_mode_the_data_directory_does_not_use(tmp_path) -> None:
    from click.testing import CliRunner

    from shardvault.cli.cosigner import group
    from tests.cosigner.support import make_nodes

    directory = make_nodes(tmp_path, count=1)[1]
    result = CliRunner().invoke(
        group,
        [
            *("run", "--id", "1", "--data-dir", str(directory)),
            *("--coordinator", "http://127.0.0.1:9", "--unlock-mode", "attested"),
        ],
    )
    assert result.exit_code == 1
    assert "unlocks in passphrase mode, not attested" in result.output


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mode", "telepathy", "unknown unlock mode"),
        ("release_url", 5, "release_url and release_public_key"),
        ("release_public_key", "zz", "must be hex"),
        ("release_public_key", "00" * 31, "32 bytes"),
        ("enclave", {"type": "nitro"}, "unlock.enclave must be"),
        ("enclave", {"type": "development", "root_dir": 1}, "root_dir and role"),
    ],
)
def test_bad_unlock_configuration_is_refused(tmp_path, field, value, message) -> None:
    from shardvault.cosigner.errors import ConfigurationError
    from shardvault.cosigner.state import AttestedUnlock, open_node

    unlock = AttestedUnlock("http://127.0.0.1:9", bytes(32), tmp_path / "root").to_json()
    unlock[field] = value
    (tmp_path / "cosigner.json").write_text(
        json.dumps(
            {
                "format": "shardvault.cosigner/v2",
                "party": 1,
                "workspace": WORKSPACE,
                "admins": ADMIN_SET,
                "unlock": unlock,
                "directory": {},
            }
        )
    )
    (tmp_path / "cosigner.json").chmod(0o600)
    # The unlock settings are read before the identity that verifies the file is unsealed.
    with pytest.raises(ConfigurationError, match=message):
        open_node(tmp_path, None)
