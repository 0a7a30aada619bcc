"""FROST distributed key generation: Pedersen's DKG with proofs of knowledge.

Komlo and Goldberg, "FROST: Flexible Round-Optimized Schnorr Threshold Signatures"
(SAC 2020), Figure 1, KeyGen. No dealer: every party deals a random polynomial and the
key is the sum of their constant terms, so the group secret never exists anywhere.

Round 1 (broadcast), for party ``i``:
  1. Sample a polynomial ``f_i`` of degree ``t - 1`` (``t = min_signers``).
  2. Prove knowledge of ``a_i0 = f_i(0)``: ``k`` random, ``R_i = k * G``,
     ``c_i = HDKG(session || i || C_i0 || R_i)``, ``mu_i = k + a_i0 * c_i``.
  3. Commit ``C_ik = a_ik * G`` for every coefficient.
  4. Broadcast ``(C_i, R_i, mu_i)``, a hash commitment to a random 32-byte chain-code
     contribution ``cc_i`` (:func:`chain_code_commitment`, with a fresh 32-byte nonce,
     bound to the session and to ``i``), and a fresh complaint key ``Y_i``
     (:mod:`~shardvault.crypto.protocols.complaints`; shardvault's addition).
  5. On receipt, check every peer's proof ``R_l == mu_l * G - c_l * C_l0`` and complaint
     key; a failure aborts naming that peer.

Round 2 (broadcast), for party ``i``:
  1. Broadcast ``f_i(l)`` for every peer ``l``, each encrypted to ``Y_l``, with an echo:
     the digest of every round-1 broadcast as ``i`` received it, and the opening
     ``(cc_i, nonce_i)`` of the chain-code commitment.
  2. On receipt, check each echo against the broadcasts received. A difference about the
     sender's own broadcast, or about ours, convicts the sender. A difference about a
     third party's broadcast means that either that party equivocated or the sender
     misreports; this layer cannot tell which, so the abort names both as suspects, and
     the co-signer, which holds every broadcast signed by its sender
     (``shardvault.crypto.channel``), settles it from the signatures. An opening that
     does not match the sender's round-1 commitment, or a ciphertext anyone can see is
     malformed, aborts naming the sender.
  3. Decrypt the share sent to us and check it against the sender's commitments
     (Feldman). A share that does not decrypt or does not match is not blamed on our
     word: we *complain* in round 3, showing the ciphertext with the decryption key of
     that one ciphertext and a proof that it is the right one, and every party judges
     the complaint from public data (:func:`~shardvault.crypto.protocols.complaints.judge`):
     the dealer when the share is bad, the complainer when it is good or the proof fails.
  4. Otherwise ``s_i = sum_l f_l(i)``; the group key ``Y = sum_l C_l0``; every verifying
     share ``Y_j = sum_l sum_k j^k C_lk``.

Round 3 (broadcast): key confirmation or complaints. Every party that accepted all its
shares confirms the digest of the public key package it ended with
(:mod:`~shardvault.crypto.protocols.confirmation`, shardvault's addition), and gets its key
package only once every party confirmed the same. A party that received a bad share sends
its complaints instead; every party then judges them and aborts naming the same culprits.
Without the confirmation a dealer that sent one party a bad share made that party abort
while the others finished and stored their key packages.

The session id is bound into every proof and header, so nothing carries over between
ceremonies. The chain code is SHA-256 over every party's contribution in identifier order.
Each contribution is committed in round 1, before any is revealed, and opened in round 2,
after every commitment is fixed (the echo agrees them), so no party can choose its own
after seeing the others' (issue #19: when the contributions themselves were broadcast in
round 1, the last party to send could grind its own until the chain code suited it). A
party that dislikes the result can still refuse to go on, which aborts the DKG; it cannot
pick the chain code of a DKG that ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shardvault.crypto.errors import (
    EncodingError,
    MisuseError,
    ProtocolAbort,
    TransportError,
    VerificationError,
)
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.polynomial import Polynomial
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    SessionId,
    check_thresholds,
    party_set,
    session_id,
)
from shardvault.crypto.protocols.complaints import (
    Complaint,
    ComplaintKey,
    EncryptedShare,
    ShareContext,
    check_structure,
    decode_public_key,
    decrypt_share,
    encrypt_share,
    judge_all,
    make_complaint,
)
from shardvault.crypto.protocols.confirmation import confirmation_digest
from shardvault.crypto.protocols.frost.ciphersuite import Ciphersuite
from shardvault.crypto.protocols.frost.keys import KeyPackage, PublicKeyPackage
from shardvault.crypto.protocols.frost.messages import (
    DKG_PROTOCOL,
    DkgRound1Message,
    DkgRound2Message,
    DkgRound3Message,
)
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.vss import VerifiableCommitment, sum_commitments

_CHAIN_CODE_DOMAIN = b"shardvault/frost/dkg/chain-code/v1"
_CHAIN_CODE_COMMITMENT_DOMAIN = b"shardvault/frost/dkg/chain-code-commitment/v1"
CHAIN_CODE_BYTES = 32
"""Length of a chain-code contribution, of its commitment nonce and of the chain code."""


def chain_code_commitment(session: SessionId, party: int, nonce: bytes, part: bytes) -> bytes:
    """The round-1 commitment to a chain-code contribution: SHA-256 over
    ``shardvault/frost/dkg/chain-code-commitment/v1`` and the session id, the party id
    (two bytes), the nonce and the contribution, each with an 8-byte length prefix.

    Binding the session and the party means a commitment copied from another party, or
    from another ceremony, cannot be opened by the copier; the fresh 32-byte nonce hides
    the contribution until it is opened.
    """
    h = hashlib.sha256(_CHAIN_CODE_COMMITMENT_DOMAIN)
    for value in (bytes(session), party.to_bytes(2, "big"), nonce, part):
        h.update(len(value).to_bytes(8, "big") + value)
    return h.digest()


def _chain_code(parts: Sequence[bytes]) -> bytes:
    return hashlib.sha256(_CHAIN_CODE_DOMAIN + b"".join(parts)).digest()


def _pok_challenge(
    suite: Ciphersuite, session: SessionId, identifier: int, constant: Point, r: Point
) -> Scalar:
    """``c = HDKG(session || SerializeScalar(i) || C_i0 || R_i)``."""
    return suite.hdkg(
        bytes(session)
        + suite.group.scalar(identifier).to_bytes()
        + constant.to_bytes()
        + r.to_bytes()
    )


def _echo_digest(message: DkgRound1Message) -> bytes:
    return hashlib.sha256(b"shardvault/frost/dkg/echo/v1" + message.to_bytes()).digest()


class DkgRound1:
    """Party ``identifier``'s first round of the DKG.

    Raises (on construction):
        MisuseError: ``identifier`` not in ``party_ids``, a bad party set or session id,
            or thresholds outside ``2 <= min_signers <= len(party_ids)``.

    Security: holds the party's secret polynomial until :meth:`next` hands what round 2
    needs to :class:`DkgRound2`; afterwards this object refuses to run again.
    """

    def __init__(
        self,
        suite: Ciphersuite,
        identifier: int,
        min_signers: int,
        party_ids: Sequence[int],
        session: bytes,
        rng: RandomSource,
    ) -> None:
        self._parties = party_set(party_ids)
        # With min_signers = 1 every share would be the whole key: refused (our misuse).
        check_thresholds(min_signers, len(self._parties))
        if identifier not in self._parties:
            raise MisuseError(f"party {identifier} is not in the party set")
        self._suite = suite
        self._me = PartyId(identifier)
        self._min_signers = min_signers
        self._session = session_id(session)
        group = suite.group
        polynomial = Polynomial.random(group, min_signers - 1, rng)
        commitment = VerifiableCommitment.of(polynomial)
        k = group.random_scalar(rng)
        r = group.base_multiply(k)
        c = _pok_challenge(suite, self._session, identifier, commitment.constant, r)
        mu = k + polynomial.coefficients[0] * c
        self._polynomial: Polynomial | None = polynomial
        self._commitment = commitment
        self._rng = rng
        self._complaint_key = ComplaintKey(rng)
        self._chain_code_part = rng(CHAIN_CODE_BYTES)
        self._chain_code_nonce = rng(CHAIN_CODE_BYTES)
        if len(self._chain_code_part) != CHAIN_CODE_BYTES or len(self._chain_code_nonce) != (
            CHAIN_CODE_BYTES
        ):
            raise MisuseError("random source returned the wrong number of bytes")
        self.message = DkgRound1Message(
            Header(DKG_PROTOCOL, WIRE_VERSION, self._session, 1, self._me, None),
            commitment.to_bytes(),
            r.to_bytes(),
            mu.to_bytes(),
            chain_code_commitment(
                self._session, identifier, self._chain_code_nonce, self._chain_code_part
            ),
            self._complaint_key.public.to_bytes(),
        )

    def __repr__(self) -> str:
        return f"DkgRound1(party={self._me}, <redacted>)"

    def next(self, received: Sequence[DkgRound1Message]) -> tuple[DkgRound2, DkgRound2Message]:
        """Check every peer's broadcast and deal this party's shares, encrypted to each
        peer's complaint key, in one broadcast.

        Raises:
            MisuseError: this round already ran.
            TransportError: a peer's broadcast is missing or from outside the party set.
            ProtocolAbort: a malformed commitment or complaint key, a commitment of the
                wrong threshold, or a proof of knowledge that does not verify; names the
                sender.
        """
        polynomial = self._polynomial
        if polynomial is None:
            raise MisuseError("DKG round 1 already ran")
        self._polynomial = None
        suite, group = self._suite, self._suite.group
        by_sender: dict[PartyId, DkgRound1Message] = {self._me: self.message}
        commitments: dict[PartyId, VerifiableCommitment] = {self._me: self._commitment}
        keys: dict[PartyId, Point] = {self._me: self._complaint_key.public}
        for message in received:
            message.header.check(
                protocol=DKG_PROTOCOL,
                session=self._session,
                round_number=1,
                parties=self._parties,
                me=self._me,
                direct=False,
            )
            sender = message.header.sender
            if sender in by_sender:
                if by_sender[sender] != message:
                    raise ProtocolAbort(
                        [sender], f"party {sender} broadcast two different messages"
                    )
                continue
            # FROST KeyGen round 1 step 5: validate the commitment and the proof.
            try:
                commitment = VerifiableCommitment.from_bytes(group, message.commitment)
                r = group.decode_point(message.proof_r)
                mu = group.decode_scalar(message.proof_mu)
                keys[sender] = decode_public_key(message.complaint_key)
            except EncodingError as exc:
                raise ProtocolAbort(
                    [sender], f"party {sender} sent a malformed broadcast: {exc}"
                ) from exc
            if commitment.min_signers != self._min_signers:
                raise ProtocolAbort(
                    [sender],
                    f"party {sender} committed to {commitment.min_signers} coefficients, "
                    f"expected {self._min_signers}",
                )
            c = _pok_challenge(suite, self._session, sender, commitment.constant, r)
            if group.base_multiply(mu) - commitment.constant * c != r:
                raise ProtocolAbort([sender], f"proof of knowledge of party {sender} is invalid")
            by_sender[sender] = message
            commitments[sender] = commitment
        missing = [p for p in self._parties if p not in by_sender]
        if missing:
            raise TransportError(f"DKG round 1 broadcasts missing from parties {missing}")
        echo = tuple(_echo_digest(by_sender[p]) for p in self._parties)
        # FROST KeyGen round 2 step 1: a secret share for every peer, encrypted to its
        # complaint key so that a complaint about it can be judged by everyone.
        encrypted = [
            encrypt_share(
                ShareContext(DKG_PROTOCOL, self._session, self._me, peer),
                keys[peer],
                polynomial.evaluate(peer).to_bytes(),
                self._rng,
            )
            for peer in self._parties
            if peer != self._me
        ]
        # The chain-code contribution is opened only now that every commitment is fixed.
        out = DkgRound2Message(
            Header(DKG_PROTOCOL, WIRE_VERSION, self._session, 2, self._me, None),
            echo,
            self._chain_code_part,
            self._chain_code_nonce,
            tuple(e.ephemeral_key for e in encrypted),
            tuple(e.ciphertext for e in encrypted),
        )
        round2 = DkgRound2(
            _Session(suite, self._me, self._min_signers, self._parties, self._session),
            own_share=polynomial.evaluate(self._me),
            commitments=commitments,
            echo=echo,
            chain_code_commitments={p: by_sender[p].chain_code_commitment for p in self._parties},
            own_chain_code_part=self._chain_code_part,
            complaint_key=self._complaint_key,
            complaint_keys=keys,
            own_broadcast=out,
            rng=self._rng,
        )
        return round2, out


class _Session:
    """What every round of one party's DKG shares: suite, party, threshold, parties, id."""

    __slots__ = ("me", "min_signers", "parties", "session", "suite")

    def __init__(
        self,
        suite: Ciphersuite,
        me: PartyId,
        min_signers: int,
        parties: tuple[PartyId, ...],
        session: SessionId,
    ) -> None:
        self.suite = suite
        self.me = me
        self.min_signers = min_signers
        self.parties = parties
        self.session = session

    def context(self, dealer: PartyId, recipient: PartyId) -> ShareContext:
        """The context of the share ``dealer`` sent ``recipient`` in this session."""
        return ShareContext(DKG_PROTOCOL, self.session, dealer, recipient)

    def check_header(self, message: DkgRound2Message | DkgRound3Message, round_number: int) -> None:
        message.header.check(
            protocol=DKG_PROTOCOL,
            session=self.session,
            round_number=round_number,
            parties=self.parties,
            me=self.me,
            direct=False,
        )


def _entry(
    message: DkgRound2Message, parties: tuple[PartyId, ...], recipient: PartyId
) -> EncryptedShare:
    """The dealer's ciphertext for ``recipient`` in its round-2 broadcast (checked shape)."""
    index = [p for p in parties if p != message.header.sender].index(recipient)
    return EncryptedShare(message.share_keys[index], message.share_ciphertexts[index])


class DkgRound2:
    """Party ``identifier``'s second round: check every dealer's broadcast, open and verify
    the shares sent to us, derive the key or complain.

    Security: holds this party's own share of its polynomial and its complaint key until
    :meth:`next`.
    """

    def __init__(
        self,
        session: _Session,
        *,
        own_share: Scalar,
        commitments: dict[PartyId, VerifiableCommitment],
        echo: tuple[bytes, ...],
        chain_code_commitments: dict[PartyId, bytes],
        own_chain_code_part: bytes,
        complaint_key: ComplaintKey,
        complaint_keys: dict[PartyId, Point],
        own_broadcast: DkgRound2Message,
        rng: RandomSource,
    ) -> None:
        self._s = session
        self._own_broadcast = own_broadcast
        self._own_share: Scalar | None = own_share
        self._commitments = commitments
        self._echo = echo
        self._chain_code_commitments = chain_code_commitments
        self._own_chain_code_part = own_chain_code_part
        self._complaint_key = complaint_key
        self._complaint_keys = complaint_keys
        self._rng = rng

    def __repr__(self) -> str:
        return f"DkgRound2(party={self._s.me}, <redacted>)"

    def _check_broadcast(self, message: DkgRound2Message) -> None:
        """Everything any party can check of a dealer's round-2 broadcast."""
        parties, me, sender = self._s.parties, self._s.me, message.header.sender
        if len(message.echo) != len(parties):
            raise ProtocolAbort([sender], f"party {sender} sent a malformed echo")
        for index, party in enumerate(parties):
            if message.echo[index] == self._echo[index]:
                continue
            if party == me:
                raise ProtocolAbort(
                    [sender], f"party {sender} echoes a broadcast of ours we never sent"
                )
            if party == sender:
                raise ProtocolAbort(
                    [sender],
                    f"party {sender} echoes its own broadcast differently (equivocation)",
                )
            # The broadcast of `party` reached `sender` and us differently: `party`
            # equivocated, or `sender` misreports what it received.
            raise ProtocolAbort(
                [party, sender],
                f"party {party}'s round-1 broadcast differs between us and party "
                f"{sender} (equivocation by {party}, or a false echo by {sender})",
            )
        opened = chain_code_commitment(
            self._s.session, sender, message.chain_code_nonce, message.chain_code_part
        )
        if opened != self._chain_code_commitments[sender]:
            raise ProtocolAbort(
                [sender],
                f"party {sender} revealed a chain-code contribution that does not open "
                "its round-1 commitment",
            )
        count = len(parties) - 1
        if len(message.share_keys) != count or len(message.share_ciphertexts) != count:
            raise ProtocolAbort([sender], f"party {sender} sent {count} shares the wrong way")
        try:
            for recipient in parties:
                if recipient != sender:
                    entry = _entry(message, parties, recipient)
                    check_structure(entry, self._s.suite.group.scalar_length)
        except EncodingError as exc:
            raise ProtocolAbort(
                [sender], f"party {sender} sent a malformed encrypted share: {exc}"
            ) from exc

    def _open(self, message: DkgRound2Message) -> Scalar | None:
        """The share the dealer sent us, or ``None`` when it is bad (we complain)."""
        sender, me, group = message.header.sender, self._s.me, self._s.suite.group
        entry = _entry(message, self._s.parties, me)
        plaintext = decrypt_share(self._s.context(sender, me), self._complaint_key, entry)
        if plaintext is None:
            return None
        try:
            share = group.decode_scalar(plaintext)
            # FROST KeyGen round 2 step 2: verify the share against the commitments.
            self._commitments[sender].verify_share(me, share)
        except (EncodingError, VerificationError):
            return None
        return share

    def next(self, received: Sequence[DkgRound2Message]) -> tuple[DkgRound3, DkgRound3Message]:
        """Check every dealer's broadcast and the share it sent us; return round 3 and its
        broadcast: the key confirmation when every share was good, else our complaints.

        Raises:
            MisuseError: this round already ran.
            TransportError: a broadcast is missing or from outside the party set.
            ProtocolAbort: a broadcast anyone can see is wrong (an echo showing a round-1
                broadcast seen differently, a chain-code contribution that does not open
                the round-1 commitment, a malformed ciphertext); names the culprit. A bad
                share sent to us is not an abort here but a complaint in round 3.
        """
        own = self._own_share
        if own is None:
            raise MisuseError("DKG round 2 already ran")
        self._own_share = None
        s = self._s
        by_sender: dict[PartyId, DkgRound2Message] = {}
        for message in received:
            s.check_header(message, 2)
            sender = message.header.sender
            if sender in by_sender:
                if by_sender[sender] != message:
                    raise ProtocolAbort([sender], f"party {sender} broadcast two round-2 messages")
                continue
            self._check_broadcast(message)
            by_sender[sender] = message
        missing = [p for p in s.parties if p != s.me and p not in by_sender]
        if missing:
            raise TransportError(f"DKG round 2 broadcasts missing from parties {missing}")
        complaints: list[Complaint] = []
        signing_share = own
        for sender in s.parties:
            if sender == s.me:
                continue
            share = self._open(by_sender[sender])
            if share is None:
                entry = _entry(by_sender[sender], s.parties, s.me)
                complaints.append(
                    make_complaint(s.context(sender, s.me), self._complaint_key, entry, self._rng)
                )
            else:
                signing_share = signing_share + share
        # Every ciphertext as we know it, our own included, so that a complaint about our
        # share is judged by the same rule as at every other party.
        everyone = {**by_sender, s.me: self._own_broadcast}
        received_for: dict[tuple[PartyId, PartyId], EncryptedShare] = {
            (dealer, recipient): _entry(message, s.parties, recipient)
            for dealer, message in everyone.items()
            for recipient in s.parties
            if recipient != dealer
        }
        judge_data = _JudgeData(s, self._commitments, self._complaint_keys, received_for)
        header = Header(DKG_PROTOCOL, WIRE_VERSION, s.session, 3, s.me, None)
        if complaints:
            round3 = DkgRound3(s, judge_data, complaints=tuple(complaints))
            return round3, DkgRound3Message(header, b"", tuple(complaints))
        parts = {p: by_sender[p].chain_code_part for p in by_sender}
        parts[s.me] = self._own_chain_code_part
        # FROST KeyGen round 2 step 3-4: the group key and every verifying share.
        summed = sum_commitments([self._commitments[p] for p in s.parties])
        public = PublicKeyPackage(
            s.suite,
            s.min_signers,
            len(s.parties),
            summed.constant,
            {p: summed.evaluate(p) for p in s.parties},
            _chain_code([parts[p] for p in s.parties]),
        )
        if public.group_public_key.is_identity():
            raise ProtocolAbort([], "group public key is the identity")
        digest = confirmation_digest(DKG_PROTOCOL, s.session, public.digest())
        round3 = DkgRound3(
            s, judge_data, result=KeyPackage(s.me, signing_share, public), digest=digest
        )
        return round3, DkgRound3Message(header, digest, ())


class _JudgeData:
    """What judging a complaint takes, all of it agreed public data: every dealer's
    commitments, every party's complaint key, every ciphertext as we received it."""

    __slots__ = ("commitments", "keys", "received", "session")

    def __init__(
        self,
        session: _Session,
        commitments: dict[PartyId, VerifiableCommitment],
        keys: dict[PartyId, Point],
        received: dict[tuple[PartyId, PartyId], EncryptedShare],
    ) -> None:
        self.session = session
        self.commitments = commitments
        self.keys = keys
        self.received = received

    def culprits(self, complaints: Sequence[tuple[PartyId, Complaint]]) -> set[PartyId]:
        """Who is at fault for the ``(complainer, complaint)`` pairs."""
        group = self.session.suite.group

        def is_valid_share(dealer: PartyId, recipient: PartyId, plaintext: bytes) -> bool:
            try:
                self.commitments[dealer].verify_share(recipient, group.decode_scalar(plaintext))
            except (EncodingError, VerificationError):
                return False
            return True

        return judge_all(
            DKG_PROTOCOL,
            self.session.session,
            self.session.parties,
            complaints,
            self.keys,
            self.received,
            is_valid_share,
        )


class DkgRound3:
    """Round 3: judge every complaint, or hand out the key package once every party
    confirmed the same public key package.

    Security: holds this party's key package until :meth:`finish`, which hands it out
    once; ``repr`` hides it.
    """

    def __init__(
        self,
        session: _Session,
        judge_data: _JudgeData,
        *,
        result: KeyPackage | None = None,
        digest: bytes = b"",
        complaints: tuple[Complaint, ...] = (),
    ) -> None:
        self._s = session
        self._judge = judge_data
        self._result = result
        self._digest = digest
        self._complaints = complaints
        self._finished = False

    def __repr__(self) -> str:
        return f"DkgRound3(party={self._s.me}, <redacted>)"

    def finish(self, received: Sequence[DkgRound3Message]) -> KeyPackage:
        """Judge the complaints, if any, else check every confirmation; return the key
        package.

        Raises:
            MisuseError: this round already finished.
            TransportError: a round-3 message missing, or from outside the party set.
            ProtocolAbort: a complaint (names whom the judgement finds at fault, the same
                parties at every honest party), a confirmation of other public data, or a
                second, different round-3 message (names the sender).
        """
        if self._finished:
            raise MisuseError("DKG round 3 already finished")
        self._finished = True
        s = self._s
        by_sender: dict[PartyId, DkgRound3Message] = {}
        for message in received:
            s.check_header(message, 3)
            sender = message.header.sender
            if sender in by_sender and by_sender[sender] != message:
                raise ProtocolAbort([sender], f"party {sender} sent two different round-3 messages")
            # At most one complaint per other dealer, so judging stays bounded.
            accused = [c.accused for c in message.complaints]
            if len(accused) >= len(s.parties) or len(set(accused)) != len(accused):
                raise ProtocolAbort([sender], f"party {sender} sent malformed complaints")
            by_sender[sender] = message
        missing = [p for p in s.parties if p != s.me and p not in by_sender]
        if missing:
            raise TransportError(f"DKG round 3 messages missing from parties {missing}")
        complaints = [(s.me, c) for c in self._complaints] + [
            (p, c) for p in s.parties if p in by_sender for c in by_sender[p].complaints
        ]
        if complaints:
            raise ProtocolAbort(
                self._judge.culprits(complaints),
                "a complaint about a key-generation share: "
                + ", ".join(f"party {c} against party {x.accused}" for c, x in complaints),
            )
        result = self._result
        self._result = None
        if result is None:  # pragma: no cover - a party without a key has complaints
            raise ProtocolAbort([], "no key package")
        differing = [p for p, m in by_sender.items() if m.confirmation != self._digest]
        if differing:
            raise ProtocolAbort(
                differing, "key confirmation: the parties ended with different public data"
            )
        return result
