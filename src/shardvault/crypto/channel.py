"""The authenticated channel between parties: signed, encrypted, replay-checked envelopes.

DESIGN.md invariant 5. Protocol messages between co-signers cross an untrusted relay (the
coordinator). Every message travels inside an *envelope* that

1. is signed by its sender's long-term Ed25519 identity key (RFC 8032, libsodium
   ``crypto_sign`` via PyNaCl) over ``ENVELOPE_DOMAIN || canonical CBOR of (format,
   header, nonce, payload)``, so the sender, the protocol, the session id, the round and
   the recipient cannot be altered without breaking the signature;
2. for a peer-to-peer message, carries the inner message encrypted to the recipient's
   X25519 key with libsodium's ``crypto_box`` (X25519 + XSalsa20-Poly1305, via PyNaCl
   ``Box``, a 24-byte nonce drawn from the caller's random source). ``crypto_box`` has no
   associated data, so the header is bound inside the plaintext: the plaintext is
   ``SHA-256(HEADER_BINDING_DOMAIN || header) || inner message``, and opening checks it;
3. is checked against a :class:`ReplayGuard` held by the receiver, which refuses a second
   message with the same (protocol, session, round, sender, recipient) and any message
   for a session or round the receiver has not opened (replay from another session,
   reordering into a closed round).

Blame. An envelope whose signature does not verify may have been damaged or forged by the
relay, so no party can be blamed: :class:`BadEnvelopeSignatureError` is a
:class:`~shardvault.crypto.errors.TransportError`. Once the signature verifies, the
sender is bound to what it sent: an envelope whose encrypted header binding is wrong, or
whose inner message later fails a protocol check, is the sender's fault, and the signed
envelope bytes (:attr:`OpenedEnvelope.evidence`) let anyone re-check that with
:func:`verify_evidence`, for instance when FROST's key generation echo shows that a party
broadcast two different round-1 messages.

Pure: no I/O and no clock; randomness comes in as an argument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from shardvault.crypto.errors import (
    EncodingError,
    MisuseError,
    ProtocolAbort,
    TransportError,
)
from shardvault.crypto.protocols.common import (
    MAX_MESSAGE_BYTES,
    MAX_PARTY_ID,
    Header,
    PartyId,
    SessionId,
    WireValue,
    decode_wire,
    encode_wire,
)
from shardvault.crypto.rng import RandomSource

ENVELOPE_FORMAT = 1
"""Format version of envelopes this code writes and accepts."""

ENVELOPE_DOMAIN = b"shardvault/channel/envelope/v1\x00"
"""Prefix of the bytes every envelope signature covers."""

HEADER_BINDING_DOMAIN = b"shardvault/channel/header-binding/v1\x00"
"""Prefix of the header hash placed at the start of every encrypted payload."""

IDENTITY_DOMAIN = b"shardvault/channel/identity/v1\x00"
"""Prefix of the bytes an identity signs to bind its encryption key to its signing key."""

FINGERPRINT_DOMAIN = b"shardvault/channel/fingerprint/v1\x00"
"""Prefix of the bytes hashed into an identity's fingerprint."""

NONCE_BYTES = Box.NONCE_SIZE
"""The ``crypto_box`` nonce length (24 bytes)."""

_BINDING_BYTES = 32
_ENVELOPE_FIELDS = ("format", "header", "nonce", "payload", "signature")
_HEADER_FIELDS = ("protocol", "version", "session_id", "round", "sender", "recipient")
_MAX_ROUND = 2**16


class ChannelError(TransportError):
    """Root of the channel's delivery errors: no peer can be blamed for these."""


class MalformedEnvelopeError(ChannelError):
    """Bytes that are not an envelope (bad CBOR, unknown or missing fields, bad sizes)."""


class UnknownSenderError(ChannelError):
    """The envelope names a sender that is not in the pinned directory."""


class BadEnvelopeSignatureError(ChannelError):
    """The signature does not verify under the sender's pinned identity key.

    The relay may have tampered with the envelope, so nobody is blamed.
    """


class NotForUsError(ChannelError):
    """A direct envelope addressed to another party, or a broadcast/direct mismatch."""


class DecryptionError(ChannelError):
    """A direct payload that does not decrypt with our key and the sender's pinned key."""


class ReplayError(ChannelError):
    """A second copy of a message, or a message for a session or round that is not open."""


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """A party's public identity: its Ed25519 verification key and X25519 encryption key.

    ``binding`` is the Ed25519 signature of the identity over its encryption key, so a
    directory entry whose encryption key was swapped does not verify (:meth:`check`).
    """

    signing_key: bytes
    encryption_key: bytes
    binding: bytes

    def check(self) -> None:
        """Check the sizes and that the signing key signed the encryption key.

        Raises:
            EncodingError: wrong sizes, or a binding signature that does not verify.
        """
        if len(self.signing_key) != 32 or len(self.encryption_key) != 32:
            raise EncodingError("identity keys must be 32 bytes each")
        if len(self.binding) != 64:
            raise EncodingError("identity binding must be a 64-byte signature")
        try:
            VerifyKey(self.signing_key).verify(IDENTITY_DOMAIN + self.encryption_key, self.binding)
        except (BadSignatureError, ValueError, TypeError, NaclCryptoError) as exc:
            raise EncodingError("identity binding signature does not verify") from exc

    def fingerprint(self) -> str:
        """The identity's fingerprint, for checking out of band (an operator reads it on
        the co-signer's own host; the admins compare it before they sign a directory).

        SHA-256 of ``FINGERPRINT_DOMAIN || signing_key || encryption_key``, its first 20
        bytes in hex, in groups of four: ``"1a2b 3c4d ..."`` (160 bits: a second
        identity with the same fingerprint costs 2^160 work).
        """
        digest = hashlib.sha256(FINGERPRINT_DOMAIN + self.signing_key + self.encryption_key)
        text = digest.hexdigest()[:40]
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))

    def to_json(self) -> dict[str, str]:
        """The hex form used in directory files."""
        return {
            "signing_key": self.signing_key.hex(),
            "encryption_key": self.encryption_key.hex(),
            "binding": self.binding.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PublicIdentity:
        """Parse and check the hex form.

        Raises:
            EncodingError: a missing, non-hex or wrongly sized field, or a bad binding.
        """
        values: list[bytes] = []
        for name in ("signing_key", "encryption_key", "binding"):
            raw = data.get(name)
            if not isinstance(raw, str):
                raise EncodingError(f"identity field {name} must be a hex string")
            try:
                values.append(bytes.fromhex(raw))
            except ValueError as exc:
                raise EncodingError(f"identity field {name} is not hex") from exc
        identity = cls(values[0], values[1], values[2])
        identity.check()
        return identity


class PartyIdentity:
    """A party's long-term identity: an Ed25519 signing key and an X25519 key.

    Security: both private keys are secret; ``repr`` hides them and :meth:`seeds` is the
    only way out (for sealing them at rest, never for sending).
    """

    __slots__ = ("_encryption", "_signing", "party")

    def __init__(self, party: int, signing_seed: bytes, encryption_secret: bytes) -> None:
        if not 1 <= party <= MAX_PARTY_ID:
            raise MisuseError(f"party id {party} is out of range")
        if len(signing_seed) != 32 or len(encryption_secret) != 32:
            raise MisuseError("identity secrets must be 32 bytes each")
        self.party = PartyId(party)
        self._signing = SigningKey(signing_seed)
        self._encryption = PrivateKey(encryption_secret)

    @classmethod
    def generate(cls, party: int, rng: RandomSource) -> PartyIdentity:
        """A fresh identity from ``rng``."""
        return cls(party, rng(32), rng(32))

    def __repr__(self) -> str:
        return f"PartyIdentity(party={self.party}, <redacted>)"

    def seeds(self) -> bytes:
        """The 64 secret bytes (signing seed, encryption secret): seal before storing."""
        return bytes(self._signing) + bytes(self._encryption)

    @classmethod
    def from_seeds(cls, party: int, seeds: bytes) -> PartyIdentity:
        """Rebuild an identity from :meth:`seeds`.

        Raises:
            MisuseError: not 64 bytes.
        """
        if len(seeds) != 64:
            raise MisuseError("identity seeds must be 64 bytes")
        return cls(party, seeds[:32], seeds[32:])

    @property
    def public(self) -> PublicIdentity:
        """The public identity to pin in every peer's directory."""
        encryption_key = bytes(self._encryption.public_key)
        binding = self._signing.sign(IDENTITY_DOMAIN + encryption_key).signature
        return PublicIdentity(bytes(self._signing.verify_key), encryption_key, binding)

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``message`` (used for envelopes and requests)."""
        return bytes(self._signing.sign(message).signature)

    def _box(self, peer: PublicIdentity) -> Box:
        return Box(self._encryption, PublicKey(peer.encryption_key))


@dataclass(frozen=True, slots=True)
class Directory:
    """The pinned map from party id to public identity.

    Entries are checked when added; an entry can never be replaced by another key
    (:meth:`with_party` refuses a substitution), so a relay cannot swap a party's key.
    """

    entries: Mapping[PartyId, PublicIdentity] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Mapping[int, PublicIdentity]) -> Directory:
        """A directory from a mapping, every entry checked.

        Raises:
            MisuseError: a party id out of range.
            EncodingError: an identity whose binding does not verify.
        """
        directory = cls()
        for party, identity in entries.items():
            directory = directory.with_party(party, identity)
        return directory

    def with_party(self, party: int, identity: PublicIdentity) -> Directory:
        """A copy with ``party`` pinned to ``identity``.

        Raises:
            MisuseError: a party id out of range, or a different key for a pinned party.
            EncodingError: an identity whose binding does not verify.
        """
        if isinstance(party, bool) or not 1 <= party <= MAX_PARTY_ID:
            raise MisuseError(f"party id {party} is out of range")
        identity.check()
        known = self.entries.get(PartyId(party))
        if known is not None and known != identity:
            raise MisuseError(f"party {party} is already pinned to another key")
        return Directory({**self.entries, PartyId(party): identity})

    def get(self, party: int) -> PublicIdentity:
        """The pinned identity of ``party``.

        Raises:
            UnknownSenderError: ``party`` is not pinned.
        """
        identity = self.entries.get(PartyId(party))
        if identity is None:
            raise UnknownSenderError(f"party {party} is not in the pinned directory")
        return identity


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A verified envelope: the header, the inner message bytes, and the evidence.

    ``evidence`` is the signed envelope exactly as received. Its signature binds the
    sender to the header and payload (ciphertext, for a direct message), so it can be
    shown to others to prove what the sender sent (:func:`verify_evidence`).

    Security: ``payload`` of a direct message is the decrypted inner message, which may
    carry a secret share; ``repr`` hides it.
    """

    header: Header
    payload: bytes
    evidence: bytes

    def __repr__(self) -> str:
        return f"OpenedEnvelope({self.header!r}, payload=<{len(self.payload)} bytes>)"


def _header_binding(header: Header) -> bytes:
    return hashlib.sha256(HEADER_BINDING_DOMAIN + encode_wire(header.to_wire())).digest()


def _signed_bytes(header: Header, nonce: bytes, payload: bytes) -> bytes:
    fields: dict[str, WireValue] = {
        "format": ENVELOPE_FORMAT,
        "header": header.to_wire(),
        "nonce": nonce,
        "payload": payload,
    }
    return ENVELOPE_DOMAIN + encode_wire(fields)


def seal(
    inner: bytes,
    header: Header,
    sender: PartyIdentity,
    recipient: PublicIdentity | None,
    rng: RandomSource,
) -> bytes:
    """Wrap ``inner`` (an encoded protocol message) in a signed envelope.

    A broadcast (``header.recipient is None``) is signed in the clear and ``recipient``
    must be ``None``; a direct message is encrypted to ``recipient`` with the header
    hash bound inside the plaintext, then signed.

    Raises:
        MisuseError: the header's sender is not ``sender``, or the recipient argument
            does not match the header's addressing.
    """
    if header.sender != sender.party:
        raise MisuseError(f"header names sender {header.sender}, the identity is {sender.party}")
    if (header.recipient is None) != (recipient is None):
        raise MisuseError("a recipient key is needed exactly for direct messages")
    if header.recipient is not None and header.recipient == sender.party:
        raise MisuseError("a party does not send direct messages to itself")
    if recipient is None:
        nonce, payload = b"", inner
    else:
        nonce = rng(NONCE_BYTES)
        if len(nonce) != NONCE_BYTES:
            raise MisuseError("random source returned a nonce of the wrong length")
        encrypted = sender._box(recipient).encrypt(_header_binding(header) + inner, nonce)
        payload = bytes(encrypted.ciphertext)
    signature = sender.sign(_signed_bytes(header, nonce, payload))
    fields: dict[str, WireValue] = {
        "format": ENVELOPE_FORMAT,
        "header": header.to_wire(),
        "nonce": nonce,
        "payload": payload,
        "signature": signature,
    }
    return encode_wire(fields)


@dataclass(frozen=True, slots=True)
class _Parsed:
    header: Header
    nonce: bytes
    payload: bytes
    signature: bytes


def _parse(data: bytes) -> _Parsed:
    if not isinstance(data, bytes):
        raise MalformedEnvelopeError("an envelope must be bytes")
    if len(data) > MAX_MESSAGE_BYTES + 4096:
        raise MalformedEnvelopeError("envelope is larger than the channel allows")
    try:
        fields = decode_wire(data, _ENVELOPE_FIELDS)
    except EncodingError as exc:
        raise MalformedEnvelopeError(f"not an envelope: {exc}") from exc
    if fields["format"] != ENVELOPE_FORMAT:
        raise MalformedEnvelopeError(f"unknown envelope format {fields['format']!r}")
    raw_header = fields["header"]
    if (
        not isinstance(raw_header, dict)
        or not all(isinstance(k, str) for k in raw_header)
        or sorted(raw_header) != sorted(_HEADER_FIELDS)
    ):
        raise MalformedEnvelopeError("envelope header must have exactly the header fields")
    try:
        header = Header.from_wire(raw_header)
    except EncodingError as exc:
        raise MalformedEnvelopeError(f"envelope header: {exc}") from exc
    if not 1 <= header.sender <= MAX_PARTY_ID:
        raise MalformedEnvelopeError("envelope header names a sender out of range")
    if header.recipient is not None and not 1 <= header.recipient <= MAX_PARTY_ID:
        raise MalformedEnvelopeError("envelope header names a recipient out of range")
    if not 0 <= header.round < _MAX_ROUND:
        raise MalformedEnvelopeError("envelope header names a round out of range")
    nonce, payload, signature = fields["nonce"], fields["payload"], fields["signature"]
    if not isinstance(nonce, bytes) or not isinstance(payload, bytes):
        raise MalformedEnvelopeError("envelope nonce and payload must be bytes")
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise MalformedEnvelopeError("envelope signature must be 64 bytes")
    expected_nonce = 0 if header.recipient is None else NONCE_BYTES
    if len(nonce) != expected_nonce:
        raise MalformedEnvelopeError(f"envelope nonce must be {expected_nonce} bytes")
    return _Parsed(header, nonce, payload, signature)


def peek_header(data: bytes) -> Header:
    """The header of an envelope, *unverified*: for routing by a relay only.

    Raises:
        MalformedEnvelopeError: not an envelope.
    """
    return _parse(data).header


def verify_evidence(data: bytes, directory: Directory) -> Header:
    """Check that the sender named in an envelope signed it; return the header.

    This is what a third party runs on evidence: it needs no decryption key.

    Raises:
        MalformedEnvelopeError: not an envelope.
        UnknownSenderError: the sender is not pinned.
        BadEnvelopeSignatureError: the signature does not verify.
    """
    return _verify(_parse(data), directory)


def _verify(parsed: _Parsed, directory: Directory) -> Header:
    identity = directory.get(parsed.header.sender)
    try:
        VerifyKey(identity.signing_key).verify(
            _signed_bytes(parsed.header, parsed.nonce, parsed.payload), parsed.signature
        )
    except (BadSignatureError, ValueError, TypeError, NaclCryptoError) as exc:
        raise BadEnvelopeSignatureError(
            f"envelope claiming sender {parsed.header.sender} does not verify under its key"
        ) from exc
    return parsed.header


def open_envelope(
    data: bytes,
    me: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard | None = None,
) -> OpenedEnvelope:
    """Verify, decrypt (if direct) and replay-check an envelope addressed to ``me``.

    The replay guard records the message only once every other check has passed, so a
    forged copy cannot burn the slot of the genuine message.

    Raises:
        MalformedEnvelopeError: not an envelope.
        UnknownSenderError: the sender is not pinned.
        BadEnvelopeSignatureError: the signature does not verify (no culprit).
        NotForUsError: a direct message for another party, or one from ourselves.
        DecryptionError: the direct payload does not decrypt (no culprit).
        ReplayError: seen before, or for a session or round that is not open.
        ProtocolAbort: a validly signed direct payload whose header binding is wrong
            (names the sender).
    """
    parsed = _parse(data)
    header = _verify(parsed, directory)
    if header.sender == me.party:
        raise NotForUsError("envelope claims to come from ourselves")
    if header.recipient is not None and header.recipient != me.party:
        raise NotForUsError(f"direct envelope is for party {header.recipient}, not {me.party}")
    if guard is not None:
        guard.check(header)
    if header.recipient is None:
        payload = parsed.payload
    else:
        sender = directory.get(header.sender)
        try:
            plaintext = me._box(sender).decrypt(parsed.payload, parsed.nonce)
        except (NaclCryptoError, ValueError, TypeError) as exc:
            raise DecryptionError(
                f"direct envelope from party {header.sender} does not decrypt"
            ) from exc
        if plaintext[:_BINDING_BYTES] != _header_binding(header):
            raise ProtocolAbort(
                [header.sender],
                f"party {header.sender} sent a direct payload bound to another header",
            )
        payload = plaintext[_BINDING_BYTES:]
    if guard is not None:
        guard.record(header)
    return OpenedEnvelope(header, payload, data)


@dataclass(slots=True)
class _SessionState:
    protocol: str
    parties: frozenset[PartyId]
    open_rounds: set[int]
    closed_rounds: set[int]
    seen: set[tuple[int, int, int | None]]


class ReplayGuard:
    """Which sessions and rounds a receiver accepts, and which messages it has seen.

    Pure state kept by the caller (a co-signer keeps one per process). A session is
    opened with its protocol and parties; the caller opens a round when it starts to
    accept that round's messages and closes it when it has moved on. A message is refused
    when its session is not open, its protocol differs, its sender is not a party, its
    round is not open (a closed round is a replay or a reordering), or the same
    (session, round, sender, recipient) was already accepted.
    """

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, SessionId], _SessionState] = {}

    def open_session(self, protocol: str, session: SessionId, parties: Iterable[int]) -> None:
        """Start accepting messages of ``session`` (no round open yet).

        Raises:
            MisuseError: the session was opened before (session ids are never reused).
        """
        key = (protocol, session)
        if key in self._sessions:
            raise MisuseError("session was already opened; session ids are single-use")
        self._sessions[key] = _SessionState(
            protocol, frozenset(PartyId(p) for p in parties), set(), set(), set()
        )

    def _state(self, protocol: str, session: SessionId) -> _SessionState:
        state = self._sessions.get((protocol, session))
        if state is None:
            raise MisuseError("session is not open")
        return state

    def open_round(self, protocol: str, session: SessionId, round_number: int) -> None:
        """Accept messages of ``round_number`` from now on.

        Raises:
            MisuseError: the session is not open or the round was closed.
        """
        state = self._state(protocol, session)
        if round_number in state.closed_rounds:
            raise MisuseError(f"round {round_number} was closed and cannot reopen")
        state.open_rounds.add(round_number)

    def close_round(self, protocol: str, session: SessionId, round_number: int) -> None:
        """Refuse every further message of ``round_number``."""
        state = self._state(protocol, session)
        state.open_rounds.discard(round_number)
        state.closed_rounds.add(round_number)

    def close_session(self, protocol: str, session: SessionId) -> None:
        """Close every round of a session; its messages are refused from now on.

        The session stays known so that it can never be opened again.
        """
        state = self._sessions.get((protocol, session))
        if state is not None:
            state.closed_rounds.update(state.open_rounds)
            state.open_rounds.clear()
            state.seen.clear()

    def is_open(self, protocol: str, session: SessionId) -> bool:
        """Whether the session has any open round."""
        state = self._sessions.get((protocol, session))
        return state is not None and bool(state.open_rounds)

    def check(self, header: Header) -> None:
        """Refuse ``header`` if it may not be accepted now (records nothing).

        Raises:
            ReplayError: unknown or finished session, sender not a party, round not
                open, or a message already accepted.
        """
        state = self._sessions.get((header.protocol, header.session_id))
        if state is None:
            raise ReplayError(f"message of party {header.sender} is for a session that is not open")
        if header.sender not in state.parties:
            raise ReplayError(f"party {header.sender} is not a party of this session")
        if header.round not in state.open_rounds:
            what = "closed" if header.round in state.closed_rounds else "not open"
            raise ReplayError(
                f"message of party {header.sender} is for round {header.round}, which is {what}"
            )
        key = (header.round, int(header.sender), header.recipient)
        if key in state.seen:
            raise ReplayError(
                f"second message of party {header.sender} for round {header.round} (replay)"
            )

    def record(self, header: Header) -> None:
        """Mark ``header`` as accepted (after :meth:`check` and every other check)."""
        self.check(header)
        state = self._sessions[(header.protocol, header.session_id)]
        state.seen.add((header.round, int(header.sender), header.recipient))
