"""Program-derived addresses and associated token accounts.

A program-derived address (PDA) is ``SHA256(seed_1 || ... || seed_n || program_id ||
"ProgramDerivedAddress")`` provided it is NOT a valid Ed25519 point, so that no private key
can exist for it (Solana ``Pubkey::create_program_address``); ``find_program_address``
appends a one-byte bump seed, trying 255 down to 0, and returns the first off-curve result.
At most 16 seeds of at most 32 bytes each are allowed.

The on-curve test must match Solana's, which only asks whether the 32 bytes decompress to
a point (curve25519-dalek ``CompressedEdwardsY::decompress``). libsodium's
``crypto_core_ed25519_is_valid_point`` is stricter (it also rejects points outside the
prime-order subgroup, which is most of the curve), so it would wrongly call many on-curve
hashes off-curve. Here the decompression is done by libsodium's
``crypto_core_ed25519_add``, which accepts any point on the curve and fails exactly when
the encoding does not decode to one.

The associated token account of a wallet for a mint is the PDA of the seeds
``[wallet, token_program_id, mint]`` under the Associated Token Account program (SPL
Associated Token Account, "Specification").
"""

import hashlib
from collections.abc import Sequence

from nacl.bindings import crypto_core_ed25519_add
from nacl.exceptions import RuntimeError as NaclRuntimeError

from shardvault.chains.errors import InvalidAddressError
from shardvault.chains.solana.models import Pubkey

SYSTEM_PROGRAM_ID = Pubkey(bytes(32))
"""The System Program (base58 ``11111111111111111111111111111111``)."""

TOKEN_PROGRAM_ID = Pubkey.from_base58("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
"""The SPL Token program."""

TOKEN_2022_PROGRAM_ID = Pubkey.from_base58("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
"""The SPL Token-2022 program (same instruction layout for transfers)."""

ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_base58("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
"""The SPL Associated Token Account program."""

MAX_SEEDS = 16
"""Solana ``MAX_SEEDS``."""

MAX_SEED_LEN = 32
"""Solana ``MAX_SEED_LEN``."""

_PDA_MARKER = b"ProgramDerivedAddress"

# The Ed25519 base point, the second operand of the decompression probe.
_BASE_POINT = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")


def is_on_curve(raw: bytes) -> bool:
    """Whether 32 bytes decode to a point of Ed25519 (any subgroup), as Solana decides it."""
    if len(raw) != 32:
        return False
    try:
        crypto_core_ed25519_add(raw, _BASE_POINT)
    except NaclRuntimeError:
        return False
    return True


def _check_seeds(seeds: Sequence[bytes]) -> None:
    if len(seeds) > MAX_SEEDS:
        raise InvalidAddressError(f"{len(seeds)} seeds; at most 16", field="seeds")
    for i, seed in enumerate(seeds):
        if len(seed) > MAX_SEED_LEN:
            raise InvalidAddressError(f"is {len(seed)} bytes; at most 32", field=f"seeds[{i}]")


def create_program_address(seeds: Sequence[bytes], program_id: Pubkey) -> Pubkey:
    """Solana ``create_program_address``.

    Raises:
        InvalidAddressError: too many or too long seeds, or a hash that lies on the curve.
    """
    _check_seeds(seeds)
    digest = hashlib.sha256(b"".join(seeds) + program_id.raw + _PDA_MARKER).digest()
    if is_on_curve(digest):
        raise InvalidAddressError("derived address lies on the Ed25519 curve", field="seeds")
    return Pubkey(digest)


def find_program_address(seeds: Sequence[bytes], program_id: Pubkey) -> tuple[Pubkey, int]:
    """Solana ``find_program_address``: the address and the bump seed that made it.

    Raises:
        InvalidAddressError: bad seeds (at most 15 of the caller's, since the bump is one),
            or no bump in 255..0 works (probability 2**-256).
    """
    _check_seeds([*seeds, b"\x00"])
    for bump in range(255, -1, -1):
        try:
            return create_program_address([*seeds, bytes([bump])], program_id), bump
        except InvalidAddressError:
            continue
    raise InvalidAddressError("no bump seed gives an off-curve address", field="seeds")


def associated_token_address(
    wallet: Pubkey, mint: Pubkey, token_program_id: Pubkey = TOKEN_PROGRAM_ID
) -> Pubkey:
    """The associated token account of ``wallet`` for ``mint``."""
    address, _ = find_program_address(
        [wallet.raw, token_program_id.raw, mint.raw], ASSOCIATED_TOKEN_PROGRAM_ID
    )
    return address
