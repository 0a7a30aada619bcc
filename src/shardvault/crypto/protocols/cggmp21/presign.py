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
  its own, and the list makes the identification below publicly verifiable. ``ψ''``'s
  challenge also binds the digest of ``(δ_i, Δ_i, S_i, [F_{j,i}]_j)``
  (:func:`~shardvault.crypto.protocols.cggmp21.presign_state.round3_context`).
Round 4 (shardvault's addition). Verify ``ψ''``; broadcast, for every signer ``j``, the
  digest of the round-3 values received from it with the ``ψ''_{j,i}`` that came with
  them. Round-3 messages are direct, so without this a signer could send one peer a wrong
  ``δ`` and another a wrong ``S``: the two would take different identification paths and
  blame each other. On receipt, a peer's digest for ``j`` that differs from ours names
  ``j`` if the peer's ``ψ''`` verifies for it (only ``j`` can make one: ``j`` sent
  different values), else the peer (it made up what it received); so every honest signer
  runs the checks below on the same values, or names the same cheater. The honest path
  compares digests only.
Output. ``δ = Σ δ_j``; check ``δ·G = Σ Δ_j`` and ``Σ S_j = δ·X``; ``R = δ^{-1}·Γ``. The
  presignature is ``(R, k_i, χ_i)`` plus every ``(Δ_j, S_j)`` so that each signature share
  can be checked on its own (``σ_j·Γ = m·Δ_j + r·S_j``).

Every proof binds the session id, the prover, the curve, the key id and epoch, and every
signer's auxiliary info. Every ciphertext and every proof value is range- and group-checked
before use. A failed check aborts naming the sender; the party is then terminal.

Identification (identifiable abort, :mod:`.presign_identify`): if ``δ·G = Σ Δ_j`` fails
although every proof verified, :class:`PresignIdentify` runs one more broadcast round
(round 5) that reveals nonce-side values; if ``Σ S_j = δ·X`` fails,
:class:`PresignIdentifyChi` runs one that proves the x-MtA side without revealing ``w_i``
or ``χ_i``. Both judge the values agreed in round 4. The presignature itself is
:class:`~shardvault.crypto.protocols.cggmp21.presignature.Presignature`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shardvault.crypto._sampling import random_signed
from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, VerificationError
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.protocols.cggmp21._common import (
    check_echo,
    echo_digest,
    wire_bytes,
    wire_bytes_list,
    wire_int,
    wire_point,
)
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE, KeyShare
from shardvault.crypto.protocols.cggmp21.messages import (
    PresignRound1Message,
    PresignRound1ProofMessage,
    PresignRound2Message,
    PresignRound3Message,
    PresignRound4Message,
)
from shardvault.crypto.protocols.cggmp21.presign_identify import (
    GRINDING_BITS,
    PresignChiIdentificationRequired,
    PresignIdentificationRequired,
    PresignIdentify,
    PresignIdentifyChi,
    chi_plaintext_bits,
)
from shardvault.crypto.protocols.cggmp21.presign_state import (
    ChiInputs,
    NonceReveal,
    PresignSession,
    PublicChi,
    PublicRound3,
    Q,
    presign_binding,
    round3_context,
    round3_view,
)
from shardvault.crypto.protocols.cggmp21.presignature import (
    PRESIGNATURE_FORMAT_VERSION,
    Presignature,
)
from shardvault.crypto.protocols.common import PartyId, WireValue, party_set, session_id
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk import aff_g, enc, log_star
from shardvault.crypto.zk.context import ELL_PRIME, check_ciphertext


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
        self._s = PresignSession(
            key, ids, session_id(session), presign_binding(key, ids), key.crt()
        )
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
                [by_sender[p].to_bytes() if p != s.me else self.message.to_bytes()],
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
        s: PresignSession,
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
        # Every F_{j,i} this party sent, in signer order (0 for itself): each peer checks its
        # own entry against round 2, and identification uses the agreed list.
        F_sent = [0 if p == s.me else self._gamma_mta[p][2] for p in s.signers]
        # ψ'' binds these values, so that a peer can show round 4 what this party sent it.
        me = round3_context(s, s.me, round3_view(delta, Delta, S_i, F_sent))
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
            reveal=NonceReveal(k, gamma, self._gamma_mta),
            chi_inputs=ChiInputs(hat_received, self._hat_sent, self._rng),
        )
        return state, out


class PresignRound3:
    """Round-3 receipt of presigning: verifies every ``(δ_j, Δ_j, S_j, F_j, ψ''_{j,i})``
    and sends round 4, this party's view of every signer's round-3 values.

    Security: holds ``k_i`` and ``χ_i`` and the nonce-side values an identification would
    reveal, until :meth:`next` hands them to round 4.
    """

    def __init__(
        self,
        s: PresignSession,
        *,
        Ks: dict[PartyId, int],
        Gamma: Point,
        Gammas: dict[PartyId, Point],
        own: tuple[Scalar, Point, Point, list[int]],
        secret: tuple[Scalar, Scalar],
        F_received: dict[PartyId, int],
        reveal: NonceReveal,
        chi_inputs: ChiInputs,
    ) -> None:
        self._s = s
        self._Ks = Ks
        self._Gamma = Gamma
        self._Gammas = Gammas
        self._own = own
        self._secret: tuple[Scalar, Scalar] | None = secret
        self._F_received = F_received
        self._reveal: NonceReveal | None = reveal
        self._chi_inputs: ChiInputs | None = chi_inputs

    def __repr__(self) -> str:
        return f"PresignRound3(party={self._s.me}, <redacted>)"

    def _check_peer(
        self, sender: PartyId, payload: Mapping[str, WireValue]
    ) -> tuple[Scalar, Point, Point, list[int], WireValue]:
        s = self._s
        key = s.key
        delta_j = CURVE.decode_scalar(wire_bytes(payload["delta"], "delta", 32))
        Delta_j = wire_point(payload["Delta"], "Delta")
        S_j = wire_point(payload["S"], "S")
        F_sent = payload["F_sent"]
        if not isinstance(F_sent, list) or len(F_sent) != len(s.signers):
            raise EncodingError("F_sent must list one ciphertext per signer")
        F_list = [wire_int(value, "F_sent") for value in F_sent]
        pk = key.aux[sender].paillier
        for party, value in zip(s.signers, F_list, strict=True):
            if party == sender:
                if value != 0:
                    raise EncodingError("F_sent must hold 0 for the sender itself")
            else:
                check_ciphertext(value, pk.n_squared, pk.n, "F_sent")
        # The F_{i,j} it lists for us must be the one it sent us in round 2.
        if F_list[s.signers.index(s.me)] != self._F_received[sender]:
            raise VerificationError("round-3 list of F contradicts its round-2 message")
        proof = log_star.LogStarProof.from_wire(CURVE, payload["log_star_proof"])
        # Figure 7, output, step 1: verify ψ''_{i,j}, bound to the values it came with.
        log_star.verify(
            round3_context(s, sender, round3_view(delta_j, Delta_j, S_j, F_list)),
            CURVE,
            key.aux[sender].paillier,
            key.aux[s.me].ring_pedersen,
            self._Ks[sender],
            Delta_j,
            self._Gamma,
            proof,
            s.crt,
        )
        return delta_j, Delta_j, S_j, F_list, payload["log_star_proof"]

    def next(
        self, received: Sequence[PresignRound3Message]
    ) -> tuple[PresignRound4, PresignRound4Message]:
        """Verify every ``(δ_j, Δ_j, S_j, F_j, ψ'')`` and broadcast this party's view of
        them (round 4).

        Raises:
            MisuseError: this round already ran.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: an invalid Πlog* proof (or one made for other values), a
                malformed value or a list of ``F`` contradicting round 2 (names the sender).
        """
        secret = self._secret
        reveal = self._reveal
        chi_inputs = self._chi_inputs
        if secret is None or reveal is None or chi_inputs is None:
            raise MisuseError("presign round 3 already ran")
        # Spent secrets die with the round: k_i, χ_i and the nonce-side values move on.
        self._secret = None
        self._reveal = None
        self._chi_inputs = None
        s = self._s
        by_sender = s.collect(received, 3, direct=True)
        deltas: dict[PartyId, Scalar] = {s.me: self._own[0]}
        Deltas: dict[PartyId, Point] = {s.me: self._own[1]}
        Ss: dict[PartyId, Point] = {s.me: self._own[2]}
        F_sent: dict[PartyId, list[int]] = {s.me: self._own[3]}
        proofs: dict[PartyId, WireValue] = {}
        for sender in s.peers:
            try:
                checked = self._check_peer(sender, by_sender[sender].payload)
            except (EncodingError, VerificationError) as exc:
                raise ProtocolAbort([sender], f"party {sender}: presign round 3: {exc}") from exc
            deltas[sender], Deltas[sender], Ss[sender], F_sent[sender], proofs[sender] = checked
        views = tuple(round3_view(deltas[p], Deltas[p], Ss[p], F_sent[p]) for p in s.signers)
        # Round 4 (shardvault's addition, see the module docstring): every signer's round-3
        # values as this party received them, each with the ψ'' that authenticates them.
        message = PresignRound4Message(
            s.header(4, None),
            {
                "views": list(views),
                "Deltas": [Deltas[p].to_bytes() for p in s.signers],
                "log_star_proofs": [{} if p == s.me else proofs[p] for p in s.signers],
            },
        )
        state = PresignRound4(
            s,
            Ks=self._Ks,
            public=PublicRound3(self._Gamma, self._Gammas, deltas, Deltas, F_sent),
            Ss=Ss,
            views=views,
            secret=secret,
            reveal=reveal,
            chi_inputs=chi_inputs,
        )
        return state, message


class PresignRound4:
    """Final state of presigning: agrees on the round-3 views, runs the global checks and
    outputs the presignature (or the identification round the failed check needs).

    Security: holds ``k_i`` and ``χ_i`` until :meth:`finish` moves them into the
    :class:`Presignature`, and the nonce-side values an identification would reveal.
    """

    def __init__(
        self,
        s: PresignSession,
        *,
        Ks: dict[PartyId, int],
        public: PublicRound3,
        Ss: dict[PartyId, Point],
        views: tuple[bytes, ...],
        secret: tuple[Scalar, Scalar],
        reveal: NonceReveal,
        chi_inputs: ChiInputs,
    ) -> None:
        self._s = s
        self._Ks = Ks
        self._public = public
        self._Ss = Ss
        self._views = views
        self._secret: tuple[Scalar, Scalar] | None = secret
        self._reveal: NonceReveal | None = reveal
        self._chi_inputs: ChiInputs | None = chi_inputs

    def __repr__(self) -> str:
        return f"PresignRound4(party={self._s.me}, <redacted>)"

    def _judge_view(
        self, reporter: PartyId, signer: PartyId, view: bytes, Delta: WireValue, proof: WireValue
    ) -> PartyId:
        """Who is at fault when ``reporter`` says ``signer`` sent it round-3 values with
        digest ``view`` and we received others: ``signer`` if ``proof`` shows it really
        sent them (only it can make ψ'' for its ``K``), else ``reporter``."""
        s = self._s
        key = s.key
        if signer in (s.me, reporter):
            # Our own values (we know what we sent), or the reporter's own: its word alone.
            return reporter
        try:
            log_star.verify(
                round3_context(s, signer, view),
                CURVE,
                key.aux[signer].paillier,
                key.aux[reporter].ring_pedersen,
                self._Ks[signer],
                wire_point(Delta, "Deltas"),
                self._public.Gamma,
                log_star.LogStarProof.from_wire(CURVE, proof),
                s.crt,
            )
        except (EncodingError, VerificationError):
            return reporter
        return signer

    def finish(self, received: Sequence[PresignRound4Message]) -> Presignature:
        """Agree on every signer's round-3 values, check ``δ·G = Σ Δ_j`` and
        ``Σ S_j = δ·X``, and return the presignature.

        Raises:
            MisuseError: this round already finished.
            TransportError: a message missing or from outside the session.
            ProtocolAbort: a peer's view of some signer's round-3 values differs from ours:
                names the signer when the peer shows a ψ'' for what it received (that
                signer sent different values to different peers), else the peer; or a
                malformed view (names its sender).
            PresignIdentificationRequired: the δ check failed; run its identification.
            PresignChiIdentificationRequired: the ``Σ S_j = δ·X`` check failed; run its
                identification.
        """
        secret = self._secret
        reveal = self._reveal
        chi_inputs = self._chi_inputs
        if secret is None or reveal is None or chi_inputs is None:
            raise MisuseError("presign round 4 already finished")
        self._secret = None
        self._reveal = None
        self._chi_inputs = None
        s = self._s
        key = s.key
        by_sender = s.collect(received, 4, direct=False)
        count = len(s.signers)
        culprits: set[PartyId] = set()
        for sender, message in by_sender.items():
            assert isinstance(message, PresignRound4Message)
            payload = message.payload
            try:
                views = wire_bytes_list(payload["views"], "views")
                Deltas = payload["Deltas"]
                proofs = payload["log_star_proofs"]
                if (
                    len(views) != count
                    or not isinstance(Deltas, list)
                    or not isinstance(proofs, list)
                    or len(Deltas) != count
                    or len(proofs) != count
                ):
                    raise EncodingError("round-4 lists must have one entry per signer")
            except EncodingError:
                culprits.add(sender)
                continue
            # Agreement on the round-3 views before any check chooses a path: a signer
            # that sent different values to different peers is named by every honest one.
            for index, signer in enumerate(s.signers):
                if views[index] != self._views[index]:
                    culprits.add(
                        self._judge_view(sender, signer, views[index], Deltas[index], proofs[index])
                    )
        if culprits:
            raise ProtocolAbort(
                culprits, "presigning round 4: a signer's round-3 values were seen differently"
            )
        pub = self._public
        # Figure 7, output, step 2: δ = Σ δ_j and δ·G = Σ Δ_j; then Σ S_j = δ·X.
        delta = CURVE.scalar(sum(d.value for d in pub.deltas.values()))
        Delta_sum = CURVE.sum_points(list(pub.Deltas.values()))
        if delta.is_zero() or CURVE.base_multiply(delta) != Delta_sum:
            raise PresignIdentificationRequired(PresignIdentify(s, reveal=reveal, public=pub))
        if CURVE.sum_points(list(self._Ss.values())) != key.public_key * delta:
            # CGGMP21 Figure 8, output "Otherwise" (applied to S_j = χ_j·Γ): identify with
            # Πmul* and Πdec over the x-MtA (PresignIdentifyChi); χ_i stays secret.
            raise PresignChiIdentificationRequired(
                PresignIdentifyChi(
                    s, inputs=chi_inputs, public=PublicChi(pub.Gamma, self._Ks, self._Ss)
                )
            )
        R = pub.Gamma * delta.inverse()
        k, chi = secret
        return Presignature(
            key_id=key.key_id,
            epoch=key.epoch,
            signers=s.signers,
            session=s.session,
            R=R,
            gamma=pub.Gamma,
            delta=delta,
            Delta=pub.Deltas,
            S=self._Ss,
            k=k,
            chi=chi,
            views=self._views,
        )


__all__ = [
    "GRINDING_BITS",
    "PRESIGNATURE_FORMAT_VERSION",
    "PresignChiIdentificationRequired",
    "PresignIdentificationRequired",
    "PresignIdentify",
    "PresignIdentifyChi",
    "PresignRound1",
    "PresignRound2",
    "PresignRound3",
    "PresignRound4",
    "Presignature",
    "chi_plaintext_bits",
]
