"""A network's ``rpc_url`` through the API goes through the SSRF guard webhooks use: every
refused class of URL is a 400 naming ``rpc_url`` and stores nothing; a node on this host
(the development chain) is accepted, and an operator can open a private network or close
loopback. (tests/service/test_destinations.py checks the guard itself, including the
check of the resolved address at every connection.)"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy import func, select

from shardvault.api import create_app
from shardvault.sdk import ApiError, ShardvaultClient
from shardvault.service.destinations import DestinationPolicy, parse_networks
from shardvault.service.platform import Platform
from shardvault.store.models_vaults import Network
from tests.api.support import SwitchableApp, Tenant


@pytest.fixture
def serve(
    platform: Platform, tenant: Tenant, _loopback: tuple[SwitchableApp, str]
) -> Callable[..., AbstractContextManager[ShardvaultClient]]:
    """A client of the API served with ``rpc_policy`` (``None``: the default)."""
    switch, url = _loopback

    @contextmanager
    def run(rpc_policy: DestinationPolicy | None = None) -> Iterator[ShardvaultClient]:
        switch.target = create_app(platform, rpc_policy=rpc_policy)
        try:
            with ShardvaultClient(url, tenant.owner, max_attempts=1) as client:
                yield client
        finally:
            switch.target = None

    return run


def stored_networks(platform: Platform) -> int:
    with platform.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Network)) or 0)


def assert_refused(client: ShardvaultClient, platform: Platform, url: str) -> str:
    with pytest.raises(ApiError) as refused:
        client.configure_network(name="node", kind="evm", chain_id=1, rpc_url=url)
    error = refused.value
    assert error.status == 400, error
    assert error.problem_type == "urn:shardvault:problem:invalid-request"
    assert error.detail.startswith("rpc_url: "), error.detail
    assert stored_networks(platform) == 0
    assert client.request("GET", "/v1/networks").json() == []
    return error.detail


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "link-local or cloud metadata"),
        ("http://169.254.10.20:8545", "link-local or cloud metadata"),
        ("http://[fe80::1]:8545", "link-local or cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local or cloud metadata"),
        ("http://2852039166/", "link-local or cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://instance-data/latest/", "cloud metadata service"),
        ("http://10.0.0.5:8545", "not an allowed destination"),
        ("ftp://node.example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://node.example.com:70/", "only http and https"),
        ("http://node.example.com/#x", "fragment"),
        ("http://node.example.com:0/", "port 0"),
    ],
)
def test_refused_node_urls_are_400_and_store_nothing(
    serve: Callable[..., AbstractContextManager[ShardvaultClient]],
    platform: Platform,
    url: str,
    reason: str,
) -> None:
    with serve() as client:
        assert reason in assert_refused(client, platform, url)


def test_a_node_on_this_host_is_accepted(
    serve: Callable[..., AbstractContextManager[ShardvaultClient]], platform: Platform
) -> None:
    """The development chain of ``make demo`` and the tests listens on 127.0.0.1; a
    Bitcoin Core node takes its RPC credentials in the URL (docs/transactions.md)."""
    with serve() as client:
        evm = client.configure_network(
            name="hardhat", kind="evm", chain_id=31337, rpc_url="http://127.0.0.1:8545"
        )
        assert evm.rpc_url == "http://127.0.0.1:8545"
        btc = client.configure_network(
            name="regtest", kind="bitcoin", rpc_url="http://rpc:secret@localhost:18443"
        )
        assert btc.rpc_url == "http://rpc:secret@localhost:18443"
        public = client.configure_network(
            name="mainnet", kind="evm", chain_id=1, rpc_url="https://eth.node.example/v2/key"
        )
        assert public.rpc_url == "https://eth.node.example/v2/key"
    assert stored_networks(platform) == 3


def test_the_operator_opens_private_networks_and_may_close_loopback(
    serve: Callable[..., AbstractContextManager[ShardvaultClient]], platform: Platform
) -> None:
    intranet = DestinationPolicy.for_rpc_nodes(parse_networks(["10.0.0.0/8"]), loopback=False)
    with serve(intranet) as client:
        assert "not an allowed destination" in assert_refused(
            client, platform, "http://127.0.0.1:8545"
        )
        assert "link-local or cloud metadata" in assert_refused(
            client, platform, "http://169.254.169.254/"
        )
        node = client.configure_network(
            name="intranet", kind="evm", chain_id=1, rpc_url="http://10.0.0.5:8545"
        )
        assert node.rpc_url == "http://10.0.0.5:8545"
