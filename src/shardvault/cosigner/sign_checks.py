"""What a co-signer decides a signing request on, over what it holds (DESIGN.md
invariants 3, 11 and 12): the key, the payload recomputed, the fee cap, the signed
policy with the initiator's signed request, and the replay rule over its own record and
every peer record it merged; then the record entry written before its share leaves.

The node (:mod:`.node`) runs these around the session's records round: once before any
envelope leaves (a refusal sends nothing), again once the quorum's records are merged.
Nothing here sends or receives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from shardvault.cosigner.checks import CheckedRequest, check_fee, check_policy, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.initiator import refuse_unsigned_initiator
from shardvault.cosigner.node_keys import NodeKeys
from shardvault.cosigner.request_fields import path_field, text_field
from shardvault.cosigner.sessions import PreparedSign, intent_ids
from shardvault.cosigner.signed_record import SignedEntry, check_replay, velocity_history
from shardvault.cosigner.state import NodeState
from shardvault.crypto.channel import Directory
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presignature import Presignature
from shardvault.crypto.protocols.common import SessionId
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.policy import Evaluation, PastTransaction, TransactionRequest

PresignatureKey = tuple[str, str, str]
"""(vault, key id, label) of a presignature held in memory."""

MAX_PRESIGNATURES = 20_000
"""Presignatures one co-signer holds and makes at once, over every key. A presignature
signs nothing, so no policy check guards its making; this bound keeps a coordinator
(the server host, an attacker's) from making a co-signer presign without end (each
costs about a second of CPU and a little memory, and is lost on restart). The server's
pool asks for eight per address that has signed."""


def check_presignature_room(held: int) -> None:
    """Refuse one more presignature when ``held`` (held and being made) is at the bound.

    Raises:
        RequestRefused: check ``limit``.
    """
    if held >= MAX_PRESIGNATURES:
        raise RequestRefused(
            "limit",
            f"this co-signer holds or is making {held} presignatures, the most it keeps "
            "(sign with them, or restart it to drop them)",
        )


class SignChecks:
    """The checks and the record of one co-signer's signatures.

    Security: opens key shares (through :class:`.NodeKeys`) and hands them back to the
    caller, which drops them with the session; holds no secret itself.
    """

    def __init__(
        self,
        state: NodeState,
        clock: Callable[[], float],
        presignatures: Mapping[PresignatureKey, Presignature],
    ) -> None:
        self.state = state
        self._clock = clock
        self._presignatures = presignatures

    def __repr__(self) -> str:
        return f"SignChecks(party={self.state.party})"

    def prepare(
        self,
        request_id: str,
        body: Mapping[str, object],
        sid: SessionId,
        signers: tuple[int, ...],
        directory: Directory,
    ) -> tuple[PreparedSign, KeyPackage | KeyShare]:
        """Every check a signing request gets before any envelope leaves: the key, the
        payload recomputed (DESIGN.md invariant 3), the fee cap, and the replay and
        policy checks over the records held now. Returns the checks' outcome and the
        share, opened once for both.

        Raises:
            RequestRefused: naming the check.
        """
        keys = NodeKeys(self.state)
        vault, key_id = text_field(body, "vault"), text_field(body, "key_id")
        key = keys.load(vault, key_id)
        chain_key = key.public.public_key_bytes if isinstance(key, KeyPackage) else None
        if isinstance(key, KeyShare) and body.get("chain") not in ("ethereum", "bitcoin", "raw"):
            raise RequestRefused(
                "key", "an ECDSA key signs Ethereum transactions, P2WPKH inputs or raw digests"
            )
        if isinstance(key, KeyPackage) and body.get("chain") == "ethereum":
            raise RequestRefused("key", "Ethereum needs an ECDSA key")
        # An Ethereum transfer's source address (part of its intent) is the address of
        # the key derived along the request's path, and a P2WPKH input must spend that
        # key's output, so derive before checking.
        derived = keys.ecdsa(body, vault, key_id, key) if isinstance(key, KeyShare) else None
        ecdsa_key = derived.public_key.to_bytes() if derived is not None else None
        head = self.state.chain.head
        target = signing_target(
            body,
            chain_key,
            ecdsa_key=ecdsa_key if body.get("chain") != "raw" else None,
            # FROST keys sign at their root; an ECDSA key derives along the path.
            path=path_field(body) if isinstance(key, KeyShare) else "m",
            initiators=None if head is None else head.initiators,
            registry=None if head is None else head.assets,
        )
        if target.request.source.vault != vault:
            raise RequestRefused("malformed", "the request's source vault is not the key's vault")
        check_fee(self.state.chain, target)
        label = None if derived is None else text_field(body, "presignature")
        if derived is not None:
            signer_key = derived.public_key.to_bytes()
        else:
            assert isinstance(key, KeyPackage)
            signer_key = key.public.public_key_bytes
        prepared = PreparedSign(
            request_id, body, sid, signers, directory, vault, key_id, target, signer_key, label
        )
        prepared = dataclasses.replace(prepared, evaluation=self.evaluate(prepared))
        if derived is not None and label is not None:
            self.presignature(vault, key_id, label, signers, derived)
        del derived
        return prepared, key

    def presignature(
        self, vault: str, key_id: str, label: str, signers: tuple[int, ...], key: KeyShare
    ) -> Presignature:
        """The presignature ``label``, made by ``signers`` for ``key`` (the derived key).

        Raises:
            RequestRefused: none such (never made, or used), other signers, another key.
        """
        presignature = self._presignatures.get((vault, key_id, label))
        if presignature is None:
            raise RequestRefused("key", f"no presignature {label!r} for this key")
        if tuple(presignature.signers) != signers:
            raise RequestRefused("malformed", "signers differ from the presignature's")
        if presignature.key_id != key.key_id:
            raise RequestRefused("key", "the presignature was made for another key or path")
        return presignature

    def entries(self) -> list[SignedEntry]:
        """This co-signer's record and every peer's copy it holds."""
        return [*self.state.record.entries, *self.state.peers.entries()]

    def history(self, request: TransactionRequest | None = None) -> list[PastTransaction]:
        """What velocity limits sum: the transfers in the records held (each once), and
        the history of earlier releases. For ``request``, only the entries its policy's
        longest velocity window can reach (a record grows with every signature; the
        window does not)."""
        since = None
        head = self.state.chain.head
        if request is not None and head is not None:
            longest = max(
                (v.window_seconds for rule in head.policy.rules for v in rule.when.velocity),
                default=0,
            )
            since = min(int(self._clock()), int(request.created_at)) - longest
        return [*self.state.history, *velocity_history(self.entries(), since)]

    def evaluate(self, prepared: PreparedSign) -> Evaluation:
        """The signed policy (an unsigned initiator refused where it decides), then
        DESIGN.md invariant 11 (one approval, one transaction on chain; one signed
        initiator request, one transaction), all over every record held.

        Raises:
            RequestRefused: check ``policy``, ``initiator`` or ``replay``
                (:func:`.check_replay`).
        """
        target = prepared.target
        evaluation = check_policy(
            self.state.chain,
            target.request,
            now=int(self._clock()),
            prices=prepared.body.get("prices"),
            price_reports=prepared.body.get("price_reports"),
            approvals=prepared.body.get("approvals", []),
            history=self.history(target.request),
        )
        self.refuse_unsigned_initiator(evaluation, signed=target.initiator_request is not None)
        check_replay(
            self.entries(),
            intent_ids(target),
            target.replay_key,
            prepared.signer_key,
            target.payload_digest,
            initiator_request=target.initiator_request,
        )
        return evaluation

    def refuse_unsigned_initiator(self, evaluation: Evaluation, *, signed: bool) -> None:
        """Refuse an allowed request whose unsigned initiator could have changed the
        decision (:func:`.initiator.refuse_unsigned_initiator`)."""
        head = self.state.chain.head
        assert head is not None  # check_policy refuses without a policy
        refuse_unsigned_initiator(head.policy, evaluation, signed=signed)

    def record(self, checked: CheckedRequest, signer_key: bytes) -> None:
        """Append the signature about to start to the record of signed transactions,
        flushed to disk before the session's first message (which, for CGGMP21, carries
        this party's signature share) is returned; a session that then fails still
        counts as signed (:mod:`.signed_record`)."""
        target = checked.target
        self.state.record.append(
            self.state.identity,
            ids=intent_ids(target),
            intent_digest=None if target.intent is None else target.request.digest,
            replay_key=target.replay_key,
            signer_key=signer_key,
            payload_digest=target.payload_digest,
            now=int(self._clock()),
            request=target.request,
            initiator_request=target.initiator_request,
        )
