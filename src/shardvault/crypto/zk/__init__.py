"""Zero-knowledge proofs, one proof system per module."""
