"""The key-release service over HTTP on 127.0.0.1: attested release and its refusals.

The enclave side is :class:`AttestedShareCustody` with a :class:`DevelopmentEnclave`
(documents in the AWS Nitro format, see test_nitro.py for the verifier against real AWS
documents); the service side is :class:`KeyReleaseService` over a real ``local``
keyring, served by uvicorn. Each refusal is asserted as the typed error and its
``reason`` as they reach the enclave over the wire, and the backend is shown not to be
called for a refused document.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shardvault
from shardvault.custody.attestation.devenclave import DevelopmentEnclave, DevelopmentRoot, measure
from shardvault.custody.attestation.nitro import PcrPolicy, decode_document
from shardvault.custody.attested import AttestedShareCustody
from shardvault.custody.backends.base import EncryptionContext, WrappedKey
from shardvault.custody.envelope import ShareAddress, ShareSlot, inspect, open_share
from shardvault.custody.errors import (
    AttestationDebugError,
    AttestationNonceError,
    AttestationPcrError,
    AttestationRootError,
    AttestationStaleError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    IntegrityError,
)
from shardvault.custody.release_service import (
    PATH_PREFIX,
    HttpReleaseClient,
    KeyReleaseService,
    release_service_from_config,
    verify_response,
)
from shardvault.custody.secret import SecretBytes
from shardvault.custody.sharestore.local import LocalShareStore
from tests.custody.release_support import PINNED_PCRS, ServedRelease, local_service

ADDRESS = ShareAddress("ws1", "vault-a", "key-1", "1")


@pytest.fixture(scope="module")
def root() -> DevelopmentRoot:
    return DevelopmentRoot.generate()


@pytest.fixture(scope="module")
def pcrs(root: DevelopmentRoot) -> dict[int, bytes]:
    """The measurements of the installed code, taken once: the enclaves of this module
    report them and the services pin them, so an edit made to the working tree while
    the tests run (by someone else) cannot make them disagree."""
    return measure(role="cosigner", root_der=root.der)


@pytest.fixture(scope="module")
def policy(pcrs: dict[int, bytes]) -> PcrPolicy:
    return PcrPolicy(expected={i: pcrs[i] for i in PINNED_PCRS})


@pytest.fixture(scope="module")
def enclave(root: DevelopmentRoot, pcrs: dict[int, bytes]) -> DevelopmentEnclave:
    return DevelopmentEnclave(root, measurements=pcrs)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, root: DevelopmentRoot, policy: PcrPolicy
) -> Iterator[ServedRelease]:
    kek = tmp_path_factory.mktemp("kek")
    served = ServedRelease(local_service(kek, root, max_age=60, policy=policy))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def client(served: ServedRelease) -> Iterator[HttpReleaseClient]:
    client = HttpReleaseClient(served.url, served.service.public_key)
    try:
        yield client
    finally:
        client.close()


def _custody(tmp_path: Path, client: HttpReleaseClient, enclave: DevelopmentEnclave):
    return AttestedShareCustody(LocalShareStore(tmp_path / "shares"), client, enclave)


def _stored(tmp_path: Path, client, enclave, share: bytes) -> tuple[bytes, EncryptionContext]:
    custody = _custody(tmp_path, client, enclave)
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(share), 0)
    blob = custody.load_blob(ADDRESS)[1]
    return blob, inspect(blob).context()


def test_seal_and_open_through_the_service(tmp_path, served, client, enclave) -> None:
    share = secrets.token_bytes(64)
    custody = _custody(tmp_path, client, enclave)
    before = len(served.exchanges)
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(share), 0)
    with custody.load_share(ADDRESS) as opened:
        assert opened.share.equals(share)
    # nonce + generate, then nonce + decrypt: one fresh attestation per seal and per open.
    paths = [e.path.removeprefix(PATH_PREFIX) for e in served.exchanges[before:]]
    assert paths == ["nonce", "generate-data-key", "nonce", "decrypt"]
    assert {e.status for e in served.exchanges[before:]} == {200}
    # The blob is wrapped by the service's real backend, so the service's own custody
    # opens it too (the data key is the backend's, not one the enclave made up).
    blob = custody.load_blob(ADDRESS)[1]
    assert inspect(blob).wrapped_key.backend == "local"
    with open_share(served.service.backend, blob, ADDRESS) as opened:
        assert opened.share.equals(share)


def test_fresh_recipient_key_per_unlock(tmp_path, served, client, root, pcrs) -> None:
    enclave = DevelopmentEnclave(root, measurements=pcrs)
    custody = AttestedShareCustody(
        LocalShareStore(tmp_path / "shares"), client, enclave, recipient_per_unlock=True
    )
    start = len(served.exchanges)
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"r" * 32), 0)
    for _ in range(2):
        with custody.load_share(ADDRESS) as opened:
            assert opened.share.equals(b"r" * 32)
    documents = [
        decode_document(base64.b64decode(json.loads(e.request)["document"]))
        for e in served.exchanges[start:]
        if e.path.endswith(("decrypt", "generate-data-key"))
    ]
    assert len({d.public_key for d in documents}) == 3
    # A key released to an earlier recipient key no longer opens with the current one.
    blob = custody.load_blob(ADDRESS)[1]
    released = client.decrypt(
        inspect(blob).wrapped_key, inspect(blob).context(), enclave.attest(client.nonce())
    )
    enclave.rotate_recipient()
    with pytest.raises(ValueError, match="Decryption failed"):
        enclave.open_released(released)


def test_no_plaintext_data_key_or_share_crosses_the_service(tmp_path, served, client, enclave):
    shares = [secrets.token_bytes(48) for _ in range(3)]
    custody = _custody(tmp_path, client, enclave)
    start = len(served.exchanges)
    for index, share in enumerate(shares):
        address = ShareAddress("ws1", "vault-a", f"key-{index}", "1")
        custody.store_share(ShareSlot(address, 1), SecretBytes(share), 0)
        with custody.load_share(address) as opened:
            assert opened.share.equals(share)
    traffic = b"".join(e.request + e.response for e in served.exchanges[start:])
    assert len(served.exchanges) - start == 12
    needles = list(shares)
    for index in range(3):
        header = inspect(custody.load_blob(ShareAddress("ws1", "vault-a", f"key-{index}", "1"))[1])
        with served.service.backend.unwrap(header.wrapped_key, header.context()) as data_key:
            needles.append(data_key.reveal())
    for needle in needles:
        for encoded in (needle, needle.hex().encode(), base64.b64encode(needle)):
            assert encoded not in traffic
    # Control: the wrapped keys, which are not secret, are found, so the search works.
    assert base64.b64encode(header.wrapped_key.blob) in traffic


def test_replayed_document_is_refused(tmp_path, client, enclave) -> None:
    blob, context = _stored(tmp_path, client, enclave, b"s" * 32)
    wrapped = inspect(blob).wrapped_key
    document = enclave.attest(client.nonce())
    client.decrypt(wrapped, context, document)
    with pytest.raises(AttestationNonceError) as caught:
        client.decrypt(wrapped, context, document)
    assert caught.value.reason == "nonce-mismatch"
    assert "nonce-mismatch" in str(caught.value)


def test_document_with_a_nonce_never_issued_is_refused(tmp_path, client, enclave) -> None:
    blob, context = _stored(tmp_path, client, enclave, b"s" * 32)
    with pytest.raises(AttestationNonceError):
        client.decrypt(inspect(blob).wrapped_key, context, enclave.attest(secrets.token_bytes(32)))
    with pytest.raises(AttestationNonceError):
        client.decrypt(inspect(blob).wrapped_key, context, enclave.attest(None))


def test_too_old_document_is_refused(tmp_path, client, enclave) -> None:
    blob, context = _stored(tmp_path, client, enclave, b"s" * 32)
    old = datetime.now(UTC) - timedelta(minutes=5)
    with pytest.raises(AttestationStaleError) as caught:
        client.decrypt(inspect(blob).wrapped_key, context, enclave.attest(client.nonce(), now=old))
    assert caught.value.reason == "stale"


def test_expired_nonce_is_refused(tmp_path, root, enclave, policy) -> None:
    served = ServedRelease(local_service(tmp_path / "kek", root, nonce_ttl=0.2, policy=policy))
    client = HttpReleaseClient(served.url, served.service.public_key)
    try:
        blob, context = _stored(tmp_path, client, enclave, b"s" * 32)
        nonce = client.nonce()
        time.sleep(0.4)
        with pytest.raises(AttestationNonceError):
            client.decrypt(inspect(blob).wrapped_key, context, enclave.attest(nonce))
    finally:
        client.close()
        served.stop()


def test_document_of_another_development_root_is_refused(tmp_path, client, enclave) -> None:
    blob, context = _stored(tmp_path, client, enclave, b"s" * 32)
    stranger = DevelopmentEnclave(DevelopmentRoot.generate(), role="cosigner")
    with pytest.raises(AttestationRootError) as caught:
        client.decrypt(inspect(blob).wrapped_key, context, stranger.attest(client.nonce()))
    assert caught.value.reason == "untrusted-root"
    custody = AttestedShareCustody(LocalShareStore(tmp_path / "shares"), client, stranger)
    with pytest.raises(AttestationRootError):
        custody.load_share(ADDRESS)


def test_changed_code_gets_no_data_key(tmp_path, root, client, enclave) -> None:
    """A copy of the installed package with one byte changed measures differently."""
    _stored(tmp_path, client, enclave, b"s" * 32)
    copy = tmp_path / "shardvault"
    package = Path(shardvault.__file__).resolve().parent
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "cosigner" / "node.py"
    target.write_bytes(target.read_bytes() + b"#")
    changed = DevelopmentEnclave(
        root, measurements=measure(copy, role="cosigner", root_der=root.der)
    )
    custody = AttestedShareCustody(LocalShareStore(tmp_path / "shares"), client, changed)
    with pytest.raises(AttestationPcrError) as caught:
        custody.load_share(ADDRESS)
    assert caught.value.reason == "pcr-mismatch"
    with pytest.raises(AttestationPcrError):
        custody.store_share(ShareSlot(ShareAddress("ws1", "v", "k", "1"), 1), SecretBytes(b"x"), 0)
    debug = DevelopmentEnclave(root, role="cosigner", debug=True)
    with pytest.raises(AttestationDebugError):
        AttestedShareCustody(LocalShareStore(tmp_path / "shares"), client, debug).load_share(
            ADDRESS
        )


def test_refused_document_never_reaches_the_backend(tmp_path, root, enclave, policy) -> None:
    service = local_service(tmp_path / "kek", root, policy=policy)
    calls: list[str] = []
    backend = service.backend
    original_unwrap, original_generate = backend.unwrap, backend.generate_data_key

    def unwrap(wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        calls.append("unwrap")
        return original_unwrap(wrapped, context)

    def generate(context: EncryptionContext):
        calls.append("generate")
        return original_generate(context)

    backend.unwrap = unwrap  # type: ignore[method-assign]
    backend.generate_data_key = generate  # type: ignore[method-assign]
    custody = AttestedShareCustody(LocalShareStore(tmp_path / "shares"), service, enclave)
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"k" * 32), 0)
    assert calls == ["generate"]
    blob = custody.load_blob(ADDRESS)[1]
    stranger = DevelopmentEnclave(DevelopmentRoot.generate(), role="cosigner")
    for document in (
        enclave.attest(secrets.token_bytes(32)),
        stranger.attest(service.nonce()),
        enclave.attest(service.nonce(), now=datetime.now(UTC) - timedelta(minutes=3)),
    ):
        with pytest.raises((AttestationNonceError, AttestationRootError, AttestationStaleError)):
            service.decrypt(inspect(blob).wrapped_key, inspect(blob).context(), document)
    assert calls == ["generate"]
    service.close()


def test_wrong_context_or_purpose_is_refused(tmp_path, client, enclave) -> None:
    blob, context = _stored(tmp_path, client, enclave, b"s" * 32)
    moved = {**context, "party_id": "2"}
    with pytest.raises(IntegrityError):
        client.decrypt(inspect(blob).wrapped_key, moved, enclave.attest(client.nonce()))
    other_purpose = {**context, "shardvault:purpose": "something-else"}
    with pytest.raises(IntegrityError):
        client.decrypt(inspect(blob).wrapped_key, other_purpose, enclave.attest(client.nonce()))
    with pytest.raises(IntegrityError):
        client.generate_data_key(other_purpose, enclave.attest(client.nonce()))


def test_production_configuration_refuses_the_development_root(tmp_path, root, enclave) -> None:
    root.save(tmp_path / "devroot")
    pcrs = {str(i): enclave.pcrs[i].hex() for i in (0, 1, 2, 3, 8)}
    backend_config = {
        "type": "local",
        "directory": str(tmp_path / "keyring"),
        "key_id": "unused",
        "passphrase_env": "SV_TEST_RELEASE_PASSPHRASE",
    }
    production = {
        "backend": backend_config,
        "attestation": {"root": str(tmp_path / "devroot" / "root.pem"), "pcrs": pcrs},
    }
    with pytest.raises(ConfigurationError, match="development root"):
        release_service_from_config(production)
    # A policy that pins nothing is refused as well.
    with pytest.raises(ConfigurationError, match="pin at least one PCR"):
        release_service_from_config(
            {"backend": backend_config, "attestation": {"root": "aws-nitro", "pcrs": {}}}
        )
    # The production root (AWS Nitro) builds, and refuses development documents.
    nitro = KeyReleaseService(
        local_service(tmp_path / "kek", root).backend,
        *_nitro_verifier_and_policy(pcrs),
    )
    with pytest.raises(AttestationRootError):
        nitro.generate_data_key(
            {"shardvault:purpose": "share-data-key"}, enclave.attest(nitro.nonce())
        )
    nitro.close()


def _nitro_verifier_and_policy(pcrs: dict[str, str]):
    from shardvault.custody.config import attestation_from_config

    return attestation_from_config({"root": "aws-nitro", "pcrs": pcrs})


def test_development_root_allowed_explicitly_from_configuration(
    tmp_path, root, enclave, monkeypatch
) -> None:
    from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend

    LocalBackend.initialize(tmp_path / "keyring", SecretBytes(b"pw"), DEVELOPMENT_COST)
    key_id = next((tmp_path / "keyring").glob("*.key")).stem
    monkeypatch.setenv("SV_TEST_RELEASE_PASSPHRASE", "pw")
    seed = secrets.token_bytes(32)
    monkeypatch.setenv("SV_TEST_RELEASE_SIGNING", seed.hex())
    root.save(tmp_path / "devroot")
    service = release_service_from_config(
        {
            "backend": {
                "type": "local",
                "directory": str(tmp_path / "keyring"),
                "key_id": key_id,
                "passphrase_env": "SV_TEST_RELEASE_PASSPHRASE",
                "argon2": {"time_cost": 1, "memory_cost": 8192, "parallelism": 1},
            },
            "attestation": {
                "root": str(tmp_path / "devroot" / "root.pem"),
                "allow_development_root": True,
                "max_age_seconds": 30,
                "pcrs": {str(i): enclave.pcrs[i].hex() for i in (0, 1, 2, 3, 8)},
            },
            "nonce_ttl_seconds": 30,
            "signing_key_env": "SV_TEST_RELEASE_SIGNING",
        }
    )
    from nacl.signing import SigningKey

    assert service.public_key == bytes(SigningKey(seed).verify_key)
    custody = AttestedShareCustody(LocalShareStore(tmp_path / "shares"), service, enclave)
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"z" * 32), 0)
    with custody.load_share(ADDRESS) as opened:
        assert opened.share.equals(b"z" * 32)
    service.close()


def test_responses_are_checked_against_the_pinned_service_key(served, enclave) -> None:
    impostor = HttpReleaseClient(served.url, bytes(32 * [7]))
    try:
        with pytest.raises(BackendError, match="not signed by the pinned service"):
            impostor.nonce()
    finally:
        impostor.close()
    raw = httpx.post(served.url + PATH_PREFIX + "nonce", content=b"{}")
    signature = bytes.fromhex(raw.headers["x-shardvault-release-signature"])
    verify_response(served.service.public_key, PATH_PREFIX + "nonce", b"{}", raw.content, signature)
    # A response moved to another request, or altered, does not verify.
    with pytest.raises(BackendError):
        verify_response(
            served.service.public_key, PATH_PREFIX + "decrypt", b"{}", raw.content, signature
        )
    with pytest.raises(BackendError):
        verify_response(
            served.service.public_key,
            PATH_PREFIX + "nonce",
            b"{}",
            raw.content.replace(b'"nonce": "', b'"nonce": "00'),
            signature,
        )


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("decrypt", b"not json", 400, "malformed-request"),
        ("decrypt", b"[1, 2]", 400, "malformed-request"),
        ("decrypt", b'{"document": 5, "context": {}}', 400, "malformed-request"),
        ("decrypt", b'{"document": "***", "context": {}}', 400, "malformed-request"),
        ("decrypt", b'{"document": "AAAA", "context": []}', 400, "malformed-request"),
        ("decrypt", b'{"document": "AAAA", "context": {"a": 1}}', 400, "malformed-request"),
        (
            "decrypt",
            b'{"document": "AAAA", "context": {}, '
            b'"wrapped_key": {"backend": "local", "kek_id": "k", "blob": "AAAA"}}',
            403,
            "malformed",
        ),
        (
            "decrypt",
            b'{"document": "AAAA", "context": {}, "wrapped_key": 1}',
            400,
            "malformed-request",
        ),
        ("generate-data-key", b'{"document": "AAAA", "context": {}}', 403, "malformed"),
        ("decrypt", b"x" * 300_000, 400, "malformed-request"),
        ("no-such-op", b"{}", 404, "not-found"),
    ],
)
def test_bad_requests_get_typed_refusals(served, path, body, status, reason) -> None:
    response = httpx.post(served.url + PATH_PREFIX + path, content=body)
    assert response.status_code == status
    assert json.loads(response.content)["reason"] == reason
    assert httpx.get(served.url + PATH_PREFIX + "nonce").status_code == 405
    assert httpx.post(served.url + "/elsewhere", content=b"{}").status_code == 404


def test_unreachable_service_is_backend_unavailable(enclave) -> None:
    client = HttpReleaseClient("http://127.0.0.1:9", bytes(32), timeout=2.0)
    try:
        with pytest.raises(BackendUnavailableError):
            client.nonce()
    finally:
        client.close()


def test_repr_shows_no_secrets(served, client) -> None:
    assert "redacted" in repr(served.service)
    assert served.url in repr(client)


def test_release_service_command_serves_and_stops(tmp_path, root, enclave) -> None:
    """``shardvault attestation release-service`` as a process on 127.0.0.1."""
    import os
    import signal
    import subprocess
    import sys

    from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend

    LocalBackend.initialize(tmp_path / "keyring", SecretBytes(b"pw"), DEVELOPMENT_COST)
    root.save(tmp_path / "devroot")
    config = {
        "backend": {
            "type": "local",
            "directory": str(tmp_path / "keyring"),
            "key_id": next((tmp_path / "keyring").glob("*.key")).stem,
            "passphrase_env": "SV_TEST_RELEASE_PASSPHRASE",
            "argon2": {"time_cost": 1, "memory_cost": 8192, "parallelism": 1},
        },
        "attestation": {
            "root": str(tmp_path / "devroot" / "root.pem"),
            "allow_development_root": True,
            "pcrs": {str(i): enclave.pcrs[i].hex() for i in (0, 1, 2, 3, 8)},
        },
    }
    (tmp_path / "release.json").write_text(json.dumps(config))
    command = [sys.executable, "-m", "shardvault.cli.main", "attestation", "release-service"]
    env = {**os.environ, "SV_TEST_RELEASE_PASSPHRASE": "pw"}
    process = subprocess.Popen(
        [*command, "--config", str(tmp_path / "release.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        started = json.loads(process.stdout.readline())
        assert started["event"] == "started"
        assert started["url"].startswith("http://127.0.0.1:")
        client = HttpReleaseClient(started["url"], bytes.fromhex(started["public_key"]))
        try:
            custody = AttestedShareCustody(LocalShareStore(tmp_path / "shares"), client, enclave)
            custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"q" * 32), 0)
            with custody.load_share(ADDRESS) as opened:
                assert opened.share.equals(b"q" * 32)
        finally:
            client.close()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
        assert process.returncode == 0
        assert json.loads(out.splitlines()[-1]) == {"event": "stopped"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Without allow_development_root the same configuration is refused at start.
    del config["attestation"]["allow_development_root"]
    (tmp_path / "release.json").write_text(json.dumps(config))
    refused = subprocess.run(
        [*command, "--config", str(tmp_path / "release.json")],
        capture_output=True,
        env=env,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1
    assert "development root" in refused.stderr


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    op=st.sampled_from(["nonce", "decrypt", "generate-data-key", "other"]),
    document=st.one_of(_json, st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())),
    context=st.one_of(
        _json, st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4)
    ),
    wrapped=_json,
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_fuzzed_requests_get_only_typed_refusals(served, op, document, context, wrapped, raw):
    """Fuzz harness for the service's request parser: whatever arrives, the answer is a
    typed refusal (or a nonce), never an internal error."""
    from shardvault.custody.release_service import _answer

    body = (
        raw
        if raw is not None
        else json.dumps({"document": document, "context": context, "wrapped_key": wrapped}).encode()
    )
    scope = {"type": "http", "method": "POST"}
    status, answer = _answer(served.service, scope, PATH_PREFIX + op, body, False)
    assert status in (200, 400, 403, 404, 422), answer
    if status != 200:
        assert answer["reason"] != "internal"
