"""Wire messages of FROST key generation and signing.

Each message is a frozen dataclass with a :class:`~shardvault.crypto.protocols.common.Header`
and its payload in encoded form (points and scalars as RFC 9591 serializes them). Decoding a
message checks its structure only; the receiving round validates the content (points on
the curve, scalars canonical) so that it can name the sender when something is wrong.

Round numbers: DKG round 1 (broadcast) is 1, DKG round 2 (direct) is 2; signing round 1
(commitments, broadcast) is 1, signing round 2 (signature shares, broadcast) is 2. The
protocol name differs between DKG and signing, so a message of one is never taken for the
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from shardvault.crypto.protocols.common import (
    HeaderedMessage,
    WireValue,
    require_bytes,
    require_bytes_list,
)

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
    contribution itself is revealed in round 2)."""

    commitment: tuple[bytes, ...]
    proof_r: bytes
    proof_mu: bytes
    chain_code_commitment: bytes

    _payload_fields: ClassVar[tuple[str, ...]] = (
        "commitment",
        "proof_r",
        "proof_mu",
        "chain_code_commitment",
    )

    def _payload(self) -> dict[str, WireValue]:
        return {
            "commitment": list(self.commitment),
            "proof_r": self.proof_r,
            "proof_mu": self.proof_mu,
            "chain_code_commitment": self.chain_code_commitment,
        }

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
        )


@dataclass(frozen=True, slots=True)
class DkgRound2Message(HeaderedMessage):
    """Round 2 direct message of KeyGen: the sender's secret share ``f_sender(recipient)``,
    its view of every round-1 broadcast (one digest per sender), the echo that exposes a
    party who showed different broadcasts to different peers, and the opening of its
    round-1 chain-code commitment (its 32-byte contribution and the 32-byte nonce).

    Security: ``share`` is secret; the transport encrypts direct messages to the recipient
    (DESIGN.md invariant 5) and ``repr`` hides it.
    """

    share: bytes
    echo: tuple[bytes, ...]
    chain_code_part: bytes
    chain_code_nonce: bytes

    _payload_fields: ClassVar[tuple[str, ...]] = (
        "share",
        "echo",
        "chain_code_part",
        "chain_code_nonce",
    )

    def _payload(self) -> dict[str, WireValue]:
        return {
            "share": self.share,
            "echo": list(self.echo),
            "chain_code_part": self.chain_code_part,
            "chain_code_nonce": self.chain_code_nonce,
        }

    def __repr__(self) -> str:
        return f"DkgRound2Message({self.header!r}, share=<redacted>)"

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            require_bytes(fields, "share"),
            tuple(require_bytes_list(fields, "echo")),
            require_bytes(fields, "chain_code_part", 32),
            require_bytes(fields, "chain_code_nonce", 32),
        )


@dataclass(frozen=True, slots=True)
class CommitmentMessage(HeaderedMessage):
    """Signing round 1 broadcast (RFC 9591 §5.1): the hiding and binding nonce commitments."""

    hiding: bytes
    binding: bytes

    _payload_fields: ClassVar[tuple[str, ...]] = ("hiding", "binding")

    def _payload(self) -> dict[str, WireValue]:
        return {"hiding": self.hiding, "binding": self.binding}

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

    _payload_fields: ClassVar[tuple[str, ...]] = ("share", "message_digest")

    def _payload(self) -> dict[str, WireValue]:
        return {"share": self.share, "message_digest": self.message_digest}

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header, require_bytes(fields, "share"), require_bytes(fields, "message_digest", 32)
        )
