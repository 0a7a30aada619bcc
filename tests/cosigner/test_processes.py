"""Three co-signer processes and a relay on 127.0.0.1, end to end.

The processes are ``shardvault cosigner run`` subprocesses that connect out to the relay
(they open no port). The test plays the coordinator: it installs a signed policy, runs a
FROST 2-of-3 key generation and signing sessions, and plays a compromised coordinator.
Signatures are verified with PyNaCl (libsodium's Ed25519, RFC 8032). Invariant 1 is
checked by searching every envelope that crossed the relay, and every result, for the
group secret (interpolated here, test-only) and for each plaintext share.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from nacl.signing import VerifyKey

from shardvault.chains import ethereum
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import open_node, read_public_identity
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.channel import Directory, peek_header
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.custody.secret import SecretBytes
from tests.cosigner.callback_support import CustomerService
from tests.cosigner.initiator_support import forward_solana
from tests.cosigner.support import (
    DESTINATION,
    LAMPORTS_PER_SOL,
    OTHER_DESTINATION,
    PASSPHRASE,
    VAULT,
    approval,
    dkg_request,
    make_nodes,
    sign_request,
    signed_bundle,
    solana_digest,
    solana_transfer,
)
from tests.cosigner_processes import LoopbackRelay

PASSPHRASE_ENV = "SV_TEST_COSIGNER_PASSPHRASE"
FIXTURE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "test_only_paillier.json"
"""TEST-ONLY published safe primes, so CGGMP21 auxiliary info needs no prime search."""
RESULT_TIMEOUT = 20.0


def _start(party: int, data_dir: Path, url: str, poll_wait: float = 1.0) -> subprocess.Popen:
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE}
    # The log goes to a file beside the data directory, so a full pipe never blocks it.
    log = open(data_dir.parent / f"cosigner-{party}.log", "a")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shardvault.cli.main",
            "cosigner",
            "run",
            "--id",
            str(party),
            "--data-dir",
            str(data_dir),
            "--coordinator",
            url,
            "--passphrase-env",
            PASSPHRASE_ENV,
            "--poll-wait",
            str(poll_wait),
            "--session-timeout",
            "15",
            "--unsafe-test-only-primes",
            str(FIXTURE_PATH),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        text=True,
    )
    log.close()
    return process


def _wait_started(process: subprocess.Popen) -> None:
    line = process.stdout.readline()
    assert json.loads(line)["event"] == "started", line


def _stop(process: subprocess.Popen) -> float:
    """SIGTERM, wait; returns the seconds it took. Kills (and fails) on a hang."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("co-signer did not stop on SIGTERM") from None
    return time.monotonic() - began


class Cluster:
    def __init__(self, root: Path) -> None:
        self.dirs = make_nodes(root, count=4)
        directory = Directory.of({p: read_public_identity(d)[1] for p, d in self.dirs.items()})
        self.relay = LoopbackRelay(RelayCore(directory))
        self.core = self.relay.core
        self.processes = {p: _start(p, self.dirs[p], self.relay.url) for p in (1, 2, 3)}
        for process in self.processes.values():
            _wait_started(process)

    def run(self, body: dict, parties) -> dict[int, dict]:
        self.core.submit(body, list(parties))
        results = self.core.wait_results(body["request_id"], list(parties), RESULT_TIMEOUT)
        assert set(results) == set(parties), results
        return results

    def close(self) -> list[tuple[int, int, float]]:
        stopped = []
        try:
            for party, process in self.processes.items():
                took = _stop(process)
                stopped.append((party, process.returncode, took))
                process.stdout.close()
        finally:
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
            self.relay.close()
        return stopped


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("processes"))
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
    # Every process stopped on SIGTERM, cleanly and quickly.
    assert [(p, code) for p, code, _ in stopped] == [(1, 0), (2, 0), (3, 0)]
    assert max(took for _, _, took in stopped) < 5


@pytest.fixture(scope="module")
def sol_key(cluster) -> bytes:
    results = cluster.run(dkg_request(), (1, 2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    keys = {r["public_key"] for r in results.values()}
    assert len(keys) == 1
    return bytes.fromhex(keys.pop())


def _statuses(results):
    return {(r["status"], r.get("check"), r.get("rule")) for r in results.values()}


def test_dkg_and_signing_across_processes(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 4)
    results = cluster.run(sign_request(message, (2, 3), digest=solana_digest(message)), (2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[2]["signature"])
    assert results[3]["signature"] == results[2]["signature"]
    VerifyKey(sol_key).verify(message, signature)


def test_forbidden_request_is_refused_by_every_process(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, 10 * LAMPORTS_PER_SOL)
    results = cluster.run(sign_request(message, (1, 2, 3)), (1, 2, 3))
    assert _statuses(results) == {("refused", "policy", "block-large-sol")}
    assert all("signature" not in r for r in results.values())


def test_compromised_coordinator_gets_no_signature(cluster, sol_key):
    approved = solana_transfer(sol_key, DESTINATION, 2 * LAMPORTS_PER_SOL)
    good = approval(solana_digest(approved))
    # A digest that is not the payload's.
    swapped = solana_transfer(sol_key, OTHER_DESTINATION, 2 * LAMPORTS_PER_SOL)
    results = cluster.run(
        sign_request(swapped, (1, 3), approvals=[good], digest=solana_digest(approved)), (1, 3)
    )
    assert _statuses(results) == {("refused", "digest", None)}
    # The approved payload with its recipient or amount changed after approval.
    for changed in (swapped, solana_transfer(sol_key, DESTINATION, 3 * LAMPORTS_PER_SOL)):
        results = cluster.run(sign_request(changed, (1, 3), approvals=[good]), (1, 3))
        assert _statuses(results) == {("refused", "policy", "sol-needs-approval")}
    # The approved payload itself is signed (alice signed its request, carol approved).
    body = sign_request(approved, (1, 3), approvals=[good])
    results = cluster.run(forward_solana(body, DESTINATION, 2 * LAMPORTS_PER_SOL), (1, 3))
    assert {r["status"] for r in results.values()} == {"ok"}
    VerifyKey(sol_key).verify(approved, bytes.fromhex(results[1]["signature"]))


def test_replayed_envelope_is_refused(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, 1234)
    body = sign_request(message, (1, 2))
    assert {r["status"] for r in cluster.run(body, (1, 2)).values()} == {"ok"}
    sid = bytes.fromhex(body["session_id"])
    old = next(e for e in cluster.core.transcript if bytes(peek_header(e).session_id) == sid)
    receiver = 3 - peek_header(old).sender
    before = len(cluster.core.events)
    cluster.core.inject(receiver, old)
    deadline = time.monotonic() + RESULT_TIMEOUT
    while time.monotonic() < deadline:
        refused = [e for e in cluster.core.events[before:] if e.get("event") == "envelope_refused"]
        if refused:
            break
        time.sleep(0.05)
    assert [(e["party"], e["error"]) for e in refused] == [(receiver, "ReplayError")]


def _stored_keys(cluster, key_id: str) -> dict[int, bytes]:
    """Each co-signer's decrypted key record (TEST ONLY: opens its custody)."""
    out = {}
    for party in (1, 2, 3):
        with SecretBytes(PASSPHRASE.encode()) as passphrase:
            state = open_node(cluster.dirs[party], passphrase)
        try:
            with state.custody.load_share(state.share_address(VAULT, key_id)) as opened:
                out[party] = opened.share.reveal()
        finally:
            state.close()
    return out


def test_no_secret_crosses_the_relay(cluster, sol_key, eth_key):
    # Sign once more so the transcript holds key generation and several signings.
    message = solana_transfer(sol_key, DESTINATION, 99)
    assert {r["status"] for r in cluster.run(sign_request(message), (1, 2)).values()} == {"ok"}
    secrets_to_find: list[bytes] = []
    # FROST (Ed25519): every signing share, and the group secret interpolated here.
    frost = {}
    for party, record in _stored_keys(cluster, "sol-1").items():
        tag, encoded = record.split(b"\x00", 1)
        assert tag == b"shardvault/cosigner/key/frost/v1"
        frost[party] = KeyPackage.from_bytes(encoded)
    group = frost[1].public.suite.group
    secret = group.scalar(0)
    for party in (1, 2):
        secret = secret + frost[party].signing_share * lagrange_coefficient(group, party, [1, 2])
    assert group.base_multiply(secret) == frost[1].public.group_public_key
    secrets_to_find += [secret.to_bytes(), *(k.signing_share.to_bytes() for k in frost.values())]
    # CGGMP21 (secp256k1): every x_i, every Paillier prime, and the whole ECDSA key.
    ecdsa = {}
    for party, record in _stored_keys(cluster, "eth-1").items():
        tag, encoded = record.split(b"\x00", 1)
        assert tag == b"shardvault/cosigner/key/cggmp21/v1"
        ecdsa[party] = KeyShare.from_bytes(encoded)
    curve = ecdsa[1].public_key.group
    whole = curve.scalar(0)
    for party in (2, 3):
        whole = whole + ecdsa[party].share * lagrange_coefficient(curve, party, [2, 3])
    assert curve.base_multiply(whole).to_bytes() == eth_key
    secrets_to_find += [whole.to_bytes(), *(k.share.to_bytes() for k in ecdsa.values())]
    for share in ecdsa.values():
        for prime in (share.paillier_secret.p, share.paillier_secret.q):
            secrets_to_find.append(prime.to_bytes((prime.bit_length() + 7) // 8, "big"))
    wire = b"".join(cluster.core.transcript)
    reported = json.dumps(
        [cluster.core.results(rid) for rid in cluster.core.request_ids()], sort_keys=True
    ).encode()
    logs = b"".join(p.read_bytes() for p in cluster.dirs[1].parent.glob("cosigner-*.log"))
    assert b"signed" in logs  # the co-signers do log their work
    assert len(cluster.core.transcript) > 20
    for encoded in secrets_to_find:
        for needle in (encoded, encoded[::-1], encoded.hex().encode()):
            assert needle not in wire
            assert needle not in reported
            assert needle not in logs


@pytest.fixture(scope="module")
def eth_key_and_chain_code(cluster) -> tuple[bytes, bytes]:
    body = dkg_request(scheme="ecdsa-secp256k1", key_id="eth-1")
    body["aux_session_id"] = secrets.token_hex(32)
    results = cluster.run(body, (1, 2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    public_key = bytes.fromhex(results[1]["public_key"])
    assert {r["public_key"] for r in results.values()} == {public_key.hex()}
    return public_key, bytes.fromhex(results[1]["chain_code"])


@pytest.fixture(scope="module")
def eth_key(eth_key_and_chain_code) -> bytes:
    return eth_key_and_chain_code[0]


def test_ecdsa_keygen_presign_and_ethereum_signature(cluster, eth_key_and_chain_code):
    public_key, chain_code = eth_key_and_chain_code
    address = ethereum.address_from_public_key(public_key)
    presign = {
        "kind": "presign",
        "request_id": "presign-1",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": "eth-1",
        "signers": [1, 3],
        "presignature": "p1",
    }
    assert {r["status"] for r in cluster.run(presign, (1, 3)).values()} == {"ok"}
    tx = ethereum.native_transfer(
        chain_id=1,
        nonce=0,
        to="0x2222222222222222222222222222222222222222",
        amount="0.5",
        fees=ethereum.FeeParameters(30 * 10**9, 10**9, 21000),
    )
    payload = ethereum.encode_unsigned(tx)
    body = sign_request(
        payload,
        (1, 3),
        chain="ethereum",
        key_id="eth-1",
        presignature="p1",
        digest=ethereum.signing_hash(tx),
    )
    results = cluster.run(body, (1, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[1]["signature"])
    r, s_value, v = (
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    raw = ethereum.encode_signed(ethereum.assemble(tx, r, s_value, v))
    assert Account.recover_transaction(raw) == str(address)
    # One key generation, many addresses: presign and sign at a BIP32 path; the signer
    # recovered from the signature is the address derived from the root xpub.
    path = "m/44/60/0/0/7"
    child = ExtendedPublicKey(SECP256K1.decode_point(public_key), chain_code).derive(path)
    child_address = ethereum.address_from_public_key(child.public_key.to_bytes())
    derived_presign = {
        **presign,
        "request_id": "presign-path",
        "session_id": secrets.token_hex(32),
        "presignature": "p-path",
        "path": path,
    }
    assert {r["status"] for r in cluster.run(derived_presign, (1, 3)).values()} == {"ok"}
    derived = sign_request(
        payload, (1, 3), chain="ethereum", key_id="eth-1", presignature="p-path", path=path
    )
    results = cluster.run(derived, (1, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[3]["signature"])
    raw = ethereum.encode_signed(
        ethereum.assemble(
            tx,
            int.from_bytes(signature[:32], "big"),
            int.from_bytes(signature[32:64], "big"),
            signature[64],
        )
    )
    assert Account.recover_transaction(raw) == str(child_address) != str(address)
    # A presignature made for one path does not sign for another.
    other_presign = {
        **derived_presign,
        "request_id": "presign-other",
        "session_id": secrets.token_hex(32),
        "presignature": "p-other",
    }
    assert {r["status"] for r in cluster.run(other_presign, (1, 3)).values()} == {"ok"}
    mismatched = sign_request(
        payload,
        (1, 3),
        chain="ethereum",
        key_id="eth-1",
        presignature="p-other",
        path="m/44/60/0/0/8",
    )
    assert _statuses(cluster.run(mismatched, (1, 3))) == {("refused", "key", None)}
    # The presignature was consumed: a second request naming it gets nothing.
    again = cluster.run(
        {**body, "request_id": "again", "session_id": secrets.token_hex(32)}, (1, 3)
    )
    assert _statuses(again) == {("refused", "key", None)}


def test_sigterm_interrupts_a_long_poll(cluster):
    # Party 4 is known to the relay but has no work: it sits in a 10-second poll.
    process = _start(4, cluster.dirs[4], cluster.relay.url, poll_wait=10.0)
    try:
        _wait_started(process)
        time.sleep(0.5)
        took = _stop(process)
        assert process.returncode == 0
        assert took < 3
        assert json.loads(process.stdout.readline())["event"] == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_customer_callback_in_a_cosigner_process(tmp_path):
    """Two fresh processes on a relay of their own; party 2, given a customer callback
    with ``cosigner configure``, signs a transfer its customer approves and refuses one
    it rejects, naming the callback; party 1 (no callback) signs what its policy allows."""
    service = CustomerService()
    dirs = make_nodes(tmp_path, count=2)
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE}
    configured = subprocess.run(
        [
            *(sys.executable, "-m", "shardvault.cli.main", "cosigner", "configure"),
            *("--data-dir", str(dirs[2]), "--passphrase-env", PASSPHRASE_ENV),
            *("--callback-url", service.url, "--callback-key", service.public_key.hex()),
            *("--callback-timeout", "5"),
        ],
        capture_output=True,
        env=env,
        text=True,
        timeout=60,
        check=False,
    )
    assert configured.returncode == 0, configured.stderr
    identities = {p: read_public_identity(d)[1] for p, d in dirs.items()}
    service.trusted = {2: identities[2].signing_key}
    relay = LoopbackRelay(RelayCore(Directory.of(identities)))
    processes = {}
    try:
        processes = {p: _start(p, d, relay.url) for p, d in dirs.items()}
        for process in processes.values():
            _wait_started(process)

        def run(body, parties):
            relay.core.submit(body, list(parties))
            return relay.core.wait_results(
                body["request_id"], list(parties), RESULT_TIMEOUT, first_failure=True
            )

        policy = {"kind": "policy", "request_id": "policy", "bundles": [signed_bundle().to_json()]}
        assert {r["status"] for r in run(policy, (1, 2)).values()} == {"ok"}
        results = run(dkg_request(parties=(1, 2)), (1, 2))
        assert {r["status"] for r in results.values()} == {"ok"}, results
        key = bytes.fromhex(results[2]["public_key"])
        assert service.received == []  # key generation does not ask
        message = solana_transfer(key, DESTINATION, LAMPORTS_PER_SOL // 10)
        approved = run(sign_request(message, (1, 2)), (1, 2))
        assert {r["status"] for r in approved.values()} == {"ok"}, approved
        VerifyKey(key).verify(message, bytes.fromhex(approved[2]["signature"]))
        assert len(service.received) == 1
        assert service.refused_signatures == 0
        service.mode = "reject"
        service.reason = "unknown destination"
        body = sign_request(message, (1, 2))
        refused = run(body, (1, 2))
        assert (refused[2]["status"], refused[2]["check"], refused[2]["reason"]) == (
            "refused",
            "callback",
            "rejected: unknown destination",
        )
        abort = {"kind": "abort", "request_id": "abort", "session_id": body["session_id"]}
        assert run(abort, (1,))[1]["status"] == "ok"
    finally:
        for process in processes.values():
            _stop(process)
            process.stdout.close()
        relay.close()
        service.stop()
