"""The transaction authorization policy: rule language and pure evaluator.

Pure: no I/O, no clock, no database. Everything the evaluator needs comes in as
arguments (policy, transaction, context).
"""
