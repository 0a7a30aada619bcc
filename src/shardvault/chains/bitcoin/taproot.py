"""Taproot output keys: the BIP341 tweak of an internal key (key-path spending).

BIP341 "Constructing and spending Taproot outputs": with an internal x-only key ``P`` and
an optional script-tree Merkle root ``r``, the tweak is
``t = hash_TapTweak(P || r)`` (or ``hash_TapTweak(P)`` without scripts; BIP86 uses the
latter) and the output key is ``Q = P + t*G``, of which only the x coordinate goes on
chain. The point addition runs inside libsecp256k1 (coincurve ``PublicKeyXOnly.tweak_add``).
A signer holding ``P``'s secret (or shares of it) signs for ``Q`` by adding ``t`` to the
secret after negating it when ``P`` has an odd y, which is why :func:`taproot_tweak`
returns ``t`` itself.
"""

from dataclasses import dataclass

from coincurve import PublicKeyXOnly

from shardvault.chains.bitcoin.address import Network, encode_segwit_address
from shardvault.chains.bitcoin.encoding import tagged_hash
from shardvault.chains.errors import InvalidAddressError

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order n of secp256k1's group; a tweak must be below it (BIP341)."""


def _xonly(key: bytes, field: str) -> PublicKeyXOnly:
    if len(key) != 32:
        raise InvalidAddressError("must be a 32-byte x-only public key", field=field)
    try:
        return PublicKeyXOnly(key)
    except ValueError:
        raise InvalidAddressError("is not the x coordinate of a curve point", field=field) from None


def taproot_tweak(internal_key: bytes, merkle_root: bytes | None = None) -> bytes:
    """BIP341 ``taproot_tweak_pubkey``'s ``t``: hash_TapTweak(P || merkle_root), 32 bytes.

    Raises:
        InvalidAddressError: ``internal_key`` is not a valid x-only key, ``merkle_root`` is
            not 32 bytes, or the tweak is not below the group order (negligible).
    """
    _xonly(internal_key, "internal_key")
    if merkle_root is not None and len(merkle_root) != 32:
        raise InvalidAddressError("must be 32 bytes", field="merkle_root")
    tweak = tagged_hash("TapTweak", internal_key + (merkle_root or b""))
    if int.from_bytes(tweak, "big") >= SECP256K1_ORDER:
        raise InvalidAddressError("tweak is not below the group order", field="internal_key")
    return tweak


@dataclass(frozen=True, slots=True)
class TaprootOutputKey:
    """A tweaked output key: the x-only key on chain and the parity of its y coordinate."""

    x_only: bytes
    parity: int

    @property
    def script_pubkey(self) -> bytes:
        """``OP_1 <32 bytes>``."""
        return b"\x51\x20" + self.x_only

    def address(self, network: Network) -> str:
        """The bech32m P2TR address on ``network``."""
        return encode_segwit_address(network, 1, self.x_only)


def output_key(internal_key: bytes, merkle_root: bytes | None = None) -> TaprootOutputKey:
    """BIP341 ``taproot_tweak_pubkey``: Q = P + hash_TapTweak(P || r)·G.

    Raises:
        InvalidAddressError: as :func:`taproot_tweak`.
    """
    tweak = taproot_tweak(internal_key, merkle_root)
    key = _xonly(internal_key, "internal_key")
    try:
        key.tweak_add(tweak)
    except ValueError:
        raise InvalidAddressError(
            "tweaked key is the point at infinity", field="internal_key"
        ) from None
    return TaprootOutputKey(key.format(), int(key.parity))


def p2tr_address(internal_key: bytes, network: Network) -> str:
    """The key-path-only (BIP86-style) P2TR address of an internal x-only key."""
    return output_key(internal_key).address(network)
