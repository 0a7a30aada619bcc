"""The co-signer's aux-pool requests (:mod:`.aux_pool`): ``aux_prepare`` runs an
auxiliary-info session ahead of any key and seals its outcome; ``aux_held`` lists the
labels held for a party set. Mixed into :class:`~shardvault.cosigner.node.CosignerNode`,
which provides the session machinery declared here."""

from __future__ import annotations

from collections.abc import Mapping

from shardvault.cosigner.aux_pool import AuxPool, check_label
from shardvault.cosigner.cggmp21 import aux_info_driver
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.request_fields import parties_field, text_field
from shardvault.cosigner.session_host import SessionHost
from shardvault.cosigner.sessions import ActiveSession, Result
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo, AuxInfoConfig
from shardvault.crypto.protocols.common import SessionId, party_set


class AuxRequests(SessionHost):
    """The aux-pool requests of a node (module docstring)."""

    aux_pool: AuxPool

    def _aux_config(
        self, body: Mapping[str, object], sid: SessionId | None, parties: tuple[int, ...]
    ) -> tuple[SessionId, AuxInfoConfig]:
        aux_sid = self._fresh_session(body, "aux_session_id")
        if aux_sid == sid:
            raise RequestRefused("malformed", "aux_session_id must differ from session_id")
        try:
            return aux_sid, AuxInfoConfig(aux_sid, self.state.identity.party, party_set(parties))
        except CryptoError as exc:
            raise RequestRefused("malformed", f"aux info: {exc}") from None

    def _my_parties(self, body: Mapping[str, object]) -> tuple[int, ...]:
        parties = parties_field(body, "parties")
        if self.state.party not in parties:
            raise RequestRefused("malformed", "this co-signer is not in the party set")
        return parties

    def _start_aux_prepare(self, request_id: str, body: Mapping[str, object]) -> list[bytes]:
        """An auxiliary-info session ahead of any key (:mod:`.aux_pool`): no signature and
        no key, so no policy rule decides it; it is refused for a party set without this
        co-signer or outside the directory, and beyond the pool's bound."""
        parties = self._my_parties(body)
        directory = self._session_directory(parties)
        label = check_label(text_field(body, "aux_label"))
        aux_sid, config = self._aux_config(body, None, parties)
        self.aux_pool.reserve(parties, label)
        try:
            paillier_secret, primes_from = self._keys.paillier_key_and_source(search=False)
            driver = aux_info_driver(
                identity=self.state.identity,
                directory=directory,
                guard=self._guard,
                config=config,
                paillier_secret=paillier_secret,
                rng=self._rng,
            )
        except BaseException:
            self.aux_pool.release(parties, label)
            raise

        def done(result: object) -> Result:
            assert isinstance(result, AuxInfo)
            self.aux_pool.seal(label, result)
            return self._result(
                request_id,
                "ok",
                aux_label=label,
                held=self.aux_pool.held(parties),
                test_only=self.aux_pool.test_only,
                paillier_primes=primes_from,
            )

        active = ActiveSession(request_id, "aux", driver, self._clock() + self._timeout, done)
        active.on_fail = lambda: self.aux_pool.release(parties, label)
        return self._register(aux_sid, active)
