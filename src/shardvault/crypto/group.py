"""Typed prime-order groups: secp256k1 through libsecp256k1, Ed25519 through libsodium.

This module is the only place that touches curve points. It wraps coincurve (libsecp256k1)
and PyNaCl's bindings to libsodium's ``crypto_core_ed25519`` and
``crypto_scalarmult_ed25519`` functions; it implements no curve arithmetic of its own.
Scalars are integers modulo the group order.

Encodings are exactly those of RFC 9591's ciphersuites:

* FROST(Ed25519, SHA-512), RFC 9591 §6.1: an element is the 32-byte RFC 8032 point
  encoding; a scalar is 32 bytes little-endian.
* FROST(secp256k1, SHA-256), RFC 9591 §6.5: an element is the 33-byte SEC1 compressed
  point; a scalar is 32 bytes big-endian.

Deserialising a peer's element validates it (RFC 9591 §4.1 ``DeserializeElement``): the
encoding must be canonical and on the curve, must not be the identity, and for Ed25519 must
lie in the prime-order subgroup (so small-order and mixed-order points are refused).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Final, Literal

import coincurve
from nacl import bindings as sodium
from nacl.exceptions import RuntimeError as SodiumRuntimeError

from shardvault.crypto.errors import InvalidPointError, InvalidScalarError, MisuseError
from shardvault.crypto.rng import RandomSource


class Scalar:
    """An element of the scalar field of a group (an integer modulo the group order).

    Security: a scalar may be secret (a key share, a nonce). Its ``repr`` never shows the
    value; compare scalars with ``==`` only where timing does not matter.
    """

    __slots__ = ("group", "value")

    def __init__(self, group: Group, value: int) -> None:
        self.group: Final = group
        self.value: Final = value % group.order

    def _other(self, other: Scalar | int) -> int:
        if isinstance(other, int):
            return other
        if other.group is not self.group:
            raise MisuseError(f"scalar of {other.group.name} mixed with {self.group.name}")
        return other.value

    def __add__(self, other: Scalar | int) -> Scalar:
        return Scalar(self.group, self.value + self._other(other))

    __radd__ = __add__

    def __sub__(self, other: Scalar | int) -> Scalar:
        return Scalar(self.group, self.value - self._other(other))

    def __rsub__(self, other: Scalar | int) -> Scalar:
        return Scalar(self.group, self._other(other) - self.value)

    def __mul__(self, other: Scalar | int) -> Scalar:
        return Scalar(self.group, self.value * self._other(other))

    __rmul__ = __mul__

    def __neg__(self) -> Scalar:
        return Scalar(self.group, -self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return self.group is other.group and self.value == other.value

    def __hash__(self) -> int:
        return hash((self.group.name, self.value))

    def __repr__(self) -> str:
        return f"Scalar({self.group.name}, <redacted>)"

    def is_zero(self) -> bool:
        """Whether this is the zero scalar."""
        return self.value == 0

    def inverse(self) -> Scalar:
        """The multiplicative inverse.

        Raises:
            MisuseError: the scalar is zero.
        """
        if self.value == 0:
            raise MisuseError("zero has no inverse")
        return Scalar(self.group, pow(self.value, -1, self.group.order))

    def to_bytes(self) -> bytes:
        """RFC 9591 ``SerializeScalar`` for this scalar's ciphersuite."""
        return self.group.encode_scalar(self.value)


class Point:
    """An element of a prime-order group, or its identity.

    Points are immutable. Arithmetic delegates to the group's native library.
    """

    __slots__ = ("_raw", "group")

    def __init__(self, group: Group, raw: object) -> None:
        # ``raw`` is the group's native representation; ``None`` is the identity.
        self.group: Final = group
        self._raw: Final = raw

    @property
    def raw(self) -> object:
        """The native representation (for the group implementation only)."""
        return self._raw

    def is_identity(self) -> bool:
        """Whether this is the group's identity element."""
        return self._raw is None

    def _check(self, other: Point) -> None:
        if other.group is not self.group:
            raise MisuseError(f"point of {other.group.name} mixed with {self.group.name}")

    def __add__(self, other: Point) -> Point:
        self._check(other)
        return self.group.add(self, other)

    def __sub__(self, other: Point) -> Point:
        self._check(other)
        return self.group.add(self, self.group.negate(other))

    def __neg__(self) -> Point:
        return self.group.negate(self)

    def __mul__(self, scalar: Scalar) -> Point:
        if scalar.group is not self.group:
            raise MisuseError(f"scalar of {scalar.group.name} times point of {self.group.name}")
        return self.group.multiply(self, scalar.value)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point) or other.group is not self.group:
            return NotImplemented
        return self.group.point_bytes_or_identity(self) == self.group.point_bytes_or_identity(other)

    def __hash__(self) -> int:
        return hash((self.group.name, self.group.point_bytes_or_identity(self)))

    def __repr__(self) -> str:
        if self.is_identity():
            return f"Point({self.group.name}, identity)"
        return f"Point({self.group.name}, {self.to_bytes().hex()})"

    def to_bytes(self) -> bytes:
        """RFC 9591 ``SerializeElement``.

        Raises:
            InvalidPointError: the point is the identity, which has no encoding.
        """
        return self.group.encode_point(self)


class Group(ABC):
    """A prime-order group with RFC 9591 encodings."""

    name: str
    order: int
    scalar_length: int
    element_length: int
    _byteorder: Literal["big", "little"]

    # Scalars.

    def scalar(self, value: int) -> Scalar:
        """The scalar ``value mod order``."""
        return Scalar(self, value)

    def random_scalar(self, rng: RandomSource) -> Scalar:
        """A uniformly random non-zero scalar, by rejection sampling of ``rng`` output."""
        while True:
            value = int.from_bytes(rng(self.scalar_length), "big")
            if 0 < value < self.order:
                return Scalar(self, value)

    def scalar_from_wide_bytes(self, data: bytes) -> Scalar:
        """Reduce a wide byte string (at least 16 bytes more than the order) modulo the order.

        Used only where a specification defines such a reduction (RFC 9591 hash-to-scalar).
        """
        return Scalar(self, int.from_bytes(data, self._byteorder))

    @abstractmethod
    def encode_scalar(self, value: int) -> bytes:
        """RFC 9591 ``SerializeScalar``."""

    def decode_scalar(self, data: bytes, *, allow_zero: bool = True) -> Scalar:
        """RFC 9591 ``DeserializeScalar``: canonical encodings only.

        Raises:
            InvalidScalarError: wrong length, not below the order, or zero when refused.
        """
        if len(data) != self.scalar_length:
            raise InvalidScalarError(
                f"{self.name} scalar must be {self.scalar_length} bytes, got {len(data)}"
            )
        value = int.from_bytes(data, self._byteorder)
        if value >= self.order:
            raise InvalidScalarError(f"{self.name} scalar is not below the group order")
        if value == 0 and not allow_zero:
            raise InvalidScalarError(f"{self.name} scalar must not be zero")
        return Scalar(self, value)

    # Points.

    def identity(self) -> Point:
        """The identity element."""
        return Point(self, None)

    @abstractmethod
    def generator(self) -> Point:
        """The group's fixed generator."""

    @abstractmethod
    def base_multiply(self, scalar: Scalar) -> Point:
        """``scalar * G``."""

    @abstractmethod
    def add(self, a: Point, b: Point) -> Point:
        """``a + b``."""

    @abstractmethod
    def negate(self, a: Point) -> Point:
        """``-a``."""

    @abstractmethod
    def multiply(self, a: Point, k: int) -> Point:
        """``k * a`` for ``0 <= k < order``."""

    @abstractmethod
    def encode_point(self, a: Point) -> bytes:
        """RFC 9591 ``SerializeElement``; the identity raises :class:`InvalidPointError`."""

    @abstractmethod
    def decode_point(self, data: bytes) -> Point:
        """RFC 9591 ``DeserializeElement`` with full validation of a peer's point."""

    def point_bytes_or_identity(self, a: Point) -> bytes:
        """An encoding that also covers the identity (for equality and hashing only)."""
        return b"" if a.is_identity() else self.encode_point(a)

    def sum_points(self, points: list[Point]) -> Point:
        """The sum of ``points`` (the identity for an empty list)."""
        total = self.identity()
        for point in points:
            total = total + point
        return total

    def __repr__(self) -> str:
        return f"Group({self.name})"


class Secp256k1Group(Group):
    """secp256k1 (SEC 2), with libsecp256k1 through coincurve.

    Native points are ``coincurve.PublicKey`` objects; libsecp256k1 has no encoding of the
    point at infinity, so the identity is ``None`` and handled here.
    """

    name = "secp256k1"
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    field_prime = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
    scalar_length = 32
    element_length = 33

    _byteorder: Literal["big", "little"] = "big"

    def encode_scalar(self, value: int) -> bytes:
        return value.to_bytes(32, "big")

    def generator(self) -> Point:
        return self.base_multiply(Scalar(self, 1))

    def base_multiply(self, scalar: Scalar) -> Point:
        if scalar.value == 0:
            return self.identity()
        return Point(self, coincurve.PublicKey.from_valid_secret(scalar.value.to_bytes(32, "big")))

    def add(self, a: Point, b: Point) -> Point:
        if a.raw is None:
            return b
        if b.raw is None:
            return a
        try:
            return Point(self, coincurve.PublicKey.combine_keys([a.raw, b.raw]))  # type: ignore[list-item]
        except ValueError:
            # libsecp256k1 reports a sum at infinity as an error: a + b is the identity.
            return self.identity()

    def negate(self, a: Point) -> Point:
        if a.raw is None:
            return a
        encoded = bytearray(a.raw.format(compressed=True))  # type: ignore[attr-defined]
        # Negation keeps x and flips the parity of y, which SEC1 stores in the prefix.
        encoded[0] ^= 0x01
        return Point(self, coincurve.PublicKey(bytes(encoded)))

    def multiply(self, a: Point, k: int) -> Point:
        k %= self.order
        if a.raw is None or k == 0:
            return self.identity()
        return Point(self, a.raw.multiply(k.to_bytes(32, "big")))  # type: ignore[attr-defined]

    def encode_point(self, a: Point) -> bytes:
        if a.raw is None:
            raise InvalidPointError("the identity has no secp256k1 encoding")
        return bytes(a.raw.format(compressed=True))  # type: ignore[attr-defined]

    def decode_point(self, data: bytes) -> Point:
        if len(data) != 33 or data[0] not in (2, 3):
            raise InvalidPointError("secp256k1 point must be 33-byte SEC1 compressed")
        try:
            key = coincurve.PublicKey(bytes(data))
        except ValueError as exc:
            raise InvalidPointError("secp256k1 point is not on the curve") from exc
        return Point(self, key)

    def decode_uncompressed_or_compressed(self, data: bytes) -> Point:
        """Decode a 33- or 65-byte SEC1 point (for chain data that uses either form)."""
        if len(data) == 65 and data[0] == 4:
            try:
                return Point(self, coincurve.PublicKey(bytes(data)))
            except ValueError as exc:
                raise InvalidPointError("secp256k1 point is not on the curve") from exc
        return self.decode_point(data)

    # BIP340 helpers (x-only keys).

    def has_even_y(self, a: Point) -> bool:
        """Whether the point's y coordinate is even (BIP340 ``has_even_y``)."""
        return self.encode_point(a)[0] == 2

    def x_only(self, a: Point) -> bytes:
        """The 32-byte x coordinate (BIP340 ``bytes(P)``)."""
        return self.encode_point(a)[1:]

    def lift_x(self, x_only: bytes) -> Point:
        """BIP340 ``lift_x``: the point with this x coordinate and an even y.

        Raises:
            InvalidPointError: not 32 bytes, not below the field prime, or not on the curve.
        """
        if len(x_only) != 32:
            raise InvalidPointError("x-only key must be 32 bytes")
        if int.from_bytes(x_only, "big") >= self.field_prime:
            raise InvalidPointError("x-only key is not below the field prime")
        return self.decode_point(b"\x02" + x_only)


class Ed25519Group(Group):
    """The prime-order subgroup of edwards25519 (RFC 8032), with libsodium through PyNaCl.

    Native points are their canonical 32-byte encodings, which is what libsodium's
    ``crypto_core_ed25519_*`` functions take; the identity is ``None`` here.
    """

    name = "ed25519"
    order = 2**252 + 27742317777372353535851937790883648493
    scalar_length = 32
    element_length = 32
    _IDENTITY_ENCODING = b"\x01" + bytes(31)

    _byteorder: Literal["big", "little"] = "little"

    def encode_scalar(self, value: int) -> bytes:
        return value.to_bytes(32, "little")

    def generator(self) -> Point:
        return self.base_multiply(Scalar(self, 1))

    def base_multiply(self, scalar: Scalar) -> Point:
        if scalar.value == 0:
            return self.identity()
        return Point(
            self, sodium.crypto_scalarmult_ed25519_base_noclamp(scalar.value.to_bytes(32, "little"))
        )

    def _native(self, a: Point) -> bytes:
        return self._IDENTITY_ENCODING if a.raw is None else a.raw  # type: ignore[return-value]

    def _wrap(self, encoded: bytes) -> Point:
        return Point(self, None if encoded == self._IDENTITY_ENCODING else encoded)

    def add(self, a: Point, b: Point) -> Point:
        if a.raw is None:
            return b
        if b.raw is None:
            return a
        return self._wrap(sodium.crypto_core_ed25519_add(a.raw, b.raw))  # type: ignore[arg-type]

    def negate(self, a: Point) -> Point:
        if a.raw is None:
            return a
        return self._wrap(sodium.crypto_core_ed25519_sub(self._IDENTITY_ENCODING, a.raw))  # type: ignore[arg-type]

    def multiply(self, a: Point, k: int) -> Point:
        k %= self.order
        if a.raw is None or k == 0:
            return self.identity()
        try:
            return Point(
                self,
                sodium.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), a.raw),  # type: ignore[arg-type]
            )
        except SodiumRuntimeError as exc:
            # Only reachable for a point outside the prime-order subgroup, which decode_point
            # never yields; points built here are always in the subgroup.
            raise InvalidPointError("ed25519 point is not in the prime-order subgroup") from exc

    def encode_point(self, a: Point) -> bytes:
        if a.raw is None:
            raise InvalidPointError("the identity is not a valid ed25519 element here")
        return a.raw  # type: ignore[return-value]

    def decode_point(self, data: bytes) -> Point:
        if len(data) != 32:
            raise InvalidPointError("ed25519 point must be 32 bytes")
        # libsodium's check: canonical encoding, on the curve, in the prime-order subgroup,
        # and not of small order (which also refuses the identity).
        if not sodium.crypto_core_ed25519_is_valid_point(bytes(data)):
            raise InvalidPointError(
                "ed25519 point is non-canonical, off the curve, of small order, or outside "
                "the prime-order subgroup"
            )
        return Point(self, bytes(data))


SECP256K1: Final = Secp256k1Group()
"""The secp256k1 group (Bitcoin, Ethereum)."""

ED25519: Final = Ed25519Group()
"""The Ed25519 prime-order group (Solana and other Ed25519 chains)."""
