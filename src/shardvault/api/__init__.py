"""The REST and JSON-RPC API (FastAPI)."""
