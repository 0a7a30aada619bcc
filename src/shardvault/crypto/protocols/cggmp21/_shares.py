"""Key-generation and refresh shares, broadcast encrypted, with complaints every party
judges (issue #19; :mod:`shardvault.crypto.protocols.complaints` has the construction).

Round 1 publishes each party's complaint key; round 2 broadcasts each dealer's shares
encrypted to those keys beside its decommitment; a party whose share does not open or does
not match the dealer's commitments complains in round 3, next to its Schnorr responses;
whoever receives the round-3 messages judges every complaint before anything else, and all
honest parties name the same culprits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from shardvault.crypto.errors import EncodingError, ProtocolAbort, VerificationError
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.protocols.cggmp21._common import wire_bytes
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE
from shardvault.crypto.protocols.common import PartyId, SessionId, WireValue
from shardvault.crypto.protocols.complaints import (
    Complaint,
    ComplaintKey,
    EncryptedShare,
    ShareContext,
    decode_public_key,
    decrypt_share,
    encrypt_shares,
    judge_all,
    make_complaint,
    read_complaints,
    read_shares,
)
from shardvault.crypto.rng import RandomSource


def read_complaint_key(value: WireValue) -> Point:
    """A peer's round-1 complaint key (its ``complaint_key`` field).

    Raises:
        EncodingError: not a valid point.
    """
    return decode_public_key(wire_bytes(value, "complaint_key", 33))


class ShareBook:
    """One party's view of the encrypted shares of a session: every complaint key, every
    dealer's ciphertexts, its own complaint key to open what was sent to it.

    Security: holds the session's complaint key, which opens every share sent to this
    party; ``repr`` hides it.
    """

    def __init__(
        self,
        protocol: str,
        session: SessionId,
        me: PartyId,
        parties: tuple[PartyId, ...],
        key: ComplaintKey,
        keys: Mapping[PartyId, Point],
    ) -> None:
        self._protocol = protocol
        self._session = session
        self._me = me
        self._parties = parties
        self._key = key
        self._keys = dict(keys)
        self._received: dict[tuple[PartyId, PartyId], EncryptedShare] = {}

    def __repr__(self) -> str:
        return f"ShareBook({self._protocol}, party={self._me}, <redacted>)"

    def encrypt(
        self, share_of: Callable[[PartyId], Scalar], rng: RandomSource
    ) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """This party's shares for every peer, encrypted: the round-2 fields ``share_keys``
        and ``share_ciphertexts``; they are recorded as received from ourselves, so
        complaints about them are judged alike."""
        keys, ciphertexts = encrypt_shares(
            self._protocol,
            self._session,
            self._me,
            self._parties,
            self._keys,
            lambda peer: share_of(peer).to_bytes(),
            rng,
        )
        self.add_dealer(self._me, keys, ciphertexts)
        return tuple(keys), tuple(ciphertexts)

    def add_dealer(
        self, dealer: PartyId, keys: Sequence[bytes], ciphertexts: Sequence[bytes]
    ) -> None:
        """Record a dealer's round-2 ciphertexts (its ``share_keys`` and
        ``share_ciphertexts`` fields).

        Raises:
            EncodingError: a wrong count or a ciphertext anyone can see is malformed.
        """
        entries = read_shares(
            dealer,
            self._parties,
            list(keys),
            list(ciphertexts),
            CURVE.scalar_length,
        )
        for recipient, entry in entries.items():
            self._received[(dealer, recipient)] = entry

    def open(self, dealer: PartyId, verify: Callable[[Scalar], None]) -> Scalar | None:
        """The share ``dealer`` sent us, checked by ``verify`` (which raises
        ``VerificationError``); ``None`` when it does not open, is not a scalar or fails
        the check (then :meth:`complain`)."""
        entry = self._received[(dealer, self._me)]
        plaintext = decrypt_share(
            ShareContext(self._protocol, self._session, dealer, self._me), self._key, entry
        )
        if plaintext is None:
            return None
        try:
            value = CURVE.decode_scalar(plaintext)
            verify(value)
        except (EncodingError, VerificationError):
            return None
        return value

    def complain(self, dealer: PartyId, rng: RandomSource) -> Complaint:
        """Our complaint about the share ``dealer`` sent us."""
        context = ShareContext(self._protocol, self._session, dealer, self._me)
        return make_complaint(context, self._key, self._received[(dealer, self._me)], rng)

    def judge(
        self,
        complaints: Sequence[tuple[PartyId, Complaint]],
        verify: Callable[[PartyId, PartyId, Scalar], None],
    ) -> None:
        """Judge every complaint; ``verify(dealer, recipient, share)`` is the public check
        (raises ``VerificationError``).

        Raises:
            ProtocolAbort: there is a complaint; names every culprit the judgement finds.
        """
        if not complaints:
            return

        def is_valid(dealer: PartyId, recipient: PartyId, plaintext: bytes) -> bool:
            try:
                verify(dealer, recipient, CURVE.decode_scalar(plaintext))
            except (EncodingError, VerificationError):
                return False
            return True

        culprits = judge_all(
            self._protocol,
            self._session,
            self._parties,
            complaints,
            self._keys,
            self._received,
            is_valid,
        )
        raise ProtocolAbort(
            culprits,
            "a complaint about a share: "
            + ", ".join(f"party {c} against party {x.accused}" for c, x in complaints),
        )


def collect_complaints(
    own: Sequence[Complaint],
    me: PartyId,
    lists: Mapping[PartyId, WireValue],
    parties: tuple[PartyId, ...],
) -> list[tuple[PartyId, Complaint]]:
    """Every complaint of a round-3 phase, ours first, then by party; ``lists`` holds each
    peer's ``complaints`` field as received.

    Raises:
        ProtocolAbort: a party's complaint list is malformed; names it.
    """
    out = [(me, c) for c in own]
    for sender in parties:
        if sender not in lists:
            continue
        try:
            complaints = read_complaints(lists[sender], parties)
        except EncodingError as exc:
            raise ProtocolAbort([sender], f"party {sender}: malformed complaints: {exc}") from exc
        out.extend((sender, c) for c in complaints)
    return out
