"""The relay protocol: signed co-signer requests, routing, and the HTTP link.

Every refusal of a relay request is a 401 problem+json naming what failed, and changes
nothing (the queue is still there for the genuine co-signer).
"""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from shardvault.cosigner.errors import LinkError, RelayAuthError
from shardvault.cosigner.link import HttpLink, InMemoryLink, parse_items
from shardvault.cosigner.relay_app import create_relay_app
from shardvault.cosigner.relay_core import RelayCore, sign_request
from shardvault.crypto.channel import Directory, PartyIdentity, seal
from shardvault.crypto.protocols.common import WIRE_VERSION, Header, PartyId, SessionId
from shardvault.crypto.rng import system_random
from tests.waiting import eventually

IDS = {p: PartyIdentity.generate(p, system_random) for p in (1, 2, 3)}
DIRECTORY = Directory.of({p: i.public for p, i in IDS.items()})
SESSION = bytes(range(32))


def _core(now: float | None = None) -> RelayCore:
    clock = (lambda: now) if now is not None else time.time
    core = RelayCore(DIRECTORY, clock=clock)
    core.submit({"kind": "sign", "request_id": "r1", "session_id": SESSION.hex()}, [1, 2, 3])
    return core


def _post(client, party, action, document, *, identity=None, timestamp=None, nonce="abcdef0123"):
    body = json.dumps(document).encode()
    path = f"/v1/relay/{party}/{action}"
    headers = sign_request(
        identity or IDS[party], "POST", path, body, int(timestamp or time.time()), nonce
    )
    headers["x-shardvault-cosigner"] = str(party)  # a forger claims the path's party
    return client.post(path, content=body, headers=headers)


def _envelope(sender=1, recipient=None, round_number=1) -> bytes:
    header = Header(
        "frost/sign",
        WIRE_VERSION,
        SessionId(SESSION),
        round_number,
        PartyId(sender),
        None if recipient is None else PartyId(recipient),
    )
    key = None if recipient is None else IDS[recipient].public
    return seal(b"message", header, IDS[sender], key, system_random)


def test_poll_returns_the_request_and_send_routes_broadcasts():
    core = _core()
    client = TestClient(create_relay_app(core))
    answer = _post(client, 1, "poll", {"wait": 0})
    assert answer.status_code == 200
    items = parse_items(answer.json()["items"])
    assert items[0].request["request_id"] == "r1"
    envelope = _envelope(sender=1)
    sent = _post(
        client,
        1,
        "send",
        {"envelopes": [base64.b64encode(envelope).decode()], "results": [], "events": []},
        nonce="second0001",
    )
    assert sent.json() == {"routed": 1}
    for party in (2, 3):
        items = parse_items(core.poll(party, 0))
        assert [i.envelope for i in items if i.envelope] == [envelope]
    assert core.poll(1, 0) == []


def test_direct_envelope_goes_to_its_recipient_only():
    core = _core()
    core.poll(1, 0), core.poll(2, 0), core.poll(3, 0)
    envelope = _envelope(sender=2, recipient=3)
    assert core.send(2, [envelope]) == 1
    assert core.poll(1, 0) == []
    assert [i.envelope for i in parse_items(core.poll(3, 0))] == [envelope]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identity": IDS[2]}, "does not verify"),
        ({"timestamp": time.time() - 3600}, "skew"),
        ({"nonce": "bad nonce!"}, "nonce"),
    ],
)
def test_bad_requests_are_401_and_leave_the_queue(kwargs, message):
    core = _core()
    client = TestClient(create_relay_app(core))
    answer = _post(client, 1, "poll", {"wait": 0}, **kwargs)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert message in answer.json()["detail"]
    assert len(core.poll(1, 0)) == 1


def test_replayed_request_nonce_is_refused():
    core = _core()
    client = TestClient(create_relay_app(core))
    assert _post(client, 1, "poll", {"wait": 0}).status_code == 200
    core.submit({"kind": "policy", "request_id": "r2", "bundles": []}, [1])
    assert _post(client, 1, "poll", {"wait": 0}).status_code == 401
    assert len(core.poll(1, 0)) == 1


def test_request_nonces_are_remembered_for_the_replay_window_then_forgotten():
    now = [1_000_000.0]
    core = RelayCore(DIRECTORY, clock=lambda: now[0])
    path, body = "/v1/relay/1/poll", b"{}"

    def request(nonce: str) -> None:
        headers = sign_request(IDS[1], "POST", path, body, int(now[0]), nonce)
        core.authenticate(1, "POST", path, body, headers)

    request("first0001")
    now[0] += 30  # still inside twice the allowed skew: a replay is refused
    request("second001")
    with pytest.raises(RelayAuthError, match="replay"):
        request("first0001")
    now[0] += 10_000  # far past every window: the old nonces are dropped from memory
    request("third0001")
    assert set(core._nonces) == {(1, "third0001")}
    assert len(core._nonce_expiry) == 1


def test_signature_for_another_party_path_is_refused():
    core = _core()
    body = b"{}"
    headers = sign_request(IDS[1], "POST", "/v1/relay/2/poll", body, int(time.time()), "n0nce123")
    with pytest.raises(RelayAuthError, match="party of the path"):
        core.authenticate(2, "POST", "/v1/relay/2/poll", body, headers)
    with pytest.raises(RelayAuthError):
        core.authenticate(9, "POST", "/v1/relay/9/poll", b"{}", {})
    with pytest.raises(RelayAuthError):
        core.authenticate(1, "POST", "/v1/relay/1/poll", b"{}", {})


def test_malformed_bodies_are_400():
    core = _core()
    client = TestClient(create_relay_app(core))
    assert _post(client, 1, "send", {"envelopes": ["***"]}).status_code == 400
    assert _post(client, 1, "poll", ["wait"], nonce="other00001").status_code == 400


def test_relay_drops_envelopes_it_cannot_route():
    core = _core()
    impostor = _envelope(sender=1)
    assert core.send(2, [impostor, b"not an envelope"]) == 0
    assert [e["event"] for e in core.events] == ["relay_dropped", "relay_dropped"]


def test_http_link_against_the_app():
    core = _core()
    app = create_relay_app(core)

    class _Transport(httpx.BaseTransport):
        def __init__(self):
            self._client = TestClient(app)

        def handle_request(self, request):
            response = self._client.request(
                request.method, request.url.path, content=request.read(), headers=request.headers
            )
            return httpx.Response(response.status_code, content=response.content)

    link = HttpLink("http://relay.test", IDS[1], transport=_Transport())
    items = link.poll(0)
    assert items[0].request["kind"] == "sign"
    link.send([_envelope(sender=1)], [{"request_id": "r1", "status": "ok"}])
    assert core.results("r1")[1]["status"] == "ok"
    stranger = HttpLink(
        "http://relay.test", PartyIdentity.generate(7, system_random), transport=_Transport()
    )
    with pytest.raises(LinkError):
        stranger.poll(0)
    link.close()


def test_unreachable_coordinator_is_a_link_error():
    link = HttpLink("http://127.0.0.1:9", IDS[1], timeout=0.5)
    with pytest.raises(LinkError):
        link.poll(0)


@pytest.mark.parametrize(
    "items",
    [{"x": 1}, [1], [{"type": "envelope", "data": "***"}], [{"type": "other"}]],
)
def test_poll_answers_that_are_not_the_protocol_are_link_errors(items):
    with pytest.raises(LinkError):
        parse_items(items)


def test_in_memory_link_and_close_wakes_polls():
    core = _core()
    link = InMemoryLink(core, 2)
    assert link.poll(0)[0].request["request_id"] == "r1"
    core.close()
    began = time.monotonic()
    assert link.poll(5) == []
    assert time.monotonic() - began < 1


def test_relay_mounted_under_a_prefix():
    from fastapi import FastAPI

    from shardvault.cosigner.relay_app import relay_router

    core = _core()
    app = FastAPI()
    app.include_router(relay_router(core), prefix="/api")
    client = TestClient(app)

    class _Transport(httpx.BaseTransport):
        def handle_request(self, request):
            response = client.request(
                request.method, request.url.path, content=request.read(), headers=request.headers
            )
            return httpx.Response(response.status_code, content=response.content)

    link = HttpLink("http://server.test/api", IDS[3], transport=_Transport())
    assert link.poll(0)[0].request["request_id"] == "r1"


def test_a_batch_submitted_together_reaches_a_waiting_poll_whole():
    core = RelayCore(DIRECTORY)
    sessions = [bytes([n]) * 32 for n in range(1, 9)]
    taken: list[list[dict[str, object]]] = []
    poller = threading.Thread(target=lambda: taken.append(core.poll(1, 5.0)))
    poller.start()
    while 1 not in core._seen:  # the poll is waiting before the batch arrives
        time.sleep(0.001)
    core.submit_many(
        [
            ({"kind": "sign", "request_id": f"r{n}", "session_id": s.hex()}, [1, 2])
            for n, s in enumerate(sessions)
        ]
    )
    poller.join(timeout=5)
    assert [item["body"]["request_id"] for item in taken[0]] == [f"r{n}" for n in range(8)]
    assert len(core.poll(2, 0)) == 8
    assert core.poll(3, 0) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (({"kind": "sign", "request_id": "x", "session_id": "zz"}, [1, 2]), "32 bytes of hex"),
        (({"kind": "sign", "request_id": "x", "session_id": "00" * 31}, [1, 2]), "32 bytes"),
        (({"kind": "sign", "request_id": "x", "session_id": SESSION.hex()}, [1, 9]), "unknown"),
    ],
)
def test_a_batch_with_one_bad_request_queues_none(bad, message):
    core = RelayCore(DIRECTORY)
    good = ({"kind": "sign", "request_id": "ok", "session_id": SESSION.hex()}, [1, 2])
    with pytest.raises(ValueError, match=message):
        core.submit_many([good, bad])
    assert core.poll(1, 0) == []
    assert core.poll(2, 0) == []
    assert core.send(1, [_envelope(sender=1)]) == 0  # the good one's session was not kept


def test_rounds_are_counted_per_request_and_forgotten_with_it():
    core = RelayCore(DIRECTORY)
    other = bytes([7]) * 32
    core.submit_many(
        [
            ({"kind": "dkg", "request_id": "k", "session_id": SESSION.hex()}, [1, 2, 3]),
            ({"kind": "sign", "request_id": "s", "session_id": other.hex()}, [1, 2]),
        ]
    )
    assert core.rounds_routed("k") == 0
    core.send(1, [_envelope(sender=1, round_number=1), _envelope(sender=1, round_number=2)])
    core.send(2, [_envelope(sender=2, recipient=3, round_number=1)])
    assert core.rounds_routed("k") == 3  # party 1 is at round 2, party 2 at round 1
    assert core.rounds_routed("s") == 0
    assert core.rounds_routed("unknown") == 0
    core.forget("k")
    assert core.rounds_routed("k") == 0
    # The session is gone: a late envelope of it is dropped, recorded as an event.
    assert core.send(3, [_envelope(sender=3, round_number=1)]) == 0
    assert core.events[-1]["event"] == "relay_dropped"
    assert core.rounds_routed("s") == 0


def test_the_relay_keeps_a_bounded_number_of_events(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("shardvault.cosigner.relay_core.MAX_EVENTS", 5)
    core = RelayCore(DIRECTORY)
    for n in range(8):
        core.send(1, [], events=[{"event": "envelope_refused", "n": n}])
    assert [e["n"] for e in core.events] == [3, 4, 5, 6, 7]


def test_waiting_polls_leave_the_request_threads_free():
    """A co-signer's long poll waits in a thread of the relay's own pool: with the API's
    request threads limited to two (`shardvault server --request-threads`), three
    waiting polls still leave a synchronous route answering at once."""
    import uvicorn
    from fastapi import FastAPI

    from shardvault.cli.server import _http_server
    from shardvault.cosigner.relay_app import relay_router

    core = RelayCore(DIRECTORY)
    app = FastAPI()
    app.include_router(relay_router(core))

    @app.get("/ping")
    def ping() -> dict[str, bool]:  # a synchronous route: it runs in a request thread
        return {"ok": True}

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = _http_server(None, config, request_threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

        def long_poll(party: int) -> int:
            body = json.dumps({"wait": 3}).encode()
            path = f"/v1/relay/{party}/poll"
            headers = sign_request(
                IDS[party], "POST", path, body, int(time.time()), f"poll{party}0000"
            )
            return httpx.post(base + path, content=body, headers=headers, timeout=10).status_code

        polls = [threading.Thread(target=long_poll, args=(p,)) for p in (1, 2, 3)]
        for poll in polls:
            poll.start()
        # Two of them are waiting in the relay; the third is queued or waiting too.
        assert eventually(lambda: len(core._seen) >= 2)
        time.sleep(0.3)
        started = time.monotonic()
        assert httpx.get(base + "/ping", timeout=10).json() == {"ok": True}
        assert time.monotonic() - started < 1.5  # not after the polls' 3 s
        assert core._seen == {1, 2, 3}  # the third poll did not wait for a request thread
        for poll in polls:
            poll.join(timeout=10)
    finally:
        server.should_exit = True
        core.close()
        thread.join(timeout=10)


def test_purge_takes_an_aborted_request_and_its_envelopes_out_of_every_queue():
    """A co-signer that comes back after its session was aborted finds neither the
    request nor a peer's message of it (it could otherwise finish the signature)."""
    core = _core()
    other = bytes(range(1, 33))
    core.submit({"kind": "sign", "request_id": "r2", "session_id": other.hex()}, [1, 2])
    core.poll(2, 0)  # party 2 took both requests and answers for r1
    assert core.send(2, [_envelope(sender=2)]) == 1
    core.purge("r1")
    left = parse_items(core.poll(1, 0))
    assert [i.request["request_id"] for i in left if i.request] == ["r2"]
    assert [i.envelope for i in left if i.envelope] == []


def test_liveness_reports_waiting_polls_contact_and_status():
    core = _core()
    assert core.liveness()[1] == {"connected": False, "last_contact": None}
    assert core.stalled([1, 2], 5.0) == [1, 2]
    done = threading.Event()

    def waiting_poll():
        core.poll(1, 5.0, {"version": "9.9", "unlock": "passphrase", "secret": "dropped"})
        done.set()

    core.poll(1, 0)  # take r1
    thread = threading.Thread(target=waiting_poll)
    thread.start()
    assert eventually(lambda: core.liveness()[1]["connected"])
    live = core.liveness()[1]
    assert live["version"] == "9.9"
    assert "secret" not in live  # only the status fields a co-signer may report
    assert core.stalled([1, 2], 5.0) == [2]
    core.close()
    thread.join(5)
    assert done.is_set()
    assert core.liveness()[1]["connected"] is False
    assert isinstance(core.last_contact(1), float)


def test_a_relay_takes_a_new_directory_without_losing_queues():
    core = _core()
    fourth = PartyIdentity.generate(4, system_random)
    core.set_directory(Directory.of({1: IDS[1].public, 2: IDS[2].public, 4: fourth.public}))
    assert core.parties == (1, 2, 4)
    assert parse_items(core.poll(1, 0))[0].request["request_id"] == "r1"
    assert core.poll(3, 0) == []  # no longer served
