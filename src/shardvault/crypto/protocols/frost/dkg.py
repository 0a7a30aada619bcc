"""FROST distributed key generation: Pedersen's DKG with proofs of knowledge.

Komlo and Goldberg, "FROST: Flexible Round-Optimized Schnorr Threshold Signatures"
(SAC 2020), Figure 1, KeyGen. No dealer: every party deals a random polynomial and the
key is the sum of their constant terms, so the group secret never exists anywhere.

Round 1 (broadcast), for party ``i``:
  1. Sample a polynomial ``f_i`` of degree ``t - 1`` (``t = min_signers``).
  2. Prove knowledge of ``a_i0 = f_i(0)``: ``k`` random, ``R_i = k * G``,
     ``c_i = HDKG(session || i || C_i0 || R_i)``, ``mu_i = k + a_i0 * c_i``.
  3. Commit ``C_ik = a_ik * G`` for every coefficient.
  4. Broadcast ``(C_i, R_i, mu_i)`` and a hash commitment to a random 32-byte chain-code
     contribution ``cc_i`` (:func:`chain_code_commitment`, with a fresh 32-byte nonce,
     bound to the session and to ``i``).
  5. On receipt, check every peer's proof ``R_l == mu_l * G - c_l * C_l0``; a failure
     aborts naming that peer.

Round 2 (direct), for party ``i``:
  1. Send ``f_i(l)`` to every peer ``l``, with an echo: the digest of every round-1
     broadcast as ``i`` received it, and the opening ``(cc_i, nonce_i)`` of the chain-code
     commitment.
  2. On receipt, check each share against the sender's commitments (Feldman); a share that
     does not match is a complaint that aborts naming the sender. Check each echo against
     the broadcasts received. A difference about the sender's own broadcast, or about
     ours, convicts the sender. A difference about a third party's broadcast means that
     either that party equivocated or the sender misreports; this layer cannot tell which,
     so the abort names both as suspects, and the co-signer, which holds every broadcast
     signed by its sender (``shardvault.crypto.channel``), settles it from the signatures.
     An opening that does not match the sender's round-1 commitment aborts naming the
     sender.
  3. ``s_i = sum_l f_l(i)``; the group key ``Y = sum_l C_l0``; every verifying share
     ``Y_j = sum_l sum_k j^k C_lk``.

Round 3 (broadcast, key confirmation; shardvault's addition,
:mod:`~shardvault.crypto.protocols.confirmation`): every party confirms the digest of the
public key package it ended with, and gets its key package only once every party
confirmed the same. Without it a dealer that sent one party a bad share made that party
abort while the others finished and stored their key packages.

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
from shardvault.crypto.protocols.confirmation import KeyConfirmation, KeyConfirmationMessage
from shardvault.crypto.protocols.frost.ciphersuite import Ciphersuite
from shardvault.crypto.protocols.frost.keys import KeyPackage, PublicKeyPackage
from shardvault.crypto.protocols.frost.messages import (
    DKG_PROTOCOL,
    DkgRound1Message,
    DkgRound2Message,
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
        )

    def __repr__(self) -> str:
        return f"DkgRound1(party={self._me}, <redacted>)"

    def next(
        self, received: Sequence[DkgRound1Message]
    ) -> tuple[DkgRound2, list[DkgRound2Message]]:
        """Check every peer's broadcast and deal this party's shares.

        Raises:
            MisuseError: this round already ran.
            TransportError: a peer's broadcast is missing or from outside the party set.
            ProtocolAbort: a malformed commitment, a commitment of the wrong threshold, or a
                proof of knowledge that does not verify; names the sender.
        """
        polynomial = self._polynomial
        if polynomial is None:
            raise MisuseError("DKG round 1 already ran")
        self._polynomial = None
        suite, group = self._suite, self._suite.group
        by_sender: dict[PartyId, DkgRound1Message] = {self._me: self.message}
        commitments: dict[PartyId, VerifiableCommitment] = {self._me: self._commitment}
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
        # FROST KeyGen round 2 step 1: a secret share for every peer.
        # The chain-code contribution is opened only now that every commitment is fixed.
        out = [
            DkgRound2Message(
                Header(DKG_PROTOCOL, WIRE_VERSION, self._session, 2, self._me, peer),
                polynomial.evaluate(peer).to_bytes(),
                echo,
                self._chain_code_part,
                self._chain_code_nonce,
            )
            for peer in self._parties
            if peer != self._me
        ]
        round2 = DkgRound2(
            suite,
            self._me,
            self._min_signers,
            self._parties,
            self._session,
            own_share=polynomial.evaluate(self._me),
            commitments=commitments,
            echo=echo,
            chain_code_commitments={p: by_sender[p].chain_code_commitment for p in self._parties},
            own_chain_code_part=self._chain_code_part,
        )
        return round2, out


class DkgRound2:
    """Party ``identifier``'s second round: verify received shares, derive the key.

    Security: holds this party's own share of its polynomial until :meth:`next`.
    """

    def __init__(
        self,
        suite: Ciphersuite,
        me: PartyId,
        min_signers: int,
        parties: tuple[PartyId, ...],
        session: SessionId,
        *,
        own_share: Scalar,
        commitments: dict[PartyId, VerifiableCommitment],
        echo: tuple[bytes, ...],
        chain_code_commitments: dict[PartyId, bytes],
        own_chain_code_part: bytes,
    ) -> None:
        self._suite = suite
        self._me = me
        self._min_signers = min_signers
        self._parties = parties
        self._session = session
        self._own_share: Scalar | None = own_share
        self._commitments = commitments
        self._echo = echo
        self._chain_code_commitments = chain_code_commitments
        self._own_chain_code_part = own_chain_code_part

    def __repr__(self) -> str:
        return f"DkgRound2(party={self._me}, <redacted>)"

    def next(
        self, received: Sequence[DkgRound2Message]
    ) -> tuple[KeyConfirmation[KeyPackage], KeyConfirmationMessage]:
        """Verify every share dealt to this party; return the confirmation round (round 3)
        that hands out its key package once every party confirmed the same public key
        package, and its broadcast.

        Raises:
            MisuseError: this round already ran.
            TransportError: a share is missing or from outside the party set.
            ProtocolAbort: a share that does not match the sender's commitments (a
                complaint), an echo showing a broadcast seen differently, or a chain-code
                contribution that does not open the sender's round-1 commitment; names
                the culprit.
        """
        own = self._own_share
        if own is None:
            raise MisuseError("DKG round 2 already ran")
        self._own_share = None
        group = self._suite.group
        shares: dict[PartyId, Scalar] = {}
        parts: dict[PartyId, bytes] = {self._me: self._own_chain_code_part}
        for message in received:
            message.header.check(
                protocol=DKG_PROTOCOL,
                session=self._session,
                round_number=2,
                parties=self._parties,
                me=self._me,
                direct=True,
            )
            sender = message.header.sender
            if sender in shares:
                raise ProtocolAbort([sender], f"party {sender} sent its share twice")
            if len(message.echo) != len(self._parties):
                raise ProtocolAbort([sender], f"party {sender} sent a malformed echo")
            for index, party in enumerate(self._parties):
                if message.echo[index] == self._echo[index]:
                    continue
                if party == self._me:
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
                self._session, sender, message.chain_code_nonce, message.chain_code_part
            )
            if opened != self._chain_code_commitments[sender]:
                raise ProtocolAbort(
                    [sender],
                    f"party {sender} revealed a chain-code contribution that does not open "
                    "its round-1 commitment",
                )
            try:
                share = group.decode_scalar(message.share)
            except EncodingError as exc:
                raise ProtocolAbort([sender], f"party {sender} sent a malformed share") from exc
            # FROST KeyGen round 2 step 2: verify the share against the commitments.
            try:
                self._commitments[sender].verify_share(self._me, share)
            except VerificationError as exc:
                raise ProtocolAbort(
                    [sender], f"share from party {sender} does not match its commitments"
                ) from exc
            shares[sender] = share
            parts[sender] = message.chain_code_part
        missing = [p for p in self._parties if p != self._me and p not in shares]
        if missing:
            raise TransportError(f"DKG round 2 shares missing from parties {missing}")
        signing_share = own
        for share in shares.values():
            signing_share = signing_share + share
        # FROST KeyGen round 2 step 3-4: the group key and every verifying share.
        summed = sum_commitments([self._commitments[p] for p in self._parties])
        public = PublicKeyPackage(
            self._suite,
            self._min_signers,
            len(self._parties),
            summed.constant,
            {p: summed.evaluate(p) for p in self._parties},
            _chain_code([parts[p] for p in self._parties]),
        )
        if public.group_public_key.is_identity():
            raise ProtocolAbort([], "group public key is the identity")
        # Round 3 (key confirmation, shardvault's addition): a dealer that sent one party
        # a bad share makes it abort; the others then never get their key package either.
        confirmation = KeyConfirmation(
            protocol=DKG_PROTOCOL,
            session=self._session,
            round_number=3,
            me=self._me,
            parties=self._parties,
            public=public.digest(),
            result=KeyPackage(self._me, signing_share, public),
        )
        return confirmation, confirmation.message
