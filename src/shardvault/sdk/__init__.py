"""The Python client of the REST API (async first, with a synchronous wrapper)."""

from shardvault.sdk.auth import ApiKeyCredentials, generate_key_pair, write_private_key
from shardvault.sdk.client import AsyncShardvaultClient, ShardvaultClient
from shardvault.sdk.errors import (
    ApiError,
    CredentialsError,
    DigestMismatchError,
    SdkError,
    TransportError,
)
from shardvault.sdk.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "ApiError",
    "ApiKeyCredentials",
    "AsyncShardvaultClient",
    "CredentialsError",
    "DigestMismatchError",
    "SdkError",
    "ShardvaultClient",
    "TransportError",
    "WebhookVerificationError",
    "generate_key_pair",
    "verify_webhook",
    "write_private_key",
]
