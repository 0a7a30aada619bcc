"""The co-signer node: takes work from its coordinator link, checks it, runs sessions.

One loop, one thread: poll the link, handle each item, expire sessions that waited too
long, send what came out. Requests (JSON objects, see ``docs/cosigner.md``):

* ``policy``: signed policy bundles to accept into the pinned chain;
* ``dkg``: a FROST key generation as one party; the key share is sealed into the
  custody share store when the session ends, and the public key package is reported;
* ``sign``: a FROST signature over what the co-signer recomputed from the payload and
  allowed under its policy (:mod:`.checks`);
* ``abort``: end a session early.

Every request gets one result: ``ok`` (with a signature or a public key), ``refused``
(the check and, for the policy, the deciding rule) or ``failed`` (an aborted session,
naming culprits with the signed envelopes as evidence). Refused envelopes (bad signature,
replay, closed round) become events; the session goes on without them.

Shares are decrypted only for the operation that needs them: loaded from custody when a
signing request arrives, handed to the round object, and dropped with it.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shardvault.cosigner.checks import (
    CheckedRequest,
    check_policy,
    keygen_request,
    signing_target,
)
from shardvault.cosigner.driver import SessionDriver
from shardvault.cosigner.errors import RequestRefused, SessionError
from shardvault.cosigner.frost import dkg_driver, signing_driver
from shardvault.cosigner.link import CoordinatorLink, Item
from shardvault.cosigner.state import NodeState
from shardvault.crypto.channel import ReplayGuard, open_envelope, peek_header
from shardvault.crypto.errors import CryptoError, ProtocolAbort
from shardvault.crypto.protocols.common import SessionId, party_set, session_id
from shardvault.crypto.protocols.frost import SUITES, KeyPackage
from shardvault.crypto.rng import RandomSource, system_random
from shardvault.custody.envelope import ShareSlot
from shardvault.custody.errors import CustodyError, RecordNotFoundError
from shardvault.custody.secret import SecretBytes
from shardvault.policy import PolicyError, TransactionRequest, parse_bundle

log = logging.getLogger("shardvault.cosigner")

Result = dict[str, object]


@dataclass
class _Active:
    """A session in progress and what to do when it ends."""

    request_id: str
    kind: str
    driver: SessionDriver
    deadline: float
    on_done: Callable[[object], Result]
    evidence_of: dict[int, list[bytes]] = field(default_factory=dict)


@dataclass
class Outbox:
    """What one step of the node produced for the link."""

    envelopes: list[bytes] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    events: list[Result] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.envelopes or self.results or self.events)


def _str(body: Mapping[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise RequestRefused("malformed", f"field {name} must be a string")
    return value


def _int(body: Mapping[str, object], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestRefused("malformed", f"field {name} must be an integer")
    return value


def _list(body: Mapping[str, object], name: str) -> list[object]:
    value = body.get(name)
    if not isinstance(value, list):
        raise RequestRefused("malformed", f"field {name} must be a list")
    return value


def _session(body: Mapping[str, object]) -> SessionId:
    raw = _str(body, "session_id")
    try:
        return session_id(bytes.fromhex(raw))
    except (ValueError, CryptoError):
        raise RequestRefused("malformed", "session_id must be 32 bytes of hex") from None


def _parties(body: Mapping[str, object], name: str) -> tuple[int, ...]:
    raw = _list(body, name)
    try:
        return tuple(int(p) for p in party_set(raw))  # type: ignore[arg-type]
    except CryptoError as exc:
        raise RequestRefused("malformed", f"field {name}: {exc}") from None


class CosignerNode:
    """A co-signer serving one coordinator link.

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
    ) -> None:
        self.state = state
        self.link = link
        self._rng = rng
        self._clock = clock
        self._timeout = session_timeout
        self._guard = ReplayGuard()
        self._active: dict[bytes, _Active] = {}

    def __repr__(self) -> str:
        return f"CosignerNode(party={self.state.party}, <redacted>)"

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
        """Handle polled items in order."""
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
            if now > active.deadline:
                missing = active.driver.missing()
                active.driver.fail(f"timed out waiting for parties {missing}")
                del self._active[key]
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
        try:
            if kind == "policy":
                out.results.append(self._policy(request_id, body))
            elif kind == "dkg":
                out.envelopes.extend(self._start_dkg(request_id, body))
            elif kind == "sign":
                out.envelopes.extend(self._start_sign(request_id, body))
            elif kind == "abort":
                out.results.append(self._abort(request_id, body))
            else:
                raise RequestRefused("malformed", f"unknown request kind {kind!r}")
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

    def _policy(self, request_id: str, body: Mapping[str, object]) -> Result:
        bundles = _list(body, "bundles")
        try:
            for raw in bundles:
                self.state.accept_bundle(parse_bundle(raw))
        except PolicyError as exc:
            raise RequestRefused("policy", f"bundle refused: {type(exc).__name__}: {exc}") from None
        head = self.state.chain.head
        return self._result(request_id, "ok", policy_version=None if head is None else head.version)

    def _abort(self, request_id: str, body: Mapping[str, object]) -> Result:
        sid = _session(body)
        active = self._active.pop(bytes(sid), None)
        if active is None:
            raise RequestRefused("malformed", "no such session in progress")
        active.driver.fail("aborted by the coordinator")
        return self._result(request_id, "ok", aborted=active.request_id)

    def _register(self, sid: SessionId, active: _Active) -> list[bytes]:
        self._active[bytes(sid)] = active
        return active.driver.start()

    def _start_dkg(self, request_id: str, body: Mapping[str, object]) -> list[bytes]:
        sid = _session(body)
        if bytes(sid) in self._active:
            raise RequestRefused("malformed", "session already in progress")
        scheme = body.get("scheme")
        if scheme not in ("eddsa-ed25519", "schnorr-bip340"):
            raise RequestRefused("malformed", f"unsupported scheme {scheme!r}")
        parties = _parties(body, "parties")
        if self.state.party not in parties:
            raise RequestRefused("malformed", "this co-signer is not a party of the key")
        min_signers = _int(body, "min_signers")
        vault, key_id = _str(body, "vault"), _str(body, "key_id")
        try:
            address = self.state.share_address(vault, key_id)
        except ValueError as exc:
            raise RequestRefused("malformed", str(exc)) from None
        if self.state.custody.store.latest_revision(address):
            raise RequestRefused("key", f"key {key_id!r} of vault {vault!r} already exists")
        # The key generation itself is a policy decision (operation key_generation).
        canonical = json.dumps(
            {k: v for k, v in body.items() if k not in ("approvals", "prices")},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        request = keygen_request(body.get("metadata", {}), canonical)  # type: ignore[arg-type]
        check_policy(
            self.state.chain,
            request,
            now=int(self._clock()),
            prices=body.get("prices"),
            approvals=body.get("approvals", []),
            history=self.state.history,
        )
        driver = dkg_driver(
            suite=SUITES[scheme],
            identity=self.state.identity,
            directory=self.state.directory,
            guard=self._guard,
            session=sid,
            parties=parties,
            min_signers=min_signers,
            rng=self._rng,
        )

        def done(result: object) -> Result:
            assert isinstance(result, KeyPackage)
            with SecretBytes(result.to_bytes()) as sealed_input:
                self.state.custody.store_share(ShareSlot(address, 1), sealed_input, 0)
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
            sid, _Active(request_id, "dkg", driver, self._clock() + self._timeout, done)
        )

    def _load_key(self, vault: str, key_id: str) -> KeyPackage:
        try:
            address = self.state.share_address(vault, key_id)
        except ValueError as exc:
            raise RequestRefused("malformed", str(exc)) from None
        try:
            with self.state.custody.load_share(address) as opened:
                return KeyPackage.from_bytes(opened.share.reveal())
        except RecordNotFoundError:
            raise RequestRefused("key", f"no share of key {key_id!r} in vault {vault!r}") from None

    def _start_sign(self, request_id: str, body: Mapping[str, object]) -> list[bytes]:
        sid = _session(body)
        if bytes(sid) in self._active:
            raise RequestRefused("malformed", "session already in progress")
        signers = _parties(body, "signers")
        if self.state.party not in signers:
            raise RequestRefused("malformed", "this co-signer is not among the signers")
        vault, key_id = _str(body, "vault"), _str(body, "key_id")
        key = self._load_key(vault, key_id)
        # DESIGN.md invariant 3: recompute from the payload, then ask the signed policy.
        target = signing_target(body, key.public.public_key_bytes)
        metadata_vault = target.request.source.vault
        if metadata_vault != vault:
            raise RequestRefused("malformed", "the request's source vault is not the key's vault")
        evaluation = check_policy(
            self.state.chain,
            target.request,
            now=int(self._clock()),
            prices=body.get("prices"),
            approvals=body.get("approvals", []),
            history=self.state.history,
        )
        checked = CheckedRequest(target, evaluation)
        driver = signing_driver(
            key=key,
            identity=self.state.identity,
            directory=self.state.directory,
            guard=self._guard,
            session=sid,
            signers=signers,
            message=checked.target.message,
            rng=self._rng,
            taproot_merkle_root=checked.target.taproot_merkle_root,
        )
        del key
        policy_request: TransactionRequest = checked.target.request

        def done(result: object) -> Result:
            assert isinstance(result, bytes)
            self.state.record_signed(policy_request)
            log.info("signed", extra={"request_id": request_id, "rule": evaluation.rule})
            return self._result(
                request_id,
                "ok",
                signature=result.hex(),
                digest=policy_request.digest.hex(),
                rule=evaluation.rule,
            )

        return self._register(
            sid, _Active(request_id, "sign", driver, self._clock() + self._timeout, done)
        )

    # --- Envelopes ------------------------------------------------------------------

    def _handle_envelope(self, envelope: bytes, out: Outbox) -> None:
        try:
            sid = bytes(peek_header(envelope).session_id)
        except CryptoError as exc:
            out.events.append(self._refusal(exc, None))
            return
        active = self._active.get(sid)
        if active is None:
            # Not a session in progress: run the channel's checks anyway so the refusal
            # says why (a replay into a finished session, a forgery, a stranger).
            try:
                open_envelope(envelope, self.state.identity, self.state.directory, self._guard)
            except CryptoError as exc:
                out.events.append(self._refusal(exc, None))
            return
        try:
            out.envelopes.extend(active.driver.receive(envelope))
        except ProtocolAbort as abort:
            del self._active[sid]
            evidence = [
                base64.b64encode(e).decode()
                for culprit in abort.culprits
                for e in active.driver.evidence.get(culprit, [])  # type: ignore[call-overload]
            ]
            out.results.append(
                self._result(
                    active.request_id,
                    "failed",
                    reason=abort.reason,
                    culprits=list(abort.culprits),
                    evidence=evidence,
                )
            )
            return
        except CryptoError as exc:
            out.events.append(self._refusal(exc, active.request_id))
            return
        if active.driver.done:
            del self._active[sid]
            try:
                out.results.append(active.on_done(active.driver.result))
            except (CustodyError, CryptoError) as exc:
                out.results.append(
                    self._result(active.request_id, "failed", reason=f"{type(exc).__name__}")
                )

    def _refusal(self, exc: Exception, request_id: str | None) -> Result:
        log.info("envelope refused", extra={"error": type(exc).__name__})
        return {
            "event": "envelope_refused",
            "request_id": request_id,
            "error": type(exc).__name__,
            "reason": str(exc),
        }
