"""Errors of the co-signer node.

``CosignerError`` is the root. A request the co-signer will not serve is a
:class:`RequestRefused` naming the check that failed (and, for a policy refusal, the
deciding rule); these are the co-signer doing its job, reported to the coordinator, never
crashes. Errors never carry a share, a key or a plaintext payload.
"""

from __future__ import annotations

from shardvault.errors import ShardvaultError


class CosignerError(ShardvaultError):
    """Root of the co-signer's errors."""


class ConfigurationError(CosignerError):
    """A data directory, configuration file or directory entry that is missing or wrong."""


class LinkError(CosignerError):
    """The coordinator could not be reached, or answered something that is not the relay
    protocol."""


class RelayAuthError(CosignerError):
    """A relay request whose co-signer signature, timestamp or nonce does not check."""


class SessionError(CosignerError):
    """A protocol session that could not run: unknown session, duplicate, timed out."""


class RequestRefused(CosignerError):
    """The co-signer refuses a request after checking it itself (DESIGN.md invariant 3).

    ``check`` names what failed (``malformed``, ``digest``, ``payload``, ``policy``,
    ``key``, ``directory``: a party outside the co-signer directory; ``fee``: an EVM
    transaction's worst-case fee or priority fee above the policy's fee cap for its
    network; ``network``: a payload on a network the signed asset registry does not
    list, or a ``metadata.network`` that names another; ``asset``: a token, or a native
    coin, the registry does not list, or decimals that disagree with it; ``price``: a
    coordinator's ``prices`` map, or a price report that does not verify; ``replay``: a
    second signature of a transaction or payload already signed, other than a
    replacement of the same chain replay key, see :mod:`.signed_record`; ``limit``: more
    presignatures than a co-signer keeps, :data:`.sign_checks.MAX_PRESIGNATURES`; ``aux``:
    a prepared auxiliary-info set that is unknown, used or beyond the pool's bound, see
    :mod:`.aux_pool`);
    ``rule`` is the policy rule that decided, when there was one.
    """

    def __init__(self, check: str, reason: str, *, rule: str | None = None) -> None:
        self.check = check
        self.reason = reason
        self.rule = rule
        where = f" (rule {rule!r})" if rule else ""
        super().__init__(f"request refused by the {check} check{where}: {reason}")
