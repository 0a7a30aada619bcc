"""CGGMP21 proactive key refresh, t-of-n, as sans-I/O round objects.

Source: CGGMP21 (ePrint 2021/060), Figure 6 "Auxiliary Info. & Key Refresh": every party
deals a fresh sharing of zero and every share is moved by the sum of the dealt shares, so
the public key stays the same while every share changes; new auxiliary info (Paillier
moduli and ring-Pedersen parameters, proven with Πmod, Πprm, Πfac) replaces the old. For a
``t``-of-``n`` key the zero-sharing is a Feldman-committed polynomial of degree ``t - 1``
with constant term zero (as in LFDT-Lockness/cggmp21's threshold refresh). The auxiliary
info comes from a fresh run of :mod:`~shardvault.crypto.protocols.cggmp21.aux_info`; this
protocol binds its digest, so all parties provably switch to the same new aux info.

Rounds (``i`` is this party):

1. ``f_i`` of degree ``t - 1`` with ``f_i(0) = 0``; Feldman commitments ``F_i[1..t-1]``;
   ``rid_i``; Schnorr commitments ``A_{i,k}`` for each ``F_i[k]``; salt ``u_i``; broadcast
   ``V_i = H(sid, i, rid_i, F_i, A_i, u_i, aux digest)``, with the key id and epoch, and a
   fresh complaint key ``Y_i`` (:mod:`~shardvault.crypto.protocols.complaints`).
2. Broadcast the decommitment, the echo of every round-1 broadcast, and ``f_i(j)`` for
   every ``P_j`` encrypted to ``Y_j`` (shardvault's change, as in key generation).
3. Check echoes and decommitments; open and check the shares sent to us (a bad one is a
   complaint); ``rid = ⊕ rid_j``; broadcast Schnorr responses and our complaints.
Output: judge every complaint (the same culprits at every honest party); verify the
proofs; ``x_i' = x_i + Σ_j f_j(i)``, ``X_k' = X_k + Σ_j F_j(k)``; the public key and chain
code are unchanged, the epoch increases by one.
4. Key confirmation (shardvault's addition,
   :mod:`~shardvault.crypto.protocols.confirmation`): broadcast the new key id; the new
   share is handed out only once every party confirmed the same.

Shares of the old epoch are useless with new ones: an old share plus new shares do not
interpolate to the key, and presigning refuses peers and presignatures of another epoch.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, VerificationError
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.polynomial import Polynomial
from shardvault.crypto.protocols.cggmp21._common import (
    check_echo,
    collect,
    echo_digest,
    hash_commitment,
    wire_bytes,
    wire_int,
    wire_point,
)
from shardvault.crypto.protocols.cggmp21._shares import (
    ShareBook,
    collect_complaints,
    read_complaint_key,
)
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE, KeyShare
from shardvault.crypto.protocols.cggmp21.messages import (
    REFRESH_PROTOCOL,
    RefreshRound1Message,
    RefreshRound2Message,
    RefreshRound3Message,
)
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    check_thresholds,
    session_id,
)
from shardvault.crypto.protocols.complaints import Complaint, ComplaintKey
from shardvault.crypto.protocols.confirmation import KeyConfirmation, KeyConfirmationMessage
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk import sch
from shardvault.crypto.zk.context import ProofContext


def _check_zero_share(points: Sequence[Point], party: int, value: Scalar) -> None:
    """Feldman's check of a share of a sharing of zero (commitments ``F[1..]``).

    Raises:
        VerificationError: the share does not match.
    """
    if CURVE.base_multiply(value) != _evaluate(points, party):
        raise VerificationError("share does not match the zero-sharing commitments")


def _evaluate(points: Sequence[Point], x: int) -> Point:
    """``Σ_{k≥1} x^k·F[k]`` for commitments ``F[1..]`` of a polynomial with zero constant."""
    result = CURVE.identity()
    for point in reversed(points):
        result = (result + point) * CURVE.scalar(x)
    return result


class RefreshRound1:
    """Round 1 of key refresh for ``key.party``; ``message`` is its broadcast.

    Raises (on construction):
        MisuseError: ``new_aux`` for another party or party set, or a key whose thresholds
            are outside ``2 <= min_signers <= max_signers`` (nothing would change).

    Security: holds the zero-sharing polynomial and the Schnorr nonces.
    """

    def __init__(self, key: KeyShare, new_aux: AuxInfo, session: bytes, rng: RandomSource) -> None:
        if new_aux.party != key.party or set(new_aux.parties) != set(key.parties):
            raise MisuseError("new auxiliary info is for another party or party set")
        # A 1-of-n key would be "refreshed" by a degree-0 sharing of zero, i.e. not at all.
        check_thresholds(key.min_signers, key.max_signers)
        self._key = key
        self._aux = new_aux
        self._session = session_id(session)
        self._parties = key.parties
        self._binding = hashlib.sha256(
            b"shardvault/cggmp21/refresh/binding/v1" + key.key_id + new_aux.digest()
        ).digest()
        # Refresh round 1: a degree t-1 sharing of zero, its commitments and Schnorr nonces.
        polynomial = Polynomial.random(CURVE, key.min_signers - 1, rng, constant=CURVE.scalar(0))
        self._polynomial: Polynomial | None = polynomial
        self._points = [CURVE.base_multiply(a) for a in polynomial.coefficients[1:]]
        self._nonces = [sch.SchnorrNonce(CURVE, rng) for _ in self._points]
        self._rid = rng(32)
        self._salt = rng(32)
        self._commitment = hash_commitment(
            "refresh",
            self._session,
            key.party,
            self._values(self._rid, self._point_bytes(), self._nonce_bytes(), self._salt),
        )
        self._rng = rng
        self._complaint_key = ComplaintKey(rng)
        self.message = RefreshRound1Message(
            Header(REFRESH_PROTOCOL, WIRE_VERSION, self._session, 1, key.party, None),
            commitment=self._commitment,
            key_id=key.key_id,
            epoch=key.epoch,
            complaint_key=self._complaint_key.public.to_bytes(),
        )

    def _point_bytes(self) -> list[bytes]:
        return [p.to_bytes() for p in self._points]

    def _nonce_bytes(self) -> list[bytes]:
        return [n.commitment.to_bytes() for n in self._nonces]

    def _values(
        self, rid: bytes, points: Sequence[bytes], nonces: Sequence[bytes], salt: bytes
    ) -> list[bytes]:
        return [rid, *points, b"|", *nonces, salt, self._aux.digest()]

    def __repr__(self) -> str:
        return f"RefreshRound1(party={self._key.party}, <redacted>)"

    def next(
        self, received: Sequence[RefreshRound1Message]
    ) -> tuple[RefreshRound2, RefreshRound2Message]:
        """Take every peer's commitment and complaint key; return round 2 and its broadcast
        (the decommitment, the echo and the encrypted shares).

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: a peer refreshing another key or epoch, or a malformed commitment.
        """
        polynomial = self._polynomial
        if polynomial is None:
            raise MisuseError("refresh round 1 already ran")
        self._polynomial = None
        key = self._key
        by_sender = collect(
            received,
            lambda m: m.header,
            protocol=REFRESH_PROTOCOL,
            session=self._session,
            round_number=1,
            parties=self._parties,
            me=key.party,
            direct=False,
        )
        commitments = {key.party: self._commitment}
        keys: dict[PartyId, Point] = {key.party: self._complaint_key.public}
        for sender, message in by_sender.items():
            try:
                if wire_bytes(message.key_id, "key_id", 32) != key.key_id:
                    raise VerificationError("refreshing another key")
                if wire_int(message.epoch, "epoch") != key.epoch:
                    raise VerificationError("refreshing from another epoch (stale share?)")
                commitments[sender] = wire_bytes(message.commitment, "commitment", 32)
                keys[sender] = read_complaint_key(message.complaint_key)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: refresh round 1: {exc}") from exc
        echo = [echo_digest("refresh", [commitments[p], keys[p].to_bytes()]) for p in self._parties]
        book = ShareBook(
            REFRESH_PROTOCOL, self._session, key.party, self._parties, self._complaint_key, keys
        )
        share_keys, share_ciphertexts = book.encrypt(polynomial.evaluate, self._rng)
        broadcast = RefreshRound2Message(
            Header(REFRESH_PROTOCOL, WIRE_VERSION, self._session, 2, key.party, None),
            rid=self._rid,
            vss=tuple(self._point_bytes()),
            schnorr_commitments=tuple(self._nonce_bytes()),
            salt=self._salt,
            echo=tuple(echo),
            share_keys=share_keys,
            share_ciphertexts=share_ciphertexts,
        )
        state = RefreshRound2(
            self,
            commitments=commitments,
            echo=echo,
            own_share=polynomial.evaluate(key.party),
            coefficients=list(polynomial.coefficients[1:]),
            book=book,
        )
        return state, broadcast


class RefreshRound2:
    """Round 2 of key refresh: checks decommitments, echoes and shares.

    Security: holds this party's share of its own zero-sharing and the coefficients (the
    Schnorr witnesses).
    """

    def __init__(
        self,
        first: RefreshRound1,
        *,
        commitments: dict[PartyId, bytes],
        echo: list[bytes],
        own_share: Scalar,
        coefficients: list[Scalar],
        book: ShareBook,
    ) -> None:
        self._book = book
        self._first = first
        self._commitments = commitments
        self._echo = echo
        self._secret: tuple[Scalar, list[Scalar]] | None = (own_share, coefficients)

    def __repr__(self) -> str:
        return f"RefreshRound2(party={self._first._key.party}, <redacted>)"

    def _check_peer(
        self, sender: PartyId, message: RefreshRound2Message
    ) -> tuple[list[Point], list[Point], bytes]:
        first = self._first
        rid = wire_bytes(message.rid, "rid", 32)
        points_raw = message.vss
        nonces_raw = message.schnorr_commitments
        salt = wire_bytes(message.salt, "salt", 32)
        opened = hash_commitment(
            "refresh", first._session, sender, first._values(rid, points_raw, nonces_raw, salt)
        )
        if opened != self._commitments[sender]:
            raise VerificationError(
                "decommitment does not open the round-1 commitment (or other aux info)"
            )
        degree = first._key.min_signers - 1
        if len(points_raw) != degree or len(nonces_raw) != degree:
            raise VerificationError("zero-sharing polynomial has the wrong degree")
        points = [wire_point(b, "vss") for b in points_raw]
        nonces = [wire_point(b, "schnorr_commitments") for b in nonces_raw]
        self._book.add_dealer(sender, message.share_keys, message.share_ciphertexts)
        return points, nonces, rid

    def next(
        self, broadcasts: Sequence[RefreshRound2Message]
    ) -> tuple[RefreshRound3, RefreshRound3Message]:
        """Check every peer's decommitment, echo and encrypted shares; open and check the
        shares sent to us (complaining about bad ones); answer the Schnorr challenges.

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: an echo mismatch, a bad decommitment or a malformed encrypted
                share; names the culprit. A share that does not open or match is a
                complaint in round 3.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("refresh round 2 already ran")
        self._secret = None
        first = self._first
        key = first._key
        by_sender = collect(
            broadcasts,
            lambda m: m.header,
            protocol=REFRESH_PROTOCOL,
            session=first._session,
            round_number=2,
            parties=first._parties,
            me=key.party,
            direct=False,
        )
        echoes = {sender: message.echo for sender, message in by_sender.items()}
        check_echo(echoes, self._echo, first._parties, key.party)
        own_share, coefficients = secret
        delta = own_share
        points_by: dict[PartyId, list[Point]] = {key.party: first._points}
        nonces_by: dict[PartyId, list[Point]] = {key.party: [n.commitment for n in first._nonces]}
        rid = bytearray(first._rid)
        for sender, message in by_sender.items():
            try:
                points, nonces, rid_j = self._check_peer(sender, message)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: refresh round 2: {exc}") from exc
            points_by[sender], nonces_by[sender] = points, nonces
            for index, byte in enumerate(rid_j):
                rid[index] ^= byte
        # Feldman check against a polynomial with zero constant term; else we complain.
        complaints: list[Complaint] = []
        for sender in by_sender:
            value = self._book.open(
                sender, functools.partial(_check_zero_share, points_by[sender], key.party)
            )
            if value is None:
                complaints.append(self._book.complain(sender, first._rng))
            else:
                delta = delta + value
        context = ProofContext(bytes(first._session), key.party, CURVE.name, first._binding)
        responses = [
            nonce.respond(
                sch.challenge(
                    context, CURVE, point, nonce.commitment, bytes(rid) + k.to_bytes(2, "big")
                ),
                coefficient,
            ).to_bytes()
            for k, (nonce, point, coefficient) in enumerate(
                zip(first._nonces, first._points, coefficients, strict=True)
            )
        ]
        reply = RefreshRound3Message(
            Header(REFRESH_PROTOCOL, WIRE_VERSION, first._session, 3, key.party, None),
            schnorr_responses=tuple(responses),
            complaints=[c.to_wire() for c in complaints],
        )
        round3 = RefreshRound3(
            first, points_by, nonces_by, bytes(rid), delta, self._book, complaints
        )
        return round3, reply


class RefreshRound3:
    """Round-3 receipt of key refresh: verifies the Schnorr proofs and starts the key
    confirmation.

    Security: holds the sum of the zero-shares dealt to this party until :meth:`next`.
    """

    def __init__(
        self,
        first: RefreshRound1,
        points: dict[PartyId, list[Point]],
        nonces: dict[PartyId, list[Point]],
        rid: bytes,
        delta: Scalar,
        book: ShareBook,
        complaints: Sequence[Complaint],
    ) -> None:
        self._book = book
        self._complaints = tuple(complaints)
        self._first = first
        self._points = points
        self._nonces = nonces
        self._rid = rid
        self._delta: Scalar | None = delta

    def __repr__(self) -> str:
        return f"RefreshRound3(party={self._first._key.party}, <redacted>)"

    def next(
        self, received: Sequence[RefreshRound3Message]
    ) -> tuple[KeyConfirmation[KeyShare], KeyConfirmationMessage]:
        """Verify every Schnorr proof; return the confirmation round (round 4) that hands
        out the key share of the next epoch once every party confirmed the same public key
        material, and its broadcast.

        Raises:
            MisuseError: this round already finished.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: a complaint (names whom its judgement finds at fault, alike at
                every honest party), a malformed complaint list, or a malformed or invalid
                Schnorr proof; names the sender.
        """
        delta = self._delta
        if delta is None:
            raise MisuseError("refresh round 3 already finished")
        self._delta = None
        first = self._first
        key = first._key
        by_sender = collect(
            received,
            lambda m: m.header,
            protocol=REFRESH_PROTOCOL,
            session=first._session,
            round_number=3,
            parties=first._parties,
            me=key.party,
            direct=False,
        )
        # Complaints first: every party judges them from the same public data.
        complaints = collect_complaints(
            self._complaints,
            key.party,
            {p: m.complaints for p, m in by_sender.items()},
            first._parties,
        )

        def verify(dealer: PartyId, recipient: PartyId, value: Scalar) -> None:
            _check_zero_share(self._points[dealer], recipient, value)

        self._book.judge(complaints, verify)
        for sender, message in by_sender.items():
            context = ProofContext(bytes(first._session), sender, CURVE.name, first._binding)
            try:
                raw = message.schnorr_responses
                if len(raw) != len(self._points[sender]):
                    raise VerificationError("wrong number of Schnorr responses")
                for k, (z_raw, point, nonce) in enumerate(
                    zip(raw, self._points[sender], self._nonces[sender], strict=True)
                ):
                    proof = sch.SchnorrProof(nonce, CURVE.decode_scalar(z_raw))
                    sch.verify(context, CURVE, point, proof, self._rid + k.to_bytes(2, "big"))
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort(
                    [sender], f"party {sender}: refresh Schnorr proof: {exc}"
                ) from exc
        public_shares = {
            p: key.public_shares[p]
            + CURVE.sum_points([_evaluate(self._points[d], p) for d in first._parties])
            for p in first._parties
        }
        refreshed = KeyShare(
            party=key.party,
            min_signers=key.min_signers,
            max_signers=key.max_signers,
            share=key.share + delta,
            public_shares=public_shares,
            public_key=key.public_key,
            chain_code=key.chain_code,
            aux=dict(first._aux.public),
            paillier_secret=first._aux.paillier_secret,
            epoch=key.epoch + 1,
            min_modulus_bits=key.min_modulus_bits,
        )
        # Round 4 (key confirmation): the key id covers the new public shares, the epoch
        # and every party's new aux info; nobody gets a new share unless all agree.
        confirmation = KeyConfirmation(
            protocol=REFRESH_PROTOCOL,
            session=first._session,
            round_number=4,
            me=key.party,
            parties=first._parties,
            public=refreshed.key_id,
            result=refreshed,
        )
        return confirmation, confirmation.message
