"""What CGGMP21 presigning's rounds and its identification rounds share.

Source: CGGMP21 (ePrint 2021/060), the three-round presigning (Figure 7 of the revisions
with Πenc/Πaff-g/Πlog*) and its identifiable abort (Figure 8, output "Otherwise"); see
:mod:`~shardvault.crypto.protocols.cggmp21.presign` for the rounds and
:mod:`~shardvault.crypto.protocols.cggmp21.presign_identify` for the identification. Here:
the session every round of one party shares, the digest each signer's round-3 values are
compared by, and the values a round hands to an identification round (the nonce-side
reveal, the χ identification's public inputs, the agreed public values each judges
against).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.protocols.cggmp21._common import H, collect
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE, KeyShare
from shardvault.crypto.protocols.cggmp21.messages import PRESIGN_PROTOCOL
from shardvault.crypto.protocols.common import WIRE_VERSION, Header, PartyId, SessionId, WireValue
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk.context import CrtExp, ProofContext

Q = CURVE.order


def presign_binding(key: KeyShare, signers: tuple[PartyId, ...]) -> bytes:
    return hashlib.sha256(
        b"shardvault/cggmp21/presign/binding/v1"
        + key.key_id
        + key.epoch.to_bytes(8, "big")
        + key.aux_binding(signers)
    ).digest()


@dataclass(frozen=True, slots=True)
class PresignSession:
    """What every presigning round of one party shares (all public, except ``key``)."""

    key: KeyShare
    signers: tuple[PartyId, ...]
    session: SessionId
    binding: bytes
    crt: CrtExp

    @property
    def me(self) -> PartyId:
        return self.key.party

    @property
    def peers(self) -> tuple[PartyId, ...]:
        return tuple(p for p in self.signers if p != self.key.party)

    def context(self, prover: int) -> ProofContext:
        return ProofContext(bytes(self.session), prover, CURVE.name, self.binding)

    def header(self, round_number: int, recipient: PartyId | None) -> Header:
        return Header(
            PRESIGN_PROTOCOL, WIRE_VERSION, self.session, round_number, self.me, recipient
        )

    def collect(self, received: Sequence[H], round_number: int, direct: bool) -> dict[PartyId, H]:
        return collect(
            received,
            lambda m: m.header,
            protocol=PRESIGN_PROTOCOL,
            session=self.session,
            round_number=round_number,
            parties=self.signers,
            me=self.me,
            direct=direct,
        )


class NonceReveal:
    """What a party reveals if presigning's δ check fails: ``k_i``, ``γ_i`` and, per peer,
    the γ-MtA mask ``β_{i→j}`` with the nonce and ciphertext ``F_{j,i}``.

    Security: these values concern only this presignature's nonce, never the key: the
    x-MtA masks ``β̂`` and ``χ_i`` stay secret (taurusgroup/multi-party-sig reveals the same
    nonce-side values in its presigning abort round). They are revealed only after an
    abort, when the presignature is already dead.
    """

    __slots__ = ("gamma", "gamma_mta", "k")

    def __init__(
        self, k: Scalar, gamma: Scalar, gamma_mta: dict[PartyId, tuple[int, int, int]]
    ) -> None:
        self.k = k
        self.gamma = gamma
        self.gamma_mta = gamma_mta

    def __repr__(self) -> str:
        return "NonceReveal(<redacted>)"


def round3_view(delta: Scalar, Delta: Point, S: Point, F_sent: list[int]) -> bytes:
    """The digest of one signer's round-3 values ``(δ_j, Δ_j, S_j, [F_{l,j}]_l)`` (the
    ``F`` entries non-negative): what signers compare in round 4 and the signing round
    echoes."""
    h = hashlib.sha256(b"shardvault/cggmp21/presign/round3-view/v2")
    h.update(delta.to_bytes() + Delta.to_bytes() + S.to_bytes())
    for value in F_sent:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        h.update(len(raw).to_bytes(4, "big") + raw)
    return h.digest()


def round3_context(s: PresignSession, prover: PartyId, view: bytes) -> ProofContext:
    """The context of ``prover``'s round-3 Πlog* (``ψ''``): the session's, with the digest of
    the round-3 values it was sent with bound in.

    Only ``prover`` can make that proof (it proves knowledge of its ``k``), so a peer that
    shows it in round 4 shows what ``prover`` sent it: a signer that sent different values
    to different peers is exposed with its own proofs, and a peer cannot make up what it
    received.
    """
    binding = hashlib.sha256(
        b"shardvault/cggmp21/presign/round3-binding/v1" + s.binding + view
    ).digest()
    return ProofContext(bytes(s.session), prover, CURVE.name, binding)


@dataclass(frozen=True, slots=True)
class PublicRound3:
    """The agreed public values of presigning that identification judges against."""

    Gamma: Point
    Gammas: dict[PartyId, Point]
    deltas: dict[PartyId, Scalar]
    Deltas: dict[PartyId, Point]
    F_sent: dict[PartyId, list[int]]


class ChiInputs:
    """The public x-MtA values a χ identification re-broadcasts (``D̂_{i,j}``, ``F̂_{i,j}`` and
    ``ψ̂_{i,j}`` received, ``F̂_{j,i}`` sent), and the random source for its proofs.

    Security: holds nothing secret; the key share the proofs need is read from the key
    share only when an identification actually runs.
    """

    __slots__ = ("hat_received", "hat_sent", "rng")

    def __init__(
        self,
        hat_received: dict[PartyId, tuple[int, int, WireValue]],
        hat_sent: dict[PartyId, int],
        rng: RandomSource,
    ) -> None:
        self.hat_received = hat_received
        self.hat_sent = hat_sent
        self.rng = rng

    def __repr__(self) -> str:
        return f"ChiInputs(peers={sorted(self.hat_sent)})"


@dataclass(frozen=True, slots=True)
class PublicChi:
    """The agreed public values the χ identification judges against."""

    Gamma: Point
    Ks: dict[PartyId, int]
    Ss: dict[PartyId, Point]
