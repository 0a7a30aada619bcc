"""FROST key generation and signing as driver steps (RFC 9591; FROST paper Figure 1).

Each class wraps one receiving round of :mod:`shardvault.crypto.protocols.frost` for
:class:`~shardvault.cosigner.driver.SessionDriver`; the cryptography stays in the round
objects. Key generation: round 1 (broadcast commitments, proofs and complaint keys),
round 2 (broadcast shares, each encrypted to its recipient's complaint key, with the echo),
round 3 (broadcast key confirmation, or complaints that every party judges). Signing:
round 1 (broadcast nonce commitments), round 2 (broadcast signature shares, every signer
aggregates and checks).
"""

from __future__ import annotations

from collections.abc import Sequence

from shardvault.cosigner.driver import (
    Advance,
    SessionDriver,
    Step,
    WireMessage,
    typed_messages,
)
from shardvault.crypto.channel import Directory, PartyIdentity, ReplayGuard
from shardvault.crypto.protocols.common import SessionId
from shardvault.crypto.protocols.frost import (
    CommitmentMessage,
    DkgRound1,
    DkgRound1Message,
    DkgRound2,
    DkgRound2Message,
    DkgRound3,
    DkgRound3Message,
    KeyPackage,
    SignatureShareMessage,
    SignRound1,
    SignRound2,
)
from shardvault.crypto.protocols.frost.ciphersuite import Ciphersuite
from shardvault.crypto.protocols.frost.messages import DKG_PROTOCOL, SIGN_PROTOCOL
from shardvault.crypto.rng import RandomSource


class _DkgRound1Step(Step):
    protocol = DKG_PROTOCOL
    round_number = 1

    def __init__(self, state: DkgRound1) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return DkgRound1Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, out = self._state.next(typed_messages(broadcasts, DkgRound1Message))
        return Advance((out,), _DkgRound2Step(state))


class _DkgRound2Step(Step):
    protocol = DKG_PROTOCOL
    round_number = 2

    def __init__(self, state: DkgRound2) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return DkgRound2Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, message = self._state.next(typed_messages(broadcasts, DkgRound2Message))
        return Advance((message,), _DkgRound3Step(state))


class _DkgRound3Step(Step):
    protocol = DKG_PROTOCOL
    round_number = 3

    def __init__(self, state: DkgRound3) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return DkgRound3Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        key = self._state.finish(typed_messages(broadcasts, DkgRound3Message))
        return Advance((), None, key)


class _SignRound1Step(Step):
    protocol = SIGN_PROTOCOL
    round_number = 1

    def __init__(self, state: SignRound1, message: bytes) -> None:
        self._state = state
        self._message = message

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return CommitmentMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, share = self._state.sign(
            self._message, typed_messages(broadcasts, CommitmentMessage)
        )
        return Advance((share,), _SignRound2Step(state))


class _SignRound2Step(Step):
    protocol = SIGN_PROTOCOL
    round_number = 2

    def __init__(self, state: SignRound2) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return SignatureShareMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        signature = self._state.aggregate(typed_messages(broadcasts, SignatureShareMessage))
        return Advance((), None, signature)


def dkg_driver(
    *,
    suite: Ciphersuite,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    session: SessionId,
    parties: Sequence[int],
    min_signers: int,
    rng: RandomSource,
) -> SessionDriver:
    """A driver for this party's part of a FROST DKG; its result is a :class:`KeyPackage`.

    Raises:
        MisuseError: thresholds or party set out of range, or a session already opened.
    """
    state = DkgRound1(suite, identity.party, min_signers, parties, session, rng)
    return SessionDriver(
        identity=identity,
        directory=directory,
        guard=guard,
        protocol=DKG_PROTOCOL,
        session=session,
        parties=parties,
        first_step=_DkgRound1Step(state),
        first_outbound=(state.message,),
        rng=rng,
    )


def signing_driver(
    *,
    key: KeyPackage,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    session: SessionId,
    signers: Sequence[int],
    message: bytes,
    rng: RandomSource,
    taproot_merkle_root: bytes | None = None,
) -> SessionDriver:
    """A driver for this party's part of a FROST signature of ``message``; its result is
    the aggregate signature (bytes), checked against the group key.

    Raises:
        MisuseError: this party is not among the signers, or a session already opened.
    """
    state = SignRound1(key, session, signers, rng, taproot_merkle_root=taproot_merkle_root)
    return SessionDriver(
        identity=identity,
        directory=directory,
        guard=guard,
        protocol=SIGN_PROTOCOL,
        session=session,
        parties=signers,
        first_step=_SignRound1Step(state, message),
        first_outbound=(state.message,),
        rng=rng,
    )
