"""A party's CGGMP21 key share: its secret share, everyone's public shares and aux info.

Source: CGGMP21 (ePrint 2021/060): the output of key generation (the party's share ``x_i``,
the public shares ``X_j = x_j·G`` and the public key ``X``), extended to ``t``-of-``n`` with
Shamir shares as in the LFDT-Lockness/cggmp21 threshold specification, plus the output of
the auxiliary-info phase (each party's Paillier modulus ``N_j`` and ring-Pedersen parameters
``(N_j, s_j, t_j)``, and this party's own Paillier primes). The ``epoch`` counts key
refreshes: a refresh produces shares of the next epoch, and presignatures or peers of an
older epoch are refused.

The serialization is canonical CBOR with a format version, meant to be encrypted before it
touches a disk (the ceremony tool and the custody layer do that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from shardvault.crypto.errors import EncodingError, MisuseError
from shardvault.crypto.group import SECP256K1, Point, Scalar
from shardvault.crypto.paillier import MIN_MODULUS_BITS, PaillierPublicKey, PaillierSecretKey
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.cggmp21.aux_info import PartyAuxPublic
from shardvault.crypto.protocols.common import (
    PartyId,
    WireValue,
    decode_wire,
    encode_wire,
    party_set,
    require_bytes,
    require_int,
)
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.zk.context import CrtExp, aux_binding

KEY_SHARE_FORMAT_VERSION = 1
"""Format version of serialized key shares; every version ever written stays readable."""

CURVE = SECP256K1
"""CGGMP21 here signs on secp256k1 only."""


PublicAuxInfo = PartyAuxPublic
"""One party's verified public auxiliary information (the auxiliary-info phase's type)."""


@dataclass(frozen=True, slots=True)
class KeyShare:
    """One party's CGGMP21 key share.

    Security: ``share`` (``x_i``) and ``paillier_secret`` (the factorisation of ``N_i``)
    are this party's secrets; neither appears in ``repr``, neither is ever sent, and the
    serialization must be encrypted before storage. The group secret is never formed.
    """

    party: PartyId
    min_signers: int
    max_signers: int
    share: Scalar
    public_shares: Mapping[PartyId, Point]
    public_key: Point
    chain_code: bytes
    aux: Mapping[PartyId, PublicAuxInfo]
    paillier_secret: PaillierSecretKey
    epoch: int
    min_modulus_bits: int = MIN_MODULUS_BITS
    _key_id: bytes = field(init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"KeyShare(party={self.party}, {self.min_signers}-of-{self.max_signers}, "
            f"epoch={self.epoch}, public_key={self.public_key.to_bytes().hex()}, "
            "share=<redacted>)"
        )

    def __post_init__(self) -> None:
        parties = tuple(sorted(self.public_shares))
        if len(parties) != self.max_signers or set(self.aux) != set(parties):
            raise MisuseError("key share must list public shares and aux info of every party")
        if not 1 <= self.min_signers <= self.max_signers:
            raise MisuseError("key share thresholds out of range")
        if self.party not in self.public_shares:
            raise MisuseError(f"party {self.party} is not in the key's party set")
        if CURVE.base_multiply(self.share) != self.public_shares[self.party]:
            raise MisuseError(f"share of party {self.party} does not match its public share")
        if any(info.ring_pedersen.n != info.paillier.n for info in self.aux.values()):
            raise MisuseError("ring-Pedersen modulus must equal the Paillier modulus")
        if self.aux[self.party].paillier.n != self.paillier_secret.n:
            raise MisuseError("own Paillier key does not match the published modulus")
        if len(self.chain_code) != 32:
            raise MisuseError("chain code must be 32 bytes")
        for party, info in self.aux.items():
            if info.paillier.bits < self.min_modulus_bits:
                raise MisuseError(f"Paillier modulus of party {party} is too small")
        object.__setattr__(self, "_key_id", self._compute_key_id())

    @property
    def parties(self) -> tuple[PartyId, ...]:
        """Every party's id, sorted."""
        return tuple(sorted(self.public_shares))

    @property
    def key_id(self) -> bytes:
        """A 32-byte id of the public key material (public key, shares, chain code, epoch,
        every party's aux info)."""
        return self._key_id

    def _compute_key_id(self) -> bytes:
        h = hashlib.sha256(b"shardvault/cggmp21/key-id/v1")
        h.update(self.public_key.to_bytes() + self.chain_code)
        h.update(self.epoch.to_bytes(8, "big"))
        for party in self.parties:
            h.update(party.to_bytes(2, "big") + self.public_shares[party].to_bytes())
            h.update(self.aux[party].ring_pedersen.to_bytes())
        return h.digest()

    def aux_binding(self, parties: tuple[PartyId, ...]) -> bytes:
        """The digest of ``parties`` and their aux info that every proof binds."""
        return aux_binding(
            [
                (
                    p,
                    self.aux[p].paillier.n,
                    self.aux[p].ring_pedersen.s,
                    self.aux[p].ring_pedersen.t,
                )
                for p in parties
            ]
        )

    def crt(self) -> CrtExp:
        """CRT exponentiation modulo this party's own ``N`` (for its verifications)."""
        return CrtExp(self.paillier_secret.p, self.paillier_secret.q)

    def additive_share(self, signers: tuple[PartyId, ...]) -> Scalar:
        """``w_i = λ_i·x_i``: this party's additive share of the key for ``signers``.

        Raises:
            MisuseError: this party is not a signer or there are too few signers.
        """
        self._check_signers(signers)
        return lagrange_coefficient(CURVE, self.party, signers) * self.share

    def additive_public_share(self, party: PartyId, signers: tuple[PartyId, ...]) -> Point:
        """``W_j = λ_j·X_j`` for a signer ``party``."""
        return self.public_shares[party] * lagrange_coefficient(CURVE, party, signers)

    def _check_signers(self, signers: tuple[PartyId, ...]) -> None:
        if self.party not in signers:
            raise MisuseError(f"party {self.party} is not among the signers")
        if len(signers) < self.min_signers:
            raise MisuseError(f"{len(signers)} signers, at least {self.min_signers} needed")
        unknown = [p for p in signers if p not in self.public_shares]
        if unknown:
            raise MisuseError(f"signers {unknown} are not parties of this key")

    def with_tweak(self, tweak: Scalar, chain_code: bytes) -> KeyShare:
        """The share of the key ``X + tweak·G``: every share and public share gets ``+tweak``.

        Shamir shares of ``x`` plus the same ``tweak`` are Shamir shares of ``x + tweak``,
        because the Lagrange coefficients of any quorum sum to one (BIP32-style additive
        derivation, :mod:`shardvault.crypto.protocols.cggmp21.bip32`).
        """
        offset = CURVE.base_multiply(tweak)
        return KeyShare(
            party=self.party,
            min_signers=self.min_signers,
            max_signers=self.max_signers,
            share=self.share + tweak,
            public_shares={p: x + offset for p, x in self.public_shares.items()},
            public_key=self.public_key + offset,
            chain_code=chain_code,
            aux=self.aux,
            paillier_secret=self.paillier_secret,
            epoch=self.epoch,
            min_modulus_bits=self.min_modulus_bits,
        )

    def to_bytes(self) -> bytes:
        """Canonical CBOR, secrets included: encrypt before storing."""
        parties = self.parties
        fields: dict[str, WireValue] = {
            "format": KEY_SHARE_FORMAT_VERSION,
            "curve": CURVE.name,
            "party": int(self.party),
            "min_signers": self.min_signers,
            "max_signers": self.max_signers,
            "share": self.share.to_bytes(),
            "party_ids": [int(p) for p in parties],
            "public_shares": [self.public_shares[p].to_bytes() for p in parties],
            "public_key": self.public_key.to_bytes(),
            "chain_code": self.chain_code,
            "paillier_n": [self.aux[p].paillier.n for p in parties],
            "ring_pedersen_s": [self.aux[p].ring_pedersen.s for p in parties],
            "ring_pedersen_t": [self.aux[p].ring_pedersen.t for p in parties],
            "paillier_secret": self.paillier_secret.to_bytes(),
            "epoch": self.epoch,
            "min_modulus_bits": self.min_modulus_bits,
        }
        return encode_wire(fields)

    @classmethod
    def from_bytes(cls, data: bytes, *, recheck_primality: bool = True) -> KeyShare:
        """Decode and validate a serialized key share.

        ``recheck_primality=False`` (a share read back from authenticated storage, whose
        Paillier primes passed the safe-prime tests when it was made) skips only those
        tests; see :meth:`PaillierSecretKey.from_primes`.

        Raises:
            EncodingError: unknown version or curve, malformed fields, invalid points or
                scalars, or an inconsistent share.
        """
        fields = decode_wire(data, _FIELDS)
        version = require_int(fields, "format")
        if version != KEY_SHARE_FORMAT_VERSION:
            raise EncodingError(f"unknown key share format version {version}")
        if fields.get("curve") != CURVE.name:
            raise EncodingError("key share is not for secp256k1")
        try:
            parties = party_set(_int_list(fields, "party_ids"))
            points = _bytes_list(fields, "public_shares")
            ns = _int_list(fields, "paillier_n")
            ss = _int_list(fields, "ring_pedersen_s")
            ts = _int_list(fields, "ring_pedersen_t")
            if not len(parties) == len(points) == len(ns) == len(ss) == len(ts):
                raise EncodingError("key share lists have different lengths")
            min_bits = require_int(fields, "min_modulus_bits")
            secret = PaillierSecretKey.from_bytes(
                require_bytes(fields, "paillier_secret"),
                min_modulus_bits=min_bits,
                unsafe_test_only=min_bits < MIN_MODULUS_BITS,
                recheck_primality=recheck_primality,
            )
            return cls(
                party=PartyId(require_int(fields, "party")),
                min_signers=require_int(fields, "min_signers"),
                max_signers=require_int(fields, "max_signers"),
                share=CURVE.decode_scalar(require_bytes(fields, "share", 32)),
                public_shares={
                    p: CURVE.decode_point(b) for p, b in zip(parties, points, strict=True)
                },
                public_key=CURVE.decode_point(require_bytes(fields, "public_key", 33)),
                chain_code=require_bytes(fields, "chain_code", 32),
                aux={
                    p: PublicAuxInfo(PaillierPublicKey(n), RingPedersenParams(n, s, t))
                    for p, n, s, t in zip(parties, ns, ss, ts, strict=True)
                },
                paillier_secret=secret,
                epoch=require_int(fields, "epoch"),
                min_modulus_bits=min_bits,
            )
        except MisuseError as exc:
            raise EncodingError(f"key share is inconsistent: {exc}") from exc


_FIELDS = (
    "format",
    "curve",
    "party",
    "min_signers",
    "max_signers",
    "share",
    "party_ids",
    "public_shares",
    "public_key",
    "chain_code",
    "paillier_n",
    "ring_pedersen_s",
    "ring_pedersen_t",
    "paillier_secret",
    "epoch",
    "min_modulus_bits",
)


def _int_list(fields: Mapping[str, WireValue], name: str) -> list[int]:
    value = fields.get(name)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise EncodingError(f"field {name} must be a list of integers")
    return [v for v in value if isinstance(v, int)]


def _bytes_list(fields: Mapping[str, WireValue], name: str) -> list[bytes]:
    value = fields.get(name)
    if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
        raise EncodingError(f"field {name} must be a list of byte strings")
    return [v for v in value if isinstance(v, bytes)]
