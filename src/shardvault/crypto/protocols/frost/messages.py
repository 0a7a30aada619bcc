"""Wire messages of FROST key generation and signing.

Each message is a frozen dataclass with a :class:`~shardvault.crypto.protocols.common.Header`
and its payload in encoded form (points and scalars as RFC 9591 serializes them). Decoding a
message checks its structure only; the receiving round validates the content (points on
the curve, scalars canonical) so that it can name the sender when something is wrong.

Round numbers: DKG round 1 (broadcast) is 1, DKG round 2 (broadcast, the shares encrypted
to each recipient's complaint key) is 2, DKG round 3 (broadcast, key confirmation or
complaints) is 3; signing round 1 (commitments, broadcast) is 1, signing round 2 (signature
shares, broadcast) is 2. The protocol name differs between DKG and signing, so a message of
one is never taken for the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from shardvault.crypto.errors import EncodingError
from shardvault.crypto.protocols.common import (
    HeaderedMessage,
    WireValue,
    require_bytes,
    require_bytes_list,
)
from shardvault.crypto.protocols.complaints import Complaint

DKG_PROTOCOL = "frost/dkg"
"""Protocol name in the header of every FROST key-generation message."""

SIGN_PROTOCOL = "frost/sign"
"""Protocol name in the header of every FROST signing message."""


@dataclass(frozen=True, slots=True)
class DkgRound1Message(HeaderedMessage):
    """Round 1 broadcast of the FROST paper's KeyGen: Feldman commitments to the sender's
    polynomial, its proof of knowledge ``(R, mu)`` of the constant term, and a hash
    commitment to its contribution to the chain code used for BIP32-style derivation
    (:func:`~shardvault.crypto.protocols.frost.dkg.chain_code_commitment`; the
    contribution itself is revealed in round 2), and the sender's complaint key for this
    session (:mod:`~shardvault.crypto.protocols.complaints`), to which round 2 encrypts
    its shares."""

    commitment: tuple[bytes, ...]
    proof_r: bytes
    proof_mu: bytes
    chain_code_commitment: bytes
    complaint_key: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            tuple(require_bytes_list(fields, "commitment")),
            require_bytes(fields, "proof_r"),
            require_bytes(fields, "proof_mu"),
            require_bytes(fields, "chain_code_commitment", 32),
            require_bytes(fields, "complaint_key", 33),
        )


@dataclass(frozen=True, slots=True)
class DkgRound2Message(HeaderedMessage):
    """Round 2 broadcast of KeyGen: the sender's share ``f_sender(l)`` for every other party
    ``l`` (in identifier order), each encrypted to ``l``'s complaint key
    (:func:`~shardvault.crypto.protocols.complaints.encrypt_share`: ``share_keys`` holds
    the ephemeral keys, ``share_ciphertexts`` the ciphertexts); its view of every round-1
    broadcast (one digest per sender), the echo that exposes a party who showed different
    broadcasts to different peers; and the opening of its round-1 chain-code commitment
    (its 32-byte contribution and the 32-byte nonce).

    The shares are broadcast, encrypted, so that a complaint about one can be judged by
    every party against the same ciphertext.
    """

    echo: tuple[bytes, ...]
    chain_code_part: bytes
    chain_code_nonce: bytes
    share_keys: tuple[bytes, ...]
    share_ciphertexts: tuple[bytes, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            tuple(require_bytes_list(fields, "echo")),
            require_bytes(fields, "chain_code_part", 32),
            require_bytes(fields, "chain_code_nonce", 32),
            tuple(require_bytes_list(fields, "share_keys")),
            tuple(require_bytes_list(fields, "share_ciphertexts")),
        )


@dataclass(frozen=True, slots=True)
class DkgRound3Message(HeaderedMessage):
    """Round 3 broadcast of the DKG: either the key confirmation (the 32-byte digest of
    :func:`~shardvault.crypto.protocols.confirmation.confirmation_digest`, no complaints)
    or, from a party that received a bad share, no confirmation (empty) and one complaint
    per dealer at fault (:class:`~shardvault.crypto.protocols.complaints.Complaint`)."""

    confirmation: bytes
    complaints: tuple[Complaint, ...]

    def _payload(self) -> dict[str, WireValue]:
        return {
            "confirmation": self.confirmation,
            "complaints": [c.to_wire() for c in self.complaints],
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure
        (a confirmation together with complaints, or neither, included)."""
        header, fields = cls._fields(data)
        confirmation = require_bytes(fields, "confirmation")
        raw = fields.get("complaints")
        if not isinstance(raw, list):
            raise EncodingError("field complaints must be a list")
        complaints = tuple(Complaint.from_wire(c) for c in raw)
        if (len(confirmation) == 32) == bool(complaints) or len(confirmation) not in (0, 32):
            raise EncodingError("a round-3 message carries a confirmation or complaints")
        return cls(header, confirmation, complaints)


@dataclass(frozen=True, slots=True)
class CommitmentMessage(HeaderedMessage):
    """Signing round 1 broadcast (RFC 9591 §5.1): the hiding and binding nonce commitments."""

    hiding: bytes
    binding: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(header, require_bytes(fields, "hiding"), require_bytes(fields, "binding"))


@dataclass(frozen=True, slots=True)
class SignatureShareMessage(HeaderedMessage):
    """Signing round 2 broadcast (RFC 9591 §5.2): the sender's signature share and the
    digest of what it signed (:func:`~shardvault.crypto.protocols.frost.signing.message_digest`:
    the message and the taproot merkle root), so that signers given different messages
    report a mismatch instead of naming each other."""

    share: bytes
    message_digest: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header, require_bytes(fields, "share"), require_bytes(fields, "message_digest", 32)
        )
