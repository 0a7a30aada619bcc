"""A co-signer's key shares in custody: where each lives, sealing a new one, and opening
one for the single operation that needs it (DESIGN.md invariant 2)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.state import NodeState
from shardvault.crypto.errors import CryptoError, EncodingError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21.aux_info import generate_paillier_key
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.crypto.rng import system_random
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import RecordNotFoundError
from shardvault.custody.secret import SecretBytes

TEST_ONLY_PRIMES_ENV = "SHARDVAULT_UNSAFE_TEST_ONLY_PAILLIER_PRIMES"
"""Environment variable naming the TEST-ONLY fixture of published safe primes (the same
variable ``shardvault mpc`` reads). A co-signer started with it makes INSECURE ECDSA keys;
never set it outside tests and demos."""

FROST_KEY = b"shardvault/cosigner/key/frost/v1\x00"
"""Prefix of a sealed FROST key package."""

CGGMP21_KEY = b"shardvault/cosigner/key/cggmp21/v1\x00"
"""Prefix of a sealed CGGMP21 key share."""


class NodeKeys:
    """The key shares of one co-signer's custody.

    Security: a loaded share is the caller's to drop; nothing is cached here.
    """

    def __init__(self, state: NodeState) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"NodeKeys(party={self._state.party})"

    def address(self, vault: str, key_id: str) -> ShareAddress:
        try:
            return self._state.share_address(vault, key_id)
        except ValueError as exc:
            raise RequestRefused("malformed", str(exc)) from None

    def store(self, address: ShareAddress, tag: bytes, encoded: bytes) -> None:
        with SecretBytes(tag + encoded) as plaintext:
            self._state.custody.store_share(ShareSlot(address, 1), plaintext, 0)

    def load(self, vault: str, key_id: str) -> KeyPackage | KeyShare:
        address = self.address(vault, key_id)
        try:
            with self._state.custody.load_share(address) as opened:
                plaintext = opened.share.reveal()
        except RecordNotFoundError:
            raise RequestRefused("key", f"no share of key {key_id!r} in vault {vault!r}") from None
        try:
            if plaintext.startswith(FROST_KEY):
                return KeyPackage.from_bytes(plaintext[len(FROST_KEY) :])
            if plaintext.startswith(CGGMP21_KEY):
                # The custody envelope (AEAD) authenticates the share this node sealed
                # after its Paillier primes passed the safe-prime tests; re-running them
                # cost ~40 ms on every signature.
                return KeyShare.from_bytes(plaintext[len(CGGMP21_KEY) :], recheck_primality=False)
        except EncodingError as exc:
            raise RequestRefused("key", f"stored share of {key_id!r} is unreadable") from exc
        raise RequestRefused("key", f"stored share of {key_id!r} has an unknown kind")

    def ecdsa(
        self,
        body: Mapping[str, object],
        vault: str,
        key_id: str,
        loaded: KeyPackage | KeyShare | None = None,
    ) -> KeyShare:
        """The ECDSA key share of ``key_id``, derived along ``path`` (BIP32, non-hardened)
        when the request names one: one key generation serves many addresses."""
        key = loaded if loaded is not None else self.load(vault, key_id)
        if not isinstance(key, KeyShare):
            raise RequestRefused("key", "this needs an ECDSA (CGGMP21) key")
        path = body.get("path", "m")
        if not isinstance(path, str):
            raise RequestRefused("malformed", "field path must be a string")
        if path in ("m", ""):
            return key
        try:
            return derive_key_share(key, path)
        except CryptoError as exc:
            raise RequestRefused("malformed", f"derivation path refused: {exc}") from None

    def paillier_key(self) -> PaillierSecretKey:
        """This party's Paillier-Blum key for CGGMP21's auxiliary info.

        With :data:`TEST_ONLY_PRIMES_ENV` set, party ``i`` takes the ``i``-th published
        TEST-ONLY modulus (insecure, tests and demos only); otherwise two fresh safe
        primes are searched (seconds to minutes; the loop waits meanwhile).
        """
        path = os.environ.get(TEST_ONLY_PRIMES_ENV)
        if not path:
            return generate_paillier_key(system_random)
        try:
            document = json.loads(Path(path).read_text("utf-8"))
            if "TEST ONLY" not in str(document.get("warning", "")):
                raise RequestRefused("key", f"{path} is not a test-only prime fixture")
            pairs = document["moduli"]["2048"]
            pair = pairs[(self._state.party - 1) % len(pairs)]
            return PaillierSecretKey.from_primes(int(pair["p"], 16), int(pair["q"], 16))
        except (OSError, ValueError, KeyError, TypeError):
            raise RequestRefused("key", "the test-only prime fixture is unreadable") from None
