"""``make demo`` runs end to end and reports valid signatures.

The ECDSA part uses the TEST-ONLY fixture primes here (the environment variable the
ceremony glue honours), so the test does not spend seconds searching safe primes; ``make
demo`` itself searches fresh ones.
"""

import json
from pathlib import Path

import pytest

from shardvault import demo

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "test_only_paillier.json"


def test_demo_prints_valid_results(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARDVAULT_UNSAFE_TEST_ONLY_PAILLIER_PRIMES", str(FIXTURE))
    demo.main()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    schemes = {r["scheme"]: r for r in summary["results"]}
    assert set(schemes) == {"eddsa-ed25519", "schnorr-bip340", "ecdsa-secp256k1"}
    assert all(r["signature_valid"] is True for r in schemes.values())
    assert len(bytes.fromhex(schemes["eddsa-ed25519"]["public_key"])) == 32
    assert len(bytes.fromhex(schemes["schnorr-bip340"]["public_key"])) == 32
    assert len(bytes.fromhex(schemes["ecdsa-secp256k1"]["public_key"])) == 33
    assert schemes["ecdsa-secp256k1"]["address"].startswith("0x")
