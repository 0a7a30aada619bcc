"""The co-signer node: takes work from its coordinator link, checks it, runs sessions.

One loop, one thread: poll the link, handle each item, expire sessions that waited too
long, send what came out. Requests (JSON objects, see ``docs/cosigner.md``):

* ``policy``: signed policy bundles to accept into the pinned chain;
* ``dkg``: a key generation as one party (FROST, or CGGMP21 auxiliary info and key
  generation as two sessions); the key share is sealed into the custody share store
  when it ends, and the public key is reported;
* ``presign``: a CGGMP21 presignature, kept in memory for one later signature;
* ``sign``: a signature (FROST, or CGGMP21 from a presignature) over what the co-signer
  recomputed from the payload and allowed under its policy (:mod:`.checks`), never a
  second one of the same approval (:mod:`.signed_record`, recorded before the session
  starts) and, when a customer callback is configured, only once the customer's service
  approved it (:mod:`.callback`). Every signing session starts with a records round
  (:mod:`.record_exchange`): the quorum's records of what they signed are merged before
  the policy and the replay rule are evaluated again and the signature is recorded
  (the checks and the record: :mod:`.sign_checks`);
* ``abort``: end a session early;
* ``attest_address``: the address of a key at a path, derived and signed by this node
  from the key's public part only (:mod:`.attest`), answered without a session.

Every request gets one result: ``ok`` (with a signature or a public key), ``refused``
(the check and, for the policy, the deciding rule) or ``failed`` (an aborted session,
naming culprits with the signed envelopes as evidence). Refused envelopes (bad signature,
replay, closed round) become events; the session goes on without them.

Shares are decrypted only for the operation that needs them: loaded from custody when a
request arrives, handed to the round object, and dropped with it.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from shardvault.cosigner.attest import Attester
from shardvault.cosigner.aux_pool import AuxPool, check_label
from shardvault.cosigner.aux_requests import AuxRequests
from shardvault.cosigner.cggmp21 import (
    aux_info_driver,
    ecdsa_signing_driver,
    keygen_driver,
)
from shardvault.cosigner.checks import (
    CheckedRequest,
    check_policy,
    keygen_request,
)
from shardvault.cosigner.driver import SessionDriver
from shardvault.cosigner.errors import RequestRefused, SessionError
from shardvault.cosigner.frost import dkg_driver, signing_driver
from shardvault.cosigner.link import CoordinatorLink, Item
from shardvault.cosigner.node_keys import TEST_ONLY_PRIMES_ENV, NodeKeys
from shardvault.cosigner.presign_requests import PresignRequests
from shardvault.cosigner.prime_pool import PrimePool
from shardvault.cosigner.record_exchange import RecordGapError, records_driver
from shardvault.cosigner.request_fields import (
    int_field,
    list_field,
    parties_field,
    session_field,
    text_field,
)
from shardvault.cosigner.sessions import (
    MAX_EARLY_ENVELOPES,
    ActiveSession,
    Outbox,
    PreparedSign,
    Result,
)
from shardvault.cosigner.sign_checks import SignChecks
from shardvault.cosigner.state import NodeState
from shardvault.crypto.channel import Directory, ReplayGuard, open_envelope, peek_header
from shardvault.crypto.errors import (
    CryptoError,
    MessageDigestMismatch,
    MisuseError,
    ProtocolAbort,
)
from shardvault.crypto.protocols.cggmp21.aux_info import (
    AuxInfo,
)
from shardvault.crypto.protocols.cggmp21.keygen import KeygenOutput
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presignature import Presignature
from shardvault.crypto.protocols.cggmp21.sign import EcdsaSignature
from shardvault.crypto.protocols.common import SessionId, check_thresholds, session_id
from shardvault.crypto.protocols.frost import SUITES, KeyPackage
from shardvault.crypto.rng import RandomSource, system_random
from shardvault.custody.envelope import ShareAddress
from shardvault.custody.errors import CustodyError
from shardvault.policy import (
    PolicyError,
    parse_bundle,
)

log = logging.getLogger("shardvault.cosigner")

__all__ = ["TEST_ONLY_PRIMES_ENV", "CosignerNode", "Outbox"]


class CosignerNode(AuxRequests, PresignRequests):
    """A co-signer serving one coordinator link.

    ``test_only_primes`` names the TEST-ONLY fixture of published safe primes, which then
    replace the safe-prime search of ECDSA key generation: every such key is insecure and
    its ``dkg`` result says ``test_only``. Only tests and demos pass it (``shardvault
    cosigner run --unsafe-test-only-primes``, which the production profile refuses).

    Security: holds the node state (identity keys, unsealed keyring) and, during a
    session, the round objects with this party's secrets; nothing here logs or reports
    a share, a nonce or a payload.
    """

    def __init__(
        self,
        state: NodeState,
        link: CoordinatorLink,
        *,
        rng: RandomSource = system_random,
        clock: Callable[[], float] = time.time,
        session_timeout: float = 60.0,
        require_signed_directory: bool = False,
        share_records: bool = True,
        test_only_primes: Path | None = None,
        prime_pool: PrimePool | None = None,
        aux_pool: AuxPool | None = None,
    ) -> None:
        self.state = state
        self.aux_pool = aux_pool or AuxPool(
            state.custody, state.party, test_only=test_only_primes is not None
        )
        self._test_only_primes = test_only_primes
        self._prime_pool = prime_pool
        self._require_signed_directory = require_signed_directory
        self._share_records = share_records
        self.link = link
        self._rng = rng
        self._clock = clock
        self._timeout = session_timeout
        self._guard = ReplayGuard()
        self._active: dict[bytes, ActiveSession] = {}
        # Presignatures live in memory only: lost on restart, so never used twice.
        self._presignatures: dict[tuple[str, str, str], Presignature] = {}
        self._attester = Attester(state, lambda vault, key_id: self._keys.load(vault, key_id))

    def __repr__(self) -> str:
        return f"CosignerNode(party={self.state.party}, <redacted>)"

    @property
    def _keys(self) -> NodeKeys:
        return NodeKeys(self.state, self._test_only_primes, self._prime_pool)

    @property
    def _checks(self) -> SignChecks:
        return SignChecks(self.state, self._clock, self._presignatures)

    # --- The loop -------------------------------------------------------------------

    def step(self, wait: float) -> Outbox:
        """Poll once (waiting up to ``wait`` s), handle everything, send the results."""
        items = self.link.poll(wait)
        out = self.handle(items)
        self.expire(out)
        if out:
            self.link.send(out.envelopes, out.results, out.events)
        return out

    def run(self, should_stop: Callable[[], bool], wait: float = 10.0) -> None:
        """Serve until ``should_stop()`` is true (checked between polls)."""
        while not should_stop():
            self.step(wait)

    def handle(self, items: list[Item]) -> Outbox:
        """Handle polled items in order (first sealing what the prime pool's workers
        found since the last call)."""
        if self._prime_pool is not None:
            self._prime_pool.seal_found()
        out = Outbox()
        for item in items:
            if item.request is not None:
                self._handle_request(item.request, out)
            elif item.envelope is not None:
                self._handle_envelope(item.envelope, out)
        return out

    def expire(self, out: Outbox) -> None:
        """Fail every session past its deadline, naming the parties still missing."""
        now = self._clock()
        for key, active in list(self._active.items()):
            if now > active.deadline and key in self._active:
                missing = active.driver.missing()
                self._end(key, f"timed out waiting for parties {missing}")
                out.results.append(
                    self._result(
                        active.request_id, "failed", reason=f"timed out; missing {missing}"
                    )
                )

    # --- Requests -------------------------------------------------------------------

    def _result(self, request_id: str, status: str, **fields: object) -> Result:
        return {"request_id": request_id, "party": self.state.party, "status": status, **fields}

    def _handle_request(self, body: Mapping[str, object], out: Outbox) -> None:
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            out.events.append({"event": "request_refused", "reason": "no request_id"})
            return
        kind = body.get("kind")

        def run() -> None:
            if kind == "policy":
                out.results.append(self._policy(request_id, body))
            elif kind == "dkg":
                out.envelopes.extend(self._start_dkg(request_id, body))
            elif kind == "sign":
                out.envelopes.extend(self._start_sign(request_id, body))
            elif kind == "aux_prepare":
                out.envelopes.extend(self._start_aux_prepare(request_id, body))
            elif kind == "aux_held":
                held = self.aux_pool.held(self._my_parties(body))
                out.results.append(self._result(request_id, "ok", held=held))
            elif kind == "presign":
                out.envelopes.extend(self._start_presign(request_id, body))
            elif kind == "abort":
                out.results.append(self._abort(request_id, body))
            elif kind == "attest_address":
                attestation = self._attester.attest(body, self._clock())
                out.results.append(self._result(request_id, "ok", attestation=attestation))
            else:
                raise RequestRefused("malformed", f"unknown request kind {kind!r}")

        self._guarded(request_id, run, out)

    def _guarded(self, request_id: str, run: Callable[[], None], out: Outbox) -> None:
        """Run one step of a request; a refusal or failure becomes its result."""
        try:
            run()
        except RequestRefused as exc:
            log.warning(
                "request refused",
                extra={"request_id": request_id, "check": exc.check, "rule": exc.rule},
            )
            out.results.append(
                self._result(
                    request_id, "refused", check=exc.check, rule=exc.rule, reason=exc.reason
                )
            )
        except (CryptoError, CustodyError, SessionError) as exc:
            out.results.append(
                self._result(request_id, "failed", reason=f"{type(exc).__name__}: {exc}")
            )
        except Exception:
            # DESIGN.md invariant 9: bad input must never stop the node. Whatever slipped
            # past the typed checks is a defect, logged with its traceback and reported
            # without details (which could echo request content).
            log.exception("request failed unexpectedly", extra={"request_id": request_id})
            out.results.append(self._result(request_id, "failed", reason="internal error"))

    def _policy(self, request_id: str, body: Mapping[str, object]) -> Result:
        bundles = list_field(body, "bundles")
        try:
            for raw in bundles:
                self.state.accept_bundle(parse_bundle(raw))
        except PolicyError as exc:
            raise RequestRefused("policy", f"bundle refused: {type(exc).__name__}: {exc}") from None
        head = self.state.chain.head
        return self._result(request_id, "ok", policy_version=None if head is None else head.version)

    def _abort(self, request_id: str, body: Mapping[str, object]) -> Result:
        sid = session_field(body)
        active = self._active.get(bytes(sid))
        if active is None:
            raise RequestRefused("malformed", "no such session in progress")
        self._end(bytes(sid), "aborted by the coordinator")
        return self._result(request_id, "ok", aborted=active.request_id)

    def _end(self, key: bytes, reason: str) -> None:
        """Fail a session and every sibling session of the same request."""
        active = self._active.pop(key, None)
        if active is None:
            return
        active.driver.fail(reason)
        if active.on_fail is not None:
            active.on_fail()
        if active.pending is not None:
            active.pending.fail(reason)
        for sibling in active.siblings:
            other = self._active.pop(sibling, None)
            if other is not None:
                other.driver.fail(reason)

    def _register(self, sid: SessionId, active: ActiveSession) -> list[bytes]:
        self._active[bytes(sid)] = active
        return active.driver.start()

    def _fresh_session(self, body: Mapping[str, object], name: str = "session_id") -> SessionId:
        raw = text_field(body, name)
        try:
            sid = session_id(bytes.fromhex(raw))
        except (ValueError, CryptoError):
            raise RequestRefused("malformed", f"{name} must be 32 bytes of hex") from None
        if bytes(sid) in self._active:
            raise RequestRefused("malformed", f"{name}: session already in progress")
        return sid

    # --- Who may take part ----------------------------------------------------------

    def _session_directory(self, parties: tuple[int, ...]) -> Directory:
        """The identities a session with ``parties`` runs under.

        When the head policy bundle carries a co-signer directory (signed by the admin
        quorum, docs/cosigner.md "Pairing"), only its identities count: every party must
        be listed, and this node must be listed under its own identity. Without one, the
        directory pinned at ``init``/``pin`` is used, unless this node requires a signed
        directory (the production profile), which refuses the session.

        Raises:
            RequestRefused: check ``directory``, naming the parties outside it.
        """
        head = self.state.chain.head
        signed = head.cosigners if head is not None else None
        if signed is None:
            if self._require_signed_directory:
                raise RequestRefused(
                    "directory", "no co-signer directory signed by the admin quorum yet"
                )
            pinned = self.state.directory.entries
            outside = [p for p in parties if p not in pinned]
            if outside:
                raise RequestRefused("directory", f"parties {outside} are not pinned")
            return self.state.directory
        if signed.get(self.state.party) != self.state.identity.public:
            raise RequestRefused(
                "directory", "this co-signer is not in the directory the admin quorum signed"
            )
        outside = [p for p in parties if signed.get(p) is None]
        if outside:
            raise RequestRefused(
                "directory",
                f"parties {outside} are not in the directory the admin quorum signed",
            )
        return signed.to_channel_directory()

    # --- Key generation -------------------------------------------------------------

    def _start_dkg(self, request_id: str, body: Mapping[str, object]) -> list[bytes]:
        sid = self._fresh_session(body)
        scheme = body.get("scheme")
        if scheme not in ("eddsa-ed25519", "schnorr-bip340", "ecdsa-secp256k1"):
            raise RequestRefused("malformed", f"unsupported scheme {scheme!r}")
        parties = parties_field(body, "parties")
        if self.state.party not in parties:
            raise RequestRefused("malformed", "this co-signer is not a party of the key")
        directory = self._session_directory(parties)
        min_signers = int_field(body, "min_signers")
        # With min_signers = 1 every share would be the whole key; refuse before any round.
        try:
            check_thresholds(min_signers, len(parties))
        except MisuseError as exc:
            raise RequestRefused("malformed", f"field min_signers: {exc}") from None
        vault, key_id = text_field(body, "vault"), text_field(body, "key_id")
        address = self._keys.address(vault, key_id)
        if self.state.custody.store.latest_revision(address):
            raise RequestRefused("key", f"key {key_id!r} of vault {vault!r} already exists")
        # The key generation itself is a policy decision (operation key_generation).
        canonical = json.dumps(
            {k: v for k, v in body.items() if k not in ("approvals", "prices", "price_reports")},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        request = keygen_request(body.get("metadata", {}), canonical)  # type: ignore[arg-type]
        evaluation = check_policy(
            self.state.chain,
            request,
            now=int(self._clock()),
            prices=body.get("prices"),
            price_reports=body.get("price_reports"),
            approvals=body.get("approvals", []),
            history=self._checks.history(),
        )
        # A key generation carries no initiator's signed request.
        self._checks.refuse_unsigned_initiator(evaluation, signed=False)
        if scheme == "ecdsa-secp256k1":
            return self._start_ecdsa_keygen(
                request_id, body, sid, parties, min_signers, address, directory
            )
        driver = dkg_driver(
            suite=SUITES[scheme],
            identity=self.state.identity,
            directory=directory,
            guard=self._guard,
            session=sid,
            parties=parties,
            min_signers=min_signers,
            rng=self._rng,
        )

        def done(result: object) -> Result:
            assert isinstance(result, KeyPackage)
            self._keys.store(address, result)
            public = result.public
            log.info("key generated", extra={"request_id": request_id, "key_id": key_id})
            return self._result(
                request_id,
                "ok",
                scheme=scheme,
                public_key=public.public_key_bytes.hex(),
                group_public_key=public.group_public_key.to_bytes().hex(),
                verifying_shares={
                    str(p): public.verifying_shares[p].to_bytes().hex() for p in public.party_ids
                },
                chain_code=public.chain_code.hex(),
            )

        return self._register(
            sid, ActiveSession(request_id, "dkg", driver, self._clock() + self._timeout, done)
        )

    def _start_ecdsa_keygen(
        self,
        request_id: str,
        body: Mapping[str, object],
        sid: SessionId,
        parties: tuple[int, ...],
        min_signers: int,
        address: ShareAddress,
        directory: Directory,
    ) -> list[bytes]:
        """CGGMP21: auxiliary info and key generation as two concurrent sessions, or,
        when the request names a prepared set (``aux_label``), key generation alone with
        that set taken from the aux pool (removed before use); the key share is stored
        once both are there."""
        outcome: dict[str, object] = {}
        primes_from = "prepared"
        aux_driver = None
        if "aux_label" in body:
            label = check_label(text_field(body, "aux_label"))
            # Taken before any round: a set is used for one key at most, even if this
            # key generation then fails.
            outcome["aux"] = self.aux_pool.take(parties, label)
        else:
            aux_sid, config = self._aux_config(body, sid, parties)
            paillier_secret, primes_from = self._keys.paillier_key_and_source()
            aux_driver = aux_info_driver(
                identity=self.state.identity,
                directory=directory,
                guard=self._guard,
                config=config,
                paillier_secret=paillier_secret,
                rng=self._rng,
            )
        key_driver = keygen_driver(
            identity=self.state.identity,
            directory=directory,
            guard=self._guard,
            session=sid,
            parties=parties,
            min_signers=min_signers,
            rng=self._rng,
        )

        def done(result: object) -> Result | None:
            if isinstance(result, AuxInfo):
                outcome["aux"] = result
            elif isinstance(result, KeygenOutput):
                outcome["keygen"] = result
            aux, output = outcome.get("aux"), outcome.get("keygen")
            if not isinstance(aux, AuxInfo) or not isinstance(output, KeygenOutput):
                return None
            share = output.with_aux(aux)
            self._keys.store(address, share)
            log.info("key generated", extra={"request_id": request_id, "key_id": address.key_id})
            return self._result(
                request_id,
                "ok",
                scheme="ecdsa-secp256k1",
                public_key=share.public_key.to_bytes().hex(),
                public_shares={
                    str(p): share.public_shares[p].to_bytes().hex() for p in share.public_shares
                },
                chain_code=share.chain_code.hex(),
                # Keys made from the published TEST-ONLY primes are insecure: say so.
                test_only=self._test_only_primes is not None,
                # Where this party's Paillier primes came from (pool, search, test-only).
                paillier_primes=primes_from,
            )

        deadline = self._clock() + self._timeout
        if aux_driver is None:
            return self._register(sid, ActiveSession(request_id, "dkg", key_driver, deadline, done))
        out = self._register(
            aux_sid,
            ActiveSession(request_id, "aux", aux_driver, deadline, done, (bytes(sid),)),
        )
        out += self._register(
            sid, ActiveSession(request_id, "dkg", key_driver, deadline, done, (bytes(aux_sid),))
        )
        return out

    # --- Presigning and signing -----------------------------------------------------

    def _start_sign(self, request_id: str, body: Mapping[str, object]) -> list[bytes]:
        """Check a signing request on everything this co-signer holds, then start the
        session's records round (:mod:`.record_exchange`); the signature's shares leave
        in :meth:`_sign_after_records`, once the quorum's records are merged.

        FROST's first round (nonce commitments, which reveal nothing) goes out with the
        records offer, so the records round costs no extra message; its second round
        waits for the records. A CGGMP21 signature's only round carries the share, so it
        starts after the records round."""
        sid = self._fresh_session(body)
        signers = parties_field(body, "signers")
        if self.state.party not in signers:
            raise RequestRefused("malformed", "this co-signer is not among the signers")
        directory = self._session_directory(signers)
        prepared, key = self._checks.prepare(request_id, body, sid, signers, directory)
        offered = len(self.state.record.lines)
        if not self._share_records:
            # Measurement only (bench/bench_record_sharing.py): sign on what it holds.
            return self._sign_after_records(prepared, key, None, None, None)
        driver = records_driver(
            identity=self.state.identity,
            directory=prepared.directory,
            guard=self._guard,
            session=prepared.sid,
            signers=prepared.signers,
            record=self.state.record,
            peers=self.state.peers,
            rng=self._rng,
        )
        pending = None
        if isinstance(key, KeyPackage):
            pending = self._frost_driver(prepared, key)
            share: KeyShare | None = None
        else:
            # Kept for the records round (bounded by the session's deadline) so the
            # share is opened once per signature, not twice.
            share = key
        del key
        active = ActiveSession(
            request_id,
            "records",
            driver,
            self._clock() + self._timeout,
            lambda result: None,
            next_phase=lambda result: self._sign_after_records(
                prepared, share, result, offered, pending
            ),
            pending=pending,
        )
        out = self._register(prepared.sid, active)
        return out + (pending.start() if pending is not None else [])

    def _frost_driver(self, prepared: PreparedSign, key: KeyPackage) -> SessionDriver:
        return signing_driver(
            key=key,
            identity=self.state.identity,
            directory=prepared.directory,
            guard=self._guard,
            session=prepared.sid,
            signers=prepared.signers,
            message=prepared.target.message,
            rng=self._rng,
            taproot_merkle_root=prepared.target.taproot_merkle_root,
        )

    def _sign_after_records(
        self,
        prepared: PreparedSign,
        share: KeyPackage | KeyShare | None,
        exchanged: object,
        offered: int | None,
        pending: SessionDriver | None,
    ) -> list[bytes]:
        """With the quorum's records merged: check again, ask the customer, record the
        signature (fsynced), then start the signing protocol, or let the FROST session
        that waited (``pending``) go on.

        Raises:
            RequestRefused: a peer's record could not be merged whole (check
                ``records``), or a check of :meth:`_evaluate` now refuses.
        """
        try:
            if isinstance(exchanged, RecordGapError):
                raise RequestRefused("records", str(exchanged))
            evaluation = (
                self._checks.evaluate(prepared) if offered is not None else prepared.evaluation
            )
            assert evaluation is not None
            checked = CheckedRequest(prepared.target, evaluation)
            self._ask_customer(prepared.request_id, prepared.body, checked)
        except BaseException:
            if pending is not None:
                pending.fail("refused after the records round")
            raise
        body, vault, key_id = prepared.body, prepared.vault, prepared.key_id
        driver: SessionDriver
        if pending is not None:
            self._checks.record(checked, prepared.signer_key)
            driver = pending
            key = None
        else:
            assert share is not None
            key = share
            if isinstance(key, KeyShare):
                assert prepared.presignature is not None
                key = self._keys.ecdsa(body, vault, key_id, key)
                presignature = self._checks.presignature(
                    vault, key_id, prepared.presignature, prepared.signers, key
                )
                self._checks.record(checked, prepared.signer_key)
                del self._presignatures[(vault, key_id, prepared.presignature)]
                driver = ecdsa_signing_driver(
                    key=key,
                    presignature=presignature,
                    digest=checked.target.message,
                    identity=self.state.identity,
                    directory=prepared.directory,
                    guard=self._guard,
                    session=prepared.sid,
                    rng=self._rng,
                )
            else:
                self._checks.record(checked, prepared.signer_key)
                driver = self._frost_driver(prepared, key)
        del key, share
        request_id = prepared.request_id
        digest = checked.target.request.digest

        def done(result: object) -> Result:
            if isinstance(result, EcdsaSignature):
                signature = result.to_bytes()
            else:
                assert isinstance(result, bytes)
                signature = result
            log.info("signed", extra={"request_id": request_id, "rule": evaluation.rule})
            return self._result(
                request_id,
                "ok",
                signature=signature.hex(),
                digest=digest.hex(),
                rule=evaluation.rule,
            )

        active = ActiveSession(request_id, "sign", driver, self._clock() + self._timeout, done)
        active.offered = offered
        # FROST's first round left with the records offer; its second waits for them.
        active.merged_round = 2 if pending is not None else 1
        if pending is not None:
            self._active[bytes(prepared.sid)] = active
            return []
        return self._register(prepared.sid, active)

    def _ask_customer(
        self, request_id: str, body: Mapping[str, object], checked: CheckedRequest
    ) -> None:
        """The customer's veto, when a callback is configured (:mod:`.callback`): asked
        after every check of our own, before a presignature is spent or a signing round
        starts. The loop waits for the answer (at most the callback's timeout).

        Raises:
            RequestRefused: check ``callback``; anything but a signed approval.
        """
        if self.state.callback is not None:
            self.state.callback.approve(
                request_id, body, checked, now=int(self._clock()), rng=self._rng
            )

    # --- Envelopes ------------------------------------------------------------------

    def _handle_envelope(self, envelope: bytes, out: Outbox) -> None:
        try:
            header = peek_header(envelope)
        except CryptoError as exc:
            out.events.append(self._refusal(exc, None))
            return
        sid = bytes(header.session_id)
        active = self._active.get(sid)
        if active is None:
            # Not a session in progress: run the channel's checks anyway so the refusal
            # says why (a replay into a finished session, a forgery, a stranger).
            try:
                open_envelope(envelope, self.state.identity, self.state.directory, self._guard)
            except CryptoError as exc:
                out.events.append(self._refusal(exc, None))
            return
        if active.next_phase is not None and header.protocol != active.driver.protocol:
            # A faster peer's first signing message, before our records round ended:
            # kept (a few per peer at most) for the signing session about to start.
            if len(active.early) < MAX_EARLY_ENVELOPES:
                active.early.append(envelope)
            return
        self._deliver(sid, active, envelope, out)

    def _deliver(self, sid: bytes, active: ActiveSession, envelope: bytes, out: Outbox) -> None:
        """Hand ``envelope`` to the session's driver; report its end."""
        try:
            out.envelopes.extend(active.driver.receive(envelope))
            header = peek_header(envelope)
            if active.offered is not None and header.round >= active.merged_round:
                # A peer sends this round only after it merged every offer of the
                # records round, ours included: it holds our record as we offered it.
                sender = int(header.sender)
                acknowledged = self.state.peers.acknowledged(sender)
                if active.offered > acknowledged:
                    self.state.peers.acknowledge(sender, active.offered)
        except ProtocolAbort as abort:
            evidence = [
                base64.b64encode(e).decode()
                for culprit in abort.culprits
                for e in active.driver.evidence.get(culprit, [])  # type: ignore[call-overload]
            ]
            self._end(sid, abort.reason)
            # Signers given different digests: nobody is blamed, and the check says so.
            mismatch = {"check": "digest"} if isinstance(abort, MessageDigestMismatch) else {}
            out.results.append(
                self._result(
                    active.request_id,
                    "failed",
                    reason=abort.reason,
                    culprits=list(abort.culprits),
                    evidence=evidence,
                    **mismatch,
                )
            )
            return
        except CryptoError as exc:
            out.events.append(self._refusal(exc, active.request_id))
            return
        if not active.driver.done:
            return
        del self._active[sid]
        if active.next_phase is not None:
            self._next_phase(sid, active, out)
            return
        try:
            result = active.on_done(active.driver.result)
        except (CustodyError, CryptoError) as exc:
            result = self._result(active.request_id, "failed", reason=type(exc).__name__)
        if result is not None:
            out.results.append(result)

    def _next_phase(self, sid: bytes, active: ActiveSession, out: Outbox) -> None:
        """Start the phase that follows a finished one (signing after the records
        round), then hand it the peers' envelopes that arrived early."""
        assert active.next_phase is not None
        next_phase = active.next_phase

        def run() -> None:
            out.envelopes.extend(next_phase(active.driver.result))

        self._guarded(active.request_id, run, out)
        following = self._active.get(sid)
        for envelope in active.early:
            if following is None or self._active.get(sid) is not following:
                break
            self._deliver(sid, following, envelope, out)

    def _refusal(self, exc: Exception, request_id: str | None) -> Result:
        log.info("envelope refused", extra={"error": type(exc).__name__})
        return {
            "event": "envelope_refused",
            "request_id": request_id,
            "error": type(exc).__name__,
            "reason": str(exc),
        }
