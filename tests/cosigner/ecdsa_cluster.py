"""Three in-process co-signer nodes holding a policy and one CGGMP21 key, for the tests
that sign Ethereum and Bitcoin payloads at a BIP32 path (the key is made with the
TEST-ONLY published primes, tests/fixtures/test_only_paillier.json)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from eth_account import Account

from shardvault.chains import ethereum
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.group import SECP256K1
from tests.cosigner.initiator_support import INITIATORS
from tests.cosigner.support import VAULT, dkg_request, sign_request, signed_bundle
from tests.cosigner.test_node import Cluster


@contextmanager
def ecdsa_cluster(
    root: Path,
    policy: Mapping[str, object],
    key_id: str,
    path: str,
    initiators: Mapping[str, object] | None = INITIATORS,
    assets: Mapping[str, object] | None = None,
) -> Iterator[tuple[Cluster, bytes]]:
    """Nodes holding ``policy`` (with the initiator keys ``initiators``: alice's and
    bob's by default; and the asset registry ``assets``, if given) and an ECDSA key
    ``key_id``; yields the cluster and the compressed public key derived at ``path``.
    Closes the nodes at the end."""
    cluster = None
    try:
        cluster = Cluster(root)
        bundle = signed_bundle(policy=policy, initiators=initiators, assets=assets)
        results = cluster.run(
            {"kind": "policy", "request_id": "p1", "bundles": [bundle.to_json()]}, [1, 2, 3]
        )
        assert all(r["status"] == "ok" for r in results.values()), results
        body = dkg_request(scheme="ecdsa-secp256k1", key_id=key_id)
        body["aux_session_id"] = secrets.token_hex(32)
        results = cluster.run(body, [1, 2, 3])
        assert {r["status"] for r in results.values()} == {"ok"}, results
        root_key = ExtendedPublicKey(
            SECP256K1.decode_point(bytes.fromhex(results[1]["public_key"])),
            bytes.fromhex(results[1]["chain_code"]),
        )
        yield cluster, root_key.derive(path).public_key.to_bytes()
    finally:
        if cluster is not None:
            cluster.close()


def presign(
    cluster: Cluster, key_id: str, path: str, label: str, signers: Sequence[int] = (1, 3)
) -> None:
    """One presignature ``label`` of ``key_id`` at ``path`` on ``signers``."""
    body = {
        "kind": "presign",
        "request_id": f"presign-{label}",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": key_id,
        "signers": list(signers),
        "presignature": label,
        "path": path,
    }
    assert {r["status"] for r in cluster.run(body, list(signers)).values()} == {"ok"}


def sign_ethereum(
    cluster: Cluster,
    tx: ethereum.Transaction,
    key_id: str,
    path: str,
    *,
    signers: Sequence[int] = (1, 3),
    label: str = "never-made",
    **extra: object,
) -> dict[int, dict[str, object]]:
    """Ask ``signers`` to sign ``tx`` with ``key_id`` at ``path`` from presignature
    ``label`` (``extra``: more request fields); answers each party's result."""
    body = sign_request(
        ethereum.encode_unsigned(tx),
        tuple(signers),
        chain="ethereum",
        key_id=key_id,
        presignature=label,
        path=path,
        **extra,
    )
    return cluster.run(body, list(signers))


def recovered_sender(tx: ethereum.Transaction, signature_hex: str) -> str:
    """The address eth-account recovers from ``tx`` signed with ``r || s || v``."""
    signature = bytes.fromhex(signature_hex)
    raw = ethereum.encode_signed(
        ethereum.assemble(
            tx,
            int.from_bytes(signature[:32], "big"),
            int.from_bytes(signature[32:64], "big"),
            signature[64],
        )
    )
    return str(Account.recover_transaction(raw))
