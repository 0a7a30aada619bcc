"""Backup and recovery: a party's shares exported to an offline recovery key.

A backup bundle holds the decrypted shares of one party in one workspace, encrypted to
a *recovery public key* whose private half is kept offline (paper, HSM, safe). Two
recipient kinds, built from pyca/cryptography primitives:

- ``x25519``: HPKE-style (the DHKEM + HKDF + AEAD structure of RFC 9180, not its wire
  format): an ephemeral X25519 key agreement with the recipient key, HKDF-SHA256
  (RFC 5869) with ``info = domain || ephemeral public || recipient public``, then
  AES-256-GCM;
- ``rsa``: a random AES-256 content key encrypted with RSA-OAEP-SHA256 (RFC 8017
  §7.1) to an RSA-4096 recipient key, then AES-256-GCM.

Bundle format 1 (integers big-endian)::

    magic "SVBK" | u16 format=1 | u16 len || header JSON (kind, workspace, party_id,
    created_at, count) | u16 len || encapsulated key | 12-byte nonce | AES-256-GCM
    ciphertext of the CBOR payload, with everything before the nonce as associated data

Restoring re-seals every share under the configured backend and writes it as a new
revision (compare-and-swap), with its presignature epoch set above both the backed-up
epoch and the epoch currently stored, so that presignatures consumed after the backup
was taken are refused after the restore. A restore that would replace a newer share
version (a key refresh happened after the backup) is refused.
"""

from __future__ import annotations

import json
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shardvault.custody.envelope import ShareAddress, ShareSlot, inspect
from shardvault.custody.errors import BackupError, EnvelopeError, RecordNotFoundError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody

MAGIC = b"SVBK"
"""The first four bytes of a backup bundle."""

_FORMAT = 1
_HKDF_INFO = b"shardvault/backup/x25519-hkdf-sha256-aes256gcm/v1"
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_RSA_BITS = 4096

RecoveryPublicKey = x25519.X25519PublicKey | rsa.RSAPublicKey
RecoveryPrivateKey = x25519.X25519PrivateKey | rsa.RSAPrivateKey


def generate_recovery_key(kind: str = "x25519") -> RecoveryPrivateKey:
    """A new recovery key pair (``x25519`` or ``rsa`` for RSA-4096)."""
    if kind == "x25519":
        return x25519.X25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    raise BackupError(f"unknown recovery key kind {kind!r}")


def private_key_pem(key: RecoveryPrivateKey, passphrase: SecretBytes) -> bytes:
    """The private key as PKCS#8 PEM encrypted under ``passphrase``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.reveal()),
    )


def public_key_pem(key: RecoveryPrivateKey | RecoveryPublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM."""
    public = (
        key.public_key() if isinstance(key, x25519.X25519PrivateKey | rsa.RSAPrivateKey) else key
    )
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> RecoveryPublicKey:
    """Parse a recovery public key. Raises: BackupError."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise BackupError("recovery public key is not a PEM public key") from None
    if isinstance(key, x25519.X25519PublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= _RSA_BITS:
        return key
    raise BackupError("recovery public key must be X25519 or RSA of at least 4096 bits")


def load_private_key(pem: bytes, passphrase: SecretBytes) -> RecoveryPrivateKey:
    """Parse an encrypted recovery private key. Raises: BackupError (also on a wrong
    passphrase)."""
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.reveal())
    except (ValueError, TypeError):
        raise BackupError("recovery private key does not load (wrong passphrase?)") from None
    if isinstance(key, x25519.X25519PrivateKey | rsa.RSAPrivateKey):
        return key
    raise BackupError("recovery private key must be X25519 or RSA")


def _raw_public(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _hkdf(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO + ephemeral + recipient
    ).derive(shared)


@dataclass(frozen=True, slots=True)
class BackedUpShare:
    """One share inside an opened bundle.

    Security: ``share`` is secret; wipe it after use.
    """

    slot: ShareSlot
    presignature_epoch: int
    share: SecretBytes


@dataclass(frozen=True, slots=True)
class RestoredShare:
    """What a restore wrote for one address."""

    address: ShareAddress
    revision: int
    presignature_epoch: int


def export_party(
    custody: ShareCustody,
    workspace: str,
    party_id: str,
    recipient: RecoveryPublicKey,
    now: datetime | None = None,
) -> bytes:
    """Encrypt every share of ``party_id`` in ``workspace`` to ``recipient``.

    Raises: BackupError when the party has no shares; envelope and backend errors.
    """
    entries: list[dict[str, Any]] = []
    opened_shares = []
    try:
        for address in sorted(custody.store.addresses(), key=str):
            if address.workspace != workspace or address.party_id != party_id:
                continue
            opened = custody.load_share(address)
            opened_shares.append(opened)
            entries.append(
                {
                    "vault": address.vault,
                    "key_id": address.key_id,
                    "share_version": opened.slot.share_version,
                    "presignature_epoch": opened.presignature_epoch,
                    "share": opened.share.reveal(),
                }
            )
        if not entries:
            raise BackupError(f"party {party_id!r} has no shares in workspace {workspace!r}")
        payload = cbor2.dumps({"format": _FORMAT, "shares": entries})
    finally:
        for opened in opened_shares:
            opened.share.wipe()
    header = json.dumps(
        {
            "kind": "x25519" if isinstance(recipient, x25519.X25519PublicKey) else "rsa",
            "workspace": workspace,
            "party_id": party_id,
            "created_at": (now or datetime.now(UTC)).isoformat(),
            "count": len(entries),
        },
        sort_keys=True,
    ).encode()
    if isinstance(recipient, x25519.X25519PublicKey):
        ephemeral = x25519.X25519PrivateKey.generate()
        encapsulated = _raw_public(ephemeral.public_key())
        key = _hkdf(ephemeral.exchange(recipient), encapsulated, _raw_public(recipient))
    else:
        key = secrets.token_bytes(32)
        encapsulated = recipient.encrypt(key, _OAEP)
    prefix = b"".join(
        [MAGIC, struct.pack(">H", _FORMAT), struct.pack(">H", len(header)), header,
         struct.pack(">H", len(encapsulated)), encapsulated]
    )  # fmt: skip
    nonce = secrets.token_bytes(12)
    return prefix + nonce + AESGCM(key).encrypt(nonce, payload, prefix)


def _parse(bundle: bytes) -> tuple[dict[str, Any], bytes, bytes, bytes, bytes]:
    try:
        if bundle[:4] != MAGIC:
            raise BackupError("not a backup bundle (bad magic)")
        (version,) = struct.unpack(">H", bundle[4:6])
        if version != _FORMAT:
            raise BackupError(f"backup bundle format {version} is not supported")
        (hlen,) = struct.unpack(">H", bundle[6:8])
        header_raw = bundle[8 : 8 + hlen]
        pos = 8 + hlen
        (elen,) = struct.unpack(">H", bundle[pos : pos + 2])
        encapsulated = bundle[pos + 2 : pos + 2 + elen]
        pos += 2 + elen
        nonce, ciphertext = bundle[pos : pos + 12], bundle[pos + 12 :]
        header = json.loads(header_raw)
    except (struct.error, ValueError):
        raise BackupError("backup bundle is truncated or malformed") from None
    if (
        len(header_raw) != hlen
        or len(encapsulated) != elen
        or len(nonce) != 12
        or len(ciphertext) < 16
        or not isinstance(header, dict)
    ):
        raise BackupError("backup bundle is truncated or malformed")
    return header, encapsulated, bundle[:pos], nonce, ciphertext


def open_bundle(
    bundle: bytes, private_key: RecoveryPrivateKey
) -> tuple[dict[str, Any], list[BackedUpShare]]:
    """Decrypt a bundle with the recovery private key; returns its header and shares.

    Raises: BackupError (malformed, another recipient, altered).
    """
    header, encapsulated, prefix, nonce, ciphertext = _parse(bundle)
    try:
        if isinstance(private_key, x25519.X25519PrivateKey):
            if header.get("kind") != "x25519" or len(encapsulated) != 32:
                raise BackupError("bundle was not made for an X25519 recovery key")
            ephemeral = x25519.X25519PublicKey.from_public_bytes(encapsulated)
            key = _hkdf(
                private_key.exchange(ephemeral), encapsulated, _raw_public(private_key.public_key())
            )
        else:
            if header.get("kind") != "rsa":
                raise BackupError("bundle was not made for an RSA recovery key")
            key = private_key.decrypt(encapsulated, _OAEP)
        payload = AESGCM(key).decrypt(nonce, ciphertext, prefix)
    except (InvalidTag, ValueError):
        raise BackupError("backup bundle does not open with this recovery key") from None
    try:
        content = cbor2.loads(payload)
        workspace, party = header["workspace"], header["party_id"]
        shares = [
            BackedUpShare(
                ShareSlot(
                    ShareAddress(workspace, e["vault"], e["key_id"], party), e["share_version"]
                ),
                int(e["presignature_epoch"]),
                SecretBytes(e["share"]),
            )
            for e in content["shares"]
        ]
    except (KeyError, TypeError, ValueError, cbor2.CBORDecodeError):
        raise BackupError("backup bundle content is malformed") from None
    return header, shares


def restore_bundle(
    custody: ShareCustody, bundle: bytes, private_key: RecoveryPrivateKey
) -> list[RestoredShare]:
    """Restore every share of a bundle into ``custody`` with a bumped presignature epoch.

    Everything is decrypted and checked before the first write; each address is then
    written with compare-and-swap. Raises: BackupError, ConflictError, backend errors.
    """
    _, shares = open_bundle(bundle, private_key)
    plans: list[tuple[BackedUpShare, int, int]] = []
    try:
        for item in shares:
            address = item.slot.address
            current_epoch, revision = -1, 0
            try:
                record = custody.store.read(address)
                header = inspect(record.blob)
                revision, current_epoch = record.revision, header.presignature_epoch
                if header.slot.share_version > item.slot.share_version:
                    raise BackupError(
                        f"{address} holds share version {header.slot.share_version}, newer "
                        f"than the backup's {item.slot.share_version}; refusing to roll back"
                    )
            except RecordNotFoundError:
                pass
            except EnvelopeError:
                # An unreadable current record does not block recovery; its revision
                # number still guards the write.
                revision = custody.store.latest_revision(address)
            plans.append((item, revision, max(current_epoch, item.presignature_epoch) + 1))
        restored = []
        for item, revision, epoch in plans:
            new_revision = custody.store_share(item.slot, item.share, revision, epoch)
            restored.append(RestoredShare(item.slot.address, new_revision, epoch))
        return restored
    finally:
        for item in shares:
            item.share.wipe()
