"""Fixtures of the custody tests: real SoftHSM2 token, real moto server, backends.

Every server listens on 127.0.0.1 only and every fixture stops what it starts. The
SoftHSM2 token lives in a temporary directory named by ``SOFTHSM2_CONF``; the system
token directory is never touched.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from shardvault.custody.backends.aws_kms import AwsKmsBackend
from shardvault.custody.backends.base import KeyEncryptionBackend
from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.backends.pkcs11 import Pkcs11Backend
from shardvault.custody.secret import SecretBytes
from tests.custody.netproxy import CuttableProxy
from tests.custody.stub_kms import StubKmsBackend, StubKmsService

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = b"correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server mode (KMS and S3) on 127.0.0.1 and a free port; stopped by SIGTERM."""
    port = _free_port()
    # moto's own server, started through a launcher that adds AWS's key-state rule
    # (moto_keystate.py); everything else is stock moto 5.2.5.
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.custody.moto_keystate", "-H", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto server did not start")
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def boto_client(service: str, endpoint: str, attempts: int = 3) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=2,
            read_timeout=5,
        ),
    )


@dataclass
class BackendHarness:
    """One backend under the contract suite, with the means to break and reopen it.

    ``backend`` is live; ``make_unavailable()`` takes its service away the way it
    happens in production (keyring locked, PKCS#11 library reset, KMS endpoint gone);
    ``reopen()`` returns a fresh backend object over the same keys.
    """

    name: str
    backend: KeyEncryptionBackend
    make_unavailable: Callable[[], None]
    reopen: Callable[[], KeyEncryptionBackend]
    cleanup: Callable[[], None] = lambda: None


def _local_harness(tmp: Path) -> BackendHarness:
    with SecretBytes(PASSPHRASE) as passphrase:
        backend = LocalBackend.initialize(tmp / "keyring", passphrase, DEVELOPMENT_COST)
    kek = backend.kek_id

    def reopen() -> KeyEncryptionBackend:
        with SecretBytes(PASSPHRASE) as passphrase:
            return LocalBackend(tmp / "keyring", passphrase, kek, DEVELOPMENT_COST)

    return BackendHarness("local", backend, backend.lock, reopen)


def _pkcs11_harness(softhsm: dict[str, str]) -> BackendHarness:
    import pkcs11

    def open_backend(kek: str) -> Pkcs11Backend:
        with SecretBytes(softhsm["pin"].encode()) as pin:
            return Pkcs11Backend(softhsm["library"], softhsm["token_label"], pin, kek)

    backend = open_backend("unset")
    backend.use_key(backend.create_key())
    kek = backend.kek_id

    def make_unavailable() -> None:
        # C_Finalize then C_Initialize of this fixture's private copy of the module:
        # every session it opened becomes invalid, as when a network HSM's client
        # library loses its connection and resets.
        pkcs11.lib(softhsm["library"]).reinitialize()

    return BackendHarness(
        "pkcs11", backend, make_unavailable, lambda: open_backend(kek), backend.close
    )


def _kms_harness(moto_server: str) -> BackendHarness:
    host, port = moto_server.removeprefix("http://").split(":")
    proxy = CuttableProxy((host, int(port)))
    kms = boto_client("kms", proxy.url, attempts=1)
    backend = AwsKmsBackend(kms, "unset")
    backend.use_key(backend.create_key())
    kek = backend.kek_id
    return BackendHarness(
        "aws-kms",
        backend,
        proxy.cut,
        lambda: AwsKmsBackend(boto_client("kms", moto_server), kek),
        proxy.close,
    )


def _stub_harness() -> BackendHarness:
    service = StubKmsService()
    backend = StubKmsBackend(service, service.create())
    kek = backend.kek_id

    def make_unavailable() -> None:
        service.available = False

    def reopen() -> KeyEncryptionBackend:
        service.available = True
        return StubKmsBackend(service, kek)

    return BackendHarness("stub-kms", backend, make_unavailable, reopen)


@pytest.fixture(params=["local", "pkcs11", "aws-kms", "stub-kms"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendHarness]:
    """Each backend in turn, freshly keyed (the token and the server are session-wide)."""
    name = request.param
    if name == "local":
        made = _local_harness(tmp_path)
    elif name == "pkcs11":
        made = _pkcs11_harness(request.getfixturevalue("softhsm"))
    elif name == "aws-kms":
        made = _kms_harness(request.getfixturevalue("moto_server"))
    else:
        made = _stub_harness()
    yield made
    made.cleanup()
