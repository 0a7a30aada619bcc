"""What a server's signing backend is, as its start-up log and ``GET /v1/health`` say it.

A backend that puts every key share of every workspace on one host is a development
mode (DESIGN.md invariant 10: "the one-host development mode says that it is one"): the
server logs :attr:`SignerMode.warning` at start and the health route reports the mode
with ``single_host`` and ``development_only`` set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SignerMode:
    """How a server signs: the mode's name and whether one host holds every share."""

    mode: str
    single_host: bool
    development_only: bool
    warning: str | None = None


ONE_HOST_WARNING = (
    "development only: one host holds every key share of every workspace; whoever "
    "controls this host (its user account, its disk) can open a quorum of shares and "
    "sign anything, whatever the policy says."
)
"""The start of every one-host mode's warning."""

EMBEDDED_COSIGNERS = SignerMode(
    "embedded-cosigners",
    single_host=True,
    development_only=True,
    warning=f"{ONE_HOST_WARNING} The co-signers run as local processes of this server; "
    "in production run each on its own host (docs/cosigner.md).",
)
"""``shardvault server --signer cosigners``: three co-signer processes on this host."""

LOCAL_CEREMONY = SignerMode(
    "local-ceremony",
    single_host=True,
    development_only=True,
    warning=f"{ONE_HOST_WARNING} Every party runs inside this server process; in "
    "production use co-signers on their own hosts (docs/cosigner.md).",
)
"""``shardvault server --signer local-ceremony``: every party inside the server."""

REMOTE_COSIGNERS = SignerMode("remote-cosigners", single_host=False, development_only=False)
"""``shardvault server --signer remote``: paired co-signers on their own hosts; this host
holds no share and nothing that unlocks one."""
