"""Wire messages of CGGMP21 key generation, key refresh, presigning and signing.

Source: CGGMP21 (ePrint 2021/060): Figure 5 (key generation), Figure 6 (key refresh), Figure 7
(presigning) and Figure 8 (signing); the round numbers below are the paper's.

Each message is a frozen dataclass: a :class:`~shardvault.crypto.protocols.common.Header`
(protocol, version, session, round, sender, recipient) and a payload whose field set is
fixed per message type. Decoding checks the structure only (canonical CBOR, exactly the
expected fields); the receiving round validates the content, so that it can name the
sender when something is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from shardvault.crypto.protocols.common import (
    HEADER_FIELDS,
    Header,
    WireValue,
    decode_wire,
    encode_wire,
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


@dataclass(frozen=True, slots=True, repr=False)
class KeygenRound1Message(_Message):
    """Figure 5, round 1 (broadcast): the hash commitment ``V_i`` and the sender's
    complaint key for this session (:mod:`~shardvault.crypto.protocols.complaints`)."""

    fields: ClassVar[tuple[str, ...]] = ("commitment", "complaint_key")


@dataclass(frozen=True, slots=True, repr=False)
class KeygenRound2Message(_Message):
    """Figure 5, round 2 (broadcast): the decommitment ``(rid_i, F_i, A_i, u_i)``, the
    echo of every round-1 broadcast this party received, and the shares ``f_i(j)`` of the
    threshold variant, each encrypted to ``P_j``'s complaint key (``share_keys``: the
    ephemeral keys, ``share_ciphertexts``: the ciphertexts, both in party order without
    the sender), so that a complaint about one can be judged by everyone."""

    fields: ClassVar[tuple[str, ...]] = (
        "rid",
        "vss",
        "schnorr_commitment",
        "salt",
        "echo",
        "share_keys",
        "share_ciphertexts",
    )


@dataclass(frozen=True, slots=True, repr=False)
class KeygenRound3Message(_Message):
    """Figure 5, round 3 (broadcast): the Schnorr response ``ψ_i``, and the sender's
    complaints about the shares it was sent (an empty list when every share was good)."""

    fields: ClassVar[tuple[str, ...]] = ("schnorr_response", "complaints")


@dataclass(frozen=True, slots=True, repr=False)
class RefreshRound1Message(_Message):
    """Figure 6, round 1 (broadcast): the hash commitment ``V_i``, bound to the key, and
    the sender's complaint key for this session."""

    fields: ClassVar[tuple[str, ...]] = ("commitment", "key_id", "epoch", "complaint_key")


@dataclass(frozen=True, slots=True, repr=False)
class RefreshRound2Message(_Message):
    """Figure 6, round 2 (broadcast): decommitment of the zero-sharing, the echo, and the
    shares of the zero-sharing, each encrypted to its recipient's complaint key (as in
    :class:`KeygenRound2Message`)."""

    fields: ClassVar[tuple[str, ...]] = (
        "rid",
        "vss",
        "schnorr_commitments",
        "salt",
        "echo",
        "share_keys",
        "share_ciphertexts",
    )


@dataclass(frozen=True, slots=True, repr=False)
class RefreshRound3Message(_Message):
    """Figure 6, round 3 (broadcast): Schnorr responses for every committed point, and the
    sender's complaints about the shares it was sent (an empty list when all were good)."""

    fields: ClassVar[tuple[str, ...]] = ("schnorr_responses", "complaints")


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


@dataclass(frozen=True, slots=True, repr=False)
class SignatureShareMessage(_Message):
    """Figure 8 (broadcast): the signature share ``σ_i``, bound to the presignature, the
    32-byte digest it signs (so that signers given different digests report a mismatch
    instead of blaming each other), and the echo of every signer's presigning round-3
    values."""

    fields: ClassVar[tuple[str, ...]] = ("presignature_id", "sigma", "digest", "echo")
