"""Pure cryptography: groups, polynomials and VSS, Paillier, zero-knowledge proofs, and
threshold-signature protocols as sans-I/O round objects.

Nothing here does I/O, reads the clock or draws randomness on its own: randomness comes
in as an argument (a :data:`~shardvault.crypto.rng.RandomSource`).
"""
