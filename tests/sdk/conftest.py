"""The SDK tests reuse the API tests' fixtures: a platform on the real database and its
app served by uvicorn on loopback."""

from tests.api.conftest import _loopback, app, platform, server_url, tenant

__all__ = ["_loopback", "app", "platform", "server_url", "tenant"]
