"""CGGMP21 one-round online signing from a presignature, with share verification.

Source: CGGMP21 (ePrint 2021/060), "Signing" (Figure 8 of the revisions with the
three-round presigning): with presignature ``(R, k_i, χ_i)`` and digest ``m``, each signer
sends ``σ_i = k_i·m + r·χ_i`` where ``r = R.x mod q``; ``σ = Σ σ_j`` and ``(r, σ)`` is the
signature. Because presigning published ``Δ_j = k_j·Γ`` (proven by Πlog*) and
``S_j = χ_j·Γ`` (with ``Σ S_j = δ·X`` checked), each share is checked on its own:
``σ_j·Γ = m·Δ_j + r·S_j``; a share that fails names its sender (identifiable abort).

Each share message also carries the 32-byte digest its sender signed (shardvault's
addition to Figure 8). Signers handed different digests by the relay would otherwise each
see the others' correct shares fail and name honest peers; a share for another digest is
reported as :class:`~shardvault.crypto.errors.MessageDigestMismatch`, naming nobody,
after every share for our digest has been checked (so a provably wrong one is still
named).

The signature is normalised to low ``s`` (BIP62 / EIP-2) and returned with its recovery id
(the parity of ``R.y``, flipped when ``s`` was negated), so Ethereum's ``v`` follows.

A presignature is consumed when this party's share is made; a failed signature is terminal
for it and is never retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shardvault.crypto.errors import (
    EncodingError,
    MessageDigestMismatch,
    MisuseError,
    ProtocolAbort,
)
from shardvault.crypto.group import Scalar
from shardvault.crypto.protocols.cggmp21._common import (
    check_echo,
    collect,
    wire_bytes,
)
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE, KeyShare
from shardvault.crypto.protocols.cggmp21.messages import SIGN_PROTOCOL, SignatureShareMessage
from shardvault.crypto.protocols.cggmp21.presignature import Presignature
from shardvault.crypto.protocols.common import WIRE_VERSION, Header, session_id

Q = CURVE.order


@dataclass(frozen=True, slots=True)
class EcdsaSignature:
    """A low-s ECDSA signature with its recovery id (0 or 1)."""

    r: int
    s: int
    recovery_id: int

    def to_bytes(self) -> bytes:
        """The 65-byte ``r || s || v`` form (``v`` = recovery id 0/1)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.recovery_id])

    def to_der(self) -> bytes:
        """DER ``SEQUENCE { INTEGER r, INTEGER s }`` (for Bitcoin and coincurve)."""

        def integer(value: int) -> bytes:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "big")
            return b"\x02" + bytes([len(raw)]) + raw

        body = integer(self.r) + integer(self.s)
        return b"\x30" + bytes([len(body)]) + body


def digest_scalar(digest: bytes) -> Scalar:
    """The ECDSA message representative of a 32-byte digest (SEC 1 §4.1.3 step 5).

    Raises:
        MisuseError: the digest is not 32 bytes.
    """
    if len(digest) != 32:
        raise MisuseError("the digest to sign must be 32 bytes")
    return CURVE.scalar(int.from_bytes(digest, "big"))


class SignRound:
    """Online signing for one signer: ``message`` is its signature share.

    Constructing it consumes the presignature (refusing a spent one, one of another key,
    or one from an older epoch). :meth:`finish` checks every peer's share and returns the
    signature.

    Security: the share ``σ_i`` reveals nothing beyond the signature; the presignature's
    ``k_i`` and ``χ_i`` are dropped once the share is computed.
    """

    def __init__(
        self, key: KeyShare, presignature: Presignature, digest: bytes, session: bytes
    ) -> None:
        if presignature.epoch < key.epoch:
            raise MisuseError("presignature is from an older key epoch (restored backup?)")
        if presignature.key_id != key.key_id or presignature.epoch != key.epoch:
            raise MisuseError("presignature belongs to another key")
        if key.party not in presignature.signers:
            raise MisuseError("this party did not take part in the presignature")
        self._key = key
        self._presignature = presignature
        self._session = session_id(session)
        self._m = digest_scalar(digest)
        self._digest = bytes(digest)
        x_coordinate = int.from_bytes(CURVE.x_only(presignature.R), "big")
        if x_coordinate >= Q:  # pragma: no cover - probability about 2^-128
            raise MisuseError("presignature has R.x >= q (no 0/1 recovery id); discard it")
        self._r = CURVE.scalar(x_coordinate)
        if self._r.is_zero():  # pragma: no cover - probability 2^-256
            raise MisuseError("presignature has r = 0")
        k, chi = presignature.consume()
        # Figure 8, step 1: σ_i = k_i·m + r·χ_i.
        self._sigma = k * self._m + self._r * chi
        self._done = False
        self.message = SignatureShareMessage(
            Header(SIGN_PROTOCOL, WIRE_VERSION, self._session, 1, key.party, None),
            presignature_id=presignature.presignature_id,
            sigma=self._sigma.to_bytes(),
            digest=self._digest,
            echo=tuple(presignature.views),
        )

    def __repr__(self) -> str:
        return f"SignRound(party={self._key.party}, <redacted>)"

    def finish(self, received: Sequence[SignatureShareMessage]) -> EcdsaSignature:
        """Check every peer's share and combine them into a low-s signature.

        Raises:
            MisuseError: this round already finished.
            TransportError: a share missing or from outside the signer set.
            ProtocolAbort: a share for another presignature, malformed, or failing
                ``σ_j·Γ = m·Δ_j + r·S_j`` for our digest; names the sender.
            MessageDigestMismatch: every share for our digest verified, but some peer
                signed another digest; names nobody.
        """
        if self._done:
            raise MisuseError("signing round already finished")
        self._done = True
        pre = self._presignature
        me = self._key.party
        by_sender = collect(
            received,
            lambda m: m.header,
            protocol=SIGN_PROTOCOL,
            session=self._session,
            round_number=1,
            parties=pre.signers,
            me=me,
            direct=False,
        )
        # Echo of presigning round 3: every signer saw the same (δ_j, Δ_j, S_j).
        echoes = {sender: message.echo for sender, message in by_sender.items()}
        check_echo(echoes, list(pre.views), pre.signers, me)
        sigma = self._sigma
        other_digest = 0
        for sender, message in by_sender.items():
            try:
                if (
                    wire_bytes(message.presignature_id, "presignature_id", 32)
                    != pre.presignature_id
                ):
                    raise ProtocolAbort(
                        [sender], f"party {sender} signed with another presignature"
                    )
                sigma_j = CURVE.decode_scalar(wire_bytes(message.sigma, "sigma", 32))
                digest_j = wire_bytes(message.digest, "digest", 32)
            except EncodingError as exc:
                raise ProtocolAbort([sender], f"party {sender}: malformed signature share") from exc
            if digest_j != self._digest:
                # Judged after every share for our digest: see MessageDigestMismatch.
                other_digest += 1
                continue
            # Figure 8, step 2 with share verification: σ_j·Γ = m·Δ_j + r·S_j.
            if pre.gamma * sigma_j != pre.Delta[sender] * self._m + pre.S[sender] * self._r:
                raise ProtocolAbort([sender], f"party {sender} sent a wrong signature share")
            sigma = sigma + sigma_j
        if other_digest:
            raise MessageDigestMismatch(
                f"{other_digest} of {len(by_sender)} peers signed another message digest: "
                "the signers were not given the same message (or a peer misreports its own)"
            )
        return finalize(self._key, pre, self._m, self._r, sigma)


def finalize(
    key: KeyShare, pre: Presignature, m: Scalar, r: Scalar, sigma: Scalar
) -> EcdsaSignature:
    """Normalise ``(r, σ)`` to low ``s``, attach the recovery id and verify it.

    Raises:
        ProtocolAbort: the signature does not verify (cannot happen once every share did).
    """
    s = sigma
    # The recovery id is R.y's parity; presignatures with R.x ≥ q (ids 2, 3, which
    # Ethereum's v cannot carry) are refused before signing.
    recovery_id = 0 if CURVE.has_even_y(pre.R) else 1
    if s.value > Q // 2:
        s = -s
        recovery_id ^= 1
    # ECDSA verification: x(s^-1·(m·G + r·X)) = r.
    if s.is_zero():
        raise ProtocolAbort([], "signature has s = 0")
    w = s.inverse()
    point = CURVE.base_multiply(m * w) + key.public_key * (r * w)
    if point.is_identity() or CURVE.scalar(int.from_bytes(CURVE.x_only(point), "big")) != r:
        raise ProtocolAbort([], "combined signature does not verify")
    return EcdsaSignature(r.value, s.value, recovery_id)
