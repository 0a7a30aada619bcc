"""Wire messages of CGGMP21 key generation, key refresh, presigning and signing.

Source: CGGMP21 (ePrint 2021/060): Figure 5 (key generation), Figure 6 (key refresh), Figure 7
(presigning) and Figure 8 (signing); the round numbers below are the paper's.

Each message is a frozen dataclass: a :class:`~shardvault.crypto.protocols.common.Header`
(protocol, version, session, round, sender, recipient) and a payload whose field set is
fixed per message type. The key-generation, refresh and signing messages are typed like
FROST's (:class:`~shardvault.crypto.protocols.common.HeaderedMessage`: one attribute per
payload field, each checked for its wire type when decoded); the presigning messages still
carry their payload as a map that the receiving round reads field by field. Either way
decoding checks the structure only (canonical CBOR, exactly the expected fields, and for
the typed ones each field's type); the receiving round validates the content (lengths,
points, scalars, proofs), so that it can name the sender when something is wrong. The
wire encoding is the same for both kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from shardvault.crypto.protocols.common import (
    HEADER_FIELDS,
    Header,
    HeaderedMessage,
    WireValue,
    decode_wire,
    encode_wire,
    require_bytes,
    require_bytes_list,
    require_int,
)

KEYGEN_PROTOCOL = "cggmp21/keygen"
"""Protocol name of key-generation messages."""

REFRESH_PROTOCOL = "cggmp21/refresh"
"""Protocol name of key-refresh messages."""

PRESIGN_PROTOCOL = "cggmp21/presign"
"""Protocol name of presigning messages."""

SIGN_PROTOCOL = "cggmp21/sign"
"""Protocol name of online-signing messages."""


@dataclass(frozen=True, slots=True)
class _Message:
    header: Header
    payload: Mapping[str, WireValue]

    fields: ClassVar[tuple[str, ...]] = ()
    secret: ClassVar[bool] = False

    def to_bytes(self) -> bytes:
        """The canonical wire encoding."""
        return encode_wire({**self.header.to_wire(), **self.payload})

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode a message of this type.

        Raises:
            EncodingError: not canonical CBOR, or unknown or missing fields.
        """
        decoded = decode_wire(data, HEADER_FIELDS + cls.fields)
        header = Header.from_wire(decoded)
        return cls(header, {name: decoded[name] for name in cls.fields})

    def __repr__(self) -> str:
        shown = "<redacted>" if self.secret else sorted(self.payload)
        return f"{type(self).__name__}({self.header!r}, {shown})"


@dataclass(frozen=True, slots=True)
class KeygenRound1Message(HeaderedMessage):
    """Figure 5, round 1 (broadcast): the hash commitment ``V_i`` and the sender's
    complaint key for this session (:mod:`~shardvault.crypto.protocols.complaints`)."""

    commitment: bytes
    complaint_key: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header, require_bytes(fields, "commitment"), require_bytes(fields, "complaint_key")
        )


@dataclass(frozen=True, slots=True)
class KeygenRound2Message(HeaderedMessage):
    """Figure 5, round 2 (broadcast): the decommitment ``(rid_i, F_i, A_i, u_i)``, the
    echo of every round-1 broadcast this party received, and the shares ``f_i(j)`` of the
    threshold variant, each encrypted to ``P_j``'s complaint key (``share_keys``: the
    ephemeral keys, ``share_ciphertexts``: the ciphertexts, both in party order without
    the sender), so that a complaint about one can be judged by everyone."""

    rid: bytes
    vss: tuple[bytes, ...]
    schnorr_commitment: bytes
    salt: bytes
    echo: tuple[bytes, ...]
    share_keys: tuple[bytes, ...]
    share_ciphertexts: tuple[bytes, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            require_bytes(fields, "rid"),
            tuple(require_bytes_list(fields, "vss")),
            require_bytes(fields, "schnorr_commitment"),
            require_bytes(fields, "salt"),
            tuple(require_bytes_list(fields, "echo")),
            tuple(require_bytes_list(fields, "share_keys")),
            tuple(require_bytes_list(fields, "share_ciphertexts")),
        )


@dataclass(frozen=True, slots=True)
class KeygenRound3Message(HeaderedMessage):
    """Figure 5, round 3 (broadcast): the Schnorr response ``ψ_i``, and the sender's
    complaints about the shares it was sent (an empty list when every share was good).

    ``complaints`` stays in wire form: whether the list is acceptable (its length, one
    complaint per dealer) depends on the party set, so the receiving round reads it
    (:func:`~shardvault.crypto.protocols.complaints.read_complaints`) and names the sender
    of a malformed one."""

    schnorr_response: bytes
    complaints: WireValue

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(header, require_bytes(fields, "schnorr_response"), fields["complaints"])


@dataclass(frozen=True, slots=True)
class RefreshRound1Message(HeaderedMessage):
    """Figure 6, round 1 (broadcast): the hash commitment ``V_i``, bound to the key, and
    the sender's complaint key for this session."""

    commitment: bytes
    key_id: bytes
    epoch: int
    complaint_key: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            require_bytes(fields, "commitment"),
            require_bytes(fields, "key_id"),
            require_int(fields, "epoch"),
            require_bytes(fields, "complaint_key"),
        )


@dataclass(frozen=True, slots=True)
class RefreshRound2Message(HeaderedMessage):
    """Figure 6, round 2 (broadcast): decommitment of the zero-sharing, the echo, and the
    shares of the zero-sharing, each encrypted to its recipient's complaint key (as in
    :class:`KeygenRound2Message`)."""

    rid: bytes
    vss: tuple[bytes, ...]
    schnorr_commitments: tuple[bytes, ...]
    salt: bytes
    echo: tuple[bytes, ...]
    share_keys: tuple[bytes, ...]
    share_ciphertexts: tuple[bytes, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            require_bytes(fields, "rid"),
            tuple(require_bytes_list(fields, "vss")),
            tuple(require_bytes_list(fields, "schnorr_commitments")),
            require_bytes(fields, "salt"),
            tuple(require_bytes_list(fields, "echo")),
            tuple(require_bytes_list(fields, "share_keys")),
            tuple(require_bytes_list(fields, "share_ciphertexts")),
        )


@dataclass(frozen=True, slots=True)
class RefreshRound3Message(HeaderedMessage):
    """Figure 6, round 3 (broadcast): Schnorr responses for every committed point, and the
    sender's complaints about the shares it was sent (an empty list when all were good;
    kept in wire form for the receiving round, as in :class:`KeygenRound3Message`)."""

    schnorr_responses: tuple[bytes, ...]
    complaints: WireValue

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header, tuple(require_bytes_list(fields, "schnorr_responses")), fields["complaints"]
        )


@dataclass(frozen=True, slots=True, repr=False)
class PresignRound1Message(_Message):
    """Figure 7, round 1 (broadcast): ``K_i``, ``G_i``, bound to key, epoch and signers."""

    fields: ClassVar[tuple[str, ...]] = ("key_id", "epoch", "K", "G")


@dataclass(frozen=True, slots=True, repr=False)
class PresignRound1ProofMessage(_Message):
    """Figure 7, round 1 (direct): ``ψ^0_{j,i}``, Πenc for ``K_i`` under ``P_j``'s setup."""

    fields: ClassVar[tuple[str, ...]] = ("enc_proof",)


@dataclass(frozen=True, slots=True, repr=False)
class PresignRound2Message(_Message):
    """Figure 7, round 2 (direct): ``Γ_i``, ``D_{j,i}``, ``F_{j,i}``, ``D̂_{j,i}``,
    ``F̂_{j,i}``, the proofs ``ψ``, ``ψ̂`` (Πaff-g) and ``ψ'`` (Πlog*), and the echo of
    every round-1 broadcast."""

    fields: ClassVar[tuple[str, ...]] = (
        "Gamma",
        "D",
        "F",
        "D_hat",
        "F_hat",
        "aff_g_proof",
        "aff_g_hat_proof",
        "log_star_proof",
        "echo",
    )


@dataclass(frozen=True, slots=True, repr=False)
class PresignRound3Message(_Message):
    """Figure 7, round 3 (direct): ``δ_i``, ``Δ_i``, ``S_i = χ_i·Γ``, the list of every
    γ-MtA ciphertext ``F_{j,i}`` the sender made (for identification) and ``ψ''`` (Πlog*)."""

    fields: ClassVar[tuple[str, ...]] = ("delta", "Delta", "S", "F_sent", "log_star_proof")


@dataclass(frozen=True, slots=True, repr=False)
class PresignRound4Message(_Message):
    """Presigning round 4 (broadcast; shardvault's addition to Figure 7): for every signer,
    the digest of the round-3 values ``(δ_j, Δ_j, S_j, F_j)`` the sender received from it
    (its own for itself), with ``Δ_j`` and the ``ψ''_{j,sender}`` that came with them
    (``{}`` for itself), so that every signer agrees on them before a check chooses a
    path, and one who sent different values to different peers is shown by its own
    proofs."""

    fields: ClassVar[tuple[str, ...]] = ("views", "Deltas", "log_star_proofs")


@dataclass(frozen=True, slots=True, repr=False)
class PresignRevealMessage(_Message):
    """Presigning identification (round 5, broadcast), sent only after the ``δ`` check
    failed on the values agreed in round 4: ``k_i``, ``γ_i``, the γ-MtA masks and nonces.

    Security: these values belong to a presignature that is already dead.
    """

    fields: ClassVar[tuple[str, ...]] = ("k", "gamma", "betas", "nonces")
    secret: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, repr=False)
class PresignChiProofMessage(_Message):
    """Presigning identification of the χ side (round 5, broadcast), sent only after the
    ``Σ S_j = δ·X`` check failed on the values agreed in round 4: ``Ĥ_i = enc_i(w_i·k_i)``,
    the x-MtA ciphertexts ``D̂_{i,j}``, ``F̂_{i,j}`` the sender received with their Πaff-g
    proofs ``ψ̂_{i,j}`` (one entry per signer, a placeholder for itself), and one Πmul* and
    one Πdec proof per signer (under that signer's ring-Pedersen setup).

    Nothing here reveals a key share: the proofs are zero-knowledge and the ciphertexts are
    under keys their readers already hold.
    """

    fields: ClassVar[tuple[str, ...]] = (
        "H",
        "D_hat",
        "F_hat",
        "aff_g_hat_proofs",
        "mul_star_proofs",
        "dec_proofs",
    )


@dataclass(frozen=True, slots=True)
class SignatureShareMessage(HeaderedMessage):
    """Figure 8 (broadcast): the signature share ``σ_i``, bound to the presignature, the
    32-byte digest it signs (so that signers given different digests report a mismatch
    instead of blaming each other), and the echo of every signer's presigning round-3
    values."""

    presignature_id: bytes
    sigma: bytes
    digest: bytes
    echo: tuple[bytes, ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(
            header,
            require_bytes(fields, "presignature_id"),
            require_bytes(fields, "sigma"),
            require_bytes(fields, "digest"),
            tuple(require_bytes_list(fields, "echo")),
        )
