"""Co-signers whose data keys an HSM wraps (SoftHSM2 through PKCS#11), no passphrase.

Three nodes, each with a key-encryption key of its own made in the token at ``init``,
run a FROST key generation and sign; the share blobs on disk are ciphertext only; a
wrong PIN opens nothing; and the backend section is part of the signed configuration, so
pointing a node at another key is refused at start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from nacl.signing import VerifyKey

from shardvault.cli.main import cli
from shardvault.cosigner.backend_unlock import BackendUnlock
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.link import InMemoryLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import (
    init_node,
    open_node,
    pin_peers,
    unlock_mode,
    unseal_identity,
)
from shardvault.crypto.channel import Directory
from shardvault.custody.errors import CustodyError
from tests.cosigner.support import (
    ADMIN_SET,
    DESTINATION,
    LAMPORTS_PER_SOL,
    WORKSPACE,
    dkg_request,
    sign_request,
    signed_bundle,
    solana_transfer,
)

PIN_ENV = "SV_TEST_ONLY_HSM_PIN"


@pytest.fixture
def hsm(softhsm: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv(PIN_ENV, softhsm["pin"])
    return {
        "type": "pkcs11",
        "library": softhsm["library"],
        "token_label": softhsm["token_label"],
        "pin_env": PIN_ENV,
    }


@pytest.fixture
def nodes(tmp_path: Path, hsm: dict[str, object]) -> Iterator[dict[int, CosignerNode]]:
    dirs = {p: tmp_path / f"cosigner-{p}" for p in (1, 2, 3)}
    identities = {}
    for party, data_dir in dirs.items():
        unlock = BackendUnlock.prepare(hsm)
        identities[party] = init_node(data_dir, party, WORKSPACE, ADMIN_SET, None, backend=unlock)
    for data_dir in dirs.values():
        pin_peers(data_dir, identities, unseal_identity(data_dir, None))
    relay = RelayCore(Directory.of(identities))
    opened = {
        party: CosignerNode(open_node(data_dir, None), InMemoryLink(relay, party))
        for party, data_dir in dirs.items()
    }
    yield opened
    for node in opened.values():
        node.state.close()


def _run(nodes: dict[int, CosignerNode], body: dict[str, object], parties) -> dict:  # type: ignore[no-untyped-def]
    relay = nodes[1].link._core  # type: ignore[attr-defined]
    relay.submit(body, list(parties))
    for _ in range(50):
        if not any(nodes[p].step(0.0) for p in parties):
            break
    return dict(relay.results(body["request_id"]))


def test_hsm_wrapped_cosigners_generate_and_sign(nodes: dict[int, CosignerNode]) -> None:
    pushed = _run(
        nodes,
        {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]},
        (1, 2, 3),
    )
    assert {r["status"] for r in pushed.values()} == {"ok"}
    generated = _run(nodes, dkg_request(), (1, 2, 3))
    assert {r["status"] for r in generated.values()} == {"ok"}, generated
    public_key = bytes.fromhex(generated[1]["public_key"])
    message = solana_transfer(public_key, DESTINATION, LAMPORTS_PER_SOL // 2)
    signed = _run(nodes, sign_request(message, (2, 3)), (2, 3))
    assert {r["status"] for r in signed.values()} == {"ok"}, signed
    VerifyKey(public_key).verify(message, bytes.fromhex(signed[2]["signature"]))
    # Each node's key-encryption key is its own, and lives in the token only.
    keys = {n.state.custody.backend.kek_id for n in nodes.values()}  # type: ignore[union-attr]
    assert len(keys) == 3
    seeds = nodes[1].state.identity.seeds()
    for path in (nodes[1].state.data_dir / "shares").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert seeds[:32] not in data
            assert seeds[32:] not in data
    assert unlock_mode(nodes[1].state.data_dir) == "backend"


def test_a_wrong_pin_opens_nothing(
    tmp_path: Path, hsm: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    init_node(tmp_path / "c", 1, WORKSPACE, ADMIN_SET, None, backend=BackendUnlock.prepare(hsm))
    monkeypatch.setenv(PIN_ENV, "0000-not-the-pin")
    with pytest.raises(CustodyError, match="refused"):
        open_node(tmp_path / "c", None)


def test_another_key_in_the_configuration_is_refused(
    tmp_path: Path, hsm: dict[str, object]
) -> None:
    data_dir = tmp_path / "c"
    init_node(data_dir, 1, WORKSPACE, ADMIN_SET, None, backend=BackendUnlock.prepare(hsm))
    other = BackendUnlock.prepare(hsm).backend["key_id"]
    config = json.loads((data_dir / "cosigner.json").read_text())
    config["unlock"]["backend"]["key_id"] = other
    (data_dir / "cosigner.json").write_text(json.dumps(config))
    (data_dir / "cosigner.json").chmod(0o600)
    # The identity blob was sealed under the first key: the other cannot open it, and
    # the configuration's signature would not verify anyway.
    with pytest.raises((CustodyError, ConfigurationError)):
        open_node(data_dir, None)


def test_backend_settings_are_read_strictly(hsm: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="backend type"):
        BackendUnlock.prepare({"type": "local"})
    with pytest.raises(ConfigurationError, match="key_id of an existing key"):
        BackendUnlock.prepare({"type": "aws-kms", "region": "eu-west-1"})
    with pytest.raises(ConfigurationError, match="needs its key_id"):
        BackendUnlock.from_json({"backend": {"type": "pkcs11"}})


def test_cli_init_with_an_hsm(tmp_path: Path, hsm: dict[str, object]) -> None:
    config = tmp_path / "backend.json"
    config.write_text(json.dumps(hsm))
    admins = tmp_path / "admins.json"
    admins.write_text(json.dumps(ADMIN_SET))
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["cosigner", "init", "--id", "1", "--data-dir", str(tmp_path / "c"), "--workspace",
         WORKSPACE, "--admins", str(admins), "--unlock-mode", "backend", "--backend-config",
         str(config)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    answer = json.loads(made.stdout)
    assert answer["unlock"] == "backend"
    assert answer["key_id"].startswith("kek-")
    missing = runner.invoke(
        cli,
        ["cosigner", "init", "--id", "2", "--data-dir", str(tmp_path / "d"), "--workspace",
         WORKSPACE, "--admins", str(admins), "--unlock-mode", "backend"],
    )  # fmt: skip
    assert missing.exit_code == 1
    assert "go together" in missing.output
