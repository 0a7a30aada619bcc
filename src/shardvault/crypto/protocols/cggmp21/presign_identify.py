"""CGGMP21 presigning's identifiable abort: the rounds that name the signer at fault once
a global check of presigning failed although every proof verified.

Source: CGGMP21 (ePrint 2021/060), Figure 7 (output: ``δ·G = Σ Δ_j``) and Figure 8, output
"Otherwise", with Πmul* and Πdec (Figures 31 and 30), applied to shardvault's
``S_i = χ_i·Γ``; the rounds themselves are in
:mod:`~shardvault.crypto.protocols.cggmp21.presign`.

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

from collections.abc import Mapping, Sequence
from typing import NoReturn

from shardvault.crypto._sampling import random_unit_mod
from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, VerificationError
from shardvault.crypto.group import Scalar
from shardvault.crypto.paillier import PaillierPublicKey
from shardvault.crypto.protocols.cggmp21._common import (
    wire_bytes,
    wire_int,
)
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE
from shardvault.crypto.protocols.cggmp21.messages import (
    PresignChiProofMessage,
    PresignRevealMessage,
)
from shardvault.crypto.protocols.cggmp21.presign_state import (
    ChiInputs,
    NonceReveal,
    PresignSession,
    PublicChi,
    PublicRound3,
)
from shardvault.crypto.protocols.common import PartyId, WireValue
from shardvault.crypto.zk import aff_g, dec, mul_star
from shardvault.crypto.zk.context import (
    ELL,
    ELL_PRIME,
    EPSILON,
    check_ciphertext,
    check_signed_range,
    check_unit,
)


class PresignIdentificationRequired(ProtocolAbort):
    """Presigning's check ``δ·G = Σ Δ_j`` failed although every proof verified.

    No culprit is known yet (``culprits`` is empty); ``identification`` is the round that
    finds it: send its ``message`` to every signer, then call its ``finish`` with theirs.
    """

    def __init__(self, identification: PresignIdentify) -> None:
        super().__init__([], "presigning check δ·G = ΣΔ_j failed; run the identification round")
        self.identification = identification


class PresignIdentify:
    """Identification after a failed ``δ·G = Σ Δ_j`` check (one broadcast round).

    Every signer reveals its nonce-side values (see :class:`NonceReveal`); the round-3
    values it is judged against were agreed in round 4. Then anyone can recompute each
    ``δ_j``: the proofs already bind ``D_{j,l}`` to ``K_j``, ``Γ_l`` and ``F_{j,l}``, so
    ``δ_j = γ_j k_j + Σ_l (γ_l k_j + β_{l→j} − β_{j→l}) mod q`` for an honest ``P_j``. A signer
    whose revealed ``γ_j``, ``k_j`` do not match ``Γ_j``, ``Δ_j``, whose masks do not
    re-encrypt to the ``F`` it listed, or whose ``δ_j`` differs from the recomputation is
    named.

    Security: sends this party's nonce-side values of a presignature that is already dead.
    """

    def __init__(
        self,
        s: PresignSession,
        *,
        reveal: NonceReveal,
        public: PublicRound3,
    ) -> None:
        self._s = s
        self._public = public
        self._own = reveal
        self._done = False
        betas = [0 if p == s.me else reveal.gamma_mta[p][0] for p in s.signers]
        nonces = [0 if p == s.me else reveal.gamma_mta[p][1] for p in s.signers]
        self.message = PresignRevealMessage(
            s.header(5, None),
            {
                "k": reveal.k.to_bytes(),
                "gamma": reveal.gamma.to_bytes(),
                "betas": betas,  # type: ignore[dict-item]
                "nonces": nonces,  # type: ignore[dict-item]
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
            ProtocolAbort: naming every signer whose reveal or ``δ_j`` is wrong; with no
                culprit only if nobody deviated, which cannot happen once the δ check
                failed.
        """
        if self._done:
            raise MisuseError("presign identification already finished")
        self._done = True
        s = self._s
        by_sender = s.collect(received, 5, direct=False)
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
        s: PresignSession,
        *,
        inputs: ChiInputs,
        public: PublicChi,
    ) -> None:
        self._s = s
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
            s.header(5, None),
            {
                "H": H,
                "D_hat": D_hats,
                "F_hat": F_hats,
                "aff_g_hat_proofs": affine,
                "mul_star_proofs": mul_proofs,
                "dec_proofs": dec_proofs,
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
            ProtocolAbort: naming every signer whose re-broadcast, Πmul* or Πdec is invalid;
                with no culprit only if nobody deviated, which cannot happen once the
                ``Σ S_j = δ·X`` check failed.
        """
        if self._done:
            raise MisuseError("presign χ identification already finished")
        self._done = True
        s = self._s
        key = s.key
        pub = self._public
        by_sender = s.collect(received, 5, direct=False)
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
