"""Co-signer nodes for the service tests: real nodes in threads, an in-memory relay."""

from __future__ import annotations

import threading
from pathlib import Path

from shardvault.cosigner.link import InMemoryLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import open_node, read_public_identity
from shardvault.crypto.channel import Directory
from shardvault.custody.secret import SecretBytes
from shardvault.service.signing import SignRequest
from tests.cosigner.support import (
    PASSPHRASE,
    TEST_ONLY_PRIMES,
    WORKSPACE,
    make_nodes,
    metadata,
)


class Nodes:
    """Three co-signer nodes serving a relay from threads until :meth:`close`."""

    def __init__(self, root: Path) -> None:
        dirs = make_nodes(root)
        self.relay = RelayCore(
            Directory.of({p: read_public_identity(d)[1] for p, d in dirs.items()}),
            keep_transcript=False,
        )
        self.nodes: dict[int, CosignerNode] = {}
        self._stops: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        for party, data_dir in dirs.items():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                state = open_node(data_dir, passphrase)
            # ECDSA key generation takes the TEST-ONLY published primes (no search).
            self.nodes[party] = CosignerNode(
                state, InMemoryLink(self.relay, party), test_only_primes=TEST_ONLY_PRIMES
            )
            self.start(party)

    def start(self, party: int) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=self.nodes[party].run, args=(stop.is_set,), kwargs={"wait": 0.05}, daemon=True
        )
        self._stops[party] = stop
        self._threads[party] = thread
        thread.start()

    def stop(self, party: int) -> None:
        self._stops[party].set()
        self._threads[party].join(timeout=10)

    def idle(self) -> bool:
        """No node has a session in progress."""
        return all(not node._active for node in self.nodes.values())

    def close(self) -> None:
        self.relay.close()
        for party in list(self._threads):
            self.stop(party)
        for node in self.nodes.values():
            node.state.close()


def solana_request(key, message: bytes, **extra) -> SignRequest:  # type: ignore[no-untyped-def]
    """A FROST Ed25519 signing request of the test workspace's treasury key (2-of-3)."""
    return SignRequest(
        workspace_id=WORKSPACE,
        vault_id="treasury",
        backend_key_id=key.backend_key_id,
        scheme="eddsa-ed25519",
        path="m",
        payload_kind="solana_message",
        payload=message,
        session="test",
        metadata=metadata(),
        min_signers=2,
        **extra,
    )
