"""Envelope encryption of key-share blobs (the storage encoding of a share at rest).

Each share is encrypted with its own fresh 32-byte data key under AES-256-GCM (NIST SP
800-38D, 96-bit random nonce, 128-bit tag). The data key is wrapped by a
:class:`KeyEncryptionBackend` and stored beside the ciphertext, so the share's plaintext
only ever exists in memory. The GCM associated data binds the *slot* (workspace, vault,
key id, party id, share version), the presignature epoch and the format version; the
same fields, as strings, are the backend's encryption context. A blob copied to another
slot, or with any header field edited, therefore fails to open with
:class:`IntegrityError`.

Format version 1 (all integers big-endian)::

    magic            4 bytes   b"SVSB"
    format_version   u16       1
    workspace        u16 length || UTF-8
    vault            u16 length || UTF-8
    key_id           u16 length || UTF-8
    party_id         u16 length || UTF-8
    share_version    u64
    presig_epoch     u64
    backend          u16 length || UTF-8   (backend type of the wrapped key)
    kek_id           u16 length || UTF-8   (key-encryption key inside that backend)
    wrapped_key      u32 length || bytes   (the backend's own format)
    nonce            12 bytes
    ciphertext+tag   the rest, at least 16 bytes

Rotation re-wraps only the data key (:func:`rewrap_share`): the share ciphertext, and so
the share, is never decrypted. Readers for every format version ever written stay in
:data:`_READERS` forever; a version not in it is :class:`UnknownFormatVersionError`.
"""

from __future__ import annotations

import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shardvault.custody.backends.base import KeyEncryptionBackend, WrappedKey
from shardvault.custody.errors import (
    IntegrityError,
    MalformedBlobError,
    UnknownFormatVersionError,
)
from shardvault.custody.secret import SecretBytes

MAGIC = b"SVSB"
"""The first four bytes of every share blob."""

CURRENT_FORMAT = 1
"""The format version new blobs are written in."""

_AAD_DOMAIN = b"shardvault/custody/share-envelope"
_NONCE = 12
_TAG = 16
_IDENT = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_U64_MAX = 2**64 - 1


def _check_ident(field: str, value: str) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"{field} must be 1-128 characters of A-Z a-z 0-9 . _ : - (got {value!r})")
    return value


@dataclass(frozen=True, slots=True)
class ShareAddress:
    """Where a share lives: workspace, vault, MPC key id and party.

    The identifiers are restricted to ``[A-Za-z0-9._:-]{1,128}`` (not ``.`` or ``..``)
    because the share stores use them as path components and object-key segments.
    """

    workspace: str
    vault: str
    key_id: str
    party_id: str

    def __post_init__(self) -> None:
        for name in ("workspace", "vault", "key_id", "party_id"):
            _check_ident(name, getattr(self, name))

    def __str__(self) -> str:
        return f"{self.workspace}/{self.vault}/{self.key_id}/{self.party_id}"


@dataclass(frozen=True, slots=True)
class ShareSlot:
    """An address together with the share version (bumped by each key refresh)."""

    address: ShareAddress
    share_version: int

    def __post_init__(self) -> None:
        if not 0 <= self.share_version <= _U64_MAX:
            raise ValueError(f"share_version out of range for {self.address}")


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The public part of a blob: everything but the share's ciphertext."""

    format_version: int
    slot: ShareSlot
    presignature_epoch: int
    wrapped_key: WrappedKey
    nonce: bytes
    ciphertext: bytes

    def context(self) -> dict[str, str]:
        """The backend encryption context of this blob's data key."""
        return _context(self.format_version, self.slot, self.presignature_epoch)


@dataclass(frozen=True, slots=True)
class OpenedShare:
    """A decrypted share with its slot and presignature epoch.

    Security: ``share`` is a :class:`SecretBytes`; wipe it (or use the object as a
    context manager) as soon as the share is no longer needed.
    """

    slot: ShareSlot
    presignature_epoch: int
    share: SecretBytes

    def __enter__(self) -> OpenedShare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.share.wipe()


def _context(format_version: int, slot: ShareSlot, epoch: int) -> dict[str, str]:
    a = slot.address
    return {
        "shardvault:purpose": "share-data-key",
        "format_version": str(format_version),
        "workspace": a.workspace,
        "vault": a.vault,
        "key_id": a.key_id,
        "party_id": a.party_id,
        "share_version": str(slot.share_version),
        "presignature_epoch": str(epoch),
    }


def _str16(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return struct.pack(">H", len(raw)) + raw


def _encode_v1_prefix(slot: ShareSlot, epoch: int, wrapped: WrappedKey) -> bytes:
    a = slot.address
    return b"".join(
        [
            MAGIC,
            struct.pack(">H", 1),
            _str16(a.workspace),
            _str16(a.vault),
            _str16(a.key_id),
            _str16(a.party_id),
            struct.pack(">QQ", slot.share_version, epoch),
            _str16(wrapped.backend),
            _str16(wrapped.kek_id),
            struct.pack(">I", len(wrapped.blob)),
            wrapped.blob,
        ]
    )


def _aad_v1(slot: ShareSlot, epoch: int) -> bytes:
    # The associated data is the domain tag followed by the canonical encoding of the
    # context fields; the wrapped key is deliberately outside it so rotation can
    # replace the wrapping without touching the share ciphertext.
    a = slot.address
    return b"".join(
        [
            struct.pack(">H", len(_AAD_DOMAIN)),
            _AAD_DOMAIN,
            struct.pack(">H", 1),
            _str16(a.workspace),
            _str16(a.vault),
            _str16(a.key_id),
            _str16(a.party_id),
            struct.pack(">QQ", slot.share_version, epoch),
        ]
    )


class _Reader:
    """A cursor over an untrusted blob that raises MalformedBlobError on any overrun."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise MalformedBlobError(f"share blob truncated in field {field}")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u16(self, field: str) -> int:
        value: int = struct.unpack(">H", self.take(2, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = struct.unpack(">I", self.take(4, field))[0]
        return value

    def u64(self, field: str) -> int:
        value: int = struct.unpack(">Q", self.take(8, field))[0]
        return value

    def text(self, field: str) -> str:
        raw = self.take(self.u16(field), field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBlobError(f"share blob field {field} is not UTF-8") from None

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out


def _parse_v1(r: _Reader) -> EnvelopeHeader:
    try:
        address = ShareAddress(
            workspace=r.text("workspace"),
            vault=r.text("vault"),
            key_id=r.text("key_id"),
            party_id=r.text("party_id"),
        )
    except ValueError as exc:
        raise MalformedBlobError(f"share blob slot is invalid: {exc}") from None
    share_version = r.u64("share_version")
    epoch = r.u64("presignature_epoch")
    backend = r.text("backend")
    kek_id = r.text("kek_id")
    wrapped = r.take(r.u32("wrapped_key"), "wrapped_key")
    nonce = r.take(_NONCE, "nonce")
    ciphertext = r.rest()
    if len(ciphertext) < _TAG:
        raise MalformedBlobError("share blob truncated in field ciphertext")
    if not backend or not kek_id:
        raise MalformedBlobError("share blob names no backend or key-encryption key")
    return EnvelopeHeader(
        format_version=1,
        slot=ShareSlot(address, share_version),
        presignature_epoch=epoch,
        wrapped_key=WrappedKey(backend, kek_id, wrapped),
        nonce=nonce,
        ciphertext=ciphertext,
    )


_READERS: dict[int, Callable[[_Reader], EnvelopeHeader]] = {1: _parse_v1}
"""Every format version ever written, mapped to its reader. Never remove an entry."""

_AADS: dict[int, Callable[[ShareSlot, int], bytes]] = {1: _aad_v1}


def inspect(blob: bytes) -> EnvelopeHeader:
    """Parse a blob's public header without decrypting anything.

    Raises: MalformedBlobError, UnknownFormatVersionError.
    """
    if not isinstance(blob, bytes | bytearray):
        raise MalformedBlobError("share blob must be bytes")
    r = _Reader(bytes(blob))
    if r.take(4, "magic") != MAGIC:
        raise MalformedBlobError("share blob has a bad magic number")
    version = r.u16("format_version")
    reader = _READERS.get(version)
    if reader is None:
        raise UnknownFormatVersionError(f"share blob format version {version} is not supported")
    return reader(r)


def seal_share(
    backend: KeyEncryptionBackend,
    slot: ShareSlot,
    share: SecretBytes,
    presignature_epoch: int = 0,
) -> bytes:
    """Encrypt ``share`` for ``slot`` under a fresh data key wrapped by ``backend``.

    Raises: BackendUnavailableError, KeyDisabledError, KeyNotFoundError (from the backend).
    """
    if not 0 <= presignature_epoch <= _U64_MAX:
        raise ValueError("presignature_epoch out of range")
    context = _context(CURRENT_FORMAT, slot, presignature_epoch)
    data_key, wrapped = backend.generate_data_key(context)
    with data_key:
        nonce = secrets.token_bytes(_NONCE)
        ciphertext = AESGCM(data_key.reveal()).encrypt(
            nonce, share.reveal(), _aad_v1(slot, presignature_epoch)
        )
    return _encode_v1_prefix(slot, presignature_epoch, wrapped) + nonce + ciphertext


def _check_expected(header: EnvelopeHeader, expected: ShareAddress | ShareSlot) -> None:
    if isinstance(expected, ShareSlot):
        if header.slot != expected:
            raise IntegrityError(
                f"share blob belongs to {header.slot.address} version "
                f"{header.slot.share_version}, not {expected.address} version "
                f"{expected.share_version}"
            )
    elif header.slot.address != expected:
        raise IntegrityError(f"share blob belongs to {header.slot.address}, not {expected}")


def open_share(
    backend: KeyEncryptionBackend, blob: bytes, expected: ShareAddress | ShareSlot
) -> OpenedShare:
    """Decrypt a blob that must belong to ``expected`` (an address, or an exact slot).

    Raises: MalformedBlobError, UnknownFormatVersionError, IntegrityError (another slot,
    altered blob, wrong key), BackendUnavailableError, KeyDisabledError, KeyNotFoundError.
    """
    header = inspect(blob)
    _check_expected(header, expected)
    with backend.unwrap(header.wrapped_key, header.context()) as data_key:
        aad = _AADS[header.format_version](header.slot, header.presignature_epoch)
        try:
            plaintext = AESGCM(data_key.reveal()).decrypt(header.nonce, header.ciphertext, aad)
        except InvalidTag:
            raise IntegrityError(
                f"share blob for {header.slot.address} failed authentication"
            ) from None
    return OpenedShare(header.slot, header.presignature_epoch, SecretBytes(plaintext))


def rewrap_share(
    blob: bytes,
    source: KeyEncryptionBackend,
    target: KeyEncryptionBackend,
    expected: ShareAddress | ShareSlot,
    target_kek_id: str | None = None,
) -> bytes:
    """Re-wrap a blob's data key from ``source`` to ``target`` (rotation or migration).

    Only the data key is unwrapped (in memory, wiped at once); the share ciphertext is
    copied unchanged, so the share itself is never decrypted. The result is written in
    the blob's own format version. Before returning, the new wrapping is checked by
    unwrapping it again, so a rotation can never leave a blob that does not open.

    Raises: as :func:`open_share`, plus the target backend's errors.
    """
    header = inspect(blob)
    _check_expected(header, expected)
    context = header.context()
    kek = target_kek_id or target.kek_id
    if source is target:
        wrapped = source.rewrap(header.wrapped_key, context, kek)
    else:
        with source.unwrap(header.wrapped_key, context) as data_key:
            wrapped = target.wrap(data_key, context, kek_id=kek)
    with target.unwrap(wrapped, context):
        pass
    if header.format_version != 1:  # pragma: no cover - only format 1 exists so far
        raise UnknownFormatVersionError(f"cannot rewrap format {header.format_version}")
    prefix = _encode_v1_prefix(header.slot, header.presignature_epoch, wrapped)
    return prefix + header.nonce + header.ciphertext


def open_share_with_data_key(
    blob: bytes, data_key: SecretBytes, expected: ShareAddress | ShareSlot
) -> OpenedShare:
    """Decrypt a blob with its data key already unwrapped (an enclave that received
    the key through attested release, :mod:`shardvault.custody.release`).

    Raises: MalformedBlobError, UnknownFormatVersionError, IntegrityError.
    """
    header = inspect(blob)
    _check_expected(header, expected)
    aad = _AADS[header.format_version](header.slot, header.presignature_epoch)
    try:
        plaintext = AESGCM(data_key.reveal()).decrypt(header.nonce, header.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise IntegrityError(
            f"share blob for {header.slot.address} failed authentication"
        ) from None
    return OpenedShare(header.slot, header.presignature_epoch, SecretBytes(plaintext))
