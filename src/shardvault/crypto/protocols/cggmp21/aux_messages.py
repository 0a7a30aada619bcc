"""Wire messages of CGGMP21's auxiliary-info phase.

Source: CGGMP21 (ePrint 2021/060), Figure 7 ("Auxiliary Info. & Key Refresh"), restricted
to the auxiliary information. Round numbers: 1 is the commitment ``V_i`` (broadcast), 2 the
decommitment of ``(N_i, s_i, t_i, ψ̂_i, ρ_i, u_i)`` with an echo of every round-1
commitment (broadcast), 3 the Πmod and Πfac proofs (direct, one per recipient).

Each message is a frozen dataclass with a :class:`~shardvault.crypto.protocols.common.Header`;
integers travel as CBOR integers (bignums where large) and proofs as their own canonical
CBOR byte strings. Decoding checks structure only; the receiving round checks content so
it can name the sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from shardvault.crypto.protocols.common import (
    HeaderedMessage,
    require_bytes,
    require_bytes_list,
    require_int,
)

AUX_INFO_PROTOCOL = "cggmp21/aux-info"
"""Protocol name in the header of every auxiliary-info message."""


@dataclass(frozen=True, slots=True)
class AuxRound1Message(HeaderedMessage):
    """Figure 7, round 1: the commitment ``V_i`` to the sender's round-2 reveal (32 bytes)."""

    commitment: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(header, require_bytes(fields, "commitment", 32))


@dataclass(frozen=True, slots=True)
class AuxRound2Message(HeaderedMessage):
    """Figure 7, round 2: the reveal ``(N_i, s_i, t_i, ψ̂_i, ρ_i, u_i)`` and the echo, one
    32-byte digest per party (in party order) of the round-1 commitment as the sender
    received it."""

    n: int
    s: int
    t: int
    prm_proof: bytes
    rho: bytes
    u: bytes
    echo: tuple[bytes, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            require_int(fields, "n"),
            require_int(fields, "s"),
            require_int(fields, "t"),
            require_bytes(fields, "prm_proof"),
            require_bytes(fields, "rho", 32),
            require_bytes(fields, "u", 32),
            tuple(require_bytes_list(fields, "echo")),
        )


@dataclass(frozen=True, slots=True)
class AuxRound3Message(HeaderedMessage):
    """Figure 7, round 3: Πmod for the sender's modulus and Πfac made against the
    recipient's ring-Pedersen parameters."""

    mod_proof: bytes
    fac_proof: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(header, require_bytes(fields, "mod_proof"), require_bytes(fields, "fac_proof"))
