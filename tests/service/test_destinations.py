"""The SSRF guard shared by webhook endpoints and networks' RPC nodes: what the node
policy allows (public nodes, this host, allowed networks) and what it never allows
(link-local and cloud metadata, in any spelling), and the refusal at connection time."""

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from shardvault.service.destinations import (
    DestinationPolicy,
    DestinationRefused,
    GuardedTransport,
    parse_networks,
)
from shardvault.service.errors import ValidationError

NODES = DestinationPolicy.for_rpc_nodes()


def refusal(policy: DestinationPolicy, url: str, **options: bool) -> str:
    with pytest.raises(ValidationError) as caught:
        policy.check_url(url, field="rpc_url", **options)
    assert caught.value.field == "rpc_url"
    return caught.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8545",
        "http://localhost:8545/",
        "http://[::1]:8545",
        "https://eth-mainnet.example.com/v2/some-api-key",
        "https://1.1.1.1/",
    ],
)
def test_the_node_policy_allows_public_nodes_and_this_host(url: str) -> None:
    assert NODES.check_url(url, field="rpc_url") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://169.254.1.1:8545",
        "http://[fe80::1]:8545",
        "http://[fe80::1%25eth0]:8545",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://2852039166/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://0251.0376.0251.0376/",
    ],
)
def test_link_local_and_metadata_addresses_are_never_nodes(url: str) -> None:
    """Refused even when an allowed network contains them (an operator allowing a /16
    around a node does not open the metadata service)."""
    reason = refusal(NODES, url)
    assert "link-local or cloud metadata" in reason or "not an allowed destination" in reason
    wide = DestinationPolicy.for_rpc_nodes(
        parse_networks(["169.254.0.0/16", "fe80::/10", "fd00:ec2::/64", "100.64.0.0/10"])
    )
    refusal(wide, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
        "http://instance-data./",
    ],
)
def test_metadata_host_names_are_refused(url: str) -> None:
    assert "metadata" in refusal(NODES, url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://node.example.com/",
        "file:///etc/passwd",
        "gopher://node.example.com/",
        "ws://node.example.com/",
        "javascript:alert(1)",
        "http://node.example.com/#frag",
        "http:///no-host",
        "http://node.example.com:0/",
        "http://node.example.com/a b",
        "",
    ],
)
def test_odd_urls_are_refused(url: str) -> None:
    refusal(NODES, url)


def test_credentials_are_for_nodes_only() -> None:
    """Bitcoin Core takes its RPC user and password in the URL (docs/transactions.md);
    a webhook URL never carries them."""
    url = "http://user:secret@127.0.0.1:18443"
    assert NODES.check_url(url, field="rpc_url", allow_credentials=True) == url
    assert "password" in refusal(NODES, url)
    assert "password" in refusal(DestinationPolicy.loopback_allowed(), url)


def test_private_nodes_need_an_allowed_network_and_loopback_can_be_closed() -> None:
    refusal(NODES, "http://10.0.3.7:8545")
    intranet = DestinationPolicy.for_rpc_nodes(parse_networks(["10.0.0.0/8"]))
    assert intranet.check_url("http://10.0.3.7:8545") == "http://10.0.3.7:8545"
    closed = DestinationPolicy.for_rpc_nodes(parse_networks(["10.0.0.0/8"]), loopback=False)
    assert "not an allowed destination" in refusal(closed, "http://127.0.0.1:8545")
    assert "not an allowed destination" in refusal(closed, "http://localhost:8545")


def test_the_webhook_policy_judges_nat64_addresses_as_ipv4_too() -> None:
    """64:ff9b::a9fe:a9fe is 169.254.169.254 once a NAT64 gateway has translated it."""
    for policy in (DestinationPolicy(), DestinationPolicy.loopback_allowed()):
        with pytest.raises(ValidationError):
            policy.check_url("http://[64:ff9b::a9fe:a9fe]/hook")
    assert DestinationPolicy().address_allowed(ipaddress.ip_address("64:ff9b::808:808"))


def test_a_bad_network_is_named_by_its_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_networks(["10.0.0.0/8", "not-a-network"], field="allow_rpc_networks")
    assert caught.value.field == "allow_rpc_networks"


@pytest.fixture
def local_node() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            """Answers every JSON-RPC call with chain id 31337."""
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x7a69"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_resolved_address_is_checked_at_every_connection(local_node: str) -> None:
    """A name is judged by what it resolves to when the request is made (here localhost,
    which a policy without loopback refuses: the same as a public name rebound to an
    internal address after it was registered)."""
    with httpx.Client(transport=GuardedTransport(NODES)) as allowed:
        assert allowed.post(local_node, json={"id": 1}).status_code == 200
    closed = DestinationPolicy.for_rpc_nodes(loopback=False)
    with (
        httpx.Client(transport=GuardedTransport(closed)) as refused,
        pytest.raises(DestinationRefused, match="resolves to"),
    ):
        refused.post(local_node, json={"id": 1})


def test_the_pipeline_asks_nodes_only_where_its_policy_allows(local_node: str) -> None:
    """The pipeline's node clients go through the guard: a node accepted at registration
    whose name now resolves to an address the policy refuses is not contacted, and the
    call fails as a transport error (retried later, like a node that is down)."""
    from shardvault.service.chainclients import RpcTransportError
    from shardvault.service.chainclients.ethereum import send_raw_transaction_call
    from shardvault.service.pipeline import PipelineRuntime
    from shardvault.store.models_vaults import Network, NetworkKind

    allowed = PipelineRuntime(backend=None)  # type: ignore[arg-type]
    closed = PipelineRuntime(
        backend=None,  # type: ignore[arg-type]
        rpc_policy=DestinationPolicy.for_rpc_nodes(loopback=False),
    )
    network = Network(
        name="local", kind=NetworkKind.EVM, chain_id=31337, rpc_url=local_node,
        fallback_rpc_urls=json.dumps([local_node + "/second"]), broadcast_url=local_node,
    )  # fmt: skip
    try:
        assert allowed.ethereum_client(network).request("eth_chainId") == "0x7a69"
        # Every node of the network, and its broadcast URL, goes through the guard.
        with pytest.raises(RpcTransportError, match="refused: host 'localhost' resolves to"):
            closed.ethereum_client(network).request("eth_chainId")
        with pytest.raises(RpcTransportError, match="refused: host 'localhost' resolves to"):
            closed.ethereum_client(network).run(send_raw_transaction_call(b"\x02"))
    finally:
        allowed.close()
        closed.close()
