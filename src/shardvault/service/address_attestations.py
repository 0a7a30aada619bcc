"""Attested addresses: asking the co-signers to sign the addresses they derive, and
keeping what they signed for clients (docs/cosigner.md, "Attested addresses").

A server could hand out an address of its own instead of the vault's. So, for each
address, every co-signer of the key is asked (request ``attest_address``: vault, key,
path and encoding, never the address) to derive the address from the key share it holds
and sign it; the signed statements are stored beside the address and returned with it
by the API. The server cannot make them up: clients count only statements signed by the
co-signers they pinned, about the address they were shown
(:mod:`shardvault.policy.address_attestation`).

What the server checks itself is only hygiene: it stores an attestation only when it
parses, verifies under the identity its relay knows for that party, and names this
address, vault and path; the client's check is the one that counts.

Attestation runs outside any database transaction (a co-signer round trip must not hold
the wallet's lock): :func:`attestation_request` reads, the backend asks the co-signers,
:func:`record_attestations` stores. Co-signers that do not answer within the timeout are
left out; a party's newer attestation replaces its older one, an older one is kept when
the party does not answer.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shardvault.cosigner.relay_core import RelayCore
from shardvault.policy.address_attestation import (
    AddressAttestationError,
    ExpectedAddress,
    PinnedCosigners,
    parse_attestation,
    verify_attestation,
)
from shardvault.policy.bundle import canonical_json
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, NotFound, ServiceError
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission, require
from shardvault.service.signing import SigningBackend, SigningError, key_parties
from shardvault.service.uow import UnitOfWork
from shardvault.service.wallets import (
    AddressView,
    address_encoding,
    address_views,
    wallet_key,
)
from shardvault.store.models_attestations import AddressAttestation
from shardvault.store.repositories_attestations import AttestationRepository
from shardvault.store.repositories_vaults import (
    WalletRepository,
)

_log = logging.getLogger("shardvault.address_attestations")


class AttestationUnavailable(Conflict):
    """This server's signer cannot have addresses attested (no co-signers, or none of
    the key's is reachable)."""

    problem = "attestation-unavailable"


@dataclass(frozen=True, slots=True)
class AttestationRequest:
    """One address to have attested: where it is, the key and path it comes from, how
    it is encoded, and which co-signers hold a share of the key."""

    workspace_id: str
    wallet_id: str
    address_id: str
    vault_id: str
    key_id: str
    path: str
    encoding: str
    address: str
    parties: tuple[int, ...]
    min_signers: int

    def body(self) -> dict[str, object]:
        """The co-signers' ``attest_address`` request (a fresh request id)."""
        return {
            "kind": "attest_address",
            "request_id": f"attest-{secrets.token_hex(12)}",
            "vault": self.vault_id,
            "key_id": self.key_id,
            "path": self.path,
            "encoding": self.encoding,
        }


@runtime_checkable
class AddressAttestor(Protocol):
    """A signing backend whose co-signers can attest addresses."""

    def attest_address(self, request: AttestationRequest) -> list[dict[str, object]]:
        """The attestations (transport form) of the co-signers that answered."""
        ...


def attestation_request(
    uow: UnitOfWork, principal: Principal, wallet_id: str, address_id: str
) -> AttestationRequest:
    """What to ask the co-signers about address ``address_id`` of wallet ``wallet_id``.

    Raises:
        Forbidden, NotFound (the wallet, an address not of this wallet, or the key).
    """
    require(principal, Permission.VAULTS_MANAGE)
    workspace_id = principal.workspace_id
    wallets = WalletRepository(uow.session, workspace_id)
    wallet = wallets.get(wallet_id)
    if wallet is None:
        raise NotFound("wallet", wallet_id)
    row = wallets.address(address_id)
    if row is None or row.wallet_id != wallet.id:
        raise NotFound("address", address_id)
    network, key = wallet_key(uow, workspace_id, wallet)
    if key is None:
        raise NotFound("vault key", wallet.vault_id)
    return AttestationRequest(
        workspace_id=workspace_id,
        wallet_id=wallet.id,
        address_id=row.id,
        vault_id=wallet.vault_id,
        key_id=key.backend_key_id,
        path=row.path,
        encoding=str(address_encoding(network)),
        address=row.address,
        parties=key_parties(json.loads(key.cosigners)),
        min_signers=key.min_signers,
    )


def collect_attestations(
    relay: RelayCore, request: AttestationRequest, *, stall_after: float, timeout: float
) -> list[dict[str, object]]:
    """Ask the key's co-signers that answer (not stalled) for ``request`` and wait up
    to ``timeout`` s; answers the attestations that check (module docstring), one per
    party. Refusals and attestations that do not check are logged and left out."""
    candidates = [p for p in (request.parties or relay.parties) if p in relay.parties]
    stalled = set(relay.stalled(candidates, stall_after))
    asked = [p for p in candidates if p not in stalled]
    if not asked:
        return []
    body = request.body()
    request_id = str(body["request_id"])
    try:
        relay.submit(body, asked)
    except ValueError as exc:  # a co-signer unpaired meanwhile
        _log.warning("address %s not sent for attestation: %s", request.address_id, exc)
        return []
    try:
        results = relay.wait_results(request_id, asked, timeout)
    finally:
        # A co-signer that did not answer in time must not find it later.
        relay.purge(request_id)
        relay.forget(request_id)
    known = {int(p): identity for p, identity in relay.directory.entries.items()}
    pinned = PinnedCosigners.of({p: known[p].fingerprint() for p in asked if p in known})
    expected = ExpectedAddress(
        request.address, request.vault_id, request.path, request.workspace_id
    )
    kept: list[dict[str, object]] = []
    for party, result in sorted(results.items()):
        if result.get("status") != "ok":
            _log.warning(
                "co-signer %d did not attest address %s: %s %s",
                party,
                request.address_id,
                result.get("check"),
                str(result.get("reason"))[:200],
            )
            continue
        try:
            attestation = parse_attestation(result.get("attestation"))
            if attestation.party != party:
                raise AddressAttestationError(f"co-signer {party} answered for another party")
            verify_attestation(attestation, expected, pinned)
        except AddressAttestationError as exc:
            _log.warning("co-signer %d's attestation left out: %s", party, exc)
            continue
        kept.append(attestation.to_json())
    return kept


def record_attestations(
    uow: UnitOfWork,
    principal: Principal,
    request: AttestationRequest,
    attestations: Sequence[Mapping[str, object]],
) -> AddressView:
    """Store ``attestations`` of the request's address (each replacing the same party's
    earlier one) and audit it; answers the address with every attestation it has.

    Raises:
        Forbidden, NotFound (the address is gone).
    """
    require(principal, Permission.VAULTS_MANAGE)
    workspace_id = principal.workspace_id
    wallets = WalletRepository(uow.session, workspace_id)
    wallet = wallets.get(request.wallet_id)
    row = wallets.address(request.address_id)
    if wallet is None or row is None or row.address != request.address:
        raise NotFound("address", request.address_id)
    repository = AttestationRepository(uow.session, workspace_id)
    parties: list[int] = []
    for document in attestations:
        try:
            attestation = parse_attestation(document)
        except AddressAttestationError as exc:
            _log.warning("attestation of address %s not stored: %s", row.id, exc)
            continue
        identity = attestation.identity
        repository.put(
            AddressAttestation(
                address_id=row.id,
                party=attestation.party,
                signing_key=identity.signing_key.hex(),
                encryption_key=identity.encryption_key.hex(),
                binding=identity.binding.hex(),
                statement=canonical_json(attestation.statement.to_document()).decode(),
                signature=attestation.signature.hex(),
            )
        )
        parties.append(attestation.party)
    view = address_views(uow, workspace_id, wallet, [row])[0]
    uow.audit.append(
        workspace_id=workspace_id,
        actor=principal.actor,
        action="address.attest",
        resource_type="address",
        resource_id=row.id,
        details={
            "wallet_id": wallet.id,
            "path": row.path,
            "address": row.address,
            "parties": list(sorted(parties)),
            "attested": view.attested,
        },
    )
    return view


def ask_cosigners(backend: SigningBackend, request: AttestationRequest) -> list[dict[str, object]]:
    """The backend's attestations of ``request``.

    Raises:
        AttestationUnavailable: the backend has no co-signers, or cannot reach them.
    """
    if not isinstance(backend, AddressAttestor):
        raise AttestationUnavailable(
            f"the {backend.name} signer has no co-signers to attest addresses"
        )
    try:
        return backend.attest_address(request)
    except SigningError as exc:
        raise AttestationUnavailable(f"the co-signers cannot be asked: {exc}") from None


def attest_address(
    platform: Platform,
    principal: Principal,
    backend: SigningBackend,
    wallet_id: str,
    address_id: str,
) -> AddressView:
    """Have one address attested and stored (outside the transactions that read and
    write: the co-signers are asked in between).

    Raises:
        Forbidden, NotFound, AttestationUnavailable.
    """
    with platform.unit_of_work(read_only=True) as uow:
        request = attestation_request(uow, principal, wallet_id, address_id)
    attestations = ask_cosigners(backend, request)
    with platform.unit_of_work() as uow:
        return record_attestations(uow, principal, request, attestations)


def attest_new_address(
    platform: Platform,
    principal: Principal,
    backend: SigningBackend | None,
    wallet_id: str,
    address_id: str,
) -> AddressView | None:
    """Have a just-made address attested when the backend can; answers the address
    with its attestations, or ``None`` when the backend cannot attest or failed (the
    reason logged: the address stays unattested until it is attested again)."""
    if backend is None or not isinstance(backend, AddressAttestor):
        return None
    try:
        return attest_address(platform, principal, backend, wallet_id, address_id)
    except ServiceError as exc:
        # The address is made and committed; failing to attest it must not fail that.
        _log.warning("address %s not attested: %s", address_id, exc)
        return None
