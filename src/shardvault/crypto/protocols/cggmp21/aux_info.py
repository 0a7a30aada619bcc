"""CGGMP21's auxiliary-info phase as sans-I/O round objects.

Source: CGGMP21 (ePrint 2021/060), Figure 7 ("Auxiliary Info. & Key Refresh"), the
auxiliary-information part; key refresh (the share re-randomisation in the same figure)
composes with it in ``refresh``. Every party ends with the same public view of everyone's
Paillier modulus ``N_j`` and ring-Pedersen parameters ``(N_j, s_j, t_j)``, each proven
well formed, and its own secret primes. The result does not depend on any key, so one run
serves every key the same parties hold, until the next refresh replaces it.

Round 1 (broadcast), party ``i`` (Figure 7, round 1):
  1. Take its Paillier-Blum modulus ``N_i = p_i q_i`` (safe primes, generated ahead of
     time in a process pool by :meth:`PaillierSecretKey.generate`, or loaded).
  2. Sample ring-Pedersen parameters ``t_i = r² mod N_i``, ``s_i = t_i^λ mod N_i`` and
     prove them with ``ψ̂_i = Πprm``.
  3. Sample ``ρ_i`` and ``u_i`` (32 bytes each) and broadcast the commitment
     ``V_i = H(sid, i, N_i, s_i, t_i, ψ̂_i, ρ_i, u_i)``.

Round 2 (broadcast), Figure 7, round 2: reveal ``(N_i, s_i, t_i, ψ̂_i, ρ_i, u_i)`` and echo
every ``V_j`` as received. On receipt (Figure 7, round 3, first bullet), for each peer ``j``:
the echo matches our view of every ``V_k`` (else ``k`` or ``j`` lied), the
reveal opens ``V_j``, ``N_j`` has at least the configured number of bits (2048 by
default) and at most 4096 (:data:`~shardvault.crypto.paillier.MAX_MODULUS_BITS`),
``s_j, t_j ∈ Z*_N_j`` and ``ψ̂_j`` verifies. Then ``ρ = ⊕ ρ_j``.

An echo mismatch alone cannot tell an equivocating sender from a reporter who lies about
what it received, so the abort names both, as key generation, presigning, refresh and the
FROST DKG do (:func:`~shardvault.crypto.protocols.common.check_echo`); the signatures the
transport puts on every message (DESIGN.md invariant 5) let anyone check which of the two
signed conflicting statements. An echo that misreports our own commitment, or the
reporter's own, can only be the reporter's lie, and names the reporter alone.

Round 3 (direct), Figure 7, round 3: send every peer ``ψ_i = Πmod(N_i)`` and
``φ_{i,j} = Πfac(N_i)`` made against ``j``'s ring-Pedersen parameters, both bound to
``ρ`` (which nobody knew before round 2, so no prover can grind its challenges). On
receipt (Figure 7, output), verify ``ψ_j`` and ``φ_{j,i}`` against our own parameters.

Round 4 (broadcast, key confirmation; shardvault's addition,
:mod:`~shardvault.crypto.protocols.confirmation`): every party confirms the digest of
everyone's ``(N_j, s_j, t_j)``; the auxiliary info is handed out only then, so a peer that
sent one party a bad round-3 proof leaves no party with auxiliary info to store.

Any failed check raises :class:`~shardvault.crypto.errors.ProtocolAbort` naming the peer
(all failing peers of that round); the round object is then spent. Every Fiat-Shamir
transcript binds the session id, the prover's id and the party set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from shardvault.crypto.errors import (
    EncodingError,
    MisuseError,
    ProtocolAbort,
    TransportError,
    VerificationError,
)
from shardvault.crypto.paillier import (
    MAX_MODULUS_BITS,
    MIN_MODULUS_BITS,
    PaillierPublicKey,
    PaillierSecretKey,
    check_min_modulus_bits,
)
from shardvault.crypto.primes import PoolProgress, generate_paillier_blum_primes
from shardvault.crypto.protocols.cggmp21.aux_messages import (
    AUX_INFO_PROTOCOL,
    AuxRound1Message,
    AuxRound2Message,
    AuxRound3Message,
)
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    SessionId,
    WireValue,
    check_echo,
    decode_wire,
    encode_wire,
    party_set,
    require_bytes,
    require_int,
    session_id,
)
from shardvault.crypto.protocols.confirmation import (
    KeyConfirmation,
    KeyConfirmationMessage,
    finish_all,
)
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.transcript import Transcript
from shardvault.crypto.zk import fac, mod, prm

AUX_INFO_FORMAT_VERSION = 1
"""Format version of serialized :class:`AuxInfo`; every version written stays readable."""

_COMMIT_DOMAIN = "shardvault/cggmp21/aux-info/commitment/v1"
_DIGEST_DOMAIN = "shardvault/cggmp21/aux-info/digest/v1"


@dataclass(frozen=True, slots=True)
class AuxInfoConfig:
    """Who takes part in an auxiliary-info session and what moduli it accepts.

    ``min_modulus_bits`` below :data:`~shardvault.crypto.paillier.MIN_MODULUS_BITS` (2048)
    is refused unless ``unsafe_test_only`` is set: smaller moduli are for tests only.

    Raises (on construction):
        MisuseError: a bad session id or party set, ``me`` not in it, or a lowered bound
            without ``unsafe_test_only``.
    """

    session_id: SessionId
    me: PartyId
    parties: tuple[PartyId, ...]
    min_modulus_bits: int = MIN_MODULUS_BITS
    unsafe_test_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "session_id", session_id(self.session_id))
        object.__setattr__(self, "parties", party_set(self.parties))
        if len(self.parties) < 2:
            raise MisuseError("an auxiliary-info session needs at least two parties")
        if self.me not in self.parties:
            raise MisuseError(f"party {self.me} is not in the party set")
        check_min_modulus_bits(self.min_modulus_bits, unsafe_test_only=self.unsafe_test_only)

    def context(self, rho: bytes | None) -> bytes:
        """Bytes every proof of this session binds: protocol, curve, party set and, from
        round 3, the joint randomness ``ρ`` (the protocol and curve names are fixed
        constants and the other fields fixed-width, so the encoding is injective)."""
        out = AUX_INFO_PROTOCOL.encode() + b"/secp256k1/"
        out += len(self.parties).to_bytes(2, "big")
        out += b"".join(int(p).to_bytes(2, "big") for p in self.parties)
        return out + (b"\x00" if rho is None else b"\x01" + rho)


@dataclass(frozen=True, slots=True)
class PartyAuxPublic:
    """One party's verified public auxiliary information."""

    paillier: PaillierPublicKey
    ring_pedersen: RingPedersenParams


@dataclass(frozen=True, slots=True, repr=False)
class AuxInfo:
    """The outcome of the auxiliary-info phase at one party.

    Security: holds this party's Paillier secret key (``p``, ``q``); ``repr`` hides it, and
    :meth:`to_bytes` output must be stored only encrypted.
    """

    party: PartyId
    paillier_secret: PaillierSecretKey
    public: Mapping[PartyId, PartyAuxPublic]
    _digest: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.party not in self.public:
            raise MisuseError("auxiliary info lacks this party's own public part")
        if self.public[self.party].paillier != self.paillier_secret.public:
            raise MisuseError("this party's public modulus does not match its secret key")
        transcript = Transcript(_DIGEST_DOMAIN)
        for party in sorted(self.public):
            item = self.public[party]
            transcript.append_int("party", int(party))
            transcript.append_ints(
                "N, s, t", [item.paillier.n, item.ring_pedersen.s, item.ring_pedersen.t]
            )
        object.__setattr__(self, "_digest", transcript.challenge_bytes("digest", 32))

    def __repr__(self) -> str:
        return f"AuxInfo(party={self.party}, parties={list(self.parties)}, <redacted>)"

    @property
    def parties(self) -> tuple[PartyId, ...]:
        """Every party's identifier, in order."""
        return tuple(sorted(self.public))

    def paillier(self, party: int) -> PaillierPublicKey:
        """``party``'s Paillier public key.

        Raises:
            MisuseError: ``party`` took no part.
        """
        return self._get(party).paillier

    def ring_pedersen(self, party: int) -> RingPedersenParams:
        """``party``'s ring-Pedersen parameters.

        Raises:
            MisuseError: ``party`` took no part.
        """
        return self._get(party).ring_pedersen

    def digest(self) -> bytes:
        """32 bytes binding every party's ``(N, s, t)``: what later transcripts absorb as
        "each party's auxiliary info"."""
        return self._digest

    def _get(self, party: int) -> PartyAuxPublic:
        item = self.public.get(PartyId(party))
        if item is None:
            raise MisuseError(f"party {party} has no auxiliary info here")
        return item

    def to_bytes(self) -> bytes:
        """Canonical CBOR (with a format version). Security: contains the secret primes."""
        fields: dict[str, WireValue] = {
            "version": AUX_INFO_FORMAT_VERSION,
            "party": int(self.party),
            "paillier_secret": self.paillier_secret.to_bytes(),
            "public": [
                [int(p), item.paillier.n, item.ring_pedersen.s, item.ring_pedersen.t]
                for p, item in sorted(self.public.items())
            ],
        }
        return encode_wire(fields)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        min_modulus_bits: int = MIN_MODULUS_BITS,
        unsafe_test_only: bool = False,
    ) -> AuxInfo:
        """Decode :meth:`to_bytes` output, re-checking the secret key and every modulus size.

        Raises:
            EncodingError: bad structure, an unknown version, or a modulus that is too small.
            MisuseError: the secret primes fail their checks.
        """
        check_min_modulus_bits(min_modulus_bits, unsafe_test_only=unsafe_test_only)
        fields = decode_wire(data, ("version", "party", "paillier_secret", "public"))
        if require_int(fields, "version") != AUX_INFO_FORMAT_VERSION:
            raise EncodingError("unknown auxiliary-info format version")
        party = require_int(fields, "party")
        secret = PaillierSecretKey.from_bytes(
            require_bytes(fields, "paillier_secret"),
            min_modulus_bits=min_modulus_bits,
            unsafe_test_only=unsafe_test_only,
        )
        entries = fields.get("public")
        if not isinstance(entries, list):
            raise EncodingError("auxiliary-info field public must be a list")
        public: dict[PartyId, PartyAuxPublic] = {}
        for entry in entries:
            if (
                not isinstance(entry, list)
                or len(entry) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
            ):
                raise EncodingError("auxiliary-info entries must be [party, N, s, t]")
            ident, n, s, t = (int(v) for v in entry if isinstance(v, int))
            if n.bit_length() < min_modulus_bits:
                raise EncodingError(f"party {ident}'s modulus is below {min_modulus_bits} bits")
            if n.bit_length() > MAX_MODULUS_BITS:
                raise EncodingError(f"party {ident}'s modulus is above {MAX_MODULUS_BITS} bits")
            if PartyId(ident) in public:
                raise EncodingError(f"party {ident} appears twice in auxiliary info")
            public[PartyId(ident)] = PartyAuxPublic(
                PaillierPublicKey(n), RingPedersenParams(n, s, t)
            )
        try:
            return cls(PartyId(party), secret, public)
        except MisuseError as exc:
            raise EncodingError(str(exc)) from exc


def generate_paillier_key(
    rng: RandomSource,
    *,
    modulus_bits: int = MIN_MODULUS_BITS,
    workers: int = 2,
    on_progress: Callable[[PoolProgress], None] | None = None,
) -> PaillierSecretKey:
    """A fresh Paillier-Blum key from two safe primes searched in a process pool.

    ``rng`` must be picklable (pass :data:`~shardvault.crypto.rng.system_random`).

    Raises:
        MisuseError: ``modulus_bits`` below 2048 or odd.
    """
    check_min_modulus_bits(modulus_bits, unsafe_test_only=False)
    p, q = generate_paillier_blum_primes(
        modulus_bits, rng, workers=workers, on_progress=on_progress
    )
    return PaillierSecretKey.from_primes(p, q, min_modulus_bits=modulus_bits)


def check_peer_parameters(n: int, s: int, t: int, *, min_modulus_bits: int) -> PartyAuxPublic:
    """Check a peer's revealed ``(N, s, t)`` before anything else uses them (Figure 7,
    round 3: ``N_j ≥ 2^(8κ)``, ``s_j, t_j ∈ Z*_N_j``); Πprm, Πmod and Πfac follow. ``N_j``
    must also have at most :data:`~shardvault.crypto.paillier.MAX_MODULUS_BITS` bits, so
    that no proof about it, nor any later proof under it, costs more than that size allows.

    Raises:
        VerificationError: naming the failed check.
    """
    if n.bit_length() < min_modulus_bits:
        raise VerificationError(
            f"modulus has {n.bit_length()} bits, below the required {min_modulus_bits}"
        )
    if n.bit_length() > MAX_MODULUS_BITS:
        raise VerificationError(
            f"modulus has {n.bit_length()} bits, above the maximum of {MAX_MODULUS_BITS}"
        )
    if n % 2 == 0:
        raise VerificationError("modulus is even")
    params = RingPedersenParams(n, s, t)
    params.validate()
    return PartyAuxPublic(PaillierPublicKey(n), params)


def _commitment(config: AuxInfoConfig, sender: int, message: AuxRound2Message) -> bytes:
    # Figure 7, round 1: V_i = H(sid, i, N_i, s_i, t_i, ψ̂_i, ρ_i, u_i).
    transcript = Transcript(_COMMIT_DOMAIN)
    transcript.append("session_id", bytes(config.session_id))
    transcript.append_int("sender", int(sender))
    transcript.append_ints("N, s, t", [message.n, message.s, message.t])
    transcript.append("prm_proof", message.prm_proof)
    transcript.append("rho", message.rho)
    transcript.append("u", message.u)
    return transcript.challenge_bytes("V", 32)


_M = TypeVar("_M", AuxRound1Message, AuxRound2Message, AuxRound3Message)


def _collect(
    config: AuxInfoConfig, received: Iterable[_M], round_number: int, *, direct: bool
) -> dict[PartyId, _M]:
    """Check headers and that exactly one message came from every peer."""
    by_sender: dict[PartyId, _M] = {}
    for message in received:
        message.header.check(
            protocol=AUX_INFO_PROTOCOL,
            session=config.session_id,
            round_number=round_number,
            parties=config.parties,
            me=config.me,
            direct=direct,
        )
        sender = message.header.sender
        if sender in by_sender and by_sender[sender] != message:
            raise ProtocolAbort(
                [sender], f"party {sender} sent two different round-{round_number} messages"
            )
        by_sender[sender] = message
    missing = [p for p in config.parties if p != config.me and p not in by_sender]
    if missing:
        raise TransportError(f"auxiliary-info round {round_number} messages missing from {missing}")
    return by_sender


def _abort_if(failures: Mapping[PartyId, str]) -> None:
    if failures:
        reason = "; ".join(f"party {p}: {why}" for p, why in sorted(failures.items()))
        raise ProtocolAbort(failures.keys(), reason)


class AuxInfoRound1:
    """Party ``config.me``'s first round: ring-Pedersen parameters, Πprm, commitment.

    ``message`` is the broadcast to send. :meth:`next` takes every peer's round-1 message.

    Security: holds the Paillier secret key and the reveal until :meth:`next` hands them
    to round 2; the ring-Pedersen trapdoor ``λ`` is dropped once Πprm is made.
    """

    def __init__(
        self, config: AuxInfoConfig, paillier_secret: PaillierSecretKey, rng: RandomSource
    ) -> None:
        if paillier_secret.public.bits < config.min_modulus_bits:
            raise MisuseError(
                f"own Paillier modulus has {paillier_secret.public.bits} bits, "
                f"below {config.min_modulus_bits}"
            )
        self._config = config
        self._rng = rng
        # Figure 7, round 1: ring-Pedersen parameters over our own N and their proof ψ̂_i.
        params, trapdoor = generate_ring_pedersen(paillier_secret.p, paillier_secret.q, rng)
        proof = prm.prove(
            params,
            trapdoor,
            session_id=config.session_id,
            prover=config.me,
            rng=rng,
            context=config.context(None),
        )
        del trapdoor
        self._secret: PaillierSecretKey | None = paillier_secret
        self._params = params
        self._reveal_fields = (params.n, params.s, params.t, proof.to_bytes(), rng(32), rng(32))
        n, s, t, proof_bytes, rho, u = self._reveal_fields
        self._commitment = _commitment(
            config,
            config.me,
            AuxRound2Message(self._header(2), n, s, t, proof_bytes, rho, u, ()),
        )
        self.message = AuxRound1Message(self._header(1), self._commitment)

    def __repr__(self) -> str:
        return f"AuxInfoRound1(party={self._config.me}, <redacted>)"

    def _header(self, round_number: int) -> Header:
        c = self._config
        return Header(AUX_INFO_PROTOCOL, WIRE_VERSION, c.session_id, round_number, c.me, None)

    def next(self, received: Sequence[AuxRound1Message]) -> tuple[AuxInfoRound2, AuxRound2Message]:
        """Record every peer's commitment and reveal ours with the echo.

        Raises:
            MisuseError: this round already ran.
            TransportError: a peer's message is missing or from outside the party set.
            ProtocolAbort: a wrong session, round or protocol, or two different commitments
                from one sender; names the sender.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("auxiliary-info round 1 already ran")
        self._secret = None
        config = self._config
        by_sender = _collect(config, received, 1, direct=False)
        commitments = {p: m.commitment for p, m in by_sender.items()}
        commitments[config.me] = self._commitment
        echo = tuple(commitments[p] for p in config.parties)
        n, s, t, proof_bytes, rho, u = self._reveal_fields
        message = AuxRound2Message(self._header(2), n, s, t, proof_bytes, rho, u, echo)
        return AuxInfoRound2(config, secret, self._params, commitments, rho, self._rng), message


class AuxInfoRound2:
    """Second round: check every peer's reveal, then make Πmod and each peer's Πfac.

    Security: holds the Paillier secret key until :meth:`next` hands it to round 3.
    """

    def __init__(
        self,
        config: AuxInfoConfig,
        secret: PaillierSecretKey,
        params: RingPedersenParams,
        commitments: Mapping[PartyId, bytes],
        rho: bytes,
        rng: RandomSource,
    ) -> None:
        self._config = config
        self._secret: PaillierSecretKey | None = secret
        self._params = params
        self._commitments = dict(commitments)
        self._rho = rho
        self._rng = rng

    def __repr__(self) -> str:
        return f"AuxInfoRound2(party={self._config.me}, <redacted>)"

    def _check_reveal(self, sender: PartyId, message: AuxRound2Message) -> PartyAuxPublic:
        config = self._config
        # Figure 7, round 3: the reveal must open V_j ...
        if _commitment(config, sender, message) != self._commitments[sender]:
            raise VerificationError("reveal does not open its round-1 commitment")
        # ... N_j must be large enough, s_j, t_j units ...
        public = check_peer_parameters(
            message.n, message.s, message.t, min_modulus_bits=config.min_modulus_bits
        )
        if message.n == self._params.n:
            raise VerificationError("modulus is a copy of ours")
        # ... and ψ̂_j must prove s_j ∈ ⟨t_j⟩.
        try:
            proof = prm.PrmProof.from_bytes(message.prm_proof)
        except EncodingError as exc:
            raise VerificationError(f"malformed Πprm proof: {exc}") from exc
        prm.verify(
            proof,
            public.ring_pedersen,
            session_id=config.session_id,
            prover=sender,
            context=config.context(None),
        )
        return public

    def next(
        self, received: Sequence[AuxRound2Message]
    ) -> tuple[AuxInfoRound3, list[AuxRound3Message]]:
        """Verify every reveal (echo, opening, sizes, Πprm), then prove Πmod and Πfac.

        Raises:
            MisuseError: this round already ran.
            TransportError: a peer's message is missing or from outside the party set.
            ProtocolAbort: an echo disagreeing with ours (names the echoed party and the
                reporter, or the reporter alone when it misreports our commitment or its
                own); any other failed check, naming every peer at fault.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("auxiliary-info round 2 already ran")
        self._secret = None
        config = self._config
        by_sender = _collect(config, received, 2, direct=False)
        ours = [self._commitments[p] for p in config.parties]
        # Figure 7, round 3 (with the echo that stands in for the paper's broadcast
        # channel): every peer saw the same round-1 commitments we did. A disagreement
        # about party j in party k's echo names both j and k (see check_echo).
        check_echo({p: m.echo for p, m in by_sender.items()}, ours, config.parties, config.me)
        failures: dict[PartyId, str] = {}
        publics: dict[PartyId, PartyAuxPublic] = {
            config.me: PartyAuxPublic(secret.public, self._params)
        }
        for sender in sorted(by_sender):
            try:
                publics[sender] = self._check_reveal(sender, by_sender[sender])
            except VerificationError as exc:
                failures[sender] = str(exc)
        _abort_if(failures)
        # ρ = ⊕_j ρ_j: joint randomness no single party controls, bound into Πmod and Πfac.
        rho_int = int.from_bytes(self._rho, "big")
        for message in by_sender.values():
            rho_int ^= int.from_bytes(message.rho, "big")
        rho = rho_int.to_bytes(32, "big")
        context = config.context(rho)
        # Figure 7, round 3: ψ_i = Πmod(N_i) once, φ_{i,j} = Πfac(N_i) per recipient j.
        mod_proof = mod.prove(
            secret, session_id=config.session_id, prover=config.me, rng=self._rng, context=context
        ).to_bytes()
        out = []
        for peer in config.parties:
            if peer == config.me:
                continue
            fac_proof = fac.prove(
                secret,
                publics[peer].ring_pedersen,
                session_id=config.session_id,
                prover=config.me,
                rng=self._rng,
                context=context,
            )
            header = Header(AUX_INFO_PROTOCOL, WIRE_VERSION, config.session_id, 3, config.me, peer)
            out.append(AuxRound3Message(header, mod_proof, fac_proof.to_bytes()))
        return AuxInfoRound3(config, secret, publics, context), out


class AuxInfoRound3:
    """Third round: verify every peer's Πmod and its Πfac made against our parameters.

    Security: holds the Paillier secret key until :meth:`next` puts it in the
    :class:`AuxInfo` that the key confirmation holds.
    """

    def __init__(
        self,
        config: AuxInfoConfig,
        secret: PaillierSecretKey,
        publics: Mapping[PartyId, PartyAuxPublic],
        context: bytes,
    ) -> None:
        self._config = config
        self._secret: PaillierSecretKey | None = secret
        self._publics = dict(publics)
        self._context = context

    def __repr__(self) -> str:
        return f"AuxInfoRound3(party={self._config.me}, <redacted>)"

    def _check_proofs(self, sender: PartyId, message: AuxRound3Message) -> None:
        config = self._config
        try:
            mod_proof = mod.ModProof.from_bytes(message.mod_proof)
            fac_proof = fac.FacProof.from_bytes(message.fac_proof)
        except EncodingError as exc:
            raise VerificationError(f"malformed proof: {exc}") from exc
        n = self._publics[sender].paillier.n
        # Figure 7, output: ψ_j shows N_j is Paillier-Blum ...
        mod.verify(mod_proof, n, session_id=config.session_id, prover=sender, context=self._context)
        # ... and φ_{j,i}, made against OUR ring-Pedersen parameters, that it has no small
        # factor.
        fac.verify(
            fac_proof,
            n,
            self._publics[config.me].ring_pedersen,
            session_id=config.session_id,
            prover=sender,
            context=self._context,
        )

    def next(
        self, received: Sequence[AuxRound3Message]
    ) -> tuple[KeyConfirmation[AuxInfo], KeyConfirmationMessage]:
        """Verify every peer's proofs; return the confirmation round (round 4) that hands
        out the auxiliary info once every party confirmed the same, and its broadcast.

        Raises:
            MisuseError: this round already ran.
            TransportError: a peer's message is missing or from outside the party set.
            ProtocolAbort: a proof that does not verify; names every peer at fault.
        """
        secret = self._secret
        if secret is None:
            raise MisuseError("auxiliary-info round 3 already ran")
        self._secret = None
        by_sender = _collect(self._config, received, 3, direct=True)
        failures: dict[PartyId, str] = {}
        for sender in sorted(by_sender):
            try:
                self._check_proofs(sender, by_sender[sender])
            except VerificationError as exc:
                failures[sender] = str(exc)
        _abort_if(failures)
        info = AuxInfo(self._config.me, secret, self._publics)
        # Round 4 (key confirmation): a peer that sent a bad proof to one party only
        # leaves no party with auxiliary info to store.
        confirmation = KeyConfirmation(
            protocol=AUX_INFO_PROTOCOL,
            session=self._config.session_id,
            round_number=4,
            me=self._config.me,
            parties=self._config.parties,
            public=info.digest(),
            result=info,
        )
        return confirmation, confirmation.message


def run_locally(
    configs: Sequence[AuxInfoConfig],
    secrets: Mapping[int, PaillierSecretKey],
    rng: RandomSource,
) -> dict[PartyId, AuxInfo]:
    """Run every party of one session in this process, passing messages between them.

    For tests, benchmarks and single-host ceremonies; co-signers run the rounds over the
    network instead.

    Raises:
        ProtocolAbort, TransportError, MisuseError: as the rounds do.
    """
    round1 = {c.me: AuxInfoRound1(c, secrets[c.me], rng) for c in configs}
    r1_messages = [r.message for r in round1.values()]
    round2: dict[PartyId, AuxInfoRound2] = {}
    r2_messages: list[AuxRound2Message] = []
    for me, party in round1.items():
        nxt, message = party.next([m for m in r1_messages if m.header.sender != me])
        round2[me] = nxt
        r2_messages.append(message)
    round3: dict[PartyId, AuxInfoRound3] = {}
    r3_messages: list[AuxRound3Message] = []
    for me, party2 in round2.items():
        nxt3, messages = party2.next([m for m in r2_messages if m.header.sender != me])
        round3[me] = nxt3
        r3_messages.extend(messages)
    confirmations = [
        party3.next([m for m in r3_messages if m.header.recipient == me])[0]
        for me, party3 in round3.items()
    ]
    return dict(zip(round3, finish_all(confirmations), strict=True))


__all__ = [
    "AuxInfo",
    "AuxInfoConfig",
    "AuxInfoRound1",
    "AuxInfoRound2",
    "AuxInfoRound3",
    "PartyAuxPublic",
    "check_peer_parameters",
    "generate_paillier_key",
    "run_locally",
]
