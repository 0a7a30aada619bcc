"""FROST key material: the public package every party shares and each party's secret package.

A key generation ends with, for each party, a :class:`KeyPackage`: its identifier, its
secret signing share ``s_i``, and the :class:`PublicKeyPackage` (group public key ``Y``,
every party's verifying share ``Y_j = s_j * G``, the thresholds and the chain code).

Before BIP340 signing the key is viewed through :func:`bip340_view`: the group key is
normalised to even y (negating every share if it is odd), and an optional BIP341 taproot
tweak ``t`` is added to every share (Lagrange coefficients over any quorum sum to one, so
adding ``t`` to each share adds ``t`` to the secret), normalising to even y once more.

Share files are canonical CBOR with a format version; decoding validates every point and
scalar, so a tampered or truncated package is refused with a typed error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from shardvault.crypto.errors import EncodingError, InvalidPointError, MisuseError
from shardvault.crypto.group import SECP256K1, Point, Scalar
from shardvault.crypto.polynomial import lagrange_coefficient_at
from shardvault.crypto.protocols.common import (
    PartyId,
    decode_wire,
    encode_wire,
    require_bytes,
    require_bytes_list,
    require_int,
)
from shardvault.crypto.protocols.frost.ciphersuite import SUITES, Ciphersuite, tagged_hash

KEY_FORMAT_VERSION = 1
"""Format version of serialized FROST key packages; every version ever written stays readable."""


@dataclass(frozen=True, slots=True)
class PublicKeyPackage:
    """The public outcome of a FROST key generation, identical at every party."""

    suite: Ciphersuite
    min_signers: int
    max_signers: int
    group_public_key: Point
    verifying_shares: Mapping[PartyId, Point]
    chain_code: bytes

    @property
    def party_ids(self) -> tuple[PartyId, ...]:
        """Every party's identifier, in order."""
        return tuple(sorted(self.verifying_shares))

    @property
    def public_key_bytes(self) -> bytes:
        """The group key as the chain encodes it (32-byte Ed25519 key, 32-byte x-only key)."""
        key = self.group_public_key
        if self.suite.x_only and not SECP256K1.has_even_y(key):
            key = -key
        return self.suite.encode_public_key(key)

    def validate(self) -> None:
        """Check that the verifying shares lie on one polynomial of degree
        ``min_signers - 1`` whose value at zero is the group key.

        Interpolating ``Y`` and every other ``Y_j`` from the first ``min_signers`` verifying
        shares catches a package whose group key, thresholds or shares were altered.

        Raises:
            EncodingError: the package is inconsistent.
        """
        group = self.suite.group
        ids = self.party_ids
        basis = ids[: self.min_signers]
        for target in (0, *ids[self.min_signers :]):
            expected = group.sum_points(
                [
                    self.verifying_shares[i] * lagrange_coefficient_at(group, i, basis, target)
                    for i in basis
                ]
            )
            actual = (
                self.group_public_key if target == 0 else self.verifying_shares[PartyId(target)]
            )
            if expected != actual:
                raise EncodingError("public key package is inconsistent (tampered or corrupt)")

    def digest(self) -> bytes:
        """SHA-256 of the package's canonical encoding: what key confirmation compares."""
        return hashlib.sha256(
            b"shardvault/frost/public-key-package/v1" + encode_wire(self._wire())  # type: ignore[arg-type]
        ).digest()

    def _wire(self) -> dict[str, object]:
        return {
            "suite": self.suite.name,
            "min_signers": self.min_signers,
            "max_signers": self.max_signers,
            "group_public_key": self.group_public_key.to_bytes(),
            "party_ids": [int(p) for p in self.party_ids],
            "verifying_shares": [self.verifying_shares[p].to_bytes() for p in self.party_ids],
            "chain_code": self.chain_code,
        }


_PUBLIC_FIELDS = (
    "format",
    "suite",
    "min_signers",
    "max_signers",
    "group_public_key",
    "party_ids",
    "verifying_shares",
    "chain_code",
)


class KeyPackage:
    """One party's FROST key: identifier, secret signing share and the public package.

    Security: ``signing_share`` is this party's secret. It never appears in ``repr``, is
    never sent, and leaves the process only encrypted (share files, the custody layer).
    The whole group secret is never formed from shares outside tests that say so.
    """

    __slots__ = ("identifier", "public", "signing_share")

    def __init__(
        self, identifier: PartyId, signing_share: Scalar, public: PublicKeyPackage
    ) -> None:
        if identifier not in public.verifying_shares:
            raise MisuseError(f"party {identifier} is not in the key's party set")
        if public.suite.group.base_multiply(signing_share) != public.verifying_shares[identifier]:
            raise MisuseError(
                f"signing share of party {identifier} does not match its public share"
            )
        self.identifier = identifier
        self.signing_share = signing_share
        self.public = public

    def __repr__(self) -> str:
        return (
            f"KeyPackage({self.public.suite.name}, party={self.identifier}, "
            f"{self.public.min_signers}-of-{self.public.max_signers}, share=<redacted>)"
        )

    def to_bytes(self) -> bytes:
        """Canonical CBOR of the package, secret share included: encrypt before storing."""
        fields = self.public._wire()
        fields.update(
            format=KEY_FORMAT_VERSION,
            identifier=int(self.identifier),
            signing_share=self.signing_share.to_bytes(),
        )
        return encode_wire(fields)  # type: ignore[arg-type]

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyPackage:
        """Decode and validate a serialized package.

        Raises:
            EncodingError: unknown format version or suite, malformed fields, invalid points
                or scalars, inconsistent thresholds, or a share that does not match its
                public share.
        """
        fields = decode_wire(data, (*_PUBLIC_FIELDS, "identifier", "signing_share"))
        version = require_int(fields, "format")
        if version != KEY_FORMAT_VERSION:
            raise EncodingError(f"unknown key package format version {version}")
        suite_name = fields.get("suite")
        if not isinstance(suite_name, str) or suite_name not in SUITES:
            raise EncodingError(f"unknown FROST suite {suite_name!r}")
        suite = SUITES[suite_name]
        group = suite.group
        min_signers = require_int(fields, "min_signers")
        max_signers = require_int(fields, "max_signers")
        party_values = fields.get("party_ids")
        if not isinstance(party_values, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p < 2**16 for p in party_values
        ):
            raise EncodingError("party_ids must be a list of identifiers")
        party_ids = [PartyId(p) for p in party_values if isinstance(p, int)]
        shares = require_bytes_list(fields, "verifying_shares")
        if len(party_ids) != max_signers or len(shares) != max_signers:
            raise EncodingError("party_ids and verifying_shares must have max_signers entries")
        if not 1 <= min_signers <= max_signers or len(set(party_ids)) != len(party_ids):
            raise EncodingError("inconsistent thresholds or repeated party ids")
        chain_code = require_bytes(fields, "chain_code", 32)
        public = PublicKeyPackage(
            suite,
            min_signers,
            max_signers,
            group.decode_point(require_bytes(fields, "group_public_key")),
            {p: group.decode_point(s) for p, s in zip(party_ids, shares, strict=True)},
            chain_code,
        )
        public.validate()
        identifier = require_int(fields, "identifier")
        share = group.decode_scalar(require_bytes(fields, "signing_share"), allow_zero=False)
        try:
            return cls(PartyId(identifier), share, public)
        except MisuseError as exc:
            raise EncodingError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class SigningKeyView:
    """The key as one signing session uses it (after BIP340 normalisation and tweak).

    Security: ``signing_share`` is secret; the view lives only as long as one signature.
    """

    group_public_key: Point
    verifying_shares: Mapping[PartyId, Point]
    signing_share: Scalar | None

    def __repr__(self) -> str:
        return "SigningKeyView(<redacted>)"


def taproot_tweak(internal_key_x: bytes, merkle_root: bytes) -> Scalar:
    """BIP341 ``taproot_tweak_pubkey``'s scalar: ``int(hash_TapTweak(P || merkle_root))``.

    ``merkle_root`` is empty for a key-path-only output (BIP341 recommends the tweak even
    then, so that no hidden script path exists).

    Raises:
        InvalidPointError: the tweak is not below the group order (probability ~2**-128).
    """
    if len(merkle_root) not in (0, 32):
        raise MisuseError("taproot merkle root must be empty or 32 bytes")
    value = int.from_bytes(tagged_hash("TapTweak", internal_key_x + merkle_root), "big")
    if value >= SECP256K1.order:
        raise InvalidPointError("taproot tweak is not below the group order")
    return SECP256K1.scalar(value)


def signing_view(
    public: PublicKeyPackage,
    signing_share: Scalar | None,
    taproot_merkle_root: bytes | None = None,
) -> SigningKeyView:
    """The key a signing session uses: as is, or normalised for BIP340 (and tweaked).

    For the BIP340 suite (BIP340 §Design, BIP341 §Constructing and spending Taproot
    outputs): if the group key ``Y`` has odd y, every share and verifying share is negated
    so that ``Y`` becomes even; with ``taproot_merkle_root`` (``b""`` for key path only),
    the tweak ``t`` is added to every share and ``t * G`` to every verifying share, and the
    result is normalised to even y again.
    """
    if not public.suite.x_only:
        if taproot_merkle_root is not None:
            raise MisuseError(f"suite {public.suite.name} has no taproot tweak")
        return SigningKeyView(public.group_public_key, public.verifying_shares, signing_share)
    key = public.group_public_key
    shares = dict(public.verifying_shares)
    share = signing_share

    def negate_all() -> None:
        nonlocal key, share
        key = -key
        for party in shares:
            shares[party] = -shares[party]
        if share is not None:
            share = -share

    if not SECP256K1.has_even_y(key):
        negate_all()
    if taproot_merkle_root is not None:
        tweak = taproot_tweak(SECP256K1.x_only(key), taproot_merkle_root)
        tweak_point = SECP256K1.base_multiply(tweak)
        key = key + tweak_point
        if key.is_identity():
            raise InvalidPointError("tweaked taproot key is the point at infinity")
        for party in shares:
            shares[party] = shares[party] + tweak_point
        if share is not None:
            share = share + tweak
        if not SECP256K1.has_even_y(key):
            negate_all()
    return SigningKeyView(key, shares, share)
