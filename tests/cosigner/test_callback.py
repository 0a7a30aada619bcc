"""The customer callback: a co-signer signs only on its customer's signed approval.

Three co-signer nodes run in this process over an in-memory relay (the test plays the
coordinator); party 1 is configured with a callback to a customer service served by
``http.server`` on 127.0.0.1 (``callback_support.py``), which checks the co-signer's
signature with PyNaCl and signs its answers. Party 2 has no callback. Anything but a
validly signed, fresh approval makes party 1 refuse with check ``callback``.
"""

from __future__ import annotations

import json
import secrets
import socket

import pytest
from click.testing import CliRunner
from eth_account import Account
from nacl.signing import VerifyKey

from shardvault.chains import ethereum, solana
from shardvault.cli.main import cli
from shardvault.cosigner.callback import MAX_REASON_CHARS, CallbackSettings
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.link import InMemoryLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import configure_callback, open_node, read_public_identity
from shardvault.crypto.channel import Directory
from shardvault.custody.secret import SecretBytes
from tests.cosigner.callback_support import REQUEST_DOMAIN, CustomerService
from tests.cosigner.support import (
    ADMIN_SET,
    DESTINATION,
    LAMPORTS_PER_SOL,
    PASSPHRASE,
    TEST_ONLY_PRIMES,
    VAULT,
    WORKSPACE,
    dkg_request,
    make_nodes,
    sign_request,
    signed_bundle,
    solana_digest,
    solana_transfer,
    unseal,
)

TIMEOUT = 1.0
"""The callback timeout configured at party 1 (seconds)."""

"""TEST-ONLY published safe primes, so CGGMP21 auxiliary info needs no prime search."""


class Cluster:
    """Three nodes and a relay; party 1 asks ``service`` before it signs."""

    def __init__(self, root, service: CustomerService) -> None:
        self.dirs = make_nodes(root)
        settings = CallbackSettings(service.url, service.public_key, TIMEOUT)
        configure_callback(self.dirs[1], unseal(self.dirs[1]), settings)
        identities = {p: read_public_identity(d)[1] for p, d in self.dirs.items()}
        service.trusted = {p: i.signing_key for p, i in identities.items()}
        self.core = RelayCore(Directory.of(identities))
        self.nodes = {}
        for party, data_dir in self.dirs.items():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                state = open_node(data_dir, passphrase)
            self.nodes[party] = CosignerNode(
                state, InMemoryLink(self.core, party), test_only_primes=TEST_ONLY_PRIMES
            )

    def pump(self) -> None:
        for _ in range(50):
            if not any(node.step(0.0) for node in self.nodes.values()):
                return
        raise AssertionError("nodes did not go quiet")

    def run(self, body, parties):
        self.core.submit(body, parties)
        self.pump()
        return self.core.results(body["request_id"])

    def close(self) -> None:
        for node in self.nodes.values():
            node.state.close()


@pytest.fixture(scope="module")
def service():
    s = CustomerService()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, service):
    c = Cluster(tmp_path_factory.mktemp("callback"), service)
    policy = {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]}
    results = c.run(policy, [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    # Key generation does not ask the customer (only signing requests do).
    results = c.run(dkg_request(), [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    c.sol_key = bytes.fromhex(results[1]["public_key"])
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _fresh_service(service):
    service.mode = "approve"
    service.delay = 0.0
    service.reason = "outside business hours"
    service.received.clear()


def _sign(cluster, lamports: int, signers=(1, 2)):
    message = solana_transfer(cluster.sol_key, DESTINATION, lamports)
    body = sign_request(message, signers, digest=solana_digest(message))
    return message, body, cluster.run(body, list(signers))


def _refused_at_party_1(cluster, body, results) -> str:
    """Party 1 refused with check ``callback``; the coordinator aborts party 2's session
    (which would otherwise wait for party 1 until its timeout). Returns the reason."""
    assert results[1]["status"] == "refused", results
    assert results[1]["check"] == "callback"
    assert 2 not in results
    abort = {"kind": "abort", "request_id": f"abort-{secrets.token_hex(4)}"}
    aborted = cluster.run({**abort, "session_id": body["session_id"]}, [2])
    assert aborted[2]["status"] == "ok", aborted
    return results[1]["reason"]


def test_approved_request_is_signed_and_the_request_is_signed_by_the_cosigner(
    cluster, service
) -> None:
    message, body, results = _sign(cluster, LAMPORTS_PER_SOL // 2)
    assert {r["status"] for r in results.values()} == {"ok"}, results
    VerifyKey(cluster.sol_key).verify(message, bytes.fromhex(results[1]["signature"]))
    (received,) = service.received
    assert service.refused_signatures == 0
    _, identity = read_public_identity(cluster.dirs[1])
    # The customer can check the request independently (PyNaCl, documented bytes).
    VerifyKey(identity.signing_key).verify(
        REQUEST_DOMAIN + received.body, bytes.fromhex(received.headers["x-shardvault-signature"])
    )
    assert received.headers["x-shardvault-cosigner"] == "1"
    document = received.document
    assert (
        received.body
        == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    )
    assert document["format"] == "shardvault.cosigner.callback/v1"
    assert document["party"] == 1
    assert document["identity_key"] == identity.signing_key.hex()
    assert document["workspace"] == WORKSPACE
    assert document["request_id"] == body["request_id"]
    assert document["chain"] == "solana"
    assert document["operation"] == "transfer"
    assert document["network"] == "solana"
    assert document["source"]["address"] == str(solana.Pubkey(cluster.sol_key))
    assert document["destination"] == str(solana.Pubkey(DESTINATION))
    assert document["asset"] == {"id": "SOL", "decimals": 9}
    assert document["amount"] == str(LAMPORTS_PER_SOL // 2)
    assert document["approval_digest"] == solana_digest(message).hex()
    assert document["signing_message"] == message.hex()
    assert document["policy"] == {"version": 1, "rule": "small-sol"}
    assert len(bytes.fromhex(document["nonce"])) == 32
    assert isinstance(document["timestamp"], int)


def test_every_request_has_a_fresh_nonce(cluster, service) -> None:
    for lamports in (1001, 1002):
        _, _, results = _sign(cluster, lamports)
        assert {r["status"] for r in results.values()} == {"ok"}, results
    nonces = {r.document["nonce"] for r in service.received}
    assert len(nonces) == 2


def test_a_rejection_is_refused_with_the_customers_reason(cluster, service) -> None:
    service.mode = "reject"
    service.reason = "outside business hours"
    _, body, results = _sign(cluster, 2001)
    assert _refused_at_party_1(cluster, body, results) == "rejected: outside business hours"
    # A long reason with control characters is cut and made printable.
    service.reason = "\n" + "x" * 500
    _, body, results = _sign(cluster, 2002)
    reason = _refused_at_party_1(cluster, body, results)
    assert reason == "rejected:  " + "x" * (MAX_REASON_CHARS - 1) + "..."


def test_an_answer_signed_by_another_key_is_refused(cluster, service) -> None:
    service.mode = "wrong-key"
    _, body, results = _sign(cluster, 3001)
    assert _refused_at_party_1(cluster, body, results).startswith("bad signature")


def test_an_unsigned_answer_is_refused(cluster, service) -> None:
    service.mode = "unsigned"
    _, body, results = _sign(cluster, 3002)
    assert _refused_at_party_1(cluster, body, results).startswith("bad signature")


def test_a_replayed_old_approval_is_refused(cluster, service) -> None:
    _, _, results = _sign(cluster, 4001)
    assert {r["status"] for r in results.values()} == {"ok"}, results
    service.mode = "replay"
    _, body, results = _sign(cluster, 4002)
    reason = _refused_at_party_1(cluster, body, results)
    assert reason == "the answer is for another request (id or nonce)"


def test_a_slow_answer_is_refused_as_a_timeout(cluster, service) -> None:
    service.mode = "slow"
    service.delay = TIMEOUT + 1.0
    _, body, results = _sign(cluster, 5001)
    assert _refused_at_party_1(cluster, body, results) == f"timeout after {TIMEOUT:g} s"


def test_an_error_status_is_refused(cluster, service) -> None:
    service.mode = "status-500"
    _, body, results = _sign(cluster, 5002)
    assert _refused_at_party_1(cluster, body, results) == "http status 500"


def test_an_answer_that_is_neither_approve_nor_reject_is_refused(cluster, service) -> None:
    service.mode = "maybe"
    _, body, results = _sign(cluster, 5003)
    assert _refused_at_party_1(cluster, body, results).startswith("malformed answer")


def test_the_policy_decides_before_the_customer_is_asked(cluster, service) -> None:
    """A transfer the signed policy blocks is refused by the policy check; the customer
    never sees it."""
    _, _, results = _sign(cluster, 6 * LAMPORTS_PER_SOL)
    assert results[1]["check"] == "policy"
    assert results[1]["rule"] == "block-large-sol"
    assert service.received == []


def test_a_cosigner_without_callback_does_not_ask(cluster, service) -> None:
    _, _, results = _sign(cluster, 7001, signers=(2, 3))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    assert service.received == []


def test_a_service_that_is_down_is_refused(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = CustomerService()
    down.stop()
    down.url = f"http://127.0.0.1:{port}/approve"
    cluster = Cluster(tmp_path, down)
    try:
        policy = {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]}
        cluster.run(policy, [1, 2, 3])
        results = cluster.run(dkg_request(), [1, 2, 3])
        cluster.sol_key = bytes.fromhex(results[1]["public_key"])
        _, body, results = _sign(cluster, 8001)
        reason = _refused_at_party_1(cluster, body, results)
        assert reason.startswith("unreachable: ConnectError")
    finally:
        cluster.close()


@pytest.mark.parametrize(
    ("url", "key", "timeout", "message"),
    [
        ("ftp://example.com/x", bytes(32), 10.0, "http:// or https://"),
        ("https:///nohost", bytes(32), 10.0, "http:// or https://"),
        ("https://example.com", bytes(31), 10.0, "32 bytes"),
        ("https://example.com", bytes(32), 0.0, "timeout_seconds"),
        ("https://example.com", bytes(32), 61.0, "timeout_seconds"),
    ],
)
def test_bad_callback_settings_are_refused(url, key, timeout, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CallbackSettings(url, key, timeout)


def test_callback_section_is_read_strictly() -> None:
    good = CallbackSettings("https://example.com/cb", bytes(32)).to_json()
    assert CallbackSettings.from_json(good) == CallbackSettings("https://example.com/cb", bytes(32))
    for bad in ({**good, "extra": 1}, {**good, "public_key": "zz"}, {**good, "url": 5}):
        with pytest.raises(ConfigurationError):
            CallbackSettings.from_json(bad)


def test_cli_configure_sets_and_removes_the_callback_and_signs_again(
    tmp_path, monkeypatch, service
) -> None:
    monkeypatch.setenv("SV_CB_PASS", PASSPHRASE)
    directory = make_nodes(tmp_path, count=1)[1]
    base = ["cosigner", "configure", "--data-dir", str(directory), "--passphrase-env", "SV_CB_PASS"]
    runner = CliRunner()
    assert runner.invoke(cli, base).exit_code != 0  # nothing to configure
    result = runner.invoke(
        cli,
        [
            *base,
            *("--callback-url", service.url, "--callback-key", service.public_key.hex()),
            *("--callback-timeout", "5"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["callback"]["timeout_seconds"] == 5.0
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        state = open_node(directory, passphrase)
    assert state.callback is not None
    assert state.callback.settings == CallbackSettings(service.url, service.public_key, 5.0)
    state.close()
    bad = runner.invoke(
        cli, [*base, "--callback-url", "file:///etc/passwd", "--callback-key", "00" * 32]
    )
    assert bad.exit_code != 0
    assert "http:// or https://" in bad.stderr
    assert runner.invoke(cli, [*base, "--remove-callback"]).exit_code == 0
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        state = open_node(directory, passphrase)
    assert state.callback is None
    state.close()
    # Removing the callback by editing the file is what the signature stops.
    config = json.loads((directory / "cosigner.json").read_text())
    config["callback"] = CallbackSettings(service.url, service.public_key).to_json()
    (directory / "cosigner.json").write_text(json.dumps(config))
    with (
        SecretBytes(PASSPHRASE.encode()) as passphrase,
        pytest.raises(ConfigurationError, match="signature does not verify"),
    ):
        open_node(directory, passphrase)


def test_cli_init_with_a_callback(tmp_path, monkeypatch, service) -> None:
    monkeypatch.setenv("SV_CB_PASS", PASSPHRASE)
    admins = tmp_path / "admins.json"
    admins.write_text(json.dumps(ADMIN_SET))
    directory = tmp_path / "node"
    result = CliRunner().invoke(
        cli,
        [
            *("cosigner", "init", "--id", "1", "--data-dir", str(directory)),
            *("--workspace", WORKSPACE, "--admins", str(admins), "--passphrase-env", "SV_CB_PASS"),
            *("--dev-argon2", "--callback-url", service.url),
            *("--callback-key", service.public_key.hex()),
        ],
    )
    assert result.exit_code == 0, result.output
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        state = open_node(directory, passphrase)
    assert state.callback is not None
    assert state.callback.settings.url == service.url
    state.close()


@pytest.fixture(scope="module")
def eth_key(cluster) -> bytes:
    """A CGGMP21 key of parties 1, 2 and 3 (made with the TEST-ONLY primes)."""
    body = dkg_request(scheme="ecdsa-secp256k1", key_id="eth-1")
    body["aux_session_id"] = secrets.token_hex(32)
    results = cluster.run(body, [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    return bytes.fromhex(results[1]["public_key"])


def _presign(cluster, label: str) -> None:
    body = {
        "kind": "presign",
        "request_id": f"presign-{label}",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": "eth-1",
        "signers": [1, 2],
        "presignature": label,
    }
    assert {r["status"] for r in cluster.run(body, [1, 2]).values()} == {"ok"}


def test_ethereum_signing_asks_the_customer_with_the_digest_it_signs(
    cluster, service, eth_key
) -> None:
    """CGGMP21: a rejection leaves party 1's presignature unspent; an approval signs,
    and the signature recovers (eth-account) to the key's address."""
    tx = ethereum.native_transfer(
        chain_id=1,
        nonce=0,
        to="0x2222222222222222222222222222222222222222",
        amount="0.5",
        fees=ethereum.FeeParameters(30 * 10**9, 10**9, 21000),
    )
    payload, digest = ethereum.encode_unsigned(tx), ethereum.signing_hash(tx)
    _presign(cluster, "p-reject")
    service.mode = "reject"
    body = sign_request(
        payload, (1, 2), chain="ethereum", key_id="eth-1", presignature="p-reject", digest=digest
    )
    results = cluster.run(body, [1, 2])
    assert _refused_at_party_1(cluster, body, results) == "rejected: outside business hours"
    (asked,) = service.received
    document = asked.document
    address = str(ethereum.address_from_public_key(eth_key))
    assert document["signing_message"] == digest.hex() == document["approval_digest"]
    assert document["network"] == ethereum.KNOWN_NETWORKS[1].name
    assert document["source"]["address"] == address
    assert document["destination"] == "0x2222222222222222222222222222222222222222"
    assert document["asset"] == {"id": "ETH", "decimals": 18}
    assert document["amount"] == str(5 * 10**17)
    # Party 1 did not spend its presignature: asked again, it takes the request and
    # waits for party 2's records (party 2 spent its own presignature and refuses), so
    # its customer is not asked again: the customer is asked only once the quorum's
    # records are merged.
    service.mode = "approve"
    again = {**body, "request_id": "again", "session_id": secrets.token_hex(32)}
    results = cluster.run(again, [1, 2])
    assert results[2]["check"] == "key"
    assert 1 not in results
    assert len(service.received) == 1
    abort = {"kind": "abort", "request_id": "abort-again", "session_id": again["session_id"]}
    assert cluster.run(abort, [1])[1]["status"] == "ok"
    _presign(cluster, "p-approve")
    body = sign_request(
        payload, (1, 2), chain="ethereum", key_id="eth-1", presignature="p-approve", digest=digest
    )
    results = cluster.run(body, [1, 2])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[1]["signature"])
    signed = ethereum.assemble(
        tx,
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    assert Account.recover_transaction(ethereum.encode_signed(signed)) == address
