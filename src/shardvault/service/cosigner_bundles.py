"""Reading the activated policy bundles the server forwards to its co-signers: the
co-signer directory a bundle lists and its version (the bundles were verified when they
were activated; these read them with the policy package's own parser)."""

from __future__ import annotations

from collections.abc import Mapping

from shardvault.policy import PolicyError, parse_cosigner_directory
from shardvault.service.signing import SigningError


def directory_parties(bundle: Mapping[str, object]) -> tuple[int, ...]:
    """The party ids of a bundle's co-signer directory (empty: it carries none), read
    with the policy package's own parser (the bundle was verified when it was activated).

    Raises:
        SigningError: a stored bundle whose directory does not parse.
    """
    payload = bundle.get("payload")
    directory = payload.get("cosigners") if isinstance(payload, Mapping) else None
    if directory is None:
        return ()
    try:
        return parse_cosigner_directory(directory).parties
    except PolicyError as exc:
        raise SigningError(f"a stored policy bundle's co-signer directory: {exc}") from None


def bundle_version(bundle: Mapping[str, object]) -> int:
    """A stored bundle's version.

    Raises:
        SigningError: it has none.
    """
    payload = bundle.get("payload")
    version = payload.get("version") if isinstance(payload, Mapping) else None
    if not isinstance(version, int):
        raise SigningError("a stored policy bundle has no version")
    return version
