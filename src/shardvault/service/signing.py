"""Signing backends: where a vault's key generation and signatures happen.

The transaction pipeline and vault creation talk to a :class:`SigningBackend` only:

- ``keygen(workspace, vault, scheme, min_signers, max_signers)`` runs a distributed key
  generation and returns the root public key and BIP32 chain code (never a secret);
- ``sign(request)`` signs one payload with the vault's key at a non-hardened path.

A sign request carries the *payload*, not only a digest: for an Ethereum transaction the
unsigned signing payload (``type || rlp(fields)``), from which the backend recomputes the
digest itself, so a co-signer backend can check what it signs (DESIGN.md invariant 3).

:class:`LocalCeremonyBackend` is the embedded-development backend: every party of the
ceremony runs in this process, passing messages in memory, with the same round objects
the co-signer nodes run (FROST's and CGGMP21's ``local`` runners). Each party's share is
stored separately, envelope-encrypted through :mod:`shardvault.custody`, and opened only
for that party's round objects; the whole key is never formed. It is NOT a production
backend: all shares are opened by one process, so one compromised host holds a quorum.
The co-signer backend (:mod:`shardvault.service.cosigner_backend`: co-signer processes
that connect out to a relay and check every request themselves) is the server's default.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from eth_hash.auto import keccak

from shardvault.chains.bitcoin.psbt import (
    parse_psbt,
)
from shardvault.chains.bitcoin.psbt_roles import (
    input_sighash,
)
from shardvault.chains.errors import ChainError
from shardvault.crypto.bip32 import parse_path
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21 import local as cggmp21_local
from shardvault.crypto.protocols.cggmp21.aux_info import (
    AuxInfoConfig,
    generate_paillier_key,
    run_locally,
)
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presignature import Presignature
from shardvault.crypto.protocols.common import PartyId, SessionId
from shardvault.crypto.protocols.frost import ED25519_SHA512, SECP256K1_BIP340, KeyPackage
from shardvault.crypto.protocols.frost import local as frost_local
from shardvault.crypto.rng import RandomSource, system_random
from shardvault.custody import SecretBytes, ShareAddress, ShareCustody, ShareSlot
from shardvault.service.errors import Conflict, ServiceError

Scheme = Literal["ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340"]
SCHEMES: tuple[Scheme, ...] = ("ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340")
"""The signature schemes a vault may hold a key for."""

KEYGEN_ROUNDS: Mapping[Scheme, int] = {
    # CGGMP21: key generation and auxiliary info run as two sessions of three rounds, each
    # ending with a key-confirmation round.
    "ecdsa-secp256k1": 8,
    # FROST: the two rounds of the Pedersen DKG and its key-confirmation round.
    "eddsa-ed25519": 3,
    "schnorr-bip340": 3,
}
"""Rounds each party sends in one scheme's distributed key generation (progress)."""

KeygenProgress = Callable[[int, int], None]
"""Told ``(steps_done, steps_total)`` as a key generation advances."""


def keygen_steps(scheme: Scheme, parties: int) -> int:
    """The steps of one key generation's progress: each party's rounds
    (:data:`KEYGEN_ROUNDS`) and its result."""
    return parties * (KEYGEN_ROUNDS[scheme] + 1)


PayloadKind = Literal["ethereum_transaction", "solana_message", "bitcoin_sighash", "bitcoin_psbt"]
"""What a payload is, so the signer knows how to turn it into the bytes it signs
(``bitcoin_psbt``: a PSBT whose input ``input_index`` is signed; ``bitcoin_sighash``: a
bare 32-byte digest, which a co-signer signs only where a policy allows raw digests)."""


class SigningError(ServiceError):
    """Key generation or signing failed (a backend fault, not the caller's input)."""

    problem = "signing-failed"


class NoActivePolicy(SigningError, Conflict):
    """A key generation asked of co-signers before the workspace activated a policy:
    a step the caller missed (409), not a fault."""

    problem = "no-active-policy"


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """The public outcome of a key generation."""

    scheme: Scheme
    public_key: bytes
    chain_code: bytes
    min_signers: int
    max_signers: int
    cosigners: tuple[str, ...]
    backend_key_id: str
    test_only: bool = False


@dataclass(frozen=True, slots=True)
class SignRequest:
    """One signature: whose key, which derivation path, what payload.

    ``session`` names the signing session (the pipeline uses the transaction id and the
    attempt number), so a co-signer backend can refuse a replayed session.

    What a co-signer needs to check the request on its own (docs/cosigner.md):
    ``metadata`` (initiator, source vault, creation time, the network the workspace
    names for payloads that do not name it, and the transaction and workspace ids of the
    transfer's intent), the approvers' signed ``approvals`` over the intent digest, the
    signed ``price_reports`` value limits use (docs/policy.md, "Prices"), and the
    ``initiator_request``. The local backend ignores them (it checks nothing itself).
    """

    workspace_id: str
    vault_id: str
    backend_key_id: str
    scheme: Scheme
    path: str
    payload_kind: PayloadKind
    payload: bytes
    session: str
    metadata: Mapping[str, object] = field(default_factory=dict)
    approvals: tuple[Mapping[str, object], ...] = ()
    price_reports: tuple[Mapping[str, object], ...] = ()
    initiator_request: Mapping[str, str] | None = None
    """The initiator's own signed create request (``{token, body}``, body base64) that
    co-signers verify the initiator with; ``None`` for a transfer made without one."""
    input_index: int = 0
    min_signers: int = 0
    """The key's threshold (0: every party signs)."""
    parties: tuple[int, ...] = ()
    """The co-signers that hold a share of the key (empty: every co-signer); a quorum
    is chosen among them."""


def key_parties(cosigners: Sequence[str]) -> tuple[int, ...]:
    """The party ids of a key's ``cosigners`` (``party-<i>`` names, as :class:`GeneratedKey`
    lists them); names of another form are left out."""
    out = []
    for name in cosigners:
        prefix, _, number = name.partition("-")
        if prefix == "party" and number.isdigit():
            out.append(int(number))
    return tuple(sorted(out))


MIN_SIGNERS = 2
"""The smallest quorum of an MPC key: with one, every share would be the whole key
(DESIGN.md invariant 10)."""

PARTY_COUNTS: tuple[int, ...] = tuple(range(2, 17))
"""How many parties a key may span, 2 to 16, where a backend allows any."""


class SigningBackend(Protocol):
    """Runs key generations and signs payloads for vaults."""

    name: str
    max_signers_choices: tuple[int, ...]
    """The ``max_signers`` this backend can generate keys for (how many parties it has),
    so that a vault request it cannot serve is refused before any key generation."""

    def keygen(
        self,
        *,
        workspace_id: str,
        vault_id: str,
        scheme: Scheme,
        min_signers: int,
        max_signers: int,
        initiator: str = "system",
        progress: KeygenProgress | None = None,
    ) -> GeneratedKey:
        """Run a DKG; raises :class:`SigningError` when it cannot. ``initiator`` (the
        user asking) is what a co-signer's policy sees for the key generation.
        ``progress``, if given, is told how far it has come (a backend that cannot
        observe its rounds tells it only the end)."""
        ...

    def sign(self, request: SignRequest) -> bytes:
        """Sign; ECDSA answers ``r || s || recovery_id`` (65 bytes, low s), Schnorr and
        EdDSA their 64-byte signatures. Raises :class:`SigningError`."""
        ...

    def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | SigningError]:
        """Sign several requests (a burst), each as :meth:`sign` would; answers, in
        order, each signature or the :class:`SigningError` it failed with."""
        ...


def message_to_sign(kind: PayloadKind, payload: bytes, input_index: int = 0) -> bytes:
    """The bytes (or digest) a scheme signs for ``payload``: keccak256 of an Ethereum
    signing payload, a Solana message as is, the BIP143/BIP341 sighash of a PSBT's input,
    a Bitcoin sighash as is (32 bytes)."""
    if kind == "ethereum_transaction":
        return bytes(keccak(payload))
    if kind == "bitcoin_psbt":
        try:
            return input_sighash(parse_psbt(payload), input_index)
        except ChainError as exc:
            raise SigningError(f"the PSBT cannot be signed: {exc}") from None
    if kind == "bitcoin_sighash":
        if len(payload) != 32:
            raise SigningError("a bitcoin sighash is 32 bytes")
        return payload
    return payload


TEST_ONLY_PRIMES_WARNING = "TEST ONLY"


def load_test_only_paillier_keys(
    path: Path, count: int, rng: RandomSource
) -> list[PaillierSecretKey]:
    """Read ``count`` Paillier keys from the TEST-ONLY fixture of published safe primes.

    Keys made with them are insecure; the backend marks such vaults ``test_only``.
    """
    document = json.loads(Path(path).read_text())
    if TEST_ONLY_PRIMES_WARNING not in str(document.get("warning", "")):
        raise SigningError(f"{path} is not a test-only prime fixture")
    available = list(document["moduli"]["2048"])
    if len(available) < count:
        raise SigningError(f"the test-only fixture has {len(available)} moduli, {count} needed")
    chosen: list[dict[str, str]] = []
    while len(chosen) < count:
        chosen.append(available.pop(int.from_bytes(rng(4), "big") % len(available)))
    return [PaillierSecretKey.from_primes(int(p["p"], 16), int(p["q"], 16)) for p in chosen]


_PoolKey = tuple[str, str, str, str]
"""(workspace, vault, backend key id, derivation path)."""


@dataclass(frozen=True, slots=True, repr=False)
class _Pooled:
    """One pooled presignature set and the derived shares it was made for.

    Security: both are secret; the class has no useful ``repr``.
    """

    shares: list[KeyShare]
    presignatures: list[Presignature]

    def __repr__(self) -> str:
        return "_Pooled(<secret>)"


class LocalCeremonyBackend:
    """The embedded-development backend (see the module docstring for what it is not).

    Security: shares are held only as envelope-encrypted blobs in ``custody``; each is
    opened just before its own party's round objects use it and the plaintext buffer is
    wiped right after decoding. Nothing here combines shares. ``test_only_primes`` (a
    published-primes fixture) makes ECDSA key generation fast and every such key insecure.

    With ``presignature_pool=n`` the backend keeps up to ``n`` CGGMP21 presignatures per
    (key, derivation path) that has signed, refilled by a background thread after each
    use, so a signature from the pool is one online round (about a millisecond here
    instead of presigning's ~0.8 s). Pooled presignatures and the derived shares they
    belong to live only in this process's memory (never stored, lost on restart, never in
    ``repr``); each is taken out of the pool before it is used, so none is used twice.
    """

    name = "local-ceremony"
    max_signers_choices = PARTY_COUNTS

    def __init__(
        self,
        custody: ShareCustody,
        *,
        rng: RandomSource = system_random,
        test_only_primes: Path | None = None,
        presignature_pool: int = 0,
    ) -> None:
        if not 0 <= presignature_pool <= 1000:
            raise ValueError("presignature_pool must be between 0 and 1000")
        self._custody = custody
        self._rng = rng
        self._test_only_primes = test_only_primes
        # One ceremony at a time per process: CGGMP21 presigning is CPU-bound and the
        # share store's compare-and-swap would refuse concurrent writers of one key anyway.
        self._lock = threading.Lock()
        self._pool_size = presignature_pool
        self._pools: dict[_PoolKey, list[_Pooled]] = {}
        self._pool_lock = threading.Lock()
        self._wanted: queue.Queue[_PoolKey | None] = queue.Queue()
        self._filler: threading.Thread | None = None
        self._closing = threading.Event()

    def __repr__(self) -> str:
        return f"LocalCeremonyBackend(test_only_primes={self._test_only_primes is not None})"

    # Key generation.

    def keygen(
        self,
        *,
        workspace_id: str,
        vault_id: str,
        scheme: Scheme,
        min_signers: int,
        max_signers: int,
        initiator: str = "system",
        progress: KeygenProgress | None = None,
    ) -> GeneratedKey:
        del initiator  # nothing here checks a policy
        if max_signers not in PARTY_COUNTS or not MIN_SIGNERS <= min_signers <= max_signers:
            raise SigningError("need 2 to 16 parties and 2 <= min_signers <= max_signers")
        key_id = f"{scheme}-{self._rng(8).hex()}"
        with self._lock:
            if scheme == "ecdsa-secp256k1":
                key = self._keygen_ecdsa(workspace_id, vault_id, key_id, min_signers, max_signers)
            else:
                key = self._keygen_frost(
                    workspace_id, vault_id, key_id, scheme, min_signers, max_signers
                )
        if progress is not None:
            # The parties run in this process, in one call: only the end is observable.
            steps = keygen_steps(scheme, max_signers)
            progress(steps, steps)
        return key

    def _store(
        self, workspace_id: str, vault_id: str, key_id: str, party: int, data: bytes
    ) -> None:
        address = ShareAddress(workspace_id, vault_id, key_id, f"party-{party}")
        secret = SecretBytes(data)
        try:
            self._custody.store_share(ShareSlot(address, 0), secret, expected_revision=0)
        finally:
            secret.wipe()

    def _keygen_ecdsa(
        self, workspace_id: str, vault_id: str, key_id: str, min_signers: int, max_signers: int
    ) -> GeneratedKey:
        outputs = cggmp21_local.run_keygen(min_signers, max_signers, self._rng)
        parties = [int(o.party) for o in outputs]
        test_only = self._test_only_primes is not None
        if self._test_only_primes is not None:
            paillier = load_test_only_paillier_keys(self._test_only_primes, len(parties), self._rng)
        else:
            paillier = [generate_paillier_key(system_random) for _ in parties]
        session = SessionId(self._rng(32))
        configs = [
            AuxInfoConfig(session, PartyId(p), tuple(PartyId(q) for q in parties)) for p in parties
        ]
        aux = run_locally(configs, dict(zip(parties, paillier, strict=True)), self._rng)
        public_key = b""
        chain_code = b""
        for output in outputs:
            share = output.with_aux(aux[output.party])
            public_key = share.public_key.to_bytes()
            chain_code = share.chain_code
            self._store(workspace_id, vault_id, key_id, int(share.party), share.to_bytes())
        return GeneratedKey(
            scheme="ecdsa-secp256k1",
            public_key=public_key,
            chain_code=chain_code,
            min_signers=min_signers,
            max_signers=max_signers,
            cosigners=tuple(f"party-{p}" for p in parties),
            backend_key_id=key_id,
            test_only=test_only,
        )

    def _keygen_frost(
        self,
        workspace_id: str,
        vault_id: str,
        key_id: str,
        scheme: Scheme,
        min_signers: int,
        max_signers: int,
    ) -> GeneratedKey:
        suite = ED25519_SHA512 if scheme == "eddsa-ed25519" else SECP256K1_BIP340
        packages = frost_local.run_dkg(suite, min_signers, max_signers, self._rng)
        for package in packages:
            self._store(workspace_id, vault_id, key_id, int(package.identifier), package.to_bytes())
        public = packages[0].public
        return GeneratedKey(
            scheme=scheme,
            public_key=public.public_key_bytes,
            chain_code=public.chain_code,
            min_signers=min_signers,
            max_signers=max_signers,
            cosigners=tuple(f"party-{int(p)}" for p in public.party_ids),
            backend_key_id=key_id,
        )

    # Signing.

    def _open(self, request: SignRequest, party: str) -> bytes:
        address = ShareAddress(
            request.workspace_id, request.vault_id, request.backend_key_id, party
        )
        with self._custody.load_share(address) as opened:
            return bytes(opened.share.view())

    def sign(self, request: SignRequest) -> bytes:
        message = message_to_sign(request.payload_kind, request.payload, request.input_index)
        try:
            if request.scheme == "ecdsa-secp256k1":
                return self._sign_ecdsa(request, message)
            return self._sign_frost(request, message)
        except SigningError:
            raise
        except Exception as exc:  # a protocol abort or a custody failure
            raise SigningError(
                f"signing session {request.session} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | SigningError]:
        """One after another: the ceremonies run in this process anyway."""
        answers: list[bytes | SigningError] = []
        for request in requests:
            try:
                answers.append(self.sign(request))
            except SigningError as exc:
                answers.append(exc)
        return answers

    def _derived_shares(self, key: _PoolKey) -> list[KeyShare]:
        workspace_id, vault_id, key_id, path = key
        parse_path(path)
        request = SignRequest(
            workspace_id, vault_id, key_id, "ecdsa-secp256k1", path, "ethereum_transaction", b"", ""
        )
        # Shares come from authenticated custody: no safe-prime re-tests (KeyShare.from_bytes).
        first = KeyShare.from_bytes(self._open(request, "party-1"), recheck_primality=False)
        shares = [first]
        for party in range(2, first.min_signers + 1):
            opened = self._open(request, f"party-{party}")
            shares.append(KeyShare.from_bytes(opened, recheck_primality=False))
        return [derive_key_share(s, path) for s in shares]

    def fill_pool(self, workspace_id: str, vault_id: str, backend_key_id: str, path: str) -> int:
        """Presign until the pool of (key, path) holds ``presignature_pool`` entries;
        returns how many were added. Raises SigningError on a failure."""
        key = (workspace_id, vault_id, backend_key_id, path)
        added = 0
        try:
            derived: list[KeyShare] | None = None
            while not self._closing.is_set():
                with self._pool_lock:
                    if len(self._pools.get(key, [])) >= self._pool_size:
                        return added
                if derived is None:
                    derived = self._derived_shares(key)
                presignatures = cggmp21_local.run_presign(derived, self._rng)
                with self._pool_lock:
                    self._pools.setdefault(key, []).append(_Pooled(derived, presignatures))
                added += 1
            return added
        except Exception as exc:
            raise SigningError(f"presigning for {backend_key_id} at {path} failed: {exc}") from exc

    def pooled(self, workspace_id: str, vault_id: str, backend_key_id: str, path: str) -> int:
        """How many presignatures the pool of (key, path) holds now."""
        with self._pool_lock:
            return len(self._pools.get((workspace_id, vault_id, backend_key_id, path), []))

    def _take(self, key: _PoolKey) -> _Pooled | None:
        with self._pool_lock:
            entries = self._pools.get(key)
            return entries.pop() if entries else None

    def _want(self, key: _PoolKey) -> None:
        if self._pool_size == 0 or self._closing.is_set():
            return
        if self._filler is None or not self._filler.is_alive():
            self._filler = threading.Thread(
                target=self._fill_forever, name="presignature-pool", daemon=True
            )
            self._filler.start()
        self._wanted.put(key)

    def _fill_forever(self) -> None:
        while True:
            key = self._wanted.get()
            if key is None or self._closing.is_set():
                return
            try:
                self.fill_pool(*key)
            except SigningError:
                # The next signature presigns on demand; the pool is an optimisation.
                continue

    def close(self) -> None:
        """Stop the background filler and drop every pooled presignature."""
        self._closing.set()
        if self._filler is not None and self._filler.is_alive():
            self._wanted.put(None)
            self._filler.join(timeout=30)
        with self._pool_lock:
            self._pools.clear()

    def _sign_ecdsa(self, request: SignRequest, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise SigningError("ECDSA signs a 32-byte digest")
        key = (request.workspace_id, request.vault_id, request.backend_key_id, request.path)
        pooled = self._take(key)
        if pooled is not None:
            derived, presignatures = pooled.shares, pooled.presignatures
        else:
            derived = self._derived_shares(key)
            presignatures = cggmp21_local.run_presign(derived, self._rng)
        signature = cggmp21_local.run_sign(derived, presignatures, digest, self._rng)
        self._want(key)
        return signature.to_bytes()

    def _sign_frost(self, request: SignRequest, message: bytes) -> bytes:
        if request.path not in ("m", ""):
            raise SigningError(
                f"{request.scheme} keys sign at the root only (no derivation for this scheme yet)"
            )
        first = KeyPackage.from_bytes(self._open(request, "party-1"))
        packages = [first]
        for party in range(2, first.public.min_signers + 1):
            packages.append(KeyPackage.from_bytes(self._open(request, f"party-{party}")))
        return frost_local.run_signing(packages, message, self._rng)
