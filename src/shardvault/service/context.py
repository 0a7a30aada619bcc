"""Who is asking: the authenticated principal every service call receives."""

from dataclasses import dataclass

from shardvault.audit import Actor
from shardvault.store.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key, its user, its workspace and its role."""

    workspace_id: str
    api_key_id: str
    user_id: str
    role: Role

    @property
    def actor(self) -> Actor:
        """How this principal appears in audit events."""
        return Actor.api_key(self.api_key_id)
