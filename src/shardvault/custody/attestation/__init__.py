"""Enclave attestation: AWS Nitro document verification and the development enclave."""

from shardvault.custody.attestation.nitro import (
    AWS_NITRO_ROOT_G1_PEM,
    AttestationDocument,
    NitroVerifier,
    PcrPolicy,
    decode_document,
    load_document_bytes,
)

__all__ = [
    "AWS_NITRO_ROOT_G1_PEM",
    "AttestationDocument",
    "NitroVerifier",
    "PcrPolicy",
    "decode_document",
    "load_document_bytes",
]
