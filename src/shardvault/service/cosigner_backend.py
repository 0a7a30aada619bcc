"""The co-signer signing backend: key generation and signing by co-signer processes.

:class:`CosignerBackend` implements :class:`~shardvault.service.signing.SigningBackend`
over the relay of each workspace's co-signers (:mod:`shardvault.cosigner`): it queues
requests for the parties (``RelayCore.submit``), waits for every party's result, and
never sees a share. The co-signers check each request on their own (payload, signed
policy, approvers' signatures over the transfer's intent), so this side only says what
it wants signed and forwards the evidence (docs/cosigner.md, "What the coordinator must
do"):

* before a key generation or a signature, the workspace's activated policy bundles are
  pushed to any co-signer whose pinned chain is behind (it verifies them against the
  admin set it pinned itself; the server cannot forge one);
* a key generation is done only when every party reported ``ok`` with the same public
  key; otherwise every party is told to abort and the key is discarded;
* a failed or refused signature aborts the session at every signer, and the error says
  which party refused which check (or whom an aborted session blames);
* ECDSA signatures come from presignatures: a pool per (key, derivation path, signer
  set) is filled in the background once no signature has been asked for
  ``idle_before_presign`` seconds (1 s: a refill between the signatures of a slow burst
  took the co-signers' CPU from them), or at once when it is empty, so a signature from
  the pool is one online round. The pool holds only *labels*; each co-signer keeps its
  own presignature in memory and deletes it when it signs, so none is used twice. A
  co-signer that restarted has lost its presignatures; the backend then drops the pool
  and presigns on demand;
* a quorum is chosen among the co-signers that answer, and one that goes silent
  mid-session is replaced by another quorum (:mod:`.cosigner_quorum`);
* a key spans the co-signers of the directory the active policy's admin quorum signed
  (every co-signer of the relay when it carries none);
* an address is attested by every co-signer of its key that answers within
  ``attest_timeout`` (:mod:`.address_attestations`).

``relays`` maps a workspace id to its relay (the embedded co-signers of
:mod:`shardvault.service.embedded_cosigners`, or a relay that remote co-signers connect
to); ``policy_chain`` answers the workspace's activated bundles in chain order (transport
form); the optional ``policy_version`` answers just the active version, so a signature
reads the bundles only when the policy changed.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from shardvault.cosigner.relay_core import RelayCore
from shardvault.service.address_attestations import AttestationRequest, collect_attestations
from shardvault.service.aux_sets import AuxSets
from shardvault.service.cosigner_bundles import bundle_version, directory_parties

# The errors callers catch are re-exported here, where they have always been.
from shardvault.service.cosigner_quorum import (
    AUX_ROUNDS,
    CosignerRefused,
    CosignerStalled,
    Quorums,
    QuorumUnavailable,
    summary,
    watch_keygen,
)
from shardvault.service.errors import ValidationError
from shardvault.service.signing import (
    PARTY_COUNTS,
    GeneratedKey,
    KeygenProgress,
    NoActivePolicy,
    Scheme,
    SigningError,
    SignRequest,
    keygen_steps,
)

__all__ = ["CosignerBackend", "CosignerRefused", "CosignerStalled", "QuorumUnavailable"]

_log = logging.getLogger("shardvault.cosigner_backend")

RelayLookup = Callable[[str], RelayCore]
"""A workspace id to the relay of its co-signers (raises :class:`SigningError` if none)."""

NO_POLICY_YET = (
    "the workspace has no active policy: its co-signers make keys only under a policy the "
    "admin quorum signed, which allows key generation; propose, sign and activate one "
    "first (shardvault policy apply), then create the vault"
)
"""Why a key generation before the first policy is refused (a 409)."""

PolicyChain = Callable[[str], list[dict[str, object]]]
"""A workspace id to its activated policy bundles, oldest first (transport form)."""

_CHAINS = {
    "ethereum_transaction": "ethereum",
    "solana_message": "solana",
    "bitcoin_psbt": "bitcoin",
    "bitcoin_sighash": "raw",
}


def _lost_presignature(exc: CosignerRefused) -> bool:
    """A co-signer refused for want of the presignature (it restarted and lost it)."""
    return "no presignature" in str(exc)


@dataclass(frozen=True, slots=True)
class _PoolKey:
    workspace_id: str
    vault_id: str
    key_id: str
    path: str
    signers: tuple[int, ...]


def _with_session(body: Mapping[str, object]) -> dict[str, object]:
    """A signing request's body with a fresh request id and session id."""
    return {
        **body,
        "request_id": f"sign-{secrets.token_hex(12)}",
        "session_id": secrets.token_hex(32),
    }


class CosignerBackend:
    """Signs through co-signer processes (module docstring).

    Thread-safe: the pipeline's workers call :meth:`sign` concurrently; each call waits
    only for its own request's results.
    """

    name = "cosigners"
    max_signers_choices: tuple[int, ...]
    """Every key spans all of a workspace's co-signers: only their number."""

    def __init__(
        self,
        relays: RelayLookup,
        policy_chain: PolicyChain,
        *,
        policy_version: Callable[[str], int | None] | None = None,
        keygen_timeout: float = 600.0,
        sign_timeout: float = 60.0,
        presign_timeout: float = 120.0,
        presignature_pool: int = 0,
        idle_before_presign: float = 1.0,
        clock: Callable[[], float] = time.time,
        stall_after: float = 15.0,
        failover_attempts: int = 3,
        parties: int | None = 3,
        attest_timeout: float = 10.0,
        aux_sets: int = 0,
        aux_idle: float = 5.0,
    ) -> None:
        if not 0 <= presignature_pool <= 10_000:
            raise ValueError("presignature_pool must be between 0 and 10000")
        if parties is not None and parties not in PARTY_COUNTS:
            raise ValueError("a workspace has 2 to 16 co-signers")
        # ``None``: each workspace's count is its signed co-signer directory's (remote
        # co-signers), checked at key generation.
        self.max_signers_choices = PARTY_COUNTS if parties is None else (parties,)
        self._relays = relays
        self._policy_chain = policy_chain
        self._policy_version = policy_version
        self._keygen_timeout = keygen_timeout
        self._sign_timeout = sign_timeout
        self._presign_timeout = presign_timeout
        self._attest_timeout = attest_timeout
        self._pool_size = presignature_pool
        self._idle = idle_before_presign
        self._clock = clock
        self._failover_attempts = failover_attempts
        self._quorums = Quorums(stall_after, clock)
        self._lock = threading.Lock()
        self._policy_lock = threading.Lock()
        # Policy versions each workspace's co-signers are known to hold.
        self._pushed: dict[str, int] = {}
        # The parties of each workspace's signed co-signer directory, as last read.
        self._directories: dict[str, tuple[int, ...]] = {}
        self._pools: dict[_PoolKey, list[str]] = {}
        self._making: dict[_PoolKey, int] = {}
        self._wanted: set[_PoolKey] = set()
        self._last_sign = 0.0
        self._signing = 0
        self._closing = threading.Event()
        self._wake = threading.Condition(self._lock)
        self._filler: threading.Thread | None = None
        # Prepared auxiliary-info sets (:mod:`.aux_sets`), made when nothing else runs.
        self.aux_sets = AuxSets(aux_sets, self._run_aux, idle_s=aux_idle)

    def __repr__(self) -> str:
        return f"CosignerBackend(pool={self._pool_size})"

    # --- Requests -------------------------------------------------------------------

    def _call(
        self,
        relay: RelayCore,
        body: dict[str, object],
        parties: Sequence[int],
        timeout: float,
        *,
        stall: bool = False,
    ) -> dict[int, dict[str, object]]:
        relay.submit(body, parties)
        return self._results(relay, body, parties, timeout, stall=stall)

    def _results(
        self,
        relay: RelayCore,
        body: Mapping[str, object],
        parties: Sequence[int],
        timeout: float,
        *,
        stall: bool = False,
    ) -> dict[int, dict[str, object]]:
        """The parties' results of a queued request (forgotten by the relay once read);
        with ``stall``, a quorum member that goes silent ends the wait
        (:meth:`Quorums.results`, which aborts the session everywhere and raises
        :class:`CosignerStalled`)."""
        return self._quorums.results(relay, body, parties, timeout, stall=stall, abort=self._abort)

    def _abort(self, relay: RelayCore, session_ids: Sequence[str], parties: Sequence[int]) -> None:
        """Tell every party to drop the sessions (they would otherwise wait them out)."""
        for session in session_ids:
            body: dict[str, object] = {
                "kind": "abort",
                "request_id": f"abort-{secrets.token_hex(8)}",
                "session_id": session,
            }
            try:
                relay.submit(body, parties)
            except ValueError:
                continue

    def _all_ok(
        self,
        relay: RelayCore,
        results: Mapping[int, Mapping[str, object]],
        parties: Sequence[int],
        sessions: Sequence[str],
        what: str,
    ) -> None:
        """Raise (after aborting ``sessions`` everywhere) unless every party said ok."""
        if all(results.get(p, {}).get("status") == "ok" for p in parties):
            return
        self._abort(relay, sessions, parties)
        raise CosignerRefused(f"{what}: {summary(results, parties)}")

    def _ensure_policy(self, workspace_id: str, relay: RelayCore, parties: Sequence[int]) -> None:
        """Push the activated bundles a co-signer does not hold yet. With a
        ``policy_version`` lookup, the bundles are read only when the active version is
        not the one already pushed (a signature's usual case: one cheap read)."""
        if self._policy_version is not None:
            active = self._policy_version(workspace_id)
            if active is not None and self._pushed.get(workspace_id) == active:
                return
        bundles = self._policy_chain(workspace_id)
        if not bundles:
            raise CosignerRefused("the workspace has no active policy for its co-signers")
        newest = bundle_version(bundles[-1])
        with self._policy_lock:
            self._directories[workspace_id] = directory_parties(bundles[-1])
            if self._pushed.get(workspace_id) == newest:
                return
            probe = self._call(
                relay,
                {"kind": "policy", "request_id": f"policy-{secrets.token_hex(8)}", "bundles": []},
                parties,
                self._sign_timeout,
            )
            for party in parties:
                result = probe.get(party)
                if result is None or result.get("status") != "ok":
                    raise CosignerRefused(f"policy probe: {summary(probe, [party])}")
                held = result.get("policy_version")
                held_version = held if isinstance(held, int) else 0
                missing = [b for b in bundles if bundle_version(b) > held_version]
                if not missing:
                    continue
                body: dict[str, object] = {
                    "kind": "policy",
                    "request_id": f"policy-{secrets.token_hex(8)}",
                    "bundles": missing,
                }
                answer = self._call(relay, body, [party], self._sign_timeout)
                if answer.get(party, {}).get("status") != "ok":
                    raise CosignerRefused(f"policy push: {summary(answer, [party])}")
                _log.info("co-signer %d now holds policy version %d", party, newest)
            self._pushed[workspace_id] = newest

    def _has_policy(self, workspace_id: str) -> bool:
        """Whether the workspace has an active policy (one cheap read with a version
        lookup)."""
        if self._policy_version is not None:
            return self._policy_version(workspace_id) is not None
        return bool(self._policy_chain(workspace_id))

    def _relay(self, workspace_id: str) -> RelayCore:
        return self._relays(workspace_id)

    def _key_parties(self, workspace_id: str, relay: RelayCore) -> list[int]:
        """Who holds a share of a new key: the co-signers of the directory the active
        policy carries (signed by the admin quorum), else every co-signer of the relay.
        Read when the policy was last pushed (:meth:`_ensure_policy`).

        Raises:
            QuorumUnavailable: a co-signer of the signed directory the relay does not
                serve (not paired).
        """
        with self._policy_lock:
            listed = self._directories.get(workspace_id)
        if listed is None:
            bundles = self._policy_chain(workspace_id)
            listed = directory_parties(bundles[-1]) if bundles else ()
        if not listed:
            return list(relay.parties)
        unserved = [p for p in listed if p not in relay.parties]
        if unserved:
            raise QuorumUnavailable(
                f"co-signers {unserved} of the signed directory are not paired with this server"
            )
        return list(listed)

    # --- Key generation -------------------------------------------------------------

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
        if not self._has_policy(workspace_id):
            raise NoActivePolicy(NO_POLICY_YET)
        relay = self._relay(workspace_id)
        self._ensure_policy(workspace_id, relay, relay.parties)
        parties = self._key_parties(workspace_id, relay)
        if max_signers != len(parties):
            raise ValidationError(
                "max_signers",
                f"this workspace has {len(parties)} co-signers and a key spans all of them "
                f"(asked for {max_signers})",
            )
        if not 2 <= min_signers <= max_signers:
            # One signer would make every share the whole key.
            raise SigningError("need 2 <= min_signers <= max_signers")
        key_id = f"{scheme}-{secrets.token_hex(8)}"
        session = secrets.token_hex(32)
        body: dict[str, object] = {
            "kind": "dkg",
            "request_id": f"dkg-{key_id}",
            "session_id": session,
            "scheme": scheme,
            "vault": vault_id,
            "key_id": key_id,
            "parties": parties,
            "min_signers": min_signers,
            "metadata": {
                "initiator": {"type": "user", "id": initiator},
                "source": {"vault": vault_id},
                "created_at": int(self._clock()),
            },
        }
        label = None
        if scheme == "ecdsa-secp256k1":
            label = self.aux_sets.take(workspace_id, parties)
        self.aux_sets.busy(1)
        try:
            results = self._keygen_call(relay, body, parties, scheme, label, progress)
        finally:
            self.aux_sets.busy(-1)
            if scheme == "ecdsa-secp256k1":
                self.aux_sets.want(workspace_id, parties)
        if len({r.get("public_key") for r in results.values()}) != 1:
            raise CosignerRefused("key generation: co-signers disagree on the public key")
        first = results[parties[0]]
        chain_codes = {r.get("chain_code") for r in results.values()}
        if len(chain_codes) != 1:
            raise CosignerRefused("key generation: co-signers disagree on the chain code")
        return GeneratedKey(
            scheme=scheme,
            public_key=bytes.fromhex(str(first["public_key"])),
            chain_code=bytes.fromhex(str(first.get("chain_code") or "")),
            min_signers=min_signers,
            max_signers=max_signers,
            cosigners=tuple(f"party-{p}" for p in parties),
            backend_key_id=key_id,
            test_only=any(r.get("test_only") is True for r in results.values()),
        )

    def _keygen_call(
        self,
        relay: RelayCore,
        body: dict[str, object],
        parties: list[int],
        scheme: Scheme,
        label: str | None,
        progress: KeygenProgress | None,
    ) -> dict[int, dict[str, object]]:
        """Run a key generation; an ECDSA one with the prepared set ``label`` when there
        is one. A co-signer that refuses the set (check ``aux``: lost or already used)
        makes the key fall back, once, to auxiliary info inside the request."""
        body = dict(body)
        if label is not None:
            body["aux_label"] = label
        elif scheme == "ecdsa-secp256k1":
            body["aux_session_id"] = secrets.token_hex(32)
        sessions = [str(body["session_id"])]
        if "aux_session_id" in body:
            sessions.append(str(body["aux_session_id"]))
        if progress is None:
            results = self._call(relay, body, parties, self._keygen_timeout)
        else:
            relay.submit(body, parties)
            try:
                # A prepared set's rounds ran before: counted as done.
                skipped = AUX_ROUNDS * len(parties) if "aux_label" in body else 0
                total = keygen_steps(scheme, len(parties))
                results = watch_keygen(
                    relay, str(body["request_id"]), parties, total, skipped,
                    self._keygen_timeout, progress,
                )  # fmt: skip
            finally:
                relay.forget(str(body["request_id"]))
        refused_set = any(
            r.get("status") == "refused" and r.get("check") == "aux" for r in results.values()
        )
        if label is not None and refused_set:
            self._abort(relay, sessions, parties)
            _log.warning("a prepared aux-info set was refused; the key makes its own")
            retry = {k: v for k, v in body.items() if k != "aux_label"}
            retry["session_id"] = secrets.token_hex(32)
            retry["request_id"] = f"{body['request_id']}-r"
            return self._keygen_call(relay, retry, parties, scheme, None, progress)
        self._all_ok(relay, results, parties, sessions, "key generation failed")
        return results

    def _run_aux(
        self, workspace_id: str, body: dict[str, object], parties: Sequence[int]
    ) -> dict[int, dict[str, object]]:
        """An aux-pool request to ``parties`` (:class:`AuxSets`); a failed session is
        aborted everywhere."""
        relay = self._relay(workspace_id)
        self._ensure_policy(workspace_id, relay, relay.parties)
        results = self._call(relay, body, parties, self._keygen_timeout)
        if not all(results.get(p, {}).get("status") == "ok" for p in parties):
            if "aux_session_id" in body:
                self._abort(relay, [str(body["aux_session_id"])], parties)
        return results

    # --- Signing --------------------------------------------------------------------

    def _signers(
        self, relay: RelayCore, min_signers: int, candidates: Sequence[int] = ()
    ) -> tuple[int, ...]:
        """The quorum that signs (:meth:`Quorums.choose`). Raises QuorumUnavailable."""
        return self._quorums.choose(relay, min_signers, candidates)

    def _sign_body(
        self, request: SignRequest, pushed: set[tuple[str, tuple[int, ...]]] | None = None
    ) -> tuple[RelayCore, dict[str, object], tuple[int, ...], _PoolKey | None]:
        """The relay, request body (without session), signers, and for ECDSA the
        presignature pool of one signature (the workspace's policy pushed first, unless
        ``pushed`` holds the workspace and signers: a batch checks once, not once per
        signature, since each check reads the active policy version)."""
        relay = self._relay(request.workspace_id)
        chain = _CHAINS.get(request.payload_kind)
        if chain is None:
            raise SigningError(f"no co-signer chain for {request.payload_kind}")
        candidates = request.parties or relay.parties
        signers = self._signers(relay, request.min_signers or len(candidates), candidates)
        if pushed is None or (request.workspace_id, signers) not in pushed:
            self._ensure_policy(request.workspace_id, relay, signers)
            if pushed is not None:
                pushed.add((request.workspace_id, signers))
        body: dict[str, object] = {
            "kind": "sign",
            "vault": request.vault_id,
            "key_id": request.backend_key_id,
            "signers": list(signers),
            "chain": chain,
            "payload": request.payload.hex(),
            "metadata": dict(request.metadata),
            "approvals": [dict(a) for a in request.approvals],
        }
        if request.price_reports:
            body["price_reports"] = [dict(r) for r in request.price_reports]
        if request.initiator_request is not None:
            body["initiator_request"] = dict(request.initiator_request)
        if chain == "bitcoin":
            body["input_index"] = request.input_index
        if request.scheme != "ecdsa-secp256k1":
            return relay, body, signers, None
        body["path"] = request.path
        key = _PoolKey(
            request.workspace_id, request.vault_id, request.backend_key_id, request.path, signers
        )
        return relay, body, signers, key

    def sign(self, request: SignRequest) -> bytes:
        """Sign ``request``; a quorum member that stops answering mid-session makes the
        session abort everywhere, and another quorum signs with a fresh session (and, for
        ECDSA, a fresh presignature): never a retried signature share."""
        stalled: CosignerStalled | None = None
        for _ in range(max(self._failover_attempts, 1)):
            try:
                return self._sign_attempt(request)
            except CosignerStalled as exc:
                stalled = exc
        assert stalled is not None
        raise stalled

    def _sign_attempt(self, request: SignRequest) -> bytes:
        relay, body, signers, key = self._sign_body(request)
        if key is None:
            return self._sign_once(relay, body, signers)
        self._started(1)
        try:
            for attempt in range(2):
                label = self._take(key)
                if label is None:
                    label = self._presign(relay, key)
                try:
                    return self._sign_once(relay, {**body, "presignature": label}, signers)
                except CosignerRefused as exc:
                    # A co-signer that restarted lost its presignatures: start over once.
                    if attempt == 0 and _lost_presignature(exc):
                        with self._lock:
                            self._pools.pop(key, None)
                        continue
                    raise
            raise CosignerRefused("no usable presignature")  # pragma: no cover - loop exits
        finally:
            self._ended(1, [key])

    def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | SigningError]:
        """Several signatures at once (a burst): every round is queued for the
        co-signers, in one submission per relay, before any is waited for, so they
        travel in the same polls and sends. Answers, in order, each signature or the
        :class:`SigningError` its round ended with; one failure touches no other round.
        An ECDSA request the pool has no presignature for, or whose presignature a
        restarted co-signer lost, is signed afterwards on its own, as :meth:`sign` does."""
        answers: list[bytes | SigningError | None] = [None] * len(requests)
        pending: list[tuple[int, RelayCore, dict[str, object], tuple[int, ...]]] = []
        alone: list[int] = []
        keys: list[_PoolKey] = []
        pushed: set[tuple[str, tuple[int, ...]]] = set()
        self._started(len(requests))
        try:
            for index, request in enumerate(requests):
                try:
                    relay, body, signers, key = self._sign_body(request, pushed)
                except SigningError as exc:
                    answers[index] = exc
                    continue
                if key is not None:
                    keys.append(key)
                    label = self._take(key)
                    if label is None:
                        alone.append(index)
                        continue
                    body = {**body, "presignature": label}
                pending.append((index, relay, _with_session(body), signers))
            for relay in {id(p[1]): p[1] for p in pending}.values():
                relay.submit_many([(b, s) for _, r, b, s in pending if r is relay])
            for index, relay, body, signers in pending:
                try:
                    answers[index] = self._collect_sign(relay, body, signers)
                except CosignerStalled:
                    # Signed again on its own, by a quorum that answers.
                    alone.append(index)
                except CosignerRefused as exc:
                    if _lost_presignature(exc):
                        alone.append(index)
                    else:
                        answers[index] = exc
                except SigningError as exc:
                    answers[index] = exc
        finally:
            self._ended(len(requests), keys)
        for index in alone:
            try:
                answers[index] = self.sign(requests[index])
            except SigningError as exc:
                answers[index] = exc
        assert all(a is not None for a in answers)
        return [a for a in answers if a is not None]

    def _started(self, count: int) -> None:
        self.aux_sets.busy(count)
        with self._lock:
            self._signing += count
            self._last_sign = time.monotonic()

    def _ended(self, count: int, keys: Sequence[_PoolKey]) -> None:
        self.aux_sets.busy(-count)
        with self._lock:
            self._signing -= count
            self._last_sign = time.monotonic()
        for key in set(keys):
            self._want(key)

    def _sign_once(
        self, relay: RelayCore, body: dict[str, object], signers: Sequence[int]
    ) -> bytes:
        return self._collect_sign(relay, self._submit_sign(relay, body, signers), signers)

    def _submit_sign(
        self, relay: RelayCore, body: dict[str, object], signers: Sequence[int]
    ) -> dict[str, object]:
        """Queue one signing session; answers its body (with request and session id)."""
        body = _with_session(body)
        relay.submit(body, signers)
        return body

    def _collect_sign(
        self, relay: RelayCore, body: Mapping[str, object], signers: Sequence[int]
    ) -> bytes:
        """Wait for a queued session's results; the signature every signer agrees on.

        Raises:
            CosignerRefused: a refusal, a failure, no answer in time, or disagreement
                (the session is aborted everywhere).
        """
        results = self._results(relay, body, signers, self._sign_timeout, stall=True)
        self._all_ok(relay, results, signers, [str(body["session_id"])], "signing refused")
        signatures = {r.get("signature") for r in results.values()}
        if len(signatures) != 1:
            raise CosignerRefused("co-signers returned different signatures")
        return bytes.fromhex(str(signatures.pop()))

    # --- Addresses ------------------------------------------------------------------

    def attest_address(self, request: AttestationRequest) -> list[dict[str, object]]:
        """The attestations of ``request``'s address by the key's co-signers that answer
        (:func:`.address_attestations.collect_attestations`). Raises SigningError (no
        relay for the workspace)."""
        relay = self._relay(request.workspace_id)
        return collect_attestations(
            relay, request, stall_after=self._quorums.stall_after, timeout=self._attest_timeout
        )

    # --- Presignatures --------------------------------------------------------------

    def _presign(self, relay: RelayCore, key: _PoolKey) -> str:
        label = f"pre-{secrets.token_hex(12)}"
        session = secrets.token_hex(32)
        body: dict[str, object] = {
            "kind": "presign",
            "request_id": f"presign-{secrets.token_hex(12)}",
            "session_id": session,
            "vault": key.vault_id,
            "key_id": key.key_id,
            "signers": list(key.signers),
            "presignature": label,
            "path": key.path,
        }
        results = self._call(relay, body, key.signers, self._presign_timeout, stall=True)
        self._all_ok(relay, results, key.signers, [session], "presigning failed")
        return label

    def _take(self, key: _PoolKey) -> str | None:
        with self._lock:
            labels = self._pools.get(key)
            return labels.pop(0) if labels else None

    def pooled(self, workspace_id: str, vault_id: str, key_id: str, path: str) -> int:
        """How many presignatures are ready for (key, path), over every signer set."""
        with self._lock:
            return sum(
                len(labels)
                for k, labels in self._pools.items()
                if (k.workspace_id, k.vault_id, k.key_id, k.path)
                == (workspace_id, vault_id, key_id, path)
            )

    def fill_pool(
        self,
        workspace_id: str,
        vault_id: str,
        key_id: str,
        path: str,
        min_signers: int,
        parties: Sequence[int] = (),
    ) -> int:
        """Presign until the pool of (key, path) is full; returns how many were added.
        Raises SigningError (a refused or failed presigning)."""
        relay = self._relay(workspace_id)
        signers = self._signers(relay, min_signers, parties)
        key = _PoolKey(workspace_id, vault_id, key_id, path, signers)
        added = 0
        while not self._closing.is_set():
            with self._lock:
                if self._stock(key) >= self._pool_size:
                    # Presignatures the background filler is making land before this
                    # returns, so the pool is full when it does.
                    while self._making.get(key) and not self._closing.is_set():
                        self._wake.wait(0.5)
                    return added
                self._making[key] = self._making.get(key, 0) + 1
            label = None
            try:
                label = self._presign(relay, key)
            finally:
                self._made(key, label)
            added += 1
        return added

    def _stock(self, key: _PoolKey) -> int:
        """Presignatures of ``key`` ready or being made (under the lock): the pool is
        never filled past its size by the filler and an explicit fill together."""
        return len(self._pools.get(key, [])) + self._making.get(key, 0)

    def _made(self, key: _PoolKey, label: str | None) -> None:
        """One presigning of ``key`` ended: add its label (``None``: it failed)."""
        with self._lock:
            if label is not None:
                self._pools.setdefault(key, []).append(label)
            self._making[key] -= 1
            if not self._making[key]:
                del self._making[key]
            self._wake.notify_all()

    def _want(self, key: _PoolKey) -> None:
        if self._pool_size == 0 or self._closing.is_set():
            return
        with self._lock:
            self._wanted.add(key)
            if self._filler is None or not self._filler.is_alive():
                self._filler = threading.Thread(
                    target=self._fill_forever, name="cosigner-presign-pool", daemon=True
                )
                self._filler.start()
            self._wake.notify_all()

    def _next_wanted(self) -> _PoolKey | None:
        """The next pool to top up, once no signature has been asked for a moment (a
        presigning session would hold the co-signers' CPU while a signature waits), or
        at once when a pool is empty."""
        with self._lock:
            while not self._closing.is_set():
                short = [k for k in self._wanted if self._stock(k) < self._pool_size]
                self._wanted = set(short)
                if short:
                    empty = [k for k in short if not self._stock(k)]
                    quiet = self._signing == 0 and time.monotonic() - self._last_sign >= self._idle
                    if empty or quiet:
                        chosen = (empty or short)[0]
                        self._making[chosen] = self._making.get(chosen, 0) + 1
                        return chosen
                    self._wake.wait(self._idle)
                    continue
                self._wake.wait(1.0)
            return None

    def _fill_forever(self) -> None:
        while True:
            key = self._next_wanted()
            if key is None:
                return
            label = None
            try:
                label = self._presign(self._relay(key.workspace_id), key)
            except SigningError as exc:
                _log.warning("presigning failed (%s); the next signature presigns itself", exc)
                with self._lock:
                    self._wanted.discard(key)
            finally:
                self._made(key, label)

    def close(self) -> None:
        """Stop the background fillers and forget the pools."""
        self._closing.set()
        self.aux_sets.close()
        with self._lock:
            self._wake.notify_all()
        if self._filler is not None and self._filler.is_alive():
            self._filler.join(timeout=30)
        with self._lock:
            self._pools.clear()
