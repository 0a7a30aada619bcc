"""The co-signer's ``presign`` request: a CGGMP21 presignature made for one derived key
and kept in memory for one later signature. Mixed into
:class:`~shardvault.cosigner.node.CosignerNode`, which provides the session machinery
declared here."""

from __future__ import annotations

from collections.abc import Mapping

from shardvault.cosigner.cggmp21 import presign_driver
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.request_fields import parties_field, text_field
from shardvault.cosigner.session_host import SessionHost
from shardvault.cosigner.sessions import ActiveSession, Result
from shardvault.cosigner.sign_checks import PresignatureKey, check_presignature_room
from shardvault.crypto.protocols.cggmp21.presignature import Presignature


class PresignRequests(SessionHost):
    """The presign request of a node (module docstring)."""

    _presignatures: dict[PresignatureKey, Presignature]
    _active: dict[bytes, ActiveSession]

    def _start_presign(self, request_id: str, body: Mapping[str, object]) -> list[bytes]:
        """CGGMP21 presigning; the presignature is kept in memory under ``presignature``.

        A presignature signs nothing by itself, so no policy check runs here; each
        online signature that uses one is checked in full. How many are held (and being
        made) is bounded (:func:`.sign_checks.check_presignature_room`).
        """
        sid = self._fresh_session(body)
        signers = parties_field(body, "signers")
        if self.state.party not in signers:
            raise RequestRefused("malformed", "this co-signer is not among the signers")
        directory = self._session_directory(signers)
        vault, key_id, label = (
            text_field(body, "vault"),
            text_field(body, "key_id"),
            text_field(body, "presignature"),
        )
        if (vault, key_id, label) in self._presignatures:
            raise RequestRefused("malformed", f"presignature {label!r} already exists")
        making = sum(1 for a in self._active.values() if a.kind == "presign")
        check_presignature_room(len(self._presignatures) + making)
        # A presignature is made for the derived key it will sign with.
        key = self._keys.ecdsa(body, vault, key_id)
        driver = presign_driver(
            key=key,
            identity=self.state.identity,
            directory=directory,
            guard=self._guard,
            session=sid,
            signers=signers,
            rng=self._rng,
        )

        def done(result: object) -> Result:
            assert isinstance(result, Presignature)
            self._presignatures[(vault, key_id, label)] = result
            return self._result(request_id, "ok", presignature=label)

        return self._register(
            sid, ActiveSession(request_id, "presign", driver, self._clock() + self._timeout, done)
        )
