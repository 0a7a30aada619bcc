"""The CGGMP21 glue behind ``shardvault mpc`` (keygen, sign, derive, refresh).

Runs the real auxiliary-info phase (Πmod, Πprm, Πfac between the parties) over the
TEST-ONLY fixture primes named by the environment variable, then checks every signature
with coincurve and eth-account (differential), and the derived key against BIP32 public
derivation from the printed xpub.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from shardvault.cli import _mpc_ecdsa
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.errors import EncodingError, MisuseError
from shardvault.crypto.protocols.cggmp21.sign import EcdsaSignature
from tests.crypto.cggmp21.ecdsa_helpers import assert_valid_signature

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "test_only_paillier.json"


def _check(result: dict[str, object], digest: bytes) -> None:
    signature = EcdsaSignature(
        int(str(result["r"]), 16), int(str(result["s"]), 16), int(str(result["v"]))
    )
    assert bytes.fromhex(str(result["signature"])) == signature.to_bytes()
    assert_valid_signature(bytes.fromhex(str(result["public_key"])), digest, signature)


@pytest.mark.slow
def test_keygen_sign_derive_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_mpc_ecdsa.TEST_ONLY_PRIMES_ENV, str(FIXTURE))
    shares, summary = _mpc_ecdsa.keygen_ecdsa(2, 2, secrets.token_bytes)
    assert summary["warning"].startswith("TEST ONLY")  # type: ignore[union-attr]
    assert str(summary["address"]).startswith("0x")
    digest = secrets.token_bytes(32)
    plain = _mpc_ecdsa.sign_ecdsa(shares, [1, 2], digest)
    assert plain["public_key"] == summary["public_key"]
    _check(plain, digest)
    path = "m/44/60/0/0/7"
    derived = _mpc_ecdsa.sign_ecdsa(shares, [1, 2], digest, path)
    _check(derived, digest)
    expected = ExtendedPublicKey.parse(str(summary["xpub"])).derive(path)
    assert derived["public_key"] == expected.public_key.to_bytes().hex()
    assert _mpc_ecdsa.derive(shares[0], path)["public_key"] == derived["public_key"]
    new = _mpc_ecdsa.refresh(shares, rng=secrets.token_bytes)
    after = _mpc_ecdsa.sign_ecdsa(new, [1, 2], digest)
    assert after["public_key"] == summary["public_key"]
    _check(after, digest)
    # An old share mixed with a new one is refused (another epoch).
    with pytest.raises(MisuseError):
        _mpc_ecdsa.sign_ecdsa([shares[0], new[1]], [1, 2], digest)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(MisuseError):
        _mpc_ecdsa.keygen_ecdsa(3, 2, secrets.token_bytes)
    with pytest.raises(MisuseError):
        _mpc_ecdsa.sign_ecdsa([], [1], b"short")
    with pytest.raises(EncodingError):
        _mpc_ecdsa.derive(b"not a share", "m/0")
