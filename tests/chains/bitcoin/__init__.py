"""Tests of shardvault.chains.bitcoin."""
