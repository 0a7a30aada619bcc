"""FROST two-round threshold signing, RFC 9591 §4 and §5.

The functions mirror the RFC's helpers (nonce generation §4.1, the commitment list §4.3,
binding factors §4.4, the group commitment §4.5, the challenge §4.6, signing §5.2,
aggregation §5.3, share verification §5.4). The round objects :class:`SignRound1` and
:class:`SignRound2` wrap them as sans-I/O steps: a signer takes messages in and returns
messages out, and every signer can aggregate and check the result, naming any signer whose
share is wrong (identifiable abort, §5.4). :class:`Aggregator` does the same for a
coordinator that holds no share.

Every signature share message also carries :func:`message_digest` of what its sender
signed (shardvault's addition): a relay that hands signers different messages makes each
report :class:`~shardvault.crypto.errors.MessageDigestMismatch`, naming nobody, once every
share for its own message has been checked, instead of naming the honest signers whose
shares fail against its message.

Nonces are single-use in code, not just in documentation: :class:`SigningNonces` hands its
scalars out once and forgets them, and a round that has produced its message refuses to
run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from shardvault.crypto.errors import (
    EncodingError,
    MessageDigestMismatch,
    MisuseError,
    ProtocolAbort,
    ProtocolBug,
    TransportError,
)
from shardvault.crypto.group import SECP256K1, Point, Scalar
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    SessionId,
    party_set,
    session_id,
)
from shardvault.crypto.protocols.frost.ciphersuite import Ciphersuite
from shardvault.crypto.protocols.frost.keys import (
    KeyPackage,
    PublicKeyPackage,
    SigningKeyView,
    signing_view,
)
from shardvault.crypto.protocols.frost.messages import (
    SIGN_PROTOCOL,
    CommitmentMessage,
    SignatureShareMessage,
)
from shardvault.crypto.rng import RandomSource

# ---------------------------------------------------------------------------------------
# RFC 9591 helper functions.
# ---------------------------------------------------------------------------------------


def nonce_generate(suite: Ciphersuite, secret: Scalar, random_bytes: bytes) -> Scalar:
    """RFC 9591 §4.1 ``nonce_generate``: ``H3(random_bytes || SerializeScalar(secret))``.

    Mixing the signing share into the hash keeps nonces unpredictable even if the random
    source is weak; ``random_bytes`` must still be 32 fresh random bytes.
    """
    if len(random_bytes) != 32:
        raise MisuseError("nonce randomness must be 32 bytes")
    return suite.h3(random_bytes + secret.to_bytes())


MESSAGE_DIGEST_DOMAIN = b"shardvault/frost/sign/message-digest/v1"
"""Domain tag of :func:`message_digest`."""


def message_digest(message: bytes, taproot_merkle_root: bytes | None) -> bytes:
    """The 32-byte digest a signature share message carries: SHA-256 over
    :data:`MESSAGE_DIGEST_DOMAIN`, the length-prefixed message and the BIP341 merkle root
    the key is tweaked by (absent for an untweaked key, empty for a key-path-only output).
    """
    h = hashlib.sha256(MESSAGE_DIGEST_DOMAIN)
    h.update(len(message).to_bytes(8, "big") + message)
    if taproot_merkle_root is None:
        h.update(b"\x00")
    else:
        h.update(b"\x01" + len(taproot_merkle_root).to_bytes(8, "big") + taproot_merkle_root)
    return h.digest()


@dataclass(frozen=True, slots=True)
class SigningCommitments:
    """A signer's public nonce commitments ``(D_i, E_i)`` (RFC 9591 §5.1)."""

    identifier: PartyId
    hiding: Point
    binding: Point


class SigningNonces:
    """A signer's secret nonce pair ``(d_i, e_i)`` for exactly one signature.

    Security: the nonces are secret and single-use: reusing them for two messages reveals
    the signing share. :meth:`take` returns them once and then forgets them; a second call
    raises :class:`MisuseError`. ``repr`` never shows them.
    """

    __slots__ = ("_binding", "_hiding", "commitments")

    def __init__(self, identifier: PartyId, hiding: Scalar, binding: Scalar) -> None:
        group = hiding.group
        self._hiding: Scalar | None = hiding
        self._binding: Scalar | None = binding
        self.commitments = SigningCommitments(
            identifier, group.base_multiply(hiding), group.base_multiply(binding)
        )

    @classmethod
    def generate(
        cls, suite: Ciphersuite, identifier: PartyId, signing_share: Scalar, rng: RandomSource
    ) -> SigningNonces:
        """RFC 9591 §5.1 ``commit``: two nonces from fresh randomness and the share."""
        return cls(
            identifier,
            nonce_generate(suite, signing_share, rng(32)),
            nonce_generate(suite, signing_share, rng(32)),
        )

    def take(self) -> tuple[Scalar, Scalar]:
        """Hand out ``(hiding, binding)`` once.

        Raises:
            MisuseError: the nonces were already used.
        """
        if self._hiding is None or self._binding is None:
            raise MisuseError("signing nonces were already used; a nonce is never reused")
        pair = (self._hiding, self._binding)
        self._hiding = None
        self._binding = None
        return pair

    @property
    def used(self) -> bool:
        """Whether :meth:`take` has been called."""
        return self._hiding is None

    def __repr__(self) -> str:
        state = "used" if self.used else "fresh"
        return f"SigningNonces(party={self.commitments.identifier}, {state}, <redacted>)"


def encode_group_commitment_list(commitments: Sequence[SigningCommitments]) -> bytes:
    """RFC 9591 §4.3 ``encode_group_commitment_list`` (sorted by identifier)."""
    out = bytearray()
    for item in sorted(commitments, key=lambda c: c.identifier):
        group = item.hiding.group
        out += group.scalar(item.identifier).to_bytes()
        out += item.hiding.to_bytes()
        out += item.binding.to_bytes()
    return bytes(out)


def binding_factor_inputs(
    suite: Ciphersuite,
    group_public_key: Point,
    commitments: Sequence[SigningCommitments],
    message: bytes,
) -> dict[PartyId, bytes]:
    """The per-signer inputs to ``H1`` (RFC 9591 §4.4), exposed for the test vectors."""
    prefix = (
        group_public_key.to_bytes()
        + suite.h4(message)
        + suite.h5(encode_group_commitment_list(commitments))
    )
    return {c.identifier: prefix + suite.group.scalar(c.identifier).to_bytes() for c in commitments}


def compute_binding_factors(
    suite: Ciphersuite,
    group_public_key: Point,
    commitments: Sequence[SigningCommitments],
    message: bytes,
) -> dict[PartyId, Scalar]:
    """RFC 9591 §4.4 ``compute_binding_factors``: ``rho_i = H1(prefix || id_i)``."""
    inputs = binding_factor_inputs(suite, group_public_key, commitments, message)
    return {identifier: suite.h1(data) for identifier, data in inputs.items()}


def compute_group_commitment(
    commitments: Sequence[SigningCommitments], binding_factors: Mapping[PartyId, Scalar]
) -> Point:
    """RFC 9591 §4.5 ``compute_group_commitment``: ``R = sum(D_i + rho_i * E_i)``."""
    group = commitments[0].hiding.group
    return group.sum_points(
        [c.hiding + c.binding * binding_factors[c.identifier] for c in commitments]
    )


@dataclass(frozen=True, slots=True)
class _SigningContext:
    """Everything public about one signature, computed identically by every participant."""

    suite: Ciphersuite
    view: SigningKeyView
    commitments: tuple[SigningCommitments, ...]
    message: bytes
    binding_factors: Mapping[PartyId, Scalar]
    group_commitment: Point
    negate_nonces: bool
    challenge: Scalar
    signers: tuple[PartyId, ...]

    @classmethod
    def build(
        cls,
        suite: Ciphersuite,
        view: SigningKeyView,
        commitments: Sequence[SigningCommitments],
        message: bytes,
    ) -> _SigningContext:
        ordered = tuple(sorted(commitments, key=lambda c: c.identifier))
        factors = compute_binding_factors(suite, view.group_public_key, ordered, message)
        group_commitment = compute_group_commitment(ordered, factors)
        if group_commitment.is_identity():
            # Only a signer who chose its commitments against the others' can cause this.
            raise ProtocolAbort([], "group commitment is the identity")
        negate = False
        if suite.x_only and not SECP256K1.has_even_y(group_commitment):
            # BIP340: R must have even y; every signer negates its nonces to match.
            group_commitment = -group_commitment
            negate = True
        challenge = suite.challenge(group_commitment, view.group_public_key, message)
        return cls(
            suite,
            view,
            ordered,
            message,
            factors,
            group_commitment,
            negate,
            challenge,
            tuple(c.identifier for c in ordered),
        )

    def lagrange(self, identifier: PartyId) -> Scalar:
        return lagrange_coefficient(self.suite.group, identifier, self.signers)

    def sign(self, identifier: PartyId, nonces: SigningNonces, share: Scalar) -> Scalar:
        """RFC 9591 §5.2 ``sign``: ``z_i = d_i + e_i * rho_i + lambda_i * s_i * c``."""
        hiding, binding = nonces.take()
        if self.negate_nonces:
            hiding, binding = -hiding, -binding
        return (
            hiding
            + binding * self.binding_factors[identifier]
            + self.lagrange(identifier) * share * self.challenge
        )

    def verify_share(self, identifier: PartyId, share: Scalar) -> None:
        """RFC 9591 §5.4 ``verify_signature_share``; raises naming the signer."""
        commitment = next(c for c in self.commitments if c.identifier == identifier)
        commitment_share = commitment.hiding + commitment.binding * self.binding_factors[identifier]
        if self.negate_nonces:
            commitment_share = -commitment_share
        public_share = self.view.verifying_shares[identifier]
        lhs = self.suite.group.base_multiply(share)
        rhs = commitment_share + public_share * (self.challenge * self.lagrange(identifier))
        if lhs != rhs:
            raise ProtocolAbort([identifier], f"signature share of party {identifier} is invalid")

    def verify_shares(self, shares: Mapping[PartyId, Scalar]) -> None:
        """RFC 9591 §5.4 on each of ``shares``.

        Raises:
            ProtocolAbort: naming every signer whose share fails.
        """
        bad: list[int] = []
        for identifier, share in shares.items():
            try:
                self.verify_share(identifier, share)
            except ProtocolAbort:
                bad.append(identifier)
        if bad:
            raise ProtocolAbort(bad, f"invalid signature shares from parties {sorted(bad)}")

    def aggregate(self, shares: Mapping[PartyId, Scalar]) -> bytes:
        """RFC 9591 §5.3 ``aggregate``, checked; §5.4 names the culprits on failure.

        The aggregate is checked once against the group key (``z * G == R + c * Y``); only
        when that fails is each share verified on its own (RFC 9591 §5.4: "If the aggregate
        signature verification fails, the Coordinator can verify each signature share
        individually"), so the honest path costs one check instead of one per signer.
        """
        z = self.suite.group.scalar(0)
        for identifier in self.signers:
            z = z + shares[identifier]
        expected = self.group_commitment + self.view.group_public_key * self.challenge
        if self.suite.group.base_multiply(z) == expected:
            return self.suite.encode_signature(self.group_commitment, z)
        bad: list[int] = []
        for identifier in self.signers:
            try:
                self.verify_share(identifier, shares[identifier])
            except ProtocolAbort:
                bad.append(identifier)
        if not bad:  # pragma: no cover - the shares sum to a valid signature if each is valid
            raise ProtocolBug("aggregate invalid although every share verifies")
        raise ProtocolAbort(bad, f"invalid signature shares from parties {bad}")


# ---------------------------------------------------------------------------------------
# Sans-I/O rounds.
# ---------------------------------------------------------------------------------------


def _check_signers(public: PublicKeyPackage, signers: Sequence[int]) -> tuple[PartyId, ...]:
    ids = party_set(signers)
    unknown = [p for p in ids if p not in public.verifying_shares]
    if unknown:
        raise MisuseError(f"parties {unknown} hold no share of this key")
    if len(ids) < public.min_signers:
        raise MisuseError(f"{len(ids)} signers given; this key needs {public.min_signers}")
    return ids


_M = TypeVar("_M", CommitmentMessage, SignatureShareMessage)


def _collect(
    messages: Sequence[_M],
    *,
    session: SessionId,
    round_number: int,
    signers: tuple[PartyId, ...],
    me: PartyId | None,
) -> dict[PartyId, _M]:
    """Check headers and return exactly one message per expected signer."""
    expected = [p for p in signers if p != me]
    by_sender: dict[PartyId, _M] = {}
    for message in messages:
        message.header.check(
            protocol=SIGN_PROTOCOL,
            session=session,
            round_number=round_number,
            parties=signers,
            me=me if me is not None else 0,
            direct=False,
        )
        sender = message.header.sender
        if sender in by_sender:
            if by_sender[sender] != message:
                raise ProtocolAbort([sender], f"party {sender} sent two different messages")
            continue
        by_sender[sender] = message
    missing = [p for p in expected if p not in by_sender]
    if missing:
        raise TransportError(f"round {round_number} messages missing from parties {missing}")
    return by_sender


def _decode_commitments(
    suite: Ciphersuite, messages: Mapping[PartyId, CommitmentMessage]
) -> list[SigningCommitments]:
    out: list[SigningCommitments] = []
    for sender, message in messages.items():
        try:
            out.append(
                SigningCommitments(
                    sender,
                    suite.group.decode_point(message.hiding),
                    suite.group.decode_point(message.binding),
                )
            )
        except EncodingError as exc:
            raise ProtocolAbort(
                [sender], f"party {sender} sent an invalid commitment: {exc}"
            ) from exc
    return out


def _decode_shares(
    suite: Ciphersuite, messages: Mapping[PartyId, SignatureShareMessage], digest: bytes
) -> tuple[dict[PartyId, Scalar], int]:
    """The shares of the signers that signed ``digest``, and how many signed another."""
    out: dict[PartyId, Scalar] = {}
    other_digest = 0
    for sender, message in messages.items():
        try:
            share = suite.group.decode_scalar(message.share)
        except EncodingError as exc:
            raise ProtocolAbort([sender], f"party {sender} sent a malformed share: {exc}") from exc
        if message.message_digest != digest:
            other_digest += 1
        else:
            out[sender] = share
    return out, other_digest


def _judge_shares(
    context: _SigningContext, shares: Mapping[PartyId, Scalar], other_digest: int
) -> bytes:
    """Aggregate when every signer signed our message; otherwise name any signer whose
    share fails for our message, and report the mismatch naming nobody.

    Raises:
        ProtocolAbort: invalid shares for our message; names their senders.
        MessageDigestMismatch: signers signed another message.
    """
    if not other_digest:
        return context.aggregate(shares)
    context.verify_shares(shares)
    raise MessageDigestMismatch(
        f"{other_digest} signers signed another message digest: the signers were not "
        "given the same message (or a signer misreports its own)"
    )


class SignRound1:
    """A signer's first round (RFC 9591 §5.1): draw nonces, broadcast their commitments.

    ``signers`` is the quorum for this session (this party included); ``session`` a fresh
    32-byte id agreed by the quorum. For the BIP340 suite, ``taproot_merkle_root`` (``b""``
    for a key-path-only output) signs for the BIP341-tweaked output key.
    """

    def __init__(
        self,
        key: KeyPackage,
        session: bytes,
        signers: Sequence[int],
        rng: RandomSource,
        *,
        taproot_merkle_root: bytes | None = None,
    ) -> None:
        self._session = session_id(session)
        self._signers = _check_signers(key.public, signers)
        if key.identifier not in self._signers:
            raise MisuseError(f"party {key.identifier} is not among the signers")
        self._key = key
        self._taproot_merkle_root = taproot_merkle_root
        self._view = signing_view(key.public, key.signing_share, taproot_merkle_root)
        share = self._view.signing_share
        if share is None:  # pragma: no cover - signing_view keeps a given share
            raise ProtocolBug("signing view lost the share")
        self._nonces: SigningNonces | None = SigningNonces.generate(
            key.public.suite, key.identifier, share, rng
        )
        commitments = self._nonces.commitments
        self.message = CommitmentMessage(
            Header(SIGN_PROTOCOL, WIRE_VERSION, self._session, 1, key.identifier, None),
            commitments.hiding.to_bytes(),
            commitments.binding.to_bytes(),
        )

    def sign(
        self, message: bytes, received: Sequence[CommitmentMessage]
    ) -> tuple[SignRound2, SignatureShareMessage]:
        """RFC 9591 §5.2: given the other signers' commitments, sign ``message``.

        Raises:
            MisuseError: this round already signed (its nonces are spent).
            TransportError: a signer's commitments are missing, or a sender is not a signer.
            ProtocolAbort: a commitment is invalid or sent twice differently; names the
                sender.
        """
        nonces = self._nonces
        if nonces is None:
            raise MisuseError("this signing round already produced its share")
        self._nonces = None
        suite = self._key.public.suite
        me = self._key.identifier
        by_sender = _collect(
            received, session=self._session, round_number=1, signers=self._signers, me=me
        )
        commitments = [nonces.commitments, *_decode_commitments(suite, by_sender)]
        context = _SigningContext.build(suite, self._view, commitments, message)
        share_value = self._view.signing_share
        if share_value is None:  # pragma: no cover
            raise ProtocolBug("signing view lost the share")
        z = context.sign(me, nonces, share_value)
        digest = message_digest(message, self._taproot_merkle_root)
        out = SignatureShareMessage(
            Header(SIGN_PROTOCOL, WIRE_VERSION, self._session, 2, me, None), z.to_bytes(), digest
        )
        return SignRound2(context, self._session, me, z, digest), out


class SignRound2:
    """A signer's second round: collect every share, verify each, aggregate."""

    def __init__(
        self, context: _SigningContext, session: SessionId, me: PartyId, own: Scalar, digest: bytes
    ):
        self._context = context
        self._session = session
        self._me = me
        self._own = own
        self._digest = digest

    def aggregate(self, received: Sequence[SignatureShareMessage]) -> bytes:
        """RFC 9591 §5.3 and §5.4: the signature, or an abort naming every bad signer.

        Raises:
            TransportError: a signer's share is missing.
            ProtocolAbort: invalid shares; ``culprits`` lists every signer whose share fails.
            MessageDigestMismatch: signers signed another message (see the module
                docstring); names nobody.
        """
        by_sender = _collect(
            received,
            session=self._session,
            round_number=2,
            signers=self._context.signers,
            me=self._me,
        )
        shares, other_digest = _decode_shares(self._context.suite, by_sender, self._digest)
        shares[self._me] = self._own
        return _judge_shares(self._context, shares, other_digest)


class Aggregator:
    """A coordinator without a share: it checks the quorum's messages and aggregates.

    It verifies every commitment and share against the public key package, so a signer
    that sends a bad share is named even when the coordinator is the only one to look.
    """

    def __init__(
        self,
        public: PublicKeyPackage,
        session: bytes,
        signers: Sequence[int],
        message: bytes,
        *,
        taproot_merkle_root: bytes | None = None,
    ) -> None:
        self._public = public
        self._session = session_id(session)
        self._signers = _check_signers(public, signers)
        self._message = message
        self._digest = message_digest(message, taproot_merkle_root)
        self._view = signing_view(public, None, taproot_merkle_root)

    def aggregate(
        self,
        commitments: Sequence[CommitmentMessage],
        shares: Sequence[SignatureShareMessage],
    ) -> bytes:
        """Verify and aggregate one session's messages.

        Raises:
            TransportError: a message is missing or from outside the quorum.
            ProtocolAbort: an invalid commitment or share; names the signers.
            MessageDigestMismatch: signers signed another message than ours; names nobody.
        """
        suite = self._public.suite
        by_commit = _collect(
            commitments, session=self._session, round_number=1, signers=self._signers, me=None
        )
        by_share = _collect(
            shares, session=self._session, round_number=2, signers=self._signers, me=None
        )
        context = _SigningContext.build(
            suite, self._view, _decode_commitments(suite, by_commit), self._message
        )
        signed, other_digest = _decode_shares(suite, by_share, self._digest)
        return _judge_shares(context, signed, other_digest)
