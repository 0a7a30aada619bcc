"""The REST API (FastAPI): ``create_app(platform)`` builds it; see ``docs/api.md``."""

from shardvault.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
