"""Every party of a FROST ceremony in one process, passing messages in memory.

This is what the local ceremony tool (``shardvault mpc``), offline ceremonies, the demo,
the tests and the benchmarks run. The parties are the same round objects that run inside
co-signers over the network; only the delivery differs. Each party's secrets stay in its
own round objects: nothing here adds shares together.
"""

from __future__ import annotations

from collections.abc import Sequence

from shardvault.crypto.errors import MisuseError
from shardvault.crypto.protocols.common import check_thresholds
from shardvault.crypto.protocols.frost.ciphersuite import Ciphersuite
from shardvault.crypto.protocols.frost.dkg import DkgRound1
from shardvault.crypto.protocols.frost.keys import KeyPackage
from shardvault.crypto.protocols.frost.signing import SignRound1
from shardvault.crypto.rng import RandomSource


def run_dkg(
    suite: Ciphersuite,
    min_signers: int,
    max_signers: int,
    rng: RandomSource,
    *,
    session: bytes | None = None,
) -> list[KeyPackage]:
    """Run the DKG for parties ``1..max_signers`` and return their key packages in order.

    Raises:
        MisuseError: thresholds outside ``2 <= min_signers <= max_signers``.
        ProtocolAbort: cannot happen with honest in-process parties; if it does, it names
            the party at fault.
    """
    check_thresholds(min_signers, max_signers)
    parties = list(range(1, max_signers + 1))
    sid = session if session is not None else rng(32)
    round1 = {p: DkgRound1(suite, p, min_signers, parties, sid, rng) for p in parties}
    broadcasts = [r.message for r in round1.values()]
    round2 = {}
    shares = []
    for party, state in round1.items():
        round2[party], out = state.next([m for m in broadcasts if m.header.sender != party])
        shares.append(out)
    round3 = {p: round2[p].next([m for m in shares if m.header.sender != p]) for p in parties}
    confirmations = [message for _, message in round3.values()]
    return [
        state.finish([m for m in confirmations if m.header.sender != p])
        for p, (state, _) in round3.items()
    ]


def run_signing(
    keys: Sequence[KeyPackage],
    message: bytes,
    rng: RandomSource,
    *,
    taproot_merkle_root: bytes | None = None,
    session: bytes | None = None,
) -> bytes:
    """Sign ``message`` with the quorum holding ``keys``; every signer checks the result.

    Raises:
        MisuseError: too few keys, or keys of different groups.
        ProtocolAbort: names any signer whose share is invalid.
    """
    if not keys:
        raise MisuseError("no signers")
    signers = [k.identifier for k in keys]
    sid = session if session is not None else rng(32)
    round1 = [
        SignRound1(k, sid, signers, rng, taproot_merkle_root=taproot_merkle_root) for k in keys
    ]
    commitments = [r.message for r in round1]
    results = [
        r.sign(message, [c for c in commitments if c.header.sender != r.message.header.sender])
        for r in round1
    ]
    shares = [share for _, share in results]
    signatures = {
        state.aggregate([s for s in shares if s.header.sender != share.header.sender])
        for state, share in results
    }
    if len(signatures) != 1:  # pragma: no cover - aggregation is deterministic
        raise MisuseError("signers aggregated different signatures")
    return signatures.pop()
