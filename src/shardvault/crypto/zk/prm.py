"""Πprm: proof that ring-Pedersen parameters are well formed, ``s ∈ ⟨t⟩``.

Source: CGGMP21 (ePrint 2021/060), "Ring-Pedersen Parameters ZK" (Πprm, Figure 17 as
numbered in the ePrint revisions that reference implementations cite; Appendix C). The
prover knows ``λ`` with ``s = t^λ mod N``. For each repetition ``i``: it sends ``A_i =
t^(a_i) mod N`` for ``a_i ← Z_φ(N)``; on a challenge bit ``e_i`` it answers ``z_i = a_i +
e_i·λ mod φ(N)``; the verifier checks ``t^(z_i) = A_i · s^(e_i) mod N``. The bits ``e_i``
come from a Fiat-Shamir transcript bound to the session, the prover, the caller's context,
``(N, s, t)`` and every ``A_i``.

Repetitions: :data:`REPETITIONS` = 128, for the reason given in
:mod:`shardvault.crypto.zk.mod` (soundness 1/2 per repetition, Fiat-Shamir grinding).
Unproven ``s, t`` let a malicious verifier of the range proofs extract secrets
(CVE-2020-12118); every party checks this proof before using a peer's parameters.
"""

from dataclasses import dataclass
from typing import Self

import gmpy2

from shardvault.crypto._sampling import random_below
from shardvault.crypto.errors import VerificationError
from shardvault.crypto.ring_pedersen import FixedBaseTable, RingPedersenParams, RingPedersenSecret
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk._common import (
    decode_fields,
    encode_fields,
    require_int_list,
    start_transcript,
)

DOMAIN = "shardvault/cggmp21/zk/prm/v1"
"""Domain tag of Πprm's transcript."""

REPETITIONS = 128
"""The number ``m`` of parallel repetitions."""

_FIELDS = ("commitments", "responses")


@dataclass(frozen=True, slots=True)
class PrmProof:
    """A Πprm proof: the commitments ``A_i`` and the responses ``z_i``."""

    commitments: tuple[int, ...]
    responses: tuple[int, ...]

    def to_bytes(self) -> bytes:
        """Canonical CBOR of the proof's fields."""
        return encode_fields(
            {"commitments": list(self.commitments), "responses": list(self.responses)}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode :meth:`to_bytes` output (structure only).

        Raises:
            EncodingError: if the bytes are not a canonical Πprm proof encoding.
        """
        fields = decode_fields(data, _FIELDS)
        return cls(require_int_list(fields, "commitments"), require_int_list(fields, "responses"))


def _challenge_bits(
    params: RingPedersenParams,
    commitments: tuple[int, ...],
    session_id: bytes,
    prover: int,
    context: bytes,
) -> list[int]:
    # Figure 17, step 2 (verifier's challenge e_i ← {0, 1}), made non-interactive.
    transcript = start_transcript(DOMAIN, session_id, prover, context)
    transcript.append_ints("N, s, t", [params.n, params.s, params.t])
    transcript.append_ints("A", commitments)
    raw = transcript.challenge_bytes("e", (REPETITIONS + 7) // 8)
    value = int.from_bytes(raw, "big")
    return [(value >> i) & 1 for i in range(REPETITIONS)]


def prove(
    params: RingPedersenParams,
    secret: RingPedersenSecret,
    *,
    session_id: bytes,
    prover: int,
    rng: RandomSource,
    context: bytes = b"",
) -> PrmProof:
    """Prove ``s = t^λ mod N`` for the prover's own parameters."""
    n = gmpy2.mpz(params.n)
    t = gmpy2.mpz(params.t)
    phi = secret.phi
    # Figure 17, step 1: a_i ← Z_φ(N), A_i = t^(a_i) mod N.
    nonces = [random_below(phi, rng) for _ in range(REPETITIONS)]
    if secret.p is not None and secret.q is not None and secret.p * secret.q == params.n:
        # With the primes at hand, t^a mod N through the CRT: exponents reduce modulo
        # p - 1 and q - 1, and the two half-size results combine by Garner's formula.
        p, q = gmpy2.mpz(secret.p), gmpy2.mpz(secret.q)
        q_inv_p = gmpy2.invert(q, p)
        t_p, t_q = t % p, t % q
        commitments = tuple(
            int(xq + q * ((xp - xq) * q_inv_p % p))
            for xp, xq in (
                (gmpy2.powmod(t_p, a % (p - 1), p), gmpy2.powmod(t_q, a % (q - 1), q))
                for a in nonces
            )
        )
    else:
        commitments = tuple(int(gmpy2.powmod(t, a, n)) for a in nonces)
    bits = _challenge_bits(params, commitments, session_id, prover, context)
    # Figure 17, step 3: z_i = a_i + e_i·λ mod φ(N).
    responses = tuple((a + e * secret.lambda_) % phi for a, e in zip(nonces, bits, strict=True))
    return PrmProof(commitments, responses)


def verify(
    proof: PrmProof,
    params: RingPedersenParams,
    *,
    session_id: bytes,
    prover: int,
    context: bytes = b"",
) -> None:
    """Check a Πprm proof for ``params`` made by ``prover`` in this session.

    Also checks the parameters themselves (:meth:`RingPedersenParams.validate`).

    Raises:
        VerificationError: naming the first check that failed.
    """
    params.validate()
    if len(proof.commitments) != REPETITIONS or len(proof.responses) != REPETITIONS:
        raise VerificationError(f"Πprm: proof must have {REPETITIONS} repetitions")
    n = gmpy2.mpz(params.n)
    s = gmpy2.mpz(params.s)
    for i, (commitment, response) in enumerate(
        zip(proof.commitments, proof.responses, strict=True)
    ):
        # Honest A_i are units and honest z_i lie below φ(N) < N.
        if not 0 < commitment < n or not 0 <= response < n:
            raise VerificationError(f"Πprm: A_{i} or z_{i} is out of range")
    bits = _challenge_bits(params, proof.commitments, session_id, prover, context)
    # All m checks raise the same base t to exponents below N: one fixed-base table
    # (about 15 ms to build at 2048 bits) makes each of them about three times faster.
    t_powers = FixedBaseTable(params.t, params.n, params.n.bit_length())
    for i, (commitment, response, e) in enumerate(
        zip(proof.commitments, proof.responses, bits, strict=True)
    ):
        # Figure 17, verification: t^(z_i) = A_i · s^(e_i) mod N.
        expected = commitment * s % n if e else commitment
        if t_powers.power(response) != expected:
            raise VerificationError(f"Πprm: t^z_{i} != A_{i} s^e_{i}")
