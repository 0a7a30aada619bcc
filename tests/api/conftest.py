"""Fixtures for the API tests: a platform on the real database, its app, a tenant."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from shardvault.api import create_app
from shardvault.service.platform import Platform
from shardvault.store import Database
from tests.api.support import SwitchableApp, Tenant, bootstrap, live_server, make_platform


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


@pytest.fixture
def tenant(platform: Platform) -> Tenant:
    return bootstrap(platform, "acme")


@pytest.fixture
def other_tenant(platform: Platform) -> Tenant:
    return bootstrap(platform, "globex")


@pytest.fixture(scope="session")
def _loopback() -> Iterator[tuple[SwitchableApp, str]]:
    switch = SwitchableApp()
    with live_server(switch) as url:
        yield switch, url


@pytest.fixture
def server_url(app: FastAPI, _loopback: tuple[SwitchableApp, str]) -> Iterator[str]:
    """The test's app served by a real uvicorn server on 127.0.0.1."""
    switch, url = _loopback
    switch.target = app
    try:
        yield url
    finally:
        switch.target = None


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client of the live server (requests are signed by hand in tests)."""
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client
