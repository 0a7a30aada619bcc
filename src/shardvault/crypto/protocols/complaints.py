"""Shares encrypted so that a complaint about one can be checked by every party.

The problem (issue #19). Key-generation shares used to travel as direct messages encrypted
by the channel with ``crypto_box`` under the static X25519 keys of sender and recipient.
Only the recipient could open one, so (a) a recipient could claim a dealer's good share
was bad and have the dealer named on its word alone, and (b) a dealer could send a validly
signed ciphertext that did not decrypt, and nobody could be named.

The construction. Every party draws a fresh *complaint key* ``y`` for the session and
publishes ``Y = y·G`` on secp256k1 (libsecp256k1 through :mod:`shardvault.crypto.group`)
in the protocol's first broadcast, which the echo round agrees. A dealer encrypts the
share for party ``j`` as

* ``R = r·G`` for a fresh ``r``, ``S = r·Y_j``;
* ``k = SHA-256(KEY_DOMAIN, protocol, session, dealer, recipient, R, S)`` (each value
  length-prefixed);
* ChaCha20-Poly1305 (pyca/cryptography) under ``k`` with a zero nonce (each key seals one
  message) and the same context and ``R`` as associated data,

and broadcasts ``(R, ciphertext)``. The recipient computes ``S = y·R`` and opens it. When
the ciphertext does not open, the plaintext is not a share, or the share fails the
protocol's public check (Feldman VSS against the dealer's commitments), the recipient
broadcasts a *complaint*: the ``(R, ciphertext)`` it received, ``S``, and a Chaum-Pedersen
proof (:mod:`shardvault.crypto.zk.dleq`) that ``log_G(Y_j) = log_R(S)``. Anyone then judges
it (:func:`judge`) with public data only:

1. the ``(R, ciphertext)`` in the complaint differs from the dealer's broadcast as we
   received it: the dealer equivocated or the complainer lies; both are named (the
   co-signer's signed envelopes settle which, as for an echo);
2. a proof that does not verify: the complainer;
3. a ciphertext that does not open under ``k``, a plaintext that is not a share, or a share
   that fails the public check: the dealer;
4. otherwise the share was good: the complainer.

What a complaint reveals. ``S`` opens that one ciphertext; a false complainer reveals the
good share it was sent, and the session aborts anyway. The key ``y`` is used for one
session only, so nothing revealed reaches another session, and a dealer that copies
another dealer's ``R`` learns at most a share of a session that then aborts.

Pure: no I/O; randomness comes in as an argument.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.group import SECP256K1, Point
from shardvault.crypto.protocols.common import (
    PartyId,
    SessionId,
    WireValue,
    require_bytes,
    require_int,
)
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk import dleq

GROUP = SECP256K1
"""The group of complaint keys and ephemeral keys, whatever the protocol's own curve."""

KEY_DOMAIN = b"shardvault/complaint-share/key/v1"
"""Domain tag of the symmetric key derived from ``S``."""

AD_DOMAIN = b"shardvault/complaint-share/ad/v1"
"""Domain tag of the associated data of every share ciphertext."""

PROOF_DOMAIN = b"shardvault/complaint-share/dleq/v1"
"""Domain tag of the context a complaint's DLEQ proof binds."""

TAG_BYTES = 16
"""The Poly1305 tag that every ciphertext carries beyond its plaintext."""

_ZERO_NONCE = bytes(12)
_COMPLAINT_FIELDS = ("accused", "ephemeral_key", "ciphertext", "shared_secret", "proof")


def _framed(*values: bytes) -> bytes:
    return b"".join(len(v).to_bytes(8, "big") + v for v in values)


@dataclass(frozen=True, slots=True)
class ShareContext:
    """Who sent which share to whom, in which session of which protocol."""

    protocol: str
    session: SessionId
    dealer: PartyId
    recipient: PartyId

    def encode(self) -> bytes:
        """The context as length-prefixed bytes."""
        return _framed(
            self.protocol.encode(),
            bytes(self.session),
            int(self.dealer).to_bytes(2, "big"),
            int(self.recipient).to_bytes(2, "big"),
        )


@dataclass(frozen=True, slots=True)
class EncryptedShare:
    """A dealer's share for one recipient: the ephemeral key ``R`` and the ciphertext."""

    ephemeral_key: bytes
    ciphertext: bytes


class ComplaintKey:
    """A party's complaint key for one session: the secret ``y`` and ``public = y·G``.

    Security: ``y`` opens every share sent to this party in this session; ``repr`` hides
    it and it never leaves the object. Draw a new one for every session.
    """

    __slots__ = ("_secret", "public")

    def __init__(self, rng: RandomSource) -> None:
        self._secret = GROUP.random_scalar(rng)
        self.public: Point = GROUP.base_multiply(self._secret)

    def __repr__(self) -> str:
        return "ComplaintKey(<redacted>)"

    def shared_secret(self, ephemeral_key: Point) -> Point:
        """``S = y·R``."""
        return ephemeral_key * self._secret

    def prove(self, context: ShareContext, ephemeral_key: Point, rng: RandomSource) -> bytes:
        """The DLEQ proof that ``S = y·R`` matches ``Y``, bound to ``context``."""
        return dleq.prove(
            GROUP, _proof_context(context), self._secret, ephemeral_key, rng
        ).to_bytes()


def _proof_context(context: ShareContext) -> bytes:
    return PROOF_DOMAIN + context.encode()


def _symmetric_key(context: ShareContext, ephemeral_key: Point, shared: Point) -> bytes:
    return hashlib.sha256(
        KEY_DOMAIN + _framed(context.encode(), ephemeral_key.to_bytes(), shared.to_bytes())
    ).digest()


def _associated_data(context: ShareContext, ephemeral_key: bytes) -> bytes:
    return AD_DOMAIN + _framed(context.encode(), ephemeral_key)


def _open(context: ShareContext, share: EncryptedShare, ephemeral: Point, shared: Point) -> bytes:
    """The plaintext; raises ``InvalidTag`` when the ciphertext does not open."""
    key = _symmetric_key(context, ephemeral, shared)
    return ChaCha20Poly1305(key).decrypt(
        _ZERO_NONCE, share.ciphertext, _associated_data(context, share.ephemeral_key)
    )


def decode_public_key(data: bytes) -> Point:
    """A peer's complaint key or ephemeral key.

    Raises:
        EncodingError: not a valid compressed secp256k1 point (the identity has none).
    """
    return GROUP.decode_point(data)


def encrypt_share(
    context: ShareContext, recipient_key: Point, plaintext: bytes, rng: RandomSource
) -> EncryptedShare:
    """Encrypt ``plaintext`` to the holder of ``recipient_key`` (see the module doc)."""
    r = GROUP.random_scalar(rng)
    ephemeral = GROUP.base_multiply(r)
    key = _symmetric_key(context, ephemeral, recipient_key * r)
    encoded = ephemeral.to_bytes()
    ciphertext = ChaCha20Poly1305(key).encrypt(
        _ZERO_NONCE, plaintext, _associated_data(context, encoded)
    )
    return EncryptedShare(encoded, ciphertext)


def check_structure(share: EncryptedShare, plaintext_bytes: int) -> None:
    """Check what anyone can check of a dealer's ciphertext: ``R`` is a valid point and the
    ciphertext has the length of a ``plaintext_bytes`` share.

    Raises:
        EncodingError: either is wrong (the dealer's fault, visible to every party).
    """
    decode_public_key(share.ephemeral_key)
    if len(share.ciphertext) != plaintext_bytes + TAG_BYTES:
        raise EncodingError(f"a share ciphertext must be {plaintext_bytes + TAG_BYTES} bytes")


def decrypt_share(context: ShareContext, key: ComplaintKey, share: EncryptedShare) -> bytes | None:
    """The plaintext of a share sent to us, or ``None`` when it does not open (then
    complain with :func:`make_complaint`).

    Raises:
        EncodingError: ``R`` is not a valid point (see :func:`check_structure`).
    """
    ephemeral = decode_public_key(share.ephemeral_key)
    try:
        return _open(context, share, ephemeral, key.shared_secret(ephemeral))
    except InvalidTag:
        return None


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint by the party it is published under against ``accused``: the share as
    received, ``S`` and the DLEQ proof."""

    accused: PartyId
    share: EncryptedShare
    shared_secret: bytes
    proof: bytes

    def to_wire(self) -> dict[str, WireValue]:
        """The complaint as wire fields."""
        return {
            "accused": int(self.accused),
            "ephemeral_key": self.share.ephemeral_key,
            "ciphertext": self.share.ciphertext,
            "shared_secret": self.shared_secret,
            "proof": self.proof,
        }

    @classmethod
    def from_wire(cls, value: WireValue) -> Complaint:
        """Decode the structure (the judge checks the content).

        Raises:
            EncodingError: not a map of exactly the complaint fields, or a field of the
                wrong type.
        """
        if not isinstance(value, dict) or sorted(value) != sorted(_COMPLAINT_FIELDS):
            raise EncodingError("a complaint must have exactly the complaint fields")
        fields: Mapping[str, WireValue] = value
        return cls(
            PartyId(require_int(fields, "accused")),
            EncryptedShare(
                require_bytes(fields, "ephemeral_key"), require_bytes(fields, "ciphertext")
            ),
            require_bytes(fields, "shared_secret"),
            require_bytes(fields, "proof"),
        )


def make_complaint(
    context: ShareContext, key: ComplaintKey, share: EncryptedShare, rng: RandomSource
) -> Complaint:
    """A complaint about the share ``context.dealer`` sent us.

    Raises:
        EncodingError: ``R`` is not a valid point (a structural fault, named directly).
    """
    ephemeral = decode_public_key(share.ephemeral_key)
    shared = key.shared_secret(ephemeral)
    if shared.is_identity():  # pragma: no cover - y and R are both of prime order
        raise MisuseError("the shared secret is the identity")
    return Complaint(context.dealer, share, shared.to_bytes(), key.prove(context, ephemeral, rng))


def judge(
    context: ShareContext,
    complaint: Complaint,
    complainer_key: Point,
    received: EncryptedShare,
    is_valid_share: Callable[[bytes], bool],
) -> tuple[PartyId, ...]:
    """Who is at fault for ``complaint`` (by ``context.recipient`` against
    ``context.dealer``), from public data only.

    ``received`` is the dealer's ciphertext for the complainer as this party received it;
    ``is_valid_share`` is the protocol's public check of a plaintext share (it must return
    ``False``, not raise, for a plaintext that is not a share).

    Returns the culprits: the dealer, the complainer, or both when the complainer shows
    another ciphertext than the one we received.
    """
    dealer, complainer = context.dealer, context.recipient
    if complaint.share != received:
        return tuple(sorted((dealer, complainer)))
    try:
        ephemeral = decode_public_key(received.ephemeral_key)
    except EncodingError:
        return (dealer,)
    try:
        shared = GROUP.decode_point(complaint.shared_secret)
        proof = dleq.DleqProof.from_bytes(GROUP, complaint.proof)
        dleq.verify(GROUP, _proof_context(context), complainer_key, ephemeral, shared, proof)
    except (EncodingError, VerificationError):
        return (complainer,)
    try:
        plaintext = _open(context, received, ephemeral, shared)
    except InvalidTag:
        return (dealer,)
    return (complainer,) if is_valid_share(plaintext) else (dealer,)


def encrypt_shares(
    protocol: str,
    session: SessionId,
    dealer: PartyId,
    parties: tuple[PartyId, ...],
    keys: Mapping[PartyId, Point],
    plaintext_of: Callable[[PartyId], bytes],
    rng: RandomSource,
) -> tuple[list[bytes], list[bytes]]:
    """A dealer's shares for every other party, in party order, each encrypted to that
    party's complaint key: the ephemeral keys and the ciphertexts, as two wire lists."""
    encrypted = [
        encrypt_share(
            ShareContext(protocol, session, dealer, recipient),
            keys[recipient],
            plaintext_of(recipient),
            rng,
        )
        for recipient in parties
        if recipient != dealer
    ]
    return [e.ephemeral_key for e in encrypted], [e.ciphertext for e in encrypted]


def read_shares(
    dealer: PartyId,
    parties: tuple[PartyId, ...],
    ephemeral_keys: Sequence[bytes],
    ciphertexts: Sequence[bytes],
    plaintext_bytes: int,
) -> dict[PartyId, EncryptedShare]:
    """A dealer's broadcast ciphertexts by recipient, each checked as far as anyone can
    (:func:`check_structure`).

    Raises:
        EncodingError: a wrong count, an ephemeral key that is not a point, or a ciphertext
            of the wrong length (the dealer's fault, visible to every party).
    """
    recipients = [p for p in parties if p != dealer]
    if len(ephemeral_keys) != len(recipients) or len(ciphertexts) != len(recipients):
        raise EncodingError(f"expected {len(recipients)} encrypted shares")
    out = {
        recipient: EncryptedShare(key, ciphertext)
        for recipient, key, ciphertext in zip(recipients, ephemeral_keys, ciphertexts, strict=True)
    }
    for share in out.values():
        check_structure(share, plaintext_bytes)
    return out


def read_complaints(value: WireValue, parties: tuple[PartyId, ...]) -> tuple[Complaint, ...]:
    """A party's list of complaints, at most one per other dealer.

    Raises:
        EncodingError: not a list of complaints, more than one against a dealer, or more
            complaints than there are other parties (judging stays bounded).
    """
    if not isinstance(value, list):
        raise EncodingError("complaints must be a list")
    if len(value) >= len(parties):
        raise EncodingError("more complaints than other parties")
    complaints = tuple(Complaint.from_wire(item) for item in value)
    accused = [c.accused for c in complaints]
    if len(set(accused)) != len(accused):
        raise EncodingError("two complaints against one dealer")
    return complaints


def judge_all(
    protocol: str,
    session: SessionId,
    parties: tuple[PartyId, ...],
    complaints: Sequence[tuple[PartyId, Complaint]],
    keys: Mapping[PartyId, Point],
    received: Mapping[tuple[PartyId, PartyId], EncryptedShare],
    is_valid_share: Callable[[PartyId, PartyId, bytes], bool],
) -> set[PartyId]:
    """The culprits of every ``(complainer, complaint)``: the union of :func:`judge` over
    them, from public data every honest party holds alike.

    ``keys`` are every party's complaint keys; ``received`` every dealer's ciphertext for
    every recipient as this party received it (keyed ``(dealer, recipient)``, our own
    included); ``is_valid_share(dealer, recipient, plaintext)`` the protocol's public
    check. A complaint against a party outside the set, or against its own complainer,
    names the complainer.
    """
    culprits: set[PartyId] = set()
    for complainer, complaint in complaints:
        dealer = complaint.accused
        if dealer not in parties or dealer == complainer:
            culprits.add(complainer)
            continue
        culprits.update(
            judge(
                ShareContext(protocol, session, dealer, complainer),
                complaint,
                keys[complainer],
                received[(dealer, complainer)],
                functools.partial(is_valid_share, dealer, complainer),
            )
        )
    return culprits


__all__ = [
    "GROUP",
    "TAG_BYTES",
    "Complaint",
    "ComplaintKey",
    "EncryptedShare",
    "ShareContext",
    "check_structure",
    "decode_public_key",
    "decrypt_share",
    "encrypt_share",
    "encrypt_shares",
    "judge",
    "judge_all",
    "make_complaint",
    "read_complaints",
    "read_shares",
]
