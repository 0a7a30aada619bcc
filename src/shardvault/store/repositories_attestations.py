"""The attestations of a workspace's addresses (:mod:`.models_attestations`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shardvault.store.models_attestations import AddressAttestation
from shardvault.store.types import utcnow


class AttestationRepository:
    """Address attestations of one workspace."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def of_addresses(self, address_ids: Sequence[str]) -> dict[str, list[AddressAttestation]]:
        """The attestations of each address in ``address_ids``, by party."""
        found: dict[str, list[AddressAttestation]] = {a: [] for a in address_ids}
        if not address_ids:
            return found
        rows = self._session.scalars(
            select(AddressAttestation)
            .where(
                AddressAttestation.workspace_id == self.workspace_id,
                AddressAttestation.address_id.in_(list(address_ids)),
            )
            .order_by(AddressAttestation.address_id, AddressAttestation.party)
        ).all()
        for row in rows:
            found[row.address_id].append(row)
        return found

    def put(self, row: AddressAttestation) -> AddressAttestation:
        """Store ``row``, replacing the same party's attestation of the same address."""
        existing = self._session.scalar(
            select(AddressAttestation).where(
                AddressAttestation.workspace_id == self.workspace_id,
                AddressAttestation.address_id == row.address_id,
                AddressAttestation.party == row.party,
            )
        )
        if existing is not None:
            for name in ("signing_key", "encryption_key", "binding", "statement", "signature"):
                setattr(existing, name, getattr(row, name))
            existing.attested_at = utcnow()
            self._session.flush()
            return existing
        row.workspace_id = self.workspace_id
        self._session.add(row)
        self._session.flush()
        return row
