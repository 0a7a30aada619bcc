"""What a request mixin of :class:`~shardvault.cosigner.node.CosignerNode` (the aux-pool
and presign requests) uses of the node: its state, randomness, clock and session
machinery, declared once here and provided by the node."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shardvault.cosigner.node_keys import NodeKeys
from shardvault.cosigner.sessions import ActiveSession, Result
from shardvault.cosigner.state import NodeState
from shardvault.crypto.channel import Directory, ReplayGuard
from shardvault.crypto.protocols.common import SessionId
from shardvault.crypto.rng import RandomSource


class SessionHost:
    """The node's session machinery, as its request mixins see it."""

    state: NodeState
    _guard: ReplayGuard
    _rng: RandomSource
    _timeout: float
    _clock: Callable[[], float]

    @property
    def _keys(self) -> NodeKeys:
        raise NotImplementedError

    def _result(self, request_id: str, status: str, **fields: object) -> Result:
        raise NotImplementedError

    def _fresh_session(self, body: Mapping[str, object], name: str = "session_id") -> SessionId:
        raise NotImplementedError

    def _session_directory(self, parties: tuple[int, ...]) -> Directory:
        raise NotImplementedError

    def _register(self, sid: SessionId, active: ActiveSession) -> list[bytes]:
        raise NotImplementedError
