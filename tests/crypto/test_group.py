"""The group layer against its native libraries and RFC 9591's encoding rules."""

import hashlib
import secrets

import coincurve
import nacl.bindings as sodium
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardvault.crypto.errors import InvalidPointError, InvalidScalarError, MisuseError
from shardvault.crypto.group import ED25519, SECP256K1, Group

GROUPS = [SECP256K1, ED25519]


def scalars(group: Group) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=group.order - 1)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@given(data=st.data())
def test_group_laws(group: Group, data: st.DataObject) -> None:
    a = group.scalar(data.draw(scalars(group)))
    b = group.scalar(data.draw(scalars(group)))
    g = group.generator()
    assert group.base_multiply(a + b) == g * a + g * b
    assert group.base_multiply(a * b) == (g * a) * b
    assert group.base_multiply(a - b) == g * a - g * b
    assert (g * a) - (g * a) == group.identity()
    assert (g * a) + group.identity() == g * a
    if not a.is_zero():
        assert a * a.inverse() == group.scalar(1)
        point = g * a
        assert group.decode_point(point.to_bytes()) == point


def test_secp256k1_generator_matches_sec2() -> None:
    g = SECP256K1.generator().to_bytes()
    assert g.hex() == "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


def test_ed25519_generator_matches_rfc8032() -> None:
    g = ED25519.generator().to_bytes()
    assert g.hex() == "5866666666666666666666666666666666666666666666666666666666666666"


def test_secp256k1_base_multiply_matches_coincurve() -> None:
    secret = secrets.token_bytes(32)
    expected = coincurve.PrivateKey(secret).public_key.format(compressed=True)
    scalar = SECP256K1.decode_scalar(secret)
    assert SECP256K1.base_multiply(scalar).to_bytes() == expected


def test_ed25519_base_multiply_matches_libsodium_keypair() -> None:
    seed = secrets.token_bytes(32)
    public, _secret_key = sodium.crypto_sign_seed_keypair(seed)
    # RFC 8032 §5.1.5: the secret scalar is the clamped lower half of SHA-512(seed).

    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    scalar = ED25519.scalar(int.from_bytes(digest, "little"))
    assert ED25519.base_multiply(scalar).to_bytes() == public


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_identity_has_no_encoding(group: Group) -> None:
    with pytest.raises(InvalidPointError):
        group.identity().to_bytes()


def test_ed25519_rejects_identity_small_order_and_noncanonical() -> None:
    identity = b"\x01" + bytes(31)
    # A point of order 8 (the torsion subgroup), from RFC 8032's curve.
    order_eight = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
    # A non-canonical encoding of y = p (which reduces to y = 0).
    non_canonical = bytes.fromhex(
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
    )
    # A mixed-order point: generator plus a point of order 8.
    g = ED25519.generator().to_bytes()
    mixed = sodium.crypto_core_ed25519_add(g, order_eight)
    for bad in (identity, order_eight, non_canonical, mixed, b"\x00" * 31):
        with pytest.raises(InvalidPointError):
            ED25519.decode_point(bad)


def test_secp256k1_rejects_off_curve_and_wrong_prefix() -> None:
    good = SECP256K1.generator().to_bytes()
    with pytest.raises(InvalidPointError):
        SECP256K1.decode_point(b"\x04" + good[1:])
    with pytest.raises(InvalidPointError):
        SECP256K1.decode_point(good[:-1])
    # x = 5 is not the x coordinate of any secp256k1 point (5**3 + 7 = 132 is a non-residue).
    with pytest.raises(InvalidPointError):
        SECP256K1.decode_point(b"\x02" + (5).to_bytes(32, "big"))
    with pytest.raises(InvalidPointError):
        SECP256K1.lift_x((SECP256K1.field_prime).to_bytes(32, "big"))


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_scalar_decoding_is_canonical(group: Group) -> None:
    with pytest.raises(InvalidScalarError):
        group.decode_scalar(group.encode_scalar(group.order - 1)[:-1])
    too_big = (group.order).to_bytes(32, "big" if group is SECP256K1 else "little")
    with pytest.raises(InvalidScalarError):
        group.decode_scalar(too_big)
    with pytest.raises(InvalidScalarError):
        group.decode_scalar(bytes(32), allow_zero=False)
    assert group.decode_scalar(bytes(32)).is_zero()


def test_groups_do_not_mix() -> None:
    with pytest.raises(MisuseError):
        SECP256K1.scalar(1) + ED25519.scalar(1)
    with pytest.raises(MisuseError):
        SECP256K1.generator() * ED25519.scalar(2)
    with pytest.raises(MisuseError):
        ED25519.scalar(0).inverse()


def test_scalar_repr_hides_value() -> None:
    secret = SECP256K1.scalar(123456789)
    assert "123456789" not in repr(secret)


def test_secp256k1_lift_x_even_y() -> None:
    point = SECP256K1.base_multiply(SECP256K1.scalar(7))
    lifted = SECP256K1.lift_x(SECP256K1.x_only(point))
    assert SECP256K1.has_even_y(lifted)
    assert lifted in (point, -point)


def test_sum_at_infinity_is_identity() -> None:
    p = SECP256K1.base_multiply(SECP256K1.scalar(5))
    assert (p + (-p)).is_identity()
    q = ED25519.base_multiply(ED25519.scalar(5))
    assert (q + (-q)).is_identity()
