"""CGGMP21 phases as driver steps (ePrint 2021/060): auxiliary info, key generation,
presigning (with its identification round) and one-round online signing.

Each class wraps one receiving round of :mod:`shardvault.crypto.protocols.cggmp21` for
:class:`~shardvault.cosigner.driver.SessionDriver`; the cryptography, the proofs and the
culprit identification stay in the round objects. What each party waits for, round by
round:

* auxiliary info (Figure 7): broadcast; broadcast; direct; broadcast (key confirmation);
* key generation (Figure 5): broadcast; broadcast (the shares travel in it, encrypted to
  each recipient's complaint key); broadcast (Schnorr responses and any complaints);
  broadcast (key confirmation);
* presigning (three-round revision): broadcast and direct; direct; direct; broadcast (the
  round-4 agreement on every signer's round-3 values); and, only when the δ check or the
  ``Σ S_j = δ·X`` check fails on the agreed values, a fifth broadcast round that
  identifies the culprit;
* online signing (Figure 8): one broadcast round.

The node runs them (:mod:`shardvault.cosigner.node`); the drivers are also tested in
memory over signed envelopes.
"""

from __future__ import annotations

from collections.abc import Sequence

from shardvault.cosigner.driver import (
    Advance,
    ConfirmationStep,
    SessionDriver,
    Step,
    WireMessage,
    typed_messages,
)
from shardvault.crypto.channel import Directory, PartyIdentity, ReplayGuard
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21.aux_info import (
    AuxInfoConfig,
    AuxInfoRound1,
    AuxInfoRound2,
    AuxInfoRound3,
)
from shardvault.crypto.protocols.cggmp21.aux_messages import (
    AUX_INFO_PROTOCOL,
    AuxRound1Message,
    AuxRound2Message,
    AuxRound3Message,
)
from shardvault.crypto.protocols.cggmp21.keygen import KeygenRound1, KeygenRound2, KeygenRound3
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.messages import (
    KEYGEN_PROTOCOL,
    PRESIGN_PROTOCOL,
    SIGN_PROTOCOL,
    KeygenRound1Message,
    KeygenRound2Message,
    KeygenRound3Message,
    PresignChiProofMessage,
    PresignRevealMessage,
    PresignRound1Message,
    PresignRound1ProofMessage,
    PresignRound2Message,
    PresignRound3Message,
    PresignRound4Message,
    SignatureShareMessage,
)
from shardvault.crypto.protocols.cggmp21.presign import (
    Presignature,
    PresignChiIdentificationRequired,
    PresignIdentificationRequired,
    PresignIdentify,
    PresignIdentifyChi,
    PresignRound1,
    PresignRound2,
    PresignRound3,
    PresignRound4,
)
from shardvault.crypto.protocols.cggmp21.sign import SignRound
from shardvault.crypto.protocols.common import SessionId
from shardvault.crypto.rng import RandomSource

# --- Auxiliary info ----------------------------------------------------------------------


class _Aux1(Step):
    protocol = AUX_INFO_PROTOCOL
    round_number = 1

    def __init__(self, state: AuxInfoRound1) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return AuxRound1Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, message = self._state.next(typed_messages(broadcasts, AuxRound1Message))
        return Advance((message,), _Aux2(state))


class _Aux2(Step):
    protocol = AUX_INFO_PROTOCOL
    round_number = 2

    def __init__(self, state: AuxInfoRound2) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return AuxRound2Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, out = self._state.next(typed_messages(broadcasts, AuxRound2Message))
        return Advance(out, _Aux3(state))


class _Aux3(Step):
    protocol = AUX_INFO_PROTOCOL
    round_number = 3
    wants_broadcast = False
    wants_direct = True

    def __init__(self, state: AuxInfoRound3) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return AuxRound3Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        confirmation, message = self._state.next(typed_messages(directs, AuxRound3Message))
        return ConfirmationStep.after(confirmation, message)


# --- Key generation ----------------------------------------------------------------------


class _Keygen1(Step):
    protocol = KEYGEN_PROTOCOL
    round_number = 1

    def __init__(self, state: KeygenRound1) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return KeygenRound1Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, broadcast = self._state.next(typed_messages(broadcasts, KeygenRound1Message))
        return Advance((broadcast,), _Keygen2(state))


class _Keygen2(Step):
    protocol = KEYGEN_PROTOCOL
    round_number = 2

    def __init__(self, state: KeygenRound2) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return KeygenRound2Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, message = self._state.next(typed_messages(broadcasts, KeygenRound2Message))
        return Advance((message,), _Keygen3(state))


class _Keygen3(Step):
    protocol = KEYGEN_PROTOCOL
    round_number = 3

    def __init__(self, state: KeygenRound3) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return KeygenRound3Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        confirmation, message = self._state.next(typed_messages(broadcasts, KeygenRound3Message))
        return ConfirmationStep.after(confirmation, message)


# --- Presigning --------------------------------------------------------------------------


class _Presign1(Step):
    protocol = PRESIGN_PROTOCOL
    round_number = 1
    wants_direct = True

    def __init__(self, state: PresignRound1) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        if direct:
            return PresignRound1ProofMessage.from_bytes(data)
        return PresignRound1Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, out = self._state.next(
            typed_messages(broadcasts, PresignRound1Message),
            typed_messages(directs, PresignRound1ProofMessage),
        )
        return Advance(out, _Presign2(state))


class _Presign2(Step):
    protocol = PRESIGN_PROTOCOL
    round_number = 2
    wants_broadcast = False
    wants_direct = True

    def __init__(self, state: PresignRound2) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return PresignRound2Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, out = self._state.next(typed_messages(directs, PresignRound2Message))
        return Advance(out, _Presign3(state))


class _Presign3(Step):
    protocol = PRESIGN_PROTOCOL
    round_number = 3
    wants_broadcast = False
    wants_direct = True

    def __init__(self, state: PresignRound3) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return PresignRound3Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        state, message = self._state.next(typed_messages(directs, PresignRound3Message))
        return Advance((message,), _Presign4(state))


class _Presign4(Step):
    protocol = PRESIGN_PROTOCOL
    round_number = 4

    def __init__(self, state: PresignRound4) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return PresignRound4Message.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        try:
            presignature = self._state.finish(typed_messages(broadcasts, PresignRound4Message))
        except PresignIdentificationRequired as failed:
            # The δ check failed on the agreed values, so at every honest party: reveal
            # and judge (round 5).
            identification = failed.identification
            return Advance((identification.message,), _PresignIdentify(identification))
        except PresignChiIdentificationRequired as failed_chi:
            # The Σ S_j = δ·X check failed: prove the x-MtA side and judge (round 5).
            identification_chi = failed_chi.identification
            return Advance((identification_chi.message,), _PresignIdentifyChi(identification_chi))
        return Advance((), None, presignature)


class _PresignIdentify(Step):
    protocol = PRESIGN_PROTOCOL
    round_number = 5

    def __init__(self, state: PresignIdentify) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return PresignRevealMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        # Always raises ProtocolAbort naming the culprits.
        self._state.finish(typed_messages(broadcasts, PresignRevealMessage))


class _PresignIdentifyChi(Step):
    protocol = PRESIGN_PROTOCOL
    round_number = 5

    def __init__(self, state: PresignIdentifyChi) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return PresignChiProofMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        # Always raises ProtocolAbort naming the culprits.
        self._state.finish(typed_messages(broadcasts, PresignChiProofMessage))


# --- Signing -----------------------------------------------------------------------------


class _Sign(Step):
    protocol = SIGN_PROTOCOL
    round_number = 1

    def __init__(self, state: SignRound) -> None:
        self._state = state

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return SignatureShareMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        return Advance(
            (), None, self._state.finish(typed_messages(broadcasts, SignatureShareMessage))
        )


# --- Drivers -----------------------------------------------------------------------------


def _driver(
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    protocol: str,
    session: SessionId,
    parties: Sequence[int],
    step: Step,
    outbound: Sequence[WireMessage],
    rng: RandomSource,
) -> SessionDriver:
    return SessionDriver(
        identity=identity,
        directory=directory,
        guard=guard,
        protocol=protocol,
        session=session,
        parties=parties,
        first_step=step,
        first_outbound=outbound,
        rng=rng,
    )


def aux_info_driver(
    *,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    config: AuxInfoConfig,
    paillier_secret: PaillierSecretKey,
    rng: RandomSource,
) -> SessionDriver:
    """Auxiliary info (Paillier-Blum modulus, ring-Pedersen parameters and their proofs);
    the result is this party's ``AuxInfo``."""
    state = AuxInfoRound1(config, paillier_secret, rng)
    return _driver(
        identity,
        directory,
        guard,
        AUX_INFO_PROTOCOL,
        config.session_id,
        config.parties,
        _Aux1(state),
        (state.message,),
        rng,
    )


def keygen_driver(
    *,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    session: SessionId,
    parties: Sequence[int],
    min_signers: int,
    rng: RandomSource,
) -> SessionDriver:
    """Threshold key generation; the result is a ``KeygenOutput`` (attach aux info with
    ``with_aux`` to get the :class:`KeyShare`)."""
    state = KeygenRound1(identity.party, min_signers, parties, session, rng)
    return _driver(
        identity,
        directory,
        guard,
        KEYGEN_PROTOCOL,
        session,
        parties,
        _Keygen1(state),
        (state.message,),
        rng,
    )


def presign_driver(
    *,
    key: KeyShare,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    session: SessionId,
    signers: Sequence[int],
    rng: RandomSource,
) -> SessionDriver:
    """Presigning among ``signers``; the result is this party's :class:`Presignature`."""
    state = PresignRound1(key, signers, session, rng)
    return _driver(
        identity,
        directory,
        guard,
        PRESIGN_PROTOCOL,
        session,
        signers,
        _Presign1(state),
        (state.message, *state.proofs),
        rng,
    )


def ecdsa_signing_driver(
    *,
    key: KeyShare,
    presignature: Presignature,
    digest: bytes,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    session: SessionId,
    rng: RandomSource,
) -> SessionDriver:
    """One-round online signing of ``digest`` with a presignature (consumed here); the
    result is an ``EcdsaSignature``."""
    state = SignRound(key, presignature, digest, session)
    return _driver(
        identity,
        directory,
        guard,
        SIGN_PROTOCOL,
        session,
        presignature.signers,
        _Sign(state),
        (state.message,),
        rng,
    )
