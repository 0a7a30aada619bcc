"""The development enclave and attested key release, end to end on one machine.

The enclave's documents go through the same verifier as the real AWS documents of
test_nitro.py; the releaser sits in front of each backend (local keyring, SoftHSM2,
moto KMS, stub), because moto ignores KMS ``Recipient``.
"""

from __future__ import annotations

import secrets
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import shardvault
from shardvault.custody.attestation.devenclave import DevelopmentEnclave, DevelopmentRoot, measure
from shardvault.custody.attestation.nitro import NitroVerifier, PcrPolicy
from shardvault.custody.envelope import (
    ShareAddress,
    ShareSlot,
    open_share_with_data_key,
    seal_share,
)
from shardvault.custody.errors import (
    AttestationDebugError,
    AttestationError,
    AttestationExpiredError,
    AttestationNonceError,
    AttestationPcrError,
    AttestationPublicKeyError,
    AttestationRootError,
    ConfigurationError,
    IntegrityError,
)
from shardvault.custody.release import AttestedKeyReleaser
from shardvault.custody.secret import SecretBytes
from tests.custody.conftest import BackendHarness
from tests.custody.stub_kms import StubKmsBackend, StubKmsService

ADDRESS = ShareAddress("ws1", "vault-a", "key-1", "cosigner-1")


@pytest.fixture(scope="module")
def root() -> DevelopmentRoot:
    return DevelopmentRoot.generate()


@pytest.fixture(scope="module")
def enclave(root: DevelopmentRoot) -> DevelopmentEnclave:
    return DevelopmentEnclave(root)


def _verifier(root: DevelopmentRoot) -> NitroVerifier:
    return NitroVerifier(root.pem, allow_development_root=True)


def _policy(enclave: DevelopmentEnclave) -> PcrPolicy:
    return PcrPolicy(expected={i: enclave.pcrs[i] for i in (0, 1, 2, 3, 8)})


def test_development_document_verifies_with_its_measurements(
    root: DevelopmentRoot, enclave: DevelopmentEnclave
) -> None:
    nonce = secrets.token_bytes(32)
    doc = _verifier(root).verify(
        enclave.attest(nonce, b"hello"), policy=_policy(enclave), expected_nonce=nonce
    )
    assert doc.module_id == enclave.module_id
    assert doc.public_key == enclave.public_key_der
    assert doc.user_data == b"hello"
    assert not doc.debug_mode
    assert doc.pcrs[8] == measure(root_der=root.der)[8]


def test_production_refuses_the_development_root(
    root: DevelopmentRoot, enclave: DevelopmentEnclave
) -> None:
    with pytest.raises(ConfigurationError):
        NitroVerifier(root.pem)
    with pytest.raises(AttestationRootError):
        NitroVerifier().verify(enclave.attest())


def test_another_development_root_is_refused(enclave: DevelopmentEnclave) -> None:
    other = DevelopmentRoot.generate()
    with pytest.raises(AttestationRootError):
        _verifier(other).verify(enclave.attest())


def test_root_save_and_load(tmp_path: Path, root: DevelopmentRoot) -> None:
    root.save(tmp_path / "devroot")
    assert (tmp_path / "devroot" / "root-key.pem").stat().st_mode & 0o777 == 0o600
    loaded = DevelopmentRoot.load(tmp_path / "devroot")
    assert loaded.der == root.der
    with pytest.raises(ConfigurationError):
        DevelopmentRoot.load(tmp_path / "missing")


def test_development_document_expires_like_a_nitro_one(
    root: DevelopmentRoot, enclave: DevelopmentEnclave
) -> None:
    document = enclave.attest()
    with pytest.raises(AttestationExpiredError):
        _verifier(root).verify(document, at=datetime.now(UTC) + timedelta(hours=4))


def test_measurements_follow_the_installed_code(tmp_path: Path) -> None:
    package = Path(shardvault.__file__).resolve().parent
    copy = tmp_path / "shardvault"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = measure(copy)
    assert before == measure(copy)
    assert before[0] == measure(package)[0]
    # Changing one byte of the share-handling code changes PCR0 and PCR2.
    target = copy / "custody" / "envelope.py"
    target.write_bytes(target.read_bytes() + b"\n")
    after = measure(copy)
    assert after[0] != before[0]
    assert after[2] != before[2]
    assert after[1] == before[1]
    # Code outside custody/cosigner changes PCR0 only.
    (copy / "errors.py").write_bytes((copy / "errors.py").read_bytes() + b"\n")
    assert measure(copy)[2] == after[2]
    assert measure(copy)[0] != after[0]


def test_release_end_to_end(
    harness: BackendHarness, root: DevelopmentRoot, enclave: DevelopmentEnclave
) -> None:
    share = secrets.token_bytes(96)
    blob = seal_share(harness.backend, ShareSlot(ADDRESS, 1), SecretBytes(share))
    releaser = AttestedKeyReleaser(harness.backend, _verifier(root), _policy(enclave))
    release = releaser.release(blob, ADDRESS, enclave.attest(releaser.issue_nonce()))
    assert release.module_id == enclave.module_id
    with enclave.open_released(release.ciphertext_for_recipient) as data_key:
        assert len(data_key) == 32
        with open_share_with_data_key(blob, data_key, ADDRESS) as opened:
            assert opened.share.equals(share)


def test_release_refusals_never_reach_the_backend(root: DevelopmentRoot) -> None:
    service = StubKmsService()
    backend = StubKmsBackend(service, service.create())
    good = DevelopmentEnclave(root)
    blob = seal_share(backend, ShareSlot(ADDRESS, 1), SecretBytes(b"s" * 32))
    releaser = AttestedKeyReleaser(backend, _verifier(root), _policy(good))
    calls = service.calls

    # The same code but a different role (PCR3) is another enclave.
    other_role = DevelopmentEnclave(root, role="intruder")
    with pytest.raises(AttestationPcrError, match="PCR3"):
        releaser.release(blob, ADDRESS, other_role.attest(releaser.issue_nonce()))
    # Changed code (PCR0/PCR2).
    tampered = DevelopmentEnclave(root, measurements={**good.pcrs, 0: bytes.fromhex("11" * 48)})
    with pytest.raises(AttestationPcrError, match="PCR0"):
        releaser.release(blob, ADDRESS, tampered.attest(releaser.issue_nonce()))
    # Debug mode.
    with pytest.raises(AttestationDebugError):
        releaser.release(
            blob, ADDRESS, DevelopmentEnclave(root, debug=True).attest(releaser.issue_nonce())
        )
    # A nonce never issued, and a nonce used twice.
    with pytest.raises(AttestationNonceError):
        releaser.release(blob, ADDRESS, good.attest(secrets.token_bytes(32)))
    with pytest.raises(AttestationNonceError):
        releaser.release(blob, ADDRESS, good.attest(None))
    nonce = releaser.issue_nonce()
    document = good.attest(nonce)
    releaser.release(blob, ADDRESS, document)
    calls_after_one = service.calls
    with pytest.raises(AttestationNonceError):
        releaser.release(blob, ADDRESS, document)
    # No public key to encrypt to.
    with pytest.raises(AttestationPublicKeyError):
        releaser.release(
            blob, ADDRESS, good.attest(releaser.issue_nonce(), include_public_key=False)
        )
    # A blob of another slot.
    with pytest.raises(IntegrityError):
        releaser.release(
            blob, ShareAddress("ws1", "vault-a", "key-1", "cosigner-2"),
            good.attest(releaser.issue_nonce()),
        )  # fmt: skip
    assert calls_after_one == calls + 1
    assert service.calls == calls_after_one


def test_expired_nonce_is_refused(root: DevelopmentRoot, enclave: DevelopmentEnclave) -> None:
    service = StubKmsService()
    backend = StubKmsBackend(service, service.create())
    blob = seal_share(backend, ShareSlot(ADDRESS, 1), SecretBytes(b"s" * 32))
    releaser = AttestedKeyReleaser(backend, _verifier(root), _policy(enclave), nonce_ttl=0.0)
    with pytest.raises(AttestationNonceError):
        releaser.release(blob, ADDRESS, enclave.attest(releaser.issue_nonce()))


def test_released_key_is_only_for_that_enclave(
    root: DevelopmentRoot, enclave: DevelopmentEnclave
) -> None:
    service = StubKmsService()
    backend = StubKmsBackend(service, service.create())
    blob = seal_share(backend, ShareSlot(ADDRESS, 1), SecretBytes(b"s" * 32))
    releaser = AttestedKeyReleaser(backend, _verifier(root), _policy(enclave))
    release = releaser.release(blob, ADDRESS, enclave.attest(releaser.issue_nonce()))
    twin = DevelopmentEnclave(root)  # same measurements, another key pair
    with pytest.raises(ValueError, match="Decryption failed"):
        twin.open_released(release.ciphertext_for_recipient)
    with pytest.raises(AttestationError):
        releaser.release(blob, ADDRESS, b"\x84garbage")


def test_enclave_process_attest_release_unlock(tmp_path: Path, root: DevelopmentRoot) -> None:
    """The development enclave as a separate process (python -m ...devenclave): the host
    issues a nonce, the enclave attests, the host releases the data key to it, the
    enclave unlocks the share and proves possession with an HMAC, never revealing it."""
    import base64
    import hashlib
    import hmac
    import json
    import subprocess
    import sys

    from shardvault.custody.attestation.devenclave import measure

    root.save(tmp_path / "root")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shardvault.custody.attestation.devenclave",
         "--root-dir", str(tmp_path / "root"), "--role", "cosigner"],
        cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip

    def ask(request: dict[str, object]) -> dict[str, object]:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        answer: dict[str, object] = json.loads(proc.stdout.readline())
        return answer

    try:
        service = StubKmsService()
        backend = StubKmsBackend(service, service.create())
        share = secrets.token_bytes(32)
        blob = seal_share(backend, ShareSlot(ADDRESS, 3), SecretBytes(share))
        # The host pins the measurements of the code it expects the enclave to run.
        expected = measure(role="cosigner", root_der=root.der)
        policy = PcrPolicy(expected={i: expected[i] for i in (0, 1, 2, 3, 8)})
        releaser = AttestedKeyReleaser(backend, _verifier(root), policy)
        answer = ask({"op": "attest", "nonce": releaser.issue_nonce().hex()})
        release = releaser.release(blob, ADDRESS, base64.b64decode(str(answer["document"])))
        fields = {"workspace": "ws1", "vault": "vault-a", "key_id": "key-1",
                  "party_id": "cosigner-1"}  # fmt: skip
        blob_b64 = base64.b64encode(blob).decode()
        release_b64 = base64.b64encode(release.ciphertext_for_recipient).decode()
        answer = ask({"op": "unlock", "address": fields, "blob": blob_b64, "release": release_b64})
        assert answer == {"unlocked": str(ADDRESS), "share_version": 3}
        challenge = secrets.token_bytes(16)
        answer = ask({"op": "prove", "address": fields, "challenge": challenge.hex()})
        assert answer["mac"] == hmac.new(share, challenge, hashlib.sha256).hexdigest()
        # A release for another enclave's key does not unlock anything here.
        bogus = base64.b64encode(b"\x00" * 384).decode()
        answer = ask({"op": "unlock", "address": fields, "blob": blob_b64, "release": bogus})
        assert answer["error"] == "ValueError"
        assert share.hex() not in json.dumps(answer)
        assert ask({"op": "stop"}) == {"stopped": True}
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kms_native_recipient_is_refused_when_the_endpoint_ignores_it(
    moto_server: str, root: DevelopmentRoot, enclave: DevelopmentEnclave
) -> None:
    """moto 5.2.5 ignores Decrypt's Recipient and returns the plaintext data key; the
    aws-kms backend detects that and refuses rather than hand the key out. This is why
    the project's AttestedKeyReleaser sits in front of the backend."""
    from shardvault.custody.backends.aws_kms import AwsKmsBackend
    from shardvault.custody.envelope import inspect
    from shardvault.custody.errors import BackendError
    from tests.custody.conftest import boto_client

    backend = AwsKmsBackend(boto_client("kms", moto_server), "unset")
    backend.use_key(backend.create_key())
    blob = seal_share(backend, ShareSlot(ADDRESS, 1), SecretBytes(b"r" * 32))
    header = inspect(blob)
    with pytest.raises(BackendError, match="ignored Recipient"):
        backend.decrypt_for_recipient(header.wrapped_key, header.context(), enclave.attest())
    # The same release through the project's releaser works against the same endpoint.
    releaser = AttestedKeyReleaser(backend, _verifier(root), _policy(enclave))
    release = releaser.release(blob, ADDRESS, enclave.attest(releaser.issue_nonce()))
    with enclave.open_released(release.ciphertext_for_recipient) as data_key:
        assert len(data_key) == 32
