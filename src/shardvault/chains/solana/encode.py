"""Solana wire encoding: compact-u16, message compilation and serialization, signatures.

Compact-u16 ("shortvec") is Solana's variable-length length prefix: seven bits per byte,
low bits first, at most three bytes, no redundant trailing zero byte (Solana
``short_vec``). Messages are serialized as header, account keys, recent blockhash and
compiled instructions; a v0 message is prefixed by ``0x80 | version`` and followed by its
address table lookups (Solana "Versioned Transactions", "Message formats"). A wire
transaction is the compact-u16 signature count, the signatures, then the message bytes,
and must fit in one packet of 1232 bytes (``PACKET_DATA_SIZE``).

Compilation gathers every account the instructions touch, merges their signer and
writable flags, puts the fee payer first and orders the rest as Solana's
``CompiledKeys`` does: writable signers, read-only signers, writable non-signers,
read-only non-signers, each group sorted by key bytes.
"""

from collections.abc import Iterable, Sequence

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from shardvault.chains.errors import DecodeError, SignatureAssemblyError, UnsupportedError
from shardvault.chains.solana.models import (
    SIGNATURE_LENGTH,
    AddressTableLookup,
    CompiledInstruction,
    Instruction,
    LegacyMessage,
    Message,
    MessageHeader,
    MessageV0,
    Pubkey,
    Transaction,
)

PACKET_DATA_SIZE = 1232
"""The largest serialized transaction Solana accepts (IPv6 MTU minus headers)."""

VERSION_PREFIX = 0x80
"""The high bit of a versioned message's first byte."""

MAX_ACCOUNTS = 256
"""Account indexes are one byte, so a message addresses at most 256 accounts."""


def encode_compact_u16(value: int) -> bytes:
    """Solana's compact-u16 encoding of ``0 <= value <= 65535``."""
    if not 0 <= value <= 0xFFFF:
        raise DecodeError("must be between 0 and 65535", field="compact_u16")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def read(self, n: int, field: str) -> bytes:
        if n > self.remaining:
            raise DecodeError(f"needs {n} bytes but only {self.remaining} remain", field=field)
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self, field: str) -> int:
        return self.read(1, field)[0]

    def compact_u16(self, field: str) -> int:
        # Solana short_vec: at most three bytes, the third holding only two bits, and no
        # continuation into a zero byte (which would alias a shorter encoding).
        value = 0
        for i in range(3):
            byte = self.u8(field)
            if i > 0 and byte == 0:
                raise DecodeError("compact-u16 has a redundant zero byte", field=field)
            if i == 2 and byte > 0x03:
                raise DecodeError("compact-u16 overflows 16 bits", field=field)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value
        raise DecodeError("compact-u16 is longer than three bytes", field=field)

    def count(self, field: str, item_size: int) -> int:
        n = self.compact_u16(field)
        if n * item_size > self.remaining:
            raise DecodeError(
                f"declares {n} items but only {self.remaining} bytes remain", field=field
            )
        return n


# --- Compilation --------------------------------------------------------------------------


def _compile_keys(
    payer: Pubkey, instructions: Sequence[Instruction]
) -> tuple[MessageHeader, tuple[Pubkey, ...]]:
    flags: dict[Pubkey, list[bool]] = {payer: [True, True]}
    for ix in instructions:
        flags.setdefault(ix.program_id, [False, False])
        for meta in ix.accounts:
            entry = flags.setdefault(meta.pubkey, [False, False])
            entry[0] |= meta.is_signer
            entry[1] |= meta.is_writable
    others = sorted(k for k in flags if k != payer)

    def group(signer: bool, writable: bool) -> list[Pubkey]:
        return [k for k in others if flags[k][0] is signer and flags[k][1] is writable]

    writable_signers = [payer, *group(True, True)]
    readonly_signers = group(True, False)
    writable_unsigned = group(False, True)
    readonly_unsigned = group(False, False)
    keys = (*writable_signers, *readonly_signers, *writable_unsigned, *readonly_unsigned)
    if len(keys) > MAX_ACCOUNTS:
        raise UnsupportedError(f"uses {len(keys)} accounts; at most 256", field="instructions")
    header = MessageHeader(
        len(writable_signers) + len(readonly_signers),
        len(readonly_signers),
        len(readonly_unsigned),
    )
    return header, keys


def _compile_instructions(
    keys: Sequence[Pubkey], instructions: Iterable[Instruction]
) -> tuple[CompiledInstruction, ...]:
    index = {k: i for i, k in enumerate(keys)}
    return tuple(
        CompiledInstruction(
            index[ix.program_id], tuple(index[m.pubkey] for m in ix.accounts), ix.data
        )
        for ix in instructions
    )


def _check_blockhash(recent_blockhash: bytes) -> None:
    if len(recent_blockhash) != 32:
        raise DecodeError("must be 32 bytes", field="recent_blockhash")


def compile_legacy_message(
    payer: Pubkey, instructions: Sequence[Instruction], recent_blockhash: bytes
) -> LegacyMessage:
    """Compile instructions into a legacy message paid by ``payer``.

    Raises:
        DecodeError: a blockhash that is not 32 bytes.
        UnsupportedError: more than 256 accounts.
    """
    _check_blockhash(recent_blockhash)
    header, keys = _compile_keys(payer, instructions)
    message = LegacyMessage(
        header, keys, recent_blockhash, _compile_instructions(keys, instructions)
    )
    check_message(message)
    return message


def compile_v0_message(
    payer: Pubkey, instructions: Sequence[Instruction], recent_blockhash: bytes
) -> MessageV0:
    """Compile instructions into a v0 message without address table lookups.

    Raises:
        DecodeError: a blockhash that is not 32 bytes.
        UnsupportedError: more than 256 accounts.
    """
    _check_blockhash(recent_blockhash)
    header, keys = _compile_keys(payer, instructions)
    message = MessageV0(header, keys, recent_blockhash, _compile_instructions(keys, instructions))
    check_message(message)
    return message


# --- Validation ----------------------------------------------------------------------------


def check_message(message: Message) -> None:
    """Solana's message sanitization: header counts, indexes, lookups.

    Raises:
        DecodeError: counts that exceed the keys, an index out of range, a program that is
            the fee payer or loaded from a lookup table, an empty lookup, or duplicate keys.
    """
    header = message.header
    n_static = len(message.account_keys)
    if header.num_required_signatures > n_static:
        raise DecodeError(
            "exceeds the number of account keys", field="header.num_required_signatures"
        )
    # At least one signer, the fee payer, must be writable.
    if header.num_readonly_signed_accounts >= header.num_required_signatures:
        raise DecodeError(
            "must be below the number of signatures", field="header.num_readonly_signed_accounts"
        )
    if header.num_readonly_unsigned_accounts > n_static - header.num_required_signatures:
        raise DecodeError(
            "exceeds the unsigned account keys", field="header.num_readonly_unsigned_accounts"
        )
    if len(set(message.account_keys)) != n_static:
        raise DecodeError("lists an account twice", field="account_keys")
    n_loaded = 0
    if isinstance(message, MessageV0):
        for i, lookup in enumerate(message.address_table_lookups):
            if not lookup.writable_indexes and not lookup.readonly_indexes:
                raise DecodeError("loads no account", field=f"address_table_lookups[{i}]")
            n_loaded += len(lookup.writable_indexes) + len(lookup.readonly_indexes)
    total = n_static + n_loaded
    if total > MAX_ACCOUNTS:
        raise DecodeError(f"addresses {total} accounts; at most 256", field="account_keys")
    for i, ix in enumerate(message.instructions):
        field = f"instructions[{i}]"
        if ix.program_id_index >= n_static:
            raise DecodeError(
                "program must be a static account key", field=f"{field}.program_id_index"
            )
        if ix.program_id_index == 0:
            raise DecodeError("program cannot be the fee payer", field=f"{field}.program_id_index")
        for j, account in enumerate(ix.accounts):
            if account >= total:
                raise DecodeError("account index out of range", field=f"{field}.accounts[{j}]")


# --- Serialization -------------------------------------------------------------------------


def serialize_message(message: Message) -> bytes:
    """The bytes every signer signs (v0 messages start with 0x80)."""
    parts = []
    if isinstance(message, MessageV0):
        parts.append(bytes([VERSION_PREFIX | 0]))
    header = message.header
    parts.append(
        bytes(
            [
                header.num_required_signatures,
                header.num_readonly_signed_accounts,
                header.num_readonly_unsigned_accounts,
            ]
        )
    )
    parts.append(encode_compact_u16(len(message.account_keys)))
    parts.extend(key.raw for key in message.account_keys)
    parts.append(message.recent_blockhash)
    parts.append(encode_compact_u16(len(message.instructions)))
    for ix in message.instructions:
        parts.append(bytes([ix.program_id_index]))
        parts.append(encode_compact_u16(len(ix.accounts)) + bytes(ix.accounts))
        parts.append(encode_compact_u16(len(ix.data)) + ix.data)
    if isinstance(message, MessageV0):
        parts.append(encode_compact_u16(len(message.address_table_lookups)))
        for lookup in message.address_table_lookups:
            parts.append(lookup.account_key.raw)
            parts.append(encode_compact_u16(len(lookup.writable_indexes)))
            parts.append(bytes(lookup.writable_indexes))
            parts.append(encode_compact_u16(len(lookup.readonly_indexes)))
            parts.append(bytes(lookup.readonly_indexes))
    return b"".join(parts)


def serialize_transaction(tx: Transaction) -> bytes:
    """The wire transaction: compact-u16 count, signatures, message.

    Raises:
        DecodeError: more than 1232 bytes, or a signature count that is not the header's.
    """
    if len(tx.signatures) != tx.message.header.num_required_signatures:
        raise DecodeError(
            f"has {len(tx.signatures)} signatures; the message needs "
            f"{tx.message.header.num_required_signatures}",
            field="signatures",
        )
    out = (
        encode_compact_u16(len(tx.signatures))
        + b"".join(tx.signatures)
        + serialize_message(tx.message)
    )
    if len(out) > PACKET_DATA_SIZE:
        raise DecodeError(f"is {len(out)} bytes; the limit is 1232", field="transaction")
    return out


def _read_message(reader: _Reader) -> Message:
    first = reader.u8("message")
    versioned = bool(first & VERSION_PREFIX)
    if versioned:
        version = first & 0x7F
        if version != 0:
            raise UnsupportedError(
                f"message version {version} is not supported", field="message.version"
            )
        first = reader.u8("header.num_required_signatures")
    header = MessageHeader(
        first,
        reader.u8("header.num_readonly_signed_accounts"),
        reader.u8("header.num_readonly_unsigned_accounts"),
    )
    n_keys = reader.count("account_keys", 32)
    keys = tuple(Pubkey(reader.read(32, f"account_keys[{i}]")) for i in range(n_keys))
    blockhash = reader.read(32, "recent_blockhash")
    n_ix = reader.count("instructions", 3)
    instructions = []
    for i in range(n_ix):
        program = reader.u8(f"instructions[{i}].program_id_index")
        n_accounts = reader.count(f"instructions[{i}].accounts", 1)
        accounts = tuple(reader.read(n_accounts, f"instructions[{i}].accounts"))
        n_data = reader.count(f"instructions[{i}].data", 1)
        data = reader.read(n_data, f"instructions[{i}].data")
        instructions.append(CompiledInstruction(program, accounts, data))
    if not versioned:
        message: Message = LegacyMessage(header, keys, blockhash, tuple(instructions))
    else:
        n_lookups = reader.count("address_table_lookups", 34)
        lookups = []
        for i in range(n_lookups):
            field = f"address_table_lookups[{i}]"
            key = Pubkey(reader.read(32, f"{field}.account_key"))
            n_w = reader.count(f"{field}.writable_indexes", 1)
            writable = tuple(reader.read(n_w, f"{field}.writable_indexes"))
            n_r = reader.count(f"{field}.readonly_indexes", 1)
            readonly = tuple(reader.read(n_r, f"{field}.readonly_indexes"))
            lookups.append(AddressTableLookup(key, writable, readonly))
        message = MessageV0(header, keys, blockhash, tuple(instructions), tuple(lookups))
    check_message(message)
    return message


def parse_message(data: bytes) -> Message:
    """Parse and sanitize a serialized legacy or v0 message.

    Raises:
        DecodeError: truncated, trailing bytes, oversized, or failing sanitization.
        UnsupportedError: a message version other than legacy or 0.
    """
    if len(data) > PACKET_DATA_SIZE:
        raise DecodeError(f"is {len(data)} bytes; the limit is 1232", field="message")
    reader = _Reader(data)
    message = _read_message(reader)
    if reader.remaining:
        raise DecodeError(f"{reader.remaining} unexpected trailing bytes", field="message")
    return message


def parse_transaction(data: bytes) -> Transaction:
    """Parse a wire transaction: signatures then message.

    Raises:
        DecodeError: as :func:`parse_message`, or a signature count other than the
            message header's.
        UnsupportedError: as :func:`parse_message`.
    """
    if len(data) > PACKET_DATA_SIZE:
        raise DecodeError(f"is {len(data)} bytes; the limit is 1232", field="transaction")
    reader = _Reader(data)
    n_sigs = reader.count("signatures", SIGNATURE_LENGTH)
    signatures = tuple(reader.read(SIGNATURE_LENGTH, f"signatures[{i}]") for i in range(n_sigs))
    message = _read_message(reader)
    if reader.remaining:
        raise DecodeError(f"{reader.remaining} unexpected trailing bytes", field="transaction")
    if n_sigs != message.header.num_required_signatures:
        raise DecodeError(
            f"has {n_sigs} signatures; the message needs {message.header.num_required_signatures}",
            field="signatures",
        )
    return Transaction(signatures, message)


# --- Signatures ----------------------------------------------------------------------------


def unsigned_transaction(message: Message) -> Transaction:
    """A transaction with every signature slot empty (64 zero bytes)."""
    n = message.header.num_required_signatures
    return Transaction(tuple(bytes(SIGNATURE_LENGTH) for _ in range(n)), message)


def verify_signature(message: Message, signer: Pubkey, signature: bytes) -> None:
    """Check an Ed25519 signature of ``signer`` over the serialized message (libsodium).

    Raises:
        SignatureAssemblyError: wrong length, or it does not verify.
    """
    if len(signature) != SIGNATURE_LENGTH:
        raise SignatureAssemblyError(f"is {len(signature)} bytes, not 64", field="signature")
    try:
        VerifyKey(signer.raw).verify(serialize_message(message), signature)
    except (BadSignatureError, ValueError):
        raise SignatureAssemblyError(
            f"does not verify for signer {signer}", field="signature"
        ) from None


def attach_signature(tx: Transaction, signer: Pubkey, signature: bytes) -> Transaction:
    """Put ``signer``'s 64-byte signature in its slot, after verifying it.

    The signature may come from anywhere (an MPC quorum, an HSM, a hardware wallet); it is
    checked against the message before it is attached.

    Raises:
        SignatureAssemblyError: ``signer`` is not a required signer, or the signature is
            malformed or does not verify.
    """
    signers = tx.signers
    if signer not in signers:
        raise SignatureAssemblyError(f"{signer} is not a required signer", field="signer")
    verify_signature(tx.message, signer, signature)
    index = signers.index(signer)
    signatures = list(tx.signatures)
    signatures[index] = signature
    return Transaction(tuple(signatures), tx.message)


def verify_transaction(tx: Transaction) -> None:
    """Verify every signature of a fully signed transaction.

    Raises:
        SignatureAssemblyError: a missing or invalid signature, naming the signer.
    """
    for signer, signature in zip(tx.signers, tx.signatures, strict=True):
        if signature == bytes(SIGNATURE_LENGTH):
            raise SignatureAssemblyError(f"signer {signer} has not signed", field="signatures")
        verify_signature(tx.message, signer, signature)
