"""A co-signer's key shares in custody: where each lives, sealing a new one, and opening
one for the single operation that needs it (DESIGN.md invariant 2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.prime_pool import PrimePool
from shardvault.cosigner.state import NodeState
from shardvault.crypto.errors import CryptoError, EncodingError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21.aux_info import generate_paillier_key
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.crypto.rng import system_random
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import CustodyError, RecordNotFoundError
from shardvault.custody.secret import SecretBytes

TEST_ONLY_PRIMES_ENV = "SHARDVAULT_UNSAFE_TEST_ONLY_PAILLIER_PRIMES"
"""Environment variable that names the TEST-ONLY fixture of published safe primes for
``shardvault mpc``. A co-signer never reads it: it takes test-only primes only from an
explicit ``test_only_primes`` (``shardvault cosigner run --unsafe-test-only-primes``),
and ``cosigner run`` refuses to start while the variable is set without that flag, so a
stray variable cannot make it use published primes silently."""

FROST_KEY = b"shardvault/cosigner/key/frost/v1\x00"
"""Prefix of a sealed FROST key package."""

CGGMP21_KEY = b"shardvault/cosigner/key/cggmp21/v1\x00"
"""Prefix of a sealed CGGMP21 key share."""


class NodeKeys:
    """The key shares of one co-signer's custody.

    ``test_only_primes`` names the TEST-ONLY fixture of published safe primes: with it,
    every ECDSA key this node makes is INSECURE (anyone can factor its Paillier modulus
    and read the MtA ciphertexts sent to it). Only tests and demos pass it.

    Security: a loaded share is the caller's to drop; nothing is cached here.
    """

    def __init__(
        self,
        state: NodeState,
        test_only_primes: Path | None = None,
        pool: PrimePool | None = None,
    ) -> None:
        self._state = state
        self._test_only_primes = test_only_primes
        self._pool = pool

    @property
    def test_only(self) -> bool:
        """Whether this node makes its Paillier keys from published TEST-ONLY primes."""
        return self._test_only_primes is not None

    def __repr__(self) -> str:
        return f"NodeKeys(party={self._state.party})"

    def address(self, vault: str, key_id: str) -> ShareAddress:
        try:
            return self._state.share_address(vault, key_id)
        except ValueError as exc:
            raise RequestRefused("malformed", str(exc)) from None

    def store(self, address: ShareAddress, key: KeyPackage | KeyShare) -> None:
        """Seal a new key share, and keep its public part, signed, for address
        attestations (:mod:`.public_keys`)."""
        tag = FROST_KEY if isinstance(key, KeyPackage) else CGGMP21_KEY
        with SecretBytes(tag + key.to_bytes()) as plaintext:
            self._state.custody.store_share(ShareSlot(address, 1), plaintext, 0)
        self._remember(address.vault, address.key_id, key)

    def _remember(self, vault: str, key_id: str, key: KeyPackage | KeyShare) -> None:
        self._state.public_keys.remember(self._state.identity, vault, key_id, key)

    def load(self, vault: str, key_id: str) -> KeyPackage | KeyShare:
        address = self.address(vault, key_id)
        try:
            with self._state.custody.load_share(address) as opened:
                plaintext = opened.share.reveal()
        except RecordNotFoundError:
            raise RequestRefused("key", f"no share of key {key_id!r} in vault {vault!r}") from None
        try:
            key: KeyPackage | KeyShare
            if plaintext.startswith(FROST_KEY):
                key = KeyPackage.from_bytes(plaintext[len(FROST_KEY) :])
            elif plaintext.startswith(CGGMP21_KEY):
                # The custody envelope (AEAD) authenticates the share this node sealed
                # after its Paillier primes passed the safe-prime tests; re-running them
                # cost ~40 ms on every signature.
                key = KeyShare.from_bytes(plaintext[len(CGGMP21_KEY) :], recheck_primality=False)
            else:
                raise RequestRefused("key", f"stored share of {key_id!r} has an unknown kind")
        except EncodingError as exc:
            raise RequestRefused("key", f"stored share of {key_id!r} is unreadable") from exc
        # A key of an earlier release gets its public record the first time it is opened.
        self._remember(vault, key_id, key)
        return key

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
        """This party's Paillier-Blum key for CGGMP21's auxiliary info
        (:meth:`paillier_key_and_source`)."""
        return self.paillier_key_and_source()[0]

    def paillier_key_and_source(self, *, search: bool = True) -> tuple[PaillierSecretKey, str]:
        """A new Paillier-Blum key for one key generation's auxiliary info, and where
        its primes came from: ``pool`` (two primes taken from this node's pool, each
        removed from it first), ``search`` (the pool had fewer than two: two fresh safe
        primes are searched now, seconds to minutes while the loop waits), or, with
        ``test_only_primes``, ``test-only-pool`` / ``test-only-fixture`` (PUBLISHED
        primes: party ``i`` takes the ``i``-th modulus of the fixture when its pool is
        empty; insecure, tests and demos only). With ``search=False`` a search is
        refused instead (check ``aux``: background work never holds the loop for one).
        """
        if self._pool is not None and self._pool.test_only == self.test_only:
            try:
                pair = self._pool.take_pair()
            except CustodyError:
                pair = None  # the pool's custody failed: search instead, never reuse
            if pair is not None:
                key = PaillierSecretKey.from_primes(pair.p, pair.q)
                return key, "test-only-pool" if pair.test_only else "pool"
        path = self._test_only_primes
        if path is None:
            if not search:
                raise RequestRefused("aux", "fewer than two pooled primes ready; try later")
            return generate_paillier_key(system_random), "search"
        try:
            document = json.loads(Path(path).read_text("utf-8"))
            if "TEST ONLY" not in str(document.get("warning", "")):
                raise RequestRefused("key", f"{path} is not a test-only prime fixture")
            pairs = document["moduli"]["2048"]
            pair_hex = pairs[(self._state.party - 1) % len(pairs)]
            key = PaillierSecretKey.from_primes(int(pair_hex["p"], 16), int(pair_hex["q"], 16))
            return key, "test-only-fixture"
        except (OSError, ValueError, KeyError, TypeError):
            raise RequestRefused("key", "the test-only prime fixture is unreadable") from None
