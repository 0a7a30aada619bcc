"""Deposit addresses the client verifies itself (docs/cosigner.md, "Attested addresses").

The server hands out addresses; a compromised one could hand out its own. Each
co-signer signs the address it derives from the key share it holds, and the API returns
those attestations with the address. This module counts them against the co-signers the
*user* pinned (:class:`~shardvault.policy.address_attestation.PinnedCosigners`: each
co-signer's identity fingerprint, as its operator read it on the co-signer's own host,
the same fingerprints ``policy apply --expect-cosigner`` checks), never against
identities the server names: an address is verified when at least ``min_signers``
(never fewer than two) distinct pinned co-signers attest exactly this address, vault and
path, and the address is the encoding of the key the attestations derive from the
vault's root key (:func:`~shardvault.policy.address_attestation.tally_attestations`).

:meth:`AsyncAddressesMixin.verified_address` raises
:class:`~shardvault.sdk.errors.UnverifiedAddressError` otherwise; nothing here trusts the
server's ``attested`` flag.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from shardvault.policy.address_attestation import (
    MIN_ATTESTATIONS,
    AttestationTally,
    ExpectedAddress,
    PinnedCosigners,
    tally_attestations,
)
from shardvault.sdk.custody import Address, AsyncCustodyMixin, CustodyMixin
from shardvault.sdk.errors import SdkError, UnverifiedAddressError

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class VerifiedAddress:
    """An address that enough pinned co-signers attest, and their tally."""

    address: Address
    tally: AttestationTally

    @property
    def public_key(self) -> bytes:
        """The key the co-signers attest for the address (recomputed from the vault's
        root key along the path)."""
        assert self.tally.public_key is not None
        return self.tally.public_key

    @property
    def vault_public_key(self) -> bytes:
        """The vault's root key the co-signers derive the address from (compare it with
        the key you noted when the vault was made, or pass it as ``vault_public_key``)."""
        assert self.tally.root_public_key is not None
        return self.tally.root_public_key


def verify_address(
    address: Address,
    pinned: PinnedCosigners,
    *,
    vault_id: str | None = None,
    workspace_id: str | None = None,
    vault_public_key: bytes | None = None,
    min_signers: int = MIN_ATTESTATIONS,
) -> AttestationTally:
    """Count the attestations of ``address`` by the ``pinned`` co-signers.

    ``vault_id`` is the vault the address must belong to (default: the one the server
    says, ``address.vault_id``; pass the vault you expect to bind it); ``workspace_id``
    and ``vault_public_key`` (the vault's root key in its chain encoding, as noted when
    the vault was made) likewise when given; ``min_signers`` is the least the caller
    accepts (raised to the key's own threshold when the attestations state a higher
    one). Never raises for what the server sent: the tally says what counted and why
    the rest did not.
    """
    expected = ExpectedAddress(
        address=address.address,
        vault=vault_id or address.vault_id or "",
        path=address.path,
        workspace=workspace_id,
        root_public_key=vault_public_key,
    )
    return tally_attestations(address.attestations, expected, pinned, min_signers=min_signers)


def require_verified(
    address: Address,
    pinned: PinnedCosigners,
    *,
    vault_id: str | None = None,
    workspace_id: str | None = None,
    vault_public_key: bytes | None = None,
    min_signers: int = MIN_ATTESTATIONS,
) -> VerifiedAddress:
    """``address`` once verified (:func:`verify_address`).

    Raises:
        UnverifiedAddressError: fewer pinned co-signers attest it than required.
    """
    tally = verify_address(
        address,
        pinned,
        vault_id=vault_id,
        workspace_id=workspace_id,
        vault_public_key=vault_public_key,
        min_signers=min_signers,
    )
    if not tally.verified:
        raise UnverifiedAddressError(address.address, tally)
    return VerifiedAddress(address, tally)


class AsyncAddressesMixin(AsyncCustodyMixin):
    """Address methods of :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    async def attest_address(
        self, wallet_id: str, address_id: str, *, idempotency_key: str | None = None
    ) -> Address:
        """Ask the co-signers to attest an address again (one made before attestations
        existed, or one a co-signer missed); answers it with its attestations."""
        return await self._custody_call(
            "POST",
            f"/v1/wallets/{wallet_id}/addresses/{address_id}/attest",
            Address,
            idempotency_key=idempotency_key,
        )

    async def verified_address(
        self,
        wallet_id: str,
        *,
        pinned: PinnedCosigners,
        address_id: str | None = None,
        vault_id: str | None = None,
        workspace_id: str | None = None,
        vault_public_key: bytes | None = None,
        min_signers: int = MIN_ATTESTATIONS,
    ) -> VerifiedAddress:
        """The wallet's address ``address_id`` (default: its newest), verified against
        the ``pinned`` co-signers (:func:`require_verified`; ``vault_id`` defaults to
        the wallet's as the server shows it).

        Raises:
            UnverifiedAddressError: not enough pinned co-signers attest it.
            SdkError: the wallet has no such address.
            ApiError, TransportError: as every call.
        """
        wallet = await self.get_wallet(wallet_id)
        if address_id is None:
            chosen = wallet.addresses[-1] if wallet.addresses else None
        else:
            chosen = next((a for a in wallet.addresses if a.id == address_id), None)
        if chosen is None:
            raise SdkError(f"wallet {wallet_id} has no address {address_id or ''}".rstrip())
        return require_verified(
            chosen,
            pinned,
            vault_id=vault_id or wallet.vault_id,
            workspace_id=workspace_id,
            vault_public_key=vault_public_key,
            min_signers=min_signers,
        )

    async def new_verified_address(
        self,
        wallet_id: str,
        *,
        pinned: PinnedCosigners,
        vault_id: str | None = None,
        workspace_id: str | None = None,
        vault_public_key: bytes | None = None,
        min_signers: int = MIN_ATTESTATIONS,
        idempotency_key: str | None = None,
    ) -> VerifiedAddress:
        """Derive the wallet's next address and verify it before answering it.

        Raises:
            UnverifiedAddressError: not enough pinned co-signers attest it (the address
                exists on the server; do not use it).
        """
        address = await self.new_address(wallet_id, idempotency_key=idempotency_key)
        if vault_id is None:
            vault_id = (await self.get_wallet(wallet_id)).vault_id
        return require_verified(
            address,
            pinned,
            vault_id=vault_id,
            workspace_id=workspace_id,
            vault_public_key=vault_public_key,
            min_signers=min_signers,
        )


class AddressesMixin(CustodyMixin):
    """Address methods of :class:`~shardvault.sdk.client.ShardvaultClient`."""

    if TYPE_CHECKING:

        def _run(self, coroutine: Coroutine[Any, Any, R]) -> R: ...

    @property
    def _addresses(self) -> AsyncAddressesMixin:
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncAddressesMixin)
        return client

    def attest_address(self, wallet_id: str, address_id: str, **kwargs: Any) -> Address:
        return self._run(self._addresses.attest_address(wallet_id, address_id, **kwargs))

    def verified_address(self, wallet_id: str, **kwargs: Any) -> VerifiedAddress:
        return self._run(self._addresses.verified_address(wallet_id, **kwargs))

    def new_verified_address(self, wallet_id: str, **kwargs: Any) -> VerifiedAddress:
        return self._run(self._addresses.new_verified_address(wallet_id, **kwargs))
