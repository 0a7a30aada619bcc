"""Every party of a CGGMP21 ceremony in one process, passing messages in memory.

What the local ceremony tool, the tests and the benchmarks run: the same round objects a
co-signer runs over the network, with delivery done by list filtering. Each party's
secrets stay in its own round objects; nothing here adds shares together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from shardvault.crypto.errors import MisuseError
from shardvault.crypto.protocols.cggmp21._common import HasHeader
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo
from shardvault.crypto.protocols.cggmp21.keygen import KeygenOutput, KeygenRound1
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presign import (
    Presignature,
    PresignChiIdentificationRequired,
    PresignIdentificationRequired,
    PresignIdentify,
    PresignIdentifyChi,
    PresignRound1,
)
from shardvault.crypto.protocols.cggmp21.refresh import RefreshRound1
from shardvault.crypto.protocols.cggmp21.sign import EcdsaSignature, SignRound
from shardvault.crypto.protocols.common import PartyId, check_thresholds
from shardvault.crypto.protocols.confirmation import finish_all
from shardvault.crypto.rng import RandomSource

_M = TypeVar("_M", bound=HasHeader)


def _to(messages: Sequence[_M], party: int) -> list[_M]:
    return [m for m in messages if m.header.recipient == party]


def _from_others(messages: Sequence[_M], party: int) -> list[_M]:
    return [m for m in messages if m.header.sender != party]


def run_keygen(
    min_signers: int, max_signers: int, rng: RandomSource, *, session: bytes | None = None
) -> list[KeygenOutput]:
    """Key generation for parties ``1..max_signers``; their outputs in order.

    Raises:
        MisuseError: thresholds outside ``2 <= min_signers <= max_signers``.
    """
    check_thresholds(min_signers, max_signers)
    parties = list(range(1, max_signers + 1))
    sid = session if session is not None else rng(32)
    r1 = {p: KeygenRound1(p, min_signers, parties, sid, rng) for p in parties}
    b1 = [r.message for r in r1.values()]
    step2 = {p: r1[p].next(_from_others(b1, p)) for p in parties}
    b2 = [step2[p][1] for p in parties]
    step3 = {p: step2[p][0].next(_from_others(b2, p)) for p in parties}
    b3 = [step3[p][1] for p in parties]
    confirmations = [step3[p][0].next(_from_others(b3, p))[0] for p in parties]
    return finish_all(confirmations)


def run_presign(
    keys: Sequence[KeyShare], rng: RandomSource, *, session: bytes | None = None
) -> list[Presignature]:
    """Presigning among the holders of ``keys``; their presignatures in the same order."""
    signers = [k.party for k in keys]
    sid = session if session is not None else rng(32)
    r1 = [PresignRound1(k, signers, sid, rng) for k in keys]
    b1 = [r.message for r in r1]
    p1 = [m for r in r1 for m in r.proofs]
    step2 = [
        r.next(_from_others(b1, k.party), _to(p1, k.party)) for r, k in zip(r1, keys, strict=True)
    ]
    d2 = [m for _, out in step2 for m in out]
    step3 = [r.next(_to(d2, k.party)) for (r, _), k in zip(step2, keys, strict=True)]
    d3 = [m for _, out in step3 for m in out]
    step4 = [r.next(_to(d3, k.party)) for (r, _), k in zip(step3, keys, strict=True)]
    b4 = [message for _, message in step4]
    results: list[Presignature] = []
    identifications: list[PresignIdentify] = []
    chi_identifications: list[PresignIdentifyChi] = []
    for (r, _), k in zip(step4, keys, strict=True):
        try:
            results.append(r.finish(_from_others(b4, k.party)))
        except PresignIdentificationRequired as failed:
            identifications.append(failed.identification)
        except PresignChiIdentificationRequired as failed_chi:
            chi_identifications.append(failed_chi.identification)
    if chi_identifications:
        # Every party found the ΣS_j = δ·X check failing: identify with Πmul*/Πdec.
        proofs = [i.message for i in chi_identifications]
        for chi in chi_identifications:
            chi.finish([m for m in proofs if m.header.sender != chi.message.header.sender])
    if identifications:
        # Every party found the δ check failing (same public values): identify the culprit.
        reveals = [i.message for i in identifications]
        for identification in identifications:
            identification.finish(
                [m for m in reveals if m.header.sender != identification.message.header.sender]
            )
    return results


def run_sign(
    keys: Sequence[KeyShare],
    presignatures: Sequence[Presignature],
    digest: bytes,
    rng: RandomSource,
    *,
    session: bytes | None = None,
) -> EcdsaSignature:
    """Online signing: every signer checks every share; all must agree on the signature."""
    sid = session if session is not None else rng(32)
    rounds = [SignRound(k, p, digest, sid) for k, p in zip(keys, presignatures, strict=True)]
    shares = [r.message for r in rounds]
    results = {r.finish(_from_others(shares, k.party)) for r, k in zip(rounds, keys, strict=True)}
    if len(results) != 1:  # pragma: no cover - combination is deterministic
        raise MisuseError("signers combined different signatures")
    return results.pop()


def run_refresh(
    keys: Sequence[KeyShare],
    new_aux: Mapping[PartyId, AuxInfo],
    rng: RandomSource,
    *,
    session: bytes | None = None,
) -> list[KeyShare]:
    """Key refresh of every party's share with fresh auxiliary info; new shares in order."""
    sid = session if session is not None else rng(32)
    r1 = [RefreshRound1(k, new_aux[k.party], sid, rng) for k in keys]
    b1 = [r.message for r in r1]
    step2 = [r.next(_from_others(b1, k.party)) for r, k in zip(r1, keys, strict=True)]
    b2 = [b for _, b in step2]
    step3 = [r.next(_from_others(b2, k.party)) for (r, _), k in zip(step2, keys, strict=True)]
    b3 = [m for _, m in step3]
    confirmations = [
        r.next(_from_others(b3, k.party))[0] for (r, _), k in zip(step3, keys, strict=True)
    ]
    return finish_all(confirmations)
