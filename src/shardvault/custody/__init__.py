"""Key-share custody: KMS/HSM backends, envelope encryption, share store, attestation."""
