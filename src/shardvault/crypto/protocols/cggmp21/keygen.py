"""CGGMP21 key generation, t-of-n, as sans-I/O round objects.

Source: CGGMP21 (ePrint 2021/060), §3 / Figure 5 "ECDSA Key-Generation", turned into a
``t``-of-``n`` protocol with Feldman VSS the way the LFDT-Lockness/cggmp21 specification's
threshold key generation does, plus an echo of the first round (Goldwasser-Lindell echo
broadcast) because the paper assumes a broadcast channel that a relay does not give.

Rounds (``i`` is this party, ``t = min_signers``):

1. Sample a polynomial ``f_i`` of degree ``t - 1``, its Feldman commitment ``F_i``, the
   random identifier share ``rid_i``, a Schnorr commitment ``A_i = α_i·G`` for ``f_i(0)``,
   and a salt ``u_i``; broadcast ``V_i = H(sid, i, rid_i, F_i, A_i, u_i)`` and a fresh
   complaint key ``Y_i`` (:mod:`~shardvault.crypto.protocols.complaints`).
2. Broadcast the decommitment ``(rid_i, F_i, A_i, u_i)``, the echo of every round-1
   broadcast, and ``f_i(j)`` for every ``P_j`` encrypted to ``Y_j`` (shardvault's
   change: the paper sends shares over private channels, whose contents nobody else can
   check).
3. Check echoes and decommitments; open the shares sent to us and check them
   (``f_j(i)·G = F_j(i)``): a bad one is a complaint, not an abort; ``rid = ⊕ rid_j``;
   broadcast the Schnorr response ``ψ_i`` for ``F_i[0]`` with challenge bound to ``rid``,
   and our complaints.
Output: judge every complaint (each names the same culprits at every honest party:
:class:`~shardvault.crypto.protocols.cggmp21._shares.ShareBook`); verify every ``ψ_j``;
``x_i = Σ_j f_j(i)``, ``X_k = Σ_j F_j(k)``, ``X = Σ_j F_j[0]``; the chain code for BIP32 is
derived from ``rid``.
4. Key confirmation (shardvault's addition, :mod:`~shardvault.crypto.protocols.confirmation`):
   broadcast the digest of the public key material; the output is handed out only once
   every party confirmed the same, so a cheater that made one party abort (a bad share or
   proof sent to it alone) leaves no party with a key to store.

A failed check aborts naming the party at fault; the party object is then terminal.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, VerificationError
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.polynomial import Polynomial
from shardvault.crypto.protocols.cggmp21._common import (
    blame,
    check_echo,
    collect,
    echo_digest,
    hash_commitment,
    wire_bytes,
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
    KEYGEN_PROTOCOL,
    KeygenRound1Message,
    KeygenRound2Message,
    KeygenRound3Message,
)
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    SessionId,
    check_thresholds,
    party_set,
    session_id,
)
from shardvault.crypto.protocols.complaints import Complaint, ComplaintKey
from shardvault.crypto.protocols.confirmation import KeyConfirmation, KeyConfirmationMessage
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.vss import VerifiableCommitment, sum_commitments
from shardvault.crypto.zk import sch
from shardvault.crypto.zk.context import ProofContext

_CHAIN_CODE_DOMAIN = b"shardvault/cggmp21/keygen/chain-code/v1"


def _context(session: SessionId, prover: int, parties: tuple[PartyId, ...]) -> ProofContext:
    # Key generation runs before auxiliary info exists, so the binding covers the party set.
    binding = hashlib.sha256(
        b"shardvault/cggmp21/keygen/parties" + b"".join(p.to_bytes(2, "big") for p in parties)
    ).digest()
    return ProofContext(bytes(session), prover, CURVE.name, binding)


@dataclass(frozen=True, slots=True)
class KeygenOutput:
    """The result of key generation for one party, before auxiliary info is attached.

    Security: ``share`` is the party's secret ``x_i``; ``repr`` hides it.
    """

    party: PartyId
    min_signers: int
    max_signers: int
    share: Scalar
    public_shares: Mapping[PartyId, Point]
    public_key: Point
    chain_code: bytes

    def __repr__(self) -> str:
        return f"KeygenOutput(party={self.party}, public_key={self.public_key!r}, share=<redacted>)"

    def public_digest(self) -> bytes:
        """A digest of the public key material (thresholds, public key, every public
        share, chain code): what key confirmation compares."""
        h = hashlib.sha256(b"shardvault/cggmp21/keygen/public/v1")
        h.update(self.min_signers.to_bytes(2, "big") + self.max_signers.to_bytes(2, "big"))
        h.update(self.public_key.to_bytes() + self.chain_code)
        for party in sorted(self.public_shares):
            h.update(int(party).to_bytes(2, "big") + self.public_shares[party].to_bytes())
        return h.digest()

    def with_aux(self, aux: AuxInfo) -> KeyShare:
        """The complete key share (epoch 0) with the auxiliary-info phase's output.

        Raises:
            MisuseError: the aux info is for another party or party set.
        """
        if aux.party != self.party:
            raise MisuseError("auxiliary info belongs to another party")
        if set(aux.parties) != set(self.public_shares):
            raise MisuseError("auxiliary info covers another party set")
        return KeyShare(
            party=self.party,
            min_signers=self.min_signers,
            max_signers=self.max_signers,
            share=self.share,
            public_shares=self.public_shares,
            public_key=self.public_key,
            chain_code=self.chain_code,
            aux=dict(aux.public),
            paillier_secret=aux.paillier_secret,
            epoch=0,
        )


class KeygenRound1:
    """Party ``party``'s round 1 of key generation; ``message`` is its broadcast.

    Raises (on construction):
        MisuseError: ``party`` not in ``parties``, a bad party set or session id, or
            thresholds outside ``2 <= min_signers <= len(parties)`` (with ``min_signers``
            of 1 every share would be the whole key).

    Security: holds the secret polynomial and Schnorr nonce until :meth:`next` hands them
    to round 2; the object then refuses to run again.
    """

    def __init__(
        self,
        party: int,
        min_signers: int,
        parties: Sequence[int],
        session: bytes,
        rng: RandomSource,
    ) -> None:
        self._parties = party_set(parties)
        if party not in self._parties:
            raise MisuseError(f"party {party} is not in the party set")
        check_thresholds(min_signers, len(self._parties))
        self._me = PartyId(party)
        self._min_signers = min_signers
        self._session = session_id(session)
        self._rng = rng
        # Figure 5, round 1: sample the secret, rid_i, the Schnorr commitment, u_i; commit.
        polynomial = Polynomial.random(CURVE, min_signers - 1, rng)
        self._polynomial: Polynomial | None = polynomial
        self._vss = VerifiableCommitment.of(polynomial)
        self._nonce = sch.SchnorrNonce(CURVE, rng)
        self._rid = rng(32)
        self._salt = rng(32)
        self._commitment = hash_commitment(
            "keygen", self._session, party, self._decommitment_values()
        )
        self._complaint_key = ComplaintKey(rng)
        self.message = KeygenRound1Message(
            Header(KEYGEN_PROTOCOL, WIRE_VERSION, self._session, 1, self._me, None),
            commitment=self._commitment,
            complaint_key=self._complaint_key.public.to_bytes(),
        )

    def _decommitment_values(self) -> list[bytes]:
        return [self._rid, *self._vss.to_bytes(), self._nonce.commitment.to_bytes(), self._salt]

    def __repr__(self) -> str:
        return f"KeygenRound1(party={self._me}, <redacted>)"

    def next(
        self, received: Sequence[KeygenRound1Message]
    ) -> tuple[KeygenRound2, KeygenRound2Message]:
        """Take every peer's commitment and complaint key; return round 2 and its broadcast
        (the decommitment, the echo and the encrypted shares).

        Raises:
            MisuseError: this round already ran.
            TransportError: a peer's message is missing or from outside the session.
            ProtocolAbort: a malformed commitment, complaint key or header; names the sender.
        """
        polynomial = self._polynomial
        if polynomial is None:
            raise MisuseError("keygen round 1 already ran")
        self._polynomial = None
        by_sender = collect(
            received,
            lambda m: m.header,
            protocol=KEYGEN_PROTOCOL,
            session=self._session,
            round_number=1,
            parties=self._parties,
            me=self._me,
            direct=False,
        )
        commitments = {self._me: self._commitment}
        keys: dict[PartyId, Point] = {self._me: self._complaint_key.public}
        for sender, message in by_sender.items():
            commitments[sender] = blame(
                sender,
                "round-1 commitment",
                functools.partial(wire_bytes, message.commitment, "commitment", 32),
            )
            keys[sender] = blame(
                sender,
                "complaint key",
                functools.partial(read_complaint_key, message.complaint_key),
            )
        # Echo: the digest of each party's round-1 broadcast as we received it.
        echo = [echo_digest("keygen", [commitments[p], keys[p].to_bytes()]) for p in self._parties]
        book = ShareBook(
            KEYGEN_PROTOCOL, self._session, self._me, self._parties, self._complaint_key, keys
        )
        header = Header(KEYGEN_PROTOCOL, WIRE_VERSION, self._session, 2, self._me, None)
        # Figure 5 (threshold), round 2: the share f_i(j) for every peer j, encrypted.
        share_keys, share_ciphertexts = book.encrypt(polynomial.evaluate, self._rng)
        broadcast = KeygenRound2Message(
            header,
            rid=self._rid,
            vss=tuple(self._vss.to_bytes()),
            schnorr_commitment=self._nonce.commitment.to_bytes(),
            salt=self._salt,
            echo=tuple(echo),
            share_keys=share_keys,
            share_ciphertexts=share_ciphertexts,
        )
        round2 = KeygenRound2(
            me=self._me,
            min_signers=self._min_signers,
            parties=self._parties,
            session=self._session,
            commitments=commitments,
            echo=echo,
            own_share=polynomial.evaluate(self._me),
            own_constant=polynomial.coefficients[0],
            vss=self._vss,
            nonce=self._nonce,
            rid=self._rid,
            book=book,
            rng=self._rng,
        )
        return round2, broadcast


class KeygenRound2:
    """Round 2 state: checks decommitments, echoes and shares, answers the Schnorr proof.

    Security: holds this party's own share and the Schnorr nonce and witness.
    """

    def __init__(
        self,
        *,
        me: PartyId,
        min_signers: int,
        parties: tuple[PartyId, ...],
        session: SessionId,
        commitments: dict[PartyId, bytes],
        echo: list[bytes],
        own_share: Scalar,
        own_constant: Scalar,
        vss: VerifiableCommitment,
        nonce: sch.SchnorrNonce,
        rid: bytes,
        book: ShareBook,
        rng: RandomSource,
    ) -> None:
        self._book = book
        self._rng = rng
        self._me = me
        self._min_signers = min_signers
        self._parties = parties
        self._session = session
        self._commitments = commitments
        self._echo = echo
        self._own_share: Scalar | None = own_share
        self._own_constant: Scalar | None = own_constant
        self._vss = vss
        self._nonce = nonce
        self._rid = rid

    def __repr__(self) -> str:
        return f"KeygenRound2(party={self._me}, <redacted>)"

    def _check_peer(
        self, sender: PartyId, message: KeygenRound2Message
    ) -> tuple[VerifiableCommitment, Point, bytes]:
        rid_j = wire_bytes(message.rid, "rid", 32)
        vss_bytes = list(message.vss)
        a_bytes = wire_bytes(message.schnorr_commitment, "schnorr_commitment", 33)
        salt = wire_bytes(message.salt, "salt", 32)
        # Figure 5, round 3, step 1: the decommitment must open V_j.
        opened = hash_commitment(
            "keygen", self._session, sender, [rid_j, *vss_bytes, a_bytes, salt]
        )
        if opened != self._commitments[sender]:
            raise VerificationError("decommitment does not open the round-1 commitment")
        commitment = VerifiableCommitment.from_bytes(CURVE, vss_bytes)
        if commitment.min_signers != self._min_signers:
            raise VerificationError("VSS polynomial has the wrong degree")
        a_point = wire_point(a_bytes, "schnorr_commitment")
        self._book.add_dealer(sender, message.share_keys, message.share_ciphertexts)
        return commitment, a_point, rid_j

    def next(
        self, broadcasts: Sequence[KeygenRound2Message]
    ) -> tuple[KeygenRound3, KeygenRound3Message]:
        """Check every peer's decommitment, echo and encrypted shares; open and check the
        shares sent to us (complaining about bad ones); answer the Schnorr challenge.

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: an echo mismatch (names the equivocating party), a decommitment
                that does not open ``V_j``, a malformed VSS or a malformed encrypted share;
                names the sender. A share that does not open or match is a complaint in
                round 3, not an abort here.
        """
        own_share = self._own_share
        if own_share is None:
            raise MisuseError("keygen round 2 already ran")
        self._own_share = None
        by_sender = collect(
            broadcasts,
            lambda m: m.header,
            protocol=KEYGEN_PROTOCOL,
            session=self._session,
            round_number=2,
            parties=self._parties,
            me=self._me,
            direct=False,
        )
        # Echo broadcast check first: every peer saw the same round-1 commitments.
        echoes = {sender: message.echo for sender, message in by_sender.items()}
        check_echo(echoes, self._echo, self._parties, self._me)
        vss: dict[PartyId, VerifiableCommitment] = {self._me: self._vss}
        schnorr_commitments: dict[PartyId, Point] = {self._me: self._nonce.commitment}
        rid = bytearray(self._rid)
        share = own_share
        for sender, message in by_sender.items():
            try:
                commitment, a_point, rid_j = self._check_peer(sender, message)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: {exc}") from exc
            schnorr_commitments[sender] = a_point
            vss[sender] = commitment
            for index, byte in enumerate(rid_j):
                rid[index] ^= byte
        # Feldman VSS: the share f_j(i) must match F_j evaluated at i; else we complain.
        complaints: list[Complaint] = []
        for sender in by_sender:
            value = self._book.open(sender, functools.partial(vss[sender].verify_share, self._me))
            if value is None:
                complaints.append(self._book.complain(sender, self._rng))
            else:
                share = share + value
        rid_bytes = bytes(rid)
        # Figure 5, round 3, step 2: the Schnorr response for F_i[0] bound to rid.
        statement = self._vss.constant
        e = sch.challenge(
            _context(self._session, self._me, self._parties),
            CURVE,
            statement,
            self._nonce.commitment,
            rid_bytes,
        )
        constant = self._own_constant
        assert constant is not None  # cleared only here, after _own_share was checked
        self._own_constant = None
        response = self._nonce.respond(e, constant)
        reply = KeygenRound3Message(
            Header(KEYGEN_PROTOCOL, WIRE_VERSION, self._session, 3, self._me, None),
            schnorr_response=response.to_bytes(),
            complaints=[c.to_wire() for c in complaints],
        )
        total = sum_commitments([vss[p] for p in self._parties])
        round3 = KeygenRound3(
            me=self._me,
            min_signers=self._min_signers,
            parties=self._parties,
            session=self._session,
            vss=vss,
            schnorr_commitments=schnorr_commitments,
            rid=rid_bytes,
            share=share,
            total=total,
            book=self._book,
            complaints=complaints,
        )
        return round3, reply


class KeygenRound3:
    """Round-3 receipt: verifies the Schnorr proofs and starts the key confirmation.

    Security: holds the party's final share ``x_i`` until :meth:`next` hands it to the
    key confirmation.
    """

    def __init__(
        self,
        *,
        me: PartyId,
        min_signers: int,
        parties: tuple[PartyId, ...],
        session: SessionId,
        vss: dict[PartyId, VerifiableCommitment],
        schnorr_commitments: dict[PartyId, Point],
        rid: bytes,
        share: Scalar,
        total: VerifiableCommitment,
        book: ShareBook,
        complaints: Sequence[Complaint],
    ) -> None:
        self._book = book
        self._complaints = tuple(complaints)
        self._me = me
        self._min_signers = min_signers
        self._parties = parties
        self._session = session
        self._vss = vss
        self._schnorr_commitments = schnorr_commitments
        self._rid = rid
        self._share: Scalar | None = share
        self._total = total

    def __repr__(self) -> str:
        return f"KeygenRound3(party={self._me}, <redacted>)"

    def next(
        self, received: Sequence[KeygenRound3Message]
    ) -> tuple[KeyConfirmation[KeygenOutput], KeyConfirmationMessage]:
        """Verify every Schnorr proof; return the confirmation round (round 4) that hands
        out this party's key-generation output once every party confirmed the same public
        key material, and its broadcast.

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: a complaint (names whom its judgement finds at fault, alike at
                every honest party), a malformed complaint list, or a Schnorr proof that
                does not verify; names the sender.
        """
        share = self._share
        if share is None:
            raise MisuseError("keygen round 3 already ran")
        self._share = None
        by_sender = collect(
            received,
            lambda m: m.header,
            protocol=KEYGEN_PROTOCOL,
            session=self._session,
            round_number=3,
            parties=self._parties,
            me=self._me,
            direct=False,
        )
        # Complaints first: every party judges them from the same public data.
        complaints = collect_complaints(
            self._complaints,
            self._me,
            {p: m.complaints for p, m in by_sender.items()},
            self._parties,
        )

        def verify(dealer: PartyId, recipient: PartyId, value: Scalar) -> None:
            self._vss[dealer].verify_share(recipient, value)

        self._book.judge(complaints, verify)
        # Figure 5, output, step 1: verify ψ_j for every peer.
        for sender, message in by_sender.items():
            try:
                z = CURVE.decode_scalar(wire_bytes(message.schnorr_response, "z", 32))
                proof = sch.SchnorrProof(self._schnorr_commitments[sender], z)
                context = _context(self._session, sender, self._parties)
                sch.verify(context, CURVE, self._vss[sender].constant, proof, self._rid)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: Schnorr proof: {exc}") from exc
        public_shares = {p: self._total.evaluate(p) for p in self._parties}
        if CURVE.base_multiply(share) != public_shares[self._me]:  # pragma: no cover
            raise ProtocolAbort([], "own share does not match the summed commitments")
        chain_code = hashlib.sha256(_CHAIN_CODE_DOMAIN + self._session + self._rid).digest()
        output = KeygenOutput(
            party=self._me,
            min_signers=self._min_signers,
            max_signers=len(self._parties),
            share=share,
            public_shares=public_shares,
            public_key=self._total.constant,
            chain_code=chain_code,
        )
        # Round 4 (key confirmation, shardvault's addition): nothing is handed out before
        # every party confirmed the same public key material.
        confirmation = KeyConfirmation(
            protocol=KEYGEN_PROTOCOL,
            session=self._session,
            round_number=4,
            me=self._me,
            parties=self._parties,
            public=output.public_digest(),
            result=output,
        )
        return confirmation, confirmation.message
