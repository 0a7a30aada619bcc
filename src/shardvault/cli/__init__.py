"""The ``shardvault`` command line."""
