"""Tests of shardvault.chains.solana."""
