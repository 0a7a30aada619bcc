"""``make demo`` runs end to end and reports valid signatures."""

import json

import pytest

from shardvault import demo


def test_demo_prints_valid_results(capsys: pytest.CaptureFixture[str]) -> None:
    demo.main()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    schemes = {r["scheme"]: r for r in summary["results"]}
    assert set(schemes) == {"eddsa-ed25519", "schnorr-bip340"}
    assert all(r["signature_valid"] is True for r in schemes.values())
    assert all(len(bytes.fromhex(r["public_key"])) == 32 for r in schemes.values())
