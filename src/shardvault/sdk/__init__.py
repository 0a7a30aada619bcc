"""The Python client of the REST API (async first, with a synchronous wrapper)."""

from shardvault.policy.address_attestation import PinnedCosigners
from shardvault.sdk.addresses import VerifiedAddress, require_verified, verify_address
from shardvault.sdk.auth import ApiKeyCredentials, generate_key_pair, write_private_key
from shardvault.sdk.client import AsyncShardvaultClient, ShardvaultClient
from shardvault.sdk.errors import (
    ApiError,
    CredentialsError,
    DigestMismatchError,
    SdkError,
    TransportError,
    UnverifiedAddressError,
)
from shardvault.sdk.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "ApiError",
    "ApiKeyCredentials",
    "AsyncShardvaultClient",
    "CredentialsError",
    "DigestMismatchError",
    "PinnedCosigners",
    "SdkError",
    "ShardvaultClient",
    "TransportError",
    "UnverifiedAddressError",
    "VerifiedAddress",
    "WebhookVerificationError",
    "generate_key_pair",
    "require_verified",
    "verify_address",
    "verify_webhook",
    "write_private_key",
]
