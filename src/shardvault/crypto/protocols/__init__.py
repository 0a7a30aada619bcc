"""Threshold protocols as sans-I/O round objects, one subpackage per scheme."""
