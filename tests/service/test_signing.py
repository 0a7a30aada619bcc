"""The local ceremony backend's ECDSA signing (CGGMP21, 2-of-3, shares in custody) with
and without its presignature pool. coincurve (libsecp256k1) recovers the signer's public
key from each signature and it must be the BIP32 child key at the requested path; a
pooled presignature is used once, and signing from the pool is one fast online round.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import coincurve
import pytest

from shardvault.crypto.bip32 import derive_path, parse_path
from shardvault.crypto.group import SECP256K1
from shardvault.service.signing import GeneratedKey, SigningError, SignRequest
from tests.service.pipeline_support import ReusedKeygenBackend, open_custody

PATH = "m/44/60/0/0/3"


@pytest.fixture
def pooled(tmp_path: Path) -> tuple[ReusedKeygenBackend, GeneratedKey, str]:
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"), presignature_pool=2)
    vault = str(uuid.uuid4())
    key = backend.keygen(
        workspace_id="ws", vault_id=vault, scheme="ecdsa-secp256k1", min_signers=2, max_signers=3
    )
    return backend, key, vault


def _request(key: GeneratedKey, vault: str, digest: bytes, path: str = PATH) -> SignRequest:
    # A raw 32-byte payload signed as a bitcoin sighash (the backend signs it as is).
    return SignRequest("ws", vault, key.backend_key_id, "ecdsa-secp256k1", path,
                       "bitcoin_sighash", digest, f"test:{uuid.uuid4()}")  # fmt: skip


def _child(key: GeneratedKey, path: str) -> bytes:
    _, child, _ = derive_path(
        SECP256K1.decode_point(key.public_key), key.chain_code, parse_path(path)
    )
    return child.to_bytes()


def test_pool_refills_in_the_background_and_signs_in_one_round(
    pooled: tuple[ReusedKeygenBackend, GeneratedKey, str],
) -> None:
    backend, key, vault = pooled
    try:
        first = backend.sign(_request(key, vault, b"\x01" * 32))  # presigns on demand
        recovered = coincurve.PublicKey.from_signature_and_message(first, b"\x01" * 32, hasher=None)
        assert recovered.format(compressed=True) == _child(key, PATH)
        deadline = time.monotonic() + 30
        while backend.pooled("ws", vault, key.backend_key_id, PATH) < 2:
            assert time.monotonic() < deadline, "the pool did not refill"
            time.sleep(0.05)
        started = time.perf_counter()
        second = backend.sign(_request(key, vault, b"\x02" * 32))
        elapsed = time.perf_counter() - started
        assert backend.pooled("ws", vault, key.backend_key_id, PATH) <= 1  # one was taken
        assert elapsed < 0.3, elapsed  # presigning alone takes ~0.8 s here
        recovered = coincurve.PublicKey.from_signature_and_message(
            second, b"\x02" * 32, hasher=None
        )
        assert recovered.format(compressed=True) == _child(key, PATH)
        # Another path has its own pool: a presignature never crosses derived keys.
        other = backend.sign(_request(key, vault, b"\x03" * 32, "m/44/60/0/0/4"))
        recovered = coincurve.PublicKey.from_signature_and_message(other, b"\x03" * 32, hasher=None)
        assert recovered.format(compressed=True) == _child(key, "m/44/60/0/0/4")
    finally:
        backend.close()
    assert backend.pooled("ws", vault, key.backend_key_id, PATH) == 0


def test_bad_requests_are_typed_errors(
    pooled: tuple[ReusedKeygenBackend, GeneratedKey, str],
) -> None:
    backend, key, vault = pooled
    try:
        with pytest.raises(SigningError):
            backend.sign(_request(key, vault, b"\x01" * 31))
        with pytest.raises(SigningError):
            backend.sign(_request(key, vault, b"\x01" * 32, "m/44'/60/0"))
        with pytest.raises(SigningError):
            backend.sign(_request(key, str(uuid.uuid4()), b"\x01" * 32))  # no such shares
        with pytest.raises(SigningError):
            backend.keygen(workspace_id="ws", vault_id=vault, scheme="eddsa-ed25519",
                           min_signers=3, max_signers=2)  # fmt: skip
    finally:
        backend.close()
