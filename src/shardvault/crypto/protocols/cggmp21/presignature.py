"""A CGGMP21 presignature: one signer's output of presigning, used by exactly one
online signature.

Source: CGGMP21 (ePrint 2021/060), output of the three-round presigning (Figure 7 of the
revisions with Πenc/Πaff-g/Πlog*): ``R = δ^-1·Γ``, the signer's ``k_i`` and ``χ_i``, and
every signer's ``(Δ_j, S_j)`` so that each signature share of Figure 8 can be checked on
its own. Also its encoding for an encrypted presignature pool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from shardvault.crypto.errors import EncodingError, MisuseError
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.protocols.cggmp21._common import (
    wire_bytes,
    wire_bytes_list,
    wire_int,
    wire_point,
)
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE
from shardvault.crypto.protocols.common import (
    PartyId,
    SessionId,
    WireValue,
    decode_wire,
    encode_wire,
    party_set,
    session_id,
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
