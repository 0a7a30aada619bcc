"""Metrics, structured logs and health checks."""
