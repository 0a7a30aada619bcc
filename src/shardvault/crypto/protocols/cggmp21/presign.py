"""CGGMP21 presigning (three rounds, Πenc, Πaff-g, Πlog*) as sans-I/O round objects.

Source: CGGMP21 (ePrint 2021/060), the three-round "Presigning" protocol (Figure 7 of the
revisions with Πenc/Πaff-g/Πlog*), for a signer set ``S`` of a ``t``-of-``n`` key: each
signer uses its additive share ``w_i = λ_i·x_i`` and the public ``W_j = λ_j·X_j`` in place of
the paper's ``x_i``/``X_j`` (LFDT-Lockness/cggmp21 specification, threshold signing).

Round 1. ``k_i, γ_i ← F_q``; ``K_i = enc_i(k_i; ρ_i)``, ``G_i = enc_i(γ_i; ν_i)``; broadcast
  ``(K_i, G_i)`` (bound to the key id and epoch) and send ``ψ^0_{j,i}`` (Πenc for ``K_i``
  under ``P_j``'s ring-Pedersen setup) to each ``P_j``.
Round 2. Verify ``ψ^0_{i,j}``. ``Γ_i = γ_i·G``; for each ``j``, ``β, β̂ ← ±2^ℓ'`` and
  ``D_{j,i} = γ_i ⊙ K_j ⊕ enc_j(β)``, ``F_{j,i} = enc_i(β)``, ``D̂_{j,i} = w_i ⊙ K_j ⊕ enc_j(β̂)``,
  ``F̂_{j,i} = enc_i(β̂)``, with Πaff-g proofs ``ψ``, ``ψ̂`` and Πlog* ``ψ'`` for ``(G_i, Γ_i)``.
  The message also echoes every round-1 broadcast.
Round 3. Verify the echo and ``ψ``, ``ψ̂``, ``ψ'``. ``Γ = Σ Γ_j``, ``Δ_i = k_i·Γ``,
  ``δ_i = γ_i k_i + Σ_j (α_{i,j} − β_{i,j})``, ``χ_i = w_i k_i + Σ_j (α̂_{i,j} − β̂_{i,j})``
  (``α = dec_i(D_{i,j})``); send ``(δ_i, Δ_i, S_i = χ_i·Γ, [F_{j,i}]_j, ψ''_{j,i})`` (Πlog* for
  ``(K_i, Δ_i)`` with base ``Γ``). ``S_i`` and the list of the sender's ``F`` ciphertexts
  are shardvault's additions to Figure 7: ``S_i`` makes each signature share checkable on
  its own, and the list makes the identification below publicly verifiable.
Output. Verify ``ψ''``; ``δ = Σ δ_j``; check ``δ·G = Σ Δ_j`` and ``Σ S_j = δ·X``;
  ``R = δ^{-1}·Γ``. The presignature is ``(R, k_i, χ_i)`` plus every ``(Δ_j, S_j)`` so that
  each signature share can be checked on its own (``σ_j·Γ = m·Δ_j + r·S_j``).

Every proof binds the session id, the prover, the curve, the key id and epoch, and every
signer's auxiliary info. Every ciphertext and every proof value is range- and group-checked
before use. A failed check aborts naming the sender; the party is then terminal.

Identification (identifiable abort): if ``δ·G = Σ Δ_j`` fails although every proof verified,
:class:`PresignIdentify` runs one more broadcast round in which every signer reveals its
nonce-side values (``k_i``, ``γ_i`` and its γ-MtA masks with their Paillier nonces) so that
everyone recomputes each ``δ_j`` and names the signer whose ``δ_j`` or reveal is wrong.
If instead ``Σ S_j = δ·X`` fails, :class:`PresignIdentifyChi` runs one broadcast round
after the paper's identification of a failed signature (Figure 8, output "Otherwise", with
Πmul* and Πdec, Figures 31 and 30): every signer proves, without revealing ``w_i`` or
``χ_i``, that its ``S_i`` is ``χ_i·Γ`` for the ``χ_i`` its x-MtA ciphertexts define, and the
signer who cannot is named. Both identification rounds run only after a failure; the
honest path keeps references to values it already has and does no extra work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import (
    EncodingError,
    MisuseError,
    ProtocolAbort,
    VerificationError,
)
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.paillier import PaillierPublicKey
from shardvault.crypto.protocols.cggmp21._common import (
    check_echo,
    collect,
    echo_digest,
    wire_bytes,
    wire_bytes_list,
    wire_int,
    wire_point,
)
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE, KeyShare
from shardvault.crypto.protocols.cggmp21.messages import (
    PRESIGN_PROTOCOL,
    PresignChiProofMessage,
    PresignRevealMessage,
    PresignRound1Message,
    PresignRound1ProofMessage,
    PresignRound2Message,
    PresignRound3Message,
)
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    SessionId,
    WireValue,
    decode_wire,
    encode_wire,
    party_set,
    session_id,
)
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk import aff_g, dec, enc, log_star, mul_star
from shardvault.crypto.zk.context import (
    ELL,
    ELL_PRIME,
    EPSILON,
    CrtExp,
    ProofContext,
    check_ciphertext,
    check_signed_range,
    check_unit,
)

Q = CURVE.order


def _binding(key: KeyShare, signers: tuple[PartyId, ...]) -> bytes:
    return hashlib.sha256(
        b"shardvault/cggmp21/presign/binding/v1"
        + key.key_id
        + key.epoch.to_bytes(8, "big")
        + key.aux_binding(signers)
    ).digest()


@dataclass(frozen=True, slots=True)
class _Session:
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

    def collect(
        self, received: Sequence[object], round_number: int, direct: bool
    ) -> dict[PartyId, object]:
        return collect(
            received,
            lambda m: m.header,  # type: ignore[attr-defined]
            protocol=PRESIGN_PROTOCOL,
            session=self.session,
            round_number=round_number,
            parties=self.signers,
            me=self.me,
            direct=direct,
        )


PRESIGNATURE_FORMAT_VERSION = 1
"""Format version of serialized presignatures (for encrypted presignature pools)."""

_PRESIGNATURE_FIELDS = (
    "format",
    "key_id",
    "epoch",
    "signers",
    "session",
    "R",
    "gamma",
    "delta",
    "Delta",
    "S",
    "views",
    "k",
    "chi",
)


class Presignature:
    """One signer's presignature: ``R``, its ``k_i`` and ``χ_i``, and every ``(Δ_j, S_j)``.

    It is bound to the key (``key_id``, which covers the epoch), the signer set and the
    session that made it. :meth:`consume` hands the secrets out once; a second use raises
    :class:`MisuseError`, so a presignature can never sign twice (two signatures with one
    nonce reveal the key).

    Security: ``k_i`` and ``χ_i`` are secret; ``repr`` hides them.
    """

    __slots__ = (
        "Delta",
        "R",
        "S",
        "_secret",
        "delta",
        "epoch",
        "gamma",
        "key_id",
        "session",
        "signers",
        "views",
    )

    def __init__(
        self,
        *,
        key_id: bytes,
        epoch: int,
        signers: tuple[PartyId, ...],
        session: SessionId,
        R: Point,
        gamma: Point,
        delta: Scalar,
        Delta: Mapping[PartyId, Point],
        S: Mapping[PartyId, Point],
        k: Scalar,
        chi: Scalar,
        views: tuple[bytes, ...] = (),
    ) -> None:
        self.key_id = key_id
        self.epoch = epoch
        self.signers = signers
        self.session = session
        self.R = R
        self.gamma = gamma
        self.delta = delta
        self.Delta = dict(Delta)
        self.S = dict(S)
        # Digests of each signer's round-3 values (δ_j, Δ_j, S_j) as this party received
        # them, in signer order: the signing round echoes them, so a signer that sent
        # different round-3 values to different peers is exposed there.
        self.views = views
        self._secret: tuple[Scalar, Scalar] | None = (k, chi)

    def __repr__(self) -> str:
        state = "spent" if self._secret is None else "unused"
        return (
            f"Presignature(signers={list(self.signers)}, epoch={self.epoch}, {state}, <redacted>)"
        )

    @property
    def spent(self) -> bool:
        """Whether :meth:`consume` already ran."""
        return self._secret is None

    @property
    def presignature_id(self) -> bytes:
        """A public id of this presignature (same at every signer)."""
        return hashlib.sha256(
            b"shardvault/cggmp21/presignature-id/v1"
            + self.session
            + self.key_id
            + self.R.to_bytes()
        ).digest()

    def to_pool_bytes(self) -> bytes:
        """Canonical CBOR of an unused presignature, for a presignature pool.

        Security: secret (``k_i``, ``χ_i``); store it only encrypted, and delete it in the
        same transaction that signs with it. A copy restored from a backup is refused once
        the key has moved to a later epoch.

        Raises:
            MisuseError: the presignature was already used.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("a used presignature cannot be stored")
        k, chi = secret
        order = list(self.signers)
        fields: dict[str, WireValue] = {
            "format": PRESIGNATURE_FORMAT_VERSION,
            "key_id": self.key_id,
            "epoch": self.epoch,
            "signers": [int(p) for p in order],
            "session": bytes(self.session),
            "R": self.R.to_bytes(),
            "gamma": self.gamma.to_bytes(),
            "delta": self.delta.to_bytes(),
            "Delta": [self.Delta[p].to_bytes() for p in order],
            "S": [self.S[p].to_bytes() for p in order],
            "views": list(self.views),
            "k": k.to_bytes(),
            "chi": chi.to_bytes(),
        }
        return encode_wire(fields)

    @classmethod
    def unsafe_from_pool_bytes(cls, data: bytes) -> Presignature:
        """Decode :meth:`to_pool_bytes` output, re-checking its public relations
        (``Σ Δ_j = δ·G`` and ``R = δ^-1·Γ``).

        Unsafe: single use cannot be enforced across copies. Every decoded copy can sign
        once, and two signatures from one presignature reveal the key. The caller (the
        presignature pool) must delete the stored copy in the same transaction that hands
        it to signing, and must never decode one copy twice; restoring a backup must move
        the key to a new epoch (a refresh), which makes old presignatures unusable.

        Raises:
            EncodingError: malformed, an unknown version, invalid points or scalars, or
                inconsistent values.
        """
        fields = decode_wire(data, _PRESIGNATURE_FIELDS)
        if fields.get("format") != PRESIGNATURE_FORMAT_VERSION:
            raise EncodingError("unknown presignature format version")
        try:
            signers_raw = fields.get("signers")
            if not isinstance(signers_raw, list):
                raise EncodingError("presignature signers must be a list")
            signers = party_set(wire_int(v, "signers") for v in signers_raw)
            if signers != tuple(wire_int(v, "signers") for v in signers_raw):
                raise EncodingError("presignature signers must be sorted")
            Deltas = [wire_point(v, "Delta") for v in wire_bytes_list(fields["Delta"], "Delta")]
            Ss = [wire_point(v, "S") for v in wire_bytes_list(fields["S"], "S")]
            views = wire_bytes_list(fields["views"], "views")
            if not len(Deltas) == len(Ss) == len(views) == len(signers):
                raise EncodingError("presignature lists have the wrong length")
            delta = CURVE.decode_scalar(wire_bytes(fields["delta"], "delta", 32), allow_zero=False)
            gamma = wire_point(fields["gamma"], "gamma")
            R = wire_point(fields["R"], "R")
            if (
                CURVE.sum_points(Deltas) != CURVE.base_multiply(delta)
                or gamma * delta.inverse() != R
            ):
                raise EncodingError("presignature values are inconsistent")
            return cls(
                key_id=wire_bytes(fields["key_id"], "key_id", 32),
                epoch=wire_int(fields["epoch"], "epoch"),
                signers=signers,
                session=session_id(wire_bytes(fields["session"], "session", 32)),
                R=R,
                gamma=gamma,
                delta=delta,
                Delta=dict(zip(signers, Deltas, strict=True)),
                S=dict(zip(signers, Ss, strict=True)),
                k=CURVE.decode_scalar(wire_bytes(fields["k"], "k", 32)),
                chi=CURVE.decode_scalar(wire_bytes(fields["chi"], "chi", 32)),
                views=tuple(views),
            )
        except MisuseError as exc:
            raise EncodingError(f"presignature is inconsistent: {exc}") from exc

    def consume(self) -> tuple[Scalar, Scalar]:
        """``(k_i, χ_i)``, once.

        Raises:
            MisuseError: the presignature was already used.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("presignature already used: a presignature signs once only")
        self._secret = None
        return secret


class PresignRound1:
    """Round 1 of presigning for signer ``key.party``.

    ``message`` is the broadcast ``(K_i, G_i)``; ``proofs`` are the direct Πenc messages.

    Security: holds ``k_i``, ``γ_i`` and their Paillier nonces until :meth:`next`.
    """

    def __init__(
        self, key: KeyShare, signers: Sequence[int], session: bytes, rng: RandomSource
    ) -> None:
        ids = party_set(signers)
        key._check_signers(ids)
        self._s = _Session(key, ids, session_id(session), _binding(key, ids), key.crt())
        self._rng = rng
        secret = key.paillier_secret
        # Figure 7, round 1: k_i, γ_i ← F_q; K_i = enc_i(k_i; ρ_i), G_i = enc_i(γ_i; ν_i).
        k = CURVE.random_scalar(rng)
        gamma = CURVE.random_scalar(rng)
        K, rho = secret.encrypt(k.value, rng)
        G, nu = secret.encrypt(gamma.value, rng)
        self._secret: tuple[Scalar, Scalar, int, int] | None = (k, gamma, rho, nu)
        self._K, self._G = K, G
        self.message = PresignRound1Message(
            self._s.header(1, None), {"key_id": key.key_id, "epoch": key.epoch, "K": K, "G": G}
        )
        # ψ^0_{j,i}: Πenc for K_i under each peer's ring-Pedersen parameters.
        me = self._s.context(key.party)
        self.proofs = [
            PresignRound1ProofMessage(
                self._s.header(1, peer),
                {
                    "enc_proof": enc.prove(  # type: ignore[dict-item]
                        me, Q, secret, key.aux[peer].ring_pedersen, K, k.value, rho, rng
                    ).to_wire()
                },
            )
            for peer in self._s.peers
        ]

    def __repr__(self) -> str:
        return f"PresignRound1(party={self._s.me}, <redacted>)"

    def next(
        self,
        broadcasts: Sequence[PresignRound1Message],
        proofs: Sequence[PresignRound1ProofMessage],
    ) -> tuple[PresignRound2, list[PresignRound2Message]]:
        """Verify every peer's ``K_j``, ``G_j`` and Πenc; run round 2.

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: another key or epoch, an out-of-range ciphertext or an invalid
                Πenc proof; names the sender.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("presign round 1 already ran")
        self._secret = None
        s = self._s
        key = s.key
        by_sender = s.collect(broadcasts, 1, direct=False)
        proof_by_sender = s.collect(proofs, 1, direct=True)
        Ks: dict[PartyId, int] = {s.me: self._K}
        Gs: dict[PartyId, int] = {s.me: self._G}
        own_setup = key.aux[s.me].ring_pedersen
        for sender in s.peers:
            message = by_sender[sender]
            assert isinstance(message, PresignRound1Message)
            proof_message = proof_by_sender[sender]
            assert isinstance(proof_message, PresignRound1ProofMessage)
            try:
                payload = message.payload
                if wire_bytes(payload["key_id"], "key_id", 32) != key.key_id:
                    raise VerificationError("presigning for another key or signer set")
                if wire_int(payload["epoch"], "epoch") != key.epoch:
                    raise VerificationError("presigning at another key epoch (stale share?)")
                pk = key.aux[sender].paillier
                K = wire_int(payload["K"], "K")
                G = wire_int(payload["G"], "G")
                check_ciphertext(K, pk.n_squared, pk.n, "K")
                check_ciphertext(G, pk.n_squared, pk.n, "G")
                proof = enc.EncProof.from_wire(proof_message.payload["enc_proof"])
                # Figure 7, round 2, step 1: verify ψ^0_{i,j}.
                enc.verify(s.context(sender), Q, pk, own_setup, K, proof, s.crt)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: presign round 1: {exc}") from exc
            Ks[sender], Gs[sender] = K, G
        echo = [
            echo_digest(
                "presign",
                [by_sender[p].to_bytes() if p != s.me else self.message.to_bytes()],  # type: ignore[attr-defined]
            )
            for p in s.signers
        ]
        k, gamma, rho, nu = secret
        w = key.additive_share(s.signers)
        Gamma = CURVE.base_multiply(gamma)
        W = CURVE.base_multiply(w)
        own = key.paillier_secret
        rng = self._rng
        me = s.context(s.me)
        out: list[PresignRound2Message] = []
        beta_sum = 0
        beta_hat_sum = 0
        # The γ-MtA masks β_{i→j}, the nonces and ciphertexts F_{j,i} = enc_i(β_{i→j}; r):
        # revealed only if presigning's δ check fails (identification, see PresignIdentify).
        gamma_mta: dict[PartyId, tuple[int, int, int]] = {}
        # The x-MtA ciphertexts F̂_{j,i} = enc_i(β̂_{i→j}) this party sent: public, kept only
        # for the χ identification (PresignIdentifyChi), which needs no secret mask.
        hat_sent: dict[PartyId, int] = {}
        for peer in s.peers:
            pk = key.aux[peer].paillier
            setup = key.aux[peer].ring_pedersen
            K_j = Ks[peer]
            # Figure 7, round 2, step 2: the two affine operations on K_j and their proofs.
            fields: dict[str, WireValue] = {"Gamma": Gamma.to_bytes(), "echo": echo}  # type: ignore[dict-item]
            for name, x, X in (("", gamma, Gamma), ("_hat", w, W)):
                beta = random_signed(ELL_PRIME, rng)
                masked, s_nonce = pk.encrypt(beta, rng)
                D = pk.add(pk.scalar_mul(K_j, x.value), masked)
                F, r_nonce = own.encrypt(beta, rng)
                affine = aff_g.prove(
                    me, CURVE, pk, own, setup, K_j, D, F, X, (x.value, beta, s_nonce, r_nonce), rng
                )
                fields["D" + name] = D
                fields["F" + name] = F
                fields[f"aff_g{name}_proof"] = affine.to_wire()  # type: ignore[assignment]
                if name:
                    beta_hat_sum += beta
                    hat_sent[peer] = F
                else:
                    beta_sum += beta
                    gamma_mta[peer] = (beta, r_nonce, F)
            # ψ'_{j,i}: Πlog* that G_i encrypts the discrete log of Γ_i.
            fields["log_star_proof"] = log_star.prove(
                me, CURVE, own, setup, self._G, Gamma, CURVE.generator(), gamma.value, nu, rng
            ).to_wire()  # type: ignore[assignment]
            out.append(PresignRound2Message(s.header(2, peer), fields))
        round2 = PresignRound2(
            s,
            rng=rng,
            Ks=Ks,
            Gs=Gs,
            echo=echo,
            secret=(k, gamma, w, rho, beta_sum, beta_hat_sum),
            Gamma=Gamma,
            gamma_mta=gamma_mta,
            hat_sent=hat_sent,
        )
        return round2, out


class PresignRound2:
    """Round 2 state of presigning: verifies the affine-operation proofs, runs round 3.

    Security: holds ``k_i``, ``γ_i``, ``w_i``, ``ρ_i`` and the sums of the masks ``β``.
    """

    def __init__(
        self,
        s: _Session,
        *,
        rng: RandomSource,
        Ks: dict[PartyId, int],
        Gs: dict[PartyId, int],
        echo: list[bytes],
        secret: tuple[Scalar, Scalar, Scalar, int, int, int],
        Gamma: Point,
        gamma_mta: dict[PartyId, tuple[int, int, int]],
        hat_sent: dict[PartyId, int],
    ) -> None:
        self._s = s
        self._rng = rng
        self._Ks = Ks
        self._Gs = Gs
        self._echo = echo
        self._secret: tuple[Scalar, Scalar, Scalar, int, int, int] | None = secret
        self._Gamma = Gamma
        self._gamma_mta = gamma_mta
        self._hat_sent = hat_sent

    def __repr__(self) -> str:
        return f"PresignRound2(party={self._s.me}, <redacted>)"

    def next(
        self, received: Sequence[PresignRound2Message]
    ) -> tuple[PresignRound3, list[PresignRound3Message]]:
        """Verify every peer's ``D``, ``F``, ``D̂``, ``F̂``, Πaff-g, Πaff-g and Πlog*; run round 3.

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: an echo mismatch, an out-of-range ciphertext or an invalid
                proof; names the party at fault.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("presign round 2 already ran")
        self._secret = None
        s = self._s
        key = s.key
        by_sender = s.collect(received, 2, direct=True)
        echoes: dict[PartyId, list[bytes]] = {}
        for sender, message in by_sender.items():
            assert isinstance(message, PresignRound2Message)
            try:
                echoes[sender] = wire_bytes_list(message.payload["echo"], "echo")
            except EncodingError as exc:
                raise ProtocolAbort([sender], f"party {sender}: malformed echo") from exc
        check_echo(echoes, self._echo, s.signers, s.me)
        own = key.paillier_secret
        own_pk = key.aux[s.me].paillier
        own_setup = key.aux[s.me].ring_pedersen
        K_i = self._Ks[s.me]
        Gammas: dict[PartyId, Point] = {s.me: self._Gamma}
        alpha_sum = 0
        alpha_hat_sum = 0
        F_received: dict[PartyId, int] = {}
        # The verified x-MtA values (D̂_{i,j}, F̂_{i,j}, ψ̂_{i,j}) from each peer: public, kept
        # only so that a χ identification can re-broadcast them (no extra work here).
        hat_received: dict[PartyId, tuple[int, int, WireValue]] = {}
        for sender in s.peers:
            message = by_sender[sender]
            assert isinstance(message, PresignRound2Message)
            payload = message.payload
            pk = key.aux[sender].paillier
            ctx = s.context(sender)
            try:
                Gamma_j = wire_point(payload["Gamma"], "Gamma")
                W_j = key.additive_public_share(sender, s.signers)
                plain: list[int] = []
                for name, X in (("", Gamma_j), ("_hat", W_j)):
                    D = wire_int(payload["D" + name], "D" + name)
                    F = wire_int(payload["F" + name], "F" + name)
                    check_ciphertext(D, own_pk.n_squared, own_pk.n, "D" + name)
                    check_ciphertext(F, pk.n_squared, pk.n, "F" + name)
                    proof = aff_g.AffGProof.from_wire(CURVE, payload[f"aff_g{name}_proof"])
                    # Figure 7, round 3, step 1: verify ψ_{i,j} and ψ̂_{i,j}.
                    aff_g.verify(ctx, CURVE, own_pk, pk, own_setup, K_i, D, F, X, proof, s.crt)
                    plain.append(own.decrypt(D))
                    if name:
                        hat_received[sender] = (D, F, payload[f"aff_g{name}_proof"])
                    else:
                        F_received[sender] = F
                proof_log = log_star.LogStarProof.from_wire(CURVE, payload["log_star_proof"])
                # ψ'_{i,j}: G_j encrypts the discrete log of Γ_j.
                log_star.verify(
                    ctx,
                    CURVE,
                    pk,
                    own_setup,
                    self._Gs[sender],
                    Gamma_j,
                    CURVE.generator(),
                    proof_log,
                    s.crt,
                )
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: presign round 2: {exc}") from exc
            Gammas[sender] = Gamma_j
            alpha_sum += plain[0]
            alpha_hat_sum += plain[1]
        k, gamma, w, rho, beta_sum, beta_hat_sum = secret
        # Figure 7, round 3, step 2: Γ, Δ_i, δ_i, χ_i.
        Gamma = CURVE.sum_points([Gammas[p] for p in s.signers])
        Delta = Gamma * k
        delta = gamma * k + (alpha_sum - beta_sum)
        chi = w * k + (alpha_hat_sum - beta_hat_sum)
        S_i = Gamma * chi
        me = s.context(s.me)
        # Every F_{j,i} this party sent, in signer order (0 for itself): each peer checks its
        # own entry against round 2, and identification uses the agreed list.
        F_sent = [0 if p == s.me else self._gamma_mta[p][2] for p in s.signers]
        out = [
            PresignRound3Message(
                s.header(3, peer),
                {
                    "delta": delta.to_bytes(),
                    "Delta": Delta.to_bytes(),
                    "S": S_i.to_bytes(),
                    "F_sent": F_sent,  # type: ignore[dict-item]
                    # ψ''_{j,i}: Πlog* that K_i encrypts the discrete log of Δ_i to base Γ.
                    "log_star_proof": log_star.prove(
                        me,
                        CURVE,
                        own,
                        key.aux[peer].ring_pedersen,
                        K_i,
                        Delta,
                        Gamma,
                        k.value,
                        rho,
                        self._rng,
                    ).to_wire(),  # type: ignore[dict-item]
                },
            )
            for peer in s.peers
        ]
        state = PresignRound3(
            s,
            Ks=self._Ks,
            Gamma=Gamma,
            Gammas=Gammas,
            own=(delta, Delta, S_i, F_sent),
            secret=(k, chi),
            F_received=F_received,
            reveal=_Reveal(k, gamma, self._gamma_mta),
            chi_inputs=_ChiInputs(hat_received, self._hat_sent, self._rng),
        )
        return state, out


class _Reveal:
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
        return "_Reveal(<redacted>)"


def _round3_view_full(delta: Scalar, Delta: Point, S: Point, F_sent: list[int]) -> bytes:
    h = hashlib.sha256(b"shardvault/cggmp21/presign/round3-view/v2")
    h.update(delta.to_bytes() + Delta.to_bytes() + S.to_bytes())
    for value in F_sent:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        h.update(len(raw).to_bytes(4, "big") + raw)
    return h.digest()


class PresignIdentificationRequired(ProtocolAbort):
    """Presigning's check ``δ·G = Σ Δ_j`` failed although every proof verified.

    No culprit is known yet (``culprits`` is empty); ``identification`` is the round that
    finds it: send its ``message`` to every signer, then call its ``finish`` with theirs.
    """

    def __init__(self, identification: PresignIdentify) -> None:
        super().__init__([], "presigning check δ·G = ΣΔ_j failed; run the identification round")
        self.identification = identification


class PresignRound3:
    """Final state of presigning: verifies ``ψ''`` and the global checks, outputs the
    presignature.

    Security: holds ``k_i`` and ``χ_i`` until :meth:`finish` moves them into the
    :class:`Presignature`, and the nonce-side values an identification would reveal.
    """

    def __init__(
        self,
        s: _Session,
        *,
        Ks: dict[PartyId, int],
        Gamma: Point,
        Gammas: dict[PartyId, Point],
        own: tuple[Scalar, Point, Point, list[int]],
        secret: tuple[Scalar, Scalar],
        F_received: dict[PartyId, int],
        reveal: _Reveal,
        chi_inputs: _ChiInputs,
    ) -> None:
        self._s = s
        self._Ks = Ks
        self._Gamma = Gamma
        self._Gammas = Gammas
        self._own = own
        self._secret: tuple[Scalar, Scalar] | None = secret
        self._F_received = F_received
        self._reveal: _Reveal | None = reveal
        self._chi_inputs: _ChiInputs | None = chi_inputs

    def __repr__(self) -> str:
        return f"PresignRound3(party={self._s.me}, <redacted>)"

    def _check_peer(
        self, sender: PartyId, payload: Mapping[str, WireValue]
    ) -> tuple[Scalar, Point, Point, list[int]]:
        s = self._s
        key = s.key
        delta_j = CURVE.decode_scalar(wire_bytes(payload["delta"], "delta", 32))
        Delta_j = wire_point(payload["Delta"], "Delta")
        S_j = wire_point(payload["S"], "S")
        F_sent = payload["F_sent"]
        if not isinstance(F_sent, list) or len(F_sent) != len(s.signers):
            raise EncodingError("F_sent must list one ciphertext per signer")
        F_list = [wire_int(value, "F_sent") for value in F_sent]
        # The F_{i,j} it lists for us must be the one it sent us in round 2.
        if F_list[s.signers.index(s.me)] != self._F_received[sender]:
            raise VerificationError("round-3 list of F contradicts its round-2 message")
        proof = log_star.LogStarProof.from_wire(CURVE, payload["log_star_proof"])
        # Figure 7, output, step 1: verify ψ''_{i,j}.
        log_star.verify(
            s.context(sender),
            CURVE,
            key.aux[sender].paillier,
            key.aux[s.me].ring_pedersen,
            self._Ks[sender],
            Delta_j,
            self._Gamma,
            proof,
            s.crt,
        )
        return delta_j, Delta_j, S_j, F_list

    def finish(self, received: Sequence[PresignRound3Message]) -> Presignature:
        """Verify every ``(δ_j, Δ_j, S_j, ψ'')`` and return the presignature.

        Raises:
            MisuseError: this round already finished.
            TransportError: a message missing or from outside the session.
            PresignIdentificationRequired: the δ check failed; run its identification.
            PresignChiIdentificationRequired: the ``Σ S_j = δ·X`` check failed; run its
                identification.
            ProtocolAbort: an invalid Πlog* proof, a malformed value or a list of ``F``
                contradicting round 2 (names the sender).
        """
        secret = self._secret
        reveal = self._reveal
        chi_inputs = self._chi_inputs
        if secret is None or reveal is None or chi_inputs is None:
            raise MisuseError("presign round 3 already finished")
        # Spent secrets die with the round: k_i, χ_i move into the presignature, and the
        # nonce-side values into an identification round if one is needed.
        self._secret = None
        self._reveal = None
        self._chi_inputs = None
        s = self._s
        key = s.key
        by_sender = s.collect(received, 3, direct=True)
        deltas: dict[PartyId, Scalar] = {s.me: self._own[0]}
        Deltas: dict[PartyId, Point] = {s.me: self._own[1]}
        Ss: dict[PartyId, Point] = {s.me: self._own[2]}
        F_sent: dict[PartyId, list[int]] = {s.me: self._own[3]}
        for sender in s.peers:
            message = by_sender[sender]
            assert isinstance(message, PresignRound3Message)
            try:
                checked = self._check_peer(sender, message.payload)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: presign round 3: {exc}") from exc
            deltas[sender], Deltas[sender], Ss[sender], F_sent[sender] = checked
        views = tuple(_round3_view_full(deltas[p], Deltas[p], Ss[p], F_sent[p]) for p in s.signers)
        # Figure 7, output, step 2: δ = Σ δ_j and δ·G = Σ Δ_j; then Σ S_j = δ·X.
        delta = CURVE.scalar(sum(d.value for d in deltas.values()))
        if delta.is_zero() or CURVE.base_multiply(delta) != CURVE.sum_points(list(Deltas.values())):
            raise PresignIdentificationRequired(
                PresignIdentify(
                    s,
                    reveal=reveal,
                    views=views,
                    public=_PublicRound3(self._Gamma, self._Gammas, deltas, Deltas, F_sent),
                )
            )
        if CURVE.sum_points(list(Ss.values())) != key.public_key * delta:
            # CGGMP21 Figure 8, output "Otherwise" (applied to S_j = χ_j·Γ): identify with
            # Πmul* and Πdec over the x-MtA (PresignIdentifyChi); χ_i stays secret.
            raise PresignChiIdentificationRequired(
                PresignIdentifyChi(
                    s,
                    inputs=chi_inputs,
                    views=views,
                    public=_PublicChi(self._Gamma, self._Ks, Ss),
                )
            )
        R = self._Gamma * delta.inverse()
        k, chi = secret
        return Presignature(
            key_id=key.key_id,
            epoch=key.epoch,
            signers=s.signers,
            session=s.session,
            R=R,
            gamma=self._Gamma,
            delta=delta,
            Delta=Deltas,
            S=Ss,
            k=k,
            chi=chi,
            views=views,
        )


@dataclass(frozen=True, slots=True)
class _PublicRound3:
    """The agreed public values of presigning that identification judges against."""

    Gamma: Point
    Gammas: dict[PartyId, Point]
    deltas: dict[PartyId, Scalar]
    Deltas: dict[PartyId, Point]
    F_sent: dict[PartyId, list[int]]


class PresignIdentify:
    """Identification after a failed ``δ·G = Σ Δ_j`` check (one broadcast round).

    Every signer reveals its nonce-side values (see :class:`_Reveal`) and echoes the
    round-3 values it received. Then anyone can recompute each ``δ_j``: the proofs already
    bind ``D_{j,l}`` to ``K_j``, ``Γ_l`` and ``F_{j,l}``, so
    ``δ_j = γ_j k_j + Σ_l (γ_l k_j + β_{l→j} − β_{j→l}) mod q`` for an honest ``P_j``. A signer
    whose revealed ``γ_j``, ``k_j`` do not match ``Γ_j``, ``Δ_j``, whose masks do not
    re-encrypt to the ``F`` it listed, or whose ``δ_j`` differs from the recomputation is
    named.

    Security: sends this party's nonce-side values of a presignature that is already dead.
    """

    def __init__(
        self,
        s: _Session,
        *,
        reveal: _Reveal,
        views: tuple[bytes, ...],
        public: _PublicRound3,
    ) -> None:
        self._s = s
        self._views = views
        self._public = public
        self._own = reveal
        self._done = False
        betas = [0 if p == s.me else reveal.gamma_mta[p][0] for p in s.signers]
        nonces = [0 if p == s.me else reveal.gamma_mta[p][1] for p in s.signers]
        self.message = PresignRevealMessage(
            s.header(4, None),
            {
                "k": reveal.k.to_bytes(),
                "gamma": reveal.gamma.to_bytes(),
                "betas": betas,  # type: ignore[dict-item]
                "nonces": nonces,  # type: ignore[dict-item]
                "echo": list(views),
            },
        )

    def __repr__(self) -> str:
        return f"PresignIdentify(party={self._s.me}, <redacted>)"

    def _parse(
        self, sender: PartyId, payload: Mapping[str, WireValue]
    ) -> tuple[Scalar, Scalar, list[int]]:
        s = self._s
        pub = self._public
        k = CURVE.decode_scalar(wire_bytes(payload["k"], "k", 32))
        gamma = CURVE.decode_scalar(wire_bytes(payload["gamma"], "gamma", 32))
        betas_raw, nonces_raw = payload["betas"], payload["nonces"]
        if not isinstance(betas_raw, list) or not isinstance(nonces_raw, list):
            raise EncodingError("betas and nonces must be lists")
        if not len(betas_raw) == len(nonces_raw) == len(s.signers):
            raise EncodingError("betas and nonces must list one value per signer")
        betas = [wire_int(v, "betas") for v in betas_raw]
        nonces = [wire_int(v, "nonces") for v in nonces_raw]
        if CURVE.base_multiply(gamma) != pub.Gammas[sender]:
            raise VerificationError("revealed γ does not match Γ_j")
        if pub.Gamma * k != pub.Deltas[sender]:
            raise VerificationError("revealed k does not match Δ_j")
        pk = s.key.aux[sender].paillier
        for index, party in enumerate(s.signers):
            if party == sender:
                continue
            beta = betas[index]
            check_signed_range(beta, ELL_PRIME, "revealed β")
            check_unit(nonces[index], pk.n, "revealed nonce")
            if pk.encrypt_with_nonce(beta, nonces[index]) != pub.F_sent[sender][index]:
                raise VerificationError("revealed β does not re-encrypt to the listed F")
        return k, gamma, betas

    def finish(self, received: Sequence[PresignRevealMessage]) -> NoReturn:
        """Judge every signer's ``δ_j``; always ends the presignature with an abort.

        Raises:
            MisuseError: this round already finished.
            TransportError: a reveal missing or from outside the session.
            ProtocolAbort: naming every signer whose reveal or ``δ_j`` is wrong (or an echo
                mismatch); with no culprit only if nobody deviated, which cannot happen
                once the δ check failed.
        """
        if self._done:
            raise MisuseError("presign identification already finished")
        self._done = True
        s = self._s
        by_sender = s.collect(received, 4, direct=False)
        echoes: dict[PartyId, list[bytes]] = {}
        for sender, message in by_sender.items():
            assert isinstance(message, PresignRevealMessage)
            try:
                echoes[sender] = wire_bytes_list(message.payload["echo"], "echo")
            except EncodingError as exc:
                raise ProtocolAbort([sender], f"party {sender}: malformed echo") from exc
        check_echo(echoes, list(self._views), s.signers, s.me)
        revealed: dict[PartyId, tuple[Scalar, Scalar, list[int]]] = {
            s.me: (
                self._own.k,
                self._own.gamma,
                [0 if p == s.me else self._own.gamma_mta[p][0] for p in s.signers],
            )
        }
        culprits: list[PartyId] = []
        for sender, message in by_sender.items():
            assert isinstance(message, PresignRevealMessage)
            try:
                revealed[sender] = self._parse(sender, message.payload)
            except (EncodingError, VerificationError):
                culprits.append(sender)
        if culprits:
            raise ProtocolAbort(culprits, "presigning identification: invalid reveal")
        index = {p: n for n, p in enumerate(s.signers)}
        for j in s.signers:
            k_j, gamma_j, betas_j = revealed[j]
            expected = gamma_j * k_j
            for other in s.signers:
                if other == j:
                    continue
                _, gamma_l, betas_l = revealed[other]
                expected = expected + gamma_l * k_j + (betas_l[index[j]] - betas_j[index[other]])
            if expected != self._public.deltas[j]:
                culprits.append(j)
        raise ProtocolAbort(
            culprits, "presigning identification: δ_j inconsistent with the reveals"
        )


# --- Identification of the χ side ---------------------------------------------------------

GRINDING_BITS = 64
"""Work (``2^64`` hash evaluations) a malicious peer would need to push an x-MtA plaintext
past :func:`chi_plaintext_bits`; see :class:`PresignIdentifyChi`."""


def chi_plaintext_bits(signers: int) -> int:
    """The Πdec bound ``bits`` for a signer's ``χ`` ciphertext ``T_i`` with ``signers``
    signers.

    ``T_i`` encrypts ``w_i·k_i + Σ_j dec(D̂_{i,j}) − Σ_j β̂_{i→j}``. Honest terms are below
    ``2^(2ℓ)`` and ``2^ℓ'``; a peer's ``D̂_{i,j}`` passes Πaff-g with a mask up to
    ``2^(ℓ'+ε−ℓ)`` (more only by grinding the Fiat-Shamir challenge), so each term is below
    ``2^(ℓ'+ε−ℓ+GRINDING_BITS+1)`` and the sum of ``2·signers`` terms fits the returned bound.
    """
    return ELL_PRIME + EPSILON - ELL + GRINDING_BITS + 1 + (2 * signers).bit_length()


class _ChiInputs:
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
        return f"_ChiInputs(peers={sorted(self.hat_sent)})"


@dataclass(frozen=True, slots=True)
class _PublicChi:
    """The agreed public values the χ identification judges against."""

    Gamma: Point
    Ks: dict[PartyId, int]
    Ss: dict[PartyId, Point]


class PresignChiIdentificationRequired(ProtocolAbort):
    """Presigning's check ``Σ S_j = δ·X`` failed although every proof verified and the δ
    check passed.

    No culprit is known yet (``culprits`` is empty); ``identification`` is the round that
    finds it: send its ``message`` to every signer, then call its ``finish`` with theirs.
    """

    def __init__(self, identification: PresignIdentifyChi) -> None:
        super().__init__([], "presigning check ΣS_j = δ·X failed; run the χ identification round")
        self.identification = identification


def _chi_ciphertext(pk: PaillierPublicKey, H: int, D_hats: list[int], F_hats: list[int]) -> int:
    # T_i = Ĥ_i · Π_j D̂_{i,j} · Π_j F̂_{j,i}^-1 mod N_i²: it encrypts the integer behind χ_i.
    c = H
    for D in D_hats:
        c = pk.add(c, D)
    for F in F_hats:
        c = pk.add(c, pk.scalar_mul(F, -1))
    return c


class PresignIdentifyChi:
    """Identification after a failed ``Σ S_j = δ·X`` check (one broadcast round).

    Source: CGGMP21 (ePrint 2021/060), Figure 8, output "Otherwise" (and the appendix
    proofs of Figures 30 and 31), applied to shardvault's ``S_i = χ_i·Γ``: every signer
    ``P_i``

    (a) publishes ``Ĥ_i = K_i^{w_i}·ρ̂^{N_i}`` with Πmul* (it encrypts ``k_i·w_i`` for the
        ``w_i`` behind ``W_i``);
    (b) re-broadcasts the x-MtA values it received, ``(D̂_{i,j}, F̂_{i,j}, ψ̂_{i,j})``: the
        Πaff-g proof was made by ``P_j`` for exactly these ciphertexts, so nobody but
        ``P_j`` (who knows ``w_j``) could have made it, and everyone re-verifies it;
    (c) proves with Πdec that ``T_i = Ĥ_i·Π_j D̂_{i,j}·Π_j F̂_{j,i}^-1`` decrypts to the
        discrete log of ``S_i`` to base ``Γ``, where ``F̂_{j,i}`` comes from ``P_j``'s
        re-broadcast.

    One Πmul* and one Πdec are made under each other signer's ring-Pedersen setup, and
    every party verifies all of them, so every honest party reaches the same verdict. If
    all of (a)-(c) hold for everyone then ``Σ χ_j = k·x`` and ``Σ S_j = δ·X``; so, once the
    check failed, someone fails (a)-(c) and is named. An honest signer passes them all.

    Security: nothing about ``w_i`` or ``χ_i`` is revealed: the proofs are zero-knowledge
    and the values are ciphertexts under keys their readers already hold (``D̂_{i,j}`` under
    ``P_i``'s key, ``F̂_{i,j}`` under ``P_j``'s). Compare :class:`PresignIdentify`, which may
    reveal nonce-side values in the clear. A peer who spends about ``2^GRINDING_BITS``
    hash evaluations on round 2 can make an honest signer's ``T_i`` exceed the Πdec bound;
    the honest signer then cannot prove and this raises :class:`MisuseError` instead of
    naming anyone.
    """

    def __init__(
        self,
        s: _Session,
        *,
        inputs: _ChiInputs,
        views: tuple[bytes, ...],
        public: _PublicChi,
    ) -> None:
        self._s = s
        self._views = views
        self._public = public
        self._inputs = inputs
        self._done = False
        # F̂_{l,j} keyed [j][l]: the x-MtA ciphertext P_j sent P_l, as P_l re-broadcasts it
        # (filled in by finish; this party's own entries come from its round-2 state).
        self._F_hats: dict[PartyId, dict[PartyId, int]] = {
            j: {s.me: inputs.hat_received[j][1]} for j in s.peers
        }
        key = s.key
        own = key.paillier_secret
        pk = key.aux[s.me].paillier
        rng = inputs.rng
        K_i = public.Ks[s.me]
        w = key.additive_share(s.signers)
        W = CURVE.base_multiply(w)
        bits = chi_plaintext_bits(len(s.signers))
        # Figure 8, output "Otherwise", step (a): Ĥ_i = K_i^{w_i}·ρ̂^{N_i} encrypts k_i·w_i.
        rho_hat = random_unit_mod(pk.n, rng)
        H = pk.add(pk.scalar_mul(K_i, w.value), own.nonce_power(rho_hat))
        # Step (b): T_i from this party's own view of the x-MtA.
        T = _chi_ciphertext(
            pk,
            H,
            [inputs.hat_received[p][0] for p in s.peers],
            [inputs.hat_sent[p] for p in s.peers],
        )
        me = s.context(s.me)
        D_hats: list[WireValue] = []
        F_hats: list[WireValue] = []
        affine: list[WireValue] = []
        mul_proofs: list[WireValue] = []
        dec_proofs: list[WireValue] = []
        for p in s.signers:
            if p == s.me:
                # A placeholder keeps every list indexed by signer position.
                D_hats.append(0)
                F_hats.append(0)
                affine.append({})
                mul_proofs.append({})
                dec_proofs.append({})
                continue
            D_hat, F_hat, proof = inputs.hat_received[p]
            D_hats.append(D_hat)
            F_hats.append(F_hat)
            affine.append(proof)
            setup = key.aux[p].ring_pedersen
            # Steps (a) and (c), under P_p's ring-Pedersen setup: Πmul* for (K_i, Ĥ_i, W_i)
            # and Πdec for (T_i, Γ, S_i).
            product = mul_star.prove(me, CURVE, own, setup, K_i, H, W, w.value, rho_hat, rng)
            decryption = dec.prove(
                me, CURVE, own, setup, T, public.Gamma, public.Ss[s.me], bits, rng
            )
            mul_proofs.append(product.to_wire())  # type: ignore[arg-type]
            dec_proofs.append(decryption.to_wire())  # type: ignore[arg-type]
        self.message = PresignChiProofMessage(
            s.header(4, None),
            {
                "H": H,
                "D_hat": D_hats,
                "F_hat": F_hats,
                "aff_g_hat_proofs": affine,
                "mul_star_proofs": mul_proofs,
                "dec_proofs": dec_proofs,
                "echo": list(views),
            },
        )

    def __repr__(self) -> str:
        return f"PresignIdentifyChi(party={self._s.me})"

    def _parse(
        self, sender: PartyId, payload: Mapping[str, WireValue]
    ) -> tuple[int, dict[PartyId, int], list[WireValue], list[WireValue]]:
        """Check a sender's message and re-verify its re-broadcast Πaff-g proofs; returns
        ``Ĥ``, the ``D̂`` it received and its Πmul* and Πdec proof lists (decoded later)."""
        s = self._s
        key = s.key
        count = len(s.signers)
        pk = key.aux[sender].paillier
        H = wire_int(payload["H"], "H")
        check_ciphertext(H, pk.n_squared, pk.n, "Ĥ")
        lists: dict[str, list[WireValue]] = {}
        for name in ("D_hat", "F_hat", "aff_g_hat_proofs", "mul_star_proofs", "dec_proofs"):
            value = payload[name]
            if not isinstance(value, list) or len(value) != count:
                raise EncodingError(f"{name} must list one entry per signer")
            lists[name] = value
        D_hats: dict[PartyId, int] = {}
        for index, party in enumerate(s.signers):
            if party == sender:
                continue
            D_hat = wire_int(lists["D_hat"][index], "D_hat")
            F_hat = wire_int(lists["F_hat"][index], "F_hat")
            proof = aff_g.AffGProof.from_wire(CURVE, lists["aff_g_hat_proofs"][index])
            # Figure 7, round 3, step 1 (ψ̂_{i,j}), re-run by everyone on the re-broadcast:
            # P_party proved D̂ = K_sender^{w_party}·enc(β̂), F̂ = enc_party(β̂).
            aff_g.verify(
                s.context(party),
                CURVE,
                pk,
                key.aux[party].paillier,
                key.aux[sender].ring_pedersen,
                self._public.Ks[sender],
                D_hat,
                F_hat,
                key.additive_public_share(party, s.signers),
                proof,
                s.crt,
            )
            D_hats[party] = D_hat
            self._F_hats.setdefault(party, {})[sender] = F_hat
        return H, D_hats, lists["mul_star_proofs"], lists["dec_proofs"]

    def finish(self, received: Sequence[PresignChiProofMessage]) -> NoReturn:
        """Judge every signer's ``S_j``; always ends the presignature with an abort.

        Raises:
            MisuseError: this round already finished.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: naming every signer whose re-broadcast, Πmul* or Πdec is invalid
                (or an echo mismatch); with no culprit only if nobody deviated, which cannot
                happen once the ``Σ S_j = δ·X`` check failed.
        """
        if self._done:
            raise MisuseError("presign χ identification already finished")
        self._done = True
        s = self._s
        key = s.key
        pub = self._public
        by_sender = s.collect(received, 4, direct=False)
        echoes: dict[PartyId, list[bytes]] = {}
        for sender, message in by_sender.items():
            assert isinstance(message, PresignChiProofMessage)
            try:
                echoes[sender] = wire_bytes_list(message.payload["echo"], "echo")
            except EncodingError as exc:
                raise ProtocolAbort([sender], f"party {sender}: malformed echo") from exc
        check_echo(echoes, list(self._views), s.signers, s.me)
        parsed: dict[PartyId, tuple[int, dict[PartyId, int], list[WireValue], list[WireValue]]]
        parsed = {}
        culprits: list[PartyId] = []
        for sender, message in by_sender.items():
            assert isinstance(message, PresignChiProofMessage)
            try:
                parsed[sender] = self._parse(sender, message.payload)
            except (EncodingError, VerificationError):
                culprits.append(sender)
        if culprits:
            raise ProtocolAbort(
                culprits, "presigning χ identification: invalid re-broadcast of round 2"
            )
        bits = chi_plaintext_bits(len(s.signers))
        for j in s.peers:
            H, D_hats, mul_raw, dec_raw = parsed[j]
            pk = key.aux[j].paillier
            ctx = s.context(j)
            W_j = key.additive_public_share(j, s.signers)
            try:
                # T_j = Ĥ_j · Π_l D̂_{j,l} · Π_l F̂_{l,j}^-1 from the agreed re-broadcasts.
                T = _chi_ciphertext(
                    pk,
                    H,
                    [D_hats[p] for p in s.signers if p != j],
                    [self._F_hats[j][p] for p in s.signers if p != j],
                )
                for index, party in enumerate(s.signers):
                    if party == j:
                        continue
                    setup = key.aux[party].ring_pedersen
                    # Step (a): Πmul* for (K_j, Ĥ_j, W_j) under P_party's setup.
                    mul_star.verify(
                        ctx,
                        CURVE,
                        pk,
                        setup,
                        pub.Ks[j],
                        H,
                        W_j,
                        mul_star.MulStarProof.from_wire(CURVE, mul_raw[index]),
                        s.crt,
                    )
                    # Step (c): Πdec that T_j decrypts to the discrete log of S_j to base Γ.
                    dec.verify(
                        ctx,
                        CURVE,
                        pk,
                        setup,
                        T,
                        pub.Gamma,
                        pub.Ss[j],
                        bits,
                        dec.DecProof.from_wire(CURVE, dec_raw[index]),
                        s.crt,
                    )
            except (EncodingError, VerificationError):
                culprits.append(j)
        raise ProtocolAbort(
            culprits, "presigning χ identification: S_j inconsistent with the x-MtA proofs"
        )
