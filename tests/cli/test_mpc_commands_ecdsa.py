"""``shardvault mpc`` for ecdsa-secp256k1 and key derivation, through the command line.

Auxiliary info uses the TEST-ONLY fixture primes (``SHARDVAULT_UNSAFE_TEST_ONLY_PAILLIER_
PRIMES``), so key generation takes seconds rather than minutes; passphrases are test-only.
Signatures are checked with coincurve and eth-account's sender recovery.
"""

import json
from pathlib import Path

import coincurve
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from shardvault.cli.main import cli
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.frost import SUITES
from tests.crypto.frost.conftest import verify_externally

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "test_only_paillier.json"
ENV = {
    "SV_TEST_ONLY_PASSPHRASE": "test-only-passphrase",
    "SHARDVAULT_UNSAFE_TEST_ONLY_PAILLIER_PRIMES": str(FIXTURE),
}
PASS = ("--passphrase-env", "SV_TEST_ONLY_PASSPHRASE")


def run(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["mpc", *args, *PASS], env=ENV)
    return result


def ok(*args: str) -> dict:  # type: ignore[type-arg]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def refused(needle: str, *args: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0], result.stderr


@pytest.fixture(scope="module")
def ecdsa_shares(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("ecdsa")
    summary = ok("keygen", "--scheme", "ecdsa-secp256k1", "--min-signers", "2",
                 "--max-signers", "3", "--out", str(out))  # fmt: skip
    return out, summary


def _check(signed: dict, digest: bytes) -> str:  # type: ignore[type-arg]
    public_key = bytes.fromhex(signed["public_key"])
    signature = bytes.fromhex(signed["signature"])
    assert len(signature) == 65
    r, s, v = int(signed["r"], 16), int(signed["s"], 16), signed["v"]
    assert s <= SECP256K1.order // 2, "signatures are normalised to low-s"
    assert signature == r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    assert coincurve.PublicKey(public_key).verify(_der(r, s), digest, hasher=None)
    recovered: str = Account._recover_hash(digest, vrs=(v, r, s))
    expected = coincurve.PublicKey(public_key).format(compressed=False)
    assert recovered == to_checksum_address(keccak(expected[1:])[-20:])
    return recovered


def _der(r: int, s: int) -> bytes:
    return encode_dss_signature(r, s)


def test_keygen_summary(ecdsa_shares) -> None:  # type: ignore[no-untyped-def]
    _, summary = ecdsa_shares
    assert summary["scheme"] == "ecdsa-secp256k1"
    assert len(bytes.fromhex(summary["public_key"])) == 33
    assert summary["xpub"].startswith("xpub")
    assert summary["address"].startswith("0x")
    assert "TEST ONLY" in summary["warning"]


def test_sign_at_root_and_at_a_path_matches_derive(ecdsa_shares) -> None:  # type: ignore[no-untyped-def]
    out, summary = ecdsa_shares
    digest = bytes(range(32))
    root = ok("sign", "--shares", str(out), "--signers", "1,3", "--digest-hex", digest.hex())
    assert root["public_key"] == summary["public_key"]
    assert _check(root, digest) == summary["address"]
    path = "m/44/60/0/0/7"
    child = ok("sign", "--shares", str(out), "--signers", "3,2", "--digest-hex", digest.hex(),
               "--path", path)  # fmt: skip
    derived = ok("derive", "--shares", str(out), "--path", path)
    assert child["public_key"] == derived["public_key"] != summary["public_key"]
    assert _check(child, digest) == derived["address"]


def test_ecdsa_refusals(ecdsa_shares) -> None:  # type: ignore[no-untyped-def]
    out, _ = ecdsa_shares
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused("32 bytes", "sign", "--shares", str(out), "--signers", "1,2", "--digest-hex", "00")
    refused("--digest-hex", "sign", "--shares", str(out), "--signers", "1,2", "--message-hex", "00")
    refused("hardened", "sign", "--shares", str(out), "--signers", "1,2", "--digest-hex",
            "00" * 32, "--path", "m/44'/60")  # fmt: skip
    refused("too few", "sign", "--shares", str(out), "--signers", "2", "--digest-hex", "00" * 32)
    refused("not eddsa", "sign", "--shares", str(out), "--signers", "1,2", "--digest-hex",
            "00" * 32, "--scheme", "eddsa-ed25519")  # fmt: skip
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_refresh_keeps_the_key_and_replaces_the_shares(tmp_path: Path) -> None:
    summary = ok("keygen", "--scheme", "ecdsa-secp256k1", "--min-signers", "2",
                 "--max-signers", "2", "--out", str(tmp_path))  # fmt: skip
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    refreshed = ok("refresh", "--shares", str(tmp_path))
    assert refreshed["public_key"] == summary["public_key"]
    assert refreshed["epoch"] == 1
    new = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(new) == set(old)
    assert all(new[n] != old[n] for n in new)
    digest = bytes(32 * [7])
    signed = ok("sign", "--shares", str(tmp_path), "--signers", "1,2", "--digest-hex", digest.hex())
    assert _check(signed, digest) == summary["address"]
    # A share of the old epoch does not combine with a new one.
    (tmp_path / "party-1.share.json").write_bytes(old["party-1.share.json"])
    refused("different keys", "sign", "--shares", str(tmp_path), "--signers", "1,2",
            "--digest-hex", digest.hex())  # fmt: skip


def test_refresh_refuses_frost_keys_and_missing_parties(tmp_path: Path) -> None:
    ok("keygen", "--scheme", "eddsa-ed25519", "--min-signers", "2", "--max-signers", "3",
       "--out", str(tmp_path))  # fmt: skip
    refused("ecdsa-secp256k1", "refresh", "--shares", str(tmp_path))


@pytest.mark.parametrize("scheme", ["eddsa-ed25519", "schnorr-bip340"])
def test_frost_derive_and_sign_at_a_path(tmp_path: Path, scheme: str) -> None:
    summary = ok("keygen", "--scheme", scheme, "--min-signers", "2", "--max-signers", "3",
                 "--out", str(tmp_path))  # fmt: skip
    path = "m/44/501/0/0/3"
    derived = ok("derive", "--shares", str(tmp_path), "--path", path, "--network", "regtest")
    assert derived["public_key"] != summary["public_key"]
    assert derived["address"].startswith("bcrt1p" if scheme == "schnorr-bip340" else "")
    signed = ok("sign", "--shares", str(tmp_path), "--signers", "2,3", "--message-hex", "abcd",
                "--path", path)  # fmt: skip
    assert signed["public_key"] == derived["public_key"]
    verify_externally(
        SUITES[scheme],
        bytes.fromhex(derived["public_key"]),
        bytes.fromhex("abcd"),
        bytes.fromhex(signed["signature"]),
    )
