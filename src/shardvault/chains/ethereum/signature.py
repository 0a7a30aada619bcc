"""Attaching an externally produced ECDSA signature to a transaction, and recovering signers.

The signature comes from wherever the key lives (an MPC quorum, a KMS, an HSM, an offline
signer); this module only checks it and places it. ``v`` follows EIP-155 for legacy
transactions (``chain_id * 2 + 35 + y``, or ``27 + y`` before EIP-155) and is the bare y
parity for EIP-2930/EIP-1559 transactions. High-s signatures are refused (EIP-2).
Public-key recovery uses libsecp256k1's recoverable-signature module through coincurve.
"""

from __future__ import annotations

import coincurve

from shardvault.chains.errors import SignatureAssemblyError
from shardvault.chains.ethereum.address import Address, address_from_public_key
from shardvault.chains.ethereum.digest import signing_hash
from shardvault.chains.ethereum.models import (
    SECP256K1_ORDER,
    LegacyTransaction,
    Signature,
    SignedTransaction,
    Transaction,
)


def assemble(tx: Transaction, r: int, s: int, y_parity: int) -> SignedTransaction:
    """Attach (r, s, y_parity) to ``tx``.

    Raises:
        SignatureAssemblyError: r or s out of range, s high, or y_parity not 0 or 1.
    """
    return SignedTransaction(tx, Signature(r, s, y_parity))


def y_parity_from_v(tx: Transaction, v: int) -> int:
    """Turn a serialised ``v`` back into the y parity, checking it matches ``tx``'s chain id.

    Typed transactions accept 0/1 (and 27/28 as many signers emit). Legacy transactions
    with a chain id accept only ``chain_id * 2 + 35 + {0, 1}``; without one, 27 or 28.

    Raises:
        SignatureAssemblyError: ``v`` does not fit the transaction's type and chain id.
    """
    if not isinstance(v, int) or isinstance(v, bool):
        raise SignatureAssemblyError("must be an integer", field="v")
    if isinstance(tx, LegacyTransaction):
        base = 27 if tx.chain_id is None else tx.chain_id * 2 + 35
        if v - base not in (0, 1):
            raise SignatureAssemblyError(
                f"must be {base} or {base + 1} for this transaction's chain id", field="v"
            )
        return v - base
    if v in (0, 1):
        return v
    if v in (27, 28):
        return v - 27
    raise SignatureAssemblyError("must be 0 or 1 for a typed transaction", field="v")


def assemble_from_v(tx: Transaction, r: int, s: int, v: int) -> SignedTransaction:
    """Attach a signature given as (r, s, v) in any of the usual ``v`` conventions.

    Raises:
        SignatureAssemblyError: see :func:`y_parity_from_v` and :func:`assemble`.
    """
    return assemble(tx, r, s, y_parity_from_v(tx, v))


def recover_public_key(digest: bytes, signature: Signature) -> bytes:
    """Recover the 33-byte compressed public key that made ``signature`` over ``digest``.

    Raises:
        SignatureAssemblyError: the digest is not 32 bytes or no public key recovers.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise SignatureAssemblyError("must be 32 bytes", field="digest")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            signature.to_bytes(), digest, hasher=None
        )
    except (ValueError, TypeError) as exc:
        raise SignatureAssemblyError("recovers no public key", field="signature") from exc
    return bytes(key.format(compressed=True))


def signature_for_public_key(digest: bytes, r: int, s: int, public_key: bytes) -> Signature:
    """Complete (r, s) made by ``public_key`` over ``digest`` with its y parity.

    Signers such as KMS, HSMs and MPC quorums return (r, s) without a recovery id; the
    parity is the one whose recovered key equals the expected key. Finding it also proves
    that the signature verifies for that key over this digest.

    Raises:
        SignatureAssemblyError: the signature is malformed or high-s, the public key is
            invalid, or neither parity recovers ``public_key`` (wrong key or wrong digest).
    """
    try:
        expected = coincurve.PublicKey(public_key).format(compressed=True)
    except (ValueError, TypeError) as exc:
        raise SignatureAssemblyError("is not a secp256k1 public key", field="public_key") from exc
    for y_parity in (0, 1):
        candidate = Signature(r, s, y_parity)
        try:
            if recover_public_key(digest, candidate) == expected:
                return candidate
        except SignatureAssemblyError:
            continue
    raise SignatureAssemblyError(
        "does not verify for the given public key over this digest", field="signature"
    )


def assemble_with_public_key(
    tx: Transaction, r: int, s: int, public_key: bytes
) -> SignedTransaction:
    """Attach (r, s) made by ``public_key``, finding the y parity by recovery.

    Raises:
        SignatureAssemblyError: see :func:`signature_for_public_key`.
    """
    return SignedTransaction(tx, signature_for_public_key(signing_hash(tx), r, s, public_key))


def recover_sender(signed: SignedTransaction) -> Address:
    """The address that signed ``signed`` (its ``from``).

    Raises:
        SignatureAssemblyError: the signature recovers no public key.
    """
    digest = signing_hash(signed.transaction)
    return address_from_public_key(recover_public_key(digest, signed.signature))


def normalize_s(r: int, s: int, y_parity: int) -> Signature:
    """Return the low-s form of a signature (s' = n - s flips the parity of R's y).

    For signers (HSMs, some KMS) that return high s about half the time. The result is
    the same signature in EIP-2's canonical form, not a new one.

    Raises:
        SignatureAssemblyError: r or s out of range, or y_parity not 0 or 1.
    """
    if isinstance(s, int) and not isinstance(s, bool) and s > SECP256K1_ORDER // 2:
        return Signature(r, SECP256K1_ORDER - s, y_parity ^ 1 if y_parity in (0, 1) else y_parity)
    return Signature(r, s, y_parity)
