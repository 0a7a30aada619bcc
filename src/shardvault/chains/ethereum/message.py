"""EIP-191 signed messages (version 0x45, ``personal_sign``) and 65-byte message signatures.

EIP-191 "Specification": the signed data is ``0x19 ‖ "Ethereum Signed Message:\\n" ‖
len(message) ‖ message`` with the length in ASCII decimal, and the digest is its keccak256.
Message signatures (EIP-191 and EIP-712 alike) travel as 65 bytes ``r ‖ s ‖ v`` with
``v = 27 + y_parity``.
"""

from __future__ import annotations

from eth_hash.auto import keccak

from shardvault.chains.errors import SignatureAssemblyError
from shardvault.chains.ethereum.address import Address, address_from_public_key
from shardvault.chains.ethereum.errors import InvalidFieldError
from shardvault.chains.ethereum.models import Signature
from shardvault.chains.ethereum.signature import recover_public_key

MAX_MESSAGE_BYTES = 64 * 1024
"""The longest message shardvault will hash for ``personal_sign``."""

_PERSONAL_PREFIX = b"\x19Ethereum Signed Message:\n"


def personal_message_hash(message: bytes) -> bytes:
    """The EIP-191 version 0x45 digest of ``message`` (what ``personal_sign`` signs).

    Raises:
        InvalidFieldError: ``message`` is not bytes or is longer than MAX_MESSAGE_BYTES.
    """
    if not isinstance(message, bytes):
        raise InvalidFieldError("must be bytes", field="message")
    if len(message) > MAX_MESSAGE_BYTES:
        raise InvalidFieldError(f"is longer than {MAX_MESSAGE_BYTES} bytes", field="message")
    return bytes(keccak(_PERSONAL_PREFIX + str(len(message)).encode("ascii") + message))


def encode_message_signature(signature: Signature) -> bytes:
    """Serialise a message signature as 65 bytes ``r ‖ s ‖ (27 + y_parity)``."""
    return (
        signature.r.to_bytes(32, "big")
        + signature.s.to_bytes(32, "big")
        + bytes([27 + signature.y_parity])
    )


def decode_message_signature(data: bytes) -> Signature:
    """Parse a 65-byte ``r ‖ s ‖ v`` message signature (v in 0, 1, 27, 28).

    Raises:
        SignatureAssemblyError: wrong length, bad ``v``, r/s out of range or high s.
    """
    if not isinstance(data, bytes) or len(data) != 65:
        raise SignatureAssemblyError("must be 65 bytes r ‖ s ‖ v", field="signature")
    v = data[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise SignatureAssemblyError("v must be 27 or 28 (or 0 or 1)", field="signature")
    return Signature(int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big"), v)


def recover_message_signer(digest: bytes, signature: Signature) -> Address:
    """The address whose key made ``signature`` over a message ``digest``.

    Raises:
        SignatureAssemblyError: no public key recovers from the signature.
    """
    return address_from_public_key(recover_public_key(digest, signature))
