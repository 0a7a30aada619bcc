"""``shardvault wallet address`` shows an address as verified only when ``min_signers``
of the co-signers pinned with ``--expect-cosigner`` attest it; otherwise it fails loudly
and does not print the address where a script would take it. The server is
:mod:`tests.address_stub`."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from shardvault.cli import vault as vault_cli
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

NOT_YET = pytest.mark.xfail(strict=True, reason="the CLI does not verify address attestations yet")


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


@NOT_YET
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


@NOT_YET
def test_one_attestation_of_a_2_of_3_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    view = address_view(honest_address(), attestations((2,)))
    code, out, err = _address(AddressStub([view]), monkeypatch, *_pins())
    assert code == 1
    assert honest_address() not in out
    assert "1 of the 2 co-signer attestations needed" in err
