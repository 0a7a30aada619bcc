"""``shardvault wallet address`` shows an address as verified only when ``min_signers``
of the co-signers pinned with ``--expect-cosigner`` attest it; otherwise it fails loudly
and does not print the address where a script would take it. The server is
:mod:`tests.address_stub`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shardvault.cli import vault as vault_cli
from shardvault.cli import workspace as workspace_cli
from shardvault.cli.main import cli
from tests.address_stub import (
    FINGERPRINTS,
    SERVER_OWN,
    SERVERS_KEY,
    WALLET,
    AddressStub,
    address_view,
    attestations,
    honest_address,
    servers_address,
    stub_client,
)


def _pins() -> list[str]:
    return [a for p, f in FINGERPRINTS.items() for a in ("--expect-cosigner", f"{p}={f}")]


def _address(
    server: AddressStub, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(vault_cli, "sdk_client", lambda *_args: stub_client(server))
    result = CliRunner().invoke(
        cli, ["wallet", "address", WALLET, *extra, "--url", "http://stub.invalid"]
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "attested",
    [
        pytest.param(lambda: attestations(), id="the vault's attestations beside another address"),
        pytest.param(lambda: [], id="no attestation"),
        pytest.param(
            lambda: attestations((1, 2, 3, 4), SERVER_OWN, root_public_key=SERVERS_KEY),
            id="the server's own co-signers",
        ),
    ],
)
def test_an_address_the_server_substituted_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, attested: Any
) -> None:
    theirs = servers_address()
    code, out, err = _address(
        AddressStub([address_view(theirs, attested())]), monkeypatch, *_pins()
    )
    assert code == 1
    assert theirs not in out
    assert "UNVERIFIED" in err
    assert "do not use" in err


def test_one_attestation_of_a_2_of_3_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    view = address_view(honest_address(), attestations((2,)))
    code, out, err = _address(AddressStub([view]), monkeypatch, *_pins())
    assert code == 1
    assert honest_address() not in out
    assert "1 of the 2 co-signer attestations needed" in err


def test_an_address_the_pinned_cosigners_attest_is_shown_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = address_view(honest_address(), attestations((1, 3)))
    code, out, err = _address(AddressStub([view]), monkeypatch, *_pins())
    assert code == 0, err
    assert out.strip() == f"{honest_address()}  m/44/60/1/0/0  verified (2 of 3 co-signers)"
    assert "UNVERIFIED" not in err


def test_pins_from_a_file_and_json_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pins = tmp_path / "cosigners.json"
    pins.write_text(json.dumps({str(p): f for p, f in FINGERPRINTS.items()}))
    view = address_view(honest_address(), attestations())
    code, out, err = _address(
        AddressStub([view]), monkeypatch, "--cosigners-file", str(pins), "--json"
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["address"] == honest_address()
    assert shown["verification"] == {
        "verified": True,
        "parties": [1, 2, 3],
        "required": 2,
        "pinned": 3,
        "summary": "verified (3 of 3 co-signers)",
    }
    bad = tmp_path / "bad.json"
    bad.write_text('{"one": "abcd"}')
    code, _, err = _address(AddressStub([view]), monkeypatch, "--cosigners-file", str(bad))
    assert code == 1
    assert "expected {" in err


def test_a_new_address_is_verified_too(monkeypatch: pytest.MonkeyPatch) -> None:
    first = address_view(honest_address(), attestations())
    fresh = address_view(servers_address(), attestations(), index=1)
    code, out, err = _address(AddressStub([first], [fresh]), monkeypatch, "--new", *_pins())
    assert code == 1
    assert servers_address() not in out
    assert "UNVERIFIED" in err


def test_without_pins_the_address_is_printed_with_a_loud_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = address_view(servers_address(), [])
    code, out, err = _address(AddressStub([view]), monkeypatch)
    assert code == 0
    assert servers_address() in out
    assert "WARNING: UNVERIFIED address: no co-signer is pinned" in err


def test_a_malformed_pin_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    view = address_view(honest_address(), attestations())
    code, out, err = _address(AddressStub([view]), monkeypatch, "--expect-cosigner", "one")
    assert code == 1
    assert out == ""
    assert err.strip() == "error: --expect-cosigner 'one': expected PARTY=FINGERPRINT"


def test_wallet_create_verifies_the_first_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def create(server: AddressStub, *extra: str) -> tuple[int, str, str]:
        # ``wallet create`` makes its one call through the shared ``api_call``.
        monkeypatch.setattr(workspace_cli, "sdk_client", lambda *_args: stub_client(server))
        result = CliRunner().invoke(
            cli,
            ["wallet", "create", "--vault", "vault-1", "--asset", "ETH", *extra, "--url", "x"],
        )
        return result.exit_code, result.stdout, result.stderr

    honest = AddressStub([address_view(honest_address(), attestations())])
    code, out, err = create(honest, *_pins())
    assert code == 0, err
    assert out.strip() == (
        f"wallet wallet-1: {honest_address()}  m/44/60/1/0/0  verified (3 of 3 co-signers)"
    )
    code, out, err = create(honest, *_pins(), "--expect-vault", "vault-2")
    assert code == 1
    assert "attests vault 'vault-1', not 'vault-2'" in err
    substituted = AddressStub([address_view(servers_address(), attestations())])
    code, out, err = create(substituted, *_pins(), "--json")
    assert (code, out) == (1, "")
    assert "UNVERIFIED" in err
