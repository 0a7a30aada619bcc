"""The remote signer mode's relays: one per workspace, built from its pairings and
re-read while the server runs (a co-signer paired or unpaired is served or dropped)."""

from __future__ import annotations

import pytest

from shardvault.crypto.channel import PartyIdentity
from shardvault.crypto.rng import system_random
from shardvault.service.remote_cosigners import NoPairedCosigners, RemoteCosigners

IDS = {p: PartyIdentity.generate(p, system_random).public for p in (1, 2, 3)}


def test_relays_follow_the_pairings() -> None:
    paired = {"ws-a": {1: IDS[1]}}
    now = [0.0]
    fleet = RemoteCosigners(lambda ws: paired.get(ws, {}), refresh_s=5.0, monotonic=lambda: now[0])
    assert fleet.lookup("ws-b") is None  # nothing paired: no relay, a 404 to pollers
    assert fleet.lookup("x" * 65) is None
    relay = fleet.lookup("ws-a")
    assert relay is not None
    assert relay.parties == (1,)
    with pytest.raises(NoPairedCosigners, match="fewer than two"):
        fleet.relay("ws-a")
    paired["ws-a"] = {1: IDS[1], 2: IDS[2], 3: IDS[3]}
    assert fleet.lookup("ws-a") is relay
    assert relay.parties == (1,)  # read again only after refresh_s
    now[0] = 6.0
    assert fleet.relay("ws-a") is relay
    assert relay.parties == (1, 2, 3)
    assert set(fleet.status("ws-a")) == {1, 2, 3}
    paired["ws-a"] = {2: IDS[2], 3: IDS[3]}
    now[0] = 12.0
    assert fleet.relay("ws-a").parties == (2, 3)
    fleet.close()
    assert relay.closed
